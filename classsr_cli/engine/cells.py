"""Cell execution: the fast path for models whose branches are all bicubic + residual (the residual family).

Every branch of such a model is the same fixed upsampler (bicubic, or the model's fitted base) plus a residual CNN
of its own width (0 for the light branch: the upsampler alone). So a routed frame is computed as

1. the classifier once over the frame (:meth:`Classifier.grid_scores`), one class per ``step`` x ``step`` cell,
   each classified on the ``patch`` x ``patch`` window centred on it;
2. the upsampler ("bicubic" below) once over the whole frame, on the LR grid (``3*s*s`` channels, no tiling, no
   overlap);
3. per band, a base branch's residual on the whole band (or none), then each heavier class's residual only on
   its cells, each computed with ``halo`` LR pixels of context around it, its core replacing the base's on the
   LR grid (a width-0 class costs nothing here; :func:`plan_tiles` picks the cheapest base);
4. one ``pixel_shuffle`` of bicubic + residuals.

The cells of a branch run as rectangles laid side by side on a canvas, one call per branch and rectangle
height (:func:`run_cells`); the frame is replicate-padded once by ``margin`` = max(halo, classifier
margin, bicubic taps) so that no branch sees an artificial border inside the frame. Bands of cell rows give the
same pixels as the whole frame (every cell sees the same context either way).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from classsr_cli.engine.flops import FlopsReport, count_flops
from classsr_cli.models.classsr import ClassSR
from classsr_cli.models.residual import (
    BICUBIC_TAPS,
    ResidualSR,
    expand_luma,
    pixel_shuffle,
    receptive_radius,
    tile_margins,
)

__all__ = [
    "CALL_PIXELS",
    "TILE_FACTOR",
    "CellPlan",
    "Rect",
    "TilePlan",
    "band_rows",
    "base_reach",
    "call_pixels",
    "cell_flops",
    "cell_windows",
    "classify_cells",
    "classify_frame_cells",
    "cover",
    "is_cellular",
    "plan_cells",
    "plan_tiles",
    "run_cells",
    "tile_factor",
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
        block: cells per side of a block (see :func:`plan_tiles`); the frame is padded to whole blocks.
        layers: 3x3 convolutions of the branches' residuals (:meth:`ResidualSR.residual_tile`: the first
            ``min(halo, layers)`` shrink a tile by a pixel a side); what :meth:`tile_area` prices. 0: every layer
            priced on the whole tile, halo included.
        context: LR pixels of context the classifier scores a window with on each side
            (:attr:`~classsr_cli.models.classifier.Classifier.margin`: 0 unless its context is the frame's).
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
    layers: int = 0
    context: int = 0

    @property
    def padded_rows(self) -> int:
        return -(-self.rows // self.block) * self.block

    @property
    def padded_cols(self) -> int:
        return -(-self.cols // self.block) * self.block

    def tile_area(self, height: int, width: int) -> float:
        """LR pixels a residual computes per layer, on average over its layers, for one ``height`` x ``width``
        core with this plan's halo, run as a piece of a canvas (:func:`run_cells`): its rows shrink by a pixel a
        side per layer, its columns keep their context (the columns between two pieces are computed and dropped).
        The planner's price of a tile, per unit of a branch's per-pixel cost."""
        if self.layers <= 0:
            return float((height + 2 * self.halo) * (width + 2 * self.halo))
        return (height + 2 * self._mean_margin) * (width + 2 * min(self.halo, self.layers))  # linear in the margin

    @functools.cached_property
    def _mean_margin(self) -> float:
        """Rows beyond the core on each side a layer computes, on average over the layers (:func:`tile_margins`)."""
        return sum(tile_margins(self.halo, self.layers)) / self.layers

    def core(self, col: int, rows: int = 1, cols: int = 1) -> tuple[int, int]:
        """LR ``(height, width)`` that :func:`run_cells` computes for ``rows`` x ``cols`` cells from cell column
        ``col``: whole cells tall (canvases of recurring heights), cropped to the frame on the right."""
        return rows * self.step, min(cols * self.step, self.width - col * self.step)

    @property
    def window_margin(self) -> int:
        """How far a classifier window reaches past its cell on each side."""
        return (self.patch - self.step) // 2


def plan_cells(
    height: int, width: int, *, step: int, patch: int, halo: int, block: int = 1, layers: int = 0, context: int = 0
) -> CellPlan:
    if step > patch or (patch - step) % 2 or step % 4 or patch % 4:
        raise ValueError(f"cells need a step that is a multiple of 4, at most the patch ({patch}) and differs from "
                         f"it by an even number; got {step}")
    if halo < 0 or block < 1 or layers < 0 or context < 0 or context % 4:
        raise ValueError(f"halo and layers must be at least 0, block at least 1 and context a multiple of 4 (at least "
                         f"0), got {halo}, {layers}, {block} and {context}")
    margin = max(halo, (patch - step) // 2 + context, BICUBIC_TAPS // 2)
    return CellPlan(height, width, step, -(-height // step), -(-width // step), patch, halo, margin, block, layers,
                    context)


def pad_frame(lr: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """The frame replicate-padded by ``margin`` on every side and to whole blocks on the right and bottom."""
    m, s = plan.margin, plan.step
    return F.pad(lr, (m, plan.padded_cols * s - plan.width + m, m, plan.padded_rows * s - plan.height + m),
                 mode="replicate")


def cell_windows(lr: torch.Tensor, plan: CellPlan, reach: int) -> torch.Tensor:
    """Every cell's LR pixels with ``reach`` pixels around it (the frame replicate-padded), ``(rows*cols, 3, w, w)``
    with ``w = step + 2*reach``, row-major: all that a cell's output depends on when ``reach`` is at least what its
    classifier window and branches see (``plan.margin`` and :func:`base_reach`). What reuse compares across frames."""
    r, st = reach, plan.step
    padded = F.pad(lr, (r, plan.cols * st - plan.width + r, r, plan.rows * st - plan.height + r), mode="replicate")
    w = st + 2 * r
    win = padded.unfold(2, w, st).unfold(3, w, st)  # (1, 3, rows, cols, w, w)
    return win.permute(0, 2, 3, 1, 4, 5).reshape(plan.rows * plan.cols, lr.shape[1], w, w)


def band_input(padded: torch.Tensor, plan: CellPlan, r0: int, r1: int) -> torch.Tensor:
    """The padded rows cells ``r0 .. r1-1`` need (their cells plus ``margin`` above and below)."""
    return padded[:, :, r0 * plan.step : r1 * plan.step + 2 * plan.margin]


def _windows(band: torch.Tensor, plan: CellPlan, first_row: int) -> torch.Tensor:
    """The classifier's windows of a band's cells (rows past the frame's cells left out), with ``context`` pixels
    of the padded frame around them."""
    off = plan.margin - plan.window_margin - plan.context
    rows = min((band.shape[2] - 2 * plan.margin) // plan.step, plan.rows - first_row)
    side = plan.patch + 2 * plan.context
    return band[:, :, off : off + (rows - 1) * plan.step + side, off : off + (plan.cols - 1) * plan.step + side]


@torch.no_grad()
def classify_cells(
    model: ClassSR, band: torch.Tensor, plan: CellPlan, tolerance: float | None = None, first_row: int = 0
) -> torch.Tensor:
    """``(rows, cols)`` classes of a band's cells (``band`` from :func:`band_input`, starting at cell row
    ``first_row``; rows past the frame's cells are left out), in one classifier pass."""
    return model.classify_windows(_windows(band, plan, first_row), plan.step, tolerance)


@torch.no_grad()
def classify_frame_cells(
    model: ClassSR, padded: torch.Tensor, plan: CellPlan, per_band: int, tolerance: float | None = None
) -> torch.Tensor:
    """``(rows, cols)`` classes of every cell of a frame (``padded`` from :func:`pad_frame`): scored ``per_band``
    cell rows a classifier pass (the memory of a band, as :func:`classify_cells`), decided once over the whole
    frame, so that a frame budget (``--tolerance`` dB) or the default's frame cap weighs the frame, not each
    band on its own. Per-patch rules decide as band by band."""
    dtype = next(model.classifier.parameters()).dtype
    scores = [model.classifier.grid_scores(_windows(band_input(padded, plan, r0, min(plan.padded_rows, r0 + per_band)),
                                                    plan, r0).to(dtype), plan.patch, plan.step)[0]
              for r0 in range(0, plan.rows, per_band)]
    return model.decide(torch.cat(scores).reshape(-1, 3), tolerance).view(plan.rows, plan.cols)


Rect = tuple[int, int, int, int, int]
"""A residual tile: ``(branch, row, col, rows, cols)`` in cells of a band."""


@dataclass(frozen=True)
class TilePlan:
    """How a band's cells run (:func:`plan_tiles`).

    Attributes:
        run: ``(rows, cols)`` the branch each cell runs (at least its class's), on the CPU.
        rects: the residual tiles of the branches heavier than ``base`` (width-0 cells left out).
        cost: residual cost of the plan (cost x LR pixels, halos and the base band included).
        base: the branch whose residual runs on the whole band first; the tiles replace it on their cells. -1:
            none (every cell that costs anything runs as a tile); with a width-0 light branch (bicubic) none is
            reported as 0, the same thing.
    """

    run: torch.Tensor
    rects: tuple[Rect, ...]
    cost: float
    base: int = 0


def cover(run: list[list[int]]) -> list[Rect]:
    """Rectangles of one branch each that cover the cells of ``run`` (``-1``: nothing to compute): each cell row
    cut into runs of equal branch, a run merged with the identical run (same branch, same columns) below it."""
    rects: list[Rect] = []
    open_: dict[tuple[int, int, int], list[int]] = {}  # (branch, c0, c1) -> [first row, rows]
    for r, row in enumerate(run):
        here, ordered = _row_runs(tuple(row))
        for key in [k for k in open_ if k not in here]:
            r0, h = open_.pop(key)
            rects.append((key[0], r0, key[1], h, key[2] - key[1]))
        for key in ordered:
            if key in open_:
                open_[key][1] += 1
            else:
                open_[key] = [r, 1]
    rects += [(k[0], r0, k[1], h, k[2] - k[1]) for k, (r0, h) in sorted(open_.items())]
    return rects


@functools.lru_cache(maxsize=4096)
def _row_runs(row: tuple[int, ...]) -> tuple[frozenset[tuple[int, int, int]], tuple[tuple[int, int, int], ...]]:
    """A cell row's runs of equal branch ``(branch, c0, c1)`` (``-1`` cells left out), as a set and sorted: what
    :func:`cover` merges. Cached: the planner prices the same rows many times (every trial of a block raise
    changes a few rows of a strip), and a frame's rows repeat."""
    here, c, n = [], 0, len(row)
    while c < n:
        c1 = c + 1
        while c1 < n and row[c1] == row[c]:
            c1 += 1
        if row[c] >= 0:
            here.append((row[c], c, c1))
        c = c1
    return frozenset(here), tuple(sorted(here))


#: What one residual call costs beyond its pixels, in LR pixels of the heaviest branch, per device type. CPU: a
#: call on a single 40x40 piece (a 28x28 cell and its halo of 6) of the default x4 model costs 520-780 more
#: heavy-branch pixels than the same piece on a canvas of 64 (2-core CPU, two runs of ``python
#: scripts/tile_costs.py``; 670-1,330 against a batch of 64 under the batched tiles before canvases), for the
#: medium branch as for the heavy one; 1,000 is kept (the planner decided alike at 600, 1,000 and 2,500:
#: SunHays80 x4 within this machine's noise). CUDA: a call on one tile takes as long as the heavy branch on
#: 42,500-46,800 LR pixels of a 256x192 frame, at fp32, bf16 and fp16 (one H200, ``scripts/gpu_check.py``): a
#: GPU is launch-bound at these sizes. Other devices take the CUDA figure (GPUs alike; not measured).
#: docs/experiments.md and docs/results.md ("On a GPU") have both. The planner counts it for every call (one
#: canvas per branch and rectangle height), so a plan of many small tiles is not preferred to one branch on the
#: whole band for a few FLOPs less.
CALL_PIXELS = {"cpu": 1000, "cuda": 43000}

#: What a tile's pixel costs against the same pixel of a branch run on a whole band, per device type
#: (:func:`plan_tiles` multiplies the tiles' price by it; tiles also pay for their canvases and the copy of their
#: cores). CPU: 1, measured on training photos by ``python scripts/tile_factor.py --native``: 1.25 and 1.5 were
#: not faster in two runs (within this machine's noise at the dial's 0.2 dB, slower at the default on the photos
#: as given), 2 was slower in every case (docs/experiments.md). CUDA: not measured (its call cost dominates).
TILE_FACTOR = {"cpu": 1.0, "cuda": 1.0}


def call_pixels(device: torch.device) -> int:
    """:data:`CALL_PIXELS` for ``device``."""
    return CALL_PIXELS.get(device.type, CALL_PIXELS["cuda"])


def tile_factor(device: torch.device) -> float:
    """:data:`TILE_FACTOR` for ``device``."""
    return TILE_FACTOR.get(device.type, TILE_FACTOR["cuda"])


def plan_tiles(
    classes: torch.Tensor, plan: CellPlan, costs: Sequence[float], band_pixels: int = 0, *,
    call_pixels: int = CALL_PIXELS["cpu"], tile_factor: float = TILE_FACTOR["cpu"],
) -> TilePlan:
    """How :func:`run_cells` computes a band's ``(rows, cols)`` cell classes, and what it spends on residuals
    (``costs``: each branch's residual cost per LR pixel).

    Cells of a branch run as rectangles (:func:`cover`): a rectangle of ``h x w`` cells pays the halo once
    (:meth:`CellPlan.tile_area` of its core, :meth:`CellPlan.core`),
    and each call (one canvas per branch and rectangle height, :func:`run_cells`) ``call_pixels`` of the
    heaviest branch (:data:`CALL_PIXELS` for the device); a tile's pixels are priced ``tile_factor`` times a whole
    band's (:data:`TILE_FACTOR`). Before that, going along
    each row of B x B blocks (B = ``plan.block``), a block that mixes classes is raised whole to its heaviest class
    when that makes the cover of its row of blocks cheaper (a busy region with a few cheaper cells becomes one tile). The raised plan
    is kept only when its cover of the whole band costs less than that of the classes as they are.

    With ``band_pixels`` (the LR pixels a residual computes to cover the whole band, :func:`band_rows`), a
    branch may also run on the whole band as the **base**: its cells and every lighter cell take it (no halo),
    only heavier cells run as tiles; a learned light branch (width > 0) is a base too, so a band of light cells
    with a few heavier ones runs the light branch whole. The cheapest of the bases is kept (the heaviest base
    alone is the heavy branch on the band; routing never costs more than that)."""
    padded = _cells_of(classes.cpu(), plan)  # the frame's one host sync
    call = costs[-1] * call_pixels
    counts = torch.bincount(padded[padded >= 0], minlength=len(costs)).tolist()
    top = max((k for k, n in enumerate(counts) if n), default=0)
    # The heaviest class present (above light) as the base is that branch on the whole band, no tiles: its cost
    # is known without a cover. A base above it costs more (costs grow with the branch); a lighter base costs at
    # least its band, a call for its tiles and the cores of its heavier cells (raising only adds): bases whose
    # bound is above the known plan are not covered (most bands of a GPU, or of an all-heavy frame, are planned
    # in O(1)).
    whole = costs[top] * band_pixels + call if band_pixels > 0 and costs[top] > 0 else math.inf
    none = -1 if costs[0] > 0 else 0  # no base; a width-0 light branch as the base is the same (bicubic alone)
    cell_of = padded.tolist()
    area = [0] * len(costs)  # each class's cells' cores inside the frame: what its tiles cost at least
    col_area = [h * w for h, w in (plan.core(c) for c in range(plan.padded_cols))]
    for row in cell_of:
        for v, a in zip(row, col_area, strict=True):
            if v >= 0:
                area[v] += a
    best: tuple[list[list[int]], list[Rect], float, int] | None = None
    for base in (none, *range(none + 1, top if whole < math.inf else len(costs))):  # from top up: `whole`
        if base != none and (band_pixels <= 0 or costs[base] <= 0):
            continue
        base_cost = costs[base] * band_pixels + call if base != none else 0.0
        heavier = [k for k in range(base + 1, len(costs)) if counts[k] and costs[k] > 0]
        bound = base_cost + (call if heavier else 0.0) + sum(tile_factor * costs[k] * area[k] for k in heavier)
        if bound > min(whole, best[2] if best else math.inf):
            continue
        grid = cell_of if base <= 0 else [[max(v, base) if v >= 0 else v for v in row] for row in cell_of]
        got = _plan_over(grid, plan, costs, base, base_cost, call=call, factor=tile_factor)
        if best is None or got[2] < best[2]:
            best = got
    rows, cols = classes.shape
    if whole < (best[2] if best else math.inf):
        return TilePlan(torch.full((rows, cols), top, dtype=torch.long), (), float(whole), top)
    assert best is not None  # no base is covered unless the whole-band plan was known to beat it
    run, rects, cost, base = best
    out = torch.tensor(run, dtype=torch.long)[:rows, :cols]  # on the CPU: the frame's one host sync was above
    return TilePlan(out, tuple(rects), float(cost), base)


def _plan_over(
    grid: list[list[int]], plan: CellPlan, costs: Sequence[float], base: int, base_cost: float = 0.0, *,
    call: float = 0.0, factor: float = 1.0,
) -> tuple[list[list[int]], list[Rect], float, int]:
    """:func:`plan_tiles` for one base: ``(run, rects, cost, base)``; cells at or below ``base`` are free
    beyond ``base_cost`` (base -1 is no base: every cell of a branch that costs anything runs as a tile; so is 0
    with a width-0 light branch);
    ``call``: the cost of one call; ``factor``: a tile pixel's price against a whole band's."""
    b = plan.block
    price: dict[tuple[int, int, int, int], float] = {}  # (branch, col, rows, cols) -> cost: shapes recur

    def rect_cost(t: Rect) -> float:
        k, _, c, h, w = t  # the row does not change the price
        got = price.get((k, c, h, w))
        if got is None:
            got = price[k, c, h, w] = factor * costs[k] * plan.tile_area(*plan.core(c, h, w))
        return got

    def priced(run: list[list[int]]) -> tuple[list[Rect], float]:
        rects = [t for t in cover(run) if costs[t[0]] > 0 and t[0] > base]
        calls = len({(k, h) for k, _, _, h, _ in rects})
        return rects, base_cost + call * calls + sum(rect_cost(t) for t in rects)

    rects, cost = priced(grid)
    run = grid
    if b > 1 and rects:
        raised = [row[:] for row in grid]
        for r0 in range(0, len(raised), b):
            strip = raised[r0 : r0 + b]
            best = priced(strip)[1]
            for c0 in range(0, len(strip[0]), b):
                cells = [v for row in strip for v in row[c0 : c0 + b] if v >= 0]
                if not cells or min(cells) == max(cells) or max(cells) <= base:
                    continue
                trial = [row[:c0] + [max(cells) if v >= 0 else v for v in row[c0 : c0 + b]] + row[c0 + b :]
                         for row in strip]
                got = priced(trial)[1]
                if got < best:
                    strip, best = trial, got
            raised[r0 : r0 + b] = strip
        rects_up, cost_up = priced(raised)
        if cost_up < cost:
            rects, cost, run = rects_up, cost_up, raised
    return run, rects, cost, base


@torch.no_grad()
def run_cells(
    branches: Sequence[ResidualSR],
    band: torch.Tensor,
    plan: CellPlan,
    tiles: TilePlan,
    height: int,
    *,
    lr: torch.Tensor | None = None,
    y0: int = 0,
    batch_size: int = 256,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """HR rows of a band, ``(1, 3, s*height, s*width)`` for its first ``height`` LR rows (``band`` from
    :func:`band_input`, ``tiles`` from :func:`plan_tiles` for its cells, a whole number of blocks of rows unless
    it is the frame's last band): bicubic once over the band; the base branch's residual over the whole band
    (a ``tiles.base`` branch of width > 0: computed on the frame ``lr`` itself, on :func:`band_rows`, so that it
    sees what it sees on the whole image: its pixels are the branch's own on the frame, in every band); then each
    tile's residual with ``halo`` pixels of context (:meth:`ResidualSR.residual_tile`: the rows of no layer
    compute more of the halo than the core needs), its core replacing the base's. The tiles of one branch and
    height run as one call, side by side on a canvas (:func:`_canvases`; at most ``batch_size`` cells a call).

    Returns ``(rows, flops)``: ``flops`` the FLOPs each branch's residual computed, halos included."""
    m, halo = plan.margin, plan.halo
    s = branches[0].scale
    dtype = _branch_dtype(branches) or band.dtype
    has_base = tiles.base >= 0 and branches[tiles.base].width > 0
    if has_base and not tiles.rects and lr is not None and y0 == 0 and height == plan.height:
        flops = [0, 0, 0]
        flops[tiles.base] = branches[tiles.base].tile_flops(plan.height, plan.width)
        return branches[tiles.base](lr), (flops[0], flops[1], flops[2])  # the branch's own forward
    out = _bicubic(branches[-1], band, plan, height)  # the base and the sum in the frame's dtype
    wide = expand_luma(out.dtype)
    covered: list[tuple[int, int, int, int]] = []  # the tiles' cores (ty, hh, tx, ww)
    flops = [0, 0, 0]
    dst = out[0]
    base_res: torch.Tensor | None = None
    if has_base:
        if lr is None:
            raise ValueError("a plan with a base branch needs the frame (lr) and the band's first row (y0)")
        base = branches[tiles.base]
        a, b = band_rows(plan, y0, height, base_reach(plan, base))
        res = base.residual(lr[:, :, a:b], expand=wide)
        if res is not None:
            flops[tiles.base] += base.tile_flops(b - a, plan.width)
            base_res = res[0, :, y0 - a : y0 - a + height]  # in the weights' dtype (a luma base: s² channels)
    if tiles.rects:
        src = band.to(dtype)[0]  # the residuals' input, cast once
        for k, rows_px, pieces in _canvases(tiles.rects, plan, height, batch_size):
            branch = branches[k]
            e = min(halo, len(branch.convs()))  # context the piece carries: what its shrinking layers consume
            canvas = torch.cat([src[:, m - e + ty : m + ty + rows_px + e, m - e + tx : m + tx + ww + e]
                                for ty, tx, ww in pieces], dim=2)[None]
            res = branch.residual_tile(canvas, e, expand=wide)
            assert res is not None
            flops[k] += branch.tile_flops(rows_px, canvas.shape[3] - 2 * e, e)
            off = 0
            for ty, tx, ww in pieces:  # tiles are disjoint: each core is added in place
                hh = min(rows_px, height - ty)
                if base_res is not None:
                    base_res[:, ty : ty + hh, tx : tx + ww] = 0  # the tile's core replaces the base's
                branch.add_residual(dst[:, ty : ty + hh, tx : tx + ww], res[0, :, :hh, off : off + ww])
                covered.append((ty, hh, tx, ww))
                off += ww + 2 * e
    if base_res is not None:
        ResidualSR.add_residual(dst, base_res)
    light = branches[0]
    if (not has_base and light.width == 0 and light.fitted_base is not None and branches[-1].fitted_base is None
            and bool((tiles.run == 0).any())):
        # A light branch with a base of its own (``fitted_base = 2``): its cells, those no tile and no base branch
        # covers, take its base instead of the others' bicubic (the difference of the two, a 5x5 depthwise filter).
        diff = _bicubic(light, band, plan, height, light.base - branches[-1].base)
        flops[0] += 2 * height * plan.width * light.base.numel()
        for ty, hh, tx, ww in covered:
            diff[0, :, ty : ty + hh, tx : tx + ww] = 0
        dst.add_(diff[0])
    return pixel_shuffle(out, s), (flops[0], flops[1], flops[2])


def _canvases(
    rects: Sequence[Rect], plan: CellPlan, height: int, batch_size: int
) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """The residual calls of a band's tiles: ``(branch, rows, pieces)``, each a canvas of ``pieces`` ``(y, x,
    width)`` (LR cores, whole cells tall, cropped to the frame on the right) that :func:`run_cells` lays side by
    side, each with its context, and runs as one image. Convolutions without padding keep every core exactly its
    own (a core's output depends only on its piece); the columns between two cores are computed and dropped.
    One canvas per branch and rectangle height, of at most ``batch_size`` cells' area: a few large calls
    instead of one per tile size."""
    step = plan.step
    groups: dict[tuple[int, int], list[tuple[int, list[tuple[int, int, int]]]]] = {}
    for k, r, c, h, w in sorted(rects):
        ty, tx = r * step, c * step
        rows_px, ww = h * step, min(w * step, plan.width - tx)
        if ty >= height or ww <= 0:
            continue
        chunks = groups.setdefault((k, rows_px), [(0, [])])
        if chunks[-1][1] and (chunks[-1][0] + ww) * rows_px > batch_size * step * step:
            chunks.append((0, []))
        width, pieces = chunks[-1]
        pieces.append((ty, tx, ww))
        chunks[-1] = (width + ww, pieces)
    return [(k, rows_px, pieces) for (k, rows_px), chunks in groups.items() for _, pieces in chunks]


def _cells_of(classes: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """A band's ``(rows, cols)`` classes on its grid padded to whole blocks; -1 marks padding cells."""
    b = plan.block
    cell_of = torch.full((-(-classes.shape[0] // b) * b, plan.padded_cols), -1, dtype=torch.long,
                         device=classes.device)
    cell_of[: classes.shape[0], : classes.shape[1]] = classes
    return cell_of


def base_reach(plan: CellPlan, branch: ResidualSR) -> int:
    """Rows beyond a band that ``branch`` needs as a base to give its own pixels: its receptive radius (at least
    the halo)."""
    return max(plan.halo, receptive_radius(branch.depth, branch.width))


def band_rows(plan: CellPlan, y0: int, height: int, reach: int) -> tuple[int, int]:
    """The LR rows a base branch computes its residual on (:func:`run_cells`): the band's plus ``reach``
    (:func:`base_reach`) above and below, inside the frame."""
    return max(0, y0 - reach), min(plan.height, y0 + height + reach)


def _bicubic(branch: ResidualSR, band: torch.Tensor, plan: CellPlan, height: int,
             weight: torch.Tensor | None = None) -> torch.Tensor:
    """The base path (bicubic, or the fitted base; or the 5x5 depthwise ``weight``) of a band's first ``height``
    rows on the LR grid, ``(1, 3s², height, width)``, from the replicate-padded band (it needs 2 pixels around)."""
    m = plan.margin
    core = band[:, :, m - 2 : m + height + 2, m - 2 : m + plan.width + 2]
    if branch.channels_last:  # oneDNN's depthwise convolution is ~2x faster channels-last on the CPU
        core = core.contiguous(memory_format=torch.channels_last)
    return F.conv2d(core, (branch.base if weight is None else weight).to(core.dtype), groups=3)


def cell_flops(
    model: ClassSR, plan: CellPlan, residual: tuple[int, int, int], *, classified: bool, convention: str = "real",
    base_rows: int | None = None,
) -> FlopsReport:
    """FLOPs of a cell run as it runs: bicubic on the frame, the ``residual`` FLOPs of each branch as
    :func:`run_cells` counted them (tiles with their halos, bands it ran on whole as a base), the classifier over the padded frame
    (its middle convolutions on every window alone, for a classifier of kernel 3 with window context; over the
    windows and their context for frame context); against the heavy branch on every cell (each a tile
    with its halo, as :func:`run_cells` runs one: whole cells tall, cropped to the frame on the right) and on the
    whole frame. The residual family has no transposed convolution: both
    conventions agree. ``base_rows``: LR rows bicubic ran on (``None``: all; fewer where reuse kept whole bands)."""
    per = unit_flops(model, plan, convention)
    px = plan.height * plan.width
    clf = 0
    if classified:
        c2 = 2 * plan.context  # frame context: the convolutions run once over the windows and their context
        hp, wp = (plan.rows - 1) * plan.step + plan.patch + c2, (plan.cols - 1) * plan.step + plan.patch + c2
        clf = round(per["classifier_px"] * hp * wp)
        if model.classifier.kernel > 1 and not c2:  # conv1 once over the windows, conv2-4 on every window alone
            conv1 = per["classifier_conv1_px"]  # (Classifier.grid_scores)
            clf = round(conv1 * hp * wp + (per["classifier_px"] - conv1) * plan.rows * plan.cols * plan.patch**2)
        clf += plan.rows * plan.cols * per["classifier_cell"]
    bicubic = round(per["bicubic_px"] * px)
    ran = bicubic if base_rows is None else round(per["bicubic_px"] * base_rows * plan.width)
    used = ran + clf + sum(residual)
    top = _residuals(model)[2]
    heavy = bicubic + plan.rows * sum(top.tile_flops(*plan.core(c), plan.halo) for c in range(plan.cols))
    return FlopsReport(used=int(used), heavy=int(heavy), whole=round(per["heavy_px"] * px))


def unit_flops(model: ClassSR, plan: CellPlan, convention: str = "real") -> dict:
    """Per-pixel and per-cell FLOPs (convolution FLOPs grow linearly with pixels), cached on the model;
    ``residual_px`` is each branch's residual per LR pixel (the tile planner's costs)."""
    key = (convention, plan.step, plan.halo, plan.patch)
    cache = model.__dict__.setdefault("_cell_flops", {})
    if key not in cache:
        branches = _residuals(model)
        p, clf = plan.patch, model.classifier
        fc, total = clf.head_flops(), count_flops(clf, (1, 3, p, p), convention)
        # conv1-4 over the window (and its context, for frame context); conv5 and the head once after the pooling
        clf_px = (total - fc) / (p + 2 * clf.margin) ** 2
        cache[key] = {
            "bicubic_px": 2 * branches[0].base.numel(),
            "residual_px": [b.tile_flops(p, p) / (p * p) for b in branches],
            "classifier_px": clf_px,
            "classifier_conv1_px": count_flops(clf.conv1, (1, 3, p, p), convention) / (p * p),
            "classifier_cell": fc,
            "heavy_px": count_flops(model.branches[2], (1, 3, p, p), convention) / (p * p),
        }
    return cache[key]


def _residuals(model: ClassSR) -> list[ResidualSR]:
    out = [b for b in model.branches if isinstance(b, ResidualSR)]
    assert len(out) == len(model.branches), "cell execution needs bicubic + residual branches"
    return out


def _branch_dtype(branches: Sequence[ResidualSR]) -> torch.dtype | None:
    for b in branches:
        for p in b.parameters():
            return p.dtype
    return None

