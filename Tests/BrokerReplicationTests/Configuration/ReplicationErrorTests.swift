import BrokerReplicationTesting
import Foundation
import NIOCore
import Testing

@_spi(Benchmarks) @testable import BrokerReplication

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a broker sees when something fails: one `ReplicationError` whose `code` it can match,
/// with the message it had before.
@Suite("Replication errors")
struct ReplicationErrorTests {
    /// What a broker would do with each code: the codes it must tell apart.
    private static func reaction(to error: ReplicationError) -> String {
        switch error.code {
        case .notEnoughReplicas, .writeTimedOut: "retry"
        case .partialWrite: "continue"
        case .invalidPath: "reject"
        case .storage: "alert"
        case .invalidConfiguration, .invalidSecret: "fix the configuration"
        default: "other"
        }
    }

    static let allCodes: [ReplicationError.Code] = [
        .notEnoughReplicas, .writeTimedOut, .partialWrite, .invalidPath, .storage, .invalidConfiguration,
        .invalidSecret, .handshakeRefused, .protocolViolation, .coordination, .promotionRefused,
    ]

    @Test func everyCodeIsDistinctAndNamedAsSpelled() {
        #expect(Set(Self.allCodes).count == Self.allCodes.count)
        #expect(Self.allCodes.map(\.description) == [
            "notEnoughReplicas", "writeTimedOut", "partialWrite", "invalidPath", "storage", "invalidConfiguration",
            "invalidSecret", "handshakeRefused", "protocolViolation", "coordination", "promotionRefused",
        ])
    }

    @Test func theStaticConstructorsKeepTheirCodesAndProperties() {
        let error = ReplicationError.notEnoughReplicas("1 of 2 in-sync followers hold LSN 7")
        #expect(error.code == .notEnoughReplicas)
        #expect(error.isNotEnoughReplicas && !error.isWriteTimedOut && !error.isPartialWrite && !error.isPromotionRefused)
        #expect(error.message == "1 of 2 in-sync followers hold LSN 7" && "\(error)" == error.message)
        #expect(Self.reaction(to: error) == "retry")
        #expect(ReplicationError.writeTimedOut("w").code == .writeTimedOut && ReplicationError.writeTimedOut("w").isWriteTimedOut)
        #expect(ReplicationError.partialWrite("p").code == .partialWrite && ReplicationError.partialWrite("p").isPartialWrite)
        #expect(ReplicationError.promotionRefused("r").code == .promotionRefused && ReplicationError.promotionRefused("r").isPromotionRefused)
        #expect(ReplicationError.invalidSecret("s").code == .invalidSecret)
        #expect(ReplicationError.invalidConfiguration("c").code == .invalidConfiguration)
        #expect(ReplicationError.coordination("c").code == .coordination)
        #expect(ReplicationError.notEnoughReplicas("a") != ReplicationError.writeTimedOut("a"))
    }

    // MARK: Thrown by the public API

    @Test func aBadPathIsInvalidPathWithItsMessage() async throws {
        let direct = #expect(throws: ReplicationError.self) { try ReplicatedPath("queues/../../etc") }
        #expect(direct?.code == .invalidPath)
        #expect(direct?.message == #"invalid path "queues/../../etc": contains ".."; paths must stay inside the data directory"#)

        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        for write in [
            { try await leader.append(to: "/abs", bytes: [1]) },
            { try await leader.append(to: "/abs", contentsOf: [[UInt8]]([[1]])) },
            { try await leader.replace("/abs", contents: [1]) },
            { try await leader.delete("/abs") },
        ] as [() async throws -> UInt64] {
            let error = await #expect(throws: ReplicationError.self) { try await write() }
            #expect(error?.code == .invalidPath && error?.message.contains("absolute") == true, "\(String(describing: error))")
            #expect(error.map(Self.reaction) == "reject")
        }
        #expect(leader.lastLSN == 0)
    }

    @Test(arguments: [
        (["BRPL_DURABILITY": "sometimes"], #"durability: must be "fsync" or "none", got "sometimes""#),
        (["BRPL_POLICY": "waitForEveryone"], #"policy: must be "evictSlowFollowers" or "minInSyncReplicas", got "waitForEveryone""#),
        (["BRPL_QUEUE_BYTES": "-1"], "queueBytes: must be positive, got -1"),
    ])
    func aWrongConfigurationValueIsInvalidConfiguration(environment: [String: String], message: String) async {
        let error = await #expect(throws: ReplicationError.self) { try await ReplicationConfiguration.load(file: nil, environment: environment) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message == message)
        #expect(error.map(Self.reaction) == "fix the configuration")
    }

    @Test func aDataDirectoryThatIsARegularFileIsStorage() throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let path = cluster.root + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        var leaderConfiguration = cluster.leaderConfiguration()
        leaderConfiguration.dataDirectory = path
        let leaderError = #expect(throws: ReplicationError.self) {
            _ = try ReplicationLeader(configuration: leaderConfiguration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        }
        #expect(leaderError?.code == .storage)
        #expect(leaderError?.message == "open data directory \(path): Not a directory (errno \(ENOTDIR))")
        #expect(leaderError.map(Self.reaction) == "alert")

        var followerConfiguration = cluster.followerConfiguration("f1", port: 1)
        followerConfiguration.dataDirectory = path
        let followerError = #expect(throws: ReplicationError.self) {
            _ = try ReplicationFollower(configuration: followerConfiguration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        }
        #expect(followerError?.code == .storage && followerError?.message == leaderError?.message)
    }

    @Test func aWriteThatFailsOnTheDiskIsStorage() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let leader = try ReplicationLeader(configuration: cluster.leaderConfiguration(), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        try await leader.append(to: "a", bytes: [1])
        // `a` is a regular file, so `a/b` fails with ENOTDIR.
        for write in [
            { try await leader.append(to: "a/b", bytes: [1]) },
            { try await leader.append(to: "a/b", contentsOf: [[UInt8]]([[1], [2]])) },
            { try await leader.replace("a/b", contents: [1]) },
        ] as [() async throws -> UInt64] {
            let error = await #expect(throws: ReplicationError.self) { try await write() }
            #expect(error?.code == .storage, "\(String(describing: error))")
            #expect(error?.message.contains("Not a directory (errno \(ENOTDIR))") == true, "\(String(describing: error))")
            guard case .storage(let underlying) = error?.underlying else {
                Issue.record("the storage error is carried inside: \(String(describing: error))")
                continue
            }
            #expect(underlying.errno == ENOTDIR)
        }
        #expect(leader.lastLSN == 1, "nothing replicated for the failed writes")
    }

    @Test func internalErrorsBecomeReplicationErrorsWithTheSameMessage() {
        let storage = StorageError(operation: "write queues/q1/segment", errno: ENOSPC)
        let wire = WireError(.checksumMismatch(type: .data, expected: 1, computed: 2))
        let path = WireError(.invalidPath(path: "..", reason: "contains \"..\""))
        #expect((ReplicationError.publicError(for: storage) as? ReplicationError)?.code == .storage)
        #expect((ReplicationError.publicError(for: storage) as? ReplicationError)?.message == storage.description)
        #expect((ReplicationError.publicError(for: wire) as? ReplicationError)?.code == .protocolViolation)
        #expect((ReplicationError.publicError(for: wire) as? ReplicationError)?.message == wire.description)
        #expect((ReplicationError.publicError(for: path) as? ReplicationError)?.code == .invalidPath)
        #expect(ReplicationError.publicError(for: CancellationError()) is CancellationError)
        let own = ReplicationError.writeTimedOut("w")
        #expect((ReplicationError.publicError(for: own) as? ReplicationError) == own)
    }

    @Test func aFollowersLastErrorCodeTellsARefusedHandshakeApart() {
        func refused(_ code: Refusal.Code) -> LeaderLink.Refused { LeaderLink.Refused(refusal: Refusal(code: code, reason: "why")) }
        for code in [Refusal.Code.wrongCluster, .authenticationFailed, .duplicateNode, .unsupportedVersion, .shuttingDown] {
            #expect(ReplicationFollower.lastErrorCode(for: refused(code)) == .handshakeRefused, "\(code)")
        }
        #expect(ReplicationFollower.lastErrorCode(for: refused(.protocolViolation)) == .protocolViolation)
        #expect(ReplicationFollower.lastErrorCode(for: refused(.diskError)) == .storage)
        #expect(ReplicationFollower.lastErrorCode(for: StorageError(operation: "fsync", errno: EIO)) == .storage)
        #expect(ReplicationFollower.lastErrorCode(for: ApplyError.storage(StorageError(operation: "fsync", errno: EIO))) == .storage)
        #expect(ReplicationFollower.lastErrorCode(for: ApplyError.inconsistent("gap")) == .protocolViolation)
        #expect(ReplicationFollower.lastErrorCode(for: WireError(.unknownFrameType(0x7E))) == .protocolViolation)
        #expect(ReplicationFollower.lastErrorCode(for: LeaderLink.LeaderSilent()) == nil)
    }

    // MARK: JSON stays as it was

    private static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static let at = Date(timeIntervalSince1970: 1_750_000_000.25)

    static func status(policy: ReplicationPolicy) -> LeaderStatus {
        func follower(_ nodeID: String, _ state: LeaderStatus.FollowerState) -> LeaderStatus.Follower {
            LeaderStatus.Follower(
                nodeID: nodeID, address: "127.0.0.1:4000", state: state, ackedLSN: 5, sentLSN: 9, lagLSNs: 4, lagBytes: 100,
                lagSeconds: 0.5, queuedBytes: 10, queuedFrames: 1, sentBytes: 1000, ackedBytes: 900,
                fullSync: state == .syncing
                    ? SyncProgress(cutLSN: 3, filesDone: 1, files: 2, bytesDone: 10, bytes: 20, bytesKept: 4, bytesPerSecond: 5, secondsLeft: 2) : nil
            )
        }
        return LeaderStatus(
            nodeID: "leader", epoch: 3, policy: policy, isr: ["f1"], confirmedLSN: 5, notEnoughReplicasErrors: 2,
            throttledProducers: 0, lastLSN: 9,
            followers: [follower("f1", .live), follower("f2", .catchingUp), follower("f3", .syncing)],
            evictions: [.queueFull: 2, .ackTimeout: 1, .diskError: 1],
            recentEvictions: [
                LeaderStatus.Eviction(nodeID: "f2", reason: .queueFull, detail: "outbound queue full", at: at),
                LeaderStatus.Eviction(nodeID: "f3", reason: .ackTimeout, detail: "no ack for 3 s", at: at),
            ],
            fullSyncs: 1, partialResyncs: 2, epochResumes: 1, fullSyncBytes: 4096, fullSyncWireBytes: 5000, sealedBatches: 7, payloadBytes: 700, wireBytes: 350, backlogBytes: 350, backlogFirstLSN: 1
        )
    }

    /// The status as it was encoded when these fields were strings.
    private struct StringTypedLeaderStatus: Encodable {
        struct Follower: Encodable {
            var nodeID: String
            var address: String
            var state: String
            var ackedLSN: UInt64
            var sentLSN: UInt64
            var lagLSNs: UInt64
            var lagBytes: Int
            var lagSeconds: Double
            var queuedBytes: Int
            var queuedFrames: Int
            var sentBytes: Int
            var ackedBytes: Int
            var fullSync: SyncProgress?
        }

        struct Eviction: Encodable {
            var nodeID: String
            var reason: String
            var detail: String
            var at: Date
        }

        var nodeID: String
        var epoch: UInt64
        var policy: String
        var isr: [String]
        var confirmedLSN: UInt64
        var notEnoughReplicasErrors: Int
        var throttledProducers: Int
        var lastLSN: UInt64
        var followers: [Follower]
        var evictions: [String: Int]
        var recentEvictions: [Eviction]
        var fullSyncs: Int
        var partialResyncs: Int
        var epochResumes: Int
        var fullSyncBytes: Int
        var fullSyncWireBytes: Int
        var sealedBatches: Int
        var payloadBytes: Int
        var wireBytes: Int
        var backlogBytes: Int
        var backlogFirstLSN: UInt64?

        /// Built the way `status()` built it: each typed value through the strings it used.
        init(_ status: LeaderStatus, policy: String) {
            nodeID = status.nodeID
            epoch = status.epoch
            self.policy = policy
            isr = status.isr
            confirmedLSN = status.confirmedLSN
            notEnoughReplicasErrors = status.notEnoughReplicasErrors
            throttledProducers = status.throttledProducers
            lastLSN = status.lastLSN
            followers = status.followers.map { follower in
                let state: String = switch follower.state {
                case .syncing: "syncing"
                case .catchingUp: "catching-up"
                case .live: "live"
                }
                return Follower(
                    nodeID: follower.nodeID, address: follower.address, state: state, ackedLSN: follower.ackedLSN,
                    sentLSN: follower.sentLSN, lagLSNs: follower.lagLSNs, lagBytes: follower.lagBytes, lagSeconds: follower.lagSeconds,
                    queuedBytes: follower.queuedBytes, queuedFrames: follower.queuedFrames, sentBytes: follower.sentBytes,
                    ackedBytes: follower.ackedBytes, fullSync: follower.fullSync
                )
            }
            evictions = Dictionary(uniqueKeysWithValues: status.evictions.map { ($0.key.rawValue, $0.value) })
            recentEvictions = status.recentEvictions.map { Eviction(nodeID: $0.nodeID, reason: $0.reason.rawValue, detail: $0.detail, at: $0.at) }
            fullSyncs = status.fullSyncs
            partialResyncs = status.partialResyncs
            epochResumes = status.epochResumes
            fullSyncBytes = status.fullSyncBytes
            fullSyncWireBytes = status.fullSyncWireBytes
            sealedBatches = status.sealedBatches
            payloadBytes = status.payloadBytes
            wireBytes = status.wireBytes
            backlogBytes = status.backlogBytes
            backlogFirstLSN = status.backlogFirstLSN
        }
    }

    @Test(arguments: [
        (ReplicationPolicy.evictSlowFollowers, "evict-slow-followers"),
        (ReplicationPolicy.minInSyncReplicas(2), "min-in-sync-replicas(2)"),
    ])
    func theLeaderStatusEncodesTheTypedFieldsAsTheSameStrings(policy: ReplicationPolicy, name: String) throws {
        let status = Self.status(policy: policy)
        let json = try Self.json(status)
        for fragment in [
            #""policy":"\#(name)""#, #""state":"live""#, #""state":"catching-up""#, #""state":"syncing""#,
            #""evictions":{"ack-timeout":1,"disk-error":1,"queue-full":2}"#, #""reason":"queue-full""#, #""reason":"ack-timeout""#,
        ] {
            #expect(json.contains(fragment), "\(fragment) in \(json)")
        }
        #expect(json == (try Self.json(StringTypedLeaderStatus(status, policy: name))), "byte for byte as before")
        #expect(try JSONDecoder().decode(LeaderStatus.self, from: Data(json.utf8)) == status)
    }

    @Test func theFollowerStatusEncodesAsBeforeWithoutItsErrorCode() throws {
        var status = ReplicationFollower.FollowerStatus()
        status.phase = .streaming
        status.lastError = "refused by the leader (wrong-cluster): cluster \"a\" is not \"b\""
        status.lastErrorCode = .handshakeRefused
        let json = try Self.json(status)
        #expect(json == #"{"connects":0,"epoch":0,"fullSyncs":0,"groupCommits":0,"lastAckedLSN":0,"lastDurableLSN":0,"lastError":"refused by the leader (wrong-cluster): cluster \"a\" is not \"b\"","phase":"streaming","resumes":0}"#)
        var decoded = try JSONDecoder().decode(ReplicationFollower.FollowerStatus.self, from: Data(json.utf8))
        #expect(decoded.lastErrorCode == nil)
        decoded.lastErrorCode = .handshakeRefused
        #expect(decoded == status)
    }

    @Test func theConfigurationFileAndEnvironmentKeepTheirValues() async throws {
        var configuration = ReplicationConfiguration()
        configuration.policy = .minInSyncReplicas
        configuration.minInSyncReplicas = 2
        configuration.durability = .none
        let json = try Self.json(configuration)
        #expect(json.contains(#""policy":"minInSyncReplicas""#) && json.contains(#""durability":"none""#), "\(json)")
        #expect(configuration.replicationPolicy == .minInSyncReplicas(2))

        let fromEnvironment = try await ReplicationConfiguration.load(
            file: nil, environment: ["BRPL_POLICY": "minInSyncReplicas", "BRPL_MIN_IN_SYNC_REPLICAS": "2", "BRPL_DURABILITY": "none", "BRPL_RECONNECT_CAP_SECONDS": "2"]
        )
        #expect(fromEnvironment.policy == .minInSyncReplicas && fromEnvironment.durability == .none)
        #expect(ReplicationConfiguration().policy.rawValue == "evictSlowFollowers" && ReplicationConfiguration().durability.rawValue == "fsync")
    }
}

