import Foundation

// The JSON bodies of etcd v3's HTTP gateway (grpc-gateway over etcdserverpb), only the fields
// this module sends or reads. The gateway writes int64 fields as JSON strings, keys and values
// as base64, and omits every field that holds its zero value (a failed transaction has no
// `succeeded`, a range of a missing key no `kvs`, a key without a lease no `lease`).

/// An int64 as the gateway writes it: a JSON string ("12"); a plain number is accepted too.
struct EtcdInt64: Codable, Sendable, Equatable {
    var value: Int64

    init(_ value: Int64) {
        self.value = value
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = Int64(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not an int64")
            }
            self.value = value
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// Base64 of a key's UTF-8 bytes, as the gateway expects `bytes` fields.
func etcdBase64(_ key: String) -> String {
    Data(key.utf8).base64EncodedString()
}

/// The header every answer carries; the store's revision after the request.
struct EtcdResponseHeader: Decodable, Sendable {
    var revision: EtcdInt64?
}

/// `mvccpb.KeyValue`: one key with its revisions and lease, as the gateway writes it.
struct EtcdWireKeyValue: Decodable, Sendable {
    var key: String?
    var value: String?
    var createRevision: EtcdInt64?
    var modRevision: EtcdInt64?
    var lease: EtcdInt64?

    enum CodingKeys: String, CodingKey {
        case key, value, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }
}

/// `RangeRequest` for a single key.
struct EtcdRangeRequest: Encodable, Sendable {
    var key: String
}

/// `RangeResponse`; `kvs` is absent when the key does not exist.
struct EtcdRangeResponse: Decodable, Sendable {
    var header: EtcdResponseHeader?
    var kvs: [EtcdWireKeyValue]?
}

/// `PutRequest`, optionally attached to a lease.
struct EtcdPutRequest: Encodable, Sendable {
    var key: String
    var value: String
    var lease: EtcdInt64?
}

/// `PutResponse` and `DeleteRangeResponse`: only the header and the count matter here.
struct EtcdWriteResponse: Decodable, Sendable {
    var header: EtcdResponseHeader?
    var deleted: EtcdInt64?
}

/// `DeleteRangeRequest` for a single key.
struct EtcdDeleteRangeRequest: Encodable, Sendable {
    var key: String
}

/// `Compare` with result EQUAL on a create or mod revision.
struct EtcdWireCompare: Encodable, Sendable {
    var target: String
    var key: String
    var result = "EQUAL"
    var createRevision: EtcdInt64?
    var modRevision: EtcdInt64?

    enum CodingKeys: String, CodingKey {
        case target, key, result
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }
}

/// `RequestOp`: exactly one of the three is set.
struct EtcdWireRequestOp: Encodable, Sendable {
    var requestRange: EtcdRangeRequest?
    var requestPut: EtcdPutRequest?
    var requestDeleteRange: EtcdDeleteRangeRequest?

    enum CodingKeys: String, CodingKey {
        case requestRange = "request_range"
        case requestPut = "request_put"
        case requestDeleteRange = "request_delete_range"
    }
}

/// `TxnRequest`.
struct EtcdTxnRequest: Encodable, Sendable {
    var compare: [EtcdWireCompare]
    var success: [EtcdWireRequestOp]
    var failure: [EtcdWireRequestOp]
}

/// `ResponseOp`: the answer to one operation of the branch that ran.
struct EtcdWireResponseOp: Decodable, Sendable {
    var responseRange: EtcdRangeResponse?
    var responsePut: EtcdWriteResponse?
    var responseDeleteRange: EtcdWriteResponse?

    enum CodingKeys: String, CodingKey {
        case responseRange = "response_range"
        case responsePut = "response_put"
        case responseDeleteRange = "response_delete_range"
    }
}

/// `TxnResponse`; `succeeded` is absent when the compares failed.
struct EtcdTxnResponse: Decodable, Sendable {
    var header: EtcdResponseHeader?
    var succeeded: Bool?
    var responses: [EtcdWireResponseOp]?
}

/// `LeaseGrantRequest`: ID 0 lets etcd choose the lease id.
struct EtcdLeaseGrantRequest: Encodable, Sendable {
    var TTL: EtcdInt64
    var ID = EtcdInt64(0)
}

/// `LeaseGrantResponse`; `error` is set when etcd could not grant it.
struct EtcdLeaseGrantResponse: Decodable, Sendable {
    var header: EtcdResponseHeader?
    var ID: EtcdInt64?
    var TTL: EtcdInt64?
    var error: String?
}

/// `LeaseKeepAliveRequest` and `LeaseRevokeRequest`: just the lease id.
struct EtcdLeaseIDRequest: Encodable, Sendable {
    var ID: EtcdInt64
}

/// One message of the keepalive stream: `{"result": {...}}`, or `{"error": {...}}` when the
/// gateway's stream failed.
struct EtcdKeepAliveMessage: Decodable, Sendable {
    struct Result: Decodable, Sendable {
        var ID: EtcdInt64?
        var TTL: EtcdInt64?
    }

    var result: Result?
}
