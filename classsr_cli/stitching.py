"""Stitcher: blend HR patch outputs back into one frame, in float, before any quantisation. Pure functions.

Overlaps are blended with a normalised weight window: ``out = fold(w * patches) / fold(w)``. Because the
weights are normalised per pixel, a pointwise branch gives exactly the whole-frame result whatever the window.
``feather`` ramps the weights linearly across the overlap so that neighbouring patches from different branches
fade into one another; ``average`` is the paper's uniform mean.

``crop`` blends nothing: the overlap is split between neighbours (``overlap // 2`` LR pixels to the earlier
patch's side, the rest to the later one's) and every patch contributes only its central ``step x step`` region
(plus its outer margin at the frame border), copied into place through strided views: no ``fold``, no division.
With a halo of at least the branch's receptive radius on both sides (FSRCNN x4, m = 4: 7 LR pixels, so
``overlap >= 14``) it equals the branch on the whole frame, except within that radius of the right and bottom
border, where the tiler pads by reflection; with a pointwise branch it is bit-exact at any overlap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from classsr_cli.tiling import TileGrid

__all__ = ["BLEND_MODES", "blend_window", "stitch"]

BLEND_MODES = ("feather", "average", "crop")


def blend_window(size: int, overlap: int, mode: str = "feather", *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(size, size)`` weights for one HR patch whose neighbours overlap it by ``overlap`` HR pixels."""
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    if mode == "crop":
        raise ValueError("crop stitching uses no blend window")
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
    if mode not in BLEND_MODES:
        raise ValueError(f"blend mode must be one of {BLEND_MODES}, got {mode!r}")
    if mode == "crop":
        return _stitch_crop(patches, grid, scale)
    w = blend_window(size, grid.overlap * scale, mode).to(device=patches.device, dtype=patches.dtype)
    out_size = (grid.padded_height * scale, grid.padded_width * scale)
    stride = grid.step * scale
    cols = (patches * w).reshape(n, c * size * size).t().unsqueeze(0)
    acc = F.fold(cols, out_size, kernel_size=size, stride=stride)
    norm = F.fold(w.reshape(1, size * size, 1).expand(1, size * size, n), out_size, kernel_size=size, stride=stride)
    out = acc / norm
    return out[..., : grid.height * scale, : grid.width * scale]


def _bands(count: int, lo: int, step: int, size: int) -> list[tuple[slice, slice, int, int]]:
    """Along one axis: ``(patch index slice, local slice, output start, output length per patch)`` of the three
    bands of a crop stitch: the border margin of the first patch, the central ``step`` of every patch, and the
    far margin of the last patch."""
    bands = []
    if lo > 0:
        bands.append((slice(0, 1), slice(0, lo), 0, lo))
    bands.append((slice(0, count), slice(lo, lo + step), lo, step))
    tail = size - lo - step
    if tail > 0:
        bands.append((slice(count - 1, count), slice(lo + step, size), (count - 1) * step + lo + step, tail))
    return bands


def _stitch_crop(patches: torch.Tensor, grid: TileGrid, scale: int) -> torch.Tensor:
    c, size = patches.shape[1], patches.shape[2]
    step = grid.step * scale
    lo = (grid.overlap // 2) * scale
    out = patches.new_empty((1, c, grid.padded_height * scale, grid.padded_width * scale))
    tiles = patches.view(grid.rows, grid.cols, c, size, size)
    for rows, ys, oy, hy in _bands(grid.rows, lo, step, size):
        nr = rows.stop - rows.start
        for cols, xs, ox, hx in _bands(grid.cols, lo, step, size):
            nc = cols.stop - cols.start
            src = tiles[rows, cols, :, ys, xs]  # (nr, nc, c, hy, hx)
            dst = out[0, :, oy : oy + nr * hy, ox : ox + nc * hx].unflatten(2, (nc, hx)).unflatten(1, (nr, hy))
            dst.copy_(src.permute(2, 0, 3, 1, 4))  # dst: (c, nr, hy, nc, hx)
    return out[..., : grid.height * scale, : grid.width * scale]
