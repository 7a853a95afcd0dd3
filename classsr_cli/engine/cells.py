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

__all__ = [
    "CellPlan",
    "band_cost",
    "band_rows",
    "cell_flops",
    "classify_cells",
    "is_cellular",
    "plan_blocks",
    "plan_cells",
    "run_band",
    "run_cells",
    "unit_flops",
]


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
        block: cells per side of a block (see :func:`run_cells`); the frame is padded to whole blocks.
    """

    height: int
    width: int
    step: int
    rows: int
    cols: int
    patch: int
    halo: int
    margin: int
    block: int = 1

    @property
    def padded_rows(self) -> int:
        return -(-self.rows // self.block) * self.block

    @property
    def padded_cols(self) -> int:
        return -(-self.cols // self.block) * self.block

    @property
    def window_margin(self) -> int:
        """How far a classifier window reaches past its cell on each side."""
        return (self.patch - self.step) // 2


def plan_cells(height: int, width: int, *, step: int, patch: int, halo: int, block: int = 1) -> CellPlan:
    if step > patch or (patch - step) % 2 or step % 4 or patch % 4:
        raise ValueError(f"cells need a step that is a multiple of 4, at most the patch ({patch}) and differs from "
                         f"it by an even number; got {step}")
    if halo < 0 or block < 1:
        raise ValueError(f"halo must be at least 0 and block at least 1, got {halo} and {block}")
    margin = max(halo, (patch - step) // 2, BICUBIC_TAPS // 2)
    return CellPlan(height, width, step, -(-height // step), -(-width // step), patch, halo, margin, block)


def pad_frame(lr: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """The frame replicate-padded by ``margin`` on every side and to whole blocks on the right and bottom."""
    m, s = plan.margin, plan.step
    return F.pad(lr, (m, plan.padded_cols * s - plan.width + m, m, plan.padded_rows * s - plan.height + m),
                 mode="replicate")


def band_input(padded: torch.Tensor, plan: CellPlan, r0: int, r1: int) -> torch.Tensor:
    """The padded rows cells ``r0 .. r1-1`` need (their cells plus ``margin`` above and below)."""
    return padded[:, :, r0 * plan.step : r1 * plan.step + 2 * plan.margin]


@torch.no_grad()
def classify_cells(
    model: ClassSR, band: torch.Tensor, plan: CellPlan, tolerance: float | None = None, first_row: int = 0
) -> torch.Tensor:
    """``(rows, cols)`` classes of a band's cells (``band`` from :func:`band_input`, starting at cell row
    ``first_row``; rows past the frame's cells are left out), in one classifier pass."""
    off = plan.margin - plan.window_margin
    rows = min((band.shape[2] - 2 * plan.margin) // plan.step, plan.rows - first_row)
    windows = band[:, :, off : off + (rows - 1) * plan.step + plan.patch,
                   off : off + (plan.cols - 1) * plan.step + plan.patch]
    return model.classify_windows(windows, plan.step, tolerance)


@torch.no_grad()
def run_cells(
    branches: Sequence[ResidualSR],
    band: torch.Tensor,
    plan: CellPlan,
    classes: torch.Tensor,
    height: int,
    *,
    blocks: torch.Tensor | None = None,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int, int], tuple[int, int, int]]:
    """HR rows of a band, ``(1, 3, s*height, s*width)`` for its first ``height`` LR rows (``band`` from
    :func:`band_input`, ``classes`` its ``(rows, cols)`` cells, a whole number of blocks of rows unless it is the
    frame's last band).

    **Blocks.** ``blocks`` (from :func:`plan_blocks`) gives, per B x B block of cells, the branch that computes
    it as one tile, or -1 for its cells one by one; ``None``: every cell on its own. Cells of a block report the
    branch that ran.

    Returns ``(rows, classes_run, cells_per_branch, blocks_per_branch)`` (cells computed one by one).
    """
    m, step, halo = plan.margin, plan.step, plan.halo
    rows, cols = classes.shape
    s = branches[0].scale
    ch = 3 * s * s
    dtype = _branch_dtype(branches) or band.dtype
    band = band.to(dtype)
    out = _bicubic(branches[0], band, plan, height)
    b = plan.block
    pr, pc = -(-rows // b) * b, plan.padded_cols
    cell_of = _cells_of(classes.to(band.device), plan)
    canvas: torch.Tensor | None = None

    def cells_canvas() -> torch.Tensor:
        nonlocal canvas
        if canvas is None:
            canvas = out.new_zeros((ch, pr * step, pc * step))
        return canvas

    counts = [0, 0, 0]
    if blocks is not None:
        tile = b * step + 2 * halo
        tiles = band[0, :, m - halo :, m - halo :].unfold(1, tile, b * step).unfold(2, tile, b * step)
        nbc = pc // b
        flat = blocks.reshape(-1)
        for k, branch in enumerate(branches):
            idx = (flat == k).nonzero(as_tuple=True)[0]
            counts[k] = int(idx.numel())
            if branch.body is None or not counts[k]:
                continue
            view = cells_canvas().view(ch, pr // b, b * step, nbc, b * step).permute(1, 3, 0, 2, 4)
            for chunk in idx.split(max(1, batch_size // (b * b))):
                br, bc = chunk // nbc, chunk % nbc
                res = branch.residual(tiles[:, br, bc].permute(1, 0, 2, 3))
                assert res is not None
                view[br, bc] = res[:, :, halo : halo + b * step, halo : halo + b * step]
        whole = blocks.repeat_interleave(b, 0).repeat_interleave(b, 1)  # the block decision of every cell
        cell_of = torch.where(whole >= 0, -2 - whole, cell_of)  # -2-k: computed by a block of branch k
    tile = step + 2 * halo
    tiles = band[0, :, m - halo :, m - halo :].unfold(1, tile, step).unfold(2, tile, step)  # (3, rows', cols', t, t)
    flat = cell_of.reshape(-1)
    for k, branch in enumerate(branches):
        if branch.body is None:
            continue
        idx = (flat == k).nonzero(as_tuple=True)[0]
        if not idx.numel():
            continue
        cell_view = cells_canvas().view(ch, pr, step, pc, step).permute(1, 3, 0, 2, 4)
        for chunk in idx.split(batch_size):
            r, c = chunk // pc, chunk % pc
            res = branch.residual(tiles[:, r, c].permute(1, 0, 2, 3))
            assert res is not None
            cell_view[r, c] = res[:, :, halo : halo + step, halo : halo + step]
    if canvas is not None:
        out += canvas[None, :, :height, : plan.width]
    ran = torch.where(cell_of <= -2, -2 - cell_of, cell_of)[:rows, :cols]
    by_cell = torch.bincount(cell_of[:rows, :cols][cell_of[:rows, :cols] >= 0], minlength=3).tolist()
    return (F.pixel_shuffle(out, s), ran, (int(by_cell[0]), int(by_cell[1]), int(by_cell[2])),
            (counts[0], counts[1], counts[2]))


def _cells_of(classes: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """A band's ``(rows, cols)`` classes on its grid padded to whole blocks; -1 marks padding cells."""
    b = plan.block
    cell_of = torch.full((-(-classes.shape[0] // b) * b, plan.padded_cols), -1, dtype=torch.long,
                         device=classes.device)
    cell_of[: classes.shape[0], : classes.shape[1]] = classes
    return cell_of


def plan_blocks(classes: torch.Tensor, plan: CellPlan, costs: Sequence[float]) -> tuple[torch.Tensor, float]:
    """How :func:`run_cells` computes a band's ``(rows, cols)`` cell classes, and what it spends on residuals
    (``costs``: each branch's residual cost per LR pixel; the result in cost x LR pixels, halos included).

    Each B x B block of cells (B = ``plan.block``) goes the cheapest way that gives every cell at least its
    class's branch: cell by cell (each cell with its halo: ``((step + 2*halo) / step)²`` times its area), or as
    one tile of a branch ``j`` at least as heavy as every class in it (``((B*step + 2*halo) / (B*step))²``,
    padding cells included). A busy region is then one large tile instead of many small overlapping ones.
    Returns ``(blocks, cost)``: per block the branch of its tile or -1 (cells), and the total."""
    b, step, halo = plan.block, plan.step, plan.halo
    cell_of = _cells_of(classes, plan)
    pr, pc = cell_of.shape
    grid = cell_of.view(pr // b, b, pc // b, b).permute(0, 2, 1, 3).reshape(pr // b, pc // b, b * b)
    ov_cell = ((step + 2 * halo) / step) ** 2
    ov_block = ((b * step + 2 * halo) / (b * step)) ** 2
    cost = torch.tensor([float(c) for c in costs], device=cell_of.device)
    by_cells = torch.where(grid >= 0, cost[grid.clamp(min=0)], torch.zeros((), device=cell_of.device)).sum(-1) * ov_cell
    top = grid.max(-1).values  # the heaviest class in the block (-1: only padding)
    best = torch.full_like(top, -1)
    best_cost = by_cells
    for j in range(1, len(costs)):
        whole = torch.full_like(by_cells, float(cost[j]) * b * b * ov_block)
        take = (top <= j) & (top >= 0) & (whole < best_cost) & (cost[j] > 0)
        best = torch.where(take, j, best)
        best_cost = torch.where(take, whole, best_cost)
    return best, float(best_cost.sum()) * step * step


def band_rows(plan: CellPlan, y0: int, height: int) -> tuple[int, int]:
    """The LR rows :func:`run_band` computes the residual on: the band's plus ``halo`` inside the frame."""
    return max(0, y0 - plan.halo), min(plan.height, y0 + height + plan.halo)


def band_cost(plan: CellPlan, y0: int, height: int, costs: Sequence[float]) -> float:
    """What :func:`run_band` spends on the heavy residual for a band, in :func:`plan_blocks`'s units."""
    a, b = band_rows(plan, y0, height)
    return float(costs[-1]) * (b - a) * plan.width


@torch.no_grad()
def run_band(
    branches: Sequence[ResidualSR], band: torch.Tensor, plan: CellPlan, height: int, lr: torch.Tensor, y0: int
) -> torch.Tensor:
    """HR rows of a band computed by the heaviest branch on the whole band (bicubic + its residual): what
    :func:`run_cells` gives with every cell heavy, without the halos of the cells. For bands where routing would
    cost more than that. The residual runs on the frame ``lr`` itself, rows ``y0 - halo .. y0 + height + halo``
    cut at the frame's border, so that at the border it sees what it sees on the whole image (its own zero
    padding in every layer): a frame that is one band gives exactly the heavy branch's output."""
    heavy = branches[-1]
    dtype = _branch_dtype(branches) or band.dtype
    out = _bicubic(heavy, band.to(dtype), plan, height)
    a, b = band_rows(plan, y0, height)
    res = heavy.residual(lr[:, :, a:b].to(dtype))
    if res is not None:
        out += res[:, :, y0 - a : y0 - a + height]
    return F.pixel_shuffle(out, heavy.scale)


def _bicubic(branch: ResidualSR, band: torch.Tensor, plan: CellPlan, height: int) -> torch.Tensor:
    """The bicubic path of a band's first ``height`` rows on the LR grid, ``(1, 3s², height, width)``, from the
    replicate-padded band (it needs 2 pixels around)."""
    m = plan.margin
    core = band[:, :, m - 2 : m + height + 2, m - 2 : m + plan.width + 2]
    if branch.channels_last:  # oneDNN's depthwise convolution is ~2x faster channels-last on the CPU
        core = core.contiguous(memory_format=torch.channels_last)
    return F.conv2d(core, branch.bicubic.to(band.dtype), groups=3)


def cell_flops(
    model: ClassSR, plan: CellPlan, cells: tuple[int, int, int], *, classified: bool,
    blocks: tuple[int, int, int] = (0, 0, 0), band_px: int = 0, convention: str = "real",
) -> FlopsReport:
    """FLOPs of a cell run as it runs: bicubic on the frame, each branch's residual on the cells it computed one
    by one (cell + halo), on the blocks it computed whole (block + halo) and, heavy, on the ``band_px`` LR
    pixels of bands it computed whole (:func:`run_band`), the classifier over the padded
    frame; against the heavy branch on every cell (same tiles) and on the whole frame. The residual family has
    no transposed convolution: both conventions agree."""
    per = unit_flops(model, plan, convention)
    px = plan.height * plan.width
    clf = 0
    if classified:
        hp, wp = (plan.rows - 1) * plan.step + plan.patch, (plan.cols - 1) * plan.step + plan.patch
        clf = round(per["classifier_px"] * hp * wp) + plan.rows * plan.cols * per["classifier_cell"]
    bicubic = round(per["bicubic_px"] * px)
    used = (bicubic + clf + sum(c * r for c, r in zip(cells, per["residual"], strict=True))
            + sum(c * r for c, r in zip(blocks, per["residual_block"], strict=True))
            + round(band_px * per["residual_px"][2]))
    heavy = bicubic + plan.rows * plan.cols * per["residual"][2]
    return FlopsReport(used=int(used), heavy=int(heavy), whole=round(per["heavy_px"] * px))


def unit_flops(model: ClassSR, plan: CellPlan, convention: str = "real") -> dict:
    """Per-pixel, per-cell and per-block FLOPs (convolution FLOPs grow linearly with pixels), cached on the
    model; ``residual_px`` is each branch's residual per LR pixel (the block planner's costs)."""
    key = (convention, plan.step, plan.halo, plan.patch, plan.block)
    cache = model.__dict__.setdefault("_cell_flops", {})
    if key not in cache:
        light = model.branches[0]
        assert isinstance(light, ResidualSR)
        p = plan.patch
        bicubic_px = 2 * light.bicubic.numel()
        fc = 2 * model.classifier.fc.in_features * model.classifier.fc.out_features

        def residual(t: int) -> list[int]:
            return [count_flops(b, (1, 3, t, t), convention) - bicubic_px * t * t for b in model.branches]

        cache[key] = {
            "bicubic_px": bicubic_px,
            "residual": residual(plan.step + 2 * plan.halo),
            "residual_block": residual(plan.block * plan.step + 2 * plan.halo),
            "residual_px": [r / (p * p) for r in residual(p)],
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

