import Testing
import Wire

@Suite("Wire: canonical JSON, base64, hex")
struct WireTests {
    @Test("canonical JSON sorts members, has no spaces, and parses back to the same value")
    func canonicalRoundTrip() throws {
        let value = JSONValue.object(["b": .integer(-7), "a": .array([.string("x\"y\n"), .boolean(true), .null])])
        let text = String(decoding: value.canonical, as: UTF8.self)
        #expect(text == #"{"a":["x\"y\n",true,null],"b":-7}"#)
        #expect(try JSONParser.parse(value.canonical) == value)
    }

    @Test("the parser refuses duplicate members, trailing data and unclosed strings")
    func parserRefusals() {
        for bad in [#"{"a":1,"a":2}"#, #"{"a":1} x"#, #"{"a":"open}"#, "", "[1,]"] {
            #expect(throws: (any Error).self, "\(bad)") { try JSONParser.parse(Array(bad.utf8)) }
        }
    }

    @Test("base64 and hex round-trip every byte, and non-canonical spellings are refused")
    func encodings() {
        let bytes = (0...255).map { UInt8($0) }
        for length in [0, 1, 2, 3, 4, 255, 256] {
            let slice = Array(bytes.prefix(length))
            #expect(Base64.decode(Base64.encode(slice)) == slice)
            #expect(Hex.decode(Hex.encode(slice)) == slice)
        }
        #expect(Base64.encode(Array("foob".utf8)) == "Zm9vYg==")
        #expect(Base64.decode("Zm9vYg") == nil, "unpadded")
        #expect(Base64.decode("Zm9vYh==") == nil, "non-zero padding bits")
        #expect(Hex.decode("0g") == nil)
    }
}
