// swift-tools-version:6.0
import PackageDescription

// One system-library module per C library (pkg-config), one small C shim for what Swift
// cannot import (ioctl request numbers, AVERROR(), av_err2str), and thin Swift layers on top.
// Pipeline code only ever sees the Swift layers.
let package = Package(
    name: "bodycam",
    products: [
        .executable(name: "bodycamd", targets: ["bodycamd"]),
        .executable(name: "bodycamctl", targets: ["bodycamctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CAVUtil", pkgConfig: "libavutil", providers: [.apt(["libavutil-dev"])]),
        .systemLibrary(name: "CAVCodec", pkgConfig: "libavcodec", providers: [.apt(["libavcodec-dev"])]),
        .systemLibrary(name: "CAVFormat", pkgConfig: "libavformat", providers: [.apt(["libavformat-dev"])]),
        .systemLibrary(name: "CSwScale", pkgConfig: "libswscale", providers: [.apt(["libswscale-dev"])]),
        .systemLibrary(name: "CV4L2", pkgConfig: "libv4l2", providers: [.apt(["libv4l-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "CShims",
            dependencies: ["CAVUtil", "CAVCodec", "CAVFormat", "CV4L2"]
        ),
        .target(
            name: "LibAV",
            dependencies: ["CShims", "CAVUtil", "CAVCodec", "CAVFormat", "CSwScale"]
        ),
        .target(
            name: "LibCrypto",
            dependencies: ["CCrypto"]
        ),
        .target(
            name: "V4L2",
            dependencies: ["CShims", "CV4L2"]
        ),
        // A V4L2 driver simulated at the ioctl seam, for tests of the capture code.
        .target(
            name: "V4L2Simulator",
            dependencies: ["V4L2", "CV4L2"]
        ),
        .target(
            name: "Pipeline",
            dependencies: ["CShims", "LibAV", "V4L2", .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .target(
            name: "Evidence",
            dependencies: ["CShims", "LibCrypto", "Pipeline", "LibAV"]
        ),
        .target(
            name: "Policy",
            dependencies: ["Evidence", "LibCrypto", "Pipeline"]
        ),
        .target(
            name: "Controls",
            dependencies: ["CGPIOD", "CShims", "Policy", "Pipeline"]
        ),
        .executableTarget(
            name: "bodycamd",
            dependencies: ["Pipeline", "Evidence", "Policy", "Controls",
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .executableTarget(
            name: "bodycamctl",
            dependencies: [
                "CShims", "Pipeline", "LibAV", "Evidence", "LibCrypto", "Policy", "Controls", "V4L2",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The measurements of `make bench` that loop over the project's own code.
        .executableTarget(
            name: "bodycam-bench",
            dependencies: ["Evidence", "LibCrypto", "Pipeline"]
        ),
        // Writes docs/vectors (`make vectors`).
        .executableTarget(
            name: "bodycam-vectors",
            dependencies: ["Evidence", "LibCrypto", "Pipeline"]
        ),
        .testTarget(name: "LibAVTests", dependencies: ["LibAV"]),
        .testTarget(name: "LibCryptoTests", dependencies: ["LibCrypto"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "Controls", "Evidence", "LibCrypto", "Pipeline"]),
        .testTarget(name: "EvidenceTests", dependencies: ["Evidence", "LibCrypto", "Pipeline", "LibAV", "Controls", "Policy"]),
        .testTarget(name: "V4L2Tests", dependencies: ["V4L2", "V4L2Simulator", "CV4L2", "CShims"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "LibAV", "V4L2", "V4L2Simulator", .product(name: "Logging", package: "swift-log"),
                                                   .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
    ],
    swiftLanguageModes: [.v5]
)
