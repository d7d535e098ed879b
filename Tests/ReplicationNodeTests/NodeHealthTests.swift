@testable import BrokerReplication
import NIOHTTP1
import Prometheus
@testable import ReplicationNode
import Testing

/// What `/health` and the other routes answer, decided without a socket.
@Suite("Node health")
struct NodeHealthTests {
    @Test(arguments: [
        (ReplicationFollower.FollowerStatus.Phase.streaming, nil, 200, #"{"role":"follower","status":"ok"}"#),
        (.connecting, nil, 503, #"{"reason":"connecting","role":"follower","status":"unhealthy"}"#),
        (.connecting, "the leader sent nothing within the silence timeout", 503,
         #"{"reason":"connecting (last connection: the leader sent nothing within the silence timeout)","role":"follower","status":"unhealthy"}"#),
        (.syncing, nil, 503, #"{"reason":"syncing","role":"follower","status":"unhealthy"}"#),
    ] as [(ReplicationFollower.FollowerStatus.Phase, String?, Int, String)])
    func aFollowerIsHealthyOnlyWhileStreaming(phase: ReplicationFollower.FollowerStatus.Phase, lastError: String?, code: Int, json: String) {
        var status = ReplicationFollower.FollowerStatus()
        status.phase = phase
        status.lastError = lastError
        let answer = MetricsEndpoint.response(method: .GET, uri: "/health", registry: PrometheusCollectorRegistry(), health: .follower(status))
        #expect(Int(answer.status.code) == code)
        #expect(answer.body == json + "\n")
        #expect(answer.contentType == "application/json")
    }

    @Test func aLeaderIsHealthyOnceItListensAndOtherRoutesAreRefused() {
        let registry = PrometheusCollectorRegistry()
        registry.makeCounter(name: "brpl_example_total").increment()
        #expect(MetricsEndpoint.response(method: .GET, uri: "/health", registry: registry, health: .leader(listening: true)).status == .ok)
        #expect(MetricsEndpoint.response(method: .GET, uri: "/health", registry: registry, health: .leader(listening: false)).status == .serviceUnavailable)
        let metrics = MetricsEndpoint.response(method: .GET, uri: "/metrics?x=1", registry: registry, health: .leader(listening: true))
        #expect(metrics.status == .ok && metrics.body.contains("brpl_example_total 1"))
        #expect(MetricsEndpoint.response(method: .POST, uri: "/metrics", registry: registry, health: .leader(listening: true)).status == .methodNotAllowed)
        #expect(MetricsEndpoint.response(method: .GET, uri: "/", registry: registry, health: .leader(listening: true)).status == .notFound)
    }
}
