#!/usr/bin/env python3
"""Checks the rig's scenarios make on what bodycamctl reports (export-report.json, events --json).
Each prints RESULT lines and exits non-zero with the reason when a check fails."""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def records(events_path, kind=None):
    return [r for r in load(events_path)["records"] if kind is None or r["kind"] == kind]


def frames(report_path, events_path, name, fps, min_seconds):
    """What decodes plus what was journaled as dropped fills the recorded time."""
    fps, min_seconds = int(fps), float(min_seconds)
    report = load(report_path)
    drops = records(events_path, "frames_dropped")
    dropped = sum(r["fields"]["count"] for r in drops)
    bad = [s for s in report["segments"] if not s.get("exported") and not s.get("empty")]
    if bad:
        sys.exit(f"{name}: segments did not export: {bad}")
    segments = [s for s in report["segments"] if s.get("exported")]
    decoded = sum(s["frames_decoded"] for s in segments)
    duration = sum(s["duration_seconds"] for s in segments)
    expected = round(duration * fps)
    print(f"RESULT {name}_segments={len(segments)} {name}_recorded_seconds={duration:.2f} "
          f"{name}_frames_decoded={decoded} {name}_frames_dropped={dropped} "
          f"{name}_drop_records={len(drops)} {name}_frames_expected={expected}")
    problems = [s["decode_problems"] for s in segments if s.get("decode_problems")]
    if problems:
        sys.exit(f"{name}: decode problems: {problems}")
    if duration < min_seconds:
        sys.exit(f"{name}: only {duration:.1f} s recorded, expected at least {min_seconds:.1f}")
    # The timeline is the driver's timestamps: a dropped frame leaves a gap in it. Every frame
    # missing from the recorded time must have been journaled as dropped (to within one frame per
    # segment, where a segment's last frame duration is counted). The journal also counts drops
    # before the recording started and after it stopped, so the sum may exceed what is expected.
    if decoded + dropped < expected - len(segments):
        sys.exit(f"{name}: {decoded} decoded + {dropped} journaled as dropped < {expected} frames in {duration:.2f} s: "
                 f"{expected - decoded - dropped} frames lost without a trace")


def count(events_path, kind):
    print(len(records(events_path, kind)))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
