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
    "Rect",
    "TilePlan",
    "band_cost",
    "band_rows",
    "cell_flops",
    "classify_cells",
    "cover",
    "is_cellular",
    "plan_cells",
    "plan_tiles",
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
        block: cells per side of a block (see :func:`plan_tiles`); the frame is padded to whole blocks.
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


Rect = tuple[int, int, int, int, int]
"""A residual tile: ``(branch, row, col, rows, cols)`` in cells of a band."""


@dataclass(frozen=True)
class TilePlan:
    """How a band's cells run (:func:`plan_tiles`).

    Attributes:
        run: ``(rows, cols)`` the branch each cell runs (at least its class's).
        rects: the residual tiles, light (width-0) cells left out.
        cost: residual cost of the tiles (cost x LR pixels, halos included).
    """

    run: torch.Tensor
    rects: tuple[Rect, ...]
    cost: float


def cover(run: list[list[int]]) -> list[Rect]:
    """Rectangles of one branch each that cover the cells of ``run`` (``-1``: nothing to compute): each cell row
    cut into runs of equal branch, a run merged with the identical run (same branch, same columns) below it."""
    rects: list[Rect] = []
    open_: dict[tuple[int, int, int], list[int]] = {}  # (branch, c0, c1) -> [first row, rows]
    for r, row in enumerate(run):
        here, c, n = set(), 0, len(row)
        while c < n:
            c1 = c + 1
            while c1 < n and row[c1] == row[c]:
                c1 += 1
            if row[c] >= 0:
                here.add((row[c], c, c1))
            c = c1
        for key in [k for k in open_ if k not in here]:
            r0, h = open_.pop(key)
            rects.append((key[0], r0, key[1], h, key[2] - key[1]))
        for key in sorted(here):
            if key in open_:
                open_[key][1] += 1
            else:
                open_[key] = [r, 1]
    rects += [(k[0], r0, k[1], h, k[2] - k[1]) for k, (r0, h) in sorted(open_.items())]
    return rects


def plan_tiles(classes: torch.Tensor, plan: CellPlan, costs: Sequence[float]) -> TilePlan:
    """How :func:`run_cells` computes a band's ``(rows, cols)`` cell classes, and what it spends on residuals
    (``costs``: each branch's residual cost per LR pixel).

    Cells of a branch run as rectangles (:func:`cover`): a rectangle of ``h x w`` cells pays the halo once,
    ``(h*step + 2*halo) * (w*step + 2*halo)`` LR pixels. Before that, going along each row of B x B blocks
    (B = ``plan.block``), a block that mixes classes is raised whole to its heaviest class when that makes the
    cover of its row of blocks cheaper (a busy region with a few cheaper cells becomes one tile). The raised plan
    is kept only when its cover of the whole band costs less than that of the classes as they are."""
    cell_of = _cells_of(classes.cpu(), plan)
    b, step, halo = plan.block, plan.step, plan.halo

    def priced(run: list[list[int]]) -> tuple[list[Rect], float]:
        rects = [t for t in cover(run) if costs[t[0]] > 0]
        return rects, sum(costs[k] * (h * step + 2 * halo) * (w * step + 2 * halo) for k, _, _, h, w in rects)

    grid = cell_of.tolist()
    rects, cost = priced(grid)
    run = grid
    if b > 1:
        raised = [row[:] for row in grid]
        for r0 in range(0, len(raised), b):
            strip = raised[r0 : r0 + b]
            best = priced(strip)[1]
            for c0 in range(0, len(strip[0]), b):
                cells = [v for row in strip for v in row[c0 : c0 + b] if v >= 0]
                if not cells or min(cells) == max(cells):
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
    rows, cols = classes.shape
    out = torch.tensor(run, dtype=torch.long)[:rows, :cols].to(classes.device)
    return TilePlan(out, tuple(rects), float(cost))


