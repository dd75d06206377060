# Link: the camera's uplink over an LTE-like link that is cut in the middle of an upload. The
# office runs in a network namespace of its own behind a veth pair. The camera's side sends
# through netem (300 ms delay, 2 % loss, 2 Mbit/s), the office's side through netem with 300 ms
# delay. bodycamd records from vivid and uploads each segment as it is sealed. Once the office's
# copy of a sealed segment is partly there, the link goes down for RIG_LINK_DOWN_SECONDS
# (default 10), then comes back. The recording is stopped and the daemon too. Then the office's
# copy must hold every segment and manifest of the camera's store, byte for byte, and nothing
# else: nothing lost, nothing twice. It must verify too, with bodycamctl and by the office's own
# verdict.
# TCP rides out a 10 s cut: the pass goes on where it stopped. A cut longer than the uplink's
# 60 s stall limit (RIG_LINK_DOWN_SECONDS=70) fails the pass instead, and the next one resumes
# where the office's copy ends.
# The office has no offload key, so it acknowledges nothing and the camera keeps every segment
# to compare with.
source "$RIG_REPO/Hardware/rig/lib.sh"
STORE=$WORK/store
OFFICE_STORE=$WORK/office
COPY=$OFFICE_STORE/devices/$DEVICE
NS=bc-office
CAMERA_IF=bc-cam OFFICE_IF=bc-office
CAMERA_IP=10.77.0.1 OFFICE_IP=10.77.0.2 PORT=8443
DOWN_SECONDS=${RIG_LINK_DOWN_SECONDS:-10}
# Small pieces, so the office's copy of a segment grows piece by piece and a cut can land
# inside one file. Each piece costs at least a round trip (600 ms), so the uplink's goodput here
# is far below the link's rate (about 80 kbit/s under emulation). It is still above this
# bitrate, so the camera catches up after the cut while it records.
PIECE_KIB=16
BITRATE_KBPS=48
SEGMENT_SECONDS=10

OFFICE=""
collect() {
    [ -f "$WORK/office.log" ] && cp "$WORK/office.log" "$RIG_RESULTS/link.office.log"
    [ -f "$OFFICE_STORE/access.log" ] && cp "$OFFICE_STORE/access.log" "$RIG_RESULTS/link.access.log"
    [ -f "$WORK/bodycamd.log" ] && cp "$WORK/bodycamd.log" "$RIG_RESULTS/link.bodycamd.log"
    [ -n "$OFFICE" ] && kill "$OFFICE" 2>/dev/null
    return 0
}
trap collect EXIT

command -v ip >/dev/null && command -v tc >/dev/null || fail "ip and tc (iproute2) are missing"
modprobe -a veth sch_netem || fail "veth or sch_netem did not load"

# The office's namespace and the link. The camera's side builds one-segment packets (no GSO):
# netem drops whole packets, and a 64 KiB GSO packet lost at once is not how a radio loses them.
ip netns add "$NS" || fail "cannot make the network namespace"
ip link add "$CAMERA_IF" gso_max_segs 1 type veth peer name "$OFFICE_IF" || fail "cannot make the veth pair"
ip link set "$OFFICE_IF" netns "$NS"
ip addr add "$CAMERA_IP/30" dev "$CAMERA_IF"
ip link set "$CAMERA_IF" up
ip -n "$NS" addr add "$OFFICE_IP/30" dev "$OFFICE_IF"
ip -n "$NS" link set "$OFFICE_IF" up
ip -n "$NS" link set lo up
# One ping before shaping: the link works, and the office's address is resolved (ARP) before
# the shaped pings measure the round trip.
busybox ping -c 1 -W 5 "$OFFICE_IP" >/dev/null || fail "the office's namespace does not answer over the veth pair"
tc qdisc add dev "$CAMERA_IF" root netem delay 300ms loss 2% rate 2mbit || fail "netem refused the camera's side"
tc -n "$NS" qdisc add dev "$OFFICE_IF" root netem delay 300ms || fail "netem refused the office's side"
netem_up=$(tc qdisc show dev "$CAMERA_IF" | sed -n 's/^qdisc netem .* limit [0-9]* //p')
netem_down=$(tc -n "$NS" qdisc show dev "$OFFICE_IF" | sed -n 's/^qdisc netem .* limit [0-9]* //p')
log "link: camera -> office: $netem_up; office -> camera: $netem_down"
# The round trip as ping sees it (the shortest of three).
rtt=$(busybox ping -c 3 -i 0.3 -W 3 "$OFFICE_IP" 2>/dev/null | sed -n 's#.*= \([0-9.]*\)/.*#\1#p' || true)
log "link: ping's shortest round trip ${rtt:-?} ms"

