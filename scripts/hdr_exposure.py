"""What reading light above 1.0 a few stops darker buys (``classsr_cli.io.exr.WITHIN``): photos made into scene-linear
light two and four stops over their exposure, as an HDR capture holds it, upscaled ×4 by the default model through
classsr's own split (:func:`classsr_cli.io.exr.split`, :func:`~classsr_cli.io.exr.linear_rows`) at the stops it picks
and at none (the light within 0-1 through the model, the rest by bicubic), against bicubic in linear light.

HR: each photo's light (sRGB's curve decoded) times 4 or 16; LR: Pillow's bicubic ÷4 in linear light. PSNR over RGB,
border 4, of three renderings of the light: ``photo`` (sRGB's curve of the light at the photo's own exposure, clipped),
``scene`` (of the light as it is, clipped at 1: what an SDR output shows), ``log`` (log2 over ten stops below 1 and
the stops above, up to the gain). Prints one JSON line an image and condition, then the means.

    python scripts/hdr_exposure.py examples/lighthouse.jpg examples/bridge.png ../shared/data/train/BSD200/*.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def resize(light: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(light[..., c]), "F").resize(
        size, Image.Resampling.BICUBIC)) for c in range(light.shape[2])], axis=-1)  # fmt: skip


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0, border: int = 4) -> float:
    a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(10 * math.log10(peak**2 / np.mean((a - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--gains", nargs="+", type=float, default=[4.0, 16.0])
    ap.add_argument("--limit", type=int, default=10, help="the first N images")
    args = ap.parse_args()
    import torch

    from classsr_cli import zoo
    from classsr_cli.io import exr
    from classsr_cli.io.icc import srgb_decode, srgb_encode
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.runtime import resolve_device

    torch.set_num_threads(2)
    upscaler = Upscaler.of(zoo.load(None, 4, device=resolve_device("cpu")))
    sums: dict[str, list[float]] = {}
    for path in args.images[: args.limit]:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
        for gain in args.gains:
            hr = (srgb_decode(rgb[:h, :w] / 255.0) * gain).astype(np.float32)
            lr = resize(hr, (w // 4, h // 4))
            outs, stops = {"bicubic": resize(lr, (w, h))}, {}
            for arm, within in (("picked", exr.WITHIN), ("none", None)):
                pixels, _, linear, _ = exr.split(lr.copy(), None, half=False, within=within)
                sr = upscaler.upscale_array(pixels).pixels
                outs[arm] = exr.linear_rows(sr, None, linear.resized(w, h), 0, half=False)
                stops[arm] = linear.stops
            tones = {"photo": lambda x, g=gain: srgb_encode(np.clip(x / g, 0, 1)),
                     "scene": lambda x: srgb_encode(np.clip(x, 0, 1)),
                     "log": lambda x, g=gain: (np.log2(np.clip(x, 2.0**-10, g)) + 10) / (10 + math.log2(g))}  # fmt: skip
            record: dict[str, object] = {"image": path.name, "gain": gain, "stops": stops["picked"]}
            for arm, out in outs.items():
                for tone, f in tones.items():
                    value = round(psnr(f(out), f(hr)), 3)
                    record[f"{arm}_{tone}"] = value
                    sums.setdefault(f"x{gain:g}_{arm}_{tone}", []).append(value)
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
    means = {k: round(float(np.mean(v)), 3) for k, v in sums.items()}
    sys.stdout.write(json.dumps({"mean": means, "images": len(args.images[: args.limit])}) + "\n")


if __name__ == "__main__":
    main()
