import ArgumentParser

/// A `HOST:PORT` address from the command line; IPv6 hosts go in brackets (`[::1]:7000`).
struct HostPort: Sendable, Equatable, CustomStringConvertible {
    var host: String
    var port: Int

    /// Parses `text`, naming `flag` in the error when it is not a usable address.
    ///
    /// - Parameters:
    ///   - text: the value as given.
    ///   - flag: the option it came from, for the error message (`--listen`).
    ///   - ports: the ports that flag accepts (0 only where the system may pick one).
    init(parsing text: String, flag: String, ports: ClosedRange<Int>) throws {
        func invalid(_ why: String) -> ValidationError {
            ValidationError("\(flag): expects HOST:PORT (for example 127.0.0.1:7000 or [::1]:7000), got \(text.debugDescription): \(why)")
        }
        guard let colon = text.lastIndex(of: ":") else { throw invalid("no port") }
        var host = Substring(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            throw invalid("put an IPv6 host in brackets")
        }
        guard !host.isEmpty else { throw invalid("no host") }
        guard let port = Int(portText), portText.allSatisfy(\.isASCII) else { throw invalid("the port is not a number") }
        guard ports.contains(port) else { throw invalid("the port must be \(ports.lowerBound)...\(ports.upperBound)") }
        self.host = String(host)
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