@torch.no_grad()
def run_cells(
    branches: Sequence[ResidualSR],
    band: torch.Tensor,
    plan: CellPlan,
    tiles: TilePlan,
    height: int,
    *,
    batch_size: int = 256,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """HR rows of a band, ``(1, 3, s*height, s*width)`` for its first ``height`` LR rows (``band`` from
    :func:`band_input`, ``tiles`` from :func:`plan_tiles` for its cells, a whole number of blocks of rows unless
    it is the frame's last band): bicubic once over the band, then each tile's residual with ``halo`` pixels of
    context, its core added in. Tiles of one branch and size are batched (``batch_size`` cells a call).

    Returns ``(rows, pixels)``: ``pixels`` the LR pixels each branch's residual computed, halos included."""
    m, step, halo = plan.margin, plan.step, plan.halo
    s = branches[0].scale
    ch = 3 * s * s
    dtype = _branch_dtype(branches) or band.dtype
    band = band.to(dtype)
    out = _bicubic(branches[0], band, plan, height)
    pixels = [0, 0, 0]
    if tiles.rects:
        rows, cols = tiles.run.shape  # rectangles lie inside the band's real cells, which cover its pixels
        canvas = out.new_zeros((ch, rows * step, cols * step))
        groups: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
        for k, r, c, h, w in tiles.rects:
            groups.setdefault((k, h, w), []).append((r, c))
        src = band[0]
        for (k, h, w), where in groups.items():
            th, tw = h * step + 2 * halo, w * step + 2 * halo
            pixels[k] += th * tw * len(where)
            for i in range(0, len(where), max(1, batch_size // (h * w))):
                chunk = where[i : i + max(1, batch_size // (h * w))]
                x = torch.stack([src[:, m - halo + r * step : m - halo + r * step + th,
                                     m - halo + c * step : m - halo + c * step + tw] for r, c in chunk])
                res = branches[k].residual(x)
                assert res is not None
                for (r, c), t in zip(chunk, res, strict=True):
                    canvas[:, r * step : (r + h) * step, c * step : (c + w) * step] = (
                        t[:, halo : halo + h * step, halo : halo + w * step])
        out += canvas[None, :, :height, : plan.width]
    return F.pixel_shuffle(out, s), (pixels[0], pixels[1], pixels[2])


def _cells_of(classes: torch.Tensor, plan: CellPlan) -> torch.Tensor:
    """A band's ``(rows, cols)`` classes on its grid padded to whole blocks; -1 marks padding cells."""
    b = plan.block
    cell_of = torch.full((-(-classes.shape[0] // b) * b, plan.padded_cols), -1, dtype=torch.long,
                         device=classes.device)
    cell_of[: classes.shape[0], : classes.shape[1]] = classes
    return cell_of


def band_rows(plan: CellPlan, y0: int, height: int) -> tuple[int, int]:
    """The LR rows :func:`run_band` computes the residual on: the band's plus ``halo`` inside the frame."""
    return max(0, y0 - plan.halo), min(plan.height, y0 + height + plan.halo)


def band_cost(plan: CellPlan, y0: int, height: int, costs: Sequence[float]) -> float:
    """What :func:`run_band` spends on the heavy residual for a band, in :func:`plan_tiles`'s units."""
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
    model: ClassSR, plan: CellPlan, pixels: tuple[int, int, int], *, classified: bool, band_px: int = 0,
    convention: str = "real",
) -> FlopsReport:
    """FLOPs of a cell run as it runs: bicubic on the frame, each branch's residual on the ``pixels`` LR pixels
    its tiles covered (halos included) and, heavy, on the ``band_px`` LR pixels of bands it computed whole
    (:func:`run_band`), the classifier over the padded frame; against the heavy branch on every cell (same
    cells, each with its halo) and on the whole frame. The residual family has no transposed convolution: both
    conventions agree."""
    per = unit_flops(model, plan, convention)
    px = plan.height * plan.width
    clf = 0
    if classified:
        hp, wp = (plan.rows - 1) * plan.step + plan.patch, (plan.cols - 1) * plan.step + plan.patch
        clf = round(per["classifier_px"] * hp * wp) + plan.rows * plan.cols * per["classifier_cell"]
    bicubic = round(per["bicubic_px"] * px)
    used = (bicubic + clf + sum(round(n * r) for n, r in zip(pixels, per["residual_px"], strict=True))
            + round(band_px * per["residual_px"][2]))
    heavy = bicubic + plan.rows * plan.cols * per["residual"][2]
    return FlopsReport(used=int(used), heavy=int(heavy), whole=round(per["heavy_px"] * px))


def unit_flops(model: ClassSR, plan: CellPlan, convention: str = "real") -> dict:
    """Per-pixel and per-cell FLOPs (convolution FLOPs grow linearly with pixels), cached on the model;
    ``residual_px`` is each branch's residual per LR pixel (the tile planner's costs)."""
    key = (convention, plan.step, plan.halo, plan.patch)
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

