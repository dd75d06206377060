#!/usr/bin/env bash
# make demo: a short session of bodycamd on the built-in test-pattern camera, then every
# recorded segment decoded and checked with bodycamctl.
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
CONF

run() { echo "+ $*"; "$@"; }

echo "== bodycamd: ${STANDBY} s standby (pre-event buffer), then recording, ${DEMO_SECONDS} s in all"
run "$BIN/bodycamd" --config "$DEMO_DIR/bodycam.toml" --record-after "$STANDBY" --duration "$DEMO_SECONDS"
echo
echo "== every segment opened with libavformat and decoded with libavcodec"
run "$BIN/bodycamctl" probe "$STORE"
echo
echo "Segments are in $STORE (plain MP4 for now; any player opens them)."
