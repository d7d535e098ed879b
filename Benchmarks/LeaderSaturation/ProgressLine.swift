import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One status line on stderr, rewritten in place with a carriage return while a scenario
/// runs, so stdout keeps only the results.
final class ProgressLine: Sendable {
    private let shownCharacters = Mutex(0)
    private let isTerminal = isatty(STDERR_FILENO) == 1

    func update(_ text: String) {
        shownCharacters.withLock { shown in
            // On a terminal, erase to the end of the line; elsewhere, pad over the old text.
            let padding = isTerminal ? "\u{1B}[K" : String(repeating: " ", count: max(0, shown - text.count))
            FileHandle.standardError.write(Data(("\r" + text + padding).utf8))
            shown = text.count
        }
    }

    /// Ends the current line, if one is shown.
    func finish() {
        shownCharacters.withLock { shown in
            if shown > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
            shown = 0
        }
    }

    /// A line of its own on stderr (ends the progress line first).
    func note(_ text: String) {
        finish()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
