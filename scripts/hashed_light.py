"""Tried (thirty-seventh pass): a light branch better on flat content, without a network. How far does it move routing?

The ×4 default's light branch is its fitted base: one 5×5 linear filter per sub-pixel, the same everywhere. A hashed
base (RAISR's idea: Romano, Isidoro and Milanfar, 2016) keeps a filter per bucket of local structure, the bucket
read from each LR pixel's luma gradients: the orientation of the smoothed structure tensor (``--angles`` bins), its
strength and its coherence (tertiles over the training photos each). Every bucket's ``taps`` x ``taps`` filters
(one per sub-pixel, the same for R, G and B) are fitted by least squares on the training photos that training
trains on (``../shared/data/train``, at their own size, LR = bicubic ÷4 as everywhere), pulled towards the one
global filter where a bucket has few samples. Nothing is trained on the validation sets or the photos below.

Reports, per photo set (scikit-image's four, the ten, the held-out training photos): each photo's PSNR-Y (border =
scale) of the shipped light branch, the hashed base and the heavy branch; and with either as the light branch, the
default's priced rule on the photos' cells as ``routing_eval.py`` measures it: on the HR's errors (the ceiling) and
on each branch's distance from heavy's output (``lr_only``), the shares of the easiest and hardest thirds sent
light and the PSNR-Y loss per photo. ``ms_per_frame``: the median time of the hashed base (one gathered filter per
LR pixel, as written here), the fitted base, and the medium and heavy branches on one 256x192 LR frame, in turns.

    python scripts/hashed_light.py --threads 2 [--taps 7] [--angles 24] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from report import emit  # scripts/
from routing_eval import (
    SKIMAGE_PHOTOS,
    TEN_PHOTOS,
    bicubic,
    photos,
    priced_on,
    routing_loss_db,
    to_u8,
    training_photos,
)

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.errors import ClassSRError
from classsr_cli.metrics import psnr, rgb_to_y


def structure(lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per LR pixel of ``lr`` ``(1, 3, h, w)``: the orientation in ``[0, pi)`` of the luma structure tensor (central
    differences, smoothed by a 5x5 binomial), the square root of its larger eigenvalue (strength) and
    ``(sqrt(l1) - sqrt(l2)) / (sqrt(l1) + sqrt(l2))`` (coherence); each ``(h, w)``."""
    y = (lr * torch.tensor([0.299, 0.587, 0.114], dtype=lr.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    p = F.pad(y, (1, 1, 1, 1), mode="replicate")
    gx, gy = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / 2, (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / 2
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=lr.dtype)
    k = (k[:, None] * k[None, :] / 256)[None, None]
    a, b, c = (F.conv2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), k)[0, 0] for t in (gx * gx, gx * gy, gy * gy))
    half, disc = (a + c) / 2, torch.sqrt(((a - c) / 2) ** 2 + b * b)
    s1, s2 = torch.sqrt(half + disc), torch.sqrt((half - disc).clamp_min(0))
    angle = torch.remainder(0.5 * torch.atan2(2 * b, a - c), math.pi)
    return angle, s1, (s1 - s2) / (s1 + s2 + 1e-8)


