"""How LR images are made from HR ones: the same function in training, bench and tests.

``mod_crop`` crops an HR image to a multiple of the scale; ``bicubic_downscale`` makes the LR image by
antialiased bicubic (Pillow's BICUBIC, a = -0.5 with the kernel widened by the scale factor, which is what
MATLAB's ``imresize`` does in the interior; at the outer one or two LR pixels the two differ, Pillow renormalising
the kernel where MATLAB mirrors the image), computed in float per channel and rounded once to uint8.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["bicubic_downscale", "bicubic_resize", "load_rgb", "make_pair", "mod_crop"]


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (grayscale and palette images are converted)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W, ...)`` to the largest multiple of ``scale`` in each dimension (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bicubic resize of ``(H, W, C)`` uint8 to ``(height, width, C)`` uint8."""
    import numpy as np
    from PIL import Image

    chans = [
        np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize((width, height), Image.Resampling.BICUBIC))
        for c in range(img.shape[2])
    ]
    return np.clip(np.rint(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR of a mod-cropped HR image: bicubic ÷``scale``."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR image {w}x{h} is not mod-cropped to scale {scale}")
    return bicubic_resize(hr, h // scale, w // scale)


def make_pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hr_mod_cropped, lr)`` for ``scale``."""
    hr = mod_crop(hr, scale)
    return hr, bicubic_downscale(hr, scale)
