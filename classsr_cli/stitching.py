"""Stitcher: blend HR patch outputs back into one frame, in float, before any quantisation. Pure functions.

Overlaps are blended with a normalised weight window: ``out = fold(w * patches) / fold(w)``. Because the
weights are normalised per pixel, a pointwise branch gives exactly the whole-frame result whatever the window.
``feather`` ramps the weights linearly across the overlap so that neighbouring patches from different branches
fade into one another; ``average`` is the paper's uniform mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from classsr_cli.tiling import TileGrid

__all__ = ["BLEND_MODES", "blend_window", "stitch"]

BLEND_MODES = ("feather", "average")


def blend_window(size: int, overlap: int, mode: str = "feather", *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(size, size)`` weights for one HR patch whose neighbours overlap it by ``overlap`` HR pixels."""
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    if mode == "average" or overlap <= 0:
        return torch.ones(size, size, dtype=dtype)
    i = torch.arange(size, dtype=torch.float64) + 0.5
    ramp = torch.clamp(torch.minimum(i, size - i) / overlap, max=1.0)
    return torch.outer(ramp, ramp).to(dtype)


def stitch(patches: torch.Tensor, grid: TileGrid, scale: int, mode: str = "feather") -> torch.Tensor:
    """Blend ``(grid.count, C, s*p, s*p)`` HR patches into ``(1, C, s*H, s*W)``."""
    n, c, ph, pw = patches.shape
    size = grid.patch * scale
    if n != grid.count or ph != size or pw != size:
        raise ValueError(f"expected ({grid.count}, C, {size}, {size}) patches, got {tuple(patches.shape)}")
    w = blend_window(size, grid.overlap * scale, mode).to(device=patches.device, dtype=patches.dtype)
    out_size = (grid.padded_height * scale, grid.padded_width * scale)
    stride = grid.step * scale
    cols = (patches * w).reshape(n, c * size * size).t().unsqueeze(0)
    acc = F.fold(cols, out_size, kernel_size=size, stride=stride)
    norm = F.fold(w.reshape(1, size * size, 1).expand(1, size * size, n), out_size, kernel_size=size, stride=stride)
    out = acc / norm
    return out[..., : grid.height * scale, : grid.width * scale]
