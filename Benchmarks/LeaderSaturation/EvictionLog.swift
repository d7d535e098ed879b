import BrokerReplication
import Foundation

/// Every eviction a leader reported during a scenario, each counted once however many status
/// samples list it.
///
/// An eviction has no identifier of its own, and its `at` cannot serve as one: `status()`
/// turns the monotonic instant into a wall-clock date at each call (the wall clock now minus
/// the eviction's age), so the same eviction comes back with a slightly different date from
/// one sample to the next. Its place in the leader's count can: the status keeps the last
/// `recentEvictions.count` of `evictions` (the total), oldest first, from the same snapshot,
/// so entry `i` is eviction number `total - recentEvictions.count + i` for as long as the
/// leader lives.
struct EvictionLog {
    private(set) var marks: [EvictionMark] = []
    /// How many evictions (by number, from 0) are already in `marks` or were missed.
    private var counted = 0

    /// Adds the evictions in `status` not seen before, placed on the timeline from `loadStart`.
    mutating func record(_ status: LeaderStatus, loadStart: Date) {
        record(total: status.evictions.values.reduce(0, +), recent: status.recentEvictions, loadStart: loadStart)
    }

    /// Adds the evictions numbered `counted` and up among the last `recent.count` of `total`.
    /// Evictions that left `recent` between two calls (more than ``LeaderStatus/Eviction/kept``
    /// at once) are counted in `total` but get no mark.
    mutating func record(total: Int, recent: [LeaderStatus.Eviction], loadStart: Date) {
        let firstNumber = total - recent.count
        for (index, eviction) in recent.enumerated() where firstNumber + index >= counted {
            marks.append(EvictionMark(seconds: eviction.at.timeIntervalSince(loadStart), nodeID: eviction.nodeID, reason: eviction.reason))
        }
        counted = max(counted, total)
    }
}
