"""Cell execution: the fast path for models whose branches are all bicubic + residual (the residual family).

Every branch of such a model is the same fixed bicubic upsampler plus a residual CNN of its own width (0 for the
light branch: plain bicubic). So a routed frame is computed as

1. the classifier once over the frame (:meth:`Classifier.grid_scores`), one class per ``step`` x ``step`` cell,
   each classified on the ``patch`` x ``patch`` window centred on it;
2. bicubic once over the whole frame, on the LR grid (``3*s*s`` channels, no tiling, no overlap);
3. each class's residual only on its cells, each cell computed with ``halo`` LR pixels of context around it, its
   core written into one LR-grid canvas (a width-0 class costs nothing here);
4. one ``pixel_shuffle`` of bicubic + canvas.

Cells of one class are batched; the frame is replicate-padded once by ``margin`` = max(halo, classifier
margin, bicubic taps) so that no branch sees an artificial border inside the frame. Bands of cell rows give the
same pixels as the whole frame (every cell sees the same context either way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from classsr_cli.engine.flops import FlopsReport, count_flops
from classsr_cli.models.classsr import ClassSR
from classsr_cli.models.residual import BICUBIC_TAPS, ResidualSR

__all__ = ["CellPlan", "cell_flops", "classify_cells", "is_cellular", "plan_cells", "run_cells"]


def is_cellular(model: ClassSR) -> bool:
    """Whether every branch of ``model`` is bicubic + residual (cell execution applies)."""
    return all(isinstance(b, ResidualSR) for b in model.branches)


@dataclass(frozen=True)
class CellPlan:
    """The cells of one frame.

    Attributes:
        height, width: the LR frame.
        step: cell side (LR pixels); cell ``(r, c)`` is rows ``r*step .. r*step+step-1`` (columns alike).
        rows, cols: cells along each axis (the last ones may stick out of the frame).
        patch: classifier window, centred on its cell.
        halo: LR pixels of context a branch sees around a cell.
        margin: replicate padding of the frame on every side.
    """

    height: int
    width: int
    step: int
    rows: int
    cols: int
    patch: int
    halo: int
    margin: int

    @property
    def window_margin(self) -> int:
        """How far a classifier window reaches past its cell on each side."""
        return (self.patch - self.step) // 2


def plan_cells(height: int, width: int, *, step: int, patch: int, halo: int) -> CellPlan:
    if step > patch or (patch - step) % 2 or step % 4 or patch % 4:
        raise ValueError(f"cells need a step that is a multiple of 4, at most the patch ({patch}) and differs from "
                         f"it by an even number; got {step}")
    if halo < 0:
        raise ValueError(f"halo must be at least 0, got {halo}")
    margin = max(halo, (patch - step) // 2, BICUBIC_TAPS // 2)
    return CellPlan(height, width, step, -(-height // step), -(-width // step), patch, halo, margin)


def pad_frame(lr: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """The frame replicate-padded by ``margin`` on every side and to whole cells on the right and bottom."""
    m, s = plan.margin, plan.step
    return F.pad(lr, (m, plan.cols * s - plan.width + m, m, plan.rows * s - plan.height + m), mode="replicate")


def band_input(padded: torch.Tensor, plan: CellPlan, r0: int, r1: int) -> torch.Tensor:
    """The padded rows cells ``r0 .. r1-1`` need (their cells plus ``margin`` above and below)."""
    return padded[:, :, r0 * plan.step : r1 * plan.step + 2 * plan.margin]


@torch.no_grad()
def classify_cells(model: ClassSR, band: torch.Tensor, plan: CellPlan, tolerance: float | None = None) -> torch.Tensor:
    """``(rows, cols)`` classes of a band's cells (``band`` from :func:`band_input`), in one classifier pass."""
    off = plan.margin - plan.window_margin
    rows = (band.shape[2] - 2 * plan.margin) // plan.step
    windows = band[:, :, off : off + (rows - 1) * plan.step + plan.patch,
                   off : off + (plan.cols - 1) * plan.step + plan.patch]
    scores = model.classifier.grid_scores(windows.to(_dtype(model)), plan.patch, plan.step)[0]
    return model.decide(scores.reshape(-1, 3), tolerance).view(rows, plan.cols)


