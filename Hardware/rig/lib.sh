# Shared by the rig's scenarios (sourced inside the guest). Each scenario prints what it does and
# measures, `result KEY=VALUE` lines the host collects, and exits non-zero on the first failed check.
set -euo pipefail
BIN=${RIG_BIN:?}
WORK=${WORK:-/var/lib/bodycam-rig}
KEYS=$WORK/keys
SOCKET=/run/bodycam/control.sock
DEVICE=BC-RIG-0001
mkdir -p "$WORK" /run/bodycam

log() { echo "[$(date +%H:%M:%S.%N | cut -c1-12)] $*"; }
result() { echo "RESULT $*"; }
fail() {
    echo "FAIL: $*"
    [ -f "$WORK/bodycamd.log" ] && cp "$WORK/bodycamd.log" "$RIG_RESULTS/${RIG_SCENARIO:-scenario}.bodycamd.log"
    [ -f "$WORK/bodycamd.log" ] && { echo "--- bodycamd's log (last 40 lines)"; grep -v 'frames dropped' "$WORK/bodycamd.log" | tail -40; }
    [ -n "${STORE:-}" ] && [ -f "$STORE/journal.log" ] && { echo "--- the journal (last 30 records)"; ctl events --last 30 "$STORE"; }
    exit 1
}
check() { local what=$1; shift; if "$@"; then log "ok: $what"; else fail "$what"; fi; }
ctl() { "$BIN/bodycamctl" "$@"; }
modprobe() { busybox modprobe "$@"; }

# Keys as an office would provision a device: office identity, authority, device key and
# certificate, one supervisor. Made once per boot (the guest's root is a tmpfs overlay), or kept
# on the scenario's disk when it has one.
provision() {
    [ -f "$KEYS/device.key" ] && return
    ctl office init --dir "$KEYS" --name office >/dev/null
    ctl authority init --dir "$KEYS" >/dev/null
    ctl supervisor init --dir "$KEYS/supervisors" --name sgt-rig >/dev/null
    mv "$KEYS/supervisors/sgt-rig.key" "$KEYS/sgt-rig.key"
    ctl keys provision --dir "$KEYS" >/dev/null
    ctl authority certify --authority-key "$KEYS/authority.key" --device-pub "$KEYS/device.pub" \
        --device-id "$DEVICE" --out "$KEYS/device.certificate" >/dev/null
    # The camera's media-signing key and certificate (ONVIF Media Signing: write_config adds them
    # when MEDIA_SIGNING is set).
    ctl authority issue media-signing "$DEVICE" --dir "$KEYS" --out "$KEYS" >/dev/null
}

# token KIND [extra options]: a supervisor's token for this device, printed as a file name.
token() {
    local kind=$1; shift
    local file
    file=$(mktemp -p "$WORK" "token.$kind.XXXXXX")
    ctl supervisor token --kind "$kind" --key "$KEYS/sgt-rig.key" --issuer sgt-rig --device-id "$DEVICE" --out "$file" "$@" >/dev/null
    echo "$file"
}

# write_config FILE STORE [extra TOML appended]: the device configuration the scenarios share:
# the CM4 board profile (so GPIO lines are found by their names), vivid as the camera, libx264;
# with MEDIA_SIGNING set, the stream signed (ONVIF Media Signing).
write_config() {
    local file=$1 store=$2 extra=${3:-} signing=""
    [ -z "${MEDIA_SIGNING:-}" ] || signing="media_signing_key = \"$KEYS/$DEVICE-media.key\"
media_signing_certificate = \"$KEYS/$DEVICE-media.pem\""
    cat >"$file" <<CONF
board_profile = "$RIG_REPO/Hardware/boards/rpi-cm4.toml"
device_id = "$DEVICE"
officer_id = "OFFICER-RIG"

[camera]
source = "v4l2"
device = "/dev/video0"
width = 1280
height = 720
fps = 30
formats = ["YUYV", "NV12", "YU12"]

[encoder]
codec = "libx264"
preset = "ultrafast"
bitrate_kbps = 3000

[recording]
pre_event_seconds = 2
segment_seconds = 5

[storage]
path = "$store"
reserve_mb = 8
floor_mb = 4

[evidence]
device_key = "$KEYS/device.key"
certificate = "$KEYS/device.certificate"
recipients = ["$KEYS/office.pub"]
$signing

[policy]
on_duty_at_start = true
supervisors = "$KEYS/supervisors"

[control]
socket = "$SOCKET"
$extra
CONF
}

# The scenario's own disk (an ext4 image the host attached over virtio-blk) at $STORE_DISK. The
# scenario's WORK may live on it: it is made again once the disk is mounted.
STORE_DISK=/mnt/store-disk
mount_store_disk() {
    mkdir -p "$STORE_DISK"
    modprobe -a virtio_blk ext4
    local _
    for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
    mount -t ext4 /dev/vda "$STORE_DISK" || fail "cannot mount the store disk /dev/vda"
    mkdir -p "$WORK"
}

