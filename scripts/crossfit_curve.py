"""How a routed model's rules do on training photos its classifier never saw: cross-fitted routing curves.

The shipped classifier trained on the sub-images of 276 of the 291 training photos, so routing those photos is
in-sample for it: its predicted deficits are as right there as they will ever be. The 15 held-out photos are out
of sample but few (and an easier draw than the rest, docs/experiments.md). This script trains the classifier stage
again ``--folds`` times on the run's own branches, each time on the sub-images of all but one fold of the
trained-on photos (photo ``i`` of the prepared data, in its order, in fold ``i mod folds``), and routes each fold's photos (every prepared factor: the
images ``calibrate_factors = "all"`` calibrates on) with the classifier that did not see them. The same images
are routed by the run's own classifier (in sample) beside it, per rule: mean PSNR-Y loss against the heavy branch
on the whole image, the loss on the third of the images where the medium branch alone loses most, the third
whose heavy branch is furthest from the HR (the most textured), and real FLOPs as run against heavy.

    python scripts/crossfit_curve.py runs/calall_x4 --data runs/residual_x4/data --work runs/crossfit_x4 \\
        --rules p1.468 p2.154 p2.610 p3.162 0.03 0.04 0.05 --json docs/results/crossfit_x4.json

A rule is ``pT`` (per patch at T levels²) or a number (the frame budget in dB). Nothing is written to the run
folder; ``--work`` keeps each fold's classifier (resumable: a fold whose classifier exists is not retrained).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from report import emit  # scripts/

from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
from classsr_cli.engine import upscale_tensor
from classsr_cli.metrics import psnr, quantize
from classsr_cli.models.classsr import ClassSR
from classsr_cli.runtime import resolve_device
from classsr_cli.train.config import load_train_config
from classsr_cli.train.data import PatchData
from classsr_cli.train.loop import init_distributed
from classsr_cli.train.stages import Trainer

SEEDED = ("config.json", "ranking.json", "deficits.npy", "baseline.safetensors",
          "branch0.safetensors", "branch1.safetensors", "branch2.safetensors")


def photo_of_images(images: np.ndarray) -> np.ndarray:
    """Photo index of every prepared image: a photo's images follow each other, its first factor first."""
    return np.cumsum(images[:, 5] == 0) - 1


