#!/usr/bin/env bash
# make demo: provisions test keys, runs bodycamd on the built-in test-pattern camera with the
# simulated buttons, goes through a duty (start, record, marks, a refused stop, an authorised
# stop, end). An evidence office (bodycam-office) runs on loopback: the camera uploads to it over
# mutual TLS as it records, the office acknowledges what its copy verifies, and the camera deletes
# what was acknowledged (retention_days = 0). The demo ends by verifying both stores and exporting
# the office's copy to playable MP4 files.
#   DEMO_DIR      where to keep everything (default: a new temporary folder)
#   DEMO_SECONDS  how long to record (default 20)
set -euo pipefail
BIN=${BIN:?BIN must name the folder holding bodycamd, bodycamctl and bodycam-office}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d -t bodycam-demo.XXXXXX)}
DEMO_SECONDS=${DEMO_SECONDS:-20}
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
STORE="$DEMO_DIR/store"
KEYS="$DEMO_DIR/keys"
SOCKET="$DEMO_DIR/control.sock"
DEVICE=BC-DEMO-0001
run() { echo "+ $*"; "$@"; }
ctl() { run "$BIN/bodycamctl" "$@" --socket "$SOCKET"; }

if [ ! -f "$KEYS/device.key" ]; then
  echo "== provisioning: the office's identity, the authority, a supervisor, the device key and its certificate"
  run "$BIN/bodycamctl" office init --dir "$KEYS" --name office
  run "$BIN/bodycamctl" authority init --dir "$KEYS"
  run "$BIN/bodycamctl" supervisor init --dir "$KEYS/supervisors" --name sgt-demo
  run "$BIN/bodycamctl" keys provision --dir "$KEYS"
  run "$BIN/bodycamctl" authority certify --authority-key "$KEYS/authority.key" --device-pub "$KEYS/device.pub" \
      --device-id "$DEVICE" --out "$KEYS/device.certificate"
  echo
fi
if [ ! -f "$KEYS/tls/$DEVICE.pem" ]; then
  echo "== TLS: the authority's CA issues the office's certificate, the camera's and an evidence officer's"
  run "$BIN/bodycamctl" authority issue office 127.0.0.1 --dir "$KEYS" --out "$KEYS/tls"
  run "$BIN/bodycamctl" authority issue device "$DEVICE" --dir "$KEYS" --out "$KEYS/tls"
  run "$BIN/bodycamctl" authority issue officer eva-evidence --role evidence --dir "$KEYS" --out "$KEYS/tls"
  echo
fi
if [ ! -f "$KEYS/tls/$DEVICE-media.pem" ]; then
  echo "== the authority's CA issues the camera's ONVIF Media Signing certificate"
  run "$BIN/bodycamctl" authority issue media-signing "$DEVICE" --dir "$KEYS" --out "$KEYS/tls"
  echo
fi
if [ ! -f "$KEYS/tls/lia-live.pem" ]; then
  run "$BIN/bodycamctl" authority issue officer lia-live --role live --dir "$KEYS" --out "$KEYS/tls"
  echo
fi
if [ ! -f "$KEYS/office-server/office-1-offload.key" ]; then
  echo "== the authority certifies the office server's key for offload acknowledgements"
  run "$BIN/bodycamctl" authority certify-key office-1 --dir "$KEYS" --out "$KEYS/office-server"
  echo
fi
if [ ! -f "$KEYS/evidence-office/eva-export.key" ]; then
  echo "== the authority certifies the evidence officer's key for signing export packages"
  run "$BIN/bodycamctl" authority certify-key eva --purpose export-package --dir "$KEYS" --out "$KEYS/evidence-office"
  echo
fi
mkdir -p "$DEMO_DIR/tokens"
# The supervisor keeps the secret key outside the folder the device trusts.
mv -f "$KEYS/supervisors/sgt-demo.key" "$KEYS/sgt-demo.key" 2>/dev/null || true

cat > "$DEMO_DIR/bodycam.toml" <<CONF
# Development profile: the built-in test pattern, simulated buttons, 5 s segments.
device_id = "$DEVICE"

[camera]
source = "test-pattern"
width = 1280
height = 720
fps = 30

[recording]
pre_event_seconds = 5
segment_seconds = 5

[storage]
path = "$STORE"

[evidence]
device_key = "$KEYS/device.key"
certificate = "$KEYS/device.certificate"
recipients = ["$KEYS/office.pub"]
media_signing_key = "$KEYS/tls/$DEVICE-media.key"
media_signing_certificate = "$KEYS/tls/$DEVICE-media.pem"

[controls]
backend = "simulated"

[policy]
supervisors = "$KEYS/supervisors"

[control]
socket = "$SOCKET"
CONF

