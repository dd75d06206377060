# The systemd scenario's checks, run by systemd (PID 1) as a unit once bodycamd.service, the
# project's own unit, has been started at boot with no camera present.
#   - camera missing at boot: the service stays up with the alarm; recording starts within 2 s of
#     vivid appearing;
#   - SIGKILL while recording: systemd restarts it and it resumes recording by itself;
#   - a hung daemon (SIGSTOP): the watchdog (WatchdogSec=10) has it killed and restarted, and it
#     resumes recording;
#   - 20 crashes in a row never reach start-limit-hit.
# Writes its RESULT lines to the results share, its status last, and powers the guest off.
export WORK=/var/lib/bodycam-rig
source "$RIG_REPO/Hardware/rig/lib.sh"
SOCKET=/run/bodycam/control.sock
STORE=/var/lib/bodycam/store
KEYS=/var/lib/bodycam/keys
finish() {
    local status=$?
    set +e  # the diagnostics below may fail; the status and the power-off must not be skipped
    { echo "--- /dev/video*, the V4L2 major, modules, modules-load"; ls -l /dev/video* 2>&1; grep -i video /proc/devices;
      grep -E '^(videodev|vivid) ' /proc/modules; systemctl status --no-pager systemd-modules-load 2>&1 | tail -5;
      grep -E '^(Groups|Uid)' /proc/"$(main_pid)"/status; id bodycam; runuser -u bodycam -- head -c 1 /dev/video0 >/dev/null && echo "bodycam opens /dev/video0 outside the unit";
      systemctl show -p DeviceAllow -p DevicePolicy bodycamd; journalctl -b --no-pager | grep -i -E 'device|bpf|cgroup' | tail -10; } >>"$RIG_RESULTS/systemd.0.log" 2>&1
    journalctl -u bodycamd --no-pager -n 60 >"$RIG_RESULTS/systemd.bodycamd.log" 2>&1 || true
    echo "$status" >"$RIG_RESULTS/systemd.0.status"
    sync
    # At once, as the other scenarios' busybox poweroff -f does.
    echo 1 >/proc/sys/kernel/sysrq
    echo o >/proc/sysrq-trigger
}
trap finish EXIT
main_pid() { systemctl show -p MainPID --value bodycamd; }
# Empty while the daemon is down (between a kill and its restart).
status_field() { ctl status --json --socket "$SOCKET" 2>/dev/null | python3 -c "import json,sys; s=json.load(sys.stdin); print(s$1)" 2>/dev/null; }
recording_frames_after() {  # recording, with more than N pictures encoded
    [ "$(status_field '["state"]')" = recording ] && [ "$(status_field '["frames"]')" -gt "$1" ]
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }

log "systemd is PID 1: $(ps -o comm= -p 1)"
log "before any camera: videodev $(grep -q '^videodev ' /proc/modules && echo loaded || echo 'not loaded'); $(systemctl status --no-pager systemd-modules-load 2>&1 | grep -i -E 'insert|fail|videodev' | head -3)"
wait_for 120 "bodycamd.service active" systemctl is-active -q bodycamd
wait_for 60 "the camera missing alarm" counts 'status_field "[\"alarms\"].count(\"camera missing\")"' -ge 1
check "the service stays up without a camera" systemctl is-active -q bodycamd
ctl sim click REC_BTN --socket "$SOCKET" >/dev/null
wait_for 30 "recording (waiting for the camera)" is_state recording
load_vivid webcam
appeared=$(now)  # /dev/video0 is there (load_vivid waits for the node)
wait_for 60 "pictures after vivid appeared" recording_frames_after 0
# From the node's appearance to the daemon's camera_restored record (both the guest's clock):
# the status polls above are too coarse under emulation to time it.
camera_s=$(ctl events --json --kind camera_restored "$STORE" | python3 -c '
import datetime, json, sys
r = json.load(sys.stdin)["records"][0]
t = datetime.datetime.fromisoformat(r["utc"].rstrip("Z")[:26]).replace(tzinfo=datetime.timezone.utc).timestamp()
print("%.2f" % (t - float(sys.argv[1])))' "$appeared")
result "camera_appeared_to_recording_s=$camera_s"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 2.0 else 1)" "$camera_s" || fail "recording began ${camera_s} s after the camera appeared (more than 2 s)"

pid=$(main_pid)
killed=$(now)
kill -KILL "$pid"
wait_for 120 "systemd restarted bodycamd after SIGKILL" counts 'main_pid' -ne "$pid"
wait_for 120 "recording resumed by itself after SIGKILL" recording_frames_after 0
result "sigkill_to_recording_s=$(since "$killed")"

pid=$(main_pid)
stopped=$(now)
kill -STOP "$pid"
wait_for 120 "the watchdog had the hung bodycamd killed" counts 'main_pid' -ne "$pid"
wait_for 120 "recording resumed by itself after the watchdog" recording_frames_after 0
result "hang_to_recording_s=$(since "$stopped")"
check "the watchdog's kill is journaled by systemd" bash -c "journalctl -u bodycamd --no-pager | grep -qi watchdog"

previous=$(main_pid)
for crash in $(seq 20); do
    wait_for 60 "bodycamd running again before crash $crash" counts 'main_pid' -ne 0
    pid=$(main_pid)
    kill -KILL "$pid" 2>/dev/null || true
    wait_for 60 "a new bodycamd after crash $crash" counts 'main_pid' -ne "$pid"
done
wait_for 120 "recording resumed after 20 crashes" recording_frames_after 0
result_state=$(systemctl show -p Result --value bodycamd)
restarts=$(systemctl show -p NRestarts --value bodycamd)
result "crashes=20 restarts=$restarts result=$result_state"
check "never start-limit-hit" test "$result_state" != start-limit-hit
check "active after 20 crashes" systemctl is-active -q bodycamd
systemctl stop bodycamd
ctl verify --authority "$KEYS/authority.pub" "$STORE" >"$WORK/verify.txt" 2>&1 || { cat "$WORK/verify.txt"; fail "the store does not verify"; }
log "systemd: camera missing at boot, SIGKILL, a hang and 20 crashes: recording came back each time"
