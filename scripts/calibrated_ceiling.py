"""What a perfect predictor would route once calibrated as the recipe calibrates: is the routing target's gap the
classifier's, or the branches'?

``routing_eval.py``'s ceiling applies the shipped price to measured errors. But the price itself is calibrated: the
recipe takes the largest price at which the default, routing the 1,297 training images (every training photo and
its downscales by every training factor, never the validation sets), loses at most ``tolerance_db`` of mean PSNR-Y
against the heavy branch. A perfect predictor would calibrate to a price of its own. This script calibrates these
rules on the same images and the same yardstick, each photo's PSNR-Y loss from its cells' luma errors (border =
scale, each cell taking its class's output, as decided: no planner; ``--engine``: as the recipe measures it), and
then applies each at its calibrated price to the photos outside (scikit-image's four and ten) and the held-out
training photos:

- ``classifier``: the model's priced rule on its classifier's scores, without the frame cap;
- ``classifier_capped``: with the model's frame cap, as the default decides;
- ``oracle``: the priced rule on each cell's measured luma errors (a perfect predictor of the deficits);
- ``oracle_capped``: that, where the photo's measured loss passes the cap, replaced by the cheapest routing within
  the cap on the measured errors (what the cap does with perfect predictions);
- ``lr_only``: the priced rule on each cell's luma squared distance of the light and medium outputs from the heavy
  branch's, as ``routing_eval.py``'s ``lr_only``: a predictor that sees only the LR, through the branches themselves
  (without the cap, which would need heavy's own error);
- with ``--noise SIGMA``, ``noisy{SIGMA}`` and ``noisy{SIGMA}_capped``: the model's rule (without and with its cap)
  on the measured errors as scores (``log10(DEFICIT_EPS + x)`` of each cell's light and medium deficit and heavy's
  own error, per pixel) plus seeded normal noise of that standard deviation: a predictor whose only fault is
  unbiased noise of that size in log10 (a Laplace error of mean absolute size L1 has SIGMA = L1 * sqrt(2)); and
  ``lronly{SIGMA}``, ``lronly{SIGMA}_capped``: the same with the ``lr_only`` distances for the two deficits (the
  labels of ``expected_labels.py make --columns 0 1``; the cap weighs them against heavy's measured error).

``--light hashed``: the light branch's outputs replaced by ``hashed_light.py``'s hashed base (fitted on the training
photos it trains on, priced at its multiply-adds over the fitted base's), for the rules on measured errors only (the
classifier knows the fitted base; not with ``--engine``, which runs the model's own): does a better light branch move
the calibrated ceiling?

``--costs L M H``: the decisions weigh these branch costs instead of the model's (its residuals' multiply-adds),
e.g. each residual's measured seconds (``scripts/branch_seconds.py``).

``--tta N``: the classifier's scores averaged (in log10) over N views of the frame: 2 mirrored left-right, 4 also
upside down, 8 also transposed, each view's cell grid mapped back onto the frame's (a classifier ensemble that needs
no training, at N times the classifier's cost). The JSON's ``score_l1`` gives, per photo set, the mean absolute
distance in log10 of each score column from what it predicts (the cells' measured light and medium deficits and
heavy's own error, per pixel): the classifier's accuracy, with or without ``--tta``.

``--engine``: the calibration's loss measured as the recipe measures it, through the engine (its planner runs
an isolated light cell on its medium neighbours' branch, which loses less than the classes as decided), each photo's
PSNR-Y (border = scale) against the heavy branch's; the shares stay as decided.

For each: the calibrated price (the recipe's grid, ``numpy.geomspace(0.01, 1000, 61)``, scanned upwards until the
loss passes twice ``tolerance_db``), its loss on the calibration images, and on each photo set the shares of the
easiest and hardest thirds of cells (by the heavy branch's gain over bicubic, as ``routing_eval.py`` splits them)
sent to the cheapest class, the mean PSNR-Y loss per photo and the branches' compute as a share of heavy's.

    python scripts/calibrated_ceiling.py --threads 2 [--engine] [--noise 0.1 0.2 ...] [--light hashed] [--model M]
        [--tta 1|2|4|8] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/
from routing_eval import TEN_PHOTOS, bicubic, photos, priced_on, routing_loss_db, to_u8, training_photos

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
from classsr_cli.errors import ClassSRError
from classsr_cli.metrics import psnr, quantize, rgb_to_y
from classsr_cli.models.classsr import (
    DEFICIT_EPS,
    ClassSR,
    _db_budget,
    capped_classes,
    cheapest_within,
    priced_classes,
)
from classsr_cli.train.data import factor_pair

#: The recipe's price grid (``Trainer._calibrate``).
PRICES = np.geomspace(0.01, 1000, 61)
RULES = ("classifier", "classifier_capped", "oracle", "oracle_capped", "lr_only")
Light = Callable[[torch.Tensor], torch.Tensor] | None


@dataclass
class Cells:
    """One photo's cells: ``errors`` ``(N, 3)`` each branch's summed luma squared error (border = scale), ``px``
    ``(N,)`` HR pixels, ``gains`` ``(N,)`` the heavy branch's gain over bicubic (mean RGB squared error, levels²),
    ``scores`` ``(N, 3)`` the classifier's outputs, ``noise`` ``(N, 3)`` standard normal draws (``--noise``),
    ``far`` ``(N, 2)`` the light and medium outputs' summed luma squared distance from heavy's (border = scale)."""

    errors: np.ndarray
    px: np.ndarray
    gains: np.ndarray
    scores: torch.Tensor
    noise: np.ndarray
    far: np.ndarray
    x: torch.Tensor | None = None  # with --engine: the LR as the engine takes it, the HR, heavy's PSNR-Y on it
    hr: np.ndarray | None = None
    heavy_psnr: float = 0.0
    losses: dict[bytes, float] = field(default_factory=dict)  # the engine's loss by classes

    def measured_scores(self, sigma: float, lr_only: bool = False) -> torch.Tensor:
        """The cells' measured errors as classifier scores, plus ``sigma`` times :attr:`noise`; with ``lr_only``
        the light and medium outputs' distances from heavy's (:attr:`far`) in place of their deficits."""
        mean = self.errors / self.px[:, None]
        d = self.far / self.px[:, None] if lr_only else np.maximum(mean[:, :2] - mean[:, 2:], 0)
        return torch.from_numpy(np.log10(DEFICIT_EPS + np.concatenate([d, mean[:, 2:]], 1)) + sigma * self.noise)


def view_scores(model: ClassSR, frame: torch.Tensor, step: int, views: int) -> torch.Tensor:
    """``model.frame_scores(frame, step)`` averaged over ``views`` (1, 2, 4 or 8) mirrored or transposed views of the
    padded frame, each view's ``(rows, cols, 3)`` scores mapped back onto the frame's cells. The frame is padded as
    :meth:`ClassSR.frame_scores` pads it (:meth:`ClassSR.scored_frame`), the same on both sides of the cell grid, so that each view's cells are the
    frame's cells; view 0 is exactly ``frame_scores``."""
    padded = model.scored_frame(frame, step)
    out = []
    for k in range(views):
        t = padded.flip(-1) if k & 1 else padded
        t = t.flip(-2) if k & 2 else t
        t = t.transpose(-1, -2).contiguous() if k & 4 else t.contiguous()
        sc = model._window_scores(t, step)
        sc = sc.transpose(0, 1) if k & 4 else sc
        sc = sc.flip(0) if k & 2 else sc
        out.append(sc.flip(1) if k & 1 else sc)
    return torch.stack(out).mean(0)


