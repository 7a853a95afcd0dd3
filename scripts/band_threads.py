"""Would a frame run faster as bands on threads of one core each than as one call on all threads? The routed
model scales from one thread to two less well than the heavy branch (docs/results.md, "Threads"), so this
splits the execution of each frame's plan (classified and planned whole, as the engine does) into ``--workers``
bands of cell rows, runs each band's :func:`run_cells` on its own Python thread with torch at one thread, and
times that against the engine at ``--workers`` threads and the heavy branch on the whole frame.

    python scripts/band_threads.py SunHays80 --mode split     # then --mode whole, --mode heavy: one process each

One mode a process (torch's thread count is the process's: switching it per frame makes oneDNN rebuild its
kernels). Prints a JSON line: the mode, the best total over ``--rounds`` (seconds), and for ``split`` whether
its output equals the engine's to the bit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from classsr_cli import bench, zoo
from classsr_cli.engine import cells, upscale_tensor
from classsr_cli.engine.bands import FrameRun


def _cut(rects: tuple, a: int, b: int) -> tuple:
    """The tiles of cell rows ``a .. b-1``, in the band's own rows (a tile across a bound is cut in two)."""
    out = []
    for k, r, c, h, w in rects:
        lo, hi = max(r, a), min(r + h, b)
        if lo < hi:
            out.append((k, lo - a, c, hi - lo, w))
    return tuple(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set")
    ap.add_argument("--mode", choices=("split", "whole", "heavy"), required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-x", "--scale", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1 if args.mode == "split" else args.workers)
    model = zoo.load(None, args.scale, device=torch.device("cpu"), dtype=torch.float32).net
    branches = list(model.branches)
    pairs = bench.load_pairs(bench.find_images([args.set]), args.scale)
    lrs = [torch.from_numpy(p.lr).permute(2, 0, 1)[None].float().div(255) for p in pairs]
    pool = ThreadPoolExecutor(args.workers)

    def split(x: torch.Tensor) -> torch.Tensor:
        plan = FrameRun(model, x).cells
        assert plan is not None
        padded = cells.pad_frame(x, plan)
        band = cells.band_input(padded, plan, 0, plan.padded_rows)
        cls = cells.classify_cells(model, band, plan)
        costs = cells.unit_flops(model, plan)["residual_px"]
        lo, hi = cells.band_rows(plan, 0, plan.height, cells.base_reach(plan, branches[-1]))
        tiles = cells.plan_tiles(cls, plan, costs, (hi - lo) * plan.width)
        if plan.rows < 2 or (not tiles.rects and tiles.base > 0):  # one call either way
            return cells.run_cells(branches, band, plan, tiles, plan.height, lr=x, y0=0)[0]
        bounds = [round(i * plan.rows / args.workers) for i in range(args.workers + 1)]
        jobs = []
        for a, b in itertools.pairwise(bounds):
            if a == b:
                continue
            part = cells.TilePlan(tiles.run[a:b], _cut(tiles.rects, a, b), tiles.cost, tiles.base)
            y0 = a * plan.step
            jobs.append((cells.band_input(padded, plan, a, b), part, min(b * plan.step, plan.height) - y0, y0))
        outs = list(pool.map(lambda j: cells.run_cells(branches, j[0], plan, j[1], j[2], lr=x, y0=j[3])[0], jobs))
        return torch.cat(outs, 2)

    run = {"split": split, "whole": lambda x: upscale_tensor(model, x)[0], "heavy": branches[2]}[args.mode]
    same = None
    with torch.inference_mode():
        if args.mode == "split":
            same = all(torch.equal(split(x), upscale_tensor(model, x)[0]) for x in lrs)
        for x in lrs:
            run(x)
        best = float("inf")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for x in lrs:
                run(x)
            best = min(best, time.perf_counter() - t0)
    sys.stdout.write(json.dumps({"set": args.set, "mode": args.mode, "workers": args.workers,
                                 "torch_threads": torch.get_num_threads(), "seconds": round(best, 4),
                                 "same_bits": same}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
