"""How long a video reader takes to reach the first frame of a part (``--start``) of an MPEG-TS file: trimmed from
the file's start (as before the seventy-fifth pass) and from a seek before the part
(:func:`classsr_cli.io.video.near_seek`, its packet listing included in the time).

The clip is ffmpeg's ``testsrc2`` at ``--size`` and 25 frames a second, ``--seconds`` long, H.264 (x264, veryfast,
yuv420p, a keyframe every ``--keyint`` frames, open GOPs, as broadcast and camcorder streams have) in MPEG-TS,
written to a temporary folder. Each way is timed ``--repeat`` times, in turns, to the part's first ``--frames``
frames, which are checked equal both ways; prints one JSON line with the best seconds of each, and where ffmpeg's
own input seek to ``--start`` lands (its first frame's time in the file: the keyframe after it, in MPEG-TS).

    python scripts/part_speed.py [--size 1920x1080] [--seconds 120] [--start 100] [--keyint 50] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from classsr_cli.io import video as video_io
from classsr_cli.io.video import VideoInfo, VideoReader, ffmpeg_exe, probe


def reach(part: VideoInfo, near: bool, frames: int) -> tuple[float, list[np.ndarray]]:
    """Seconds to the part's first ``frames`` frames, trimmed from the start or from a near seek; the frames."""
    t = time.perf_counter()
    video_io._near_seek.cache_clear()  # the listing counted each time
    reader = VideoReader(part)
    reader._may_near = near
    got = []
    with reader:
        for frame in reader:
            got.append(frame.rgb.copy())
            if len(got) == frames:
                break
    return time.perf_counter() - t, got


def plain_seek_lands(clip: Path, start: float) -> float | None:
    """Where ffmpeg's own input seek to ``start`` lands: the first frame it gives, in seconds of the file (its
    timestamps counted from the seek, as ffmpeg gives them, plus ``start``)."""
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-ss", f"{start}", "-i", str(clip), "-map", "0:v",
                           "-vf", "showinfo", "-frames:v", "1", "-f", "null", "-"],
                          capture_output=True, text=True, check=False).stderr  # fmt: skip
    found = re.search(r"pts_time:(-?[\d.]+)", text)
    return round(start + float(found.group(1)), 3) if found else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--start", type=float, default=100)
    ap.add_argument("--keyint", type=int, default=50)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.ts"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate=25",
                        "-t", str(args.seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                        "-x264-params", f"keyint={args.keyint}:open-gop=1", str(clip)], check=True)  # fmt: skip
        part = probe(clip).trimmed(args.start)
        best = {"from_start": float("inf"), "near_seek": float("inf")}
        frames: dict[str, list[np.ndarray]] = {}
        for _ in range(args.repeat):
            for way in best:
                seconds, frames[way] = reach(part, way == "near_seek", args.frames)
                best[way] = min(best[way], seconds)
        same = all(np.array_equal(a, b) for a, b in zip(frames["from_start"], frames["near_seek"], strict=True))
        margin = video_io.near_seek(part)
        lands = plain_seek_lands(clip, args.start)
    record = {"size": args.size, "seconds": args.seconds, "start": args.start, "keyint": args.keyint,
              "frames": args.frames, "repeat": args.repeat, "margin": margin, "same_frames": same,
              "plain_seek_first_frame_s": lands,
              "from_start_s": round(best["from_start"], 3), "near_seek_s": round(best["near_seek"], 3),
              "speedup": round(best["from_start"] / best["near_seek"], 1)}  # fmt: skip
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
