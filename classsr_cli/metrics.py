"""Image quality metrics with BasicSR's conventions, so numbers compare with papers and BasicSR test logs.

* Inputs are ``(H, W, 3)`` RGB arrays in the 0..255 range (uint8, or float already in that range). An SR
  output should be quantised to uint8 first (:func:`quantize`), as a user would save it.
* ``crop_border`` pixels are removed on every side **before** the Y conversion (BasicSR crops first too;
  for these pointwise conversions the order does not change the value).
* Y is MATLAB's BT.601 luma: ``16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in ``[0, 1]``, giving
  Y in ``[16, 235]``. It is not rounded.
* Everything is computed in float64; the PSNR peak is 255.
* SSIM is Wang et al.'s with MATLAB's constants: an 11x11 Gaussian window with sigma 1.5 (normalised to sum
  1), ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``, local statistics only where the window fits inside
  the image ("valid"), the SSIM map averaged; on RGB the mean over the three channels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import torch

__all__ = ["Y_WEIGHTS", "gaussian_window", "psnr", "quantize", "rgb_to_y", "ssim"]

#: BT.601 luma weights of R, G, B in [0, 1], in 8-bit levels (Y = 16 + these . RGB).
Y_WEIGHTS = (65.481, 128.553, 24.966)
_WINDOW = 11
_SIGMA = 1.5


def quantize(sr: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` or ``(3, H, W)`` float in ``[0, 1]`` -> ``(H, W, 3)`` uint8: clamp, x255, round."""
    import torch

    if sr.dim() == 4:
        if sr.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {sr.shape[0]}")
        sr = sr[0]
    if sr.dim() != 3 or sr.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) image tensor, got {tuple(sr.shape)}")
    q = sr.detach().float().permute(1, 2, 0).mul(255).clamp_(0, 255).round_()
    return torch.empty(q.shape, dtype=torch.uint8, device=q.device).copy_(q).cpu().numpy()


def luma_levels(t: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(B, 3, H, W)`` RGB in [0, 1] as ``(B, H, W)`` in 8-bit levels, without the offset of 16
    (:data:`Y_WEIGHTS`): what differences of :func:`rgb_to_y` are, for tensors (training losses and labels)."""
    import torch

    w = torch.tensor(Y_WEIGHTS, dtype=t.dtype, device=t.device).view(1, 3, 1, 1)
    return (t * w).sum(1)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB in 0..255 -> ``(H, W)`` float64 Y (MATLAB BT.601, range 16..235, not rounded)."""
    import numpy as np

    x = np.asarray(img, dtype=np.float64) / 255.0
    return 16.0 + x @ np.asarray(Y_WEIGHTS, dtype=np.float64)


def _prepare(img: np.ndarray, ref: np.ndarray, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    a = np.asarray(img)
    b = np.asarray(ref)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB images, got shape {a.shape}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        if a.shape[0] <= 2 * crop_border or a.shape[1] <= 2 * crop_border:
            raise ValueError(f"a {a.shape[1]}x{a.shape[0]} image has nothing left after cropping {crop_border} px")
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        return rgb_to_y(a)[..., None], rgb_to_y(b)[..., None]
    return a.astype(np.float64), b.astype(np.float64)


def psnr(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, *, y_channel: bool = False) -> float:
    """PSNR in dB (peak 255) between two ``(H, W, 3)`` RGB images; ``inf`` when they are identical."""
    import numpy as np

    a, b = _prepare(img, ref, crop_border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0 * 255.0 / mse)


def gaussian_window(size: int = _WINDOW, sigma: float = _SIGMA) -> np.ndarray:
    """1-D Gaussian taps of odd ``size``, normalised to sum 1 (MATLAB ``fspecial``, OpenCV ``getGaussianKernel``)."""
    import numpy as np

    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation of ``(H, W)`` with ``outer(g, g)``, only where the window fits (``valid``)."""
    n = g.size
    h, w = x.shape
    rows = sum(g[i] * x[i : h - n + 1 + i] for i in range(n))
    return sum(g[j] * rows[:, j : w - n + 1 + j] for j in range(n))


def _ssim_plane(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    mu_a = _filter_valid(a, g)
    mu_b = _filter_valid(b, g)
    var_a = _filter_valid(a * a, g) - mu_a * mu_a
    var_b = _filter_valid(b * b, g) - mu_b * mu_b
    cov = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def ssim(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, *, y_channel: bool = False) -> float:
    """SSIM between two ``(H, W, 3)`` RGB images (on Y, or the mean over R, G, B)."""
    a, b = _prepare(img, ref, crop_border, y_channel)
    if a.shape[0] < _WINDOW or a.shape[1] < _WINDOW:
        raise ValueError(f"SSIM needs at least {_WINDOW}x{_WINDOW} pixels after cropping, got {a.shape[1]}x{a.shape[0]}")
    g = gaussian_window()
    return sum(_ssim_plane(a[..., c], b[..., c], g) for c in range(a.shape[2])) / a.shape[2]


def noise_level(pixels: np.ndarray, *, block: int = 8, share: float = 0.02, most: int = 1024) -> float:
    """The standard deviation, in 8-bit levels, of the white noise common to the channels of ``pixels`` (``(H, W,
    C)`` uint8 or uint16, C 1 or 3): Immerkær's estimate (1996: the mean absolute response to a 3×3 operator that
    cancels every plane and ramp, times sqrt(π/2)/6) on the channels' mean, in ``block`` × ``block`` blocks, of which
    the ``share`` quantile is taken (the flattest blocks, where texture adds least). Blocks whose mean lies within 16
    levels of black or white (clipped noise) are left out; a picture larger than ``most`` pixels a side is measured
    on its centre. 0 when no block is left. About 0.2 on a clean smooth image (the rounding to 8 bits)."""
    return noise_levels(pixels, (share,), block=block, most=most)[0]


def noise_levels(pixels: np.ndarray, shares: Sequence[float], *, block: int = 8, most: int = 1024) -> list[float]:
    """:func:`noise_level` at each of ``shares``, the blocks measured once."""
    import numpy as np

    h, w = pixels.shape[:2]
    top, left = max(0, (h - most) // 2), max(0, (w - most) // 2)
    x = pixels[top : top + most, left : left + most].astype(np.float32).mean(axis=2)
    if pixels.dtype == np.uint16:
        x /= 257.0
    if min(x.shape) < block + 2:
        return [0.0] * len(shares)
    r = np.abs(x[:-2, :-2] - 2 * x[:-2, 1:-1] + x[:-2, 2:] - 2 * x[1:-1, :-2] + 4 * x[1:-1, 1:-1]
               - 2 * x[1:-1, 2:] + x[2:, :-2] - 2 * x[2:, 1:-1] + x[2:, 2:])
    bh, bw = r.shape[0] // block, r.shape[1] // block
    response = r[: bh * block, : bw * block].reshape(bh, block, bw, block).mean(axis=(1, 3))
    level = x[1 : 1 + bh * block, 1 : 1 + bw * block].reshape(bh, block, bw, block).mean(axis=(1, 3))
    kept = response[(level > 16) & (level < 239)]
    if not kept.size:
        return [0.0] * len(shares)
    return [float(q) * math.sqrt(math.pi / 2) / 6 for q in np.quantile(kept, shares)]
