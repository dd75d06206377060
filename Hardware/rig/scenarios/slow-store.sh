# Slow store: the store's disk sits under a device-mapper delay target (dm-delay) that holds every
# write and every flush 500 ms, as an SD card that stalls on its flushes. bodycamd records from
# vivid for RIG_SLOW_SECONDS (default 60): no picture may be let go for storage (the write queue
# absorbs the stalls, one sync covering what was sealed behind each), and the store verifies and
# exports whole.
export WORK=/var/lib/bodycam-rig
source "$RIG_REPO/Hardware/rig/lib.sh"
modprobe -a virtio_blk ext4 dm-mod dm-delay
for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
sectors=$(blockdev --getsz /dev/vda) || fail "no store disk /dev/vda"
# delay DEVICE OFFSET MS for reads, then writes, then flushes (Documentation/admin-guide/device-mapper/delay.rst).
# No udev in the guest: dmsetup makes the /dev/mapper node itself.
export DM_DISABLE_UDEV=1
dmsetup create --noudevsync slow --table "0 $sectors delay /dev/vda 0 0 /dev/vda 0 500 /dev/vda 0 500" || fail "dmsetup refused the delay target"
dmsetup mknodes slow
mkdir -p /mnt/slow
mount -t ext4 /dev/mapper/slow /mnt/slow || fail "cannot mount the delayed disk"
started=$SECONDS
sync_probe=/mnt/slow/probe
dd if=/dev/zero of="$sync_probe" bs=4k count=1 conv=fsync status=none
rm -f "$sync_probe"
log "one 4 KiB write with fsync took $((SECONDS - started)) s or less on the delayed disk"
load_vivid
load_gpio_sim
provision
STORE=/mnt/slow/store
write_config "$WORK/slow.toml" "$STORE"
# 640x360 (the export decodes everything under emulation); 20 s segments, so that three seals,
# each a few seconds of syncs on this disk, fall inside the recording.
sed -i 's/^width = .*/width = 640/; s/^height = .*/height = 360/; s/^segment_seconds = .*/segment_seconds = 20/' "$WORK/slow.toml"
start_daemon "$WORK/slow.toml" --record-after 0
wait_for 30 "recording" is_state recording
record_seconds=${RIG_SLOW_SECONDS:-60}
log "recording for $record_seconds s onto the delayed disk"
sleep "$record_seconds"
ctl status --json --socket "$SOCKET" >"$WORK/status.json"
log "status: $(cat "$WORK/status.json")"
stopping=$SECONDS
stop_daemon
cp "$WORK/bodycamd.log" "$RIG_RESULTS/slow-store.bodycamd.log"
stop_s=$((SECONDS - stopping))
log "bodycamd stopped and sealed in $stop_s s; verifying and exporting"
ctl events --json "$STORE" >"$WORK/events.json"
verify_and_export "$STORE"
python3 - "$WORK/status.json" "$WORK/events.json" "$WORK/export/export-report.json" "$record_seconds" "$stop_s" <<'PY' || fail "slow store"
import json, sys
status = json.load(open(sys.argv[1]))
records = json.load(open(sys.argv[2]))["records"]
segments = json.load(open(sys.argv[3]))["segments"]
seconds = int(sys.argv[4])
stop_s = int(sys.argv[5])
exported = [s for s in segments if s.get("exported")]
drops = sum(r["fields"]["count"] for r in records if r["kind"] == "frames_dropped")
backlog = [r for r in records if r["kind"].startswith("storage_backlog")]
print(f"RESULT slow_store_s={seconds} frames={status['frames']} frames_shed={status['frames_shed']} "
      f"write_queue_peak_ms={status['write_queue_peak_ms']} camera_frames_dropped={drops} "
      f"segments={len(exported)} frames_decoded={sum(s['frames_decoded'] for s in exported)} "
      f"frames_dropped_records={sum(1 for r in records if r['kind'] == 'frames_dropped')} stop_s={stop_s}")
if status["frames_shed"] != 0 or backlog:
    sys.exit(f"{status['frames_shed']} pictures let go for storage ({len(backlog)} backlog records)")
if status["write_queue_peak_ms"] < 400:
    sys.exit(f"the write queue never held a stall's worth ({status['write_queue_peak_ms']} ms): was the disk delayed?")
# A stop seals the open segment: a few syncs, each a second or two on this disk. Minutes mean
# something queued behind the storage (as a journal record per dropped frame once did).
if stop_s > 90:
    sys.exit(f"bodycamd took {stop_s} s to stop and seal")
if status["frames"] < seconds * 25:
    sys.exit(f"only {status['frames']} pictures in {seconds} s")
PY
log "slow store: recorded without letting a picture go"