# vivid's webcam input takes its rate from the daemon: 15 fps leaves the emulated CPU room for
# the uplink (it runs at nice 10, below the recording).
load_vivid webcam
load_gpio_sim
log "vivid and gpio-sim loaded"
provision
log "provisioned"
# TLS as demo.sh provisions it: the authority's CA issues the office's certificate (for its
# address), the camera's, and an evidence officer's (who asks the office for its verdict).
ctl authority issue office "$OFFICE_IP" --dir "$KEYS" --out "$KEYS/tls" >/dev/null || fail "authority issue office"
ctl authority issue device "$DEVICE" --dir "$KEYS" --out "$KEYS/tls" >/dev/null || fail "authority issue device"
ctl authority issue officer eva-evidence --role evidence --dir "$KEYS" --out "$KEYS/tls" >/dev/null || fail "authority issue officer"
log "TLS certificates issued"

cat >"$WORK/office.toml" <<CONF
[office]
listen_host = "$OFFICE_IP"
listen_port = $PORT
store = "$OFFICE_STORE"
certificate = "$KEYS/tls/$OFFICE_IP.pem"
key = "$KEYS/tls/$OFFICE_IP.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
CONF
# ip netns exec execs the office in its own process: $OFFICE is the office.
ip netns exec "$NS" "$BIN/bodycam-office" --config "$WORK/office.toml" 2>"$WORK/office.log" &
OFFICE=$!
office_listening() { grep -q "listening on $OFFICE_IP:$PORT" "$WORK/office.log" || { kill -0 "$OFFICE" 2>/dev/null || fail "bodycam-office exited: $(cat "$WORK/office.log")"; false; }; }
wait_for 60 "bodycam-office listening in its namespace" office_listening
log "bodycam-office listening on $OFFICE_IP:$PORT in namespace $NS"

write_config "$WORK/link.toml" "$STORE" "
[uplink]
office = \"https://$OFFICE_IP:$PORT\"
certificate = \"$KEYS/tls/$DEVICE.pem\"
key = \"$KEYS/tls/$DEVICE.key\"
ca = \"$KEYS/ca.pem\"
authority = \"$KEYS/authority.pub\"
piece_kib = $PIECE_KIB"
sed -i "s/^width = .*/width = 640/; s/^height = .*/height = 360/; s/^fps = .*/fps = 15/; s/^bitrate_kbps = .*/bitrate_kbps = $BITRATE_KBPS/; s/^segment_seconds = .*/segment_seconds = $SEGMENT_SECONDS/" "$WORK/link.toml"
retrans_before=$(awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }' /proc/net/snmp)
start_daemon "$WORK/link.toml" --record-after 0
wait_for 60 "recording" is_state recording
log "recording at 640x360, 15 fps, $BITRATE_KBPS kbit/s, $SEGMENT_SECONDS s segments, uploading in $PIECE_KIB KiB pieces"

