"""Tiler: cut an LR frame into overlapping square patches on a regular grid. Pure functions, no model.

The frame is padded on the right and bottom (reflect where possible, else replicate) so that the grid
``0, step, 2*step, ...`` ends exactly on the padded border. The whole frame is covered, remainder included,
and frames smaller than a patch work too. The stitcher crops the padding off again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["TileGrid", "extract_patches", "pad_to_grid", "plan_grid"]


@dataclass(frozen=True)
class TileGrid:
    """Where the patches of one frame lie (LR pixels).

    Attributes:
        height, width: the frame's size before padding.
        patch: patch side.
        step: distance between neighbouring patch origins (``patch - step`` is the overlap).
        rows, cols: patches along each axis; patch ``i`` sits at row ``i // cols``, column ``i % cols``.
    """

    height: int
    width: int
    patch: int
    step: int
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def padded_height(self) -> int:
        return (self.rows - 1) * self.step + self.patch

    @property
    def padded_width(self) -> int:
        return (self.cols - 1) * self.step + self.patch

    @property
    def overlap(self) -> int:
        return self.patch - self.step

    def origins(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ys, xs)``: top-left corner of every patch, each ``(count,)`` int64, row-major."""
        ys = torch.arange(self.rows) * self.step
        xs = torch.arange(self.cols) * self.step
        return ys.repeat_interleave(self.cols), xs.repeat(self.rows)


def _steps(length: int, patch: int, step: int) -> int:
    return 1 + max(0, math.ceil((length - patch) / step))


def plan_grid(height: int, width: int, patch: int = 32, step: int = 28) -> TileGrid:
    """Plan the patch grid of a ``height`` x ``width`` frame."""
    if height < 1 or width < 1:
        raise ValueError(f"frame must be at least 1x1, got {height}x{width}")
    if not 1 <= step <= patch:
        raise ValueError(f"step must be in 1..patch ({patch}), got {step}")
    return TileGrid(height, width, patch, step, _steps(height, patch, step), _steps(width, patch, step))


def pad_to_grid(frame: torch.Tensor, grid: TileGrid) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` on the right/bottom to the grid's padded size."""
    pad_h = grid.padded_height - frame.shape[-2]
    pad_w = grid.padded_width - frame.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return frame
    # Reflect needs pad < size; fall back to replicate for tiny frames, where reflect is undefined.
    while pad_h or pad_w:
        ph = min(pad_h, frame.shape[-2] - 1)
        pw = min(pad_w, frame.shape[-1] - 1)
        if ph <= 0 and pw <= 0:
            return F.pad(frame, (0, pad_w, 0, pad_h), mode="replicate")
        frame = F.pad(frame, (0, max(pw, 0), 0, max(ph, 0)), mode="reflect")
        pad_h -= max(ph, 0)
        pad_w -= max(pw, 0)
    return frame


def extract_patches(frame: torch.Tensor, grid: TileGrid) -> torch.Tensor:
    """Cut ``(1, C, H, W)`` (or ``(C, H, W)``) into ``(grid.count, C, patch, patch)`` patches, row-major.

    Vectorised with ``unfold``; no Python loop over patches.
    """
    if frame.dim() == 3:
        frame = frame.unsqueeze(0)
    if frame.dim() != 4 or frame.shape[0] != 1:
        raise ValueError(f"expected a (1, C, H, W) frame, got {tuple(frame.shape)}")
    if (frame.shape[-2], frame.shape[-1]) != (grid.height, grid.width):
        raise ValueError(f"frame is {frame.shape[-2]}x{frame.shape[-1]}, grid is for {grid.height}x{grid.width}")
    padded = pad_to_grid(frame, grid)
    c, p = padded.shape[1], grid.patch
    cols = F.unfold(padded, kernel_size=p, stride=grid.step)  # (1, C*p*p, L)
    return cols.transpose(1, 2).reshape(grid.count, c, p, p)