OFFICE_STORE="$DEMO_DIR/office"
cat > "$DEMO_DIR/office.toml" <<CONF
# The evidence office on loopback, on any free port.
[office]
listen_host = "127.0.0.1"
listen_port = 0
store = "$OFFICE_STORE"
certificate = "$KEYS/tls/127.0.0.1.pem"
key = "$KEYS/tls/127.0.0.1.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
offload_key = "$KEYS/office-server/office-1-offload.key"
offload_certificate = "$KEYS/office-server/office-1-offload.certificate"
# The demo's segments are acknowledged as soon as they verify (a deployment waits 5 minutes,
# so that a camera gets a few acknowledgements a day, not one a segment).
acknowledge_after_seconds = 0
# Live view: the office's identity decrypts the segment being recorded for a viewer.
identity = "$KEYS/office.key"
CONF
echo "== bodycam-office starts on loopback (mutual TLS; only the authority's CA)"
"$BIN/bodycam-office" --config "$DEMO_DIR/office.toml" 2> "$DEMO_DIR/office.log" &
OFFICE=$!
trap 'kill $OFFICE 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$DEMO_DIR/office.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 $OFFICE 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$DEMO_DIR/office.log"; echo "bodycam-office did not start"; exit 1; }
echo "   listening on https://127.0.0.1:$PORT"
cat >> "$DEMO_DIR/bodycam.toml" <<CONF

[uplink]
office = "https://127.0.0.1:$PORT"
certificate = "$KEYS/tls/$DEVICE.pem"
key = "$KEYS/tls/$DEVICE.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
# Acknowledged segments leave the camera at once (the office holds them, verified).
retention_days = 0
heartbeat_seconds = 5
CONF

echo "== bodycamd starts (off duty: it will not record until a duty starts)"
"$BIN/bodycamd" --config "$DEMO_DIR/bodycam.toml" 2> "$DEMO_DIR/bodycamd.log" &
DAEMON=$!
trap 'kill $DAEMON $OFFICE 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S "$SOCKET" ] && break; sleep 0.1; done
[ -S "$SOCKET" ] || { cat "$DEMO_DIR/bodycamd.log"; echo "bodycamd did not start"; exit 1; }

echo "== a press of record off duty is refused"
ctl sim click REC_BTN || true
echo "== the supervisor starts the duty of OFFICER-7"
run "$BIN/bodycamctl" supervisor token --kind duty-start --key "$KEYS/sgt-demo.key" --issuer sgt-demo --device-id "$DEVICE" \
    --officer-id OFFICER-7 --duty-id DUTY-2026-001 --out "$DEMO_DIR/tokens/duty-start.token"
ctl duty start --token "$DEMO_DIR/tokens/duty-start.token"
sleep 3
echo "== record: the recording opens with the pre-event buffer (about 3 s before the press)"
ctl sim click REC_BTN
sleep $((DEMO_SECONDS / 2))
echo "== marks: the mark button, and a labelled mark"
ctl sim click MARK_BTN
ctl mark --label "document check"
echo "== live view: an officer with the live role watches through the office (the camera goes live at its next heartbeat)"
"$BIN/bodycamctl" live --office "https://127.0.0.1:$PORT" --device "$DEVICE" --certificate "$KEYS/tls/lia-live.pem" \
    --key "$KEYS/tls/lia-live.key" --ca "$KEYS/ca.pem" --seconds $((DEMO_SECONDS / 2)) --out "$DEMO_DIR/live.mp4" --latency \
    2> "$DEMO_DIR/live.log" &
VIEWER=$!
echo "== the officer tries to stop: refused (journaled, distinct vibration); so is the power button"
ctl sim click REC_BTN || true
ctl sim hold PWR_BTN || true
sleep $((DEMO_SECONDS / 2))
wait $VIEWER || { cat "$DEMO_DIR/live.log"; echo "live view failed"; exit 1; }
echo "   $(tail -1 "$DEMO_DIR/live.log") ($DEMO_DIR/live.mp4: $(stat -c %s "$DEMO_DIR/live.mp4") bytes; play it with ffplay)"
echo "== the supervisor's stop token stops the recording; the same token again is a replay"
run "$BIN/bodycamctl" supervisor token --kind stop --key "$KEYS/sgt-demo.key" --issuer sgt-demo --device-id "$DEVICE" \
    --out "$DEMO_DIR/tokens/stop.token"
ctl stop --token "$DEMO_DIR/tokens/stop.token"
ctl stop --token "$DEMO_DIR/tokens/stop.token" || true
ctl status
echo "== end of duty, then the service stops (SIGTERM)"
run "$BIN/bodycamctl" supervisor token --kind duty-end --key "$KEYS/sgt-demo.key" --issuer sgt-demo --device-id "$DEVICE" \
    --out "$DEMO_DIR/tokens/duty-end.token"
