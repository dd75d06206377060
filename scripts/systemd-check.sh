#!/usr/bin/env bash
# systemd-analyze verify of the units as installed (in a scratch root, so no host file is
# touched), and their security exposure: bodycamd at or below 2.0, bodycamd with the uplink
# drop-in and bodycam-office at or below 2.5.
set -euo pipefail
BIN=${1:?the folder with the built binaries}
ROOT=$(mktemp -d -t bodycam-unit.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

# check UNIT FIGURE LIMIT WHAT: verifies UNIT, prints BENCH FIGURE (its exposure) and fails when
# that is above LIMIT. The scratch root has no sysusers-made user, no device nodes and no
# sysinit.target (which every unit with the default dependencies names): those remarks are
# about the scratch root, not the unit.
check() {
  local unit=$1 figure=$2 limit=$3 what=$4 verify problems exposure
  verify=$(systemd-analyze verify --root="$ROOT" "$ROOT/usr/lib/systemd/system/$unit" 2>&1 || true)
  problems=$(printf '%s\n' "$verify" \
             | grep -v -E '^$|Failed to resolve user|Failed to resolve group|DeviceAllow=.*(Failed|not)|Unit sysinit.target not found' || true)
  if [ -n "$problems" ]; then echo "$problems"; echo "systemd-check: $what: systemd-analyze verify found problems"; exit 1; fi
  echo "systemd-analyze verify: $what: clean"
  exposure=$(systemd-analyze security --offline=true --root="$ROOT" "$ROOT/usr/lib/systemd/system/$unit" 2>&1 \
             | sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p")
  [ -n "$exposure" ] || { echo "systemd-check: $what: no exposure figure"; exit 1; }
  echo "BENCH $figure $exposure level"
  awk -v e="$exposure" -v l="$limit" 'BEGIN { exit !(e <= l) }' || { echo "systemd-check: $what: exposure $exposure is above $limit"; exit 1; }
}

make --no-print-directory install DESTDIR="$ROOT" PREFIX=/usr BIN="$BIN" > /dev/null
check bodycamd.service systemd_exposure 2.0 bodycamd
# bodycamd with the uplink drop-in (docs/OFFICE.md).
mkdir -p "$ROOT/etc/systemd/system/bodycamd.service.d"
cp "$ROOT/usr/share/bodycam/uplink.conf" "$ROOT/etc/systemd/system/bodycamd.service.d/uplink.conf"
check bodycamd.service systemd_exposure_with_uplink 2.5 "bodycamd with the uplink drop-in"
# The office's server.
make --no-print-directory install-office DESTDIR="$ROOT" PREFIX=/usr BIN="$BIN" > /dev/null
check bodycam-office.service systemd_exposure_office 2.5 bodycam-office
echo "systemd-check: 4 passed, 0 failed"
