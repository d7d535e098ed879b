import FuzzChecks
import FuzzMain

// libFuzzer's entry point; the properties are FuzzTarget.handshake's (FuzzChecks).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    FuzzTarget.handshake.fuzz(start, count)
}

runFuzzer(fuzzOneInput)
