"""Rules for ``--model auto`` on noisy LR: each shipped model's routed PSNR-Y on every picture of a set at each noise
level (``classsr bench SET --noise S``), a few noise features of each LR (:func:`classsr_cli.metrics.noise_level` at
shares of the flattest blocks), and what a rule on them gives against the default: the notes' rule (the noisy model
from 4 levels at share 0.02), the best pick per picture (an oracle), and a rule given by its parameters, or the best
of a grid of them with ``--search`` (on training photos only: never tune on the validation sets). A rule is five
numbers: the noisy model from NOISY_FROM levels at the share NOISY_SHARE, else the JPEG model from JPEG_FROM levels
at JPEG_SHARE where the estimate at share 0.1 is at most TEXTURE times it (texture, not noise, raises that one),
else the default. Prints one JSON line per rule: its mean gain over the default at each noise level, and their mean
(each level weighted alike). ``--rows`` keeps the measured rows in a file and reads them back on the next run.

    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --search
    PYTHONPATH=scripts python scripts/auto_rules.py SunHays80 --rule 0.02 4 0.005 2.5 1.5
    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --crf 23 --sigmas 0 2 4 6 8 \
        --notes-from 1 --rows rows_crf23.jsonl   # and 18, 28; then, on the three together:
    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --notes-from 1 --search \
        --noisy-grid 1 1.5 2 2.5 3 3.5 4 5 99 --jpeg-grid 0 0.5 1 1.5 2 99 --rows rows_crf18.jsonl rows_crf23.jsonl ...
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

Row = dict[str, float]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", help="a set name under ../shared/data/val, or a folder")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0, 2, 3, 4, 5, 6])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=float, nargs=5, action="append", default=[],
                    metavar=("NOISY_SHARE", "NOISY_FROM", "JPEG_SHARE", "JPEG_FROM", "TEXTURE"),
                    help="a rule to score (repeatable): the noisy model from NOISY_FROM levels at NOISY_SHARE, else the "
                    "JPEG model from JPEG_FROM at JPEG_SHARE where the estimate at share 0.1 is at most TEXTURE times it")
    ap.add_argument("--search", action="store_true", help="the best rule of a grid (training photos only)")
    ap.add_argument("--keep-noisy", action="store_true", help="search only the JPEG model's part; the noisy model's "
                    "as the notes' (from 4 levels at share 0.02)")
    ap.add_argument("--rows", nargs="+", default=[], help="a JSON Lines file of the measured rows: read if it exists, "
                    "else written; several existing ones are read together (each noise level then averages over them)")
    ap.add_argument("--crf", type=int, help="each LR (after the noise) as the first frame of an H.264 clip at this CRF, "
                    "decoded as classsr video decodes it (scripts/noise_level.py's h264_roundtrip)")
    ap.add_argument("--notes-from", type=float, default=4.0, help="the notes' noisy-model threshold (share 0.02): 4 "
                    "for pictures, 1 for frames of a codec that smooths noise (pipeline.NOISE_NOTE_VIDEO_FROM)")
    ap.add_argument("--noisy-grid", type=float, nargs="+", default=[3.0, 3.5, 4.0, 4.5, 5.0],
                    help="the noisy model's thresholds --search tries")
    ap.add_argument("--jpeg-grid", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0, 3.5, 99.0],
                    help="the JPEG model's thresholds --search tries (99: never)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.rows and all(os.path.exists(path) for path in args.rows):
        rows = []
        for path in args.rows:
            with open(path) as f:
                rows += [json.loads(line) for line in f]
    else:
        if len(args.rows) > 1:
            raise SystemExit("--rows: several files are read only when they all exist")
        rows = _measure(args)
        if args.rows:
            with open(args.rows[0], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
    models = [k for k in ("default", "jpeg", "noisy") if k in rows[0]]
    rules: dict[str, Callable[[Row], str]] = {
        "notes": _rule(0.02, args.notes_from, 0.02, 99.0, 0.0),
        "oracle": lambda r: max(models, key=lambda k: r[k]),
    }
    for rule in args.rule:
        rules[f"rule {rule}"] = _rule(*rule)
    if args.search:
        noisy = [(0.02, args.notes_from)] if args.keep_noisy else itertools.product((0.005, 0.02), args.noisy_grid)
        grid = itertools.product(noisy, (0.005, 0.02), args.jpeg_grid, (1.2, 1.5, 2.0, 99.0))
        found = max(([*n, *rest] for n, *rest in grid), key=lambda p: _mean(_gains(rows, _rule(*p))))
        rules[f"best of the grid {found}"] = _rule(*found)
    images = sum(1 for r in rows if r["sigma"] == rows[0]["sigma"])
    for label, rule in rules.items():
        gains = _gains(rows, rule)
        sys.stdout.write(json.dumps({"set": args.set, "scale": args.scale, "images": images, "rule": label,
                                     "gain_db": {f"{s:g}": round(g, 3) for s, g in gains.items()},
                                     "picked": _picked(rows, rule),
                                     "mean_db": round(_mean(gains), 3)}) + "\n")
    return 0


def _measure(args: argparse.Namespace) -> list[Row]:
    """Each model's routed PSNR-Y and the noise features of every picture at each noise level."""
    from classsr_cli import bench, zoo
    from classsr_cli.metrics import noise_levels

    names = {"default": zoo.default_model_name(args.scale), "jpeg": zoo.jpeg_model_name(args.scale),
             "noisy": zoo.noisy_model_name(args.scale)}  # fmt: skip
    nets = {k: zoo.load(n, args.scale).net.eval() for k, n in names.items() if n}
    paths = bench.find_images([args.set])
    rows: list[Row] = []
    for sigma in args.sigmas:
        pairs = bench.load_pairs(paths, args.scale, noise=sigma or None)
        if args.crf is not None:
            from noise_level import h264_roundtrip  # scripts/

            frames = [h264_roundtrip(p.lr, args.crf) for p in pairs]
            pairs = [replace(p, lr=lr, hr=p.hr[: lr.shape[0] * args.scale, : lr.shape[1] * args.scale])
                     for p, lr in zip(pairs, frames, strict=True)]  # fmt: skip
        scores = {k: [row["psnr_y"] for row in bench.run_bench(
            net, pairs, repeat=1, warmup=0, methods=("classsr",), threads=args.threads, model_name=names[k],
            scale=args.scale).methods["classsr"].per_image] for k, net in nets.items()}  # fmt: skip
        for i, pair in enumerate(pairs):
            levels = noise_levels(pair.lr, shares := (0.005, 0.02, 0.1))
            rows.append({"sigma": sigma, **{f"nl{share}": level for share, level in zip(shares, levels, strict=True)},
                         **{k: v[i] for k, v in scores.items()}})  # fmt: skip
    return rows


