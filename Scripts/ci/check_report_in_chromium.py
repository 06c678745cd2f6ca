#!/usr/bin/env python3
"""Opens report.html in headless Chromium and fails unless it renders cleanly.

What it checks, through the DevTools protocol (over --remote-debugging-pipe, no
network port, Python standard library only):
  - no console messages, no uncaught exceptions, no browser log errors or warnings,
    no failed loads, and no request for anything but file: and data: URLs;
  - in the rendered page: the curves (2 charts, 2 series each, one point per epoch),
    the 10x10 confusion matrix, and 40 images actually decoded (20 samples, 20 mistakes);
  - in a full-page screenshot: the curve colours, the heat map's dark cells and the
    digits' ink are really painted.
First it proves it can fail: a deliberately broken page must raise every kind of problem.

Usage:
  Scripts/ci/check_report_in_chromium.py [--lenet PATH] [--data-dir ../shared/mnist]
      [--epochs 2] [--out DIR] [--report REPORT.html]
Without --report it trains (`lenet train --epochs N`, default .build/release/lenet) into
DIR/run and checks that run's report.html. The screenshot is DIR/report.png.
Needs Debian's `chromium` (apt-get install -y chromium). Exit status 1 on any failure.
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib


class Browser:
    """Headless Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary, profile):
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()

        def child_fds():
            # Move both ends above 9 first, so that placing them on 3 and 4 clobbers nothing;
            # dup2 leaves 3 and 4 inheritable, everything else Python opened is close-on-exec.
            high_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--no-default-browser-check", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "--window-size=1200,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=child_fds, close_fds=False)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._write)
        os.close(self._read)

    def _message(self, deadline):
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe (exit code %s)" % self.process.poll())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=None, timeout=60):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method, timeout=60):
        deadline = time.time() + timeout
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def drain(self, seconds):
        """Collects events arriving within `seconds`."""
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                self.send("Runtime.evaluate", {"expression": "1"}, session=self.session, timeout=5)
                time.sleep(0.1)
        except TimeoutError:
            pass

    def open(self, url):
        """A new tab with every problem source enabled, then loads `url` and waits for its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable", session=self.session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=self.session)
        self.wait_for("Page.loadEventFired")
        self.drain(1.0)

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self):
        """Console output, exceptions, log errors/warnings, failed or non-local requests."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
                found.append(f"console.{params.get('type')}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") in ("error", "warning"):
                    found.append(f"log {entry.get('level')} ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.loadingFailed":
                found.append(f"load failed: {params.get('errorText')} ({params.get('type')})")
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
        return found

    def screenshot(self, path):
        metrics = self.send("Page.getLayoutMetrics", session=self.session)
        size = metrics.get("cssContentSize", metrics.get("contentSize"))
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip},
                         session=self.session)
        with open(path, "wb") as file:
            file.write(base64.b64decode(shot["data"]))


