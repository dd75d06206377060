// swift-tools-version:6.0
import PackageDescription

// The module graph is the data path (docs/ARCHITECTURE.md draws it):
//   C modules (one system library per C library, one shim) → bindings (LibAV, LibCrypto, V4L2)
//   → Platform (errno, files, clock, threads, logging, systemd) and Wire (canonical JSON, base64)
//   → Capture → Pipeline → Evidence;  Policy → Controls;  Tokens;  Configuration
//   → Daemon (the daemon as a library) → bodycamd (a thin executable), bodycamctl, the tools.
// Every target names every module it imports.
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let serviceLifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let systemPackage = Target.Dependency.product(name: "SystemPackage", package: "swift-system")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
// Executables link with the toolchain's lld. With the Swift runtime linked in (`make build`,
// --static-swift-stdlib), gold repeats glibc's link-time notes on functions the toolchain's
// static Foundation references (mktemp) as warnings of our build; lld does not.
let executableLinking: [LinkerSetting] = [.unsafeFlags(["-use-ld=lld"])]
// The camera's daemon, as released, links for a smaller resident footprint: relative relocations
// packed (RELR, which glibc 2.36 and later apply: the loader reads 7 KB, not 830 KB of RELA) and
// its own symbols not exported (the static runtime's link arguments export them for dlsym, which
// nothing in the daemon uses on itself; its .dynsym and .dynstr were 900 KB that every library's
// symbol lookups walked). Together 1.7 MiB less resident memory, measured by `make bench`.
let daemonLinking: [LinkerSetting] = executableLinking + [
    .unsafeFlags(["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
                 .when(configuration: .release)),
]

let package = Package(
    name: "bodycam",
    products: [
        .executable(name: "bodycamd", targets: ["bodycamd"]),
        .executable(name: "bodycamctl", targets: ["bodycamctl"]),
        .executable(name: "bodycam-office", targets: ["bodycam-office"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    ],
    targets: [
        // MARK: C modules
        .systemLibrary(name: "CAVUtil", pkgConfig: "libavutil", providers: [.apt(["libavutil-dev"])]),
        // Headers only, no pkgConfig (its -lavcodec would link libavcodec into every program):
        // see CAVCodecShims.
        .systemLibrary(name: "CAVCodec", providers: [.apt(["libavcodec-dev"])]),
        .systemLibrary(name: "CAVFormat", pkgConfig: "libavformat", providers: [.apt(["libavformat-dev"])]),
        .systemLibrary(name: "CSwScale", pkgConfig: "libswscale", providers: [.apt(["libswscale-dev"])]),
        // No pkgConfig: x264.pc adds -DX264_API_IMPORTS (for Windows DLLs), a flag SwiftPM refuses
        // with a warning; the header is on the default path and the modulemap links libx264.
        .systemLibrary(name: "CX264", providers: [.apt(["libx264-dev"])]),
        .systemLibrary(name: "CV4L2", pkgConfig: "libv4l2", providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libcurl's headers only: the library is loaded when the uplink first needs it (CCurlShims).
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // dlopen of an optional library and its functions, for CCurlShims and CAVCodecShims.
        .target(name: "CDynamicLibrary", linkerSettings: [.linkedLibrary("dl")]),
        // libcurl loaded on first use (dlopen), and its variadic setopt and getinfo, which Swift
        // cannot call, as typed functions.
        .target(name: "CCurlShims", dependencies: ["CCurl", "CDynamicLibrary"]),
        // toml++'s pkg-config file gives only -D flags, which SwiftPM refuses from pkg-config: its
        // headers are on the default path, and TOMLShim sets the two defines itself.
        .systemLibrary(name: "CTOMLPlusPlus", providers: [.apt(["libtomlplusplus-dev"])]),
        // toml++ is C++: a C view of its parser (TOML 1.0), for the configuration module.
        .target(name: "TOMLShim", dependencies: ["CTOMLPlusPlus"],
                cxxSettings: [.define("TOML_HEADER_ONLY", to: "0"), .define("TOML_SHARED_LIB", to: "1")],
                linkerSettings: [.linkedLibrary("tomlplusplus")]),
        // What Swift cannot import: ioctl request numbers, AVERROR(), variadic calls.
        .target(name: "CShims", dependencies: ["CAVUtil", "CAVCodec", "CV4L2"]),
        // What Swift cannot do with libavformat (its chapter list): apart, so that the daemon,
        // which does not read or remux, does not load libavformat.
        .target(name: "CAVFormatShims", dependencies: ["CAVFormat", "CAVUtil"]),
        // libavcodec loaded on first use (dlopen), not linked: the recording path encodes with
        // libx264 itself (LibX264) and needs libavcodec only for MJPEG cameras and h264_v4l2m2m.
        .target(name: "CAVCodecShims", dependencies: ["CAVCodec", "CAVUtil", "CDynamicLibrary"]),

        // MARK: bindings (the only Swift code that sees C types)
        .target(name: "LibAV", dependencies: ["CShims", "CAVUtil", "CAVCodec", "CAVCodecShims", "CSwScale"]),
        // Reading, remuxing and stream copies (libavformat): the tools and the office, not the
        // recording path, which writes its fragmented MP4 itself (Pipeline.FragmentedMP4Writer).
        .target(name: "LibAVFormat", dependencies: ["LibAV", "CAVFormatShims", "CShims", "CAVUtil", "CAVCodec", "CAVFormat", "CSwScale"],
                // Its own calls into libavcodec (demuxing, decoding, stream copies) link it:
                // CAVCodec gives only the headers (the daemon loads libavcodec when it needs it).
                linkerSettings: [.linkedLibrary("avcodec")]),
        // libx264 itself: the recording path's software H.264 encoder, without libavcodec.
        .target(name: "LibX264", dependencies: ["CX264"]),
        .target(name: "LibCrypto", dependencies: ["CCrypto"]),
        .target(name: "V4L2", dependencies: ["CShims", "CV4L2"]),
        // A V4L2 driver simulated at the ioctl seam, for tests of the capture code.
        .target(name: "V4L2Simulator", dependencies: ["V4L2", "CV4L2", "Platform"]),

        // MARK: platform and wire
        .target(name: "Platform", dependencies: ["CShims", systemPackage, logging, serviceLifecycle]),
        .target(name: "Wire"),
        // H.264 NAL units (annex B, emulation prevention): the MP4 writer's and Media Signing's.
        .target(name: "H264"),
        // TOML files as typed settings, each error naming the file, line and key.
        .target(name: "Settings", dependencies: ["TOMLShim", "Platform"]),

        // MARK: the data path
        .target(name: "Capture", dependencies: ["LibAV", "V4L2", "Platform"]),
        .target(name: "Pipeline", dependencies: ["Capture", "H264", "LibAV", "LibX264", "Platform"]),
        .target(name: "Evidence", dependencies: ["Pipeline", "LibCrypto", "Platform", "Wire"]),
        // ONVIF Media Signing of H.264: the signer (SEIs in the stream) and a validator.
        .target(name: "MediaSigning", dependencies: ["H264", "LibCrypto"]),
        // Standard MP4 files from recorded segments (stream copy, joined, cut on keyframes).
        .target(name: "Export", dependencies: ["Evidence", "H264", "MediaSigning", "Pipeline", "Capture", "LibAV", "LibAVFormat", "LibCrypto", "Platform", "Wire"]),

        // MARK: policy and controls
        .target(name: "Policy", dependencies: ["Wire"]),
        .target(name: "Controls", dependencies: ["Policy", "CGPIOD", "Platform", "Wire"]),
        // Supervisors' signed stop and duty tokens, checked into the policy's TokenGrant.
        .target(name: "Tokens", dependencies: ["Policy", "Evidence", "LibCrypto", "Platform", "Wire"]),
        // The authority's X.509 side: a P-256 CA and the TLS certificates it issues (docs/PKI.md).
        .target(name: "PKI", dependencies: ["Platform", x509, crypto, asn1]),

        // MARK: remote access (docs/OFFICE.md)
        // The camera's side: an HTTPS client with the device's TLS certificate (libcurl, OpenSSL).
        .target(name: "Uplink", dependencies: ["CCurlShims", "CCurl", "Evidence", "Pipeline", "Platform", "Wire"]),
        // The evidence office's server: mutual TLS (SwiftNIO, swift-nio-ssl), the devices' stores,
        // the access journal.
        .target(name: "Office", dependencies: ["Evidence", "Export", "Pipeline", "PKI", "Settings", "LibCrypto", "Platform", "Wire", nioCore, nioPosix, nioHTTP1, nioSSL, x509]),

        // MARK: configuration, protocol, daemon
        .target(name: "Configuration", dependencies: ["Capture", "Pipeline", "Policy", "Controls", "LibAV", "V4L2", "V4L2Simulator", "Platform", "Settings"]),
        .target(name: "ControlProtocol", dependencies: ["Platform", "Wire"]),
        .target(name: "Daemon", dependencies: [
            "Configuration", "ControlProtocol", "Capture", "Pipeline", "Evidence", "Tokens", "Policy", "Controls", "Uplink", "MediaSigning",
            "LibAV", "LibCrypto", "V4L2", "V4L2Simulator", "Platform", "Wire", "CShims", logging, serviceLifecycle, unixSignals,
        ]),

        // MARK: executables
        .executableTarget(name: "bodycamd", dependencies: ["Daemon", "Platform"], linkerSettings: daemonLinking),
        .executableTarget(name: "bodycamctl", dependencies: [
            "Daemon", "Configuration", "ControlProtocol", "Capture", "Pipeline", "Evidence", "Tokens", "Policy", "Controls",
            "H264", "LibAV", "LibAVFormat", "LibCrypto", "V4L2", "PKI", "Uplink", "Export", "MediaSigning", "Platform", "Wire", argumentParser,
        ], linkerSettings: executableLinking),
        .executableTarget(name: "bodycam-office", dependencies: ["Office", "Platform", argumentParser], linkerSettings: executableLinking),
        // The measurements of `make bench` that loop over the project's own code.
        .executableTarget(name: "bodycam-bench", dependencies: ["Evidence", "Pipeline", "Capture", "LibAV", "LibAVFormat", "V4L2", "V4L2Simulator",
                                                               "Controls", "Policy", "Uplink", "MediaSigning", "PKI", "LibCrypto", "Platform", "Wire", crypto], linkerSettings: executableLinking),
        // Writes docs/vectors (`make vectors`).
        .executableTarget(name: "bodycam-vectors", dependencies: ["Evidence", "Pipeline", "Tokens", "Policy", "LibCrypto", "Platform", "Wire"], linkerSettings: executableLinking),
        // Fuzz targets (make fuzz builds them with libFuzzer; the plain build replays inputs).
        .executableTarget(name: "bodycam-fuzz", dependencies: ["Evidence", "Tokens", "Configuration", "Settings", "ControlProtocol", "LibCrypto", "Platform", "Wire", "CShims"], linkerSettings: executableLinking),

        // MARK: tests (one target per module, the daemon's end-to-end tests, one support target)
        .target(name: "TestSupport", dependencies: ["Pipeline", "Capture", "Evidence", "Export", "LibAV", "LibCrypto", "Platform", "Office", "PKI", "Uplink"],
                path: "Tests/TestSupport"),
        .testTarget(name: "LibAVTests", dependencies: ["LibAV", "LibAVFormat", "CDynamicLibrary"]),
        .testTarget(name: "LibX264Tests", dependencies: ["LibX264"]),
        .testTarget(name: "LibCryptoTests", dependencies: ["LibCrypto"]),
        .testTarget(name: "V4L2Tests", dependencies: ["V4L2", "V4L2Simulator", "CV4L2", "CShims"]),
        .testTarget(name: "PlatformTests", dependencies: ["Platform", "TestSupport", logging, serviceLifecycle]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "ControlProtocolTests", dependencies: ["ControlProtocol", "Wire"]),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "TestSupport", "LibAV", "V4L2", "V4L2Simulator", "Platform"]),
        .testTarget(name: "PipelineTests", dependencies: ["H264", "Pipeline", "Capture", "Export", "TestSupport", "LibAV", "LibAVFormat", "V4L2", "V4L2Simulator", "Platform"]),
        .testTarget(name: "MediaSigningTests", dependencies: ["H264", "MediaSigning", "PKI", "Pipeline", "Capture", "LibAV", "LibCrypto", "TestSupport", x509, crypto]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "Evidence", "Pipeline", "Capture", "TestSupport", "LibAV", "LibAVFormat", "LibCrypto", "Platform", "Wire"]),
        .testTarget(name: "EvidenceTests", dependencies: ["Evidence", "Tokens", "Pipeline", "Capture", "Export", "TestSupport", "LibAV", "LibCrypto", "Platform", "Wire"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "Wire"]),
        .testTarget(name: "ControlsTests", dependencies: ["Controls", "Policy", "Platform", "Wire", "TestSupport"]),
        .testTarget(name: "TokensTests", dependencies: ["Tokens", "Policy", "Evidence", "LibCrypto", "Platform", "Wire"]),
        .testTarget(name: "PKITests", dependencies: ["PKI", "Evidence", "LibCrypto", "Platform", "Wire", "TestSupport", x509, crypto]),
        .testTarget(name: "ConfigurationTests", dependencies: ["Configuration", "Capture", "Pipeline", "Policy", "Controls", "LibAV", "V4L2", "Settings", "TestSupport"]),
        .testTarget(name: "OfficeTests", dependencies: ["Office", "Uplink", "PKI", "Evidence", "Export", "Pipeline", "LibCrypto", "Platform", "Wire", "Settings", "TestSupport"]),
        .testTarget(name: "DaemonTests", dependencies: [
            "Daemon", "Configuration", "ControlProtocol", "Evidence", "Tokens", "Policy", "Controls", "Pipeline", "Capture",
            "LibAV", "LibAVFormat", "LibCrypto", "Platform", "Wire", "TestSupport", "Office", "PKI", "Export",
        ]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
