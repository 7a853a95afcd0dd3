"""The class map: an upscaled image tinted per patch by the class that served it, with a legend strip.

Green = light, yellow = medium, red = heavy. Patches overlap (step < patch), so each LR pixel is coloured by
the patch whose grid cell (``step`` x ``step`` from its origin) contains it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from classsr_cli.config import CLASS_COLOURS, CLASS_NAMES
from classsr_cli.io.image import to_8bit

__all__ = ["render_classmap", "tint"]

_TINT = 0.45


def tint(
    rows: np.ndarray, classes: np.ndarray, step: int, lr_size: tuple[int, int], out_height: int, y0: int = 0
) -> np.ndarray:
    """Tint output rows ``y0 .. y0 + n`` (``rows``: ``(n, W, 3)`` uint8 or uint16 of an output ``out_height`` high) by
    ``classes`` (``(rows, cols)`` class indices on an LR grid of ``step`` over an LR frame of ``lr_size`` =
    ``(height, width)``): each pixel takes the colour of the patch whose grid cell holds its LR position."""
    rows = to_8bit(rows) if rows.dtype == np.uint16 else rows
    n, w = rows.shape[:2]
    grid_rows, grid_cols = classes.shape
    lr_h, lr_w = lr_size
    ys = np.minimum(((np.arange(y0, y0 + n) + 0.5) * lr_h / out_height) // step, grid_rows - 1).astype(np.int64)
    xs = np.minimum(((np.arange(w) + 0.5) * lr_w / w) // step, grid_cols - 1).astype(np.int64)
    palette = np.asarray(CLASS_COLOURS, dtype=np.float32)
    colour = palette[classes[ys[:, None], xs[None, :]]]
    return np.clip(rows.astype(np.float32) * (1 - _TINT) + colour * _TINT, 0, 255).round().astype(np.uint8)


def render_classmap(
    rgb: np.ndarray,
    classes: np.ndarray,
    step: int,
    lr_size: tuple[int, int],
    names: tuple[str, ...] = CLASS_NAMES,
    crop: int = 0,
) -> np.ndarray:
    """Tint ``rgb`` (``(H, W, 3)`` uint8, the output image) by ``classes`` (see :func:`tint`), take ``crop`` pixels
    off each side (a cube map face's grown border), and add a legend strip below with each class's share of the
    patches.

    Returns ``(H - 2 crop + legend, W - 2 crop, 3)`` uint8.
    """
    out = tint(rgb, classes, step, lr_size, rgb.shape[0])
    out = out[crop:out.shape[0] - crop, crop:out.shape[1] - crop] if crop else out
    return np.concatenate([out, _legend(out.shape[1], classes, names)], axis=0)


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
