import CCRC32C

/// CRC-32C (Castagnoli), the checksum of every frame on the wire.
///
/// Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, the variant
/// used by iSCSI, ext4 and Kafka's record batches. The SSE4.2 `crc32` instruction where the
/// processor has it (x86-64), slicing-by-8 in software elsewhere; both give the same values.
enum CRC32C {
    /// Whether ``update(_:with:)`` uses the processor's CRC-32C instruction.
    static let usesHardware = brpl_crc32c_hardware_available() != 0

    /// Eight 256-entry tables; table k folds a byte that is k positions further ahead.
    private static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            tables[byte] = crc
        }
        for byte in 0..<256 {
            for slice in 1..<8 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The checksum of `bytes`.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        finish(update(start, with: bytes))
    }

    /// The running value before any byte is folded in.
    static let start: UInt32 = 0xFFFF_FFFF

    /// The final checksum of a running value.
    static func finish(_ running: UInt32) -> UInt32 { running ^ 0xFFFF_FFFF }

    /// The running value after the bytes whose checksum is `checksum`: more bytes can be
    /// folded in, so the checksum of a prefix extends to the checksum of a longer prefix.
    static func resume(_ checksum: UInt32) -> UInt32 { checksum ^ 0xFFFF_FFFF }

    /// Folds `bytes` into a running value (start with ``start``, end with ``finish(_:)``).
    static func update(_ running: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard usesHardware, let base = bytes.baseAddress else { return softwareUpdate(running, with: bytes) }
        return brpl_crc32c_hardware_update(running, base, bytes.count)
    }

    /// Slicing-by-8 over eight 256-entry tables.
    static func softwareUpdate(_ running: UInt32, with bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = running
        var index = 0
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            while count - index >= 8 {
                let low = bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self).littleEndian ^ crc
                let high = bytes.loadUnaligned(fromByteOffset: index + 4, as: UInt32.self).littleEndian
                crc = table[7 * 256 + Int(low & 0xFF)]
                    ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                    ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)]
                    ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)]
                    ^ table[Int(high >> 24)]
                index += 8
            }
            while index < count {
                crc = (crc >> 8) ^ table[Int((crc ^ UInt32(bytes[index])) & 0xFF)]
                index += 1
            }
        }
        return crc
    }
}
