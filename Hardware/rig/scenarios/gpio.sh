# Real GPIO path: the buttons and outputs through libgpiod and the kernel's GPIO character device,
# on gpio-sim lines named as the CM4 board's device tree names them (active-low buttons with
# pull-ups, active-low indicators, active-high PWR_HOLD). A press pulls the line down.
source "$RIG_REPO/Hardware/rig/lib.sh"
load_vivid
load_gpio_sim
provision
STORE=$WORK/store
write_config "$WORK/gpio.toml" "$STORE"
level_is() { [ "$(level "$1")" = "$2" ]; }

# The technician's tools on the real lines, before the daemon holds them.
ctl gpio list --json >"$WORK/gpio-list.json"
python3 - "$WORK/gpio-list.json" "${GPIO_LINES[@]}" <<'PY' || fail "gpio list"
import json, sys
chips = json.load(open(sys.argv[1]))
names = {line["name"] for chip in chips if chip["label"] == "bodycam-sim" for line in chip["lines"]}
missing = set(sys.argv[2:]) - names
print(f"RESULT gpio_list_lines={len(names)}")
if missing:
    sys.exit(f"gpio list does not show {sorted(missing)}")
PY
ctl gpio test-outputs --config "$WORK/gpio.toml" >"$WORK/test-outputs.txt" &
tester=$!
# Each output is switched on (level 0: active-low) and off again (1) while the tool holds it.
declare -A seen_lit=() seen_off_after=()
while kill -0 $tester 2>/dev/null; do
    for line in REC_LED STATUS_LED BUZZER HAPTIC; do
        case "$(level $line)" in
            0) seen_lit[$line]=1 ;;
            1) [ -n "${seen_lit[$line]:-}" ] && seen_off_after[$line]=1 ;;
        esac
    done
done
wait $tester || fail "gpio test-outputs failed: $(cat "$WORK/test-outputs.txt")"
for line in REC_LED STATUS_LED BUZZER HAPTIC; do
    check "gpio test-outputs switched $line on and off" test -n "${seen_lit[$line]:-}" -a -n "${seen_off_after[$line]:-}"
done
# The presses once the watch holds the lines (it says so on standard error), then the watch's
# lines are waited for (a slow guest starts bodycamctl in seconds).
# (bodycamctl itself in the background, not the ctl function's subshell: killing it must free
# the lines for bodycamd.)
"$BIN/bodycamctl" gpio watch --json --config "$WORK/gpio.toml" --seconds 60 >"$WORK/watch.json" 2>"$WORK/watch.err" &
watcher=$!
watching() { grep -q '^watching' "$WORK/watch.err" || { kill -0 "$watcher" 2>/dev/null || fail "gpio watch failed: $(cat "$WORK/watch.err")"; false; }; }
wait_for 30 "gpio watch holding the lines" watching
click REC_BTN
click MARK_BTN
wait_for 30 "gpio watch saw the REC_BTN press" grep -q '"button":"REC_BTN","gesture":"press"' "$WORK/watch.json"
log "ok: gpio watch saw the REC_BTN press"
wait_for 30 "gpio watch saw the MARK_BTN press" grep -q '"button":"MARK_BTN","gesture":"press"' "$WORK/watch.json"
log "ok: gpio watch saw the MARK_BTN press"
kill "$watcher" 2>/dev/null || true
wait "$watcher" || true

start_daemon "$WORK/gpio.toml"

wait_for 10 "bodycamd reaches standby" is_state standby
check "bodycamd holds its lines (gpio list names it the consumer)" bash -c "'$BIN/bodycamctl' gpio list | grep -q 'REC_BTN.*held by bodycamd'"
check "PWR_HOLD is asserted (level 1) from the start" level_is PWR_HOLD 1
check "REC_LED is off (level 1: active-low)" level_is REC_LED 1

# Record: the press's edge to the LED's level, timed in the guest with bash builtins only.
led_file="$GPIO_SYSFS/sim_gpio$(line_index REC_LED)/value"
pull_file="$GPIO_SYSFS/sim_gpio$(line_index REC_BTN)/pull"
start=$EPOCHREALTIME
echo pull-down >"$pull_file"
until read -r value <"$led_file" && [ "$value" = 0 ]; do
    awk -v s="$start" -v n="$EPOCHREALTIME" 'BEGIN { exit !(n - s > 2) }' && fail "REC_LED did not light within 2 s of the press"
done
lit=$EPOCHREALTIME
sleep 0.15; echo pull-up >"$pull_file"
latency_ms=$(awk -v s="$start" -v e="$lit" 'BEGIN { printf "%.1f", (e - s) * 1000 }')
log "REC_BTN press to REC_LED lit: $latency_ms ms"
result "record_button_to_led_ms=$latency_ms"
wait_for 5 "recording after the record press" is_state recording

marks() { journal_count "$STORE" mark; }
click MARK_BTN
wait_for 5 "MARK_BTN adds a mark" counts marks = 1

# The officer's own stop and the power button are refused while recording; PWR_HOLD stays.
click REC_BTN
wait_for 5 "a REC press while recording is a denied stop" counts 'journal_count "$STORE" stop_denied' = 1
click PWR_BTN
wait_for 5 "a PWR press while recording is a denied power-off" counts 'journal_count "$STORE" power_off_denied' = 1
# Held: the press counts at once and the long press after 3 s; both are refused.
press PWR_BTN; sleep 3.5; release PWR_BTN
wait_for 5 "a PWR long press while recording is a denied power-off" counts 'journal_count "$STORE" power_off_denied' = 3
check "PWR_HOLD still asserted after the refused power-offs" level_is PWR_HOLD 1
check "still recording after the refusals" is_state recording
check "REC_LED still lit" level_is REC_LED 0

# A bouncing contact: nine edges within a few milliseconds, ending closed, then held, is one
# press. The edges are written at real-time priority so the encoder's load cannot stretch the
# burst into separate presses.
mark_pull="$GPIO_SYSFS/sim_gpio$(line_index MARK_BTN)/pull"
bounce_ms=$(chrt -f 50 bash -c 'start=$EPOCHREALTIME
    for _ in 1 2 3 4; do echo pull-down >"$1"; echo pull-up >"$1"; done; echo pull-down >"$1"
    awk -v s="$start" -v e="$EPOCHREALTIME" "BEGIN { printf \"%.1f\", (e - s) * 1000 }"' _ "$mark_pull")
sleep 0.3; echo pull-up >"$mark_pull"
sleep 1
check "a bouncing MARK_BTN (9 edges in $bounce_ms ms, then held) is one mark" test "$(marks)" = 2
result "bounce_edges=9 bounce_window_ms=$bounce_ms marks=$(marks)"

# The supervisor's stop token stops the recording.
ctl stop --token "$(token stop)" --socket "$SOCKET" >/dev/null || fail "the authorised stop was refused"
wait_for 5 "standby after the authorised stop" is_state standby
check "REC_LED off after the authorised stop" level_is REC_LED 1
check "PWR_HOLD asserted while the daemon runs" level_is PWR_HOLD 1
stop_daemon
verify_and_export "$STORE"
check "both marks are in the manifests" test "$(cat "$STORE"/*.manifest | grep -o '"monotonic_ns"' | wc -l)" -ge 2
result "stop_denied=$(journal_count "$STORE" stop_denied) power_off_denied=$(journal_count "$STORE" power_off_denied)"
