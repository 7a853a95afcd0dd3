"""How far the classifier's scores are from the errors they predict, on each photo set, and whether two cheap
corrections fitted on the training photos would bring them closer.

The ×4 default's classifier predicts, per cell, ``log10(DEFICIT_EPS + x)`` of the light and medium branches' luma
error increase over the heavy branch and of heavy's own error (8-bit levels² per pixel). Its decisions and its frame
cap stand on those three numbers. This script compares them, cell by cell (``calibrated_ceiling.py``'s cells: 28 x 28
LR, border = scale), with the measured ones on:

- the calibration images, every training photo and its downscales as the recipe makes them (``calibration``: the
  photos the classifier trained on; ``calibration_held``: the held-out photos' images);
- the held-out training photos at their own size, scikit-image's four and ten (outside the training and validation
  sets).

For each set and each column: the mean absolute error (L1, log10) and the mean signed error (the bias: positive
where the classifier predicts more than was measured).

**Corrections**, each fitted by least absolute deviations on the calibration images of the photos the classifier
trained on (never the held-out photos or the validation sets), then measured on every set:

- ``affine``: each column from the three scores and a constant;
- ``frame``: the same plus the frame's mean and standard deviation of each score, so that a frame whose cells are
  easier than their windows say can be moved as a whole.

**Routing.** The classifier's rule without the cap, on the scores as shipped and on each correction's, calibrated
as the recipe calibrates (``calibrated_ceiling.py``: the largest price on the recipe's grid whose routing of every
calibration image loses at most ``--tolerance-db`` of mean PSNR-Y against heavy; ``--engine``: that loss measured
through the engine, as the recipe measures it), then the shares of the easiest and hardest thirds of the four's, the
ten's and the held-out photos' cells decided light at that price.

**The cap's estimate.** For each image the loss the classifier predicts for its uncapped decisions at the model's
price (``predicted_loss_db``, what the frame cap weighs) against the loss those decisions measure (the cells'
yardstick): the median of their ratio where the measured loss is above 0.01 dB, and the frames where each passes the
cap. Per photo for the small sets.

    python scripts/score_calibration.py --threads 2 [--engine] [--model M] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from calibrated_ceiling import (  # scripts/
    Cells,
    calibrate,
    calibration_args,
    calibration_cells,
    cell_loss,
    engine_loss,
    photo_sets,
    priced_model,
    shares,
)
from report import emit  # scripts/
from routing_eval import routing_loss_db, training_photos

from classsr_cli.models.classsr import ClassSR, predicted_loss_db, priced_classes

COLUMNS = ("light_deficit", "medium_deficit", "heavy_error")
Features = Callable[[np.ndarray], np.ndarray]


def affine(scores: np.ndarray) -> np.ndarray:
    """A frame's ``(N, 3)`` scores and a constant, ``(N, 4)``."""
    return np.concatenate([scores, np.ones((len(scores), 1))], 1)


def frame(scores: np.ndarray) -> np.ndarray:
    """:func:`affine` plus the frame's mean and standard deviation of each score, the same on all its cells,
    ``(N, 10)``."""
    n = len(scores)
    stats = np.concatenate([scores.mean(0), scores.std(0)])[None].repeat(n, 0)
    return np.concatenate([scores, stats, np.ones((n, 1))], 1)


CORRECTIONS: dict[str, Features] = {"affine": affine, "frame": frame}


