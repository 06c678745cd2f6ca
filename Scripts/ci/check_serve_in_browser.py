"""A real browser draws a digit on `lenet serve`'s page and sees the prediction.

Usage: check_serve_in_browser.py --lenet .build/release/lenet --data-dir ../shared/mnist --out DIR
Needs Debian's chromium and chromium-driver and Selenium from PyPI. Trains a checkpoint for
one epoch, starts `lenet serve --port 0` on 127.0.0.1, opens the page in headless Chromium,
draws a "1" and a "7" with pointer events (WebDriver actions), and checks that each is shown
as the prediction with ten probability bars and a 28x28 preview, and that the browser logged
no errors. Exits 1 on any failure; leaves a screenshot in DIR.
"""
import argparse, os, re, subprocess, sys, time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

p = argparse.ArgumentParser()
p.add_argument("--lenet", required=True); p.add_argument("--data-dir", required=True); p.add_argument("--out", required=True)
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
failures = []

run = os.path.join(a.out, "run")
subprocess.run([a.lenet, "train", "--epochs", "1", "--momentum", "0.9", "--seed", "1", "--no-download",
                "--data-dir", a.data_dir, "--output", run, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
server = subprocess.Popen([a.lenet, "serve", "--checkpoint", os.path.join(run, "last.safetensors"), "--port", "0"],
                          stdout=subprocess.PIPE, text=True)
try:
    line = server.stdout.readline()
    match = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
    if not match:
        sys.exit(f"FAILED: lenet serve did not say where it listens: {line!r}")
    url = match.group(1)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=900,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        pad = driver.find_element(By.ID, "pad")

        def draw(strokes):
            """Each stroke: points in the pad's 280x280 coordinates, drawn with a mouse pointer."""
            origin = pad.location, pad.size
            builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_MOUSE, "mouse"))
            for stroke in strokes:
                (x, y), rest = stroke[0], stroke[1:]
                builder.pointer_action.move_to(pad, int(x - 140), int(y - 140)).pointer_down()
                for x, y in rest:
                    for _ in range(4):  # several moves per segment, as a hand would
                        builder.pointer_action.move_to(pad, int(x - 140), int(y - 140))
                builder.pointer_action.pointer_up()
            builder.perform()

        for digit, strokes in (("1", [[(140, 40), (140, 90), (140, 150), (140, 240)]]),
                               ("7", [[(70, 50), (150, 50), (220, 50), (180, 120), (150, 180), (130, 240)]])):
            driver.find_element(By.ID, "clear").click()
            draw(strokes)
            try:
                WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "digit").text != "")
                time.sleep(0.5)  # let the last in-flight prediction land
            except Exception:
                failures.append(f"no prediction shown after drawing a {digit}")
                continue
            shown = driver.find_element(By.ID, "digit").text
            bars = driver.find_elements(By.CSS_SELECTOR, "#bars tr")
            values = [row.find_elements(By.TAG_NAME, "td")[2].text for row in bars]
            ink = driver.execute_script(
                "const d = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;"
                "let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n;")
            print(f"drew a {digit}: shown {shown}; bars {values}; preview pixels with ink: {ink}")
            if shown != digit:
                failures.append(f"drew a {digit}, the page shows {shown!r}")
            if len(bars) != 10 or not all(v.endswith("%") for v in values):
                failures.append(f"expected 10 probability bars with percentages, got {values}")
            if ink < 10:
                failures.append(f"the 28x28 preview shows almost no ink ({ink} pixels)")
        driver.save_screenshot(os.path.join(a.out, "serve.png"))
        for entry in driver.get_log("browser"):
            message = entry["message"]
            # While the first stroke is still a dot the API answers 422 (no digit yet), which
            # the page shows as its status; Chromium logs the status too. Anything else fails.
            expected = "/api/predict" in message and "status of 422" in message
            if entry.get("level") == "SEVERE" and not expected:
                failures.append(f"browser log: {entry['level']} {message}")
    finally:
        driver.quit()
finally:
    server.terminate()
    server.wait(timeout=10)

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"OK: drawing on {url} in headless Chromium shows the predicted digit; screenshot {a.out}/serve.png")
