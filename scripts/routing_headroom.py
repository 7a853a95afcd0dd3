"""Where a routed model's savings go: the classifier's routing against an oracle's, and against what runs.

For each image of a set (HR mod-cropped, LR by bicubic ÷scale as in ``classsr bench``), every branch runs on the
whole LR image; each ``step`` x ``step`` LR cell gets each branch's squared error on Y (BT.601, border = scale)
and on RGB. Reported, for the model's deficit classifier at a tolerance (default: its calibrated one):

* ``predicted``: the classifier's classes, each cell taking its branch's whole-image pixels: the PSNR-Y loss
  against heavy (mean over images), the split and the **ideal residual cost**, the share of the heavy branch's
  residual FLOPs those classes need with no halo, no tile and no classifier (what the engine's real FLOPs
  are compared with);
* ``true deficits``: the same rule on each cell's measured deficit (a perfect deficit predictor);
* ``oracle budget``: per image, the cheapest classes whose measured loss stays within a PSNR-Y budget (0.05 and
  0.2 dB): the headroom of these branches;
* Spearman's rank correlation of the predicted and measured deficits of light and medium, and (``signals``) of
  the measured medium deficit with cheap per-cell signals a router could use instead: the LR cell's standard
  deviation, and the energy of the medium branch's own residual (its output minus bicubic, computed anyway
  where medium runs), to compare with the classifier's ``spearman.medium``: whether a cascade that decides heavy
  after medium could rank cells better;
* ``frame_budget`` (budget models): the classes of ``--tolerance-db`` spent per image, and the terms of its
  rule, predicted and measured: the summed error increase of the cells that take light and medium, and the heavy
  branch's own error that sets the budget (levels², per-cell means summed). Where the measured loss exceeds the
  predicted one, this says which term the classifier misjudges.

A measurement of what limits routing, not a tuning tool: nothing here feeds back into training.

    python scripts/routing_headroom.py SunHays80 --model weights/classsr_residual_x4.safetensors --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np
import torch

from classsr_cli import bench, zoo
from classsr_cli.engine.cells import plan_cells
from classsr_cli.metrics import Y_WEIGHTS
from classsr_cli.models.classsr import DEFICIT_EPS, ClassSR, budget_classes, deficit_classes


def _y(t: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> Y in 8-bit levels (16..235)."""
    w = torch.tensor(Y_WEIGHTS, dtype=t.dtype).view(3, 1, 1)
    return 16 + (t * w).sum(0)


def _cell_sums(e: torch.Tensor, rows: int, cols: int, side: int) -> np.ndarray:
    """Sum of ``e`` ``(..., H, W)`` over each ``side`` x ``side`` HR cell (zero-padded), ``(rows * cols,)``."""
    pad = torch.zeros(*e.shape[:-2], rows * side, cols * side, dtype=e.dtype)
    pad[..., : e.shape[-2], : e.shape[-1]] = e
    return pad.reshape(-1, rows, side, cols, side).sum((0, 2, 4)).flatten().numpy()


def _rank(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="stable")
    r = np.empty(len(a))
    r[order] = np.arange(len(a))
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_rank(a), _rank(b))[0, 1])


def oracle(se: np.ndarray, costs: np.ndarray, budget_db: float) -> np.ndarray:
    """Per image: each cell takes ``argmin_k cost_k * lam + deficit_k`` with the smallest ``lam`` whose total
    deficit stays within ``budget_db`` of heavy's squared error (measured, Y)."""
    d = se - se[:, 2:3]
    budget = (10 ** (budget_db / 10) - 1) * se[:, 2].sum()
    best = np.full(len(se), 2)
    for lam in np.geomspace(1e-2, 1e9, 400):
        ch = np.argmin(d + lam * costs[None, :], axis=1)
        if d[np.arange(len(d)), ch].sum() <= budget:
            best = ch
    return best


