# Camera lost: the camera's device goes away while recording (the vivid platform device is
# unbound from its driver, as a USB camera unplugged would be) and comes back (bound again). The
# loss is journaled, what was recorded before it is sealed, and recording resumes within 2 s of
# the device's return.
source "$RIG_REPO/Hardware/rig/lib.sh"
load_vivid webcam
load_gpio_sim
provision
STORE=$WORK/store
write_config "$WORK/lost.toml" "$STORE"
sed -i 's/^width = .*/width = 640/; s/^height = .*/height = 360/' "$WORK/lost.toml"
start_daemon "$WORK/lost.toml" --record-after 0
wait_for 10 "recording" is_state recording
sleep 4
driver=/sys/bus/platform/drivers/vivid
log "unbinding vivid.0 (the camera is gone)"
echo vivid.0 >"$driver/unbind"
wait_for 5 "the loss is journaled" counts 'journal_count "$STORE" camera_lost' = 1
sealed_before=$(journal_count "$STORE" segment_sealed)
check "what was recorded before the loss is sealed" test "$sealed_before" -ge 1
sleep 3
log "binding vivid.0 again"
back=$(date -u +%Y-%m-%dT%H:%M:%S.%N)
echo vivid.0 >"$driver/bind"
wait_for 10 "the camera is back in the journal" counts 'journal_count "$STORE" camera_restored' = 1
sleep 4
stop_daemon
verify_and_export "$STORE"
ctl events --json "$STORE" >"$WORK/events.json"
python3 - "$WORK/events.json" "$back" "$WORK/export/export-report.json" <<'PY' || fail "resume"
import json, sys, datetime
records = json.load(open(sys.argv[1]))["records"]
def at(text):
    return datetime.datetime.fromisoformat(text.rstrip("Z")[:26])
back = at(sys.argv[2])
restored = next(r for r in records if r["kind"] == "camera_restored")
lost = next(r for r in records if r["kind"] == "camera_lost")
resume = (at(restored["utc"]) - back).total_seconds()
after = [r for r in records if r["kind"] == "segment_sealed" and r["seq"] > restored["seq"]]
frames_after = sum(r["fields"]["frames"] for r in after)
report = json.load(open(sys.argv[3]))
print(f"RESULT camera_back_to_recording_s={resume:.2f} lost_reason=\"{lost['fields']['reason']}\" "
      f"segments={len(report['segments'])} frames_after_return={frames_after}")
if resume > 2.0:
    sys.exit(f"recording resumed {resume:.2f} s after the camera came back (limit 2 s)")
if frames_after < 30:
    sys.exit(f"only {frames_after} frames were recorded after the camera came back")
PY
