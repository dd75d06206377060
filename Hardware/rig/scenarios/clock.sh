# Clock: the guest's clock is set 3 h behind before bodycamd starts (a board whose RTC drifted, or
# that has none), bodycamd records, then the clock is stepped to the right time as NTP would.
# The step is journaled, the segment spanning it is cut there, later segments carry the right
# times, and verify and export report corrected times for the earlier ones.
export WORK=/var/lib/bodycam-rig
source "$RIG_REPO/Hardware/rig/lib.sh"
load_vivid
load_gpio_sim
provision
STORE=$WORK/store
write_config "$WORK/clock.toml" "$STORE"
behind=10800
date -s "@$(( $(date +%s) - behind ))" >/dev/null || fail "cannot set the clock back"
log "clock set 3 h behind: $(date -u +%FT%TZ)"
start_daemon "$WORK/clock.toml" --record-after 0
wait_for 20 "recording" is_state recording
sleep 7
date -s "@$(( $(date +%s) + behind ))" >/dev/null || fail "cannot step the clock"
stepped_at=$(date +%s)
log "clock stepped to $(date -u +%FT%TZ)"
sleep 7
stop_daemon
verify_and_export "$STORE"
ctl events --json "$STORE" >"$WORK/events.json"
ctl segments --json "$STORE" >"$WORK/segments.json"
python3 - "$WORK/events.json" "$WORK/segments.json" "$WORK/export/export-report.json" "$stepped_at" "$behind" <<'PY' || fail "clock"
import datetime, json, sys
records = json.load(open(sys.argv[1]))["records"]
manifests = sorted(json.load(open(sys.argv[2])), key=lambda m: m["sequence"])
report = json.load(open(sys.argv[3]))
stepped_at, behind = float(sys.argv[4]), int(sys.argv[5])
def utc(text):
    return datetime.datetime.fromisoformat(text.rstrip("Z")[:26]).replace(tzinfo=datetime.timezone.utc).timestamp()
steps = [r["fields"] for r in records if r["kind"] == "clock_step"]
cut = [m["sequence"] for m in manifests if m.get("cut_by_clock_step")]
before = [m for m in manifests if utc(m["start_utc"]) < stepped_at - behind / 2]
after = [m for m in manifests if m not in before]
corrections = {c["sequence"]: c for c in report["verification"]["time_corrections"]}
exported = {s["sequence"]: s for s in report["segments"] if s.get("exported")}
print(f"RESULT clock_steps={len(steps)} step_ms={steps[0]['step_ms'] if steps else None} cut_segments={cut} "
      f"segments_before={len(before)} segments_after={len(after)} corrected={sorted(corrections)}")
if len(steps) != 1 or abs(steps[0]["step_ms"] - behind * 1000) > 3000:
    sys.exit(f"expected one clock_step of about {behind} s: {steps}")
if len(cut) != 1 or cut[0] != before[-1]["sequence"]:
    sys.exit(f"expected the last segment before the step to be cut by it: cut {cut}, before {[m['sequence'] for m in before]}")
if not before or not after:
    sys.exit("segments on both sides of the step expected")
for m in after:
    if abs(utc(m["start_utc"]) - stepped_at) > 60:
        sys.exit(f"segment {m['sequence']} after the step starts at {m['start_utc']}, not about the right time")
for m in before:
    c = corrections.get(m["sequence"])
    if not c or abs(c["offset_ms"] - behind * 1000) > 3000:
        sys.exit(f"segment {m['sequence']} recorded 3 h behind has no correction of about 3 h: {c}")
    e = exported.get(m["sequence"])
    if not e or e.get("corrected_start_utc") != c["corrected_start_utc"]:
        sys.exit(f"the export of segment {m['sequence']} does not give its corrected time: {e}")
for m in after:
    if m["sequence"] in corrections:
        sys.exit(f"segment {m['sequence']} after the step was corrected: {corrections[m['sequence']]}")
PY
log "clock: the step was journaled, cut the segment, and the earlier times are corrected"
