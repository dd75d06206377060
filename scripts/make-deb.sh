#!/usr/bin/env bash
# Builds build/bodycam_VERSION_ARCH.deb from the binaries in $BIN (see `make deb`).
set -euo pipefail
VERSION=${1:?version}
BIN=${BIN:?BIN names the folder with bodycamd and bodycamctl}
ARCH=$(dpkg --print-architecture)
ROOT=build/deb/root
rm -rf build/deb && mkdir -p "$ROOT/DEBIAN"
make --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr BIN="$BIN" > /dev/null
# The libraries the binaries link directly (ELF NEEDED), as Debian package names; the Swift
# runtime is linked in. bodycamd also loads two on first use (dlopen), which no NEEDED of it
# names: libcurl.so.4 when the uplink first connects, and the libavcodec of the headers it was
# built with (CAVCodecShims: libavcodec.so.MAJOR) for an MJPEG camera or the SoC's encoder.
# glibc 2.36 is the first to apply the daemon's packed relative relocations (GLIBC_ABI_DT_RELR).
loaded="libcurl.so.4 libavcodec.so.$(pkg-config --modversion libavcodec | cut -d. -f1)"
depends=$( { for binary in "$BIN/bodycamd" "$BIN/bodycamctl"; do objdump -p "$binary" | awk '/NEEDED/ { print $2 }'; done
             printf '%s\n' $loaded; } | sort -u \
          | while read -r soname; do
              path=$(ldconfig -p | awk -v so="$soname" '$1 == so { print $NF; exit }')
              [ -n "$path" ] || { echo "make-deb: $soname is not installed here: its package cannot be named" >&2; exit 1; }
              dpkg -S "$(readlink -f "$path")" 2>/dev/null | cut -d: -f1
            done | sort -u | grep -v -E '^(libc6|libgcc-s1|libstdc\+\+6)$' | paste -sd, | sed 's/,/, /g')
cat > "$ROOT/DEBIAN/control" <<CONTROL
Package: bodycam
Version: $VERSION
Architecture: $ARCH
Maintainer: bodycam maintainers <maintainers@bodycam.invalid>
Depends: libc6 (>= 2.36), systemd, ${depends}
Section: video
Priority: optional
Description: body-worn camera controller for customs officers
 bodycamd records from a V4L2 camera into encrypted, signed, hash-chained
 segments and enforces the recording policy (no stop without authorisation);
 bodycamctl verifies and exports the evidence.
CONTROL
echo "/etc/bodycam/bodycam.toml" > "$ROOT/DEBIAN/conffiles"
cat > "$ROOT/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# DPKG_ROOT is set when dpkg installs into another root (an image being built): every path and
# tool below stays inside it.
set -e
if [ "$1" = "configure" ]; then
  root="${DPKG_ROOT:-/}"
  systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/bodycam.conf"
  systemd-tmpfiles --root="$root" --create "$root/usr/lib/tmpfiles.d/bodycam.conf" || true
  if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable bodycamd.service
  else
    systemctl --root="$root" enable bodycamd.service
  fi
fi
POSTINST
cat > "$ROOT/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now bodycamd.service || true
fi
PRERM
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm"
mkdir -p build
dpkg-deb --root-owner-group --build "$ROOT" "build/bodycam_${VERSION}_${ARCH}.deb" > /dev/null
echo "build/bodycam_${VERSION}_${ARCH}.deb"
