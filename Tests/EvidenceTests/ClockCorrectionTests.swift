import Testing
import Foundation
import Evidence
import LibAV
import Capture
import Pipeline
import Platform
import TestSupport

@Suite("Clock corrections in verification")
struct ClockCorrectionTests {
    static let hour: Int64 = 3600 * 1_000_000_000

    /// Records `frames` test-pattern pictures (1 s segments) with a wall clock `offset` from the
    /// machine's.
    func record(into vault: EvidenceVault, frames: Int, offset: Int64) throws {
        _ = quietLibAV
        let format = FrameFormat(width: 160, height: 120, pixelFormat: .yuv420p, framesPerSecond: 30)
        let recorder = Recorder(configuration: .init(deviceID: "BC-EV-1", officerID: "OFC-1", preEventSeconds: 0, segmentSeconds: 1),
                                source: try TestPatternSource(format: format, pacing: .asFastAsPossible, frameLimit: frames),
                                overlay: nil, store: vault, makeEncoder: { try makeVideoEncoder(settings: testEncoderSettings(), format: $0) })
        recorder.wallClock = { Clock.wallNanoseconds() + offset }
        recorder.startRecording()
        try recorder.run()
    }

    @Test("footage recorded with the clock 3 h behind, or at 1970, is reported with corrected times once the journal of the same boot knows the right clock", arguments: [-3 * hour, 5_000_000_000 - Clock.wallNanoseconds()])
    func corrected(offset: Int64) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        let vault = try makeVault(directory.path, keys: keys)
        try vault.journal.append(kind: "boot", fields: ["boot_id": .string(kernelBootID)])
        try record(into: vault, frames: 45, offset: offset)
        // The clock is set: later records of the same boot carry the right time.
        try vault.journal.append(kind: "clock_step", fields: ["step_ms": .integer(-offset / 1_000_000)])
        let report = try StoreVerifier.verify(store: directory.path, authority: keys.authority.publicKey)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.verifiedSequences == [1, 2])
        #expect(report.timeCorrections.map(\.sequence) == [1, 2])
        for correction in report.timeCorrections {
            #expect(abs(correction.offsetMilliseconds + offset / 1_000_000) < 1_000, "\(correction)")
            let recorded = try #require(ClockParse.nanoseconds(iso8601: correction.recordedStartUTC))
            let corrected = try #require(ClockParse.nanoseconds(iso8601: correction.correctedStartUTC))
            #expect(abs(corrected - recorded - correction.offsetMilliseconds * 1_000_000) < 1_000_000)
            #expect(abs(corrected - Clock.wallNanoseconds()) < 60_000_000_000, "corrected to about now")
        }
    }

    @Test("footage stamped 1970 that the journal cannot correct is a clock_implausible problem; the footage still verifies")
    func implausibleUncorrected() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        // No boot record names the kernel boot: nothing ties the journal's times to the segments.
        try record(into: try makeVault(directory.path, keys: keys), frames: 30, offset: 5_000_000_000 - Clock.wallNanoseconds())
        let report = try StoreVerifier.verify(store: directory.path, authority: keys.authority.publicKey)
        #expect(report.problems.map(\.code) == ["clock_implausible"])
        #expect(report.problems.first?.sequences == [1])
        #expect(report.verifiedSequences == [1])
        #expect(report.timeCorrections.isEmpty)
    }

    @Test("times that run backwards from one segment to the next, unexplained by the journal, are a clock_backwards problem")
    func backwards() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let keys = Keys()
        try record(into: try makeVault(directory.path, keys: keys), frames: 30, offset: 0)
        try record(into: try makeVault(directory.path, keys: keys), frames: 30, offset: -Self.hour)
        let report = try StoreVerifier.verify(store: directory.path, authority: keys.authority.publicKey)
        #expect(report.problems.map(\.code) == ["clock_backwards"])
        #expect(report.problems.first?.sequences == [1, 2])
    }
}
