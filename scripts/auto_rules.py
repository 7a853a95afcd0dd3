"""Rules for ``--model auto`` on noisy LR: each shipped model's routed PSNR-Y on every picture of a set at each noise
level (``classsr bench SET --noise S``), a few noise features of each LR (:func:`classsr_cli.metrics.noise_level` at
shares of the flattest blocks), and what a rule on them gives against the default: the notes' rule (the noisy model
from 4 levels at share 0.02), the best pick per picture (an oracle), and a rule given by its parameters, or the best
of a grid of them with ``--search`` (on training photos only: never tune on the validation sets). Prints one JSON line
per rule: its mean gain over the default at each noise level, and their mean (each level weighted alike).

    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --search
    PYTHONPATH=scripts python scripts/auto_rules.py SunHays80 --rule 0.005 2.5 3.5 1.5
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable

import numpy as np
import torch

Row = dict[str, float]


def main() -> int:
    from classsr_cli import bench, zoo
    from classsr_cli.metrics import noise_level

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", help="a set name under ../shared/data/val, or a folder")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0, 2, 3, 4, 5, 6])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=float, nargs=4, metavar=("SHARE", "JPEG_FROM", "NOISY_FROM", "TEXTURE"),
                    help="the JPEG model from JPEG_FROM levels (at SHARE) where the estimate at share 0.1 is at most "
                    "TEXTURE times it, the noisy one from NOISY_FROM")
    ap.add_argument("--search", action="store_true", help="the best rule of a grid (training photos only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = {"default": zoo.default_model_name(args.scale), "jpeg": zoo.jpeg_model_name(args.scale),
             "noisy": zoo.noisy_model_name(args.scale)}  # fmt: skip
    nets = {k: zoo.load(n, args.scale).net.eval() for k, n in names.items() if n}
    paths = bench.find_images([args.set])
    rows: list[Row] = []
    for sigma in args.sigmas:
        pairs = bench.load_pairs(paths, args.scale, noise=sigma or None)
        scores = {k: [row["psnr_y"] for row in bench.run_bench(
            net, pairs, repeat=1, warmup=0, methods=("classsr",), threads=args.threads, model_name=names[k],
            scale=args.scale).methods["classsr"].per_image] for k, net in nets.items()}  # fmt: skip
        for i, pair in enumerate(pairs):
            rows.append({"sigma": sigma, **{f"nl{share}": noise_level(pair.lr, share=share) for share in (0.005, 0.02, 0.1)},
                         **{k: v[i] for k, v in scores.items()}})  # fmt: skip
    rules: dict[str, Callable[[Row], str]] = {
        "notes": lambda r: "noisy" if r["nl0.02"] >= 4 else "default",
        "oracle": lambda r: max(nets, key=lambda k: r[k]),
    }
    if args.rule:
        rules[f"rule {args.rule}"] = _rule(*args.rule)
    if args.search:
        grid = itertools.product((0.005, 0.02), (2.0, 2.5, 3.0, 3.5), (3.5, 4.0, 4.5, 5.0), (1.2, 1.5, 99.0))
        found = max(grid, key=lambda p: _mean(_gains(rows, _rule(*p))))
        rules[f"best of the grid {list(found)}"] = _rule(*found)
    for label, rule in rules.items():
        gains = _gains(rows, rule)
        sys.stdout.write(json.dumps({"set": args.set, "scale": args.scale, "images": len(paths), "rule": label,
                                     "gain_db": {f"{s:g}": round(g, 3) for s, g in gains.items()},
                                     "mean_db": round(_mean(gains), 3)}) + "\n")
    return 0


def _rule(share: float, jpeg_from: float, noisy_from: float, texture: float) -> Callable[[Row], str]:
    def pick(r: Row) -> str:
        level = r[f"nl{share}"]
        if level >= noisy_from:
            return "noisy"
        if level >= jpeg_from and r["nl0.1"] <= texture * max(level, 1e-6):
            return "jpeg"
        return "default"

    return pick


def _gains(rows: list[Row], rule: Callable[[Row], str]) -> dict[float, float]:
    out = {}
    for sigma in sorted({r["sigma"] for r in rows}):
        out[sigma] = float(np.mean([r[rule(r)] - r["default"] for r in rows if r["sigma"] == sigma]))
    return out


def _mean(gains: dict[float, float]) -> float:
    return float(np.mean(list(gains.values())))


if __name__ == "__main__":
    raise SystemExit(main())
