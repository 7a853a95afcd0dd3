"""What ``classsr upscale -x 8`` (the x4 model, then the x2 model on its output: :class:`classsr_cli.pipeline.Chain`)
gives against the other ways to reach x8: bicubic x8, and the x4 model then a bicubic x2 (what Real-ESRGAN's
``--outscale 8`` does after its x4 net). PSNR-Y against the HR (border = 8), mean over the images, and each way's
seconds (the whole image, this process's threads).

    PYTHONPATH=scripts python scripts/chain_quality.py ../shared/data/val/SunHays80 --count 10 \
        --json docs/results/sixtythird/chain_x8.json

Per image: the HR mod-cropped to 8, the LR its antialiased bicubic ÷8, as ``bench`` makes LR; the default models.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from report import emit

from classsr_cli import zoo
from classsr_cli.degrade import bicubic_resize, load_rgb, make_pair
from classsr_cli.io.files import IMAGE_SUFFIXES
from classsr_cli.io.image import Picture
from classsr_cli.metrics import psnr
from classsr_cli.pipeline import Upscaler, chain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=10, help="the first N images of the folder, sorted")
    ap.add_argument("-x", "--scale", type=int, default=8, help="a factor above 4 (8 or 16)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = args.scale
    chained = chain(None, float(s), torch.device("cpu"), None, {})
    x4 = Upscaler.of(zoo.load(None, 4))
    paths = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[: args.count]
    rows = []
    for path in paths:
        hr, lr = make_pair(load_rgb(path), s)
        h, w = hr.shape[:2]
        ways = {
            "bicubic": lambda lr=lr, h=h, w=w: bicubic_resize(lr, h, w),
            "x4_then_bicubic": lambda lr=lr, h=h, w=w: bicubic_resize(x4.upscale_array(lr).pixels, h, w),
            "chain": lambda lr=lr: chained.upscale_picture(Picture(lr))[0].pixels,
        }
        row: dict[str, object] = {"image": path.name, "lr": [int(lr.shape[1]), int(lr.shape[0])]}
        for name, way in ways.items():
            start = time.perf_counter()
            out = way()
            row[f"{name}_seconds"] = round(time.perf_counter() - start, 4)
            row[name] = round(psnr(out, hr, s, y_channel=True), 3)
        rows.append(row)

    def mean(key: str) -> float:
        return round(float(np.mean([float(r[key]) for r in rows])), 4)  # type: ignore[arg-type]

    summary = {k: mean(k) for k in ("bicubic", "x4_then_bicubic", "chain")}
    seconds = {k: mean(f"{k}_seconds") for k in ("bicubic", "x4_then_bicubic", "chain")}
    emit({"folder": str(args.folder), "images": len(rows), "scale": s, "threads": args.threads,
          "passes": [str(up.model_path) for up in chained.passes], "psnr_y_mean": summary, "seconds_mean": seconds,
          "per_image": rows}, args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
