import CDynamicLibrary
import Glibc
import LibAV
import Testing

@Suite("Optional libraries loaded on first use (libcurl, libavcodec): the loader and its failures")
struct DynamicLibraryTests {
    /// Loads `names` from `soname` into fresh slots; the status, the error text and the slots.
    func open(_ soname: String, _ names: [String]) -> (status: Int32, error: String, slots: [UnsafeMutableRawPointer?]) {
        var slots = [UnsafeMutableRawPointer?](repeating: UnsafeMutableRawPointer(bitPattern: 0x1), count: names.count)
        var error = [CChar](repeating: 0, count: 256)
        let status = slots.withUnsafeMutableBufferPointer { slotBuffer in
            let cNames = names.map { strdup($0)! }
            defer { cNames.forEach { free($0) } }
            let symbols = (0..<names.count).map { index in
                bc_dl_symbol(name: cNames[index], slot: slotBuffer.baseAddress! + index)
            }
            return bc_dl_open(soname, symbols, symbols.count, &error, error.count)
        }
        return (status, String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), slots)
    }

    @Test("a library that is there gives every function asked for")
    func loads() {
        let result = open("libc.so.6", ["strlen", "memcpy"])
        #expect(result.status == 0 && result.error.isEmpty)
        #expect(result.slots.allSatisfy { $0 != nil && $0 != UnsafeMutableRawPointer(bitPattern: 0x1) })
    }

    @Test("a library that is not installed is refused with dlopen's reason, naming it")
    func missingLibrary() {
        let result = open("libbodycam-absent.so.9", ["anything"])
        #expect(result.status == -1)
        #expect(result.error.contains("libbodycam-absent.so.9"), "\(result.error)")
    }

    @Test("a library without one of the functions is refused naming it, and no slot keeps an address")
    func missingSymbol() {
        let result = open("libc.so.6", ["strlen", "bc_no_such_function", "memcpy"])
        #expect(result.status == -1)
        #expect(result.error == "libc.so.6 has no bc_no_such_function")
        #expect(result.slots.allSatisfy { $0 == nil }, "a half-loaded table would be called")
    }

    @Test("a library loaded once: the first outcome holds for every later call, its reason too")
    func onceHoldsTheFirstOutcome() {
        var once = bc_dl_once()  // all zero: glibc's PTHREAD_MUTEX_INITIALIZER, not yet tried
        var reasons: [String] = []
        for _ in 0..<2 {
            var slot: UnsafeMutableRawPointer? = nil
            var error = [CChar](repeating: 0, count: 256)
            let status = withUnsafeMutablePointer(to: &slot) { slotPointer in
                "strlen".withCString { name in
                    let symbols = [bc_dl_symbol(name: name, slot: slotPointer)]
                    return bc_dl_open_once(&once, "libbodycam-absent.so.9", symbols, symbols.count, &error, error.count)
                }
            }
            #expect(status == -1 && slot == nil)
            reasons.append(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        #expect(reasons[0].contains("libbodycam-absent.so.9") && reasons[1] == reasons[0])
    }

    @Test("libavcodec loads on first use, and again at once")
    func libavcodecLoads() throws {
        try LibAVCodec.load()
        try LibAVCodec.load()
        #expect(EncoderContext.isAvailable("mjpeg"))
    }
}