def _rule(noisy_share: float, noisy_from: float, jpeg_share: float, jpeg_from: float,
          texture: float) -> Callable[[Row], str]:
    def pick(r: Row) -> str:
        if r[f"nl{noisy_share:g}"] >= noisy_from and "noisy" in r:
            return "noisy"
        level = r[f"nl{jpeg_share:g}"]
        if level >= jpeg_from and r["nl0.1"] <= texture * max(level, 1e-6) and "jpeg" in r:
            return "jpeg"
        return "default"

    return pick


def _gains(rows: list[Row], rule: Callable[[Row], str]) -> dict[float, float]:
    out = {}
    for sigma in sorted({r["sigma"] for r in rows}):
        out[sigma] = float(np.mean([r[rule(r)] - r["default"] for r in rows if r["sigma"] == sigma]))
    return out


def _picked(rows: list[Row], rule: Callable[[Row], str]) -> dict[str, dict[str, float]]:
    """The share of pictures each model runs on, at each noise level."""
    out: dict[str, dict[str, float]] = {}
    for sigma in sorted({r["sigma"] for r in rows}):
        picks = [rule(r) for r in rows if r["sigma"] == sigma]
        out[f"{sigma:g}"] = {k: round(picks.count(k) / len(picks), 3) for k in sorted(set(picks))}
    return out


def _mean(gains: dict[float, float]) -> float:
    return float(np.mean(list(gains.values())))


if __name__ == "__main__":
    raise SystemExit(main())
