"""Does the H.264 QP read (``classsr_cli.io.video.h264_frame_qps``, which ``classsr video -m auto`` and its note use)
give the same figures every time? The clip of ``tests/test_video.py::test_h264_qp_reads_the_blocks_quantizer``
(a noisy 128x96 ramp, 10 frames, libx264 CRF 30 on one thread) is coded afresh and read ``--reads`` times, with
``--decoder-threads`` decoding threads (1, as shipped: ``video.QP_DECODE_THREADS``; 0, ffmpeg's default, as before
the seventy-third pass), while ``--load`` busy processes share the CPU (the flake showed under load). Prints one JSON
line: how many reads gave each mean, and each read that differed from the most common one, frame by frame.

    python scripts/qp_read_repeat.py --reads 300 --decoder-threads 0 --load 3   # 4 of 300 differed (73rd pass)
    python scripts/qp_read_repeat.py --reads 900 --decoder-threads 1 --load 3   # none differed

``--timed N``: instead, the seconds of N reads of the first 25 frames (``video.QP_FRAMES``) of a 1920x1080 clip
(ffmpeg's ``testsrc2``, libx264 CRF 23), on one decoding thread and on ffmpeg's default:

    python scripts/qp_read_repeat.py --timed 5
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from classsr_cli.degrade import add_noise
from classsr_cli.io import video


def clip(path: Path) -> Path:
    """The test's clip: a ramp with luminance noise of σ 4 (seeded by frame), 10 frames at 5 fps, CRF 30."""
    y, x = np.mgrid[0:96, 0:128]
    ramp = np.stack([40 + x, 60 + y, 200 - x // 2], axis=2).clip(0, 255).astype(np.uint8)
    raw = b"".join(add_noise(ramp, 4, 10 + i).tobytes() for i in range(10))
    subprocess.run([video.ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "128x96",
                    "-r", "5", "-i", "-", "-c:v", "libx264", "-crf", "30", "-threads", "1", "-pix_fmt", "yuv420p",
                    str(path)], input=raw, check=True)  # fmt: skip
    return path


def timed(reads: int) -> dict[str, list[float]]:
    """Seconds of each read of a 1080p clip's first frames, by decoding threads (1, 0)."""
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hd = Path(tmp) / "hd.mp4"
        subprocess.run([video.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25",
                        "-t", "2", "-c:v", "libx264", "-crf", "23", str(hd)], check=True)  # fmt: skip
        for threads in (1, 0):
            video.QP_DECODE_THREADS = threads
            for _ in range(reads):
                video._frame_qps.cache_clear()
                start = time.perf_counter()
                video.h264_frame_qps(hd, video.QP_FRAMES)
                seconds.setdefault(str(threads), []).append(round(time.perf_counter() - start, 3))
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--decoder-threads", type=int, default=video.QP_DECODE_THREADS)
    ap.add_argument("--load", type=int, default=0, help="busy processes beside the reads")
    ap.add_argument("--timed", type=int, default=0, metavar="N", help="time N reads of a 1080p clip instead")
    args = ap.parse_args()
    if args.timed:
        sys.stdout.write(json.dumps({"decoder_threads_seconds": timed(args.timed)}) + "\n")
        return
    video.QP_DECODE_THREADS = args.decoder_threads
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    reads: list[tuple[float, ...]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = clip(Path(tmp) / "coarse.mp4")
            for _ in range(args.reads):
                video._frame_qps.cache_clear()  # read again, not from the cache
                reads.append(tuple(round(q, 2) for q in video.h264_frame_qps(path)))
    finally:
        for p in busy:
            p.kill()
    means = collections.Counter(round(float(np.mean(r)), 2) if r else None for r in reads)
    usual = collections.Counter(reads).most_common(1)[0][0]
    sys.stdout.write(json.dumps({"reads": args.reads, "decoder_threads": args.decoder_threads, "load": args.load,
                                 "means": {str(k): v for k, v in means.items()},
                                 "differing": [{"read": i, "frames": list(r)} for i, r in enumerate(reads)
                                               if r != usual]}) + "\n")


if __name__ == "__main__":
    main()
