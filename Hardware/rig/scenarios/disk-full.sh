# Disk full: the store is on a small ext4 disk. While bodycamd records, another writer takes all
# but a few hundred KiB of the free space at once (so the encoder's writes can meet ENOSPC before
# the next storage check), then recording goes on into what is left. The alarm is journaled, the
# daemon does not crash, nothing sealed is lost and the last segment is sealed.
source "$RIG_REPO/Hardware/rig/lib.sh"
mount_store_disk
load_vivid
load_gpio_sim
provision
STORE=$STORE_DISK/store
write_config "$WORK/full.toml" "$STORE" ""
sed -i 's/^reserve_mb = .*/reserve_mb = 24/; s/^floor_mb = .*/floor_mb = 8/; s/^bitrate_kbps = .*/bitrate_kbps = 8000/' "$WORK/full.toml"
start_daemon "$WORK/full.toml" --record-after 0
wait_for 20 "recording" is_state recording
sleep 12
free_kib() { df -k --output=avail "$STORE_DISK" | tail -1 | tr -d ' '; }
log "free before the filler: $(free_kib) KiB"
fallocate -l "$(( ($(free_kib) - 512) * 1024 ))" "$STORE_DISK/filler" || fail "fallocate"
log "free after the filler: $(free_kib) KiB"
wait_for 30 "the critical storage alarm is journaled" counts 'journal_count "$STORE" storage_alarm' -ge 1
sleep 4
check "bodycamd is still running" kill -0 "$DAEMON"
state_after=$(state)
log "state after the alarm: $state_after"
check "bodycamd answers on its socket" test -n "$state_after"
stop_daemon
check "no segment is left open" test -z "$(ls "$STORE" | grep -E '\.partial$' || true)"
verify_and_export "$STORE"
ctl events --json "$STORE" >"$WORK/events.json"
python3 - "$WORK/events.json" "$WORK/export/export-report.json" <<'PY' || fail "disk full"
import json, sys
records = json.load(open(sys.argv[1]))["records"]
alarms = [r["fields"] for r in records if r["kind"] == "storage_alarm"]
sealed = [r for r in records if r["kind"] == "segment_sealed"]
segments = json.load(open(sys.argv[2]))["segments"]
exported = [s for s in segments if s.get("exported")]
failed = [r["fields"] for r in records if r["kind"] == "pipeline_failed"]
stops = [r["fields"].get("source", "?") for r in records if r["kind"] == "recording_stopped"]
print(f"RESULT alarms={[a['level'] for a in alarms]} sealed_segments={len(sealed)} exported={len(exported)} "
      f"frames_decoded={sum(s['frames_decoded'] for s in exported)} pipeline_failed={len(failed)} stopped_by={stops}")
if not any(a["level"] == "critical" for a in alarms):
    sys.exit("no critical storage alarm")
if "storage floor" not in stops:
    sys.exit(f"recording was not stopped at the storage floor: {stops}")
if len(exported) != len(sealed):
    sys.exit(f"{len(sealed)} segments sealed but {len(exported)} exported")
if any(s.get("decode_problems") for s in exported):
    sys.exit("decode problems")
PY
