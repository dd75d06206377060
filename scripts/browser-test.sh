#!/usr/bin/env bash
# make browser-test: the office's page in a real browser (docs/OFFICE.md, "The office's page").
# A camera (bodycamd, test pattern in real time) uploads to bodycam-office on loopback; headless
# Chromium (Debian's), holding an officer's certificate in its NSS database, opens the page:
#   - an officer with the evidence, live and technician roles sees the fleet, the device's
#     segments verified, downloads an export, and plays live view (Media Source Extensions),
#     whose glass-to-glass latency the page measures (now minus the capture time of the picture
#     on screen);
#   - a technician sees the fleet and is refused the export and live view (403);
#   - a browser without a certificate does not get the page (the TLS handshake fails);
#   - the exports (docs/EXPORT.md), signed in the stream (ONVIF Media Signing), each in a <video>
#     element: the office's download, a segment per file and an incident joined across two
#     segments, from `bodycamctl export`, each AUTHENTIC to `bodycamctl verify-media`: the length
#     to within a frame, and seeks to 25, 50 and 75 % land there and show the picture a decoder
#     shows at that time (the test pattern's burned-in frame number, read back by bodycam-bench).
# Chromium picks the certificate by the AutoSelectCertificateForUrls policy, which it reads only
# from /etc/chromium/policies/managed: this script writes one file there and removes it.
#   BIN  the folder with bodycamd, bodycamctl, bodycam-office and bodycam-bench
set -euo pipefail
BIN=${BIN:?BIN must name the folder holding bodycamd, bodycamctl, bodycam-office and bodycam-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d -t bodycam-browser.XXXXXX)
POLICIES=/etc/chromium/policies/managed
POLICY=$POLICIES/bodycam-browser-test-$$.json
CREATED_POLICIES=""
[ -d "$POLICIES" ] || CREATED_POLICIES=1
KEYS="$DIR/keys"
DEVICE=BC-WEB-1
PIDS=()
# stop PID: SIGTERM, then SIGKILL if it has not ended within 10 s.
stop() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  for pid in "${PIDS[@]}"; do stop "$pid"; done
  wait 2>/dev/null || true
  rm -f "$POLICY"
  # The folder goes too when this script made it (and nothing else is in it).
  if [ -n "$CREATED_POLICIES" ]; then rmdir "$POLICIES" /etc/chromium/policies 2>/dev/null || true; fi
  [ -n "${BROWSER_KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "browser-test: $*" >&2; exit 1; }
ctl() { "$BIN/bodycamctl" "$@" > /dev/null; }

ctl office init --dir "$KEYS" --name office
ctl authority init --dir "$KEYS"
ctl keys provision --dir "$KEYS"
ctl authority certify --authority-key "$KEYS/authority.key" --device-pub "$KEYS/device.pub" --device-id "$DEVICE" --out "$KEYS/device.certificate"
ctl authority certify-key office-1 --dir "$KEYS" --out "$KEYS"
ctl authority issue office 127.0.0.1 --dir "$KEYS" --out "$KEYS/tls"
ctl authority issue device "$DEVICE" --dir "$KEYS" --out "$KEYS/tls"
ctl authority issue officer eva --role evidence --role live --role technician --dir "$KEYS" --out "$KEYS/tls"
ctl authority issue officer tom --role technician --dir "$KEYS" --out "$KEYS/tls"
ctl authority issue media-signing "$DEVICE" --dir "$KEYS" --out "$KEYS/tls"

cat > "$DIR/office.toml" <<CONF
[office]
listen_host = "127.0.0.1"
listen_port = 0
store = "$DIR/office"
certificate = "$KEYS/tls/127.0.0.1.pem"
key = "$KEYS/tls/127.0.0.1.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
offload_key = "$KEYS/office-1-offload.key"
offload_certificate = "$KEYS/office-1-offload.certificate"
acknowledge_after_seconds = 0
identity = "$KEYS/office.key"
CONF
"$BIN/bodycam-office" --config "$DIR/office.toml" 2> "$DIR/office.log" &
PIDS+=($!)
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$DIR/office.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$DIR/office.log" >&2; fail "bodycam-office did not start"; }
URL="https://127.0.0.1:$PORT"

cat > "$DIR/bodycam.toml" <<CONF
device_id = "$DEVICE"
[camera]
source = "test-pattern"
width = 1280
height = 720
fps = 30
[recording]
pre_event_seconds = 0
segment_seconds = 5
[storage]
path = "$DIR/store"
[evidence]
device_key = "$KEYS/device.key"
certificate = "$KEYS/device.certificate"
recipients = ["$KEYS/office.pub"]
media_signing_key = "$KEYS/tls/$DEVICE-media.key"
media_signing_certificate = "$KEYS/tls/$DEVICE-media.pem"
[controls]
backend = "simulated"
[policy]
on_duty_at_start = true
[control]
socket = "$DIR/control.sock"
[uplink]
office = "$URL"
certificate = "$KEYS/tls/$DEVICE.pem"
key = "$KEYS/tls/$DEVICE.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
retention_days = 1
heartbeat_seconds = 5
CONF
"$BIN/bodycamd" --config "$DIR/bodycam.toml" --record-after 0 2> "$DIR/bodycamd.log" &
PIDS+=($!)
# Two segments at the office before the browser looks.
for _ in $(seq 600); do
  [ "$(ls "$DIR/office/devices/$DEVICE/"*.manifest 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.1
done
[ "$(ls "$DIR/office/devices/$DEVICE/"*.manifest 2>/dev/null | wc -l)" -ge 2 ] || { cat "$DIR/bodycamd.log" >&2; fail "no segment reached the office"; }

# The officers' certificates in an NSS database of a home of the test's own; the CA trusted.
export HOME="$DIR/home"
NSS="sql:$HOME/.pki/nssdb"
mkdir -p "$HOME/.pki/nssdb"
certutil -N -d "$NSS" --empty-password
certutil -A -d "$NSS" -n "bodycam authority" -t "C,," -i "$KEYS/ca.pem"
for officer in eva tom; do
  openssl pkcs12 -export -in "$KEYS/tls/$officer.pem" -inkey "$KEYS/tls/$officer.key" -out "$DIR/$officer.p12" -passout pass: -name "$officer"
  pk12util -i "$DIR/$officer.p12" -d "$NSS" -W "" > /dev/null
done
mkdir -p "$(dirname "$POLICY")"
# A browser that holds no certificate: the CA trusted, nothing else.
mkdir -p "$DIR/bare/.pki/nssdb"
certutil -N -d "sql:$DIR/bare/.pki/nssdb" --empty-password
certutil -A -d "sql:$DIR/bare/.pki/nssdb" -n "bodycam authority" -t "C,," -i "$KEYS/ca.pem"

# browse CN CHECK [URL]: Chromium with the certificate whose subject CN is CN ("" for none) runs
# CHECK on URL (the office's page unless given).
browse() {
  local cn=$1 check=$2 url=${3:-$URL/} profile="$DIR/chrome-$1-${2%%:*}" pid home=$HOME
  if [ -n "$cn" ]; then
    printf '{"AutoSelectCertificateForUrls": ["{\\"pattern\\":\\"%s\\",\\"filter\\":{\\"SUBJECT\\":{\\"CN\\":\\"%s\\"}}}"]}\n' "$URL" "$cn" > "$POLICY"
  else
    rm -f "$POLICY"
    home="$DIR/bare"
  fi
  HOME=$home chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$profile" --remote-debugging-port=0 \
           --autoplay-policy=no-user-gesture-required --allow-file-access-from-files about:blank > "$DIR/chromium.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  timeout 180 python3 "$HERE/browser-check.py" "$profile/DevToolsActivePort" "$url" "$check" 60 \
    || echo '{"loaded": false, "error": "the browser check did not finish"}'
  stop "$pid"
  wait "$pid" 2>/dev/null || true
}

echo "== an officer with the evidence, live and technician roles"
browse eva page > "$DIR/eva.json"   # not in a subshell: cleanup must see the browser's pid
eva=$(cat "$DIR/eva.json")
echo "$eva"
python3 - "$eva" "$DEVICE" <<'PY'
import json, statistics, sys
answer, device = json.loads(sys.argv[1]), sys.argv[2]
result = answer.get("result") or {}
problems = []
if not answer.get("loaded"): problems.append("the page did not load: %s" % answer.get("error"))
if not any(row and row[0] == device for row in result.get("rows", [])): problems.append("the fleet does not show " + device)
if not result.get("verified") or any(v != "yes" for v in result["verified"]): problems.append("segments not shown verified: %s" % result.get("verified"))
if result.get("exportStatus") != 200 or result.get("exportType") != "video/mp4" or result.get("exportBytes", 0) < 1000:
    problems.append("the export did not download: %s %s %s" % (result.get("exportStatus"), result.get("exportType"), result.get("exportBytes")))
elif result.get("segmentDuration") is None or abs((result.get("exportDuration") or 0) - result["segmentDuration"] - result.get("signaturePictures", 0) / 30) > 1 / 30 + 0.001:
    problems.append("the downloaded export plays %s s in a <video> element, the segment is %s s and %s pictures of the next sign its last GOP"
                    % (result.get("exportDuration"), result.get("segmentDuration"), result.get("signaturePictures")))
latencies = [l for l in result.get("latencies", []) if l > 0]
if len(latencies) < 20: problems.append("live view did not play: %d latency samples, error %r" % (len(latencies), result.get("error")))
if not result.get("width"): problems.append("no picture in the video element")
if problems:
    sys.exit("browser-test: " + "; ".join(problems))
print("BENCH browser_glass_to_glass_median_s %.3f s" % statistics.median(latencies))
print("BENCH browser_glass_to_glass_max_s %.3f s" % max(latencies))
print("browser-test: evidence officer: fleet, %d segments verified, export %d bytes playing %.3f s (segment %.3f s), live %dx%d, %d pictures decoded"
      % (len(result["verified"]), result["exportBytes"], result["exportDuration"], result["segmentDuration"], result["width"], result["height"],
         result.get("decoded") or 0))
PY

echo "== the office's download of a segment: ONVIF Media Signing on every GOP (the next segment's two pictures sign its last)"
# office_get PATH [curl options]: GET the device's PATH as eva.
office_get() { local path=$1; shift; curl -sSf --cert "$KEYS/tls/eva.pem" --key "$KEYS/tls/eva.key" --cacert "$KEYS/ca.pem" "$@" "$URL/v1/devices/$DEVICE/$path"; }
# (The listing is newest first: the oldest segment whose next one the office holds verified.)
FIRST=$(office_get segments | python3 -c '
import json, sys
segments = {s["sequence"]: s for s in json.load(sys.stdin)["segments"] if s["verified"]}
print(segments[min(n for n in segments if n + 1 in segments)]["file"].replace(".bcseg", ".mp4"))') \
  || fail "the office does not list two verified segments of the device"
office_get "export/$FIRST" -D "$DIR/download.headers" > "$DIR/download.mp4" || fail "the office's download of $FIRST failed"
# Its length in a <video> element (checked with the exports below): the segment's, and the pictures added.
office_get segments | python3 -c '
import json, re, sys
name, headers = sys.argv[1], open(sys.argv[2]).read()
added = int(re.search(r"(?im)^x-bodycam-signature-pictures: *([0-9]+)", headers).group(1))
segment = next(s for s in json.load(sys.stdin)["segments"] if s["file"] == name.replace(".mp4", ".bcseg"))
print(json.dumps({"office/" + name: segment["duration_us"] / 1e6 + added / 30}))' "$FIRST" "$DIR/download.headers" > "$DIR/download-expected.json" \
  || fail "the office's download of $FIRST does not say what it added"
"$BIN/bodycamctl" verify-media --json --ca "$KEYS/ca.pem" "$DIR/download.mp4" > "$DIR/download-media.json" \
  || { cat "$DIR/download-media.json" >&2; fail "the office's download of $FIRST is not authentic"; }
python3 - "$DIR/download-media.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
inside = [g for g in report["gops"] if g["result"] != "outside"]
if report["unsigned_trailing_pictures"] != 2 or report["verified_gops"] != len(inside) or not inside:
    sys.exit("browser-test: the office's download leaves GOPs unsigned: %d verified of %d, %d pictures after the last signature"
             % (report["verified_gops"], len(inside), report["unsigned_trailing_pictures"]))
print("browser-test: the office's download: AUTHENTIC, %d GOPs verified, the 2 pictures after the last signature are the next segment's" % len(inside))
PY

echo "== a technician: the fleet, but no export and no live view"
browse tom page > "$DIR/tom.json"
tom=$(cat "$DIR/tom.json")
python3 - "$tom" "$DEVICE" <<'PY'
import json, sys
answer, device = json.loads(sys.argv[1]), sys.argv[2]
result = answer.get("result") or {}
problems = []
if not any(row and row[0] == device for row in result.get("rows", [])): problems.append("the fleet does not show " + device)
if result.get("exportStatus") != 403: problems.append("the export was not refused: %s" % result.get("exportStatus"))
if "403" not in (result.get("error") or "") or result.get("latencies"): problems.append("live view was not refused: %r" % result.get("error"))
if problems:
    sys.exit("browser-test: " + "; ".join(problems))
print("browser-test: technician: fleet shown; export and live view refused (403)")
PY

echo "== no certificate"
browse "" load > "$DIR/nobody.json"
nobody=$(cat "$DIR/nobody.json")
python3 - "$nobody" <<'PY'
import json, sys
answer = json.loads(sys.argv[1])
if answer.get("loaded") or "ERR_" not in (answer.get("error") or ""):
    sys.exit("browser-test: a browser without a certificate was not refused at the handshake: %s" % answer)
print("browser-test: without a certificate: refused (%s)" % (answer.get("error") or (answer.get("result") or {}).get("text", "")[:80]))
PY
grep -q '"kind":"tls_refused"' "$DIR/office/access.log" || fail "the refused handshake is not in the access journal"

echo "== exports in a <video> element: one segment per file, and an incident joined across two segments"
stop "${PIDS[1]}"   # bodycamd: it seals its open segment
EXPORTS="$DIR/exports"
ctl export --json --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --out "$EXPORTS/segments" "$DIR/store" \
  || { cat "$EXPORTS/segments/export-report.txt" >&2; fail "the camera's store does not export"; }
# From 2 s into the first segment to 2 s into the second: one file across the join.
WINDOW=$(python3 - "$EXPORTS/segments/export-report.json" <<'PY'
import datetime, json, sys
segments = [s for s in json.load(open(sys.argv[1]))["segments"] if s.get("exported")]
if len(segments) < 2:
    sys.exit("browser-test: fewer than two segments to join")
def at(text, seconds):
    when = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ") + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
print(at(segments[0]["first_frame_utc"], 2) + ".." + at(segments[1]["first_frame_utc"], 2))
PY
)
ctl export --json --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --incident "$WINDOW" --out "$EXPORTS/incident" "$DIR/store" \
  || { cat "$EXPORTS/incident/export-report.txt" >&2; fail "the incident does not export"; }
echo "<!doctype html><title>exports</title>" > "$EXPORTS/index.html"
mkdir -p "$EXPORTS/office" && cp "$DIR/download.mp4" "$EXPORTS/office/$FIRST" && cp "$DIR/download-expected.json" "$EXPORTS/office/expected.json"
NAMES=$(cd "$EXPORTS" && { ls segments/*.mp4 incident/*.mp4 | head -3; echo "office/$FIRST"; } | paste -sd, -)
for name in ${NAMES//,/ }; do
  "$BIN/bodycamctl" verify-media --ca "$KEYS/ca.pem" "$EXPORTS/$name" || fail "$name is not authentic"
done
browse "" "video:$NAMES" "file://$EXPORTS/index.html" > "$DIR/video.json"
python3 - "$DIR/video.json" "$EXPORTS" "$BIN/bodycam-bench" <<'PY'
import base64, json, os, subprocess, sys
answer, folder, bench = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
frame = 1 / 30
# What each file should last: the export reports' own figures.
expected = {}
for entry in json.load(open(os.path.join(folder, "segments", "export-report.json")))["segments"]:
    if entry.get("exported"):
        expected[os.path.relpath(entry["file"], folder)] = entry["duration_seconds"]
for file in json.load(open(os.path.join(folder, "incident", "export-report.json")))["incident"]["files"]:
    expected[os.path.relpath(file["file"], folder)] = file["duration_seconds"]
# The office's download: its segment's length and the two pictures that sign its last GOP.
expected.update(json.load(open(os.path.join(folder, "office", "expected.json"))))
results = (answer.get("result") or []) if answer.get("loaded") else []
problems, lines = [], []
if not results:
    problems.append("the export page did not load: %s" % answer)
for result in results:
    name = result["name"]
    if result.get("error"):
        problems.append("%s: %s" % (name, result["error"]))
        continue
    if abs(result["duration"] - expected[name]) > frame + 0.001:
        problems.append("%s: the browser says %.3f s, the export %.3f s" % (name, result["duration"], expected[name]))
    # When each picture is presented, and its burned-in number, as libavcodec decodes the file.
    pictures = [line.split() for line in subprocess.run([bench, "frames", os.path.join(folder, name)], check=True,
                                                           capture_output=True, text=True).stdout.splitlines()]
    landed = []
    for seek in result["seeks"]:
        if abs(seek["currentTime"] - seek["target"]) > frame:
            problems.append("%s: a seek to %.3f s landed at %.3f s" % (name, seek["target"], seek["currentTime"]))
        picture = os.path.join(folder, "seek.pgm")
        with open(picture, "wb") as out:
            out.write(b"P5\n%d %d\n255\n" % (result["width"], result["height"]) + base64.b64decode(seek["grey"]))
        shown = subprocess.run([bench, "label", picture], check=True, capture_output=True, text=True).stdout.strip()
        # The picture presented at that time; on a boundary between two (within 1 ms: a seek
        # to 25 % of 152 pictures lands on one), either of them.
        at = seek["currentTime"]
        want = {number for time, number in pictures if float(time) <= at + 0.001}
        want = {max(want, key=lambda n: int(n) if n != "-" else -1)} if want else set()
        near = [number for time, number in pictures if abs(float(time) - at) <= 0.001]
        earlier = [number for time, number in pictures if float(time) < at - 0.001]
        if near and earlier:
            want |= {earlier[-1]}
        if shown == "-" or shown not in want:
            problems.append("%s: at %.3f s the browser shows frame %s, the decoder frame %s" % (name, at, shown, " or ".join(sorted(want)) or "?"))
        landed.append("%d%% %.3f s frame %s" % (round(seek["fraction"] * 100), seek["currentTime"], shown))
    lines.append("browser-test: %s: %.3f s (export %.3f s), %dx%d; seeks: %s" % (name, result["duration"], expected[name], result["width"], result["height"], "; ".join(landed)))
print("\n".join(lines))
if len(results) < 4:
    problems.append("only %d of the exports were checked" % len(results))
if problems:
    sys.exit("browser-test: " + "; ".join(problems))
PY
echo "browser-test: passed"
