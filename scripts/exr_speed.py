"""How long an OpenEXR output takes to write: classsr's own writer (``classsr_cli.io.exr.write``: ZIP chunks deflated
by ISA-L, or zlib, at each ``--levels``, on ``--workers`` threads) against the bundled ffmpeg's EXR encoder (ZIP,
zlib, one thread), for ``classsr_cli.io.exr.LEVEL``.

The picture is ``examples/lighthouse.jpg`` resized by Pillow's bicubic to the size of its ×4 upscale (4096x3072),
decoded by sRGB's curve into linear light and made one stop brighter (a third of it above 1.0, as in a scene-linear
render), standing for an output; written in half floats. Prints one JSON line a writer: the best of ``--repeat``
seconds, the file's size, and whether ffmpeg's decoder reads every value back as written.

    python scripts/exr_speed.py [--levels 0 1 2 3] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

from classsr_cli.io import exr
from classsr_cli.io.icc import srgb_decode
from classsr_cli.io.video import ffmpeg_exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", nargs="+", type=int, default=[0, 1, 2, 3])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "examples" / "lighthouse.jpg") as im:
        big = np.asarray(im.convert("RGB").resize((im.width * 4, im.height * 4), Image.Resampling.BICUBIC))
    light = (srgb_decode(big / 255.0) * 2.0).astype(np.float32)
    want = light.astype(np.float16).astype(np.float32)
    height, width = light.shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.exr"
        for level in args.levels:
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                with mock.patch.object(exr, "LEVEL", level), path.open("wb") as f:
                    exr.write(f, (light[i : i + 256] for i in range(0, height, 256)), width=width, height=height,
                              channels=3, half=True, workers=args.workers)  # fmt: skip
                best = min(best, time.perf_counter() - start)
            exact = bool(np.array_equal(exr.decode(ffmpeg_exe(), path), want))
            _emit({"writer": "classsr", "level": level, "workers": args.workers, "seconds": round(best, 3),
                   "bytes": path.stat().st_size, "read_back_exact": exact})
        planes = b"".join(np.ascontiguousarray(light[..., c]).tobytes() for c in (1, 2, 0))  # ffmpeg's G, B, R planes
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-s",
                            f"{width}x{height}", "-i", "-", "-frames:v", "1", "-c:v", "exr", "-format", "half",
                            "-compression", "zip16", str(path)], input=planes, check=True)  # fmt: skip
            best = min(best, time.perf_counter() - start)
        exact = bool(np.array_equal(exr.decode(ffmpeg_exe(), path), want))
        _emit({"writer": "ffmpeg exr encoder (zip16)", "seconds": round(best, 3), "bytes": path.stat().st_size,
               "read_back_exact": exact})


def _emit(record: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
