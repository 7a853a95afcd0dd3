"""How long a video reader takes to reach frame ``--first``: reading every frame before it (as a resumed run or a
torchrun share did before the sixty-second pass), ffmpeg decoding and dropping them (``VideoReader(first=)`` until
the seventy-fourth pass), and ffmpeg starting at the keyframe before it (``VideoReader(first=)`` now:
:func:`classsr_cli.io.video.keyframe_seek`, its packet listing included in the time; with ``--container ts``,
MPEG-TS, whose seek lands after the time asked, 10 s before the frame, then trimmed, since the seventy-fifth pass).

The clip is ffmpeg's ``testsrc2`` at ``--size`` and 24 frames a second, ``--frames`` frames of H.264 (x264,
veryfast, yuv420p, a keyframe every ``--keyint`` frames: x264's default is 250, cameras and streams often 1 or 2
seconds' worth), written to a temporary folder. Each way is timed ``--repeat`` times, in turns, to the first frame
after the skipped ones (included); prints one JSON line with the best seconds of each and the frames read.

    python scripts/skip_speed.py [--size 1920x1080] [--frames 240] [--first 200] [--keyint 250] [--repeat 3]
                                 [--container mp4|ts]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from classsr_cli.io.video import VideoReader, ffmpeg_exe, probe


def reach(info: object, first: int, way: str) -> tuple[float, int]:
    """Seconds to the frame of index ``first``: read past, dropped by ffmpeg, or from the keyframe before it
    (``way``); the frame's index."""
    t = time.perf_counter()
    reader = VideoReader(info, first=first if way != "read" else 0)  # type: ignore[arg-type]
    reader._may_seek = way == "seeked"
    with reader:
        for frame in reader:
            if frame.index >= first:
                return time.perf_counter() - t, frame.index
    raise SystemExit(f"the clip has no frame {first}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--first", type=int, default=200)
    ap.add_argument("--keyint", type=int, default=250)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--container", choices=["mp4", "ts"], default="mp4")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"clip.{args.container}"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=24",
                        "-frames:v", str(args.frames), "-c:v", "libx264", "-preset", "veryfast", "-g", str(args.keyint),
                        "-pix_fmt", "yuv420p",
                        str(clip)], check=True)  # fmt: skip
        info = probe(clip)
        best = {"read": float("inf"), "dropped": float("inf"), "seeked": float("inf")}
        for _ in range(args.repeat):
            for way in best:
                seconds, index = reach(info, args.first, way)
                assert index == args.first
                best[way] = min(best[way], seconds)
    record = {"container": args.container, "size": args.size, "frames": args.frames, "first": args.first, "keyint": args.keyint,
              "repeat": args.repeat, "read_s": round(best["read"], 3), "dropped_s": round(best["dropped"], 3),
              "seeked_s": round(best["seeked"], 3), "speedup": round(best["read"] / best["dropped"], 2),
              "seek_speedup": round(best["dropped"] / best["seeked"], 2)}  # fmt: skip
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
