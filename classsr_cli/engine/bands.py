"""One routed frame as an iterator of HR row bands: tile -> route -> per-class batched branches -> stitch.

:class:`FrameRun` cuts a frame into horizontal bands of patch rows, routes each band (:class:`Router`) and
yields its finished HR rows top to bottom (:class:`Band`); a whole frame is one band. The patch rows shared with
the next band are carried over (computed once), so every output pixel blends exactly the patches the
whole-frame stitch blends and the result is the same whatever the band height. Working memory is a few bands.

Knows nothing about files, rich or the CLI; progress is reported through an optional callback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from classsr_cli.engine.cells import (
    CellPlan,
    band_input,
    band_rows,
    base_reach,
    call_pixels,
    cell_flops,
    cell_windows,
    classify_frame_cells,
    is_cellular,
    pad_frame,
    plan_cells,
    plan_tiles,
    run_cells,
    tile_factor,
    unit_flops,
)
from classsr_cli.engine.defaults import (
    BAND_BYTES,
    BAND_PATCHES,
    DEFAULT_BATCH,
    DEFAULT_BLEND,
    DEFAULT_BLOCK,
    DEFAULT_STEP,
    check_tta,
)
from classsr_cli.engine.flops import FlopsReport, flops_report
from classsr_cli.engine.router import Argmax, Forced, Reuse, Router
from classsr_cli.engine.stitching import CropCanvas, stitch
from classsr_cli.engine.tiling import TileGrid, pad_to_grid, plan_grid
from classsr_cli.engine.tta import combine_routes, ensemble
from classsr_cli.errors import ConfigError
from classsr_cli.models.classsr import ClassSR
from classsr_cli.models.residual import ResidualSR, canonical_strides

__all__ = [
    "Band",
    "FrameRun",
    "RouteResult",
    "check_step",
    "upscale_tensor",
]

Progress = Callable[[int, int], None]


def check_step(step: int, patch: int) -> None:
    """``step`` must be in ``1..patch``; a :class:`ConfigError` (usage error) otherwise."""
    if not 1 <= step <= patch:
        raise ConfigError(f"--step must be in 1..{patch} (the patch size), got {step}")


@dataclass
class RouteResult:
    """What one routed frame did.

    Attributes:
        grid: the patch grid.
        classes: ``(rows, cols)`` class index of every patch (CPU, int64).
        computed: patches per class that went through a branch (fewer than the counts when outputs were reused).
        flops: FLOPs used against heavy-only on the same patches and heavy on the whole frame (real convention).
        flops_paper: the same in the paper's per-patch convention.
        decided: ``(rows, cols)`` the class the router decided for every unit, where the classifier ran (else
            ``None``): on the patch path the same as ``classes``; on the cell path before the planner ran a
            cheaper cell with a heavier branch where one call on its band costs less than tiles.
        passes: the self-ensemble's passes the frame took (:mod:`~classsr_cli.engine.tta`; 1: none). With more,
            ``classes`` and ``decided`` are the untransformed pass's, ``computed`` and the FLOPs every pass's.
    """

    grid: TileGrid
    classes: torch.Tensor
    computed: tuple[int, int, int]
    flops: FlopsReport
    flops_paper: FlopsReport
    decided: torch.Tensor | None = None
    passes: int = 1

    @property
    def counts(self) -> tuple[int, int, int]:
        c = torch.bincount(self.classes.flatten(), minlength=3).tolist()
        return (int(c[0]), int(c[1]), int(c[2]))

    def routing(self) -> dict[str, Any]:
        """``{"patch", "step", "classes"[, "decided"]}``: the class (0 light, 1 medium, 2 heavy) of every routed
        unit, row-major; unit ``(r, c)`` covers LR rows ``r*step .. r*step+patch-1`` (columns alike) of the frame
        padded on the right and bottom. Patches (32 at step 28) on the patch path; ``step`` x ``step`` cells on
        the cell path, whose class picked the branch that computed those pixels. ``decided``, where the
        classifier ran: the class it decided for each unit (:attr:`decided`)."""
        out: dict[str, Any] = {"patch": self.grid.patch, "step": self.grid.step, "classes": self.classes.tolist()}
        if self.decided is not None:
            out["decided"] = self.decided.tolist()
        return out


@dataclass
class Band:
    """Finished HR rows ``y .. y + rows.shape[2]`` of the frame, ``(1, 3, n, s*W)`` float, not clamped."""

    y: int
    rows: torch.Tensor


class _BandSink:
    """Where a band's HR patch outputs go: a crop canvas (no buffer of all HR patches) or a buffer to blend.
    Keeps the outputs of the patches from ``keep_from`` on (the rows carried into the next band)."""

    def __init__(self, grid: TileGrid, scale: int, blend: str, like: torch.Tensor, keep_from: int | None) -> None:
        self.grid, self.scale, self.blend = grid, scale, blend
        size = grid.patch * scale
        self.canvas = CropCanvas(grid, scale, like) if blend == "crop" else None
        self.buffer = None if self.canvas else like.new_empty((grid.count, 3, size, size))
        self.keep_from = keep_from
        n_keep = grid.count - keep_from if keep_from is not None else 0
        self.kept = like.new_empty((n_keep, 3, size, size)) if self.canvas and n_keep else None
        self.first_new = 0

    def put_new(self, pos: torch.Tensor, hr: torch.Tensor) -> None:
        """:meth:`put` for the band's newly routed patches, numbered after the carried ones."""
        self.put(pos + self.first_new, hr)

    def put(self, pos: torch.Tensor, hr: torch.Tensor) -> None:
        if self.canvas is None:
            assert self.buffer is not None
            self.buffer[pos] = hr.to(self.buffer.dtype)
            return
        self.canvas.put(pos, hr)
        if self.kept is not None and self.keep_from is not None:
            sel = (pos >= self.keep_from).nonzero(as_tuple=True)[0]
            if sel.numel():
                self.kept[pos[sel] - self.keep_from] = hr[sel]

    def image(self) -> torch.Tensor:
        if self.canvas is not None:
            return self.canvas.image()
        assert self.buffer is not None
        return stitch(self.buffer, self.grid, self.scale, self.blend)

    def carried(self) -> torch.Tensor | None:
        if self.keep_from is None:
            return None
        if self.canvas is not None:
            return self.kept
        assert self.buffer is not None
        return self.buffer[self.keep_from :].clone()  # not a view: frees the band


