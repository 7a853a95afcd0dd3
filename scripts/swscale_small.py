"""Which picture sizes the bundled ffmpeg's swscale converts from 4:2:0 into 16-bit RGB wrongly, and whether the way
classsr takes instead (by 16-bit 4:4:4, :func:`classsr_cli.io.video.to_16bit`) gives the direct conversion's levels.

1. A constant colour (lavfi ``color``) in each YUV format, converted directly into rgb48le with classsr's flags: the
   sizes whose pixels are not all one colour (more than 2 levels apart, on the 8-bit scale) are listed, and the same
   by way of 4:4:4.
2. ``testsrc2`` at sizes the bug does not touch: the largest difference between the two ways.

    python scripts/swscale_small.py
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from classsr_cli.io.video import DECODE_FLAGS, ffmpeg_exe

FORMATS = ("yuv420p", "yuv420p10le", "yuv420p12le", "yuv422p10le", "yuv444p10le")
WIDTHS = (2, 7, 8, 16, 64, 333, 1920)
HEIGHTS = (*range(1, 41), 48, 72, 1080)
DIRECT = f"scale=flags={DECODE_FLAGS}"
BY_444 = f"scale=flags={DECODE_FLAGS},format=yuv444p16le,scale=flags={DECODE_FLAGS}"


def rgb48(source: str, width: int, height: int, fmt: str, chain: str) -> np.ndarray:
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"{source}:s={width}x{height}", "-frames:v", "1",
           "-vf", f"format={fmt},{chain},format=rgb48le", "-f", "rawvideo", "-"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=120).stdout
    return np.frombuffer(out, "<u2").reshape(height, width, 3).astype(float) / 257


def main() -> int:
    for name, chain in (("direct", DIRECT), ("by 4:4:4", BY_444)):
        wrong = [(fmt, w, h) for fmt in FORMATS for w in WIDTHS for h in HEIGHTS
                 if np.ptp(rgb48("color=c=0x3080c0", w, h, fmt, chain).reshape(-1, 3), axis=0).max() > 2]  # fmt: skip
        sizes = sorted({(w, h) for _, w, h in wrong})
        sys.stdout.write(f"{name}: {len(wrong)} of {len(FORMATS) * len(WIDTHS) * len(HEIGHTS)} conversions of a "
                         f"constant colour wrong; heights {sorted({h for _, h in sizes})}, formats "
                         f"{sorted({f for f, _, _ in wrong})}\n")  # fmt: skip
    diffs = [np.abs(rgb48("testsrc2=rate=25", w, h, fmt, DIRECT) - rgb48("testsrc2=rate=25", w, h, fmt, BY_444))
             for fmt in FORMATS for w in (64, 334, 1920) for h in (16, 40, 72, 1080)]  # fmt: skip
    samples = sum(d.size for d in diffs)
    sys.stdout.write(f"testsrc2 at heights 16-1080, widths 64-1920: the two ways differ by at most "
                     f"{max(d.max() for d in diffs):.2f} levels (8-bit scale), {sum(d.sum() for d in diffs) / samples:.5f} "
                     f"on average; {sum(int((d > 1).sum()) for d in diffs)} of {samples} samples by more than 1\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
