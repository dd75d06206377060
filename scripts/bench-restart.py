#!/usr/bin/env python3
"""make bench: restart to recording.

bodycamd records the test pattern in real time; it is killed with SIGKILL while recording and
started again by hand, as systemd would, ROUNDS times. For each restart, from the kill:
  - recording: the new segment's first chunk (the MP4 header, written when its first keyframe
    arrives) is in the store, i.e. pictures are being recorded again;
  - first fragment: the new segment's first chunk of pictures is sealed (a resumed recording's
    first fragment is half a second of video: docs/ARCHITECTURE.md, "Segments").
The chunk headers are read as docs/FORMAT.md ("Sealed segment") lays them out.

usage: bench-restart.py BIN CONFIG STORE ROUNDS LOG
Prints BENCH lines: median and worst of each."""
import glob
import os
import signal
import struct
import subprocess
import sys
import time

VERSION = b"bodycam-segment/1\n"


def chunk_frames(path):
    """Frames of each complete chunk of a (partial) sealed segment; [] if it has none yet."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if not data.startswith(VERSION) or len(data) < len(VERSION) + 4:
        return []
    offset = len(VERSION) + 4 + struct.unpack(">I", data[len(VERSION):len(VERSION) + 4])[0]
    frames = []
    while len(data) - offset >= 13:
        length, count, _ticks, _flags = struct.unpack(">IIIB", data[offset:offset + 13])
        if len(data) - offset - 13 < length:
            break
        frames.append(count)
        offset += 13 + length
    return frames


def partials(store):
    return set(glob.glob(os.path.join(store, "*.bcseg.partial")))


def wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.005)
    sys.exit(f"bench-restart: timed out waiting for {what}")


def recording_in(store, exclude, fragment):
    """A new partial segment with its header chunk (or, with `fragment`, a chunk of pictures)."""
    for path in partials(store) - exclude:
        frames = chunk_frames(path)
        if frames and (not fragment or any(frames)):
            return path
    return None


def start(binary, config, log, extra):
    return subprocess.Popen([os.path.join(binary, "bodycamd"), "--config", config] + extra,
                            stdout=subprocess.DEVNULL, stderr=log)


def main():
    binary, config, store, rounds, log_path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    with open(log_path, "ab") as log:
        daemon = start(binary, config, log, ["--record-after", "0"])
        wait_for(lambda: recording_in(store, set(), True), "the first recording")
        to_recording, to_fragment = [], []
        for _ in range(rounds):
            before = partials(store)
            killed = time.monotonic()
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            daemon = start(binary, config, log, [])
            wait_for(lambda: recording_in(store, before, False), "recording after a restart")
            to_recording.append(time.monotonic() - killed)
            wait_for(lambda: recording_in(store, before, True), "a fragment after a restart")
            to_fragment.append(time.monotonic() - killed)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    for name, values in (("restart_to_recording", to_recording), ("restart_to_first_fragment", to_fragment)):
        ordered = sorted(values)
        print(f"BENCH {name}_median_s {ordered[len(ordered) // 2]:.3f} s")
        print(f"BENCH {name}_worst_s {ordered[-1]:.3f} s")


if __name__ == "__main__":
    main()
