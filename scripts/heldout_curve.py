"""A model's routing on the held-out training photos (the 5 % of ../shared/data/train that training holds out
by a hash of the name; ``--photos trained`` the others, ``all`` both, as ``calibrate_photos = "all"`` calibrates
on; never the validation sets): mean PSNR-Y loss against the heavy branch on the whole image and real FLOPs as
run against it, per tolerance. How two routing rules or two classifiers compare without looking at the
validation sets.

    python scripts/heldout_curve.py weights/classsr_residual_x4.safetensors --tolerances 0.05 0.1 0.2 --json out.json

A tolerance is in the model's unit (dB for budget routing, levels² for deficit routing); ``default`` is the
model's own decision (with its frame cap, ``frame_cap_db``, where it has one); ``pT`` decides per patch at ``T`` levels² (a budget model's per-patch rule, as its default
does at its calibrated ``cell_tolerance``); ``qP`` per patch at a price of ``P`` levels² (``cell_price``,
:func:`~classsr_cli.models.classsr.priced_classes`), both without a frame cap; two budget-model rules measured, not shipped: ``cT`` decides per
patch at ``T`` unless that routing's predicted loss on the frame is above the model's frame budget
(``tolerance``, dB), where the frame takes the budget's routing instead (a cap: :func:`~classsr_cli.models.classsr.capped_classes`,
the shipped defaults' ``frame_cap_db`` mechanism); ``sT`` spends on a frame what
the per-patch rule at ``T`` would spend there (its predicted error increase over heavy, summed) where it saves
the most compute (the frame budget's sweep, :func:`~classsr_cli.models.classsr.cheapest_within`), ``sT@D`` at
most a frame budget of ``D`` dB. ``--factors 1.0 0.9 0.8 0.7 0.6`` also routes each photo downscaled by
the other factors: the images ``calibrate_factors = "all"`` calibrates on. ``light``, ``medium``: that branch
alone on the whole image (FLOPs by :func:`~classsr_cli.engine.flops.count_flops`, as run). ``hard_loss_db``: the
mean loss on the third of the images where the medium branch alone loses most against heavy (where routing must
find the cells that need heavy); ``flat_loss_db`` and ``textured_loss_db`` on the thirds where the heavy branch's
PSNR-Y is highest and lowest; ``max_loss_image`` the image that loses ``max_loss_db`` and its heavy PSNR-Y.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/
from routing_eval import training_photos  # scripts/

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb
from classsr_cli.engine import upscale_tensor
from classsr_cli.engine.defaults import DEFAULT_STEP
from classsr_cli.engine.flops import count_flops
from classsr_cli.metrics import psnr, quantize
from classsr_cli.models.classsr import DEFICIT_EPS, ClassSR, capped_classes, cheapest_within, deficit_classes
from classsr_cli.train.data import factor_pair


def rule(net: ClassSR, kind: str, per_patch: float, cap_db: float | None) -> Callable[..., torch.Tensor]:
    """A decision in :meth:`ClassSR.decide`'s place: ``kind`` ``c`` (per patch at ``per_patch`` levels², capped at
    ``cap_db``) or ``s`` (the per-patch rule's spend, where it saves most, at most ``cap_db``); see the docstring."""

    def decide(scores: torch.Tensor, tolerance: float | None = None) -> torch.Tensor:
        pp = deficit_classes(scores, per_patch)
        if kind == "c":  # the shipped defaults' frame cap, on the per-patch tolerance rule
            assert cap_db is not None
            return capped_classes(scores, pp, cap_db, net.branch_costs)
        v = np.maximum(np.power(10.0, scores.detach().double().cpu().numpy()) - DEFICIT_EPS, 0.0)
        c = pp.cpu().numpy()
        spent = float(np.where(c == 0, v[:, 0], np.where(c == 1, v[:, 1], 0.0)).sum())
        cap = math.inf if cap_db is None else (10 ** (cap_db / 10) - 1) * float(v[:, 2].sum())  # budget_classes'
        return torch.from_numpy(cheapest_within(v[:, 0], v[:, 1], min(spent, cap), net.branch_costs)).to(scores.device)

    return decide


def parse(tol: str) -> tuple[float | None, float | None]:
    """A tolerance's number (None: default, light, medium) and, for ``sT@D``, its cap in dB."""
    if tol in ("default", "light", "medium"):
        return None, None
    head, _, cap = tol.partition("@")
    if cap and not head.startswith("s"):
        raise ValueError(tol)
    return float(head[1:] if head[:1] in ("p", "q", "c", "s") else head), float(cap) if cap else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--tolerances", nargs="+", default=["default"])
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--folders", nargs="+", default=["T91", "BSD200"])
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--factors", nargs="+", type=float, default=[1.0], help="downscale factors of each photo")
    ap.add_argument("--photos", choices=("held", "trained", "all"), default="held",
                    help="the held-out photos (default), the ones training used, or all (calibrate_photos = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--step", type=int, default=DEFAULT_STEP, help="cell side in LR pixels (the engine's --step)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    values: list[tuple[float | None, float | None]] = []  # each tolerance's number and cap (see parse)
    for tol in args.tolerances:
        try:
            values.append(parse(tol))
        except ValueError:
            ap.error(f"a tolerance is default, light, medium, a number, pT, qP, cT, sT or sT@DB; got {tol!r}")
    torch.set_num_threads(args.threads)
    loaded = zoo.load(args.model, args.scale)
    net, s = loaded.net.eval(), loaded.net.cfg.scale
    files = training_photos(args.photos, args.train, tuple(args.folders), args.val_fraction)
    pairs, names = [], []
    for f in files:
        img = load_rgb(f)
        for factor in args.factors:
            hr, lr = factor_pair(img, factor, s)
            if min(lr.shape[:2]) >= net.cfg.patch:
                pairs.append((torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).contiguous(), hr))
                names.append(f"{f.name} x{factor:g}")
    base = net.cfg
    points = []
    with torch.inference_mode():
        heavy = [psnr(quantize(net.branches[2](x)), hr, s, y_channel=True) for x, hr in pairs]
        medium = np.array([ref - psnr(quantize(net.branches[1](x)), hr, s, y_channel=True)
                           for (x, hr), ref in zip(pairs, heavy, strict=True)])
        hard = medium >= np.quantile(medium, 2 / 3)
        flat, textured = np.asarray(heavy) >= np.quantile(heavy, 2 / 3), np.asarray(heavy) <= np.quantile(heavy, 1 / 3)
        for tol, (t, cap) in zip(args.tolerances, values, strict=True):
            net.cfg = base
            net.__dict__.pop("decide", None)
            if tol.startswith("p") and base.routing == "budget":  # its per-patch rule: cell_tolerance, no budget
                assert t is not None
                net.cfg, t = replace(base, cell_tolerance=t, cell_price=0.0, frame_cap_db=0.0), None
            elif tol.startswith("q"):  # per patch at a price (cell_price), no budget
                if base.routing != "budget":
                    ap.error(f"{tol}: needs a budget model")
                assert t is not None
                net.cfg, t = replace(base, cell_tolerance=0.0, cell_price=t, frame_cap_db=0.0), None
            elif tol[:1] in ("c", "s"):
                if base.routing != "budget":
                    ap.error(f"{tol}: needs a budget model")
                assert t is not None
                cap = base.tolerance if tol[0] == "c" else cap
                net.decide, t = rule(net, tol[0], t, cap), None  # type: ignore[method-assign]
            loss, used, whole, counts = [], 0, 0, np.zeros(3)
            for (x, hr), ref in zip(pairs, heavy, strict=True):
                if tol in ("light", "medium"):  # one branch on the whole image
                    k = ("light", "medium").index(tol)
                    sr = net.branches[k](x)
                    used += count_flops(net.branches[k], tuple(x.shape))
                    whole += count_flops(net.branches[2], tuple(x.shape))
                    counts[k] += 1
                else:
                    sr, res = upscale_tensor(net, x, tolerance=t, step=args.step)
                    used += res.flops.used
                    whole += res.flops.whole
                    counts += res.counts
                loss.append(ref - psnr(quantize(sr), hr, s, y_channel=True))
            points.append({"tolerance": tol, "loss_db": round(float(np.mean(loss)), 4),
                           "hard_loss_db": round(float(np.mean(np.asarray(loss)[hard])), 4),
                           "flat_loss_db": round(float(np.mean(np.asarray(loss)[flat])), 4),
                           "textured_loss_db": round(float(np.mean(np.asarray(loss)[textured])), 4),
                           "max_loss_db": round(float(np.max(loss)), 4),
                           "max_loss_image": {"image": names[int(np.argmax(loss))],
                                              "heavy_psnr_y": round(float(heavy[int(np.argmax(loss))]), 2)},
                           "flops_vs_heavy": round(used / whole, 4),
                           "split": (counts / counts.sum()).round(3).tolist()})
            sys.stderr.write(f"{tol}: {points[-1]}\n")
    net.cfg = base
    net.__dict__.pop("decide", None)
    out = {"model": str(loaded.path), "step": args.step, "photo_set": args.photos, "photos": [f.name for f in files],
           "factors": args.factors, "images": len(pairs), "points": points}
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
