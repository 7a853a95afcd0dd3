"""Routed model against its heavy branch on the whole image, for several models and tolerances, per set: one
``classsr bench`` run of the two methods each (timed in turns), one line per model and tolerance.

    python scripts/compare_routed.py SunHays80,B100 weights/classsr_residual_x4.safetensors \\
        runs/dense_budget_x4/classsr.safetensors runs/dense_budget_x4/classsr.safetensors@0.2

``PATH@T`` runs at tolerance ``T``; a bare path at the model's calibrated default.
"""

from __future__ import annotations

import argparse
import sys

import torch

from classsr_cli import bench
from classsr_cli.checkpoint import load_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", help="comma-separated set names or folders (as classsr bench)")
    ap.add_argument("models", nargs="+", help="checkpoint paths, each optionally @TOLERANCE")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.sets.split(","):
        pairs = bench.load_pairs(bench.find_images([name]), args.scale)
        for spec in args.models:
            path, _, tol = spec.partition("@")
            model = load_checkpoint(path).module.eval()
            r = bench.run_bench(model, pairs, methods=("heavy", "classsr"), threads=args.threads, repeat=args.repeat,
                                warmup=1, tolerance=float(tol) if tol else None)
            h, c = r.methods["heavy"], r.methods["classsr"]
            sys.stdout.write(f"{name:10s} {path} tol={tol or 'default':8s} dPSNR-Y {c.psnr_y - h.psnr_y:+.3f} "
                             f"FLOPs {c.flops / h.flops:.3f} time {c.seconds / h.seconds:.3f} "
                             f"(heavy {h.seconds:.2f} s) split {c.patches}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
