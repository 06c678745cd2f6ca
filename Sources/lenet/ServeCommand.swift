import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdCore
import LeNetKit
import NIOCore
import NIOHTTPTypes
import Synchronization

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "A web page to draw digits on and see the network's guesses live, and a JSON API.",
        discussion: """
        GET / is the drawing page; POST /api/predict takes a PNG body or JSON {"pixels": [784 numbers]} \
        and answers {"digit", "probabilities", "pixels"} (the 28x28 the network saw); GET /healthz; HEAD \
        wherever GET works. Bodies over 1 MB and pictures over 4,194,304 pixels (2048x2048) get 413, \
        malformed input 400, 415 or 422, each with {"error": "..."}. At most --max-predictions run at \
        once; later ones wait their turn (up to --max-waiting, beyond that 503). A connection idle, or \
        sending one request, for --idle-timeout seconds is closed. With --device opencl or cuda the \
        network runs on that GPU: pictures are still prepared side by side on the CPU, and the \
        predictions take turns on the one network, as they do on the CPU backend.
        """
    )

    @Option(help: "The checkpoint (.safetensors).")
    var checkpoint: String

    @Option(help: "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    var host = "127.0.0.1"

    @Option(parsing: .unconditional, help: "Port (0: any free port, printed on start).")
    var port = 8080

    @Option(parsing: .unconditional, help: "Seconds after which an idle connection, or one still sending its request, is closed.")
    var idleTimeout = 30

    @Option(name: .customLong("max-predictions"), parsing: .unconditional,
            help: "Predictions computed at once (default: every core, \(ServeCommand.cores) here); more wait their turn.")
    var maxPredictionsOption: Int?

    @Option(parsing: .unconditional, help: "Predictions that may wait their turn; beyond them the answer is 503.")
    var maxWaiting = 256

    @OptionGroup var deviceChoice: DeviceOptions

    private static var cores: Int { min(256, ProcessInfo.processInfo.activeProcessorCount) }
    var maxPredictions: Int { maxPredictionsOption ?? Self.cores }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard (1...3600).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be in 1...3600 seconds") }
        guard (1...256).contains(maxPredictions) else { throw ValidationError("--max-predictions must be in 1...256") }
        guard (0...4096).contains(maxWaiting) else { throw ValidationError("--max-waiting must be in 0...4096") }
    }

    func run() async throws {
        // One network, whichever the device: predictions prepare their pictures side by side
        // and take turns on it (the Predictor's lock).
        let device = try deviceChoice.makeDevice(cpuThreads: 1)
        let predictor = try Predictor(checkpointPath: checkpoint, device: device)
        let onGPU = deviceChoice.kind == .cpu ? "" : " with \(device.name)"  // the CPU's line stays as it was
        let api = PredictionAPI(predictor: predictor, maxBodyBytes: 1 << 20)
        let gate = PredictionGate(running: maxPredictions, waiting: maxWaiting)
        // HEAD answers wherever GET does: the same status and headers, no body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: JSONErrorMiddleware())
        router.get("/") { _, _ in
            Self.reply(200, DrawPage.html, type: "text/html; charset=utf-8")
        }
        router.get("/healthz") { _, _ in Self.reply(api.health) }
        router.post("/api/predict") { request, _ -> Response in
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > api.maxBodyBytes {
                return Self.reply(api.tooLarge())
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: api.maxBodyBytes)
            } catch {
                return Self.reply(api.tooLarge())
            }
            let bytes = [UInt8](body.readableBytesView), type = request.headers[.contentType]
            guard let reply = await gate.run({ api.predict(body: bytes, contentType: type) }) else {
                return Self.reply(PredictionAPI.error(503, "busy: \(gate.running) predictions running and \(gate.waiting) waiting; try again shortly"))
            }
            return Self.reply(reply)
        }
        let listening = Atomic<Bool>(false)
        let app = Application(
            router: router,
            server: .http1(configuration: .init(
                additionalChannelHandlers: [RequestReadDeadline(seconds: Int64(idleTimeout))],
                idleTimeout: .seconds(Int64(idleTimeout)))),
            configuration: .init(address: .hostname(host, port: port), serverName: "lenet"),
            onServerRunning: { channel in
                listening.store(true, ordering: .relaxed)
                let bound = channel.localAddress?.port ?? port
                // Unbuffered, so that a parent process reading the pipe sees it at once.
                let line = "Serving \(predictor.checkpoint.variant.rawValue) from \(checkpoint)\(onGPU) on http://\(host):\(bound)/\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        )
        do {
            try await app.runService()
        } catch where !listening.load(ordering: .relaxed) {
            // The server never started: most often the address. Say which, in words.
            let reason = "\(error)".contains("Address already in use")
                ? "the port is in use (choose another with --port, or --port 0 for any free one)" : "\(error)"
            throw CommandError("cannot listen on \(host):\(port): \(reason)")
        }
    }

    static func reply(_ reply: PredictionAPI.Reply) -> Response {
        self.reply(reply.status, reply.body, type: "application/json")
    }

    static func reply(_ status: Int, _ text: String, type: String) -> Response {
        Response(status: .init(code: status), headers: [.contentType: type, .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Runs predictions, at most `running` at once, each on a Dispatch thread: never on Swift's
/// cooperative threads (one per core), so a burst of large pictures cannot leave none free
/// for `/healthz` or for reading other requests. Later calls wait their turn in order, up to
/// `waiting` of them; beyond that `run` returns nil at once (the server answers 503).
final class PredictionGate: Sendable {
    let running: Int, waiting: Int
    private struct State {
        var running = 0
        var queue: [CheckedContinuation<Bool, Never>] = []
    }
    private let state = Mutex(State())
    private let threads = DispatchQueue(label: "lenet.predictions", attributes: .concurrent)

    init(running: Int, waiting: Int) {
        self.running = running
        self.waiting = waiting
    }

    private enum Admission { case now, queued, refused }

    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T? {
        let admitted: Bool = await withCheckedContinuation { (turn: CheckedContinuation<Bool, Never>) in
            let admission: Admission = state.withLock { state in
                if state.running < running {
                    state.running += 1
                    return .now
                }
                guard state.queue.count < waiting else { return .refused }
                state.queue.append(turn)
                return .queued
            }
            switch admission {
            case .now: turn.resume(returning: true)
            case .refused: turn.resume(returning: false)
            case .queued: break  // resumed by `release` when a running prediction ends
            }
        }
        guard admitted else { return nil }
        defer { release() }
        return await withCheckedContinuation { done in
            threads.async { done.resume(returning: work()) }
        }
    }

    /// Hands the finished prediction's slot to the longest-waiting call, if any.
    private func release() {
        let next: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if state.queue.isEmpty {
                state.running -= 1
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.resume(returning: true)  // the slot passes on: `running` stays as it is
    }
}

/// Closes a connection whose request (head to end) is not all received within `seconds`:
/// Hummingbird's idle timeout restarts with every piece read, so a body sent a byte at a
/// time would otherwise hold the connection, and a file descriptor, for good.
final class RequestReadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    let seconds: Int64
    private var deadline: Scheduled<Void>?

    init(seconds: Int64) { self.seconds = seconds }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(seconds)) {
                context.close(promise: nil)
            }
        case .body:
            break
        case .end:
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }
}

/// Errors the router raises itself (an unknown path, a wrong method) as the API's other
/// errors are: `{"error": "..."}`, so a client never has to parse an HTML or empty body.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPResponseError {
            let status = error.status
            let message = status == .notFound ? "no \(request.method) \(request.uri.path) here: see GET /, POST /api/predict, GET /healthz"
                                              : "\(status.code) \(status.reasonPhrase)"
            return ServeCommand.reply(PredictionAPI.error(status.code, message))
        }
    }
}

