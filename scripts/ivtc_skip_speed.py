"""How long a resumed ``--ivtc`` run (or a torchrun share of one) takes to reach its first film frame: it decodes the
telecined source from the start through the inverse telecine and ffmpeg drops the film frames before it
(``VideoReader(deinterlace=IVTC, first=)``; a keyframe seek would change which fields ``fieldmatch`` and ``decimate``
pair).

The clip is ffmpeg's ``testsrc2`` at ``--size`` (a DVD's 720x480 by default) and 23.976 frames a second, ``--seconds``
long, telecined by 3:2 pulldown to 29.97 interlaced and coded as MPEG-2 (a DVD's codec), written to a temporary
folder. The time to the film frame ``--first`` (default: the last but one) is timed ``--repeat`` times; prints one JSON
line with the best seconds and the film frames skipped per second.

    python scripts/ivtc_skip_speed.py [--size 720x480] [--seconds 60] [--first N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from classsr_cli.io.video import IVTC, VideoReader, ffmpeg_exe, probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="720x480")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--first", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    first = args.first if args.first is not None else round(args.seconds * 24000 / 1001) - 2
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "film.mpg"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                        f"testsrc2=size={args.size}:rate=24000/1001:duration={args.seconds}",
                        "-vf", "setfield=tff,telecine=first_field=top:pattern=23", "-c:v", "mpeg2video",
                        "-flags", "+ilme+ildct", "-q:v", "3", str(clip)], check=True)  # fmt: skip
        info = probe(clip)
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            with VideoReader(info, deinterlace=IVTC, first=first) as reader:
                index = next(iter(reader)).index
            best = min(best, time.perf_counter() - t)
            assert index == first, index
    record = {"size": args.size, "seconds": args.seconds, "first": first, "repeat": args.repeat,
              "reach_s": round(best, 3), "film_frames_per_s": round(first / best, 1)}  # fmt: skip
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
