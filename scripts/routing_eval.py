"""Does routing follow difficulty, and does routed output keep the heavy branch's colour and borders?

Everyday photos outside the training and validation sets: scikit-image's sample photos (astronaut, coffee,
chelsea, rocket; shipped inside the package, a dev dependency; ``--skimage`` names others, e.g. the second set
camera,coins,moon,clock,text,page,grass,gravel,brick,stereo_motorcycle). Or pass image files/folders. ``--held-out``:
the 15 training photos that training holds out (5 % by a hash of the name, as ``scripts/heldout_curve.py`` picks
them), at their own size: where two classifiers can be compared without the validation sets or these photos.
``--grey``: each photo in black and white first (its BT.601 luma in three equal channels), e.g. ``--held-out
--grey``: does routing follow difficulty on black-and-white photos as on colour ones?

For each photo: HR mod-cropped, LR = bicubic ÷scale (classsr_cli.degrade, as in training and bench). The model
upscales it routed (the engine, default or --tolerance) and with its heavy branch on the whole image. Per
``step`` x ``step`` LR cell, heavy's gain over bicubic = MSE(bicubic) - MSE(heavy) on the cell's HR pixels.
Cells pooled over all photos are split in thirds by that gain; the script reports which share of each third
went to the cheapest class (branch 0: plain bicubic in the shipped models, or a learned light branch): as computed (``tiles.run``, after the planner has raised cells to a heavier branch
where one call on a band is cheaper than tiles) and as the classifier decided (``decided``); and the **ceiling**,
the share a perfect predictor would send there by the same rule: for a per-patch decision the cells where the light branch's
measured squared error is within the tolerance (levels²) of heavy's, for a priced one (the default models') the cells
whose measured luma errors make the light branch the cheapest at the price, for a frame budget (budget routing: the default models' default, or
``--tolerance`` dB) each photo's cheapest routing whose measured PSNR-Y loss against heavy is within the budget
(per-cell squared errors on Y, border = scale; costs as the budget rule's). A per-patch default with a frame cap (the
default models') is also read without its cap (``decided_without_cap``), and each photo records the loss the
classifier predicts for the uncapped classes and whether the cap fired (``cap``): the cap takes a frame whose
predicted loss passes it to the budget's routing at the cap, which only moves cells to dearer branches. For a priced
rule, ``lr_only``: the shares the same rule sends to the cheapest class with the heavy branch's output standing for
the HR (each cell's luma squared distance of the light and medium outputs from heavy's): what a predictor that sees
only the LR could reach through the branches themselves; and each routing's measured cost, means over the cells: the
luma squared error it adds to heavy's (``mean_extra_luma_error_levels2``, levels²) and its branches' compute as a
share of heavy's (``mean_branch_cost_vs_heavy``), and its PSNR-Y loss against heavy per photo from the cells' errors
(``routing_loss_db`` per photo, ``mean_routing_loss_db`` their mean), for the classifier's decisions (before the
planner raises any cell), the ceiling, ``lr_only`` and the decisions without the cap. Also per photo: PSNR-Y (border = scale) of bicubic, heavy and routed; the
outermost-row step (mean |row0 - row1| of the output's top and left edges, 8-bit) of routed vs heavy; and the
chroma (max - min of RGB) of routed on saturated HR pixels (HR chroma >= 96) as a share of heavy's.

    python scripts/routing_eval.py --model weights/classsr_x4.safetensors --threads 2 [--json out.json] [--export DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/
from routing_headroom import oracle  # scripts/: each photo's cheapest routing within a budget, measured

from classsr_cli import zoo
from classsr_cli.degrade import bicubic_resize, load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
from classsr_cli.errors import ClassSRError
from classsr_cli.metrics import psnr, rgb_to_y
from classsr_cli.models.classsr import DEFICIT_EPS, predicted_loss_db, priced_classes
from classsr_cli.models.residual import ResidualSR
from classsr_cli.train.data import _is_val

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
#: The second set of scikit-image photos (``--skimage`` with these names): flat, grainy and regular textures.
TEN_PHOTOS = ("camera", "coins", "moon", "clock", "text", "page", "grass", "gravel", "brick", "stereo_motorcycle")


def photos(paths: list[str], names: tuple[str, ...] = SKIMAGE_PHOTOS) -> list[tuple[str, np.ndarray]]:
    if paths:
        from classsr_cli.io.files import images_in

        out = []
        for p in map(Path, paths):
            for f in images_in(p) if p.is_dir() else [p]:
                out.append((f.name, load_rgb(f)))
        return out
    import skimage.data

    out = []
    for name in names:  # a grey photo as three equal channels; stereo_motorcycle's left view
        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img
        out.append((name, np.ascontiguousarray(np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3])))
    return out


def training_photos(which: str = "held", train: Path = Path("../shared/data/train"),
                    folders: tuple[str, ...] = ("T91", "BSD200"), val_fraction: float = 0.05) -> list[Path]:
    """The training photos that training holds out (``which = "held"``: ``val_fraction`` of them by a hash of the
    name, as the recipes' ``val_fraction`` picks them), the ones it trains on (``"trained"``) or all, sorted."""
    try:
        return sorted(p for d in folders for p in (train / d).iterdir()
                      if which == "all" or _is_val(p.name, val_fraction) == (which == "held"))
    except OSError as e:
        raise SystemExit(f"error: no training photos: {e}") from None


def bicubic(model: torch.nn.Module, x: torch.Tensor, lr: np.ndarray, s: int) -> np.ndarray:
    """Plain bicubic ×s of the LR image, uint8: the residual family's bicubic path (what a width-0 branch without a
    fitted base is; the issue's thirds are by heavy's gain over bicubic whatever the model's base), else
    :func:`classsr_cli.degrade.bicubic_resize` (``bench``'s bicubic)."""
    if isinstance(model.branches[2], ResidualSR):
        return to_u8(ResidualSR(width=0, scale=s)(x))
    return bicubic_resize(lr, lr.shape[0] * s, lr.shape[1] * s)


def to_u8(t: torch.Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def priced_on(deficits: np.ndarray, price: float, branch_costs: tuple[float, float, float]) -> np.ndarray:
    """The priced rule (:func:`~classsr_cli.models.classsr.priced_classes`) on per-cell deficits ``(N, 2)`` of the
    light and medium branches over heavy (levels², clipped at 0), as the classifier's scores would carry them."""
    d = np.maximum(np.asarray(deficits, dtype=np.float64), 0)
    scores = np.log10(DEFICIT_EPS + np.concatenate([d, np.zeros_like(d[:, :1])], 1))
    return priced_classes(torch.from_numpy(scores), price, branch_costs).numpy()


def routing_cost(errors: np.ndarray, classes: np.ndarray, costs: np.ndarray) -> tuple[float, float]:
    """A routing's measured cost over cells: the mean squared error its classes add to the heavy branch's
    (``errors`` ``(N, 3)``, each branch's mean squared error per cell) and the mean compute of its branches as a
    share of heavy's (``costs``)."""
    k = np.asarray(classes)
    return float(np.mean(errors[np.arange(len(k)), k] - errors[:, 2])), float(np.mean(costs[k]))


def routing_loss_db(errors: np.ndarray, classes: np.ndarray) -> float:
    """A photo's PSNR loss against the heavy branch when each cell takes its class's output: ``errors`` ``(N, 3)``
    each branch's summed squared error per cell (the photo's cells, border = scale), as PSNR-Y measures a photo."""
    k = np.asarray(classes)
    return float(10 * np.log10(errors[np.arange(len(k)), k].sum() / max(errors[:, 2].sum(), 1e-12)))


def measured_numerator_db(dist: np.ndarray, classes: np.ndarray, scores: torch.Tensor) -> float:
    """The frame loss :func:`predicted_loss_db` predicts, ``10*log10(1 + sum(d) / sum(e_heavy))``, with ``d``
    measured instead: each cell's mean luma squared distance of its class's output from heavy's (``dist`` ``(N,
    2)``: light, medium), what a run could measure without the HR by running heavy on the cells it routes cheaper;
    ``e_heavy`` still the classifier's (``scores`` ``(N, 3)``)."""
    measured = torch.log10(DEFICIT_EPS + torch.from_numpy(np.asarray(dist, dtype=np.float64)))
    return predicted_loss_db(torch.cat([measured, scores[:, 2:].double()], 1), torch.from_numpy(np.asarray(classes)))


def edge_step(img: np.ndarray) -> float:
    f = img.astype(np.float64)
    return float((np.abs(f[0] - f[1]).mean() + np.abs(f[:, 0] - f[:, 1]).mean()) / 2)


def chroma(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float64)
    return f.max(-1) - f.min(-1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", help="image files or folders (default: scikit-image's sample photos)")
    ap.add_argument("--skimage", default=",".join(SKIMAGE_PHOTOS),
                    help="scikit-image sample photos to use when no images are given, comma-separated")
    ap.add_argument("--held-out", action="store_true",
                    help="the held-out training photos (../shared/data/train, 5 %% by name) instead of IMAGES")
    ap.add_argument("--grey", action="store_true",
                    help="each photo as black and white first (BT.601 luma, full range, in three equal channels)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--price", type=float, default=None,
                    help="a budget model decides per patch at this price (levels², as heldout_curve.py's qP), "
                         "without its frame cap")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--export", type=Path, default=None, help="also save the photos as PNG here (for classsr bench)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        loaded = zoo.load(args.model, args.scale, device=torch.device("cpu"), dtype=torch.float32)
    except ClassSRError as e:
        raise SystemExit(f"error: {e}") from None
    model, s = loaded.net, loaded.model_scale
    if args.price is not None:
        if model.cfg.routing != "budget" or args.tolerance is not None:
            ap.error("--price needs a budget model and no --tolerance")
        model.cfg = replace(model.cfg, cell_price=args.price, cell_tolerance=0.0, frame_cap_db=0.0)
    # The ceiling's rule: per patch at ``cell_tol`` levels² or at ``price``, or a frame budget of ``frame_db`` dB.
    cell_tol = frame_db = price = None
    if model.cfg.routing == "deficit":
        cell_tol = model.cfg.tolerance if args.tolerance is None else args.tolerance
    elif model.cfg.routing == "budget":
        if args.tolerance is None and model.cfg.cell_price > 0:
            price = model.cfg.cell_price
        elif args.tolerance is None and model.cfg.cell_tolerance > 0:
            cell_tol = model.cfg.cell_tolerance
        else:
            frame_db = model.cfg.tolerance if args.tolerance is None else args.tolerance
    costs = np.asarray(model.branch_costs) / max(model.branch_costs)
    # A per-patch default with a frame cap: also what the rule decides without the cap, and the loss it predicts
    uncapped_cfg = (replace(model.cfg, frame_cap_db=0.0) if model.cfg.routing == "budget" and args.tolerance is None
                    and model.cfg.frame_cap_db > 0 and (model.cfg.cell_price > 0 or model.cfg.cell_tolerance > 0)
                    else None)
    gains, deficits, light, decided, uncapped, ideal, records = [], [], [], [], [], [], []
    lr_only, classes_decided, cell_errors = [], [], []  # the rule on heavy's output for the HR; per-cell classes, errors
    # each routing's classes, cell by cell over all photos (a list stays empty where the run has no such routing)
    routings = {"decided": classes_decided, "ceiling": ideal, "lr_only": lr_only, "decided_without_cap": uncapped}
    if args.held_out:
        if args.images:
            ap.error("give IMAGES or --held-out, not both")
        args.images = [str(p) for p in training_photos()]
    try:
        images = photos(args.images, tuple(args.skimage.split(",")))
    except (ClassSRError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    for name, img in images:
        if args.grey:
            luma = np.rint(img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
            img = np.ascontiguousarray(np.stack([luma] * 3, -1))
        if args.export:
            from PIL import Image

            args.export.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(args.export / f"{Path(name).stem}.png")
        hr, lr = make_pair(img, s)
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
        with torch.inference_mode():
            sr, route = upscale_tensor(model, x, tolerance=args.tolerance)
            heavy = model.branches[2](x)
            light_out = model.branches[0](x)
            bc = bicubic(model, x, lr, s)
            med = model.branches[1](x) if frame_db is not None or price is not None else None
            free = None  # the per-patch rule's classes without the cap, and the loss they are predicted to cost
            if uncapped_cfg is not None:
                capped_cfg, model.cfg = model.cfg, uncapped_cfg
                try:
                    scores = model.frame_scores(x, route.grid.step)
                    free = model.decide(scores.reshape(-1, 3)).view(scores.shape[:2])
                finally:
                    model.cfg = capped_cfg
                free_loss = predicted_loss_db(scores.reshape(-1, 3), free.reshape(-1))
        out, hv, lt = to_u8(sr), to_u8(heavy), to_u8(light_out)
        step = route.grid.step
        cls = route.classes.numpy()
        assert route.decided is not None
        raw = route.decided.numpy()  # what the classifier decided, before the planner raised cells
        rows, cols = cls.shape
        if med is not None:  # each branch's squared error on Y, border = scale (the oracle's measure)
            y_hr = rgb_to_y(hr)
            md = to_u8(med)
            ey = [(rgb_to_y(o) - y_hr) ** 2 for o in (lt, md, hv)]
            y_hv = rgb_to_y(hv)  # and each cheaper branch's squared difference from heavy's output: no HR in it
            dy = [(rgb_to_y(o) - y_hv) ** 2 for o in (lt, md)]
            for e in ey + dy:
                e[:s], e[-s:], e[:, :s], e[:, -s:] = 0, 0, 0, 0
        se, sd, px = [], [], []
        first = len(gains)  # this photo's first cell in the pooled lists
        for r in range(rows):
            for c in range(cols):
                ys, xs = slice(r * step * s, (r + 1) * step * s), slice(c * step * s, (c + 1) * step * s)
                h = hr[ys, xs].astype(np.float64)
                if h.size == 0:
                    continue
                gains.append(((bc[ys, xs] - h) ** 2).mean() - ((hv[ys, xs] - h) ** 2).mean())
                deficits.append(((lt[ys, xs] - h) ** 2).mean() - ((hv[ys, xs] - h) ** 2).mean())
                light.append(int(cls[r, c]) == 0)
                decided.append(int(raw[r, c]) == 0)
                classes_decided.append(int(raw[r, c]))
                if free is not None:
                    uncapped.append(int(free[r, c]))
                if med is not None:
                    se.append([e[ys, xs].sum() for e in ey])
                    sd.append([d[ys, xs].sum() for d in dy])
                    px.append(h.shape[0] * h.shape[1])  # the cell's HR pixels (fewer on the right and bottom)
        if se and price is not None:  # the priced rule on each cell's measured mean errors on Y
            e = np.asarray(se) / np.asarray(px, dtype=np.float64)[:, None]  # each cell's mean squared error
            ideal.extend(priced_on(e[:, :2] - e[:, 2:], price, model.branch_costs))
            # and with heavy's output for the HR: each cell's mean squared distance of light and medium from it
            lr_only.extend(priced_on(np.asarray(sd) / np.asarray(px, dtype=np.float64)[:, None], price,
                                     model.branch_costs))
        elif se:  # this photo's cheapest routing within the budget, on measured errors
            ideal.extend(oracle(np.asarray(se), costs, frame_db))
        cell_errors.extend(np.asarray(se) / np.asarray(px, dtype=np.float64)[:, None] if se else [])
        sat = chroma(hr) >= 96
        rec = {
            "image": name, "size": [int(img.shape[1]), int(img.shape[0])], "counts": list(route.counts),
            "psnr_y": {k: round(psnr(v, hr, s, y_channel=True), 3) for k, v in (("bicubic", bc), ("heavy", hv), ("classsr", out))},
            "edge_step": {"heavy": round(edge_step(hv), 2), "classsr": round(edge_step(out), 2)},
            "saturated_px": int(sat.sum()),
            "chroma_share": round(float(chroma(out)[sat].mean() / chroma(hv)[sat].mean()), 4) if sat.any() else None,
            "flops_saved_vs_whole": round(route.flops.saved_vs_whole, 4),
        }
        if se and len(ideal) == len(gains):  # each routing's PSNR-Y loss on this photo, from its cells' errors
            rec["routing_loss_db"] = {k: round(routing_loss_db(np.asarray(se), np.asarray(v[first:])), 4)
                                      for k, v in routings.items() if len(v) == len(gains)}
        if free is not None:  # the cap fires where the uncapped classes are predicted to lose more than it
            rec["cap"] = {"predicted_loss_db": round(free_loss, 3), "fired": bool((free != route.decided).any())}
            if sd:  # the same loss with its numerator measured without the HR: the cheaper outputs' distance from
                # heavy's, over the cells the uncapped rule sends cheaper (heavy's own error still predicted)
                rec["cap"]["measured_numerator_db"] = round(measured_numerator_db(
                    np.asarray(sd) / np.asarray(px, dtype=np.float64)[:, None], free.reshape(-1).numpy(),
                    scores.reshape(-1, 3)), 3)
        records.append(rec)
    g, li, dec = np.asarray(gains), np.asarray(light), np.asarray(decided)
    t1, t2 = np.quantile(g, [1 / 3, 2 / 3])
    easy, hard = g <= t1, g >= t2
    ceiling: dict | None = None  # the share a perfect predictor sends to the cheapest class by the same rule
    if cell_tol is not None:
        ideal_light = np.asarray(deficits) <= cell_tol  # the light branch within the tolerance of heavy
        ceiling = {"tolerance_levels2": round(float(cell_tol), 4)}
    elif price is not None:
        ideal_light = np.asarray(ideal) == 0
        ceiling = {"price_levels2": round(float(price), 4)}
    elif frame_db is not None:
        ideal_light = np.asarray(ideal) == 0
        ceiling = {"budget_db": frame_db}
    if ceiling is not None:
        ceiling["easiest_third_to_cheapest"] = round(float(ideal_light[easy].mean()), 4)
        ceiling["hardest_third_to_cheapest"] = round(float(ideal_light[hard].mean()), 4)
    # The priced rule where the heavy branch's output stands for the HR: what a predictor that sees only the LR
    # could reach through the branches themselves
    lr_rule = ({"easiest_third_to_cheapest": round(float((np.asarray(lr_only) == 0)[easy].mean()), 4),
                "hardest_third_to_cheapest": round(float((np.asarray(lr_only) == 0)[hard].mean()), 4)}
               if lr_only else None)
    # Each routing's measured cost: the luma squared error it adds to heavy's and its branches' compute as a share of
    # heavy's, means over the cells
    extra, cost = None, None
    if cell_errors and len(ideal) == len(g):
        measured = {k: routing_cost(np.asarray(cell_errors), np.asarray(v), costs)
                    for k, v in routings.items() if len(v) == len(g)}
        extra = {k: round(v[0], 3) for k, v in measured.items()}
        cost = {k: round(v[1], 4) for k, v in measured.items()}
    summary = {
        "model": str(loaded.path),
        "tolerance": args.tolerance if args.tolerance is not None else (
            f"per patch, price {args.price:g}, no frame cap" if args.price is not None else
            f"default (per patch, price {model.cfg.cell_price:g})" if model.cfg.cell_price else
            f"default (per patch {model.cfg.cell_tolerance:g})" if model.cfg.cell_tolerance else model.cfg.tolerance),
        "grey": args.grey,
        "cells": len(g),
        "easiest_third_to_cheapest": round(float(li[easy].mean()), 4),
        "hardest_third_to_cheapest": round(float(li[hard].mean()), 4),
        "decided": {"easiest_third_to_cheapest": round(float(dec[easy].mean()), 4),
                    "hardest_third_to_cheapest": round(float(dec[hard].mean()), 4)},
        "ceiling": ceiling,
        **({"lr_only": lr_rule} if lr_rule else {}),
        **({"mean_extra_luma_error_levels2": extra, "mean_branch_cost_vs_heavy": cost} if extra else {}),
        **({"mean_routing_loss_db": {k: round(float(np.mean([r["routing_loss_db"][k] for r in records])), 4)
                                     for k in records[0]["routing_loss_db"]}}
           if records and all("routing_loss_db" in r for r in records) else {}),
        **({"decided_without_cap": {
            "easiest_third_to_cheapest": round(float((np.asarray(uncapped) == 0)[easy].mean()), 4),
            "hardest_third_to_cheapest": round(float((np.asarray(uncapped) == 0)[hard].mean()), 4),
            "frame_cap_db": model.cfg.frame_cap_db}} if uncapped else {}),
        "easiest_third_max_gain_levels2": round(float(t1), 3),
        "mean_gain_over_bicubic_db": round(float(np.mean([r["psnr_y"]["classsr"] - r["psnr_y"]["bicubic"] for r in records])), 3),
        "mean_loss_vs_heavy_db": round(float(np.mean([r["psnr_y"]["heavy"] - r["psnr_y"]["classsr"] for r in records])), 3),
        "images": records,
    }
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
