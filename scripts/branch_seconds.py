"""Each branch's residual in seconds against its FLOPs: what the tile planner's price (FLOPs per LR pixel,
:func:`classsr_cli.engine.cells.unit_flops`) leaves out. Every branch of a residual-family model runs its residual
alone (no bicubic, no ``pixel_shuffle``) on random LR frames of a few sizes, in turns, 12 times each (the first
2 dropped); prints the median milliseconds and both ratios to the heavy branch, as JSON lines.

    python scripts/branch_seconds.py weights/classsr_residual_x4.safetensors runs/lumalight8_x4/classsr.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from classsr_cli import zoo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["80x120", "192x256", "321x481"], help="LR frames, HxW")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for path in args.models:
        branches = list(zoo.load(path, args.scale).net.eval().branches)
        for size in args.sizes:
            h, w = (int(v) for v in size.split("x"))
            x = torch.rand(1, 3, h, w)
            times: dict[int, list[float]] = {k: [] for k, b in enumerate(branches) if b.width > 0}
            with torch.inference_mode():
                for _ in range(12):
                    for k in times:
                        t = time.perf_counter()
                        branches[k].residual(x)
                        times[k].append(time.perf_counter() - t)
            ms = {k: statistics.median(v[2:]) * 1e3 for k, v in times.items()}
            flops = {k: branches[k].tile_flops(h, w) for k in times}
            top = len(branches) - 1
            sys.stdout.write(json.dumps({"model": path, "lr": [h, w], "threads": args.threads,
                              "ms": {k: round(v, 3) for k, v in ms.items()},
                              "time_vs_heavy": {k: round(v / ms[top], 3) for k, v in ms.items()},
                              "flops_vs_heavy": {k: round(v / flops[top], 3) for k, v in flops.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
