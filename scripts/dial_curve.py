"""The quality dial's curve: PSNR-Y against wall time of the routed model at several ``--tolerance`` values,
with the heavy branch on the whole image as the reference, and the medium branch on the whole image (what a user
could run instead of the dial's low end; timed in turns with heavy in the first run). One bench run per tolerance (same machine, threads,
images), the heavy branch timed in turns with the routed model in each (the time ratio is that run's); JSON and
a PNG plot.

    python scripts/dial_curve.py SunHays80 --model weights/classsr_residual_x4.safetensors --threads 2 \\
        --tolerances 0.05 0.1 0.2 0.3 --json docs/results/dial_SunHays80_x4.json --plot docs/results/dial_SunHays80_x4.png \\
        --compare old.json:"previous model"

Tolerances are the model's unit (dB for budget routing, the default models; levels² for deficit routing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from report import emit  # scripts/

from classsr_cli import bench, zoo


def _label(point: dict, cfg) -> str:
    if point["tolerance"] is None:
        return (f"default (per patch, price {cfg.cell_price:.3g})" if cfg.cell_price else
                f"default (per patch {cfg.cell_tolerance:.3g})")
    return f"{point['tolerance']:g}" + (" (default)" if point["default"] else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="+", help="HR images, folders or set names (as classsr bench)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tolerances", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--compare", action="append", default=[], metavar="JSON[:LABEL]",
                    help="also draw an earlier curve from this script's JSON (PSNR as its loss against heavy)")
    args = ap.parse_args()
    loaded = zoo.load(args.model, args.scale, device=torch.device("cpu"), dtype=torch.float32)
    pairs = bench.load_pairs(bench.find_images(args.images), args.scale)
    base = bench.run_bench(loaded.net, pairs, methods=("bicubic", "heavy", "medium"), threads=args.threads,
                           repeat=args.repeat)
    heavy, medium = base.methods["heavy"], base.methods["medium"]
    medium_point = {"psnr_y": medium.psnr_y, "psnr_vs_heavy": medium.psnr_y - heavy.psnr_y,
                    "time_vs_heavy": medium.seconds / heavy.seconds, "flops_vs_heavy": medium.flops / heavy.flops}
    sys.stderr.write(f"medium branch, whole image: {medium_point['psnr_vs_heavy']:+.3f} dB, "
                     f"{medium_point['time_vs_heavy']:.2f}x time\n")
    points = []
    tols = [None, *args.tolerances]  # None: the model's calibrated default
    cfg = loaded.net.cfg
    # A budget model with a per-patch default decides per patch without --tolerance: that point has no dB value.
    default_tol = None if cfg.cell_tolerance > 0 or cfg.cell_price > 0 else cfg.tolerance
    for tol in tols:  # heavy and classsr timed in turns in every run (bench.run_bench): drift cancels in the ratio
        run = bench.run_bench(loaded.net, pairs, methods=("heavy", "classsr"), threads=args.threads,
                              repeat=args.repeat, tolerance=tol)
        r, h = run.methods["classsr"], run.methods["heavy"]
        points.append({
            "tolerance": default_tol if tol is None else tol, "default": tol is None,
            "psnr_y": r.psnr_y, "seconds": r.seconds, "heavy_seconds": h.seconds, "time_vs_heavy": r.seconds / h.seconds,
            "psnr_vs_heavy": r.psnr_y - heavy.psnr_y, "flops_vs_heavy": r.flops / heavy.flops, "patches": r.patches,
        })
        sys.stderr.write(f"tolerance {_label(points[-1], cfg)}: {points[-1]['psnr_vs_heavy']:+.3f} dB, "
                         f"{points[-1]['time_vs_heavy']:.2f}x time\n")
    out = {"model": str(loaded.path), "images": len(pairs), "threads": base.threads, "device": base.device_name,
           "torch": base.torch, "bicubic": base.methods["bicubic"].to_dict(), "heavy": heavy.to_dict(), "medium": medium.to_dict(),
           "medium_point": medium_point, "points": points}
    emit(out, args.json, echo=False)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        pts = sorted(points, key=lambda p: p["time_vs_heavy"])
        ax.plot([p["time_vs_heavy"] for p in pts], [p["psnr_y"] for p in pts], "o-", label="classsr (dial)")
        for p in pts:
            ax.annotate(_label(p, cfg), (p["time_vs_heavy"], p["psnr_y"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        for spec in args.compare:  # an earlier curve (a dial_curve.py JSON), shifted onto this run's heavy PSNR
            path, _, label = spec.partition(":")
            old = json.loads(Path(path).read_text())
            opts = sorted(old["points"], key=lambda p: p["time_vs_heavy"])
            ax.plot([p["time_vs_heavy"] for p in opts], [heavy.psnr_y + p["psnr_vs_heavy"] for p in opts], "x--",
                    color="gray", label=label or path)
        ax.plot([1.0], [heavy.psnr_y], "s", color="C3", label="heavy branch, whole image")
        ax.plot([medium_point["time_vs_heavy"]], [medium.psnr_y], "D", color="C2", label="medium branch, whole image")
        ax.axhline(base.methods["bicubic"].psnr_y, color="gray", ls=":", label="bicubic")
        ax.set_xlabel(f"wall time x heavy branch, {len(pairs)} images (CPU, {base.threads} threads)")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
    emit(out, None)  # the result on stdout last, after the plot
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