class FrameRun:
    """Route one LR frame ``(1, 3, H, W)`` (float in ``[0, 1]``, on the model's device) band by band.

    Iterate it for the :class:`Band` s, top to bottom, each row exactly once; :attr:`result` is then set.

    Args:
        model: a :class:`ClassSR` in eval mode.
        lr: the LR frame (any float dtype; patches are cast to the model's dtype).
        router: who picks each patch's branch (default: a fresh argmax :class:`Router`).
        step: distance between patch origins, ``1..patch``.
        blend: stitch mode.
        band_patches: about this many patches per band; ``None`` (with ``band_rows`` ``None``): the whole frame.
        band_rows: patch rows per band (overrides ``band_patches``).
        band_bytes: cell execution: bands of about this many bytes of HR output (whole blocks of at least
            :data:`MIN_MEMORY_ROWS` cell rows, capping ``band_patches`` and ``band_rows``), where the whole frame's
            output would exceed twice that (:data:`~classsr_cli.engine.defaults.BAND_BYTES`; ``None``: no cap). For a consumer that takes
            the frame band by band: its bands are recycled instead of one frame-sized set of buffers.
        halo: cell execution (:mod:`~classsr_cli.engine.cells`): LR pixels of context around each cell; ``None``:
            the branches' receptive radius, so that every cell is exactly its branch's output on the padded frame.
        block: cell execution: cells per side of a block the planner may compute whole (1: never).
        whole_bands: cell execution: the planner may run a branch on a whole band and only the cells that need
            a heavier one as tiles (its cells then report that branch), when that costs less
            (:func:`~classsr_cli.engine.cells.plan_tiles`); ``False``: cells and tiles only.
        progress: ``progress(patches_done, patches_total)`` after every branch call.

    Models whose branches are all bicubic + residual, routed by their classifier's decision or a forced branch,
    run as cells (:mod:`~classsr_cli.engine.cells`): ``grid`` is then the ``step`` x ``step`` cell grid, and
    ``blend`` does not apply. With the router's :class:`Reuse` a cell whose LR pixels, and those its classifier
    window and branches see around it, are unchanged since it was computed keeps that output.
    """

    def __init__(
        self,
        model: ClassSR,
        lr: torch.Tensor,
        *,
        router: Router | None = None,
        step: int = DEFAULT_STEP,
        blend: str = DEFAULT_BLEND,
        band_patches: int | None = None,
        band_rows: int | None = None,
        band_bytes: int | None = None,
        halo: int | None = None,
        block: int = DEFAULT_BLOCK,
        whole_bands: bool = True,
        progress: Progress | None = None,
    ) -> None:
        if lr.dim() != 4 or lr.shape[0] != 1 or lr.shape[1] != 3:
            raise ValueError(f"expected a (1, 3, H, W) tensor, got {tuple(lr.shape)}")
        check_step(step, model.cfg.patch)
        self.model, self.lr, self.step, self.blend, self.progress = model, canonical_strides(lr), step, blend, progress
        self.router = router or Router()
        self.cells: CellPlan | None = None
        if cell_path(model, self.router, step):
            layers = max(len(b.convs()) for b in model.branches if isinstance(b, ResidualSR))
            self.cells = plan_cells(lr.shape[2], lr.shape[3], step=step, patch=model.cfg.patch,
                                    halo=layers if halo is None else halo, block=block, layers=layers,
                                    context=model.classifier.margin)
            self.grid = TileGrid(lr.shape[2], lr.shape[3], step, step, self.cells.rows, self.cells.cols)
        else:
            self.grid = plan_grid(lr.shape[2], lr.shape[3], model.cfg.patch, step)
        self.band_rows, self.band_patches, self.band_bytes = band_rows, band_patches, band_bytes
        self.whole_bands = whole_bands
        carry = math.ceil(self.grid.patch / step) - 1  # patch rows that also cover the next band's first rows
        if band_rows is None and band_patches is None:
            per_band = self.grid.rows
        else:
            per_band = band_rows or math.ceil((band_patches or BAND_PATCHES) / self.grid.cols)
        self.carry, self.per_band = carry, max(carry + 1, per_band)
        #: class of every patch, row-major, filled band by band (CPU int64; 0 where not routed yet)
        self.classes = torch.zeros(self.grid.count, dtype=torch.long)
        self._result: RouteResult | None = None

    @property
    def result(self) -> RouteResult:
        if self._result is None:
            raise RuntimeError("the frame has not been routed yet: iterate the FrameRun first")
        return self._result

    def __iter__(self) -> Iterator[Band]:
        if self.cells is not None:
            yield from self._iter_cells(self.cells)
            return
        grid, step, p, cols, s = self.grid, self.step, self.grid.patch, self.grid.cols, self.model.cfg.scale
        router = self.router
        device = self.lr.device
        router.start(grid.count, device)
        classes = self.classes
        computed = (0, 0, 0)
        with torch.inference_mode():
            padded = pad_to_grid(self.lr, grid)
            kept: torch.Tensor | None = None  # HR outputs of the carried patch rows
            r0 = new = done_rows = 0  # first patch row of the band, first not yet computed, LR rows emitted
            while True:
                r1 = min(grid.rows, r0 + self.per_band)
                last = r1 == grid.rows
                strip = padded[:, :, new * step : (r1 - 1) * step + p]
                patches = F.unfold(strip, kernel_size=p, stride=step).transpose(1, 2).reshape(-1, 3, p, p)
                offset, k = new * cols, (0 if kept is None else kept.shape[0])
                sub = TileGrid((r1 - r0 - 1) * step + p, grid.width, p, step, r1 - r0, cols)
                keep_from = None if last or not self.carry else (r1 - r0 - self.carry) * cols
                sink = _BandSink(sub, s, self.blend, self.lr.new_empty(0, dtype=_dtype(self.model)), keep_from)
                if kept is not None:
                    sink.put(torch.arange(k, device=device), kept)
                sink.first_new = k
                index = torch.arange(offset, offset + patches.shape[0], device=device)
                cls, got = router.route(
                    self.model, patches, index, sink.put_new,
                    progress=self._band_progress(offset),
                )
                classes[offset : offset + cls.numel()] = cls.cpu()
                computed = (computed[0] + got[0], computed[1] + got[1], computed[2] + got[2])
                band = sink.image()
                end = grid.height if last else r1 * step  # rows below r1*step need patch row r1
                yield Band(done_rows * s, band[:, :, (done_rows - r0 * step) * s : (end - r0 * step) * s])
                done_rows = end
                if last:
                    break
                kept = sink.carried()
                r0, new = r1 - self.carry, r1
                del band, patches, sink
        self._result = _route_result(self.model, grid, classes, computed, router.classified)

    def _iter_cells(self, plan: CellPlan) -> Iterator[Band]:
        model, router, s = self.model, self.router, self.model.cfg.scale
        policy = router.policy
        per_band = plan.padded_rows
        if self.band_rows is not None or self.band_patches is not None:
            per_band = max(1, self.band_rows or math.ceil((self.band_patches or BAND_PATCHES) / plan.cols))
        if self.band_bytes is not None:
            # the output takes the frame's dtype (the bicubic base's), not the weights' (ResidualSR._apply)
            per_band = min(per_band, memory_rows(plan, s, self.lr.element_size(), self.band_bytes))
        per_band = -(-per_band // plan.block) * plan.block  # whole blocks of rows
        router.start(plan.rows * plan.cols, self.lr.device)
        branches = [b for b in model.branches if isinstance(b, ResidualSR)]
        costs = unit_flops(model, plan)["residual_px"]
        call, factor = call_pixels(self.lr.device), tile_factor(self.lr.device)
        residual = [0, 0, 0]  # FLOPs of each branch's residual, as run
        reuse = router.reuse
        computed = torch.zeros(3, dtype=torch.long)
        with torch.inference_mode():
            padded = pad_frame(self.lr, plan)
            fresh: torch.Tensor | None = None  # with reuse: the cells to compute, (rows, cols) bool on the CPU
            if reuse is not None:
                reach = max(plan.margin, *(base_reach(plan, b) for b in branches))
                windows = cell_windows(self.lr, plan, reach)
                todo = reuse.changed(windows, torch.arange(windows.shape[0], device=windows.device))
                fresh = torch.zeros(plan.rows * plan.cols, dtype=torch.bool)
                fresh[todo.cpu()] = True
                fresh = fresh.view(plan.rows, plan.cols)
                if reuse.hr is None or reuse.hr.shape[2:] != (plan.height * s, plan.width * s):
                    fresh[:] = True  # nothing to reuse from (a first frame, or another size)
            idle = fresh is not None and not bool(fresh.any())  # nothing changed: no classifier, no branch
            if isinstance(policy, Forced):
                frame = torch.full((plan.rows, plan.cols), policy.branch, dtype=torch.long)
            elif idle and reuse is not None and reuse.cls is not None:
                frame = reuse.cls.view(plan.rows, plan.cols).clone()
            else:
                frame = classify_frame_cells(model, padded, plan, per_band, getattr(policy, "tolerance", None))
            based = 0  # LR rows the base ran on
            for r0 in range(0, plan.rows, per_band):
                r1 = min(plan.padded_rows, r0 + per_band)
                real = min(r1, plan.rows) - r0
                keep = None if fresh is None else ~fresh[r0 : r0 + real]
                y0 = r0 * plan.step
                height = min(r1 * plan.step, plan.height) - y0
                if keep is not None and reuse is not None and bool(keep.all()):  # a band reused whole: nothing runs
                    rows, run = self._held_band(reuse, r0, y0, height, keep)
                    self.classes[r0 * plan.cols : (r0 + real) * plan.cols] = run.reshape(-1)
                    if self.progress is not None:
                        self.progress((r0 + real) * plan.cols, plan.rows * plan.cols)
                    yield Band(y0 * s, rows)
                    continue
                band = band_input(padded, plan, r0, r1)
                cls = frame[r0 : r0 + real]
                based += height
                lo, hi = band_rows(plan, y0, height, base_reach(plan, branches[-1]))
                whole = (hi - lo) * plan.width if self.whole_bands else 0
                tiles = plan_tiles(cls, plan, costs, whole, call_pixels=call, tile_factor=factor)
                if keep is not None and bool(keep.any()):
                    if branches[max(tiles.base, 0)].width == 0:
                        # The band runs as tiles (no branch on the whole band): the reused cells drop out of them,
                        # and the fresh ones are computed as without reuse (a tile is exact whatever its extent).
                        tiles = plan_tiles(cls.masked_fill(keep.to(cls.device), 0), plan, costs, whole,
                                           call_pixels=call, tile_factor=factor)
                    else:
                        # A branch runs on the whole band: the band is computed as without reuse, every cell of it
                        # (a fresh cell as a tile would differ from that call near the frame's edges, where a
                        # tile's context is replicate-padded and the whole band's convolutions pad with zeros).
                        keep = torch.zeros_like(keep)
                        assert fresh is not None
                        fresh[r0 : r0 + real] = True
                rows, spent = run_cells(branches, band, plan, tiles, height, lr=self.lr, y0=y0,
                                     batch_size=router.batch_size)
                residual = [a + b for a, b in zip(residual, spent, strict=True)]
                run = tiles.run[:real].cpu()
                if keep is not None and reuse is not None:
                    rows, run = self._reuse_band(reuse, keep, rows, run, r0, y0)
                    computed += torch.bincount(run[~keep], minlength=3)
                else:
                    computed += torch.bincount(run.reshape(-1), minlength=3)
                flat = run.reshape(-1)
                self.classes[r0 * plan.cols : (r0 + real) * plan.cols] = flat
                if self.progress is not None:
                    self.progress((r0 + real) * plan.cols, plan.rows * plan.cols)
                yield Band(r0 * plan.step * s, rows)
            if reuse is not None and fresh is not None:
                reuse.store_cells(windows, fresh.view(-1), self.classes)
        done = tuple(int(c) for c in computed.tolist())
        router.count(self.classes, computed=(done[0], done[1], done[2]))
        classified = router.classified
        r3 = (residual[0], residual[1], residual[2])
        self._result = RouteResult(
            grid=self.grid,
            classes=self.classes.reshape(plan.rows, plan.cols),
            computed=(done[0], done[1], done[2]),
            flops=cell_flops(model, plan, r3, classified=classified and not idle, base_rows=based),
            flops_paper=cell_flops(model, plan, r3, classified=classified and not idle, base_rows=based,
                                   convention="paper"),
            decided=frame.cpu() if classified else None,
        )

    def _held_band(self, reuse: Reuse, r0: int, y0: int, height: int, keep: torch.Tensor,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """A band whose every cell is reused: a copy of its rows of :attr:`Reuse.hr` (the consumer may write into
        it) and the classes that computed them."""
        assert reuse.hr is not None
        s = self.model.cfg.scale
        return reuse.hr[:, :, y0 * s : (y0 + height) * s].clone(), _stored_classes(reuse, r0, keep).clone()

    def _reuse_band(self, reuse: Reuse, keep: torch.Tensor, rows: torch.Tensor, run: torch.Tensor, r0: int, y0: int,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A band's HR ``rows`` and cell classes ``run`` with the cells in ``keep`` (``(real, cols)`` bool) taken
        from the output they were last computed into, which :attr:`Reuse.hr` (the previous frame's output) holds;
        the band is then stored there for the next frame."""
        s, st = self.model.cfg.scale, self.step  # cells are step x step
        h, w = rows.shape[2], rows.shape[3]
        if reuse.hr is None or reuse.hr.shape[2:] != (self.lr.shape[2] * s, self.lr.shape[3] * s):
            reuse.hr = rows.new_empty((1, rows.shape[1], self.lr.shape[2] * s, self.lr.shape[3] * s))
        held = reuse.hr[:, :, y0 * s : y0 * s + h]
        if bool(keep.any()):
            mask = keep.repeat_interleave(st * s, 0).repeat_interleave(st * s, 1)[:h, :w].to(rows.device)
            rows = torch.where(mask, held, rows)
            run = torch.where(keep, _stored_classes(reuse, r0, keep), run)
        held.copy_(rows)
        return rows, run

    def _band_progress(self, offset: int) -> Progress | None:
        progress, total = self.progress, self.grid.count
        if progress is None:
            return None
        return lambda n, _m: progress(offset + n, total)


def _stored_classes(reuse: Reuse, r0: int, keep: torch.Tensor) -> torch.Tensor:
    """The classes that computed the stored outputs of the band of cell rows from ``r0`` shaped as ``keep``, on the
    CPU."""
    assert reuse.cls is not None
    start = r0 * keep.shape[1]
    return reuse.cls[start : start + keep.numel()].view_as(keep).cpu()


#: Fewest cell rows in a band cut by :func:`memory_rows`: each band's base recomputes its receptive radius above
#: and below (12 LR rows for the x4 default's medium branch), a tenth of 4 rows of 28.
MIN_MEMORY_ROWS = 4


def memory_rows(plan: CellPlan, scale: int, itemsize: int, budget: int = BAND_BYTES) -> int:
    """Cell rows per band for :class:`FrameRun` ``band_bytes``: all of them when the frame's HR output (3 colours
    of ``itemsize`` bytes) is at most ``2 * budget`` bytes, else as many as ``budget`` holds, at least
    :data:`MIN_MEMORY_ROWS`."""
    row_bytes = 3 * scale * scale * itemsize * plan.step * plan.width
    if row_bytes * plan.rows <= 2 * budget:
        return plan.padded_rows
    return max(MIN_MEMORY_ROWS, budget // row_bytes)


def cell_path(model: ClassSR, router: Router, step: int) -> bool:
    """Whether a frame runs as cells: a residual-family model, routed by its classifier's decision (or a forced
    branch), with or without reuse, at a step cells can use (a multiple of 4 differing from the patch by an even
    number)."""
    p = model.cfg.patch
    return (is_cellular(model) and isinstance(router.policy, Argmax | Forced)
            and step % 4 == 0 and (p - step) % 2 == 0)


def _dtype(model: ClassSR) -> torch.dtype:
    return next(model.parameters()).dtype


def _route_result(
    model: ClassSR, grid: TileGrid, classes: torch.Tensor, computed: tuple[int, int, int], classified: bool
) -> RouteResult:
    c = torch.bincount(classes, minlength=3).tolist()
    counts = (int(c[0]), int(c[1]), int(c[2]))
    pixels = grid.height * grid.width
    return RouteResult(
        grid=grid,
        classes=classes.reshape(grid.rows, grid.cols),
        computed=computed,
        flops=flops_report(model, counts, pixels, "real", classified=classified, computed=computed),
        flops_paper=flops_report(model, counts, pixels, "paper", classified=classified, computed=computed),
        decided=classes.reshape(grid.rows, grid.cols) if classified else None,
    )


def upscale_tensor(
    model: ClassSR,
    lr: torch.Tensor,
    *,
    router: Router | None = None,
    step: int = DEFAULT_STEP,
    batch_size: int = DEFAULT_BATCH,
    force_branch: int | None = None,
    tolerance: float | None = None,
    blend: str = DEFAULT_BLEND,
    progress: Progress | None = None,
    band_bytes: int | None = None,
    tta: int = 1,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, RouteResult]:
    """Upscale one LR frame ``(1, 3, H, W)``, whole (one band), or with ``band_bytes`` planned band by band as
    ``FrameRun(band_bytes=...)`` plans it (the bands joined). Returns ``(sr, result)``, ``sr`` of shape
    ``(1, 3, s*H, s*W)``, float and not clamped. ``router`` defaults to the model's decision at ``tolerance``
    (or ``force_branch``). ``tta``: the mean of that many passes under flips and transposes
    (:func:`~classsr_cli.engine.tta.ensemble`), the router's state-free policy deciding each pass afresh (the
    router itself runs the first pass: its frames and stats are that pass's); ``progress`` then counts the patches
    of every pass, and ``out`` is the buffer the mean is made in and returned as ``sr`` (zeros, float32: a
    memory-mapped file's for a frame too large to hold)."""
    check_tta(tta)
    if router is None:
        router = Router(Forced(force_branch) if force_branch is not None else Argmax(tolerance), batch_size=batch_size)
    elif tta > 1 and (router.reuse is not None or not isinstance(router.policy, Argmax | Forced)):
        raise ConfigError("--tta decides every pass afresh: it does not combine with reuse or hysteresis")

    if tta == 1:
        if out is not None:
            raise ValueError("out is the buffer of a self-ensemble's mean (tta > 1)")
        run = FrameRun(model, lr, router=router, step=step, blend=blend, progress=progress, band_bytes=band_bytes)
        bands = [band.rows for band in run]
        return (bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)), run.result
    routes: list[RouteResult] = []

    def one_pass(x: torch.Tensor, k: int) -> Iterator[tuple[int, torch.Tensor]]:
        each = None if progress is None else _pass_progress(progress, k, tta)
        # the router's frames and stats count the first pass (a video's frames, its classes frame to frame)
        by = router if k == 0 else Router(router.policy, batch_size=router.batch_size)
        run = FrameRun(model, x, router=by, step=step, blend=blend, progress=each, band_bytes=band_bytes)
        for band in run:
            yield band.y, band.rows
        routes.append(run.result)

    sr = ensemble(one_pass, lr, tta, model.cfg.scale, out=out)
    return sr, combine_routes(routes)


def _pass_progress(progress: Progress, k: int, passes: int) -> Progress:
    """``progress`` of pass ``k`` of ``passes``, counted over them all."""
    return lambda done, total: progress(k * total + done, passes * total)
