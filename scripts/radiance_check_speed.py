"""What counting a Radiance picture's rows costs (``classsr_cli.io.radiance.cut_short``, run on every Radiance picture
and sequence frame before decoding): ``examples/lighthouse.jpg`` in linear light one stop brighter, at 1x, 2x and 4x
its size (nearest), smooth and with noise of 1 % (more literal runs, fewer repeated ones), RGBE run-length coded by the
bundled ffmpeg. Prints one JSON line each: the size, the bytes, the median of ``--repeat`` timings (ms) and whether the
whole picture and the picture less its last byte are told apart.

    python scripts/radiance_check_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.io import radiance
from classsr_cli.io.icc import srgb_decode
from classsr_cli.io.video import ffmpeg_exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "examples" / "lighthouse.jpg") as im:
        light = (srgb_decode(np.asarray(im.convert("RGB")) / 255.0) * 2.0).astype(np.float32)
    rng = np.random.default_rng(0)
    for times in (1, 2, 4):
        big = np.repeat(np.repeat(light, times, axis=0), times, axis=1)
        for kind, picture in (("smooth", big), ("noisy", big * (1 + 0.01 * rng.standard_normal(big.shape, np.float32)))):
            data = radiance.encode(ffmpeg_exe(), np.ascontiguousarray(np.maximum(picture, 0)[..., [1, 2, 0]].transpose(2, 0, 1)))
            head = radiance.header(data)
            pixels = data[head.data :]
            took = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                whole = radiance.cut_short(pixels, head.width, head.height)
                took.append(time.perf_counter() - start)
            line = {"size": [head.width, head.height], "kind": kind, "bytes": len(pixels),
                    "ms": round(1000 * statistics.median(took), 1), "whole": whole,
                    "cut": radiance.cut_short(pixels[:-1], head.width, head.height), "load_average": os.getloadavg()[0]}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
