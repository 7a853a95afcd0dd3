"""Reading 16-bit PNG: ``read_image`` (the bundled ffmpeg decodes the pixels) against pypng (pure Python), timed in
turns (median), on 16-bit copies of the given images (8-bit values x 257) written two ways: by classsr (Up filter
on every row) and by ffmpeg's encoder with its per-row choice of filter (``-pred mixed``, as most tools write).
Checks that both readers give the same pixels.

    python scripts/png16_read.py examples/lighthouse.jpg [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from classsr_cli.io.image import Picture, _read_png16_pypng, read_image, write_image
from classsr_cli.io.video import ffmpeg_exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    report: dict = {"rounds": args.rounds, "files": []}
    with tempfile.TemporaryDirectory(prefix="png16_") as tmp:
        for src in args.inputs:
            pixels = read_image(src).pixels.astype(np.uint16) * 257
            ours, mixed = Path(tmp) / "classsr.png", Path(tmp) / "mixed.png"
            write_image(ours, Picture(pixels), overwrite=True)
            subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(ours), "-pred", "mixed", str(mixed)], check=True)
            for path in (ours, mixed):
                times: dict[str, list[float]] = {"read_image": [], "pypng": []}
                for i in range(args.rounds):
                    for name in list(times) if i % 2 == 0 else list(times)[::-1]:
                        t = time.perf_counter()
                        got = read_image(path).pixels if name == "read_image" else _read_png16_pypng(path)[0]
                        times[name].append(time.perf_counter() - t)
                        assert np.array_equal(got, pixels), (path, name)
                row = {"input": str(src), "written_by": path.stem, "size": list(pixels.shape),
                       **{f"{k}_s": round(statistics.median(v), 3) for k, v in times.items()}}
                report["files"].append(row)
                sys.stderr.write(f"{row}\n")
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