# vivid, the kernel's virtual V4L2 capture device, as one capture node with one input.
#   load_vivid hdmi    an HDMI input (the default; vivid's webcam input tops out at 12.5 fps for
#                      1280x720) whose source is set to CEA-861 1280x720p30 timings (74.25 MHz
#                      pixel clock, 3300x750 total), as an HDMI-to-CSI bridge's source would be;
#   load_vivid webcam  a webcam input, which takes its size and rate from the daemon alone (so it
#                      comes back as the daemon wants it after an unbind and bind).
load_vivid() {
    local input=${1:-hdmi}
    modprobe vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=$([ "$input" = hdmi ] && echo 0x3 || echo 0x0)
    wait_for_camera
    if [ "$input" = hdmi ]; then
        v4l2-ctl -d /dev/video0 --set-dv-bt-timings \
            width=1280,height=720,interlaced=0,polarities=3,pixelclock=74250000,hfp=1760,hs=40,hbp=220,vfp=5,vs=5,vbp=20 >/dev/null ||
            fail "vivid refused 1280x720p30 timings"
    fi
}
wait_for_camera() {
    local _
    for _ in $(seq 50); do [ -c /dev/video0 ] && return; sleep 0.1; done
    fail "/dev/video0 did not appear"
}

# gpio-sim with the board's line names (as the CM4 overlay's gpio-line-names give them).
GPIO_LINES=(REC_BTN MARK_BTN PWR_BTN REC_LED STATUS_LED BUZZER HAPTIC PWR_HOLD)
load_gpio_sim() {
    modprobe configfs
    mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
    modprobe gpio-sim
    local dev=/sys/kernel/config/gpio-sim/bodycam i
    mkdir "$dev" "$dev/bank0"
    echo bodycam-sim >"$dev/bank0/label"
    echo ${#GPIO_LINES[@]} >"$dev/bank0/num_lines"
    for i in "${!GPIO_LINES[@]}"; do
        mkdir "$dev/bank0/line$i"
        echo "${GPIO_LINES[$i]}" >"$dev/bank0/line$i/name"
    done
    echo 1 >"$dev/live"
    GPIO_SYSFS=/sys/devices/platform/$(cat "$dev/dev_name")/$(cat "$dev/bank0/chip_name")
    [ -d "$GPIO_SYSFS" ] || fail "gpio-sim is live but $GPIO_SYSFS is missing"
    export GPIO_SYSFS
}

line_index() {
    local i
    for i in "${!GPIO_LINES[@]}"; do [ "${GPIO_LINES[$i]}" = "$1" ] && { echo "$i"; return; }; done
    fail "no line $1"
}
# The level on a line (what the outside world sees: outputs are active-low on this board).
level() { cat "$GPIO_SYSFS/sim_gpio$(line_index "$1")/value"; }
# Buttons are to ground with pull-ups: pressed pulls the line down.
press() { echo pull-down >"$GPIO_SYSFS/sim_gpio$(line_index "$1")/pull"; }
release() { echo pull-up >"$GPIO_SYSFS/sim_gpio$(line_index "$1")/pull"; }
click() { press "$1"; sleep "${2:-0.15}"; release "$1"; }

# wait_for SECONDS WHAT COMMAND...: polls the command until it succeeds, or fails the scenario.
# wait_for LIMIT WHAT COMMAND…: runs COMMAND until it succeeds, for at most LIMIT seconds.
# A count to wait for goes through `counts`, so that it is taken anew each time (a "$(…)" in
# the arguments would be expanded once, before the first try).
wait_for() {
    local limit=$1 what=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do [ $SECONDS -lt $deadline ] || fail "$what (after ${limit} s)"; sleep 0.05; done
}
state() { ctl status --json --socket "$SOCKET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
is_state() { [ "$(state)" = "$1" ]; }

# start_daemon CONFIG [bodycamd options]: starts bodycamd, waits for its socket.
start_daemon() {
    local config=$1; shift
    "$BIN/bodycamd" --config "$config" "$@" 2>"$WORK/bodycamd.log" &
    DAEMON=$!
    local _
    for _ in $(seq 100); do [ -S "$SOCKET" ] && return; kill -0 $DAEMON 2>/dev/null || break; sleep 0.1; done
    cat "$WORK/bodycamd.log"
    fail "bodycamd did not open its control socket"
}

stop_daemon() {
    kill -TERM "$DAEMON" 2>/dev/null || true
    local status=0
    wait "$DAEMON" || status=$?
    [ $status -eq 0 ] || { cat "$WORK/bodycamd.log"; fail "bodycamd exited with $status"; }
}

# counts 'COMMAND' OP N: the number COMMAND prints, compared with test's OP (=, -ge, …) to N.
counts() { local value; value=$(eval "$1") || return 1; test "$value" "$2" "$3"; }

# journal_count STORE KIND: how many journal records of that kind.
journal_count() { ctl events --json --kind "$2" "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))'; }

# verify_and_export STORE: the store verifies (no key) and every segment decrypts and decodes
# ($WORK/export/export-report.json says what each held).
verify_and_export() {
    local store=$1
    ctl verify --authority "$KEYS/authority.pub" "$store" >"$WORK/verify.txt" || { cat "$WORK/verify.txt"; fail "the store does not verify"; }
    rm -rf "$WORK/export"
    ctl export --identity "$KEYS/office.key" --authority "$KEYS/authority.pub" --out "$WORK/export" "$store" >"$WORK/export.txt" ||
        { cat "$WORK/export.txt"; fail "the store does not export"; }
}

# verify_media: every file of the last export ($WORK/export) is AUTHENTIC to bodycamctl
# verify-media against the authority's CA (the stream was signed: MEDIA_SIGNING).
verify_media() {
    local file count=0
    for file in "$WORK"/export/*.mp4; do
        ctl verify-media --ca "$KEYS/ca.pem" "$file" >>"$WORK/verify-media.txt" || { cat "$WORK/verify-media.txt"; fail "$(basename "$file") is not authentic"; }
        count=$((count + 1))
    done
    [ "$count" -gt 0 ] || fail "no exported file to validate"
    log "media signing: $count exported files AUTHENTIC"
    result "media_signing_authentic_files=$count"
}
