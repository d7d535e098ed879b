import FuzzChecks
import FuzzMain

// libFuzzer's entry point; the properties are FuzzTarget.batch's (FuzzChecks).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    FuzzTarget.batch.fuzz(start, count)
}

runFuzzer(fuzzOneInput)
