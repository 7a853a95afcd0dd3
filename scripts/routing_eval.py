"""Does routing follow difficulty, and does routed output keep the heavy branch's colour and borders?

Everyday photos outside the training and validation sets: scikit-image's sample photos (astronaut, coffee,
chelsea, rocket; shipped inside the package, a dev dependency). Or pass image files/folders.

For each photo: HR mod-cropped, LR = bicubic ÷scale (classsr_cli.degrade, as in training and bench). The model
upscales it routed (the engine, default or --tolerance) and with its heavy branch on the whole image. Per
``step`` x ``step`` LR cell, heavy's gain over bicubic = MSE(bicubic) - MSE(heavy) on the cell's HR pixels.
Cells pooled over all photos are split in thirds by that gain; the script reports which share of each third
went to the cheapest class. Also per photo: PSNR-Y (border = scale) of bicubic, heavy and routed; the
outermost-row step (mean |row0 - row1| of the output's top and left edges, 8-bit) of routed vs heavy; and the
chroma (max - min of RGB) of routed on saturated HR pixels (HR chroma >= 96) as a share of heavy's.

    python scripts/routing_eval.py --model weights/classsr_x4.safetensors --threads 2 [--json out.json] [--export DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
from classsr_cli.metrics import psnr

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photos(paths: list[str]) -> list[tuple[str, np.ndarray]]:
    if paths:
        from classsr_cli.io.files import images_in

        out = []
        for p in map(Path, paths):
            for f in images_in(p) if p.is_dir() else [p]:
                out.append((f.name, load_rgb(f)))
        return out
    import skimage.data

    return [(name, getattr(skimage.data, name)()[..., :3]) for name in SKIMAGE_PHOTOS]


def to_u8(t: torch.Tensor) -> np.ndarray:
    return (t[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def edge_step(img: np.ndarray) -> float:
    f = img.astype(np.float64)
    return float((np.abs(f[0] - f[1]).mean() + np.abs(f[:, 0] - f[:, 1]).mean()) / 2)


def chroma(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float64)
    return f.max(-1) - f.min(-1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", nargs="*", help="image files or folders (default: scikit-image's sample photos)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--tolerance", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--export", type=Path, default=None, help="also save the photos as PNG here (for classsr bench)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    loaded = zoo.load(args.model, args.scale, device=torch.device("cpu"), dtype=torch.float32)
    model, s = loaded.net, loaded.model_scale
    gains, light, records = [], [], []
    for name, img in photos(args.images):
        if args.export:
            from PIL import Image

            args.export.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(args.export / f"{Path(name).stem}.png")
        hr, lr = make_pair(img, s)
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
        with torch.inference_mode():
            sr, route = upscale_tensor(model, x, tolerance=args.tolerance)
            heavy = model.branches[2](x)
            bic = model.branches[0](x)
        out, hv, bc = to_u8(sr), to_u8(heavy), to_u8(bic)
        step = route.grid.step
        cls = route.classes.numpy()
        rows, cols = cls.shape
        for r in range(rows):
            for c in range(cols):
                ys, xs = slice(r * step * s, (r + 1) * step * s), slice(c * step * s, (c + 1) * step * s)
                h = hr[ys, xs].astype(np.float64)
                if h.size == 0:
                    continue
                gains.append(((bc[ys, xs] - h) ** 2).mean() - ((hv[ys, xs] - h) ** 2).mean())
                light.append(int(cls[r, c]) == 0)
        sat = chroma(hr) >= 96
        rec = {
            "image": name, "size": [int(img.shape[1]), int(img.shape[0])], "counts": list(route.counts),
            "psnr_y": {k: round(psnr(v, hr, s, y_channel=True), 3) for k, v in (("bicubic", bc), ("heavy", hv), ("classsr", out))},
            "edge_step": {"heavy": round(edge_step(hv), 2), "classsr": round(edge_step(out), 2)},
            "saturated_px": int(sat.sum()),
            "chroma_share": round(float(chroma(out)[sat].mean() / chroma(hv)[sat].mean()), 4) if sat.any() else None,
            "flops_saved_vs_whole": round(route.flops.saved_vs_whole, 4),
        }
        records.append(rec)
    g, li = np.asarray(gains), np.asarray(light)
    t1, t2 = np.quantile(g, [1 / 3, 2 / 3])
    summary = {
        "model": str(loaded.path),
        "tolerance": args.tolerance if args.tolerance is not None else (
            f"default (per patch {model.cfg.cell_tolerance:g})" if model.cfg.cell_tolerance else model.cfg.tolerance),
        "cells": len(g),
        "easiest_third_to_cheapest": round(float(li[g <= t1].mean()), 4),
        "hardest_third_to_cheapest": round(float(li[g >= t2].mean()), 4),
        "mean_gain_over_bicubic_db": round(float(np.mean([r["psnr_y"]["classsr"] - r["psnr_y"]["bicubic"] for r in records])), 3),
        "mean_loss_vs_heavy_db": round(float(np.mean([r["psnr_y"]["heavy"] - r["psnr_y"]["classsr"] for r in records])), 3),
        "images": records,
    }
    text = json.dumps(summary, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
