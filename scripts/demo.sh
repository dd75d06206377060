#!/usr/bin/env bash
# make demo: provisions test keys, runs a short session of bodycamd on the built-in
# test-pattern camera, then verifies the store and exports it to playable MP4 files.
#   DEMO_DIR      where to keep everything (default: a new temporary folder)
#   DEMO_SECONDS  length of the session (default 20)
set -euo pipefail
BIN=${BIN:?BIN must name the folder holding bodycamd and bodycamctl}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d -t bodycam-demo.XXXXXX)}
DEMO_SECONDS=${DEMO_SECONDS:-20}
STANDBY=5
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
STORE="$DEMO_DIR/store"
KEYS="$DEMO_DIR/keys"
run() { echo "+ $*"; "$@"; }

if [ ! -f "$KEYS/device.key" ]; then
  echo "== provisioning: the office's identity, the authority, the device key and its certificate"
  run "$BIN/bodycamctl" office init --dir "$KEYS" --name office
  run "$BIN/bodycamctl" authority init --dir "$KEYS"
  run "$BIN/bodycamctl" keys provision --dir "$KEYS"
  run "$BIN/bodycamctl" authority certify --authority-key "$KEYS/authority.key" --device-pub "$KEYS/device.pub" \
      --device-id BC-DEMO-0001 --out "$KEYS/device.certificate"
  echo
fi

cat > "$DEMO_DIR/bodycam.toml" <<CONF
# Development profile: the built-in test pattern, 5 s segments, a store in the demo folder.
device_id = "BC-DEMO-0001"
officer_id = "OFFICER-7"

[camera]
source = "test-pattern"
width = 1280
height = 720
fps = 30

[recording]
pre_event_seconds = $STANDBY
segment_seconds = 5

[storage]
path = "$STORE"

[evidence]
device_key = "$KEYS/device.key"
certificate = "$KEYS/device.certificate"
recipients = ["$KEYS/office.pub"]
CONF

echo "== bodycamd: ${STANDBY} s standby (pre-event buffer), then recording, ${DEMO_SECONDS} s in all"
run "$BIN/bodycamd" --config "$DEMO_DIR/bodycam.toml" --record-after "$STANDBY" --duration "$DEMO_SECONDS"
echo
echo "== the store holds only sealed segments, signed manifests and the journal:"
ls "$STORE" | sed 's/^/   /'
echo
echo "== verify (no key needed: signatures, certificate, chain, hashes, journal)"
run "$BIN/bodycamctl" verify --authority "$KEYS/authority.pub" "$STORE"
echo
echo "== export with the office's identity: decrypt, check, decode"
rm -rf "$DEMO_DIR/export"
run "$BIN/bodycamctl" export --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --out "$DEMO_DIR/export" "$STORE"
echo
echo "Playable MP4 files: $DEMO_DIR/export (report: $DEMO_DIR/export/export-report.txt)"