def score_l1(cells: list[Cells]) -> list[float]:
    """Mean absolute distance in log10 of each score column from its measured target over ``cells``' cells: the light
    and medium deficits over heavy and heavy's own error, mean luma squared error per pixel (:attr:`Cells.measured_scores`
    without noise)."""
    d = [(c.scores.double() - c.measured_scores(0.0)).abs() for c in cells]
    return [round(float(v), 4) for v in torch.cat(d).mean(0)]


def block_sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sums of ``a`` ``(H, W)`` over ``size`` x ``size`` blocks from the top left, row-major ``(rows*cols,)``; the
    last row and column of blocks may be partial."""
    h, w = a.shape
    rows, cols = -(-h // size), -(-w // size)
    p = np.zeros((rows * size, cols * size), dtype=np.float64)
    p[:h, :w] = a
    return p.reshape(rows, size, cols, size).sum((1, 3)).ravel()


@torch.inference_mode()
def cells_of(model: ClassSR, img: np.ndarray, rng: np.random.Generator, light: Light = None,
             step: int = 28) -> Cells:
    """A photo's :class:`Cells`, its HR mod-cropped and its LR bicubic ÷scale as everywhere."""
    s = model.cfg.scale
    hr, lr = make_pair(img, s)
    return cells_of_pair(model, hr, lr, rng, light, step)