size() { stat -c %s "$1" 2>/dev/null || echo 0; }
# sealed: the camera's sealed segments and manifests, one name a line.
sealed() { (cd "$STORE" && ls -1 -- *.bcseg *.manifest 2>/dev/null | sort); }
# sizes FOLDER LIST: "NAME SIZE" of each file LIST names that FOLDER holds.
sizes() { (cd "$1" && stat -c '%n %s' -- $(<"$2") 2>/dev/null || true); }
# office_holds LIST: the office's copy has each file LIST names, at the camera's size.
office_holds() { [ "$(sizes "$COPY" "$1")" = "$(sizes "$STORE" "$1")" ]; }
# mid_upload: the office holds part of a sealed segment, more than a piece short of it (so that
# the piece in flight cannot complete it before the link goes down). Sets CUT_FILE.
mid_upload() {
    local name held total
    while read -r name held; do
        [ -n "$name" ] || continue
        total=$(size "$STORE/$name")
        [ "$held" -gt 0 ] && [ $((held + PIECE_KIB * 1024)) -lt "$total" ] && { CUT_FILE=$name CUT_TOTAL=$total; return 0; }
    done <<<"$(cd "$COPY" 2>/dev/null && stat -c '%n %s' -- *.bcseg 2>/dev/null)"
    return 1
}
office_segments() { ls "$COPY"/*.manifest 2>/dev/null | wc -l; }
# every SECONDS COMMAND…: COMMAND, and a pause when it fails: wait_for polls every 50 ms, and
# under emulation a poll that forks a few processes takes CPU from the uplink.
every() { local pause=$1; shift; "$@" || { sleep "$pause"; false; }; }

# The link works: a first segment and its manifest arrive whole.
wait_for 90 "the first segment reaches the office" every 0.5 counts office_segments -ge 1
# Then the cut, in the middle of a segment's upload.
wait_for 90 "an upload in progress (the office's copy of a segment partly there)" every 0.2 mid_upload
ip link set "$CAMERA_IF" down
held_at_cut=$(size "$COPY/$CUT_FILE")
log "link down while $CUT_FILE was being uploaded ($held_at_cut of $CUT_TOTAL bytes at the office)"
check "the cut interrupted an upload" test "$held_at_cut" -lt "$CUT_TOTAL"
# The link stays down: a fixed time is the point here, nothing to wait for.
sleep "$DOWN_SECONDS"
held_before_up=$(size "$COPY/$CUT_FILE")
ip link set "$CAMERA_IF" up
up_at=$EPOCHREALTIME
sealed >"$WORK/sealed-at-return.txt"
log "link up after $DOWN_SECONDS s ($held_before_up of $CUT_TOTAL bytes of $CUT_FILE at the office); $(wc -l <"$WORK/sealed-at-return.txt") files sealed by now"
wait_for $((120 + 2 * DOWN_SECONDS)) "the office catches up with what was sealed when the link returned" every 0.2 office_holds "$WORK/sealed-at-return.txt"
caught_up_at=$EPOCHREALTIME
catch_up_s=$(awk -v a="$up_at" -v b="$caught_up_at" 'BEGIN { printf "%.1f", b - a }')
log "the office caught up ${catch_up_s} s after the link returned"

# Several segments, then the supervisor's stop: the last segment is sealed and uploaded by the
# running uplink (not by the stop's pass, which is bounded to 10 s).
segments_sealed() { ls "$STORE"/*.manifest 2>/dev/null | wc -l; }
wait_for 60 "at least 4 segments sealed" every 0.5 counts segments_sealed -ge 4
ctl stop --token "$(token stop)" --socket "$SOCKET" >/dev/null || fail "the authorised stop was refused"
wait_for 30 "standby after the stop" is_state standby
log "recording stopped ($(segments_sealed) segments sealed so far)"
# The last segment sealed: none open, each with its manifest.
all_sealed() { ! ls "$STORE"/*.partial >/dev/null 2>&1 && [ "$(ls "$STORE"/*.bcseg | wc -l)" = "$(segments_sealed)" ]; }
wait_for 30 "the last segment sealed" every 0.2 all_sealed
sealed >"$WORK/sealed.txt"
wait_for 120 "the office holds every sealed segment and manifest" every 0.5 office_holds "$WORK/sealed.txt"
log "the office holds all $(wc -l <"$WORK/sealed.txt") sealed files"
stop_daemon
log "bodycamd stopped"
sealed >"$WORK/sealed-after-stop.txt"
check "nothing was sealed at the daemon's stop (it was in standby)" cmp -s "$WORK/sealed.txt" "$WORK/sealed-after-stop.txt"
retrans_after=$(awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RetransSegs") c = i; h = 1 } else print $c }' /proc/net/snmp)
netem_dropped=$(tc -s qdisc show dev "$CAMERA_IF" | sed -n 's/.*dropped \([0-9]*\).*/\1/p' | head -1)
netem_after=$(tc qdisc show dev "$CAMERA_IF" | sed -n 's/^qdisc netem .* limit [0-9]* //p')
check "netem still shapes the camera's side after the cut" test "$netem_after" = "$netem_up"

# The officer asks the office for its own verdict on its copy.
python3 - "$OFFICE_IP" "$PORT" "$DEVICE" "$KEYS/tls/eva-evidence.pem" "$KEYS/tls/eva-evidence.key" "$KEYS/ca.pem" \
    >"$WORK/office-verification.json" <<'PY' || fail "the office's verification could not be read"
import http.client, ssl, sys
host, port, device, cert, key, ca = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=120)
connection.request("GET", f"/v1/devices/{device}/verification")
answer = connection.getresponse()
body = answer.read().decode()
if answer.status != 200:
    sys.exit(f"{answer.status}: {body}")
print(body)
PY
kill -TERM "$OFFICE"
office_status=0
wait "$OFFICE" || office_status=$?
OFFICE=""
check "bodycam-office exits 0 after SIGTERM" test "$office_status" = 0

# Nothing lost, nothing twice, nothing else: the office's segments and manifests are the
# camera's, byte for byte; its device key and certificate are the camera's; its journal is the
# camera's up to the last pass (the camera journals its stop after it).
(cd "$COPY" && ls -1 -- *.bcseg *.manifest 2>/dev/null | sort) >"$WORK/office-files.txt"
check "the office holds exactly the camera's segments and manifests" cmp -s "$WORK/sealed.txt" "$WORK/office-files.txt"
while read -r name; do
    cmp -s "$STORE/$name" "$COPY/$name" || fail "the office's $name differs from the camera's"
