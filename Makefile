# bodycam — build, test, demo and benchmark on Debian 12 (bookworm).
# Every target installs the Debian packages it needs first, and only those that are missing.

SWIFT      ?= swift
BUILD_DIR  ?= .build
CONFIG     ?= release
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Headers and libraries the package links (pkg-config names in Package.swift).
BUILD_PACKAGES := pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libx264-dev \
                  libv4l-dev libgpiod-dev libssl-dev libtomlplusplus-dev libcurl4-openssl-dev
# The tests: libfaketime starts bodycamd with its clock in 1970, as a board without a battery-backed
# clock boots (Tests/DaemonTests/WrongClockTests.swift).
TEST_PACKAGES := faketime
# The reference encoders (ffmpeg; GStreamer with x264enc, h264parse and mp4mux) and the resource
# meter `make bench` compares against.
BENCH_PACKAGES := ffmpeg time gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
                  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
# Packaging and unit checks: dpkg-deb, objdump, systemd-analyze.
PACKAGE_PACKAGES := dpkg binutils systemd
# The hardware rig (Hardware/rig): qemu, an initramfs, the gpio-sim build (the kernel's own
# compiler), vivid's timings, ext4 images, real-time priority and fallocate for the scenarios.
HW_PACKAGES := qemu-system-x86 busybox-static python3 xz-utils e2fsprogs v4l-utils util-linux iproute2 \
               gcc-12 make file libelf1 dmsetup udev procps
# The office's page in a real browser: headless Chromium, NSS's tools for its certificate store,
# openssl for the officer's PKCS #12 file.
BROWSER_PACKAGES := chromium libnss3-tools openssl python3
# The board's architecture: Debian's aarch64 cross compiler and its C library headers.
CROSS_PACKAGES := gcc-aarch64-linux-gnu libc6-dev-arm64-cross linux-libc-dev-arm64-cross binutils-aarch64-linux-gnu

.PHONY: all deps bench-deps package-deps hw-deps cross-deps build test demo bench fuzz vectors install install-office deb deb-test systemd-check browser-test hw-test check-arm64 clean

all: build

define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "error: no Swift toolchain on PATH (Swift 6 or newer is needed)"; exit 1; }
endef

deps:
	$(call install_missing,$(BUILD_PACKAGES))

bench-deps: deps
	$(call install_missing,$(BENCH_PACKAGES))

# The binaries carry the Swift runtime inside (--static-swift-stdlib): the device has no
# toolchain, and what the .deb ships is then what the demo, the bench and the rig run, built once.
BUILD_FLAGS = -c $(CONFIG) --static-swift-stdlib --scratch-path $(BUILD_DIR)
build: deps
	$(SWIFT) build $(BUILD_FLAGS)

test: deps
	$(call install_missing,$(TEST_PACKAGES))
	$(SWIFT) build --build-tests --scratch-path $(BUILD_DIR)
	$(SWIFT) test --skip-build --scratch-path $(BUILD_DIR)

demo: build
	BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path) scripts/demo.sh

bench: bench-deps build
	BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path) scripts/bench.sh

# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="segment journal …"]: libFuzzer on every parser of
# outside input (docs/TESTING.md, "Fuzzing").
FUZZ_SECONDS ?= 60
fuzz: build
	FUZZ_SECONDS=$(FUZZ_SECONDS) BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path) scripts/fuzz.sh

PREFIX     ?= /usr
DESTDIR    ?=
VERSION    := 0.1.0
# Packages are built as `make build` builds (the same folder: nothing is built twice), always release.
PACKAGE_BUILD_DIR ?= $(BUILD_DIR)
PACKAGE_FLAGS = -c release --static-swift-stdlib --scratch-path $(PACKAGE_BUILD_DIR)

