"""Could a rule on the shipped ×4 model send the easiest third of cells to bicubic at the default's quality?

A "light allowance" on top of the price: a cell goes to the light class (bicubic) where its light deficit (the
light branch's increase of luma squared error over heavy, levels²) is at most ``TL``, whatever the price; the
other cells take medium or heavy by the price rule at ``P`` (``priced_classes`` between those two). Each
(``TL``, ``P``) is scored twice on the same cells: with the measured deficits (a perfect predictor) and with the
classifier's predictions (what a default could do). Per cell (``step`` x ``step`` LR, as ``routing_eval.py``):
each branch's squared error on Y (border = scale) from the branch run on the whole image, heavy's gain over
bicubic on RGB (the easiest / hardest third, pooled over the photos), and the classifier's three outputs on
the cell's window (``classify_frame``'s grid). Per rule: the share of the easiest and hardest thirds sent to
bicubic, the mean PSNR-Y loss against heavy over the photos (routing from whole-image branch outputs, no tile
seams) and the FLOPs share (branch costs as the budget rule counts them). Also the ceiling of any rule at a
per-photo loss of at most ``--budget`` dB: every other cell heavy, the easiest third's cells sent to bicubic by
increasing deficit while the photo stays within the budget.

    python scripts/light_allowance.py --json out.json                       # scikit-image's four photos
    python scripts/light_allowance.py --skimage camera,coins,moon,clock,text,page,grass,gravel,brick,stereo_motorcycle
    python scripts/light_allowance.py --train ../shared/data/train          # the training photos, ÷4 LR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/
from routing_eval import SKIMAGE_PHOTOS, bicubic, photos, to_u8  # scripts/

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.metrics import rgb_to_y
from classsr_cli.models.classsr import DEFICIT_EPS


def cells_of(model: torch.nn.Module, images: list[tuple[str, np.ndarray]], s: int, step: int) -> dict[str, np.ndarray]:
    photo, gain, se, px, scores = [], [], [], [], []
    for k, (_, img) in enumerate(images):
        hr, lr = make_pair(img, s)
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
        with torch.inference_mode():
            outs = [to_u8(b(x)) for b in model.branches]
            h, w = x.shape[2:]
            rows, cols = -(-h // step), -(-w // step)
            sc = model.frame_scores(x, step).reshape(-1, 3).numpy()
        bc, hv = bicubic(model, x, lr, s), outs[2]
        y = rgb_to_y(hr)
        ey = [(rgb_to_y(o) - y) ** 2 for o in outs]
        for e in ey:
            e[:s], e[-s:], e[:, :s], e[:, -s:] = 0, 0, 0, 0
        for i in range(rows * cols):
            ys = slice(i // cols * step * s, (i // cols + 1) * step * s)
            xs = slice(i % cols * step * s, (i % cols + 1) * step * s)
            hh = hr[ys, xs].astype(np.float64)
            photo.append(k)
            gain.append(((bc[ys, xs] - hh) ** 2).mean() - ((hv[ys, xs] - hh) ** 2).mean())
            se.append([e[ys, xs].sum() for e in ey])
            px.append(hh.shape[0] * hh.shape[1])
            scores.append(sc[i])
    return {"photo": np.asarray(photo), "gain": np.asarray(gain), "se": np.asarray(se), "px": np.asarray(px, float),
            "scores": np.asarray(scores, dtype=np.float64)}


def classes(d: np.ndarray, light: float, price: float, costs: np.ndarray) -> np.ndarray:
    """``d`` (N, 2) light and medium deficits (levels²): bicubic within ``light``, else the priced rule over all
    three (bicubic stays where the price itself prefers it)."""
    total = np.stack([d[:, 0] + price * costs[0], d[:, 1] + price * costs[1], np.full(len(d), price * costs[2])], 1)
    return np.where(d[:, 0] <= light, 0, total.argmin(1))


def score(c: dict[str, np.ndarray], cls: np.ndarray, easy: np.ndarray, hard: np.ndarray, costs: np.ndarray) -> dict:
    n = int(c["photo"].max()) + 1
    heavy = np.bincount(c["photo"], c["se"][:, 2], minlength=n)
    routed = np.bincount(c["photo"], c["se"][np.arange(len(cls)), cls], minlength=n)
    loss = 10 * np.log10(routed / heavy)
    return {"easiest_third_to_cheapest": round(float((cls[easy] == 0).mean()), 4),
            "hardest_third_to_cheapest": round(float((cls[hard] == 0).mean()), 4),
            "mean_loss_db": round(float(loss.mean()), 4), "max_loss_db": round(float(loss.max()), 4),
            "flops_share": round(float(costs[cls].mean()), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skimage", default=",".join(SKIMAGE_PHOTOS))
    ap.add_argument("--train", type=Path, default=None, help="the training photos' folder (T91 and BSD200 inside)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--allowances", type=float, nargs="+", default=[0, 2, 3, 4, 5, 6, 8])
    ap.add_argument("--prices", type=float, nargs="+", default=[0.5, 1, 2, 3.831186849557285])
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = zoo.load(args.model, 4, device=torch.device("cpu"), dtype=torch.float32)
    model = loaded.net
    if args.train:
        files = sorted(p for sub in ("T91", "BSD200") for p in (args.train / sub).iterdir())
        images = [(p.name, load_rgb(p)) for p in files]
    else:
        images = photos([], tuple(args.skimage.split(",")))
    c = cells_of(model, images, model.cfg.scale, 28)
    costs = np.asarray(model.branch_costs) / max(model.branch_costs)
    t1, t2 = np.quantile(c["gain"], [1 / 3, 2 / 3])
    easy, hard = c["gain"] <= t1, c["gain"] >= t2
    measured = np.maximum(c["se"][:, :2] - c["se"][:, 2:], 0) / c["px"][:, None]
    predicted = np.maximum(np.power(10.0, c["scores"][:, :2]) - DEFICIT_EPS, 0)
    rules = []
    for light in args.allowances:
        for price in args.prices:
            rules.append({"allowance_levels2": light, "price_levels2": round(price, 4),
                          "perfect": score(c, classes(measured, light, price, costs), easy, hard, costs),
                          "classifier": score(c, classes(predicted, light, price, costs), easy, hard, costs)})
    ceiling = np.full(len(easy), 2)  # every other cell heavy; easy cells to bicubic while each photo keeps the budget
    for k in range(int(c["photo"].max()) + 1):
        spend = (10 ** (args.budget / 10) - 1) * c["se"][c["photo"] == k, 2].sum()
        idx = np.flatnonzero((c["photo"] == k) & easy)
        extra = c["se"][idx, 0] - c["se"][idx, 2]
        for i, e in zip(idx[np.argsort(extra)], np.sort(extra), strict=True):
            if max(e, 0) > spend:
                break
            ceiling[i], spend = 0, spend - max(e, 0)
    summary = {"model": str(loaded.path), "photos": [name for name, _ in images], "cells": len(easy),
               "easiest_third_max_gain_levels2": round(float(t1), 3),
               "ceiling_per_photo_budget": {"budget_db": args.budget, **score(c, ceiling, easy, hard, costs)},
               "rules": rules}
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