done <"$WORK/sealed.txt"
log "ok: every segment and manifest at the office is the camera's, byte for byte"
for name in device.pub device.certificate; do
    check "the office's $name is the camera's" cmp -s "$STORE/$name" "$COPY/$name"
done
office_journal=$(size "$COPY/journal.log")
check "the office's journal is the start of the camera's" cmp -s -n "$office_journal" "$STORE/journal.log" "$COPY/journal.log"
others=$(cd "$COPY" && ls -1A | grep -v -x -E '.*\.(bcseg|manifest)|journal\.log|device\.pub|device\.certificate' || true)
check "no other file in the office's copy${others:+ (found: $others)}" test -z "$others"

ctl verify --authority "$KEYS/authority.pub" "$COPY" >"$WORK/verify-copy.txt" || { cat "$WORK/verify-copy.txt"; fail "the office's copy does not verify"; }
log "ok: bodycamctl verify on the office's copy: $(tail -1 "$WORK/verify-copy.txt")"
ctl verify --access "$OFFICE_STORE" >"$WORK/verify-access.txt" || { cat "$WORK/verify-access.txt"; fail "the office's access journal does not verify"; }

export DEVICE STORE COPY CUT_TOTAL DOWN_SECONDS catch_up_s netem_up netem_down held_at_cut PIECE_KIB
export tcp_retransmits=$((retrans_after - retrans_before)) netem_dropped=${netem_dropped:-0} rtt=${rtt:-0}
python3 - "$WORK/office-verification.json" "$OFFICE_STORE/access.log" "$STORE/journal.log" "$WORK/sealed.txt" <<'PY' || fail "link"
import json, os, sys
e = os.environ
verdict = json.load(open(sys.argv[1]))
names = open(sys.argv[4]).read().split()
def size(folder, name): return os.path.getsize(os.path.join(folder, name))
stored = sum(size(e["STORE"], n) for n in names)
segments = sum(1 for n in names if n.endswith(".manifest"))
# What the office holds of the camera's in all: segments, manifests, the two whole files, the
# journal up to the last pass. Anything the camera sent beyond it was sent twice.
held = stored + sum(size(e["COPY"], n) for n in ("device.pub", "device.certificate", "journal.log"))
def records(journal):  # docs/FORMAT.md: CANONICAL-JSON SP SIGNATURE, after the version line
    return [json.loads(line.rsplit(" ", 1)[0]) for line in open(journal) if line.startswith("{")]
# What the camera sent: the bodies of its uploads, from the office's access journal.
uploaded = requests = conflicts = 0
for record in records(sys.argv[2]):
    fields = record["fields"]
    if record["kind"] != "request" or fields.get("caller") != "device:" + e["DEVICE"]:
        continue
    if fields.get("method") == "PUT" and "/files/" in fields.get("target", ""):
        requests += 1
        uploaded += fields.get("bytes_in", 0)
        conflicts += fields.get("status") == 409
kinds = [r["kind"] for r in records(sys.argv[3])]
print(f'RESULT segments={segments} stored_bytes={stored} uploaded_bytes={uploaded} upload_requests={requests} '
      f'sent_twice_bytes={uploaded - held} conflicts_409={conflicts} '
      f'cut_held_bytes={e["held_at_cut"]}/{e["CUT_TOTAL"]} down_s={e["DOWN_SECONDS"]} catch_up_s={e["catch_up_s"]} '
      f'uplink_lost={kinds.count("uplink_lost")} tcp_retransmits={e["tcp_retransmits"]} netem_dropped={e["netem_dropped"]} '
      f'ping_rtt_ms={e["rtt"]} netem_up="{e["netem_up"]}" netem_down="{e["netem_down"]}" '
      f'office_verdict_clean={str(verdict["clean"]).lower()}')
if not verdict["clean"] or verdict["segments"] != segments or verdict["verified"] != segments:
    sys.exit(f"the office's own verdict: {verdict}")
# Sent twice at most: the device key and certificate once per connection (a new uploader sends
# them), and a piece in flight at each lost connection.
lost = kinds.count("uplink_lost")
whole = sum(size(e["STORE"], n) for n in ("device.pub", "device.certificate"))
allowed = (lost + 1) * whole + lost * int(e["PIECE_KIB"]) * 1024
if uploaded - held > allowed:
    sys.exit(f"{uploaded - held} bytes were sent twice, more than {allowed} (the key and certificate per connection, a piece per lost one)")
PY
log "link: the office's copy is the camera's and verifies"