# make install [PREFIX=/usr] [DESTDIR=…]: binaries, units, drop-ins, udev rules, board
# profiles, the default configuration (never over an existing one) and the docs.
install:
	@[ -n "$(BIN)" ] || { echo "make install needs BIN (use make deb, or: make install BIN=\$$(swift build -c release --show-bin-path))"; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	  $(DESTDIR)$(PREFIX)/lib/tmpfiles.d $(DESTDIR)$(PREFIX)/lib/modules-load.d $(DESTDIR)$(PREFIX)/lib/systemd/logind.conf.d $(DESTDIR)$(PREFIX)/lib/systemd/journald.conf.d \
	  $(DESTDIR)$(PREFIX)/lib/udev/rules.d $(DESTDIR)$(PREFIX)/share/bodycam/boards $(DESTDIR)$(PREFIX)/share/bodycam/dts \
	  $(DESTDIR)$(PREFIX)/share/doc/bodycam $(DESTDIR)/etc/bodycam
	install -m 0755 $(BIN)/bodycamd $(BIN)/bodycamctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 Systemd/bodycamd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/
	install -m 0644 Systemd/sysusers.d/bodycam.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/
	install -m 0644 Systemd/tmpfiles.d/bodycam.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/
	install -m 0644 Systemd/modules-load.d/bodycam.conf $(DESTDIR)$(PREFIX)/lib/modules-load.d/
	install -m 0644 Systemd/logind.conf.d/bodycam.conf $(DESTDIR)$(PREFIX)/lib/systemd/logind.conf.d/
	install -m 0644 Systemd/journald.conf.d/bodycam.conf $(DESTDIR)$(PREFIX)/lib/systemd/journald.conf.d/
	install -m 0644 Systemd/uplink.conf $(DESTDIR)$(PREFIX)/share/bodycam/
	install -m 0644 Hardware/udev/60-bodycam.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/
	install -m 0644 Hardware/boards/*.toml $(DESTDIR)$(PREFIX)/share/bodycam/boards/
	install -m 0644 Hardware/dts/*.dts $(DESTDIR)$(PREFIX)/share/bodycam/dts/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/bodycam/
	[ -e $(DESTDIR)/etc/bodycam/bodycam.toml ] || install -m 0644 Hardware/config/bodycam.toml $(DESTDIR)/etc/bodycam/bodycam.toml

# make install-office [PREFIX=/usr] [DESTDIR=…] BIN=…: the evidence office's server (another
# machine than the camera): its binary, unit, user, an example configuration and the docs.
install-office:
	@[ -n "$(BIN)" ] || { echo "make install-office needs BIN (the folder with bodycam-office)"; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	  $(DESTDIR)$(PREFIX)/share/doc/bodycam $(DESTDIR)/etc/bodycam-office
	install -m 0755 $(BIN)/bodycam-office $(BIN)/bodycamctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 Systemd/bodycam-office.service $(DESTDIR)$(PREFIX)/lib/systemd/system/
	install -m 0644 Systemd/office/sysusers.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/bodycam-office.conf
	install -m 0644 docs/OFFICE.md docs/office-api.yaml docs/PKI.md docs/FORMAT.md $(DESTDIR)$(PREFIX)/share/doc/bodycam/
	[ -e $(DESTDIR)/etc/bodycam-office/office.toml ] || install -m 0644 Hardware/config/office.toml $(DESTDIR)/etc/bodycam-office/office.toml

# make deb: build/bodycam_VERSION_ARCH.deb, with the Swift runtime linked in.
package-deps: deps
	$(call install_missing,$(PACKAGE_PACKAGES))

deb: package-deps
	$(SWIFT) build $(PACKAGE_FLAGS) --product bodycamd
	$(SWIFT) build $(PACKAGE_FLAGS) --product bodycamctl
	BIN=$$($(SWIFT) build $(PACKAGE_FLAGS) --show-bin-path) scripts/make-deb.sh $(VERSION)

# Installs the .deb into a scratch root and checks what landed where.
deb-test: deb
	scripts/deb-test.sh build/bodycam_$(VERSION)_$$(dpkg --print-architecture).deb

# systemd-analyze verify on the installed unit, and its security exposure (must stay ≤ 2.0).
systemd-check: package-deps build
	scripts/systemd-check.sh $$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)

# The office's page in headless Chromium with officers' certificates: the fleet, segments,
# an export, live view and its glass-to-glass latency; refusals by role and without a
# certificate (scripts/browser-test.sh; it writes one Chromium policy file and removes it).
browser-test: build
	$(call install_missing,$(BROWSER_PACKAGES))
	BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path) scripts/browser-test.sh

# The hardware-in-the-loop rig: Debian's kernel under qemu with vivid and gpio-sim, bodycamd as
# built here (docs/TESTING.md). HW_SCENARIOS picks some (camera gpio camera-lost power-cut disk-full).
hw-deps: deps
	$(call install_missing,$(HW_PACKAGES))

HW_SCENARIOS ?=
hw-test: hw-deps build
	BIN=$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path) Hardware/rig/rig.sh run $(HW_SCENARIOS)

# The C shim built for the board's architecture: structure layouts and ioctl numbers checked there.
cross-deps: deps
	$(call install_missing,$(CROSS_PACKAGES))

check-arm64: cross-deps
	scripts/check-arm64.sh

# Regenerates docs/vectors (the test vectors of docs/FORMAT.md).
vectors: build
	rm -f docs/vectors/*.json
	$$($(SWIFT) build $(BUILD_FLAGS) --show-bin-path)/bodycam-vectors docs/vectors

clean:
	rm -rf $(BUILD_DIR)
