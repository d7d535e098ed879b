/// An error the module reports to the embedding broker, with a message a person can act on.
///
/// A public struct around a private code, so that new cases can be added without breaking
/// callers.
public struct ReplicationError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Code: Hashable, Sendable {
        case invalidSecret
        case invalidConfiguration
        case wire
    }

    package let code: Code
    /// What went wrong and, where it helps, what to do about it.
    public let message: String

    package init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The shared secret is missing, unreadable or too short.
    public static func invalidSecret(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidSecret, message: message)
    }

    /// A configuration value is out of range.
    public static func invalidConfiguration(_ message: String) -> ReplicationError {
        ReplicationError(code: .invalidConfiguration, message: message)
    }

    public var description: String { message }
}
