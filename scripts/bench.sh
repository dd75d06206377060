#!/usr/bin/env bash
# make bench: our pipeline against ffmpeg and against GStreamer on the same input with the same
# encoder settings, measured side by side in one run; then sealing, verification, controls,
# storage stalls and restarts. Prints one line per figure: BENCH <name> <value> <unit>.
#   BENCH_DIR      scratch folder (default .build/bench); the input is made there, not committed
#   BENCH_SECONDS  length of the input (default 20)
#   BENCH_ROUNDS   runs of each, alternating; the median counts (default 3)
set -euo pipefail
BIN=${BIN:?BIN must name the folder holding bodycamd and bodycamctl}
BENCH_DIR=${BENCH_DIR:-.build/bench}
SECONDS_OF_VIDEO=${BENCH_SECONDS:-20}
ROUNDS=${BENCH_ROUNDS:-3}
WIDTH=1920 HEIGHT=1080 FPS=30 BITRATE_KBPS=6000
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
INPUT="$BENCH_DIR/input-${WIDTH}x${HEIGHT}-${FPS}-${SECONDS_OF_VIDEO}s.yuyv"
FRAMES=$((FPS * SECONDS_OF_VIDEO))

if [ ! -s "$INPUT" ] || [ "$(stat -c %s "$INPUT")" -ne $((WIDTH * HEIGHT * 2 * FRAMES)) ]; then
  echo "making ${SECONDS_OF_VIDEO} s of raw YUYV ${WIDTH}x${HEIGHT}@${FPS} in $INPUT" >&2
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=${WIDTH}x${HEIGHT}:rate=${FPS}" -t "$SECONDS_OF_VIDEO" \
    -pix_fmt yuyv422 -f rawvideo "$INPUT"
fi
cat "$INPUT" > /dev/null   # both contenders read it from the page cache

# The pipeline seals to an office key, as on the device.
[ -f "$BENCH_DIR/keys/office.pub" ] || "$BIN/bodycamctl" office init --dir "$BENCH_DIR/keys" > /dev/null

cat > "$BENCH_DIR/bench.toml" <<CONF
device_id = "BC-BENCH"
[camera]
source = "raw-file"
path = "$INPUT"
pixel_format = "yuyv422"
width = $WIDTH
height = $HEIGHT
fps = $FPS
pacing = "fast"
[encoder]
codec = "libx264"
preset = "veryfast"
tune = "zerolatency"
bitrate_kbps = $BITRATE_KBPS
[recording]
pre_event_seconds = 0
segment_seconds = 60
[storage]
path = "$BENCH_DIR/store"
[evidence]
device_key = "$BENCH_DIR/keys/device.key"
certificate = "$BENCH_DIR/keys/device.certificate"
recipients = ["$BENCH_DIR/keys/office.pub"]
[controls]
backend = "simulated"
[policy]
on_duty_at_start = true
[control]
socket = "$BENCH_DIR/control.sock"
CONF