@torch.no_grad()
def run_cells(
    branches: Sequence[ResidualSR],
    band: torch.Tensor,
    plan: CellPlan,
    classes: torch.Tensor,
    height: int,
    *,
    batch_size: int = 256,
) -> torch.Tensor:
    """HR rows of a band: ``(1, 3, s*height, s*width)`` for its first ``height`` LR rows (``band`` from
    :func:`band_input`, ``classes`` its ``(rows, cols)`` cells)."""
    m, step, halo = plan.margin, plan.step, plan.halo
    rows, cols = classes.shape
    s = branches[0].scale
    ch = 3 * s * s
    dtype = _branch_dtype(branches) or band.dtype
    band = band.to(dtype)
    core = band[:, :, m - 2 : m + height + 2, m - 2 : m + plan.width + 2]  # bicubic needs 2 pixels around
    if branches[0].channels_last:  # oneDNN's depthwise convolution is ~2x faster channels-last on the CPU
        core = core.contiguous(memory_format=torch.channels_last)
    out = F.conv2d(core, branches[0].bicubic.to(dtype), groups=3)  # (1, 3s², height, width)
    tile = step + 2 * halo
    tiles = band[0, :, m - halo :, m - halo :].unfold(1, tile, step).unfold(2, tile, step)  # (3, rows', cols', t, t)
    canvas: torch.Tensor | None = None
    flat = classes.reshape(-1).to(band.device)
    for k, branch in enumerate(branches):
        if branch.body is None:
            continue
        idx = (flat == k).nonzero(as_tuple=True)[0]
        for chunk in idx.split(batch_size):
            r, c = chunk // cols, chunk % cols
            res = branch.residual(tiles[:, r, c].permute(1, 0, 2, 3))
            assert res is not None
            if canvas is None:
                canvas = out.new_zeros((ch, rows, step, cols, step))
            canvas.permute(1, 3, 0, 2, 4)[r, c] = res[:, :, halo : halo + step, halo : halo + step]
    if canvas is not None:
        out += canvas.view(1, ch, rows * step, cols * step)[:, :, :height, : plan.width]
    return F.pixel_shuffle(out, s)


def cell_flops(
    model: ClassSR, plan: CellPlan, counts: tuple[int, int, int], *, classified: bool, convention: str = "real"
) -> FlopsReport:
    """FLOPs of a cell run as it runs: bicubic on the frame, each class's residual on its cells (cell + halo),
    the classifier over the padded frame; against the heavy branch on the same cells (same tiles) and on the
    whole frame. The residual family has no transposed convolution: both conventions agree."""
    per = _unit_flops(model, plan, convention)
    px = plan.height * plan.width
    clf = 0
    if classified:
        hp, wp = (plan.rows - 1) * plan.step + plan.patch, (plan.cols - 1) * plan.step + plan.patch
        clf = round(per["classifier_px"] * hp * wp) + plan.rows * plan.cols * per["classifier_cell"]
    bicubic = round(per["bicubic_px"] * px)
    res = per["residual"]
    used = bicubic + clf + sum(c * r for c, r in zip(counts, res, strict=True))
    heavy = bicubic + sum(counts) * res[2]
    return FlopsReport(used=int(used), heavy=int(heavy), whole=round(per["heavy_px"] * px))


def _unit_flops(model: ClassSR, plan: CellPlan, convention: str) -> dict:
    """Per-pixel and per-cell FLOPs (convolution FLOPs grow linearly with pixels), cached on the model."""
    key = (convention, plan.step, plan.halo, plan.patch)
    cache = model.__dict__.setdefault("_cell_flops", {})
    if key not in cache:
        light = model.branches[0]
        assert isinstance(light, ResidualSR)
        tile, p = plan.step + 2 * plan.halo, plan.patch
        bicubic_px = 2 * light.bicubic.numel()
        fc = 2 * model.classifier.fc.in_features * model.classifier.fc.out_features
        cache[key] = {
            "bicubic_px": bicubic_px,
            "residual": [count_flops(b, (1, 3, tile, tile), convention) - bicubic_px * tile * tile
                         for b in model.branches],
            "classifier_px": (count_flops(model.classifier, (1, 3, p, p), convention) - fc) / (p * p),
            "classifier_cell": fc,
            "heavy_px": count_flops(model.branches[2], (1, 3, p, p), convention) / (p * p),
        }
    return cache[key]


def _branch_dtype(branches: Sequence[ResidualSR]) -> torch.dtype | None:
    for b in branches:
        for p in b.parameters():
            return p.dtype
    return None


def _dtype(model: ClassSR) -> torch.dtype:
    return next(model.classifier.parameters()).dtype