/// The drawing page: a canvas for mouse, pen and touch (pointer events), live probability
/// bars, and the 28x28 the network saw.
enum DrawPage {
    static let html = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lenet: draw a digit</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
  main { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
  #pad { border: 1px solid #888; background: #fff; touch-action: none; cursor: crosshair; width: 280px; height: 280px; }
  #preview { border: 1px solid #888; image-rendering: pixelated; width: 112px; height: 112px; background: #000; }
  #bars { border-collapse: collapse; }
  #bars td { padding: 2px 6px; }
  .bar { display: inline-block; height: 14px; background: #3a6ea5; }
  .best .bar { background: #d2691e; }
  #digit { font-size: 3em; font-weight: bold; min-height: 1.2em; }
  button { font-size: 1em; padding: 0.3em 1em; }
  #status { color: #a00; min-height: 1.2em; }
  #hint { color: #555; margin: 0 0 0.5em; }
</style>
</head>
<body>
<h1>Draw a digit</h1>
<main>
  <div>
    <p id="hint">Draw one digit (0 to 9) in the white box with the mouse, a pen or a finger; the guess updates as you draw.</p>
    <canvas id="pad" width="280" height="280"></canvas><br>
    <button id="clear" type="button">Clear</button>
    <p id="status"></p>
  </div>
  <div>
    <div>Prediction: <span id="digit"></span></div>
    <table id="bars"></table>
  </div>
  <div>
    <div>What the network saw (28x28)</div>
    <canvas id="preview" width="28" height="28"></canvas>
  </div>
</main>
<script>
"use strict";
const pad = document.getElementById("pad"), ctx = pad.getContext("2d");
const preview = document.getElementById("preview").getContext("2d");
const bars = document.getElementById("bars"), digitOut = document.getElementById("digit");
const statusOut = document.getElementById("status"), hint = document.getElementById("hint");
const rows = [];
for (let d = 0; d < 10; d++) {
  const tr = bars.insertRow(), label = tr.insertCell(), cell = tr.insertCell(), value = tr.insertCell();
  label.textContent = d;
  const bar = document.createElement("span"); bar.className = "bar"; bar.style.width = "0px";
  cell.appendChild(bar); cell.style.width = "210px";
  rows.push({ tr, bar, value });
}
function clearPad() {
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
  preview.clearRect(0, 0, 28, 28); digitOut.textContent = ""; statusOut.textContent = "";
  for (const r of rows) { r.bar.style.width = "0px"; r.value.textContent = ""; r.tr.className = ""; }
  inked = false; hint.style.visibility = "visible";
}
let drawing = false, last = null, inked = false, busy = false, again = false;
function point(e) {
  const box = pad.getBoundingClientRect();
  return { x: (e.clientX - box.left) * pad.width / box.width, y: (e.clientY - box.top) * pad.height / box.height };
}
function stroke(to) {
  ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(to.x, to.y); ctx.stroke();
  last = to; inked = true; hint.style.visibility = "hidden"; schedule();  // hidden, not removed: the pad must not move mid-stroke
}
pad.addEventListener("pointerdown", e => {
  e.preventDefault(); pad.setPointerCapture(e.pointerId); drawing = true; last = point(e); stroke(point(e));
});
pad.addEventListener("pointermove", e => {
  if (!drawing) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const c of (events.length ? events : [e])) stroke(point(c));
});
for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
  pad.addEventListener(name, () => { if (drawing) { drawing = false; schedule(); } });
}
document.getElementById("clear").addEventListener("click", clearPad);
function schedule() { if (busy) { again = true; } else { predict(); } }
async function predict() {
  if (!inked) return;
  busy = true; again = false;
  try {
    const blob = await new Promise(done => pad.toBlob(done, "image/png"));
    const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
    const answer = await response.json();
    if (!response.ok) { statusOut.textContent = answer.error || response.statusText; return; }
    if (!inked) return;
    statusOut.textContent = "";
    show(answer);
  } catch (error) {
    statusOut.textContent = String(error);
  } finally {
    busy = false;
    if (again) setTimeout(schedule, 0);
  }
}
function show(answer) {
  digitOut.textContent = answer.digit;
  answer.probabilities.forEach((p, d) => {
    rows[d].bar.style.width = Math.round(p * 200) + "px";
    rows[d].value.textContent = (p * 100).toFixed(1) + "%";
    rows[d].tr.className = d === answer.digit ? "best" : "";
  });
  const image = preview.createImageData(28, 28);
  answer.pixels.forEach((v, i) => {
    const level = Math.round(v * 255);
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = level; image.data[4 * i + 3] = 255;
  });
  preview.putImageData(image, 0, 0);
}
clearPad();
</script>
</body>
</html>
"""#
}
