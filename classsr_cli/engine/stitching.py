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

from classsr_cli.engine.tiling import TileGrid

__all__ = ["BLEND_MODES", "CropCanvas", "blend_window", "stitch"]

BLEND_MODES = ("feather", "average", "crop")


def blend_window(
    size: int, overlap: int, mode: str = "feather", *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
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
    norm = F.fold(
        w.reshape(1, size * size, 1).expand(1, size * size, n), out_size, kernel_size=size, stride=stride
    )
    out = acc / norm
    return out[..., : grid.height * scale, : grid.width * scale]


def _bands(count: int, lo: int, step: int, size: int) -> list[tuple[int, int, slice, int, int]]:
    """Along one axis, the three bands of a crop stitch as ``(first patch, patches, local slice, output start,
    output length per patch)``: the border margin of the first patch, the central ``step`` of every patch, and
    the far margin of the last patch."""
    bands = []
    if lo > 0:
        bands.append((0, 1, slice(0, lo), 0, lo))
    bands.append((0, count, slice(lo, lo + step), lo, step))
    tail = size - lo - step
    if tail > 0:
        bands.append((count - 1, 1, slice(lo + step, size), (count - 1) * step + lo + step, tail))
    return bands


class CropCanvas:
    """The output frame of a crop stitch, filled as patch outputs arrive (in any order, in any chunks).

    Each patch's share is copied straight into place through strided views of the frame, so a routed run
    needs no ``(N, C, s*p, s*p)`` buffer of all HR patches: every branch chunk goes to :meth:`put` as soon as
    it is computed. After every patch was put once, :meth:`image` is the same as ``stitch(all, grid, scale,
    "crop")``.

    Args:
        grid: the patch grid.
        scale: upscaling factor.
        like: a tensor whose device and dtype the frame takes.
        channels: output channels (default 3).
    """

    def __init__(self, grid: TileGrid, scale: int, like: torch.Tensor, channels: int = 3) -> None:
        self.grid = grid
        self.scale = scale
        self.size = grid.patch * scale
        self.frame = like.new_empty((1, channels, grid.padded_height * scale, grid.padded_width * scale))
        step, lo = grid.step * scale, (grid.overlap // 2) * scale
        self._views = []
        for r0, nr, ys, oy, hy in _bands(grid.rows, lo, step, self.size):
            for c0, nc, xs, ox, hx in _bands(grid.cols, lo, step, self.size):
                region = self.frame[0, :, oy : oy + nr * hy, ox : ox + nc * hx]
                tiles = region.unflatten(2, (nc, hx)).unflatten(1, (nr, hy)).permute(1, 3, 0, 2, 4)
                self._views.append((r0, nr, c0, nc, ys, xs, tiles))  # tiles: (nr, nc, C, hy, hx)

    def put(self, index: torch.Tensor, patches: torch.Tensor) -> None:
        """Copy the shares of ``patches`` ``(n, C, s*p, s*p)``, the HR outputs of the patches numbered ``index``
        (row-major, ``(n,)`` int64 on any device), into the frame."""
        if (
            patches.shape[0] != index.numel()
            or patches.shape[-1] != self.size
            or patches.shape[-2] != self.size
        ):
            raise ValueError(
                f"expected ({index.numel()}, C, {self.size}, {self.size}) patches, got {tuple(patches.shape)}"
            )
        index = index.to(patches.device)
        rows, cols = index // self.grid.cols, index % self.grid.cols
        for r0, nr, c0, nc, ys, xs, tiles in self._views:
            if nr == self.grid.rows and nc == self.grid.cols:
                tiles[rows, cols] = patches[:, :, ys, xs]
                continue
            sel = (rows >= r0) & (rows < r0 + nr) & (cols >= c0) & (cols < c0 + nc)
            which = sel.nonzero().flatten()
            if which.numel():
                tiles[rows[which] - r0, cols[which] - c0] = patches[which][:, :, ys, xs]

    def image(self) -> torch.Tensor:
        """``(1, C, s*H, s*W)``: the frame without the tiler's padding (a view)."""
        return self.frame[..., : self.grid.height * self.scale, : self.grid.width * self.scale]


def _stitch_crop(patches: torch.Tensor, grid: TileGrid, scale: int) -> torch.Tensor:
    canvas = CropCanvas(grid, scale, patches, patches.shape[1])
    canvas.put(torch.arange(patches.shape[0], device=patches.device), patches)
    return canvas.image()
