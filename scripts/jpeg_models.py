"""Models against compressed and noisy input: each model on each set with its LR clean, given noise of each
``--noise`` level and saved as JPEG at each quality, as `classsr bench SET --noise S --jpeg Q --model M` measures it (PSNR-Y and RGB against the HR, border = scale; FLOPs; seconds of
one timed pass), in one process so that every model sees the same pairs.

    PYTHONPATH=scripts python scripts/jpeg_models.py SunHays80 B100 --qualities 0 90 75 50 30 \
        --models classsr_residual_x4 classsr_residual_jpeg_x4 --threads 2 --json docs/results/fiftyfifth/jpeg_models.json

Quality 0 is no JPEG, noise 0 no noise (the default: ``--noise 0``). For noisy input, e.g. ``--noise 0 4 8 --qualities
0 75``. Prints one line per (set, quality, model) on stderr and the whole record as JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from report import emit

from classsr_cli import bench, zoo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="+", help="set names under ../shared/data/val, or folders")
    ap.add_argument("--qualities", type=int, nargs="+", default=[0, 90, 75, 50, 30], help="JPEG qualities; 0: clean")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0], help="noise levels (σ, levels); 0: none")
    ap.add_argument("--models", nargs="+", default=["classsr_residual_x4", "classsr_residual_jpeg_x4"])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--methods", default="bicubic,heavy,classsr")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = bench.parse_methods(args.methods)
    models = {m: zoo.load(m, args.scale).net.eval() for m in args.models}
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for name in args.sets:
        paths = bench.find_images([name])
        for sigma, q in [(n, q) for n in args.noise for q in args.qualities]:
            pairs = bench.load_pairs(paths, args.scale, jpeg=q or None, noise=sigma or None)
            for m, net in models.items():
                r = bench.run_bench(net, pairs, repeat=1, warmup=0, methods=methods, threads=args.threads,
                                    model_name=m, scale=args.scale)
                row = {"set": name, "images": len(pairs), "jpeg": q or None, "noise": sigma or None, "model": m,
                       "load_average": r.load_average,
                       "methods": {k: {"psnr_y": v.psnr_y, "psnr_rgb": v.psnr_rgb, "ssim_y": v.ssim_y, "flops": v.flops,
                                       "seconds": v.seconds} for k, v in r.methods.items()}}
                rows.append(row)
                shown = "  ".join(f"{k} {v['psnr_y']:.2f}" for k, v in row["methods"].items())
                sys.stderr.write(f"{name} σ{sigma:g} q{q or 'clean'} {m}: {shown}\n")
    emit({"started": started, "threads": args.threads, "scale": args.scale, "models":
          {m: str(zoo.resolve_model(m, args.scale)) for m in args.models}, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
