#!/usr/bin/env bash
# make fuzz: coverage-guided fuzzing (libFuzzer, with AddressSanitizer) of every parser that reads
# outside input (docs/TESTING.md, "Fuzzing"). Prints one line per target:
#   FUZZ <target> runs=<n> seconds=<s> corpus=<files> findings=<n>
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_TARGETS  targets to run (default: all, from `bodycam-fuzz list`)
#   BIN           folder of the plain build (seeds and the target list come from its bodycam-fuzz)
# Seeds come from docs/vectors and the shipped configuration; inputs a fuzzer once crashed on
# live in Tests/Fuzz/TARGET/ and are replayed by `make test`. A finding is written to
# .build/fuzz/findings/ and fails the run: copy it into Tests/Fuzz/TARGET/ and fix the parser.
set -euo pipefail
BIN=${BIN:?BIN must name the folder holding the plain build of bodycam-fuzz}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
WORK=.build/fuzz
mkdir -p "$WORK"

# The fuzzing build: every module instrumented for coverage and AddressSanitizer. The toolchain's
# own lld links it (gold fails on the sanitizer runtime's symbols).
LLD="$(dirname "$(readlink -f "$(command -v swiftc)")")/ld.lld"
printf '{"schemaVersion": "1.0", "linker": {"path": "%s"}}\n' "$LLD" > "$WORK/toolset.json"
swift build -c release --product bodycam-fuzz --scratch-path "$WORK" --toolset "$WORK/toolset.json" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1 | grep -v "Cannot export local symbol" | tail -1
FUZZER="$(swift build -c release --scratch-path "$WORK" --show-bin-path)/bodycam-fuzz"

rm -rf "$WORK/seeds"
"$BIN/bodycam-fuzz" seeds . "$WORK/seeds" > /dev/null
failed=0
for target in ${FUZZ_TARGETS:-$("$BIN/bodycam-fuzz" list)}; do
  corpus="$WORK/corpus/$target" findings="$WORK/findings"
  mkdir -p "$corpus" "$findings" "Tests/Fuzz/$target"
  log="$WORK/$target.log"
  # New inputs go to the first folder only; seeds and regressions are read.
  if BODYCAM_FUZZ_TARGET=$target "$FUZZER" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$findings/$target-" \
       "$corpus" "$WORK/seeds/$target" "Tests/Fuzz/$target" > "$log" 2>&1; then
    found=0
  else
    found=1
    failed=1
  fi
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
  echo "FUZZ $target runs=${runs:-0} seconds=$SECONDS_PER_TARGET corpus=$(ls "$corpus" | wc -l) findings=$found"
  if [ "$found" = 1 ]; then
    grep -E "ERROR|SUMMARY|Test unit written|artifact" "$log" | head -8 >&2
    echo "fuzz: $target found an input that fails (above); copy it into Tests/Fuzz/$target/ and fix the parser" >&2
  fi
done
exit $failed
