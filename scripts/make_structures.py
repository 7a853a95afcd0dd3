"""Synthetic photos of regular man-made structure (window grids, bricks, tiles, gratings, text-like strokes):
the content the training photos (T91, BSD200: mostly nature) lack and everyday photos of buildings, fabric and
print hold. Deterministic (``--seed``); written as PNG for ``classsr train prepare --hr``.

    python scripts/make_structures.py --out runs/structures/hr --count 60
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def _warp(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pattern coordinates of every pixel: rotated, sheared and with a mild perspective."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x - w / 2, y - h / 2
    a = rng.uniform(-0.6, 0.6) if rng.random() < 0.7 else rng.uniform(-math.pi, math.pi)
    u = math.cos(a) * x + math.sin(a) * y
    v = -math.sin(a) * x + math.cos(a) * y
    u = u + rng.uniform(-0.3, 0.3) * v
    p = rng.uniform(-0.0015, 0.0015)
    d = 1 + p * v
    return u / d, v / d


def _pattern(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(h, w)`` pattern in [0, 1]."""
    u, v = _warp(h, w, rng)
    kind = rng.integers(5)
    px, py = rng.uniform(4, 36), rng.uniform(4, 36)
    if kind == 0:  # window grid: rectangles with frames
        fx, fy = rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45)
        return ((np.mod(u, px) / px > fx) & (np.mod(v, py) / py > fy)).astype(np.float64)
    if kind == 1:  # bricks: rows offset by half a brick, mortar lines
        row = np.floor(v / py)
        uu = u + (np.mod(row, 2) * px / 2)
        m = rng.uniform(0.06, 0.2)
        return 1.0 - ((np.mod(uu, px) / px < m) | (np.mod(v, py) / py < m)).astype(np.float64)
    if kind == 2:  # grating, sine or square
        g = np.sin(2 * math.pi * u / px)
        return (g > 0).astype(np.float64) if rng.random() < 0.5 else 0.5 + 0.5 * g
    if kind == 3:  # checkerboard
        return (np.mod(np.floor(u / px) + np.floor(v / px), 2)).astype(np.float64)
    # text-like: lines of short dark strokes of random lengths
    line = np.floor(v / py)
    in_line = np.mod(v, py) / py < rng.uniform(0.3, 0.6)
    cell = np.floor(u / rng.uniform(2, 8))
    ink = (np.sin(cell * 12.9898 + line * 78.233) * 43758.5453) % 1.0 < rng.uniform(0.3, 0.6)
    return 1.0 - (in_line & ink).astype(np.float64)


def make(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A photo of 1-4 patterned regions, some flat ground, colours, a little blur and noise."""
    img = np.empty((h, w, 3))
    img[:] = rng.uniform(0, 1, 3)
    for _ in range(rng.integers(1, 5)):
        y0, x0 = rng.integers(0, h // 2), rng.integers(0, w // 2)
        y1, x1 = rng.integers(y0 + h // 4, h + 1), rng.integers(x0 + w // 4, w + 1)
        pat = _pattern(y1 - y0, x1 - x0, rng)[..., None]
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        shade = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), y1 - y0)[:, None, None]
        img[y0:y1, x0:x1] = (a + (b - a) * pat) * shade
    out = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    arr = np.asarray(out).astype(np.float64) + rng.normal(0, rng.uniform(0, 3), (h, w, 3))
    return np.clip(arr, 0, 255).round().astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--size", default="320x480", help="HEIGHTxWIDTH")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        rng = np.random.default_rng([args.seed, i])
        Image.fromarray(make(h, w, rng)).save(args.out / f"structure_{i:03d}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
