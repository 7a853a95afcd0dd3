"""What a residual call costs beyond its pixels: the basis of ``engine.cells.CALL_PIXELS``.

For each residual branch of a model: nanoseconds per LR pixel of one 40x40 piece (a 28x28 cell with its halo of 6,
run as the engine runs tiles: :meth:`ResidualSR.residual_tile`) alone and of a canvas of 64 such pieces side by
side (one call, as ``engine.cells.run_cells`` lays them out), on the CPU; the difference, times the piece's
pixels, is the call's overhead, printed also in pixels of the heaviest branch at its canvas rate (what the tile
planner counts). The passes of the configurations take turns, and the median of ``--repeat`` rounds is reported.

    python scripts/tile_costs.py --model weights/classsr_residual_x4.safetensors --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.models.residual import ResidualSR


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="weights/classsr_residual_x4.safetensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--tile", type=int, default=40)
    ap.add_argument("--halo", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.model).module.eval()
    branches = [(k, b) for k, b in enumerate(model.branches) if isinstance(b, ResidualSR) and b.width > 0]
    t = args.tile
    one, many = torch.rand(1, 3, t, t), torch.rand(1, 3, t, args.batch * t)
    runs = {(k, n): (b, x) for k, b in branches for n, x in ((1, one), (args.batch, many))}
    times: dict[tuple[int, int], list[float]] = {key: [] for key in runs}
    with torch.inference_mode():
        for b, x in runs.values():
            b.residual_tile(x, args.halo)
        for _ in range(args.repeat):
            for key, (b, x) in runs.items():
                pieces = x.shape[3] // t
                reps = max(1, args.batch // pieces)
                s = time.perf_counter()
                for _ in range(reps):
                    b.residual_tile(x, args.halo)
                times[key].append((time.perf_counter() - s) / (reps * pieces * t * t))
    heavy = statistics.median(times[(branches[-1][0], args.batch)])
    out = [f"{args.model}, {args.threads} thread(s), {t}x{t} pieces (halo {args.halo}), median of {args.repeat} rounds",
           "| branch | width | ns/px alone | ns/px on a canvas | call overhead (ms) | in heavy pixels |", "|---|--:|--:|--:|--:|--:|"]
    for k, b in branches:
        alone, batched = statistics.median(times[(k, 1)]), statistics.median(times[(k, args.batch)])
        over = (alone - batched) * t * t
        out.append(f"| {k} | {b.width} | {alone * 1e9:.0f} | {batched * 1e9:.0f} | {over * 1e3:.2f} | {over / heavy:.0f} |")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
