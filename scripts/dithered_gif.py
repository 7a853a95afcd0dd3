"""Does a GIF's dithering read as noise, and which model suits it? The training photos' ÷scale LR (bicubic, as in
training) reduced to a GIF's 256 colours (Pillow's median cut, Floyd–Steinberg dithering, as most GIF makers do),
then: ``metrics.noise_level`` of the dithered LR (what ``classsr video`` reads on a GIF's first frame), and PSNR-Y
against the HR (border = scale) of bicubic and of each model, means over the photos.

    PYTHONPATH=scripts python scripts/dithered_gif.py --json docs/results/fiftyeighth/dithered_gif_x4.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from report import emit  # scripts/

from classsr_cli import zoo
from classsr_cli.degrade import bicubic_resize, load_rgb, make_pair
from classsr_cli.io.files import images_in
from classsr_cli.metrics import noise_level, psnr
from classsr_cli.pipeline import Upscaler


def dithered(lr: np.ndarray) -> np.ndarray:
    """``lr`` in 256 colours, as a GIF holds it."""
    return np.asarray(Image.fromarray(lr).quantize(256, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", type=Path,
                    default=[Path("../shared/data/train/T91"), Path("../shared/data/train/BSD200")])
    ap.add_argument("--models", nargs="+",
                    default=["classsr_residual_x4", "classsr_residual_jpeg_x4", "classsr_residual_noisy_x4"])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--thresholds", nargs="+", type=float, default=[1.0, 4.0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ups = {m: Upscaler(zoo.load(m, args.scale).net, model_path=zoo.choose_model(m, args.scale)) for m in args.models}
    files = [f for d in args.train for f in images_in(d)]
    scores: dict[str, list[float]] = {"bicubic": [], **{m: [] for m in ups}}
    levels = []
    for f in files:
        hr, lr = make_pair(load_rgb(f), args.scale)
        gif = dithered(lr)
        levels.append(noise_level(gif))
        scores["bicubic"].append(psnr(bicubic_resize(gif, *hr.shape[:2]), hr, args.scale, y_channel=True))
        for m, up in ups.items():
            scores[m].append(psnr(up.upscale_array(gif).pixels, hr, args.scale, y_channel=True))
    v = np.asarray(levels)
    emit({"scale": args.scale, "photos": len(files), "threads": args.threads,
          "noise_level": {"median": float(np.median(v)), "p10": float(np.quantile(v, 0.1)),
                          "p90": float(np.quantile(v, 0.9)),
                          "share_at_or_above": {f"{t:g}": float((v >= t).mean()) for t in args.thresholds}},
          "psnr_y": {k: float(np.mean(s)) for k, s in scores.items()}}, args.json)


if __name__ == "__main__":
    main()