def _budget_terms(model: ClassSR, scores: np.ndarray, mse: np.ndarray, which: np.ndarray, images: np.ndarray,
                  db: float, summary: Callable[[np.ndarray], dict]) -> dict:
    """The frame budget of ``db`` spent per image, with its rule's terms predicted and measured (levels²)."""
    ch = np.concatenate([budget_classes(torch.from_numpy(scores[which == i]), db, model.branch_costs).numpy()
                         for i in images])
    pred = np.maximum(10.0 ** scores.astype(np.float64) - DEFICIT_EPS, 0.0)
    deficits = mse - mse[:, 2:3]
    terms: dict = {}
    for k, name in ((0, "light"), (1, "medium")):
        on = ch == k
        terms[name] = {"cells": int(on.sum()), "predicted": round(float(pred[on, k].sum()), 1),
                       "measured": round(float(deficits[on, k].sum()), 1)}
    terms["heavy_error"] = {"cells": len(ch), "predicted": round(float(pred[:, 2].sum()), 1),
                            "measured": round(float(mse[:, 2].sum()), 1)}

    def loss(d: np.ndarray, e: np.ndarray) -> float:  # mean over images of the rule's loss, RGB levels²
        return float(np.mean([10 * np.log10(1 + d[which == i].sum() / e[which == i].sum()) for i in images]))

    spent_pred = np.where(ch == 0, pred[:, 0], np.where(ch == 1, pred[:, 1], 0.0))
    spent_meas = np.where(ch == 0, deficits[:, 0], np.where(ch == 1, deficits[:, 1], 0.0))
    return {"tolerance_db": db, **summary(ch), "rule_loss_predicted_db": round(loss(spent_pred, pred[:, 2]), 4),
            "rule_loss_measured_db": round(loss(spent_meas, mse[:, 2]), 4), "terms": terms}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", help="a validation set name or folder (as classsr bench)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--tolerance-db", type=float, default=0.05, help="the frame budget to break down (budget models)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model, args.scale).net.eval()
    # a budget model whose default decides per patch at a tolerance, or any budget model with --tolerance (levels²)
    per_patch = model.cfg.routing == "budget" and (model.cfg.cell_tolerance > 0 or args.tolerance is not None)
    if model.cfg.routing != "deficit" and not per_patch:
        raise SystemExit("routing_headroom.py needs a deficit-routing model, or a budget model with a per-patch "
                         "tolerance (its default, or --tolerance in levels²)")
    s, step, patch = model.cfg.scale, 28, model.cfg.patch
    default = model.cfg.cell_tolerance if per_patch else model.cfg.tolerance
    tol = default if args.tolerance is None else args.tolerance  # levels², the per-patch rule
    costs = np.asarray(model.branch_costs) / model.branch_costs[2]
    pairs = bench.load_pairs(bench.find_images([args.set]), s)
    pred, true, sey, img, res_e, lr_std = [], [], [], [], [], []
    with torch.inference_mode():
        for i, p in enumerate(pairs):
            assert p.hr is not None
            x = torch.from_numpy(p.lr).permute(2, 0, 1)[None].float() / 255
            hr = torch.from_numpy(p.hr).permute(2, 0, 1).float() / 255
            plan = plan_cells(x.shape[2], x.shape[3], step=step, patch=patch, halo=0)
            pred.append(model.frame_scores(x, step).reshape(-1, 3).numpy())
            ones = torch.ones(hr.shape[1:])
            n = _cell_sums(ones[None], plan.rows, plan.cols, step * s)
            mse, ey, outs = [], [], []
            for b in model.branches:
                o = (b(x)[0].clamp(0, 1) * 255).round() / 255
                outs.append(o)
                mse.append(_cell_sums(((o - hr) * 255) ** 2, plan.rows, plan.cols, step * s) / (3 * n))
                e = (_y(o) - _y(hr)) ** 2
                e[:s], e[-s:], e[:, :s], e[:, -s:] = 0, 0, 0, 0
                ey.append(_cell_sums(e[None], plan.rows, plan.cols, step * s))
            true.append(np.stack(mse, 1))
            res_e.append(_cell_sums(((outs[1] - outs[0]) * 255) ** 2, plan.rows, plan.cols, step * s) / (3 * n))
            lr_ones = torch.ones(x.shape[2:])
            m_lr = _cell_sums(lr_ones[None], plan.rows, plan.cols, step)
            mean = _cell_sums(x[0] * 255, plan.rows, plan.cols, step) / (3 * m_lr)
            sq = _cell_sums((x[0] * 255) ** 2, plan.rows, plan.cols, step) / (3 * m_lr)
            lr_std.append(np.sqrt(np.maximum(sq - mean**2, 0)))
            sey.append(np.stack(ey, 1))
            img.append(np.full(plan.rows * plan.cols, i))
    scores, mse_all, se_all, which = (np.concatenate(a) for a in (pred, true, sey, img))
    images = np.unique(which)

    def summary(ch: np.ndarray) -> dict:
        loss = [10 * np.log10(se_all[which == i][np.arange((which == i).sum()), ch[which == i]].sum()
                              / se_all[which == i, 2].sum()) for i in images]
        split = np.bincount(ch, minlength=3) / len(ch)
        return {"loss_db": round(float(np.mean(loss)), 4), "split": [round(float(v), 3) for v in split],
                "ideal_residual_cost": round(float(costs[ch].mean()), 3)}

    deficits = mse_all - mse_all[:, 2:3]
    routed = deficit_classes(torch.from_numpy(scores), tol).numpy()
    measured = np.where(deficits[:, 0] <= tol, 0, np.where(deficits[:, 1] <= tol, 1, 2))
    out = {
        "set": args.set, "scale": s, "tolerance": tol, "images": len(images), "cells": len(which),
        "predicted": summary(routed),
        "true_deficits": summary(measured),
        "oracle_budget": {f"{b} dB": summary(np.concatenate([oracle(se_all[which == i], costs, b) for i in images]))
                          for b in (0.05, 0.2)},
        "spearman": {name: round(spearman(np.log10(DEFICIT_EPS + np.maximum(deficits[:, k], 0)), scores[:, k]), 3)
                     for k, name in ((0, "light"), (1, "medium"))},
        "signals": {name: round(spearman(np.log10(DEFICIT_EPS + np.maximum(deficits[:, 1], 0)), v), 3)
                    for name, v in (("lr_std", np.concatenate(lr_std)),
                                    ("medium_residual_energy", np.concatenate(res_e)))},
    }
    if model.cfg.routing == "budget":
        out["frame_budget"] = _budget_terms(model, scores, mse_all, which, images, args.tolerance_db, summary)
    text = json.dumps(out, indent=1)
    sys.stdout.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
