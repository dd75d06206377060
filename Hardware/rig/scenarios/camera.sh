# Real camera path: bodycamd records from vivid at 1280x720, 30 fps, through the kernel's V4L2
# (libv4l2, mmap streaming). Every frame the camera delivered is in a sealed segment that
# verifies and decodes; frames missing are exactly the drops V4L2 sequence numbers showed, and
# each drop is journaled.
source "$RIG_REPO/Hardware/rig/lib.sh"
SECONDS_TO_RECORD=${RIG_CAMERA_SECONDS:-30}
load_vivid
load_gpio_sim
provision

run_mode() {  # run_mode NAME FORMATS
    local name=$1 formats=$2 store=$WORK/store-$1
    write_config "$WORK/$name.toml" "$store"
    sed -i "s/^formats = .*/formats = $formats/" "$WORK/$name.toml"
    log "$name: recording ${SECONDS_TO_RECORD} s from vivid (formats $formats)"
    start_daemon "$WORK/$name.toml" --record-after 0
    sleep "$SECONDS_TO_RECORD"
    stop_daemon
    grep -E 'camera|negotiat|format' "$WORK/bodycamd.log" | head -3 || true
    verify_and_export "$store"
    ctl events --json "$store" >"$WORK/events.json"
    python3 "$RIG_REPO/Hardware/rig/check.py" frames "$WORK/export/export-report.json" "$WORK/events.json" \
        "$name" 30 "$((SECONDS_TO_RECORD * 9 / 10))" || fail "$name: frames"
}
run_mode yuyv '["YUYV"]'
run_mode nv12 '["NV12"]'