# GNU time: wall seconds, user+system CPU seconds, peak RSS in KiB.
measure() { /usr/bin/time -f "%e %U %S %M" -o "$BENCH_DIR/time.txt" "$@" > /dev/null 2>"$BENCH_DIR/last.log" \
              || { cat "$BENCH_DIR/last.log" >&2; exit 1; }
            awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$BENCH_DIR/time.txt"; }

run_ours() {
  rm -rf "$BENCH_DIR/store"
  measure "$BIN/bodycamd" --config "$BENCH_DIR/bench.toml" --record-after 0
}
# The pipeline an embedded team would build instead: GStreamer's x264enc (same rate control:
# CBR at the bit rate with a two-second VBV buffer, one-second GOPs, no B-frames) into mp4mux
# with one-second fragments.
GSTREAMER=(gst-launch-1.0 -q filesrc location="$INPUT"
  ! rawvideoparse width="$WIDTH" height="$HEIGHT" format=yuy2 framerate="$FPS/1"
  ! videoconvert ! video/x-raw,format=I420
  ! x264enc speed-preset=veryfast tune=zerolatency pass=cbr bitrate="$BITRATE_KBPS" vbv-buf-capacity=2000
    key-int-max="$FPS" bframes=0
  ! h264parse ! mp4mux fragment-duration=1000 ! filesink location="$BENCH_DIR/gstreamer.mp4")
run_gstreamer() { measure "${GSTREAMER[@]}"; }
run_ffmpeg() {
  measure ffmpeg -nostdin -y -f rawvideo -pix_fmt yuyv422 -s "${WIDTH}x${HEIGHT}" -r "$FPS" -i "$INPUT" \
    -c:v libx264 -preset veryfast -tune zerolatency -b:v "${BITRATE_KBPS}k" -maxrate "${BITRATE_KBPS}k" \
    -bufsize "$((BITRATE_KBPS * 2))k" -g "$FPS" -keyint_min "$FPS" -sc_threshold 0 -bf 0 -flags +cgop \
    -pix_fmt yuv420p -movflags +frag_keyframe+empty_moov+default_base_moof -f mp4 "$BENCH_DIR/ffmpeg.mp4"
}

# peak_anon COMMAND...: runs it, sampling /proc/PID/smaps_rollup every 50 ms; prints the peak of
# its anonymous memory and of its file-backed resident pages (KiB). Peak RSS is both: the
# file-backed part is the shared libraries' pages, which differ by what each links (ours:
# Debian's whole libavcodec/libavformat dependency chain), the anonymous part what the pipeline
# itself holds (pictures, encoder state, queues).
peak_anon() {
  "$@" > /dev/null 2>"$BENCH_DIR/last.log" &
  local pid=$! anon=0 file=0 a r
  while kill -0 "$pid" 2>/dev/null; do
    read -r a r < <(awk '/^Anonymous:/ { a = $2 } /^Rss:/ { r = $2 } END { print a + 0, r + 0 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || true
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    [ $(( ${r:-0} - ${a:-0} )) -gt "$file" ] && file=$(( r - a ))
    sleep 0.05
  done
  wait "$pid" || { cat "$BENCH_DIR/last.log" >&2; exit 1; }
  echo "$anon $file"
}

: > "$BENCH_DIR/ours.txt"; : > "$BENCH_DIR/ffmpeg.txt"; : > "$BENCH_DIR/gstreamer.txt"
for round in $(seq "$ROUNDS"); do
  run_ours >> "$BENCH_DIR/ours.txt"
  run_ffmpeg >> "$BENCH_DIR/ffmpeg.txt"
  run_gstreamer >> "$BENCH_DIR/gstreamer.txt"
done
# One more run of each, sampled for the split of their memory.
rm -rf "$BENCH_DIR/store"
read -r ours_anon ours_file < <(peak_anon "$BIN/bodycamd" --config "$BENCH_DIR/bench.toml" --record-after 0)
read -r gst_anon gst_file < <(peak_anon "${GSTREAMER[@]}")
[ -n "${ours_anon:-}" ] && [ -n "${gst_anon:-}" ] || { echo "bench: the sampled runs failed" >&2; exit 1; }
gst_frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$BENCH_DIR/gstreamer.mp4")
[ "$gst_frames" -eq "$FRAMES" ] || { echo "bench: GStreamer wrote $gst_frames of $FRAMES frames" >&2; exit 1; }

# Our output must be complete before its figures mean anything: export it and count frames.
rm -rf "$BENCH_DIR/export"
"$BIN/bodycamctl" export --json --identity "$BENCH_DIR/keys/office.key" --out "$BENCH_DIR/export" "$BENCH_DIR/store" > "$BENCH_DIR/export.json" \
  || { echo "bench: our output does not verify and decode" >&2; exit 1; }
recorded=$(python3 -c "import json,sys; print(sum(e.get('frames_decoded', 0) for e in json.load(open(sys.argv[1]))['segments']))" "$BENCH_DIR/export.json")
[ "$recorded" -eq "$FRAMES" ] || { echo "bench: recorded $recorded of $FRAMES frames" >&2; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$2" '{ print $c }' "$1" | median; }
ours_wall=$(col "$BENCH_DIR/ours.txt" 1);   ours_cpu=$(col "$BENCH_DIR/ours.txt" 2);   ours_rss=$(col "$BENCH_DIR/ours.txt" 3)
ff_wall=$(col "$BENCH_DIR/ffmpeg.txt" 1);   ff_cpu=$(col "$BENCH_DIR/ffmpeg.txt" 2);   ff_rss=$(col "$BENCH_DIR/ffmpeg.txt" 3)
gst_cpu=$(col "$BENCH_DIR/gstreamer.txt" 2);  gst_rss=$(col "$BENCH_DIR/gstreamer.txt" 3)

awk -v ow="$ours_wall" -v oc="$ours_cpu" -v orss="$ours_rss" -v fw="$ff_wall" -v fc="$ff_cpu" -v frss="$ff_rss" \
    -v gc="$gst_cpu" -v grss="$gst_rss" -v s="$SECONDS_OF_VIDEO" -v n="$ROUNDS" \
    -v oa="$ours_anon" -v of="$ours_file" -v ga="$gst_anon" -v gf="$gst_file" 'BEGIN {
  printf "BENCH input_frames %d frames\n", s * 30
  printf "BENCH pipeline_cpu_s %.2f s\n", oc
  printf "BENCH ffmpeg_cpu_s %.2f s\n", fc
  printf "BENCH pipeline_cpu_ratio %.3f ratio\n", oc / fc
  printf "BENCH pipeline_rss_mib %.1f MiB\n", orss / 1024
  printf "BENCH ffmpeg_rss_mib %.1f MiB\n", frss / 1024
  printf "BENCH pipeline_rss_ratio %.3f ratio\n", orss / frss
  printf "BENCH pipeline_realtime_factor %.2f x\n", s / ow
  printf "BENCH ffmpeg_realtime_factor %.2f x\n", s / fw
  printf "BENCH gstreamer_cpu_s %.2f s\n", gc
  printf "BENCH gstreamer_rss_mib %.1f MiB\n", grss / 1024
  printf "BENCH pipeline_vs_gstreamer_cpu_ratio %.3f ratio\n", oc / gc
  printf "BENCH pipeline_vs_gstreamer_rss_ratio %.3f ratio\n", orss / grss
  printf "BENCH pipeline_anon_mib %.1f MiB\n", oa / 1024
  printf "BENCH gstreamer_anon_mib %.1f MiB\n", ga / 1024
  printf "BENCH pipeline_vs_gstreamer_anon_ratio %.3f ratio\n", oa / ga
  printf "BENCH pipeline_file_backed_mib %.1f MiB\n", of / 1024
  printf "BENCH gstreamer_file_backed_mib %.1f MiB\n", gf / 1024
}'
echo "(median of $ROUNDS alternating runs each; raw figures in $BENCH_DIR/ours.txt, ffmpeg.txt and gstreamer.txt: wall s, cpu s, peak RSS KiB)" >&2

# Evidence: STREAM sealing against OpenSSL's own AES-256-GCM at 16 KiB blocks, alternating.
: > "$BENCH_DIR/seal.txt"; : > "$BENCH_DIR/openssl.txt"
for round in $(seq "$ROUNDS"); do
  "$BIN/bodycam-bench" seal 8192 | awk '{ print $3 }' >> "$BENCH_DIR/seal.txt"
  openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2 2>/dev/null | tail -1 \
    | awk '{ v = $NF; sub(/k$/, "", v); printf "%.3f\n", v * 1000 / 1e6 }' >> "$BENCH_DIR/openssl.txt"
done
seal=$(median < "$BENCH_DIR/seal.txt"); openssl_rate=$(median < "$BENCH_DIR/openssl.txt")
awk -v a="$seal" -v b="$openssl_rate" 'BEGIN {
  printf "BENCH seal_16k_mb_s %.1f MB/s\n", a
  printf "BENCH openssl_aes256gcm_16k_mb_s %.1f MB/s\n", b
  printf "BENCH encrypt_vs_openssl %.3f ratio\n", a / b
}'
rm -rf "$BENCH_DIR/verify-store" "$BENCH_DIR/decrypt-store"
"$BIN/bodycam-bench" verify 1000 "$BENCH_DIR/verify-store"
"$BIN/bodycam-bench" decrypt 256 "$BENCH_DIR/decrypt-store"
# ONVIF Media Signing: the bit rate its SEIs add at 4 Mb/s (goal ≤ 1 %) and the signer's CPU per
# second of 720p30 video.
"$BIN/bodycam-bench" signing 30
# Controls: a button's kernel timestamp to the red LED and the recording state, and to the
# mark (the simulated GPIO, the controls thread and the policy engine, as the daemon runs them).
"$BIN/bodycam-bench" latency 20
# Continuity: a simulated 30 fps camera recorded into a sealing store whose every sync stalls
# 500 ms (pictures lost: goal 0), and bodycamd killed with SIGKILL while recording and started
# again, as systemd would (goal: recording again within 1 s).
rm -rf "$BENCH_DIR/stall-store"
"$BIN/bodycam-bench" stall "${BENCH_STALL_SECONDS:-20}" 500 "$BENCH_DIR/stall-store" 2>> "$BENCH_DIR/stall.log"
rm -rf "$BENCH_DIR/restart-store" "$BENCH_DIR/restart.log"
cat > "$BENCH_DIR/restart.toml" <<CONF
device_id = "BC-BENCH"
[camera]
source = "test-pattern"
width = 1280
height = 720
fps = $FPS
[encoder]
preset = "veryfast"
tune = "zerolatency"
bitrate_kbps = 2000
[recording]
pre_event_seconds = 0
segment_seconds = 60
[storage]
path = "$BENCH_DIR/restart-store"
[evidence]
device_key = "$BENCH_DIR/keys/device.key"
certificate = "$BENCH_DIR/keys/device.certificate"
recipients = ["$BENCH_DIR/keys/office.pub"]
[controls]
backend = "simulated"
[policy]
on_duty_at_start = true
[control]
socket = "$BENCH_DIR/restart.sock"
CONF
python3 "$(dirname "$0")/bench-restart.py" "$BIN" "$BENCH_DIR/restart.toml" "$BENCH_DIR/restart-store" "${BENCH_RESTARTS:-5}" "$BENCH_DIR/restart.log"
"$BIN/bodycamctl" verify "$BENCH_DIR/restart-store" > /dev/null \
  || { echo "bench: the store of the restart runs does not verify" >&2; exit 1; }


# Remote access (docs/OFFICE.md): the daemon on the same input with [uplink] on, uploading each
# 5 s segment as it is sealed to a bodycam-office on loopback, against the same run with it off
# (alternating; the median counts): peak RSS and CPU.
KEYS="$BENCH_DIR/keys"
[ -f "$KEYS/ca.pem" ] || "$BIN/bodycamctl" authority init --dir "$KEYS" > /dev/null
[ -f "$KEYS/tls/127.0.0.1.pem" ] || "$BIN/bodycamctl" authority issue office 127.0.0.1 --dir "$KEYS" --out "$KEYS/tls" > /dev/null
[ -f "$KEYS/tls/BC-BENCH.pem" ] || "$BIN/bodycamctl" authority issue device BC-BENCH --dir "$KEYS" --out "$KEYS/tls" > /dev/null
rm -rf "$BENCH_DIR/office"
cat > "$BENCH_DIR/office.toml" <<CONF
[office]
listen_host = "127.0.0.1"
listen_port = 0
store = "$BENCH_DIR/office"
certificate = "$KEYS/tls/127.0.0.1.pem"
key = "$KEYS/tls/127.0.0.1.key"
ca = "$KEYS/ca.pem"
authority = "$KEYS/authority.pub"
identity = "$BENCH_DIR/keys/office.key"
CONF
"$BIN/bodycam-office" --config "$BENCH_DIR/office.toml" 2> "$BENCH_DIR/office.log" &
OFFICE=$!
trap 'kill $OFFICE 2>/dev/null || true' EXIT
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$BENCH_DIR/office.log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$BENCH_DIR/office.log" >&2; echo "bench: bodycam-office did not start" >&2; exit 1; }
sed -e "s|^segment_seconds = .*|segment_seconds = 5|" -e "s|^path = \"$BENCH_DIR/store\"|path = \"$BENCH_DIR/uplink-store\"|" \
    -e "s|^socket = .*|socket = \"$BENCH_DIR/uplink.sock\"|" "$BENCH_DIR/bench.toml" > "$BENCH_DIR/uplink-off.toml"
cat "$BENCH_DIR/uplink-off.toml" - > "$BENCH_DIR/uplink-on.toml" <<CONF
[uplink]
office = "https://127.0.0.1:$PORT"
certificate = "$KEYS/tls/BC-BENCH.pem"
key = "$KEYS/tls/BC-BENCH.key"
ca = "$KEYS/ca.pem"
CONF
: > "$BENCH_DIR/uplink-on.txt"; : > "$BENCH_DIR/uplink-off.txt"
for round in $(seq "$ROUNDS"); do
  rm -rf "$BENCH_DIR/uplink-store" "$BENCH_DIR/office/devices/BC-BENCH"
  measure "$BIN/bodycamd" --config "$BENCH_DIR/uplink-on.toml" --record-after 0 >> "$BENCH_DIR/uplink-on.txt"
  for manifest in "$BENCH_DIR/uplink-store"/*.manifest; do
    name=$(basename "$manifest" .manifest)
    cmp -s "$BENCH_DIR/uplink-store/$name.bcseg" "$BENCH_DIR/office/devices/BC-BENCH/$name.bcseg" \
      || { echo "bench: the office's copy of $name is not the camera's" >&2; exit 1; }
  done
  rm -rf "$BENCH_DIR/uplink-store"
  measure "$BIN/bodycamd" --config "$BENCH_DIR/uplink-off.toml" --record-after 0 >> "$BENCH_DIR/uplink-off.txt"
done

# Live view (docs/OFFICE.md, "Live view"): the test-pattern camera in real time (1280x720, 30 fps)
# uploading to the same office, watched by an officer with bodycamctl live for
# BENCH_LIVE_SECONDS (20): each fragment's time from the capture of its first picture to its
# arrival at the viewer, median and worst (goal ≤ 2 s; half-second fragments).
[ -f "$KEYS/tls/live.pem" ] || "$BIN/bodycamctl" authority issue officer live --role live --dir "$KEYS" --out "$KEYS/tls" > /dev/null
sed -e "s|^path = .*|path = \"$BENCH_DIR/live-store\"|" -e "s|^socket = .*|socket = \"$BENCH_DIR/live.sock\"|" \
    -e "s|^segment_seconds = .*|segment_seconds = 2|" "$BENCH_DIR/restart.toml" > "$BENCH_DIR/live.toml"
cat >> "$BENCH_DIR/live.toml" <<CONF
[uplink]
office = "https://127.0.0.1:$PORT"
certificate = "$KEYS/tls/BC-BENCH.pem"
key = "$KEYS/tls/BC-BENCH.key"
ca = "$KEYS/ca.pem"
heartbeat_seconds = 5
CONF
rm -rf "$BENCH_DIR/live-store"
"$BIN/bodycamd" --config "$BENCH_DIR/live.toml" --record-after 0 2> "$BENCH_DIR/live-daemon.log" &
DAEMON=$!
trap 'kill $OFFICE $DAEMON 2>/dev/null || true' EXIT
"$BIN/bodycamctl" live --office "https://127.0.0.1:$PORT" --device BC-BENCH --certificate "$KEYS/tls/live.pem" --key "$KEYS/tls/live.key" \
    --ca "$KEYS/ca.pem" --seconds "${BENCH_LIVE_SECONDS:-20}" --out "$BENCH_DIR/live.mp4" --latency 2> "$BENCH_DIR/live.log" \
  || { cat "$BENCH_DIR/live.log" >&2; echo "bench: live view failed" >&2; exit 1; }
kill -TERM $DAEMON; wait $DAEMON || true
sed -n 's/^live latency: \([0-9]*\) fragments, median \([0-9.]*\) s, max \([0-9.]*\) s.*/\1 \2 \3/p' "$BENCH_DIR/live.log" > "$BENCH_DIR/live.txt"
[ -s "$BENCH_DIR/live.txt" ] || { cat "$BENCH_DIR/live.log" >&2; echo "bench: no fragment arrived in live view" >&2; exit 1; }
awk '{ printf "BENCH live_fragments %d fragments\nBENCH live_latency_median_s %.3f s\nBENCH live_latency_max_s %.3f s\n", $1, $2, $3 }' "$BENCH_DIR/live.txt"
# Pictures the camera lost while it uploaded and went live (its journal's frames_dropped; goal 0).
{ grep '"kind":"frames_dropped"' "$BENCH_DIR/live-store/journal.log" || true; } | { grep -o '"count":[0-9]*' || true; } | cut -d: -f2 \
  | awk '{ n += $1 } END { printf "BENCH live_frames_dropped %d frames\n", n }'

# Ingest (docs/SCALING.md): BENCH_CAMERAS (50) cameras upload a store of ten 2.5 MB segments
# (5 s at 4 Mb/s) at once to the same office over loopback, each over its own mutual-TLS
# connection: segments and megabytes a second, and the office's CPU (from /proc) per camera and
# segment.
CAMERAS=${BENCH_CAMERAS:-50}
for camera in $(seq "$CAMERAS"); do
  [ -f "$KEYS/tls/BC-INGEST-$camera.pem" ] \
    || "$BIN/bodycamctl" authority issue device "BC-INGEST-$camera" --dir "$KEYS" --out "$KEYS/tls" > /dev/null
done
rm -rf "$BENCH_DIR/office/devices/BC-INGEST-"*
office_cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / t }' "/proc/$OFFICE/stat"; }
before=$(office_cpu)
rm -rf "$BENCH_DIR/ingest-store"
"$BIN/bodycam-bench" ingest "https://127.0.0.1:$PORT" "$KEYS/tls" "$KEYS/ca.pem" "$BENCH_DIR/ingest-store" "$CAMERAS"
after=$(office_cpu)
for camera in 1 "$CAMERAS"; do
  for segment in "$BENCH_DIR/ingest-store"/*.bcseg; do
    cmp -s "$segment" "$BENCH_DIR/office/devices/BC-INGEST-$camera/$(basename "$segment")" \
      || { echo "bench: camera $camera's copy of $(basename "$segment") is not the store's" >&2; exit 1; }
  done
done
segments=$(ls "$BENCH_DIR/ingest-store"/*.bcseg | wc -l)
awk -v b="$before" -v a="$after" -v c="$CAMERAS" -v s="$segments" 'BEGIN {
  printf "BENCH office_ingest_cpu_s %.2f s\n", a - b
  printf "BENCH office_cpu_per_camera_s %.3f s\n", (a - b) / c
  printf "BENCH office_cpu_per_segment_ms %.1f ms\n", (a - b) * 1000 / (c * s)
}'

kill -TERM $OFFICE; wait $OFFICE || true
trap - EXIT

on_cpu=$(col "$BENCH_DIR/uplink-on.txt" 2); on_rss=$(col "$BENCH_DIR/uplink-on.txt" 3)
off_cpu=$(col "$BENCH_DIR/uplink-off.txt" 2); off_rss=$(col "$BENCH_DIR/uplink-off.txt" 3)
awk -v oc="$on_cpu" -v orss="$on_rss" -v fc="$off_cpu" -v frss="$off_rss" 'BEGIN {
  printf "BENCH daemon_rss_uplink_on_mib %.1f MiB\n", orss / 1024
  printf "BENCH daemon_rss_uplink_off_mib %.1f MiB\n", frss / 1024
  printf "BENCH daemon_rss_uplink_on_vs_off %.3f ratio\n", orss / frss
  printf "BENCH daemon_cpu_uplink_on_vs_off %.3f ratio\n", oc / fc
}'

# Upload goodput over a shaped link (docs/OFFICE.md, "Tests over a link"): a second office in a
# network namespace of its own behind a veth pair whose camera side is shaped to the LTE uplink
# rate, 2 Mbit/s (tc tbf), and one camera uploading a store of two 2.5 MB segments: what arrives
# a second against the rate (goal >= 0.9). Delay and loss on top are the rig's link scenario
# (netem); this needs root and iproute2.
NS="bc-bench-$$" OUTSIDE="bcb$$a" INSIDE="bcb$$b" LINK_OFFICE=""
link_down() {
  [ -z "$LINK_OFFICE" ] || kill "$LINK_OFFICE" 2>/dev/null || true
  ip link del "$OUTSIDE" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
link_up() {
  ip netns add "$NS" && ip link add "$OUTSIDE" type veth peer name "$INSIDE" && ip link set "$INSIDE" netns "$NS" \
    && ip addr add 10.78.0.1/30 dev "$OUTSIDE" && ip link set "$OUTSIDE" up \
    && ip -n "$NS" addr add 10.78.0.2/30 dev "$INSIDE" && ip -n "$NS" link set "$INSIDE" up && ip -n "$NS" link set lo up \
    && tc qdisc add dev "$OUTSIDE" root tbf rate 2mbit burst 32kbit latency 400ms
}
: > "$BENCH_DIR/link-setup.log"
if [ "$(id -u)" = 0 ] && command -v ip > /dev/null && command -v tc > /dev/null && link_up 2> "$BENCH_DIR/link-setup.log"; then
  trap link_down EXIT
  [ -f "$KEYS/tls/10.78.0.2.pem" ] || "$BIN/bodycamctl" authority issue office 10.78.0.2 --dir "$KEYS" --out "$KEYS/tls" > /dev/null
  rm -rf "$BENCH_DIR/link-office" "$BENCH_DIR/link-store"
  sed -e 's|^listen_host = .*|listen_host = "10.78.0.2"|' -e 's|^listen_port = .*|listen_port = 8443|' \
      -e "s|^store = .*|store = \"$BENCH_DIR/link-office\"|" -e "s|127.0.0.1\.|10.78.0.2.|g" "$BENCH_DIR/office.toml" > "$BENCH_DIR/link-office.toml"
  ip netns exec "$NS" "$BIN/bodycam-office" --config "$BENCH_DIR/link-office.toml" 2> "$BENCH_DIR/link-office.log" &
  LINK_OFFICE=$!
  for _ in $(seq 100); do grep -q "listening on 10.78.0.2:8443" "$BENCH_DIR/link-office.log" && break; sleep 0.1; done
  grep -q "listening on 10.78.0.2:8443" "$BENCH_DIR/link-office.log" || { cat "$BENCH_DIR/link-office.log" >&2; echo "bench: the link's office did not start" >&2; exit 1; }
  "$BIN/bodycam-bench" ingest "https://10.78.0.2:8443" "$KEYS/tls" "$KEYS/ca.pem" "$BENCH_DIR/link-store" 1 2 > "$BENCH_DIR/link.txt"
  for segment in "$BENCH_DIR/link-store"/*.bcseg; do
    cmp -s "$segment" "$BENCH_DIR/link-office/devices/BC-INGEST-1/$(basename "$segment")" \
      || { echo "bench: the link office's copy of $(basename "$segment") is not the store's" >&2; exit 1; }
  done
  awk '$2 == "office_ingest_mb_per_s" { printf "BENCH uplink_goodput_mbit_s %.3f Mbit/s\nBENCH uplink_goodput_vs_link %.3f ratio (2 Mbit/s tbf; goal >= 0.9)\n", $3 * 8, $3 * 8 / 2 }' "$BENCH_DIR/link.txt"
  link_down
  trap - EXIT
else
  link_down
  echo "bench: upload goodput over a shaped link skipped (needs root, ip and tc, network namespaces, veth and tbf): $(cat "$BENCH_DIR/link-setup.log" 2>/dev/null)"
fi
