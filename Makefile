# bodycam — build, test, demo and benchmark on Debian 12 (bookworm).
# Every target installs the Debian packages it needs first, and only those that are missing.

SWIFT      ?= swift
BUILD_DIR  ?= .build
CONFIG     ?= release
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Headers and libraries the package links (pkg-config names in Package.swift).
BUILD_PACKAGES := pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
                  libv4l-dev libgpiod-dev libssl-dev
# The reference encoder and the resource meter `make bench` compares against.
BENCH_PACKAGES := ffmpeg time

.PHONY: all deps bench-deps build test demo bench vectors clean

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

build: deps
	$(SWIFT) build -c $(CONFIG) --scratch-path $(BUILD_DIR)

test: deps
	$(SWIFT) build --build-tests --scratch-path $(BUILD_DIR)
	$(SWIFT) test --skip-build --scratch-path $(BUILD_DIR)

demo: build
	BIN=$$($(SWIFT) build -c $(CONFIG) --scratch-path $(BUILD_DIR) --show-bin-path) scripts/demo.sh

bench: bench-deps build
	BIN=$$($(SWIFT) build -c $(CONFIG) --scratch-path $(BUILD_DIR) --show-bin-path) scripts/bench.sh

# Regenerates docs/vectors (the test vectors of docs/FORMAT.md).
vectors: build
	rm -f docs/vectors/*.json
	$$($(SWIFT) build -c $(CONFIG) --scratch-path $(BUILD_DIR) --show-bin-path)/bodycam-vectors docs/vectors

clean:
	rm -rf $(BUILD_DIR)
