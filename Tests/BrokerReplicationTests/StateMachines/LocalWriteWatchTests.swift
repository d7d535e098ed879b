import Foundation
import Testing

@testable import BrokerReplication

/// A stalled local write is seen by the stall check whether it still runs or has finished by
/// the time the check runs (the stall may have held the thread the check runs on).
@Suite("Local write watch")
struct LocalWriteWatchTests {
    @Test func aWriteThatStalledAndFinishedIsStillReportedOnce() {
        let watch = LocalWriteWatch()
        #expect(watch.takeLongestFinished() == .zero)
        watch.measure { usleep(60_000) }
        watch.measure {}
        #expect(watch.oldestAge(at: .now) == nil)
        #expect(watch.takeLongestFinished() >= .milliseconds(60))
        #expect(watch.takeLongestFinished() == .zero)
    }

    @Test func aWriteInProgressAgesUntilItFinishes() {
        let watch = LocalWriteWatch()
        watch.measure {
            let age = watch.oldestAge(at: .now + .seconds(5))
            #expect(age.map { $0 >= .seconds(5) } == true)
        }
        #expect(watch.oldestAge(at: .now) == nil)
    }
}
