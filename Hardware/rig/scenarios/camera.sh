# Real camera path: bodycamd records from vivid at 1280x720, 30 fps, through the kernel's V4L2
# (libv4l2, mmap streaming), in YUYV and in NV12. The segments verify and decode, and every frame
# missing from the recorded time is one the V4L2 sequence numbers showed as dropped and the
# journal holds.
source "$RIG_REPO/Hardware/rig/lib.sh"
load_vivid
load_gpio_sim
provision

# The technician's tools on the real driver, before the daemon holds the camera.
write_config "$WORK/tools.toml" "$WORK/store-tools"
ctl camera list >"$WORK/camera-list.txt" || fail "camera list"
check "camera list shows vivid" grep -q vivid "$WORK/camera-list.txt"
ctl camera formats --device /dev/video0 >"$WORK/camera-formats.txt" || fail "camera formats"
check "camera formats offers YUYV and NV12" bash -c "grep -q YUYV '$WORK/camera-formats.txt' && grep -q NV12 '$WORK/camera-formats.txt'"
ctl camera snapshot --config "$WORK/tools.toml" --out "$WORK/still.jpg" >/dev/null || fail "camera snapshot"
check "camera snapshot writes a JPEG" bash -c "head -c 3 '$WORK/still.jpg' | od -An -tx1 | grep -q 'ff d8 ff'"
ctl selftest --config "$WORK/tools.toml" >"$WORK/selftest.txt" || { cat "$WORK/selftest.txt"; fail "selftest reports a failure"; }
sed 's/^/  selftest: /' "$WORK/selftest.txt"
result "selftest_pass=$(grep -c '^PASS' "$WORK/selftest.txt") selftest_warn=$(grep -c '^WARN' "$WORK/selftest.txt") selftest_fail=$(grep -c '^FAIL' "$WORK/selftest.txt" || true)"

run_mode() {  # run_mode NAME FORMATS SECONDS [signed]
    local name=$1 formats=$2 seconds=$3 signed=${4:-} store=$WORK/store-$1
    MEDIA_SIGNING=$signed write_config "$WORK/$name.toml" "$store"
    sed -i "s/^formats = .*/formats = $formats/" "$WORK/$name.toml"
    log "$name: recording ${seconds} s from vivid (formats $formats)"
    start_daemon "$WORK/$name.toml" --record-after 0
    sleep "$seconds"
    stop_daemon
    grep -E 'camera|negotiat|format' "$WORK/bodycamd.log" | head -3 || true
    verify_and_export "$store"
    [ -z "$signed" ] || verify_media
    ctl events --json "$store" >"$WORK/events.json"
    python3 "$RIG_REPO/Hardware/rig/check.py" frames "$WORK/export/export-report.json" "$WORK/events.json" \
        "$name" 30 "$((seconds * 9 / 10))" || fail "$name: frames"
}
# The main mode for the full 30 s, signed (ONVIF Media Signing, each export checked with
# verify-media); NV12 (no conversion before the encoder) for a shorter run.
run_mode yuyv '["YUYV"]' "${RIG_CAMERA_SECONDS:-30}" signed
run_mode nv12 '["NV12"]' 10