ctl duty end --token "$DEMO_DIR/tokens/duty-end.token"
kill -TERM $DAEMON
wait $DAEMON
trap 'kill $OFFICE 2>/dev/null || true' EXIT
sed 's/^/   /' "$DEMO_DIR/bodycamd.log"
echo
echo "== the audit journal, record by record:"
grep -o '"kind":"[a-z_]*"' "$STORE/journal.log" | cut -d'"' -f4 | paste -sd' ' | fold -s -w 100 | sed 's/^/   /'
echo
COPY="$OFFICE_STORE/devices/$DEVICE"
echo "== acknowledgements: the office signed them (its key certified by the authority); the camera kept each and deleted what it names"
ACKS=$(grep -c '"kind":"offload_received"' "$STORE/journal.log" || true)
OFFLOADED=$(grep -c '"kind":"segment_offloaded"' "$STORE/journal.log" || true)
SEGMENTS=$(ls "$STORE"/*.manifest | wc -l)
echo "   segments recorded: $SEGMENTS; acknowledgements received: $ACKS; segments offloaded (deleted on the camera): $OFFLOADED;" \
     "still on the camera: $(ls "$STORE"/*.bcseg 2>/dev/null | wc -l)"
[ "$ACKS" -ge 1 ] && [ "$OFFLOADED" -ge 1 ] || { echo "no acknowledgement was applied"; exit 1; }
echo
echo "== verify the camera's store (no key needed: signatures, certificate, chain, hashes, journal; each deletion proven by its acknowledgement)"
run "$BIN/bodycamctl" verify --authority "$KEYS/authority.pub" "$STORE"
echo
echo "== the office's copy, uploaded over mutual TLS while the camera recorded, verified the same way"
echo "   (its journal ends at the camera's last upload pass, before the camera's shutdown record: verify says so)"
run "$BIN/bodycamctl" verify --authority "$KEYS/authority.pub" "$COPY"
echo "   segments at the office: $(ls "$COPY"/*.bcseg | wc -l) of $SEGMENTS"
for manifest in "$STORE"/*.manifest; do
  name=$(basename "$manifest" .manifest)
  [ -f "$COPY/$name.bcseg" ] || { echo "the office has no $name.bcseg"; exit 1; }
  [ ! -f "$STORE/$name.bcseg" ] || cmp -s "$STORE/$name.bcseg" "$COPY/$name.bcseg" || { echo "the office's copy of $name differs"; exit 1; }
done
echo "   the office holds every segment; those still on the camera are byte for byte the same"
echo
echo "== export the office's copy with the office's identity: decrypt, check, standard MP4 per segment, decode"
rm -rf "$DEMO_DIR/export" "$DEMO_DIR/incident"
run "$BIN/bodycamctl" export --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --out "$DEMO_DIR/export" "$COPY"
echo "== the incident around the first mark, one file: 5 s before it to 5 s after, cut on keyframes, the marks as chapters"
run "$BIN/bodycamctl" export --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --incident mark:1 --before 5 --after 5 \
  --signing-key "$KEYS/evidence-office/eva-export.key" --signing-certificate "$KEYS/evidence-office/eva-export.certificate" \
  --out "$DEMO_DIR/incident" "$COPY" | grep -E '^(INCIDENT|  CHAPTER|MARK)'
echo "== the incident's package as a court checks it, with the authority's public key alone"
run "$BIN/bodycamctl" verify-export --authority "$KEYS/authority.pub" "$DEMO_DIR/incident"
echo "== the incident's clip proves itself: ONVIF Media Signing in its H.264, checked against the authority's CA"
run "$BIN/bodycamctl" verify-media --ca "$KEYS/ca.pem" "$DEMO_DIR"/incident/incident-*.mp4
echo
kill -TERM $OFFICE
wait $OFFICE || true
trap - EXIT
echo "== the office's access journal (signed by $OFFICE_STORE/access.pub), by kind:"
grep -o '"kind":"[a-z_]*"' "$OFFICE_STORE/access.log" | cut -d'"' -f4 | sort | uniq -c | sed 's/^/   /'
echo
echo "Standard MP4 files that play in any player: $DEMO_DIR/export (report: $DEMO_DIR/export/export-report.txt),"
echo "   the incident around the first mark, a signed package: $DEMO_DIR/incident (docs/EXPORT.md)"
echo "The office's store: $OFFICE_STORE (docs/OFFICE.md)"
echo "The office's page: start bodycam-office --config $DEMO_DIR/office.toml again and open https://127.0.0.1:PORT/"
echo "   (the port it logs) in a browser holding an officer's certificate, $KEYS/tls/lia-live.pem and .key, and"
echo "   trusting $KEYS/ca.pem; make browser-test does it in headless Chromium (docs/OFFICE.md, \"The office's page\")"