@torch.inference_mode()
def cells_of_pair(model: ClassSR, hr: np.ndarray, lr: np.ndarray, rng: np.random.Generator,
                  light: Light = None, step: int = 28) -> Cells:
    """A photo's :class:`Cells` from its ``hr`` and ``lr``; ``light`` in place of the light branch where given."""
    s, size = model.cfg.scale, step * model.cfg.scale
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
    outs = [to_u8(light(x) if k == 0 and light is not None else model.branches[k](x)) for k in range(3)]
    y, y_heavy = rgb_to_y(hr), rgb_to_y(outs[2])
    errors, far = [], []
    for o, sums, ref in ((outs[0], errors, y), (outs[1], errors, y), (outs[2], errors, y), (outs[0], far, y_heavy),
                         (outs[1], far, y_heavy)):
        e = (rgb_to_y(o) - ref) ** 2
        e[:s], e[-s:], e[:, :s], e[:, -s:] = 0, 0, 0, 0
        sums.append(block_sums(e, size))
    px = block_sums(np.ones(y.shape), size)
    h = hr.astype(np.float64)
    sq = [((o.astype(np.float64) - h) ** 2).mean(-1) for o in (bicubic(model, x, lr, s), outs[2])]
    gains = (block_sums(sq[0], size) - block_sums(sq[1], size)) / px
    return Cells(np.stack(errors, 1), px, gains, model.frame_scores(x, step).reshape(-1, 3),
                 rng.standard_normal((len(px), 3)), np.stack(far, 1))


def keep_pair(model: ClassSR, c: Cells, hr: np.ndarray, lr: np.ndarray) -> Cells:
    """``c`` with what :func:`engine_loss` needs of its photo."""
    c.x, c.hr = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255), hr
    with torch.inference_mode():
        c.heavy_psnr = psnr(quantize(model.branches[2](c.x)), hr, model.cfg.scale, y_channel=True)
    return c


def cell_loss(c: Cells, classes: np.ndarray) -> float:
    """A photo's PSNR-Y loss against heavy with each cell taking its class's output (:func:`routing_loss_db`)."""
    return routing_loss_db(c.errors, classes)


def engine_loss(model: ClassSR, c: Cells, classes: np.ndarray) -> float:
    """A photo's PSNR-Y loss against heavy as the engine upscales it with these classes decided (its planner may run
    a cell on a heavier branch), as the recipe's calibration measures it."""
    key = np.asarray(classes, dtype=np.int64).tobytes()
    if key not in c.losses:
        assert c.x is not None and c.hr is not None
        decided = torch.from_numpy(np.asarray(classes, dtype=np.int64))

        def decide(scores: torch.Tensor, tolerance: float | None = None) -> torch.Tensor:
            if scores.shape[0] != len(decided):
                raise ValueError(f"the engine scored {scores.shape[0]} cells, the photo has {len(decided)}")
            return decided

        model.decide = decide  # the instance's, for this call
        try:
            with torch.inference_mode():
                sr, _ = upscale_tensor(model, c.x)
        finally:
            del model.decide
        c.losses[key] = c.heavy_psnr - psnr(quantize(sr), c.hr, model.cfg.scale, y_channel=True)
    return c.losses[key]


def route(c: Cells, rule: str, price: float, cap_db: float, costs: tuple[float, float, float]) -> np.ndarray:
    """``rule``'s classes of a photo's cells at ``price``."""
    if rule.startswith(("classifier", "noisy", "lronly")):
        scores = (c.scores if rule.startswith("classifier") else
                  c.measured_scores(float(rule.removeprefix("noisy").removeprefix("lronly").split("_")[0]),
                                    rule.startswith("lronly")))
        k = priced_classes(scores, price, costs)
        return (capped_classes(scores, k, cap_db, costs) if rule.endswith("capped") else k).numpy()
    if rule == "lr_only":
        return priced_on(c.far / c.px[:, None], price, costs)
    mean = c.errors / c.px[:, None]
    k = priced_on(mean[:, :2] - mean[:, 2:], price, costs)
    if rule.endswith("capped") and routing_loss_db(c.errors, k) > cap_db:
        d = np.maximum(c.errors[:, :2] - c.errors[:, 2:], 0)
        k = cheapest_within(d[:, 0], d[:, 1], _db_budget(cap_db, float(c.errors[:, 2].sum())), costs)
    return k


