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

@Suite("Wire: Codable over JSONValue")
struct JSONCodingTests {
    struct Inner: Codable, Equatable { var name: String; var tags: [String] }
    struct Outer: Codable, Equatable {
        var count: Int64
        var small: UInt8
        var flag: Bool
        var inner: Inner
        var list: [Inner]
        var note: String?
        var missing: Int?
    }

    @Test("nested values, arrays and optionals round-trip; a nil optional is left out")
    func roundTrip() throws {
        let value = Outer(count: -9_000_000_000, small: 7, flag: true, inner: Inner(name: "a", tags: ["x", "y"]),
                          list: [Inner(name: "b", tags: [])], note: "n", missing: nil)
        let json = try JSONCoding.encode(value)
        #expect(json["missing"] == nil && json["count"] == .integer(-9_000_000_000))
        #expect(try JSONCoding.decode(Outer.self, from: json) == value)
        #expect(try JSONCoding.decode(Outer.self, from: JSONParser.parse(json.canonical)) == value)
    }

    @Test("wrong types, out-of-range integers, missing members and floating-point values are errors, not traps")
    func refusals() throws {
        let good = try JSONCoding.encode(Inner(name: "a", tags: []))
        #expect(throws: (any Error).self) { try JSONCoding.decode(Inner.self, from: .object(["name": .integer(1), "tags": .array([])])) }
        #expect(throws: (any Error).self) { try JSONCoding.decode(Inner.self, from: .object(["tags": .array([])])) }
        #expect(throws: (any Error).self) { try JSONCoding.decode(UInt8.self, from: .integer(300)) }
        #expect(throws: (any Error).self) { try JSONCoding.decode(Double.self, from: .integer(1)) }
        #expect(throws: (any Error).self) { try JSONCoding.encode(1.5) }
        #expect(try JSONCoding.decode(Inner.self, from: good) == Inner(name: "a", tags: []))
    }
}
