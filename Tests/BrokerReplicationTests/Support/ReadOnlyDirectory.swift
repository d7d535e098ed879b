#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A directory made read-only: a read-only tmpfs mounted over it (root), or `chmod 0555`
/// (anyone else; root ignores file modes, so this fallback only works without root).
final class ReadOnlyDirectory: Sendable, CustomStringConvertible {
    let path: String
    private let mount: ScratchMount?
    var isMount: Bool { mount != nil }

    init(_ path: String) throws {
        self.path = path
        if geteuid() == 0 {
            mount = try ScratchMount.tmpfs(at: path, options: "ro,size=1m")
        } else {
            mount = nil
            guard chmod(path, 0o555) == 0 else { throw DiskTestFailure("chmod 0555 \(path): errno \(errno)") }
        }
    }

    /// Writable again: unmounted, or back to mode 0755.
    func restore() {
        if let mount { mount.unmount() } else { _ = chmod(path, 0o755) }
    }

    var description: String {
        isMount ? "a read-only tmpfs mounted over \(path)" : "\(path) made read-only with chmod 0555 (not root)"
    }
}
