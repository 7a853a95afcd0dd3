"""The class map: an upscaled image tinted per patch by the class that served it, with a legend strip.

Green = light, yellow = medium, red = heavy. Patches overlap (step < patch), so each LR pixel is coloured by
the patch whose grid cell (``step`` x ``step`` from its origin) contains it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CLASS_COLOURS", "render_classmap"]

#: RGB tint of each class, light to heavy.
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = ((40, 200, 70), (240, 200, 30), (225, 45, 45))
_TINT = 0.45


def render_classmap(
    rgb: np.ndarray,
    classes: np.ndarray,
    step: int,
    lr_size: tuple[int, int],
    names: tuple[str, ...] = ("light", "medium", "heavy"),
) -> np.ndarray:
    """Tint ``rgb`` (``(H, W, 3)`` uint8, the output image) by ``classes`` (``(rows, cols)`` class indices on
    an LR grid of ``step`` over an LR frame of ``lr_size`` = ``(height, width)``), and add a legend strip
    below with each class's share of the patches.

    Returns ``(H + legend, W, 3)`` uint8.
    """
    h, w = rgb.shape[:2]
    rows, cols = classes.shape
    lr_h, lr_w = lr_size
    # Output pixel -> LR coordinate -> grid cell, along each axis.
    ys = np.minimum(((np.arange(h) + 0.5) * lr_h / h) // step, rows - 1).astype(np.int64)
    xs = np.minimum(((np.arange(w) + 0.5) * lr_w / w) // step, cols - 1).astype(np.int64)
    palette = np.asarray(CLASS_COLOURS, dtype=np.float32)
    tint = palette[classes[ys[:, None], xs[None, :]]]
    out = np.clip(rgb.astype(np.float32) * (1 - _TINT) + tint * _TINT, 0, 255).round().astype(np.uint8)
    return np.concatenate([out, _legend(w, classes, names)], axis=0)


def _legend(width: int, classes: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    counts = np.bincount(classes.ravel(), minlength=3)
    total = max(int(counts.sum()), 1)
    height = max(18, min(48, width // 24))
    strip = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(strip)
    font = _font(int(height * 0.6))
    x, pad = height // 4, height // 4
    for k, name in enumerate(names[:3]):
        draw.rectangle((x, pad, x + height - 2 * pad, height - pad), fill=CLASS_COLOURS[k])
        x += height - pad
        label = f"{name} {100 * counts[k] / total:.0f}%"
        draw.text((x, height // 2), label, fill=(235, 235, 235), font=font, anchor="lm")
        x += int(draw.textlength(label, font=font)) + height
    return np.asarray(strip)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()
