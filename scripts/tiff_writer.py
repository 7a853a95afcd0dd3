"""How fast classsr writes TIFF: each input upscaled by the default model, its output (8-bit, and a 16-bit copy:
values x 257) written by the writers classsr used before (Pillow's ``tiff_deflate`` at 8 bits, tifffile's
zlib at its default level at 16) and by today's (``io.image._tiff_writer``: deflate at level 1, horizontal
predictor, strips of 64 rows on several threads), timed in turns (median). Seconds and megabytes.

    python scripts/tiff_writer.py examples/lighthouse.jpg [-x 4] [--threads 2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from classsr_cli import zoo
from classsr_cli.io.image import Meta, _tiff_writer, read_image
from classsr_cli.pipeline import Upscaler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    up = Upscaler(zoo.load(None, args.scale, device="cpu", dtype=torch.float32).net)
    report: dict = {"scale": args.scale, "threads": args.threads, "rounds": args.rounds, "files": []}
    with tempfile.TemporaryDirectory(prefix="tiff_writer_") as tmp:
        out = Path(tmp) / "out.tif"
        for src in args.inputs:
            px8 = up.upscale_array(read_image(src).pixels).pixels
            for bits, px in ((8, px8), (16, px8.astype(np.uint16) * 257)):
                ways: dict[str, Callable[[], None]] = {"now": lambda px=px: _tiff_writer(out, px, None, Meta())}
                if bits == 8:
                    ways["before"] = lambda px=px: Image.fromarray(px).save(out, compression="tiff_deflate")
                else:
                    ways["before"] = lambda px=px: tifffile.imwrite(out, px, photometric="rgb", compression="zlib")
                times: dict[str, list[float]] = {k: [] for k in ways}
                sizes: dict[str, int] = {}
                for i in range(args.rounds):
                    for name in list(ways) if i % 2 == 0 else list(ways)[::-1]:
                        t = time.perf_counter()
                        ways[name]()
                        times[name].append(time.perf_counter() - t)
                        sizes[name] = out.stat().st_size
                        assert np.array_equal(tifffile.imread(out), px), name
                row = {"input": str(src), "bits": bits, "size": list(px.shape),
                       **{f"{k}_s": round(statistics.median(v), 3) for k, v in times.items()},
                       **{f"{k}_mb": round(v / 1e6, 2) for k, v in sizes.items()}}
                report["files"].append(row)
                sys.stderr.write(f"{row}\n")
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