@Suite("Listening errors")
struct ListeningErrorTests {
    /// A port another leader holds: `run()` and `listeningPort()` say which address and why,
    /// as a configuration error a broker can match.
    @Test func aPortInUseIsAnInvalidConfigurationNamingTheAddress() async throws {
        let cluster = try ReplicationTestCluster.Workspace()
        let first = try ReplicationLeader(configuration: cluster.leaderConfiguration("first"), secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let serving = Task { try await first.run() }
        defer { serving.cancel() }
        let port = try await first.listeningPort()
        var configuration = cluster.leaderConfiguration("second")
        configuration.port = port
        let second = try ReplicationLeader(configuration: configuration, secret: cluster.secret, logger: ReplicationTestCluster.Workspace.logger)
        let error = await #expect(throws: ReplicationError.self) { try await second.run() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("127.0.0.1:\(port)") == true, "\(String(describing: error))")
        await #expect(throws: ReplicationError.self) { _ = try await second.listeningPort() }
    }
}

@Suite("Disk full")
struct DiskFullErrorTests {
    /// A broker tells a full disk apart from other storage failures without parsing text.
    @Test(arguments: [(ENOSPC, true), (EDQUOT, true), (EIO, false), (EACCES, false)])
    func aStorageErrorSaysWhetherTheDiskIsFull(errno: Int32, isFull: Bool) {
        let error = ReplicationError(StorageError(operation: "write segment", errno: errno))
        #expect(error.code == .storage)
        #expect(error.isDiskFull == isFull)
        #expect(!ReplicationError.notEnoughReplicas("x").isDiskFull)
    }
}
