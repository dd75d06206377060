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
    """Per segment, what decodes plus what its manifest says is missing fills its time; every
    missing frame was journaled as dropped."""
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
    # Per segment: the timeline is the driver's timestamps, so a dropped frame leaves a gap in
    # it, and the pictures that decode plus the frames the manifest says are missing (counted
    # from the sequence numbers) fill the segment's time. vivid (6.1) stamps each buffer with the
    # time its thread fills it, so under emulation a picture at either end of a segment may be
    # stamped a few frame periods late: the sum may differ from the span by up to 5 frames
    # (167 ms at 30 fps).
    # A signed stream's export also holds the next segment's first pictures (they carry the
    # signature of its last GOP): the segment's own are `frames_exported`, and its own time the
    # manifest's `duration_us`; every picture of the file must decode.
    # A guest that drops most frames (emulation far slower than the camera's rate) has vivid's
    # sequence numbers and timestamps part: the sum was seen to pass the span by up to a second
    # in five, unsigned as signed. There each segment's sum is reported, and only the run's is
    # judged, within a fifth; every other check stands.
    own = sum(s["frames_exported"] for s in segments)
    all_missing = sum(s.get("frames_dropped") or 0 for s in segments)
    judged = all_missing <= own
    if not judged:
        print(f"RESULT {name}_span_check=loose ({all_missing} of {all_missing + own} frames dropped: the guest is too slow "
              f"for the camera's rate, its timestamps and sequence numbers part)")
        # Still, over the whole run, within a fifth: a count of missing frames far off the time is a bug.
        whole = round(sum(s["manifest_body"]["duration_us"] for s in segments) / 1e6 * fps)
        if abs(own + all_missing - whole) > whole // 5:
            sys.exit(f"{name}: {own} pictures + {all_missing} missing != {whole} frames in the run, by more than a fifth")
    in_manifests = 0
    for s in segments:
        missing = s.get("frames_dropped")
        if missing is None:
            sys.exit(f"{name}: {s['manifest']} does not say how many frames are missing")
        in_manifests += missing
        if s["frames_decoded"] < s["frames_exported"]:
            sys.exit(f"{name}: {s['manifest']}: {s['frames_decoded']} of {s['frames_exported']} pictures decode")
        seconds = s["manifest_body"]["duration_us"] / 1e6
        span = round(seconds * fps)
        print(f"  {s['manifest']}: {s['frames_exported']} pictures ({s['frames_decoded']} in the file), {missing} missing, "
              f"{seconds:.3f} s ({s['duration_seconds']:.3f} s in the file)")
        # Under emulation vivid's thread runs late by more the more frames it drops, so its
        # timestamps and its sequence numbers part by more: 5 frames and a tenth of those missing.
        if judged and abs(s["frames_exported"] + missing - span) > 5 + missing // 10:
            sys.exit(f"{name}: {s['manifest']}: {s['frames_exported']} pictures + {missing} missing != {span} frames "
                     f"in {seconds:.3f} s")
    print(f"RESULT {name}_frames_missing_in_manifests={in_manifests}")
    # And every one of them was journaled (the journal also counts drops outside the recording).
    if dropped < in_manifests:
        sys.exit(f"{name}: {in_manifests} frames missing in the manifests but only {dropped} journaled as dropped")


def count(events_path, kind):
    print(len(records(events_path, kind)))


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
