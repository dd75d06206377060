# Power cut: the store is on ext4 on a virtio-blk disk (host cache off). The host kills qemu at a
# random moment while bodycamd records: the guest loses power with whatever its page cache held.
# A CPU hog runs beside bodycamd in every boot (other work on the board: the budget must hold
# under load, not only on an idle machine).
# Each boot first lets bodycamd recover what the previous one left and resume the recording by
# itself (no button press), checks it, then records until the next cut. Boot RIG_CUT (0-based) of RIG_CUTS + 1; RIG_CUT_AT is the guest's clock at its
# last sign of life before the previous cut (a heartbeat on the serial console every 50 ms).
export WORK=/mnt/store-disk/rig
source "$RIG_REPO/Hardware/rig/lib.sh"
mount_store_disk
# The hog: a busy loop at the same priority as bodycamd, for the whole boot.
bash -c 'while :; do :; done' &
load_vivid webcam
load_gpio_sim
provision
STORE=$STORE_DISK/store
write_config "$WORK/cut.toml" "$STORE"
sed -i 's/^width = .*/width = 640/; s/^height = .*/height = 360/' "$WORK/cut.toml"
CUT=${RIG_CUT:?}

if [ "$CUT" -gt 0 ]; then
    # Recovery: bodycamd recovers the store as it starts and resumes the recording the cut
    # interrupted, with no button pressed; it is stopped to check the store.
    start_daemon "$WORK/cut.toml"
    wait_for 20 "bodycamd resumed recording by itself after the cut" is_state recording
    stop_daemon
    resume_gap=$(ctl events --json --kind recording_resumed "$STORE" |
                 python3 -c 'import json,sys; r=json.load(sys.stdin)["records"]; print("%.2f" % (r[-1]["fields"]["gap_ms"] / 1000) if r else "none")')
    ctl verify --authority "$KEYS/authority.pub" "$STORE" >"$WORK/verify.txt" || { cat "$WORK/verify.txt"; fail "the store does not verify after cut $CUT"; }
    ctl segments --json "$STORE" >"$WORK/segments.json"
    python3 - "$WORK/segments.json" "${RIG_CUT_AT:?}" "$CUT" "$resume_gap" <<'PY' || fail "after cut $CUT"
import datetime, json, sys
manifests, cut_at, cut = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3])
def utc(text):
    return datetime.datetime.fromisoformat(text.rstrip("Z")[:26]).replace(tzinfo=datetime.timezone.utc).timestamp()
# The footage lost is from the end of the last picture that survived to the cut (empty segments,
# opened as the power went, hold none; segments the resumed recording made after it do not count).
last = max(utc(m["end_utc"]) for m in manifests if m["frames"] > 0 and utc(m["start_utc"]) < cut_at)
loss = cut_at - last
recovered = sum(1 for m in manifests if m.get("recovered"))
empty = sum(1 for m in manifests if m["frames"] == 0)
print(f"RESULT cut={cut} loss_s={loss:.2f} segments={len(manifests)} recovered_segments={recovered} empty_segments={empty} "
      f"resume_gap_s={sys.argv[4]}")
if sys.argv[4] == "none":
    sys.exit(f"cut {cut}: no recording_resumed in the journal")
# The budget, the second the procedure allows: the fragment in flight (half a second of pictures)
# and the time to encode and sync it.
if loss > float(__import__("os").environ.get("RIG_LOSS_BUDGET", "1.0")):
    sys.exit(f"cut {cut}: {loss:.2f} s of footage lost (more than the fragment in flight)")
PY
    if [ "$CUT" -eq "$RIG_CUTS" ]; then
        # Every segment, sealed or recovered after any cut, decrypts and decodes.
        verify_and_export "$STORE"
        python3 - "$WORK/export/export-report.json" <<'PY' || fail "export after the last cut"
import json, sys
segments = json.load(open(sys.argv[1]))["segments"]
exported = [s for s in segments if s.get("exported")]
problems = [s["decode_problems"] for s in exported if s.get("decode_problems")]
print(f"RESULT segments_exported={len(exported)} empty={sum(1 for s in segments if s.get('empty'))} "
      f"frames_decoded={sum(s['frames_decoded'] for s in exported)}")
if problems:
    sys.exit(f"decode problems: {problems}")
PY
    fi
    log "cut $CUT: recovered and verified"
fi

if [ "$CUT" -lt "${RIG_CUTS:?}" ]; then
    start_daemon "$WORK/cut.toml" --record-after 0
    wait_for 20 "recording" is_state recording
    sync  # the keys and configuration of this boot are on the disk before the cut
    touch "$RIG_RESULTS/power-cut.$CUT.recording"
    log "recording; the host cuts the power at a random moment"
    # At real-time priority, so the encoder's load cannot make the last sign of life stale.
    exec chrt -f 20 bash -c 'while :; do echo "RIG-ALIVE $EPOCHREALTIME" >/dev/console; sleep 0.05; done'
fi
