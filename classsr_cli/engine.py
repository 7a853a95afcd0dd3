"""The routed upscaling engine: tile -> classify -> per-class batched branches -> stitch.

Knows nothing about files, rich or the CLI; progress is reported through an optional callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from classsr_cli.flops import FlopsReport, flops_report
from classsr_cli.models.classsr import ClassSR
from classsr_cli.stitching import CropCanvas, stitch
from classsr_cli.tiling import TileGrid, extract_patches, pad_to_grid, plan_grid

__all__ = ["BAND_PATCHES", "DEFAULT_BLEND", "DEFAULT_STEP", "RouteResult", "upscale_banded", "upscale_tensor"]

DEFAULT_STEP = 28

#: Stitch mode (:data:`classsr_cli.stitching.BLEND_MODES`). ``crop`` (halo) copies each patch's share into the
#: frame: on SunHays80/B100 it is as close to whole-image output as ``feather`` or closer, at a fraction of the
#: cost (CHANGELOG, issue 6).
DEFAULT_BLEND = "crop"

#: Patches per band in :func:`upscale_banded` (about 0.6 MB of float32 working memory each at x4).
BAND_PATCHES = 512

Progress = Callable[[int, int], None]
#: Receives ``(y, rows)``: HR output rows ``y .. y + rows.shape[2]`` as ``(1, 3, n, s*W)``, top to bottom.
Sink = Callable[[int, torch.Tensor], None]


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
    blend: str = DEFAULT_BLEND,
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
        if blend == "crop":  # each branch chunk goes straight into the frame: no buffer of all HR patches
            canvas = CropCanvas(grid, model.cfg.scale, patches)
            _, classes = model.forward_routed(
                patches, batch_size=batch_size, force_branch=force_branch, progress=progress, emit=canvas.put
            )
            sr = canvas.image()
        else:
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


def upscale_banded(
    model: ClassSR,
    lr: torch.Tensor,
    sink: Sink,
    *,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    force_branch: int | None = None,
    blend: str = DEFAULT_BLEND,
    progress: Progress | None = None,
    band_patches: int = BAND_PATCHES,
    band_rows: int | None = None,
) -> RouteResult:
    """:func:`upscale_tensor` in horizontal bands of patch rows, for frames too large to hold whole at HR.

    Each band is routed and stitched on its own and its finished HR rows go to ``sink`` (top to bottom, each
    row exactly once), so working memory is a few bands (about ``band_patches`` patches each, or ``band_rows``
    patch rows) whatever the frame's height. A row is finished when every patch covering it is in the band;
    the patch rows shared with the next band are carried over (computed once), so every output pixel blends
    exactly the patches the whole-frame stitch blends and the result is the same.
    """
    if lr.dim() != 4 or lr.shape[0] != 1 or lr.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(lr.shape)}")
    grid = plan_grid(lr.shape[2], lr.shape[3], model.cfg.patch, step)
    s, p, cols = model.cfg.scale, grid.patch, grid.cols
    carry = math.ceil(p / step) - 1  # patch rows that also cover the first rows the next band finishes
    per_band = max(carry + 1, band_rows or math.ceil(band_patches / cols))
    classes = torch.empty(grid.count, dtype=torch.long)
    with torch.inference_mode():
        padded = pad_to_grid(lr, grid)
        kept: torch.Tensor | None = None  # HR outputs of the carried patch rows
        r0 = new = done_rows = 0  # first patch row of the band, first not yet computed, LR rows emitted
        while True:
            r1 = min(grid.rows, r0 + per_band)
            strip = padded[:, :, new * step : (r1 - 1) * step + p]
            patches = F.unfold(strip, kernel_size=p, stride=step).transpose(1, 2).reshape(-1, 3, p, p)
            offset = new * cols

            def band_progress(n: int, _total: int, offset: int = offset) -> None:
                if progress is not None:
                    progress(offset + n, grid.count)

            out, cls = model.forward_routed(
                patches, batch_size=batch_size, force_branch=force_branch, progress=band_progress
            )
            classes[offset : offset + cls.numel()] = cls.cpu()
            if kept is not None:
                out = torch.cat([kept, out])
            sub = TileGrid((r1 - r0 - 1) * step + p, grid.width, p, step, r1 - r0, cols)
            band = stitch(out, sub, s, blend)
            end = grid.height if r1 == grid.rows else r1 * step  # rows below r1*step need patch row r1
            sink(done_rows * s, band[:, :, (done_rows - r0 * step) * s : (end - r0 * step) * s])
            done_rows = end
            if r1 == grid.rows:
                break
            kept = out[(r1 - r0 - carry) * cols :].clone() if carry else None  # not a view: frees the band
            r0, new = r1 - carry, r1
            del out, band, patches
    return _route_result(model, grid, classes, force_branch)


def _route_result(model: ClassSR, grid: TileGrid, classes: torch.Tensor, force_branch: int | None) -> RouteResult:
    counts = tuple(int(c) for c in torch.bincount(classes, minlength=3).tolist())
    pixels = grid.height * grid.width
    classified = force_branch is None
    return RouteResult(
        grid=grid,
        classes=classes.reshape(grid.rows, grid.cols),
        flops=flops_report(model, counts, pixels, "real", classified=classified),  # type: ignore[arg-type]
        flops_paper=flops_report(model, counts, pixels, "paper", classified=classified),  # type: ignore[arg-type]
    )
