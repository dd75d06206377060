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
echo "systemd-check: 2 passed, 0 failed"
