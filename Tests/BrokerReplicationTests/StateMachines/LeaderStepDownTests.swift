import Testing

@testable import BrokerReplication

@Suite("Leader state machine: stepping down")
struct LeaderStepDownTests {
    typealias Machine = LeaderStateMachineTests.Machine

    @Test func waitingConfirmsFailWithNotLeaderAndLaterOnesAtOnce() throws {
        let clock = ManualClock()
        var machine = Machine(settings: LeaderStateMachineTests.settings(), files: [])
        _ = try LeaderStateMachineTests.twoInSyncFollowers(in: &machine, at: clock.now)
        let lsn = LeaderStateMachineTests.append(10, to: &machine, at: clock.now).lsn
        #expect(!machine.requestConfirm(lsn, waiter: 7, timeout: .seconds(60), at: clock.now).confirmed)

        let failed = machine.stepDown(reason: "the election lease was lost").failed
        #expect(failed.map(\.0) == [7])
        #expect(failed.first?.1.isNotLeader == true && failed.first?.1.message.contains("the election lease was lost") == true)
        let later = machine.requestConfirm(lsn, waiter: 8, timeout: .seconds(60), at: clock.now)
        #expect(!later.confirmed && later.actions.failed.map(\.0) == [8])
        #expect(machine.stepDown(reason: "again").failed.isEmpty, "only the first reason counts")
        #expect(machine.steppedDown == "the election lease was lost")
    }
}