def calibrate(images: list[Cells], rule: str, tolerance_db: float, cap_db: float,
              costs: tuple[float, float, float],
              loss_of: Callable[[Cells, np.ndarray], float] = cell_loss) -> tuple[float, float]:
    """The largest price of :data:`PRICES` whose mean loss (``loss_of`` each image's classes) over ``images`` is at
    most ``tolerance_db``, scanned upwards as the recipe scans (stopping once the loss passes twice the tolerance),
    and that loss; 0 and the all-heavy loss (0) where none is."""
    best, best_loss = 0.0, 0.0
    for p in PRICES:
        loss = float(np.mean([loss_of(c, route(c, rule, p, cap_db, costs)) for c in images]))
        if loss <= tolerance_db:
            best, best_loss = float(p), loss
        elif loss > 2 * tolerance_db:
            break
    return best, best_loss


def shares(photo_cells: list[Cells], rule: str, price: float, cap_db: float,
           costs: tuple[float, float, float]) -> dict:
    """At ``price``: the shares of the pooled cells' easiest and hardest thirds sent to the cheapest class, the mean
    loss per photo and the mean compute per cell as a share of heavy's."""
    ks = [route(c, rule, price, cap_db, costs) for c in photo_cells]
    g, k = np.concatenate([c.gains for c in photo_cells]), np.concatenate(ks)
    t1, t2 = np.quantile(g, [1 / 3, 2 / 3])
    rel = np.asarray(costs) / max(costs)
    return {"easiest_third_to_cheapest": round(float(np.mean(k[g <= t1] == 0)), 4),
            "hardest_third_to_cheapest": round(float(np.mean(k[g >= t2] == 0)), 4),
            "mean_loss_db": round(float(np.mean([routing_loss_db(c.errors, kk) for c, kk in zip(photo_cells, ks,
                                                                                                   strict=True)])), 4),
            "mean_branch_cost_vs_heavy": round(float(np.mean(rel[k])), 4)}


def calibration_cells(model: ClassSR, paths: list[Path], factors: list[float], rng: np.random.Generator,
                      light: Light = None, engine: bool = False) -> list[tuple[Path, Cells]]:
    """The calibration's images as the recipe makes them, each with the photo it comes from: every photo of
    ``paths`` (mod-cropped, LR bicubic ÷scale) and its downscales by ``factors[1:]``, skipping those whose LR is
    narrower than a patch (training prepares no patch of them); with ``engine``, each kept for :func:`engine_loss`."""
    s, out = model.cfg.scale, []
    for path in paths:
        hr, lr = make_pair(load_rgb(path), s)
        if min(lr.shape[:2]) < model.cfg.patch:
            continue
        pairs = [(hr, lr)] + [factor_pair(hr, f, s) for f in factors[1:]]  # downscales of the mod-cropped photo
        for hr_f, lr_f in pairs:
            if min(lr_f.shape[:2]) >= model.cfg.patch:
                out.append((path, cells_of_pair(model, hr_f, lr_f, rng, light)))
                if engine:
                    keep_pair(model, out[-1][1], hr_f, lr_f)
    return out


def photo_sets(model: ClassSR, train: Path, rng: np.random.Generator,
               light: Light = None) -> dict[str, list[tuple[str, Cells]]]:
    """The photo sets routing by difficulty is measured on, each photo's name and :class:`Cells`: scikit-image's
    four and ten (outside the training and validation sets) and the held-out training photos at their own size."""
    return {"four": [(n, cells_of(model, img, rng, light)) for n, img in photos([])],
            "ten": [(n, cells_of(model, img, rng, light)) for n, img in photos([], TEN_PHOTOS)],
            "held_out": [(p.name, cells_of(model, load_rgb(p), rng, light)) for p in training_photos("held", train)]}


def hashed_light_branch(model: ClassSR, train: Path, taps: int = 7, angles: int = 24) -> tuple[Callable, float]:
    """``hashed_light.py``'s hashed base, fitted on the training photos training trains on, and its multiply-adds
    per LR pixel beyond the model's fitted base (what the price charges a light cell for it)."""
    from hashed_light import hashed_base, upscale  # scripts/

    s = model.cfg.scale
    filters, edges, _ = hashed_base(s, taps, angles, train)
    return (lambda x: upscale(x, filters, s, angles, edges)), float(3 * taps * taps * s * s - model.branches[0].base.numel())