def route_all(model: ClassSR, pairs: list, heavy: list[float], rule: str) -> tuple[np.ndarray, float]:
    """Per-image PSNR-Y loss against heavy and FLOPs as run / heavy on the whole image, for one rule."""
    base, s = model.cfg, model.cfg.scale
    tol: float | None
    if rule.startswith("p"):
        model.cfg, tol = replace(base, cell_tolerance=float(rule[1:]), cell_price=0.0), None
    else:
        tol = float(rule)
    loss, used, whole = [], 0, 0
    try:
        for (x, hr), ref in zip(pairs, heavy, strict=True):
            sr, res = upscale_tensor(model, x, tolerance=tol)
            used += res.flops.used
            whole += res.flops.whole
            loss.append(ref - psnr(quantize(sr), hr, s, y_channel=True))
    finally:
        model.cfg = base
    return np.asarray(loss), used / whole


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished run folder (its branches and classifier)")
    ap.add_argument("--data", type=Path, required=True, help="the run's prepared data")
    ap.add_argument("--work", type=Path, required=True, help="where each fold's classifier is trained")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--split", choices=("alternate", "textured"), default="alternate",
                    help="alternate photos into --folds folds, or hold out the most textured third of the photos "
                         "(lowest PSNR-Y of the heavy branch at their own size) and train on the rest: a shift in "
                         "content the classifier must extrapolate to")
    ap.add_argument("--rules", nargs="+", default=["p2.610", "0.05"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    for r in args.rules:
        try:
            float(r.removeprefix("p"))
        except ValueError:
            ap.error(f"a rule is pT (levels², per patch) or a frame budget in dB; got {r!r}")
    torch.set_num_threads(args.threads)
    cfg = load_train_config(args.run / "config.json")
    dist = init_distributed(resolve_device("cpu"))
    shipped = load_checkpoint(args.run / "classsr.safetensors", expect_kind="classsr").module.eval()
    assert isinstance(shipped, ClassSR)

    per_fold: list[dict] = []
    losses: dict[str, dict[str, list[np.ndarray]]] = {r: {"in": [], "out": []} for r in args.rules}
    flops: dict[str, dict[str, list[tuple[float, int]]]] = {r: {"in": [], "out": []} for r in args.rules}
    medium_all, heavy_all = [], []
    data = PatchData(args.data, dist.device)  # loaded once; each fold trains on its own subset of it
    images = data.images.cpu().numpy()
    photo = photo_of_images(images)
    trained = images[:, 4] == 0
    fold = photo % args.folds
    if args.split == "textured":  # fold 0: the most textured third of the trained-on photos
        firsts = [i for i in range(len(images)) if images[i, 5] == 0 and trained[i]]
        with torch.inference_mode():
            quality = {}
            for i in firsts:
                lr, hr = data.image(i)
                x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).contiguous()
                quality[int(photo[i])] = psnr(quantize(shipped.branches[2](x)), hr, cfg.scale, y_channel=True)
        cut = np.quantile(list(quality.values()), 1 / 3)
        fold = np.array([0 if quality.get(int(p), np.inf) <= cut else 1 for p in photo])
    all_train = data.train_index
    img_of_patch = data.patches[:, 0].cpu()
    for f in range(args.folds if args.split == "alternate" else 1):
        work = args.work / (f"fold{f}" if args.split == "alternate" else "textured")
        work.mkdir(parents=True, exist_ok=True)
        for name in SEEDED:
            if not (work / name).exists():
                shutil.copy2(args.run / name, work / name)
        keep = torch.from_numpy((fold != f) & trained)
        data.train_index = all_train[keep[img_of_patch[all_train.cpu()]].to(all_train.device)]
        trainer = Trainer(cfg, work, args.data, dist, _data=data)
        out = work / "classifier_fold.safetensors"
        t0 = time.perf_counter()
        if not out.exists():
            fresh = trainer._assemble()
            trainer._regress_classifier(fresh)
            fresh.cfg = replace(fresh.cfg, tolerance=shipped.cfg.tolerance, cell_tolerance=shipped.cfg.cell_tolerance,
                                cell_price=shipped.cfg.cell_price)
            save_checkpoint(fresh, out, provenance={"stage": "crossfit", "fold": f, "folds": args.folds})
        model = load_checkpoint(out, expect_kind="classsr").module.eval()
        assert isinstance(model, ClassSR)
        trained_s = time.perf_counter() - t0
        rows = [i for i in range(len(images)) if fold[i] == f and trained[i]]
        pairs = []
        for i in rows:
            lr, hr = data.image(i)
            pairs.append((torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).contiguous(), hr))
        s = cfg.scale
        with torch.inference_mode():
            heavy = [psnr(quantize(model.branches[2](x)), hr, s, y_channel=True) for x, hr in pairs]
            medium = [ref - psnr(quantize(model.branches[1](x)), hr, s, y_channel=True)
                      for (x, hr), ref in zip(pairs, heavy, strict=True)]
            medium_all += medium
            heavy_all += heavy
            for r in args.rules:
                for which, net in (("out", model), ("in", shipped)):
                    loss, ratio = route_all(net, pairs, heavy, r)
                    losses[r][which].append(loss)
                    flops[r][which].append((ratio, len(pairs)))
                    sys.stderr.write(f"fold {f} {r} {which}: {loss.mean():.4f} dB, {ratio:.3f}x FLOPs\n")
        per_fold.append({"fold": f, "photos": len(set(photo[rows])), "images": len(rows),
                         "train_sub_images": len(data.train_index), "seconds": round(trained_s, 1)})

    medium_arr, heavy_arr = np.asarray(medium_all), np.asarray(heavy_all)
    hard = medium_arr >= np.quantile(medium_arr, 2 / 3)
    textured = heavy_arr <= np.quantile(heavy_arr, 1 / 3)
    points = []
    for r in args.rules:
        point: dict = {"rule": r}
        for which in ("in", "out"):
            loss = np.concatenate(losses[r][which])
            ratio = sum(a * n for a, n in flops[r][which]) / sum(n for _, n in flops[r][which])
            point[which] = {"loss_db": round(float(loss.mean()), 4), "hard_loss_db": round(float(loss[hard].mean()), 4),
                            "textured_loss_db": round(float(loss[textured].mean()), 4),
                            "flops_vs_heavy": round(float(ratio), 4)}
        points.append(point)
    result = {"run": str(args.run), "folds": per_fold, "images": len(medium_arr),
              "medium_alone_loss_db": round(float(medium_arr.mean()), 4), "points": points}
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
