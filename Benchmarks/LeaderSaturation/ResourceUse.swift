import BrokerReplication

/// What the leader and each follower process hold at one sample: memory, file descriptors,
/// and each follower's outbound queue at the leader. Over a soak these must stay flat.
struct ResourceSample: Sendable {
    /// The benchmark process (leader, producers, proxies): VmRSS and entries of /proc/self/fd.
    var leaderResidentBytes: Int
    var leaderDescriptors: Int
    /// By follower, f1 first: VmRSS and entries of /proc/PID/fd; nil once the process is gone.
    var followerResidentBytes: [Int?]
    var followerDescriptors: [Int?]
    /// Bytes in each follower's outbound queue at the leader; nil while it is not connected.
    var followerQueuedBytes: [Int?]

    /// Reads this process, every follower process and the queues in `status`.
    static func read(status: LeaderStatus, followers: [FollowerProcess]) -> ResourceSample {
        let queued = Dictionary(status.followers.map { ($0.nodeID, $0.queuedBytes) }, uniquingKeysWith: max)
        return ResourceSample(
            leaderResidentBytes: ProcessMetrics.residentBytes(),
            leaderDescriptors: ProcessMetrics.openDescriptors(),
            followerResidentBytes: followers.map { ProcessMetrics.residentBytes(of: $0.pid) },
            followerDescriptors: followers.map { ProcessMetrics.openDescriptors(of: $0.pid) },
            followerQueuedBytes: followers.map { queued[$0.nodeID] }
        )
    }

    static let none = ResourceSample(
        leaderResidentBytes: 0, leaderDescriptors: 0, followerResidentBytes: [], followerDescriptors: [], followerQueuedBytes: []
    )
}

/// The least and most of each resource over the samples from `windowStartSeconds` on: a soak
/// leaves out its first minute (`--warm-up`), while caches, buffers and the backlog fill.
struct ResourceSummary: Sendable, Encodable {
    struct Range: Sendable, Encodable {
        var min: Int
        var max: Int

        init?(_ values: [Int]) {
            guard let min = values.min(), let max = values.max() else { return nil }
            self.min = min
            self.max = max
        }
    }

    var windowStartSeconds: Double
    var samples: Int
    var leaderResidentBytes: Range?
    var leaderDescriptors: Range?
    /// Over every follower together; nil without followers.
    var followerResidentBytes: Range?
    var followerDescriptors: Range?
    /// The fullest any follower's queue was; nil when none was connected.
    var maxQueuedBytes: Int?

    init(samples: [Sample], from windowStartSeconds: Double) {
        let window = samples.filter { $0.seconds >= windowStartSeconds }.map(\.resources)
        self.windowStartSeconds = windowStartSeconds
        self.samples = window.count
        leaderResidentBytes = Range(window.map(\.leaderResidentBytes))
        leaderDescriptors = Range(window.map(\.leaderDescriptors))
        followerResidentBytes = Range(window.flatMap { $0.followerResidentBytes.compactMap { $0 } })
        followerDescriptors = Range(window.flatMap { $0.followerDescriptors.compactMap { $0 } })
        maxQueuedBytes = window.flatMap { $0.followerQueuedBytes.compactMap { $0 } }.max()
    }

    private enum CodingKeys: String, CodingKey {
        case windowStartSeconds, samples, leaderResidentBytes, leaderDescriptors, followerResidentBytes, followerDescriptors, maxQueuedBytes
    }

    // Written out so that a missing value is `null`, as everywhere in the JSON.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(windowStartSeconds, forKey: .windowStartSeconds)
        try container.encode(samples, forKey: .samples)
        try container.encode(leaderResidentBytes, forKey: .leaderResidentBytes)
        try container.encode(leaderDescriptors, forKey: .leaderDescriptors)
        try container.encode(followerResidentBytes, forKey: .followerResidentBytes)
        try container.encode(followerDescriptors, forKey: .followerDescriptors)
        try container.encode(maxQueuedBytes, forKey: .maxQueuedBytes)
    }
}

/// The samples' resources as columns, for the JSON: one array per quantity, one entry per
/// sample, `null` where a value could not be read.
struct ResourceSeries: Encodable {
    struct Follower: Encodable {
        var nodeID: String
        var residentBytes: [Int?]
        var descriptors: [Int?]
        var queuedBytes: [Int?]
    }

    var seconds: [Double]
    var leaderResidentBytes: [Int]
    var leaderDescriptors: [Int]
    var followers: [Follower]

    init(samples: [Sample], followers: Int) {
        let resources = samples.map(\.resources)
        seconds = samples.map { ($0.seconds * 1000).rounded() / 1000 }
        leaderResidentBytes = resources.map(\.leaderResidentBytes)
        leaderDescriptors = resources.map(\.leaderDescriptors)
        func column(_ values: [[Int?]], _ index: Int) -> [Int?] { values.map { index < $0.count ? $0[index] : nil } }
        self.followers = (0..<followers).map { index in
            Follower(
                nodeID: "f\(index + 1)",
                residentBytes: column(resources.map(\.followerResidentBytes), index),
                descriptors: column(resources.map(\.followerDescriptors), index),
                queuedBytes: column(resources.map(\.followerQueuedBytes), index)
            )
        }
    }
}