def buckets(lr: torch.Tensor, angles: int, edges: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Each LR pixel's bucket, ``(h*w,)``: orientation bin, then strength and coherence tertile (``edges``)."""
    angle, strength, coherence = structure(lr)
    a = (angle / math.pi * angles).long().clamp(0, angles - 1)
    return ((a * 3 + torch.bucketize(strength, edges[0])) * 3 + torch.bucketize(coherence, edges[1])).flatten()


def taps_of(lr: torch.Tensor, t: int) -> torch.Tensor:
    """``(3, h*w, t*t)``: each colour's ``t`` x ``t`` LR neighbourhood of every pixel (replicate-padded)."""
    _, c, h, w = lr.shape
    p = F.pad(lr, (t // 2,) * 4, mode="replicate").reshape(c, 1, h + t - 1, w + t - 1)
    return F.unfold(p, t).transpose(1, 2)


def fit(pairs: list[tuple[torch.Tensor, torch.Tensor]], scale: int, t: int, angles: int,
        edges: tuple[torch.Tensor, torch.Tensor], ridge: float = 1e-4) -> torch.Tensor:
    """Least-squares filters ``(buckets, t*t, scale²)`` float64 from ``(lr, hr)`` pairs ``(1, 3, h, w)`` and
    ``(1, 3, s*h, s*w)`` in [0, 1], on LR pixels whose taps lie inside the image; each bucket's normal equations
    get ``ridge`` times their trace of pull towards the global solution."""
    n, q = angles * 9, t * t
    xtx = torch.zeros(n, q, q, dtype=torch.float64)
    xty = torch.zeros(n, q, scale * scale, dtype=torch.float64)
    for lr, hr in pairs:
        _, c, h, w = lr.shape
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[t // 2 : h - t // 2, t // 2 : w - t // 2] = True
        keep = inside.flatten()
        x = taps_of(lr.double(), t)[:, keep].reshape(-1, q)
        y = F.pixel_unshuffle(hr.double().reshape(c, 1, h * scale, w * scale), scale).flatten(2).transpose(1, 2)
        y = y[:, keep].reshape(-1, scale * scale)
        b = buckets(lr, angles, edges)[keep].repeat(c)
        order = torch.argsort(b)
        x, y = x[order], y[order]
        ids, counts = torch.unique_consecutive(b[order], return_counts=True)
        for k, xs, ys in zip(ids.tolist(), x.split(counts.tolist()), y.split(counts.tolist()), strict=True):
            xtx[k] += xs.T @ xs
            xty[k] += xs.T @ ys
    glob = torch.linalg.solve(xtx.sum(0), xty.sum(0))
    eye = torch.eye(q, dtype=torch.float64)
    lam = (ridge * xtx.diagonal(dim1=1, dim2=2).sum(1) + 1e-9)[:, None, None]
    return torch.linalg.solve(xtx + lam * eye, xty + lam * glob)


def upscale(lr: torch.Tensor, filters: torch.Tensor, scale: int, angles: int,
            edges: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The hashed base of ``lr`` ``(1, 3, h, w)``: ``(1, 3, s*h, s*w)``."""
    t = math.isqrt(filters.shape[1])
    _, c, h, w = lr.shape
    out = torch.einsum("cpk,pks->cps", taps_of(lr, t), filters.to(lr.dtype)[buckets(lr, angles, edges)])
    return F.pixel_shuffle(out.transpose(1, 2).reshape(1, c * scale * scale, h, w), scale)


def tensor(lr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)


def hashed_base(s: int, taps: int, angles: int, train: Path = Path("../shared/data/train")
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], int]:
    """The hashed base's filters fitted on the training photos training trains on (:func:`fit`), its bucket edges
    (strength and coherence tertiles over those photos) and the number of photos."""
    train_pairs = [make_pair(load_rgb(p), s) for p in training_photos("trained", train)]
    lrs = [tensor(lr) for _, lr in train_pairs]
    stats = [structure(x) for x in lrs]
    strength = torch.cat([st[1].flatten() for st in stats])
    coherence = torch.cat([st[2].flatten() for st in stats])
    thirds = torch.tensor([1 / 3, 2 / 3])
    edges = (torch.quantile(strength[::7], thirds), torch.quantile(coherence[::7], thirds))
    pairs = [(x, tensor(hr)) for x, (hr, _) in zip(lrs, train_pairs, strict=True)]
    return fit(pairs, s, taps, angles, edges), edges, len(train_pairs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--taps", type=int, default=7)
    ap.add_argument("--angles", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--time", type=int, default=10, help="passes timed on a 256x192 LR frame (SunHays80's ÷4 size)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        model = zoo.load(args.model, 4, device=torch.device("cpu"), dtype=torch.float32).net.eval()
    except ClassSRError as e:
        raise SystemExit(f"error: {e}") from None
    s = 4
    filters, edges, n_train = hashed_base(s, args.taps, args.angles)
    report: dict = {"model": str(args.model or "the default x4"), "taps": args.taps, "angles": args.angles, "buckets": args.angles * 9,
                    "training_photos": n_train, "price_levels2": model.cfg.cell_price,
                    # multiply-adds per LR pixel: the bases as run (R, G and B alike), the residuals as the price counts them
                    "macs_per_lr_pixel": {"fitted_base": model.branches[0].base.numel(),
                                          "hashed_base": 3 * args.taps ** 2 * s * s,
                                          "medium_residual": model.branch_costs[1],
                                          "heavy_residual": model.branch_costs[2]},
                    "sets": {}}
    sets = {"four": photos([], SKIMAGE_PHOTOS), "ten": photos([], TEN_PHOTOS),
            "held": [(p.name, load_rgb(p)) for p in training_photos("held")]}
    frame = torch.rand(1, 3, 192, 256, generator=torch.Generator().manual_seed(0))
    ways = {"hashed_base": lambda: upscale(frame, filters, s, args.angles, edges), "fitted_base": lambda: model.branches[0](frame),
            "medium": lambda: model.branches[1](frame), "heavy": lambda: model.branches[2](frame)}
    spent: dict[str, list[float]] = {k: [] for k in ways}
    with torch.inference_mode():
        for i in range(args.time + 1):  # in turns; the first pass warms up and is dropped
            for k, way in ways.items():
                t0 = time.perf_counter()
                way()
                if i:
                    spent[k].append(time.perf_counter() - t0)
    report["ms_per_frame"] = {k: round(1e3 * statistics.median(v), 2) for k, v in spent.items() if v}
    for name, imgs in sets.items():
        gains, cells, owner, per_photo = [], [], [], []
        for i, (photo, img) in enumerate(imgs):
            hr, lr = make_pair(img, s)
            x = tensor(lr)
            with torch.inference_mode():
                outs = [to_u8(model.branches[k](x)) for k in range(3)]
                bicubic_u8, hashed = bicubic(model, x, lr, s), to_u8(upscale(x, filters, s, args.angles, edges))
            per_photo.append({"image": photo, **{k: round(psnr(v, hr, s, y_channel=True), 3) for k, v in
                                                  (("light", outs[0]), ("hashed", hashed), ("heavy", outs[2]))}})
            y_hr, y_hv = rgb_to_y(hr), rgb_to_y(outs[2])
            err = [(rgb_to_y(o) - y_hr) ** 2 for o in (outs[0], outs[1], outs[2], hashed)]
            far = [(rgb_to_y(o) - y_hv) ** 2 for o in (outs[0], outs[1], hashed)]
            for e in err + far:
                e[:s], e[-s:], e[:, :s], e[:, -s:] = 0, 0, 0, 0
            step = 28 * s
            for r in range(0, hr.shape[0], step):
                for c in range(0, hr.shape[1], step):
                    cut = (slice(r, r + step), slice(c, c + step))
                    h = hr[cut].astype(np.float64)
                    gains.append(((bicubic_u8[cut] - h) ** 2).mean() - ((outs[2][cut] - h) ** 2).mean())
                    cells.append([e[cut].sum() for e in err] + [d[cut].sum() for d in far] + [h.shape[0] * h.shape[1]])
                    owner.append(i)
        g, cell, who = np.asarray(gains), np.asarray(cells), np.asarray(owner)
        easy, hard = g <= np.quantile(g, 1 / 3), g >= np.quantile(g, 2 / 3)
        px = cell[:, 7:8]
        out: dict = {"cells": len(g), "mean_psnr_y": {k: round(float(np.mean([p[k] for p in per_photo])), 3)
                                                      for k in ("light", "hashed", "heavy")}}
        for light, (le, lf) in {"fitted": (0, 4), "hashed": (3, 6)}.items():
            errors = cell[:, [le, 1, 2]]  # the light branch's, medium's and heavy's summed errors per cell
            for rule, deficits in (("ceiling", (errors[:, :2] - errors[:, 2:]) / px),
                                   ("lr_only", cell[:, [lf, 5]] / px)):
                k = priced_on(deficits, model.cfg.cell_price, model.branch_costs)
                out[f"{light}_{rule}"] = {
                    "easiest_third_to_cheapest": round(float(np.mean(k[easy] == 0)), 4),
                    "hardest_third_to_cheapest": round(float(np.mean(k[hard] == 0)), 4),
                    "loss_db_per_photo": round(float(np.mean([routing_loss_db(errors[who == i], k[who == i])
                                                              for i in range(len(imgs))])), 4)}
        out["photos"] = per_photo
        report["sets"][name] = out
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
