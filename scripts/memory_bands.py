"""Large frames whole or in bands: the default model's cell engine on frames made of photos tiled N x N (or the
photos as given), iterated by ``FrameRun`` whole, in bands of a few cell rows, and in the bands
``BAND_BYTES`` picks (``band_bytes``), each band dropped once computed; timed in turns (median), with each
setting's MSE against the heavy branch on the whole frame (8-bit levels²) and its FLOPs.

    python scripts/memory_bands.py ../shared/data/train/BSD200 [--tile 2] [--frames 2] [-x 4] [--rows 4 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from classsr_cli import zoo
from classsr_cli.engine.bands import FrameRun
from classsr_cli.engine.defaults import BAND_BYTES


def frames(folder: Path, tile: int, count: int) -> list[torch.Tensor]:
    """``count`` frames of ``tile`` x ``tile`` landscape photos of the most common size in ``folder``, in name order."""
    photos = [Image.open(p).convert("RGB") for p in sorted(folder.iterdir()) if p.suffix.lower() in (".png", ".jpg")]
    size = max({im.size for im in photos}, key=lambda s: sum(im.size == s for im in photos))
    photos = [im for im in photos if im.size == size]
    out = []
    for k in range(count):
        canvas = Image.new("RGB", (size[0] * tile, size[1] * tile))
        for i in range(tile * tile):
            canvas.paste(photos[(k * tile * tile + i) % len(photos)], ((i % tile) * size[0], (i // tile) * size[1]))
        out.append(torch.from_numpy(np.array(canvas)).permute(2, 0, 1)[None].float().div(255))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--tile", type=int, default=2)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--rows", type=int, nargs="*", default=[4, 8], help="cell rows per band to try")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(None, args.scale, device="cpu", dtype=torch.float32).net
    lrs = frames(args.folder, args.tile, args.frames)
    settings: dict[str, dict] = {"whole": {}, **{f"rows{r}": {"band_rows": r} for r in args.rows},
                                 "band_bytes": {"band_bytes": BAND_BYTES}}

    def run(kw: dict, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        fr = FrameRun(model, x, **kw)
        rows = [band.rows.clamp(0, 1).mul(255).round() for band in fr]
        return torch.cat(rows, 2), fr.result.flops.used

    report: dict = {"folder": str(args.folder), "tile": args.tile, "frames": [list(x.shape[2:]) for x in lrs],
                    "scale": args.scale, "threads": args.threads, "rounds": args.rounds, "settings": {}}
    with torch.inference_mode():
        heavy = [model.branches[2](x).clamp(0, 1).mul(255).round() for x in lrs]
        for name, kw in settings.items():
            outs = [run(kw, x) for x in lrs]
            report["settings"][name] = {
                "mse_vs_heavy": [round(float(((o - h) ** 2).mean()), 3) for (o, _), h in zip(outs, heavy, strict=True)],
                "flops": [f for _, f in outs], "seconds": []}
        for i in range(args.rounds + 1):
            names = list(settings)[i % len(settings):] + list(settings)[: i % len(settings)]
            for name in names:
                t = time.perf_counter()
                for x in lrs:
                    for _ in FrameRun(model, x, **settings[name]):
                        pass
                if i:  # the first round warms up
                    report["settings"][name]["seconds"].append(round(time.perf_counter() - t, 3))
    for row in report["settings"].values():
        row["median_s"] = round(statistics.median(row["seconds"]), 3)
    sys.stderr.write(" ".join(f"{k} {v['median_s']}" for k, v in report["settings"].items()) + "\n")
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
