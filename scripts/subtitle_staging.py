"""What staging a whole file's text subtitles for mov_text costs (``classsr video`` into .mp4/.mov: its cues made
one at a time, :func:`classsr_cli.io.video._cut_text_subtitles`), which reads the source once more before the run.

The source is ``--seconds`` of 1080p H.264 (x264 ultrafast at ``--bitrate``) looped by stream copy to about ``--mb``
megabytes, in Matroska with an SRT track of a cue a second, two of them overlapping at each minute; written to a
temporary folder (so read from the page cache, as a file just copied is; a cold disk reads at its own speed). The
staging is timed ``--repeat`` times; prints one JSON line with the best seconds, the file's size and the rate.

    python scripts/subtitle_staging.py [--mb 1000] [--seconds 10] [--bitrate 40M] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from classsr_cli.io.video import _cut_text_subtitles, ffmpeg_exe, probe


def srt_time(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--bitrate", default="40M")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ff = [ffmpeg_exe(), "-hide_banner", "-v", "error", "-y"]
    with tempfile.TemporaryDirectory() as tmp:
        clip, big = Path(tmp, "clip.mkv"), Path(tmp, "big.mkv")
        subprocess.run([*ff, "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-t", str(args.seconds),
                        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", args.bitrate, str(clip)], check=True)  # fmt: skip
        loops = max(1, math.ceil(args.mb * 1e6 / clip.stat().st_size))
        length = loops * args.seconds
        cues = []
        for k in range(int(length)):
            end = k + (1.5 if k % 60 == 0 else 0.9)  # the minute's cue overlaps the next one
            cues.append(f"{len(cues) + 1}\n{srt_time(k)} --> {srt_time(end)}\nline {k}\n")
        srt = Path(tmp, "subs.srt")
        srt.write_text("\n".join(cues), encoding="utf-8")
        subprocess.run([*ff, "-stream_loop", str(loops - 1), "-i", str(clip), "-i", str(srt), "-map", "0:v",
                        "-map", "1", "-c", "copy", str(big)], check=True)  # fmt: skip
        info = probe(big)
        subs = info.subtitles
        placeholder = Path(tmp, "placeholder.srt")
        placeholder.write_text("1\n00:00:00,000 --> 00:00:00,001\n.\n", encoding="utf-8")
        best = math.inf
        for _ in range(args.repeat):
            into = Path(tmp, "staged.mkv")
            t = time.perf_counter()
            _cut_text_subtitles(info, subs, into, big, placeholder, one_at_a_time=True)
            best = min(best, time.perf_counter() - t)
            into.unlink()
        size = big.stat().st_size
    record = {"mb": round(size / 1e6, 1), "seconds_of_video": length, "cues": len(cues), "repeat": args.repeat,
              "staging_s": round(best, 3), "mb_per_s": round(size / 1e6 / best, 1)}  # fmt: skip
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