def decode_png(path):
    """(width, height, rows of RGB tuples) for an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks += body
        position += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(chunks), width * channels
    rows, previous, offset = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(line)
        previous = line
    return width, height, channels, rows


def count_colours(path, targets, tolerance=40):
    """How many pixels lie within `tolerance` (per channel) of each target colour."""
    width, height, channels, rows = decode_png(path)
    counts = {name: 0 for name in targets}
    for line in rows:
        for x in range(0, width * channels, channels):
            r, g, b = line[x], line[x + 1], line[x + 2]
            for name, (tr, tg, tb) in targets.items():
                if abs(r - tr) <= tolerance and abs(g - tg) <= tolerance and abs(b - tb) <= tolerance:
                    counts[name] += 1
    return width, height, counts


def self_test(browser, directory):
    """The checker must see each kind of problem in a broken page."""
    page = os.path.abspath(os.path.join(directory, "broken.html"))
    with open(page, "w") as file:
        file.write("<!DOCTYPE html><html><body><p>broken</p><img src=\"missing.png\"/>"
                   "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    browser.open("file://" + page)
    found = browser.problems()
    wanted = {"console.error": False, "exception": False, "load failed": False}
    for problem in found:
        for key in wanted:
            wanted[key] = wanted[key] or problem.startswith(key)
    missing = [key for key, seen in wanted.items() if not seen]
    if missing:
        raise SystemExit(f"self-test FAILED: the checker missed {missing} in a broken page (saw {found})")
    print(f"self-test: a broken page raises {len(found)} problems, as it should")


def check_report(browser, report, screenshot, epochs):
    browser.open("file://" + os.path.abspath(report))
    failures = [f"browser: {problem}" for problem in browser.problems()]
    page = browser.evaluate("""JSON.stringify({
        title: document.title,
        charts: Array.from(document.querySelectorAll('#curves g.line-chart')).map(chart =>
            Array.from(chart.querySelectorAll('polyline.series')).map(line => line.points.numberOfItems)),
        cells: document.querySelectorAll('#confusion rect.cell').length,
        images: Array.from(document.images).map(image => image.complete && image.naturalWidth === 56),
        sections: Array.from(document.querySelectorAll('section')).map(section => section.id),
        curvesBox: (() => { const r = document.querySelector('#curves svg').getBoundingClientRect(); return [r.width, r.height]; })()
    })""")
    page = json.loads(page)
    print(f"page: {page['title']!r}, sections {page['sections']}, curves {page['charts']}, "
          f"{page['cells']} matrix cells, {sum(page['images'])}/{len(page['images'])} images decoded")
    if len(page["charts"]) != 2 or any(counts != [epochs, epochs] for counts in page["charts"]):
        failures.append(f"curves: expected 2 charts of 2 series with {epochs} points, got {page['charts']}")
    if page["cells"] != 100:
        failures.append(f"confusion matrix: {page['cells']} cells, expected 100")
    if len(page["images"]) != 40 or not all(page["images"]):
        failures.append(f"images: {sum(page['images'])} of {len(page['images'])} decoded, expected 40 of 40")
    if page["curvesBox"][0] < 400 or page["curvesBox"][1] < 200:
        failures.append(f"curves drawn too small: {page['curvesBox']}")

    browser.screenshot(screenshot)
    width, height, counts = count_colours(screenshot, {
        "training curve (blue)": (0x1F, 0x77, 0xB4), "test curve (orange)": (0xFF, 0x7F, 0x0E),
        "heat map diagonal (dark blue)": (0x08, 0x30, 0x6B), "digit ink (black)": (0, 0, 0)}, tolerance=30)
    print(f"screenshot: {screenshot} ({width}x{height}), pixels: {counts}")
    for name, count in counts.items():
        if count < 300:
            failures.append(f"screenshot shows too little {name}: {count} pixels")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--lenet", default=os.path.join(root, ".build/release/lenet"))
    parser.add_argument("--data-dir", default=os.path.join(root, "../shared/mnist"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=None, help="folder for the run and the screenshot (default: a temporary one)")
    parser.add_argument("--report", default=None, help="check this report.html instead of training")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    args = parser.parse_args()

    out = args.out or tempfile.mkdtemp(prefix="lenet-report-check-")
    os.makedirs(out, exist_ok=True)
    report = args.report
    if report is None:
        run = os.path.join(out, "run")
        command = [args.lenet, "train", "--epochs", str(args.epochs), "--data-dir", args.data_dir,
                   "--no-download", "--output", run, "--overwrite"]
        print("+ " + " ".join(command), flush=True)
        subprocess.run(command, check=True)
        report = os.path.join(run, "report.html")

    profile = tempfile.mkdtemp(prefix="lenet-chromium-profile-")
    browser = Browser(args.chromium, profile)
    try:
        self_test(browser, out)
        failures = check_report(browser, report, os.path.join(out, "report.png"), args.epochs)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print(f"OK: {report} renders in Chromium with no console errors; screenshot {os.path.join(out, 'report.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
