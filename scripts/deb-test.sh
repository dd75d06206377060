#!/usr/bin/env bash
# Installs the .deb into a scratch root and checks what landed where, with which modes, and
# that the packaged binaries run without the Swift toolchain.
set -euo pipefail
DEB=${1:?the .deb}
SCRATCH=$(mktemp -d -t bodycam-deb.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
fail() { echo "deb-test: FAIL: $*"; exit 1; }
[ "$(dpkg-deb --field "$DEB" Package)" = bodycam ] || fail "not the bodycam package"
depends=$(dpkg-deb --field "$DEB" Depends)
for package in libavcodec59 libavformat59 libswscale6 libx264-164 libv4l-0 libgpiod2 libssl3 libcurl4; do
  case "$depends" in *"$package"*) ;; *) fail "Depends does not name $package: $depends" ;; esac
done
echo "ok Depends: $depends"
mkdir -p "$SCRATCH/var/lib/dpkg/updates" "$SCRATCH/var/lib/dpkg/info"
touch "$SCRATCH/var/lib/dpkg/status"
# The maintainer scripts run the host's systemd-sysusers/-tmpfiles; --root keeps them in the
# scratch root, and --force-depends because the scratch root has no other package.
dpkg --root="$SCRATCH" --force-depends --force-not-root --force-script-chrootless -i "$DEB" > "$SCRATCH.log" 2>&1 \
  || { cat "$SCRATCH.log"; fail "dpkg -i"; }
expect() { [ -e "$SCRATCH$1" ] || fail "$1 is missing"; [ "$(stat -c %a "$SCRATCH$1")" = "$2" ] || fail "$1 has mode $(stat -c %a "$SCRATCH$1"), expected $2"; echo "ok $1 ($2)"; }
expect /usr/bin/bodycamd 755
expect /usr/bin/bodycamctl 755
expect /usr/lib/systemd/system/bodycamd.service 644
expect /usr/lib/sysusers.d/bodycam.conf 644
expect /usr/lib/tmpfiles.d/bodycam.conf 644
expect /usr/lib/modules-load.d/bodycam.conf 644
expect /usr/lib/systemd/logind.conf.d/bodycam.conf 644
expect /usr/lib/systemd/journald.conf.d/bodycam.conf 644
expect /usr/lib/udev/rules.d/60-bodycam.rules 644
expect /usr/share/bodycam/boards/rpi-cm4.toml 644
expect /usr/share/bodycam/boards/simulator.toml 644
expect /usr/share/doc/bodycam/FORMAT.md 644
expect /etc/bodycam/bodycam.toml 644
[ -L "$SCRATCH/etc/systemd/system/basic.target.wants/bodycamd.service" ] || fail "the service is not enabled"
echo "ok bodycamd.service enabled"
grep -q '^bodycam:' "$SCRATCH/etc/passwd" || fail "sysusers made no bodycam user in the scratch root"
grep -q '^bodycam-tech:' "$SCRATCH/etc/group" || fail "sysusers made no bodycam-tech group"
echo "ok user bodycam and groups made (sysusers)"
expect /var/lib/bodycam/keys 700
grep -q '^/etc/bodycam/bodycam.toml$' "$SCRATCH/var/lib/dpkg/info/bodycam.conffiles" || fail "the configuration is not a conffile"
echo "ok /etc/bodycam/bodycam.toml is a conffile"
# The packaged binaries run without the toolchain's libraries.
ldd "$SCRATCH/usr/bin/bodycamd" | grep -q libswiftCore && fail "bodycamd needs the Swift runtime from outside"
"$SCRATCH/usr/bin/bodycamd" --help | grep -q "USAGE: bodycamd" || fail "bodycamd --help"
"$SCRATCH/usr/bin/bodycamctl" --help | grep -q "verify" || fail "bodycamctl --help"
echo "ok packaged binaries run"
echo "deb-test: 16 passed, 0 failed"
