"""The routed upscaling engine: tile -> classify -> per-class batched branches -> stitch.

Knows nothing about files, rich or the CLI; progress is reported through an optional callback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from classsr_cli.flops import FlopsReport, flops_report
from classsr_cli.models.classsr import ClassSR
from classsr_cli.stitching import stitch
from classsr_cli.tiling import TileGrid, extract_patches, plan_grid

__all__ = ["DEFAULT_STEP", "RouteResult", "upscale_tensor"]

DEFAULT_STEP = 28

Progress = Callable[[int, int], None]


@dataclass
class RouteResult:
    """What one routed run did.

    Attributes:
        grid: the patch grid.
        classes: ``(rows, cols)`` class index of every patch (CPU, int64).
        flops: FLOPs used against heavy-only on the same patches and heavy on the whole frame (real convention).
        flops_paper: the same in the paper's per-patch convention.
    """

    grid: TileGrid
    classes: torch.Tensor
    flops: FlopsReport
    flops_paper: FlopsReport

    @property
    def counts(self) -> tuple[int, int, int]:
        c = torch.bincount(self.classes.flatten(), minlength=3).tolist()
        return (int(c[0]), int(c[1]), int(c[2]))


def upscale_tensor(
    model: ClassSR,
    lr: torch.Tensor,
    *,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    force_branch: int | None = None,
    blend: str = "feather",
    progress: Progress | None = None,
) -> tuple[torch.Tensor, RouteResult]:
    """Upscale one LR frame ``(1, 3, H, W)`` (float in ``[0, 1]``, on the model's device and dtype).

    Returns ``(sr, result)`` with ``sr`` of shape ``(1, 3, s*H, s*W)``, float and not clamped.
    """
    if lr.dim() != 4 or lr.shape[0] != 1 or lr.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(lr.shape)}")
    grid = plan_grid(lr.shape[2], lr.shape[3], model.cfg.patch, step)
    patches = extract_patches(lr, grid)
    with torch.inference_mode():
        out, classes = model.forward_routed(
            patches, batch_size=batch_size, force_branch=force_branch, progress=progress
        )
        sr = stitch(out, grid, model.cfg.scale, blend)
    classes_cpu = classes.cpu()
    counts = tuple(int(c) for c in torch.bincount(classes_cpu, minlength=3).tolist())
    pixels = grid.height * grid.width
    classified = force_branch is None
    return sr, RouteResult(
        grid=grid,
        classes=classes_cpu.reshape(grid.rows, grid.cols),
        flops=flops_report(model, counts, pixels, "real", classified=classified),  # type: ignore[arg-type]
        flops_paper=flops_report(model, counts, pixels, "paper", classified=classified),  # type: ignore[arg-type]
    )
