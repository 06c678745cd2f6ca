import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tiny HTTP server on 127.0.0.1 (ephemeral port) inside the test process,
/// serving the files of one directory. The first path component picks how it
/// misbehaves, so one server provides several mirrors:
/// `/serve/NAME` serves NAME; `/corrupt/NAME` flips one byte in the middle;
/// `/cutoff/NAME` announces the full length, sends half, then closes;
/// `/stall/NAME` reads the request and never answers; anything else is a 404.
/// One thread accepts; each connection gets its own thread.
final class HTTPTestServer: @unchecked Sendable {
    enum Mode: String, CaseIterable { case serve, corrupt, cutoff, stall }

    let port: UInt16
    private let root: String
    private let listener: Int32
    private let lock = NSLock()
    private var paths: [String] = []
    private var stopped = false

    init(root: String) throws {
        self.root = root
        let socketKind = Int32(SOCK_STREAM.rawValue)
        let listener = socket(AF_INET, socketKind, 0)
        guard listener >= 0 else { throw ServerError("socket failed") }
        self.listener = listener
        var address = sockaddr_in.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                bind(listener, sockaddrPointer, length) == 0
                    && listen(listener, 16) == 0
                    && getsockname(listener, sockaddrPointer, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw ServerError("bind/listen failed")
        }
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// Base URL of a mirror behaving as `mode` (ends in `/`).
    func mirror(_ mode: Mode) -> URL {
        URL(string: "http://127.0.0.1:\(port)/\(mode.rawValue)/")!
    }

    /// Paths requested so far, in order.
    var requests: [String] { lock.withLock { paths } }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// A URL on 127.0.0.1 where nothing listens: connections are refused.
    static func deadMirror() throws -> URL {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0
            }
        }
        guard bound else { throw ServerError("probe bind failed") }
        return URL(string: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))/dead/")!
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if errno == EINTR { continue }
                return  // the listener was closed by stop()
            }
            Thread { [self] in
                handle(connection)
                close(connection)
            }.start()
        }
    }

    private func handle(_ connection: Int32) {
        guard let path = readRequestPath(connection) else { return }
        lock.withLock { paths.append(path) }
        let parts = path.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let mode = Mode(rawValue: parts[0]),
              let data = FileManager.default.contents(atPath: root + "/" + parts[1]) else {
            send(connection, Array("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".utf8))
            return
        }
        var body = [UInt8](data)
        let header = Array("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        switch mode {
        case .serve:
            send(connection, header + body)
        case .corrupt:
            body[body.count / 2] ^= 0xFF
            send(connection, header + body)
        case .cutoff:
            send(connection, header + body[..<(body.count / 2)])
        case .stall:
            // Hold the connection silently until the client gives up or the server stops.
            for _ in 0..<300 where !lock.withLock({ stopped }) { usleep(20_000) }
        }
    }

    /// Reads up to the blank line and returns the path of `GET /path HTTP/1.x`, without the leading `/`.
    private func readRequestPath(_ connection: Int32) -> String? {
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !request.ends(with: Array("\r\n\r\n".utf8)) && request.count < 65536 {
            let n = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return nil }
            request += chunk[..<n]
        }
        let line = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first ?? ""
        let words = line.split(separator: " ")
        guard words.count >= 2, words[0] == "GET" else { return nil }
        return String(words[1].dropFirst())
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a client that hung up must not SIGPIPE the test process.
            let n = bytes.withUnsafeBytes { Glibc.send(connection, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}

struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private extension sockaddr_in {
    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian  // 127.0.0.1
        return address
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