def calibration_args(ap: argparse.ArgumentParser) -> None:
    """The options of the model and the calibration, shared with ``score_calibration.py``."""
    ap.add_argument("--model", default=None)
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--factors", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6],
                    help="the calibration's downscales of each training photo (the recipe's factors)")
    ap.add_argument("--tolerance-db", type=float, default=0.05, help="the recipe's tolerance_db")
    ap.add_argument("--engine", action="store_true",
                    help="measure the calibration's loss through the engine, as the recipe does (slower)")


def priced_model(name: str | None, threads: int) -> ClassSR:
    """The ×4 model ``name`` (default: the shipped one) on the CPU in float32, one that decides per patch at a price;
    anything else ends the script with one line."""
    torch.set_num_threads(threads)
    try:
        model = zoo.load(name, 4, device=torch.device("cpu"), dtype=torch.float32).net
    except ClassSRError as e:
        raise SystemExit(f"error: {e}") from None
    if model.cfg.routing != "budget" or model.cfg.cell_price <= 0:
        raise SystemExit("error: the model does not decide per patch at a price (a budget model with cell_price)")
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    calibration_args(ap)
    ap.add_argument("--noise", type=float, nargs="*", default=[],
                    help="also the rule on measured errors plus normal noise of these standard deviations (log10)")
    ap.add_argument("--light", choices=["branch", "hashed"], default="branch",
                    help="the light branch as shipped, or hashed_light.py's hashed base in its place")
    ap.add_argument("--costs", type=float, nargs=3, metavar=("LIGHT", "MEDIUM", "HEAVY"), default=None,
                    help="the decisions' branch costs (default the model's: its residuals' multiply-adds), e.g. "
                         "each residual's seconds from scripts/branch_seconds.py")
    ap.add_argument("--tta", type=int, choices=[1, 2, 4, 8], default=1,
                    help="the classifier's scores averaged over this many mirrored or transposed views")
    ap.add_argument("--seed", type=int, default=0, help="of the noise")
    ap.add_argument("--limit", type=int, default=0, help="calibrate on the first N training photos only (a test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.engine and args.light != "branch":
        ap.error("--engine runs the model's own light branch: not with --light hashed")
    if args.costs and args.light != "branch":
        ap.error("--light hashed prices the hashed base itself: not with --costs")
    model = priced_model(args.model, args.threads)
    if args.tta > 1:
        model.frame_scores = lambda frame, step: view_scores(model, frame, step, args.tta)  # the instance's
    cap = model.cfg.frame_cap_db
    costs = (args.costs[0], args.costs[1], args.costs[2]) if args.costs else model.branch_costs
    t0, rng = time.perf_counter(), np.random.default_rng(args.seed)
    light, rules_run = None, RULES
    if args.light == "hashed":
        light, extra = hashed_light_branch(model, args.train)
        costs, rules_run = (extra, costs[1], costs[2]), ("oracle", "oracle_capped", "lr_only")
    calib = [c for _, c in calibration_cells(model, training_photos("all", args.train)[: args.limit or None],
                                             args.factors, rng, light, args.engine)]
    sets = {name: [c for _, c in named] for name, named in photo_sets(model, args.train, rng, light).items()}
    rules = {}
    noisy = tuple(f"{kind}{n:g}{cap}" for kind in ("noisy", "lronly") for n in args.noise for cap in ("", "_capped"))
    for rule in rules_run + noisy:
        loss_of = (lambda c, k: engine_loss(model, c, k)) if args.engine else cell_loss
        price, loss = calibrate(calib, rule, args.tolerance_db, cap, costs, loss_of)
        rules[rule] = {"calibrated_price": round(price, 3), "calibration_loss_db": round(loss, 4),
                       **{name: shares(cs, rule, price, cap, costs) for name, cs in sets.items()}}
        # and at the model's own price, for comparison with routing_eval.py
        rules[rule]["at_model_price"] = {name: shares(cs, rule, model.cfg.cell_price, cap, costs)
                                         for name, cs in sets.items()}
    emit({"model": args.model or "default x4", "light": args.light, "yardstick": "engine" if args.engine else "cells",
          "branch_costs_vs_heavy": [round(c / max(costs), 4) for c in costs], "model_price": round(model.cfg.cell_price, 3), "frame_cap_db": cap,
          "tolerance_db": args.tolerance_db, "tta": args.tta, "calibration_images": len(calib),
          "score_l1": {name: score_l1(cs) for name, cs in [("calibration", calib), *sets.items()]},
          "seconds": round(time.perf_counter() - t0, 1), "rules": rules}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