def fit_lad(x: np.ndarray, t: np.ndarray, iters: int = 500) -> np.ndarray:
    """Weights ``(F, 3)`` with ``x @ w`` close to ``t`` ``(N, 3)`` in mean absolute error (a smoothed one,
    ``sqrt(r² + 1e-6)``, by L-BFGS from the identity on the first three features: the scores as they are)."""
    xt, tt = torch.from_numpy(x).double(), torch.from_numpy(t).double()
    w = torch.zeros(x.shape[1], t.shape[1], dtype=torch.float64)
    w[: t.shape[1], : t.shape[1]] = torch.eye(t.shape[1], dtype=torch.float64)
    w.requires_grad_(True)
    opt = torch.optim.LBFGS([w], max_iter=iters, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        opt.zero_grad()
        v = torch.sqrt((xt @ w - tt) ** 2 + 1e-6).mean()
        v.backward()
        return v

    opt.step(loss)
    return w.detach().numpy()


def errors(pred: np.ndarray, target: np.ndarray) -> dict:
    """Per column of ``(N, 3)``: the mean absolute error and the mean signed error of ``pred`` (log10)."""
    return {"cells": len(target),
            "l1": {k: round(float(v), 4) for k, v in zip(COLUMNS, np.abs(pred - target).mean(0), strict=True)},
            "bias": {k: round(float(v), 4) for k, v in zip(COLUMNS, (pred - target).mean(0), strict=True)}}


def cap_estimate(model: ClassSR, cs: list[Cells]) -> tuple[np.ndarray, np.ndarray]:
    """Each image's predicted and measured PSNR-Y loss against heavy (dB) of the classifier's decisions at the
    model's price without the cap."""
    pred, meas = [], []
    for c in cs:
        k = priced_classes(c.scores, model.cfg.cell_price, model.branch_costs)
        pred.append(predicted_loss_db(c.scores, k))
        meas.append(routing_loss_db(c.errors, k.numpy()))
    return np.asarray(pred), np.asarray(meas)


def cap_summary(pred: np.ndarray, meas: np.ndarray, cap_db: float) -> dict:
    """What :func:`cap_estimate`'s losses say of the cap: their means, the median ratio predicted / measured where
    the measured loss is above 0.01 dB, and the frames past the cap by each and by both."""
    some = meas > 0.01
    return {"images": len(pred), "mean_predicted_db": round(float(pred.mean()), 4),
            "mean_measured_db": round(float(meas.mean()), 4),
            "median_ratio_predicted_to_measured": round(float(np.median(pred[some] / meas[some])), 3) if some.any()
            else None,
            "past_cap_predicted": int((pred > cap_db).sum()), "past_cap_measured": int((meas > cap_db).sum()),
            "past_cap_both": int(((pred > cap_db) & (meas > cap_db)).sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    calibration_args(ap)
    ap.add_argument("--limit", type=int, default=0, help="the first N training photos only (a test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    model = priced_model(args.model, args.threads)
    t0, rng = time.perf_counter(), np.random.default_rng(0)
    held = {p.name for p in training_photos("held", args.train)}
    calib = calibration_cells(model, training_photos("all", args.train)[: args.limit or None], args.factors, rng,
                              engine=args.engine)
    trained_on = [p.name not in held for p, _ in calib]
    photos = photo_sets(model, args.train, rng)
    cap, costs = model.cfg.frame_cap_db, model.branch_costs
    loss_of = (lambda c, k: engine_loss(model, c, k)) if args.engine else cell_loss

    def report(calib_cells: list[Cells], photo_cells: dict[str, list[Cells]]) -> tuple[dict, dict[str, list[Cells]]]:
        """The scores' errors on every set, and the classifier's rule (without the cap) on them, calibrated on the
        calibration images as the recipe calibrates and applied to the photo sets at that price; and the sets."""
        sets = {"calibration": [c for c, t in zip(calib_cells, trained_on, strict=True) if t],
                "calibration_held": [c for c, t in zip(calib_cells, trained_on, strict=True) if not t], **photo_cells}
        out = {name: errors(np.concatenate([c.scores.double().numpy() for c in cs]),
                            np.concatenate([c.measured_scores(0.0).numpy() for c in cs]))
               for name, cs in sets.items() if cs}
        price, loss = calibrate(calib_cells, "classifier", args.tolerance_db, cap, costs, loss_of)
        out["routing"] = {"calibrated_price": round(price, 3), "calibration_loss_db": round(loss, 4),
                          **{name: shares(cs, "classifier", price, cap, costs) for name, cs in photo_cells.items()}}
        return out, sets

    shipped_calib = [c for _, c in calib]
    shipped_photos = {name: [c for _, c in named] for name, named in photos.items()}
    out, sets = report(shipped_calib, shipped_photos)
    results: dict = {"as_shipped": out}
    fit_on = sets["calibration"]
    for name, features in CORRECTIONS.items():
        w = fit_lad(np.concatenate([features(c.scores.double().numpy()) for c in fit_on]),
                    np.concatenate([c.measured_scores(0.0).numpy() for c in fit_on]))

        def corrected(c: Cells, features: Features = features, w: np.ndarray = w) -> Cells:
            return replace(c, scores=torch.from_numpy(features(c.scores.double().numpy()) @ w))

        results[name] = report([corrected(c) for c in shipped_calib],
                               {n: [corrected(c) for c in cs] for n, cs in shipped_photos.items()})[0]
    results["cap"] = {}
    for name, cs in sets.items():
        if not cs:
            continue
        pred, meas = cap_estimate(model, cs)
        results["cap"][name] = cap_summary(pred, meas, cap)
        if name in photos:
            results["cap"][name]["photos"] = {n: {"predicted_db": round(float(p), 3), "measured_db": round(float(m), 3)}
                                              for (n, _), p, m in zip(photos[name], pred, meas, strict=True)}
    emit({"model": args.model or "default x4", "price": round(model.cfg.cell_price, 3), "frame_cap_db": cap,
          "calibration_images": len(calib), "seconds": round(time.perf_counter() - t0, 1), **results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
