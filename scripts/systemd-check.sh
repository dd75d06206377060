#!/usr/bin/env bash
# systemd-analyze verify of the unit as installed (in a scratch root, so no host file is
# touched), and its security exposure, which must stay at or below 2.0.
set -euo pipefail
BIN=${1:?the folder with the built binaries}
ROOT=$(mktemp -d -t bodycam-unit.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
make --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr BIN="$BIN" > /dev/null
verify=$(systemd-analyze verify --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycamd.service" 2>&1 || true)
# The scratch root has no sysusers-made user and no device nodes; those two remarks are about
# the scratch root, not the unit.
problems=$(printf '%s\n' "$verify" | grep -v -E '^$|Failed to resolve user|Failed to resolve group|DeviceAllow=.*(Failed|not)' || true)
if [ -n "$problems" ]; then echo "$problems"; echo "systemd-check: systemd-analyze verify found problems"; exit 1; fi
echo "systemd-analyze verify: clean"
exposure=$(systemd-analyze security --offline=true --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycamd.service" 2>&1 \
           | sed -n 's/.*Overall exposure level for bodycamd.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || { echo "systemd-check: no exposure figure"; exit 1; }
echo "BENCH systemd_exposure $exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || { echo "systemd-check: exposure $exposure is above 2.0"; exit 1; }

# bodycamd with the uplink drop-in (docs/OFFICE.md): verified too, and its exposure is at most 2.5.
mkdir -p "$ROOT/etc/systemd/system/bodycamd.service.d"
cp "$ROOT/usr/share/bodycam/uplink.conf" "$ROOT/etc/systemd/system/bodycamd.service.d/uplink.conf"
verify=$(systemd-analyze verify --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycamd.service" 2>&1 || true)
problems=$(printf '%s\n' "$verify" | grep -v -E '^$|Failed to resolve user|Failed to resolve group|DeviceAllow=.*(Failed|not)' || true)
if [ -n "$problems" ]; then echo "$problems"; echo "systemd-check: the unit with the uplink drop-in has problems"; exit 1; fi
uplink=$(systemd-analyze security --offline=true --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycamd.service" 2>&1 \
         | sed -n 's/.*Overall exposure level for bodycamd.service: \([0-9.]*\).*/\1/p')
[ -n "$uplink" ] || { echo "systemd-check: no exposure figure with the uplink drop-in"; exit 1; }
echo "BENCH systemd_exposure_with_uplink $uplink level"
awk -v e="$uplink" 'BEGIN { exit !(e <= 2.5) }' || { echo "systemd-check: exposure with the uplink $uplink is above 2.5"; exit 1; }

# The office's server: its unit verified, its exposure at most 2.5.
make --no-print-directory install-office DESTDIR="$ROOT" PREFIX=/usr BIN="$BIN" > /dev/null
verify=$(systemd-analyze verify --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycam-office.service" 2>&1 || true)
# (The scratch root has no sysinit.target, which every unit with the default dependencies names.)
problems=$(printf '%s\n' "$verify" | grep -v -E '^$|Failed to resolve user|Failed to resolve group|Unit sysinit.target not found' || true)
if [ -n "$problems" ]; then echo "$problems"; echo "systemd-check: bodycam-office.service has problems"; exit 1; fi
office=$(systemd-analyze security --offline=true --root="$ROOT" "$ROOT/usr/lib/systemd/system/bodycam-office.service" 2>&1 \
         | sed -n 's/.*Overall exposure level for bodycam-office.service: \([0-9.]*\).*/\1/p')
[ -n "$office" ] || { echo "systemd-check: no exposure figure for bodycam-office"; exit 1; }
echo "BENCH systemd_exposure_office $office level"
awk -v e="$office" 'BEGIN { exit !(e <= 2.5) }' || { echo "systemd-check: bodycam-office exposure $office is above 2.5"; exit 1; }
echo "systemd-check: 4 passed, 0 failed"
