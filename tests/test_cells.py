"""Cell execution (engine/cells.py) through FrameRun: the residual family's fast routed path."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from classsr_cli.config import ClassSRConfig
from classsr_cli.engine.bands import FrameRun, upscale_tensor
from classsr_cli.engine.cells import CellPlan
from classsr_cli.engine.router import Argmax, Forced, Hysteresis, Router
from classsr_cli.models import build_model
from classsr_cli.models.classsr import DEFICIT_EPS, ClassSR


def residual_model() -> ClassSR:
    """A tiny seeded x2 residual-family model (bicubic light branch) with random weights: the cell path."""
    torch.manual_seed(5)
    m = build_model(ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8,
                                  routing="deficit", tolerance=1.0)).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert isinstance(m, ClassSR)
    return m


@pytest.fixture
def model() -> ClassSR:
    return residual_model()


def test_cells_route_like_classify_frame_and_bands_equal_the_whole_frame(model: ClassSR) -> None:
    from dataclasses import replace

    lr = torch.rand(1, 3, 75, 61)
    lr[..., :40] = 0.5  # flat and noisy cells
    padded = torch.nn.functional.pad(lr, (2, 3 * 28 - 61 + 2, 2, 3 * 28 - 75 + 2), mode="replicate")
    with torch.no_grad():
        light = 10 ** model.classifier.grid_scores(padded, 32, 28)[0, ..., 0] - DEFICIT_EPS
    u = light.flatten().unique()  # sorted; a tolerance halfway between two values: no cell on the boundary
    model.cfg = replace(model.cfg, tolerance=float(u[len(u) // 2 - 1] + u[len(u) // 2]) / 2)  # some cells go light
    whole = FrameRun(model, lr, block=1, whole_bands=False)  # every cell runs the branch of its class
    (band,) = list(whole)
    assert whole.cells is not None and band.rows.shape == (1, 3, 150, 122)
    assert torch.equal(whole.result.classes, model.classify_frame(lr, 28))
    assert whole.result.decided is not None and torch.equal(whole.result.decided, whole.result.classes)
    assert len(set(whole.result.classes.flatten().tolist())) > 1  # the test routes to several branches
    banded = FrameRun(model, lr, band_rows=1, block=1, whole_bands=False)
    parts = list(banded)
    assert len(parts) == 3 and [p.y for p in parts] == [0, 56, 112]
    assert torch.allclose(torch.cat([p.rows for p in parts], 2), band.rows, atol=1e-6)
    assert torch.equal(banded.result.classes, whole.result.classes)
    assert whole.result.counts == tuple(torch.bincount(whole.result.classes.flatten(), minlength=3).tolist())


def test_a_banded_frame_spends_its_budget_and_cap_over_the_whole_frame() -> None:
    """A frame budget (``--tolerance`` dB) and the default's frame cap weigh the whole frame, however it is cut
    into bands: a flat half and a textured half route as in one band, where budgets per band would differ."""
    from dataclasses import replace

    from classsr_cli.models.classsr import budget_classes, capped_classes, priced_classes

    torch.manual_seed(5)
    m = build_model(ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8, routing="budget",
                                  tolerance=0.05)).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert isinstance(m, ClassSR)
    lr = torch.rand(1, 3, 112, 61, generator=torch.Generator().manual_seed(2))
    lr[:, :, :56] = 0.5 + 0.01 * lr[:, :, :56]  # the top two cell rows flat, the bottom two textured
    padded = F.pad(lr, (2, 3 * 28 - 61 + 2, 2, 2), mode="replicate")
    with torch.no_grad():
        scores = m.classifier.grid_scores(padded, 32, 28)[0].reshape(-1, 3)
    halves = (scores[:6], scores[6:])
    costs = m.branch_costs
    for tol in (0.05, 0.5, 2.0):
        frame = budget_classes(scores, tol, costs)
        per_band = torch.cat([budget_classes(h, tol, costs) for h in halves])
        run = FrameRun(m, lr, router=Router(Argmax(tol)), band_rows=2, block=1, whole_bands=False)
        assert len(list(run)) == 2 and torch.equal(run.result.classes.flatten(), frame)
        if not torch.equal(frame, per_band):
            break
    else:
        pytest.fail("no tolerance where per-band budgets differ from the frame's: the test shows nothing")
    for price, cap in ((4.0, 0.05), (4.0, 0.5), (40.0, 0.2)):
        m.cfg = replace(m.cfg, cell_price=price, frame_cap_db=cap)
        want = capped_classes(scores, priced_classes(scores, price, costs), cap, costs)
        run = FrameRun(m, lr, band_rows=2, block=1, whole_bands=False)
        assert len(list(run)) == 2 and torch.equal(run.result.classes.flatten(), want)


def test_band_bytes_cut_only_frames_whose_output_passes_twice_the_budget(model: ClassSR) -> None:
    """``FrameRun(band_bytes=B)``: a frame whose float output is at most 2B stays one band; a larger one comes in
    bands of whole blocks of the cell rows B holds, at least four: the same pixels as those bands asked for by
    rows, and the whole frame's classes."""
    from classsr_cli.engine.bands import MIN_MEMORY_ROWS, memory_rows
    from classsr_cli.engine.cells import plan_cells

    plan = plan_cells(330, 61, step=28, patch=32, halo=3)  # 12 cell rows; x2, float32: 81,984 bytes a cell row
    row = 3 * 2 * 2 * 4 * 28 * 61
    assert MIN_MEMORY_ROWS == 4
    assert memory_rows(plan, 2, 4, 6 * row) == plan.padded_rows  # 12 rows <= 2 * 6
    assert memory_rows(plan, 2, 4, 5 * row) == 5 and memory_rows(plan, 2, 4, row) == 4  # at least 4
    assert memory_rows(plan, 2, 2, 3 * row) == plan.padded_rows and memory_rows(plan, 2, 2, 5 * row // 2) == 5
    lr = torch.rand(1, 3, 330, 61)
    lr[..., :30] = 0.5  # flat and noisy cells
    whole = FrameRun(model, lr)
    (all_rows,) = list(whole)
    (one,) = list(FrameRun(model, lr, band_bytes=6 * row))
    assert torch.equal(one.rows, all_rows.rows)
    for block, budget, rows, ys in ((1, 5 * row, 5, [0, 280, 560]), (4, 5 * row, 8, [0, 448]),
                                    (1, row, 4, [0, 224, 448])):
        cut = FrameRun(model, lr, band_bytes=budget, block=block)
        parts = list(cut)
        assert [p.y for p in parts] == ys
        by_rows = FrameRun(model, lr, band_rows=rows, block=block)
        assert torch.equal(torch.cat([p.rows for p in parts], 2), torch.cat([p.rows for p in by_rows], 2))
        assert torch.equal(cut.result.classes, whole.result.classes)
    # a bfloat16 model's output on a float32 frame is float32: bands as float32's; a bfloat16 frame's, half the bytes
    half = copy.deepcopy(model).to(torch.bfloat16)
    assert [p.rows.dtype for p in FrameRun(half, lr, band_bytes=4 * row)] == [torch.float32] * 3  # 4 rows each
    assert len(list(FrameRun(half, lr.to(torch.bfloat16), band_bytes=4 * row))) == 1  # 12 half rows <= 2 * 4


def test_cells_see_the_receptive_radius_by_default_and_pay_only_what_their_layers_compute(model: ClassSR) -> None:
    """Without a halo given, cells run with the branches' receptive radius (exact), each layer on what the
    core needs (a tile is priced at its layers' mean area, less than the padded tile's)."""
    from classsr_cli.engine.cells import plan_cells

    lr = torch.rand(1, 3, 56, 84)
    run = FrameRun(model, lr, router=Router(Forced(2)), whole_bands=False, block=1)
    assert run.cells is not None and run.cells.halo == run.cells.layers == 3  # depth 1: three convolutions
    (full,) = list(run)
    with torch.no_grad():
        want = model.branches[2](lr)
    assert torch.allclose(full.rows[..., 6:-6, 6:-6], want[..., 6:-6, 6:-6], atol=1e-5)
    assert run.result.flops.used < run.result.flops.heavy  # one tile of the six cells, not six tiles
    assert run.result.decided is None and "decided" not in run.result.routing()  # forced: nothing decided
    shrinking = plan_cells(56, 84, step=28, patch=32, halo=3, layers=3)
    padded = plan_cells(56, 84, step=28, patch=32, halo=3)
    # a canvas piece: its rows shrink a pixel a side per layer, its columns keep their context
    assert shrinking.tile_area(28, 28) == (32 + 30 + 28) * 34 / 3 < padded.tile_area(28, 28) == 34 * 34
    assert shrinking.core(2) == (28, 28) and plan_cells(50, 70, step=28, patch=32, halo=3).core(2, 1, 1) == (28, 14)


def test_the_per_cell_reference_counts_edge_cells_as_they_run(model: ClassSR) -> None:
    """"FLOPs saved vs heavy on every patch" compares with the heavy branch on every cell as a tile of its
    own: a frame one pixel wider than two cells has a third column of cells one pixel wide, not 28."""
    refs = []
    for width in (56, 57):
        run = FrameRun(model, torch.rand(1, 3, 28, width), router=Router(Forced(2)))
        list(run)
        assert run.cells is not None and run.cells.cols == -(-width // 28)
        refs.append(run.result.flops.heavy)
    assert refs[0] < refs[1] < 1.2 * refs[0]  # an uncropped third cell would add half


def test_forced_heavy_cells_with_a_full_halo_equal_the_heavy_branch_on_the_frame(model: ClassSR) -> None:
    lr = torch.rand(1, 3, 40, 50)
    sr, res = upscale_tensor(model, lr, force_branch=2)
    run = FrameRun(model, lr, router=Router(Forced(2)), halo=3)  # depth 1: radius 3
    (full,) = list(run)
    with torch.no_grad():
        want = model.branches[2](lr)
    b = 2 * 3
    assert torch.allclose(full.rows[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5)
    assert res.counts == (0, 0, res.grid.count) and not run.router.classified
    assert torch.allclose(sr, want, atol=1e-5)  # all heavy: one band of the heavy branch, borders included


def _luma_model(seed: int) -> tuple[ClassSRConfig, ClassSR]:
    """A x2 residual model whose medium branch corrects luma alone, with random weights large enough to show."""
    torch.manual_seed(seed)
    cfg = ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8, routing="deficit",
                        tolerance=1.0, luma=(False, True, False))
    m = build_model(cfg).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert isinstance(m, ClassSR)
    return cfg, m


def test_a_luma_branch_routes_as_cells_like_an_rgb_one() -> None:
    """A model whose medium branch corrects luma alone: its routed cells (tiles and whole bands) are that
    branch's output on the frame, and the FLOPs count its smaller output convolution."""
    from dataclasses import replace

    cfg, m = _luma_model(6)
    lr = torch.rand(1, 3, 40, 50)
    run = FrameRun(m, lr, router=Router(Forced(1)), halo=3, whole_bands=False)  # tiles
    (tiles,) = list(run)
    sr, res = upscale_tensor(m, lr, force_branch=1)  # one band of the medium branch
    with torch.no_grad():
        want = m.branches[1](lr)
    b = 2 * 3
    assert torch.allclose(tiles.rows[..., b:-b, b:-b], want[..., b:-b, b:-b], atol=1e-5)
    assert torch.allclose(sr, want, atol=1e-5)
    rgb = build_model(replace(cfg, luma=(False, False, False))).eval()
    assert isinstance(rgb, ClassSR)
    _, res_rgb = upscale_tensor(rgb, lr, force_branch=1)
    assert 0 < res.flops.used < res_rgb.flops.used


@pytest.mark.parametrize(("dtype", "frame"), [(torch.float32,) * 2, (torch.bfloat16, torch.float32), (torch.bfloat16,) * 2])
def test_a_luma_base_and_luma_tiles_add_to_each_colour_in_the_frames_dtype(dtype: torch.dtype, frame: torch.dtype) -> None:
    """A luma medium branch as the base under an RGB heavy tile, and as a tile over bicubic: the routed frame is
    each branch's own output on its cells, whether the luma residual is added per colour slice (a float32 frame)
    or copied to R, G and B first (a 16-bit frame, :func:`expand_luma`). The bicubic base and the sum take the
    frame's dtype, the residuals the weights': a float32 frame under a bfloat16 model comes out float32, its
    bicubic cells bicubic to float32 rounding (the pipeline's 16-bit pictures)."""
    from classsr_cli.engine.cells import band_input, pad_frame, plan_cells, plan_tiles, run_cells
    from classsr_cli.models.residual import expand_luma

    assert expand_luma(frame) == (frame != torch.float32)
    m = _luma_model(8)[1].to(dtype)
    branches = list(m.branches)
    assert all(b.bicubic.dtype == torch.float32 for b in branches)
    plan = plan_cells(112, 112, step=28, patch=32, halo=3)
    lr = torch.rand(1, 3, 112, 112).to(frame)
    band = band_input(pad_frame(lr, plan), plan, 0, 4)
    with torch.no_grad():  # each branch's output built apart from add_residual: its residual copied to R, G, B
        bicubic, medium, heavy = (
            F.pixel_shuffle(b.upsample(lr).float() + (0 if b.width == 0 else b.residual(lr).float()), 2)
            for b in branches)
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    atol = 1e-5 if dtype == torch.float32 else 0.01 if frame == torch.float32 else 0.05
    on_base = torch.ones(4, 4, dtype=torch.long)
    on_base[2, 1] = 2
    alone = torch.zeros(4, 4, dtype=torch.long)
    alone[1, 2] = 1
    for cls, under, over, cell in ((on_base, medium, heavy, (2, 1)), (alone, bicubic, medium, (1, 2))):
        tiles = plan_tiles(cls, plan, [0.0, 1.0, 3.0], band_pixels=112 * 112)
        assert len(tiles.rects) == 1 and tiles.base == (1 if cls is on_base else 0)
        got, _ = run_cells(branches, band, plan, tiles, 112, lr=lr, y0=0)  # type: ignore[arg-type]
        assert got.dtype == frame
        mask = torch.zeros(1, 1, 224, 224, dtype=torch.bool)
        mask[..., 56 * cell[0] : 56 * cell[0] + 56, 56 * cell[1] : 56 * cell[1] + 56] = True
        want = torch.where(mask, over, under)
        assert (got.float() - want)[inner].abs().max() < atol
        if cls is alone and frame == torch.float32:  # no 16-bit rounding of the base
            assert (got - bicubic)[..., :56, :56].abs().max() < 1e-5
        assert (over - under)[mask.expand_as(over)].abs().max() > 10 * atol  # the tile shows


def test_tolerance_dial_trades_cost_for_quality_without_retraining(model: ClassSR) -> None:
    lr = torch.rand(1, 3, 64, 64)
    results = []
    for tol in (0.0, 1.0, 1e6):
        run = FrameRun(model, lr, router=Router(Argmax(tol)))
        list(run)
        results.append(run.result)
    assert results[0].counts[2] == results[0].grid.count  # tolerance 0: only heavy is within it
    assert results[2].counts[0] == results[2].grid.count  # anything goes: all bicubic
    used = [r.flops.used for r in results]
    assert used[0] >= used[1] >= used[2] and used[0] > 2 * used[2]
    # all heavy runs as a whole band (the halo rows and the classifier cost a little more than heavy whole)
    assert results[2].flops.saved_vs_whole > 0.5 and -0.5 < results[0].flops.saved_vs_whole < 0


def test_other_policies_take_the_patch_path(model: ClassSR) -> None:
    lr = torch.rand(1, 3, 40, 40)
    run = FrameRun(model, lr, router=Router(Hysteresis(0.1)))
    (band,) = list(run)
    assert run.cells is None and band.rows.shape == (1, 3, 80, 80)
    assert set(run.result.classes.flatten().tolist()) <= {0, 1, 2}


def test_cover_merges_runs_of_a_branch_into_rectangles() -> None:
    from classsr_cli.engine.cells import cover

    run = [[2, 2, 1, 1, 0],
           [2, 2, 1, 1, 2],
           [2, 2, 2, 1, -1]]
    rects = cover(run)
    assert sorted(rects) == sorted([(2, 0, 0, 2, 2), (1, 0, 2, 2, 2), (0, 0, 4, 1, 1), (2, 1, 4, 1, 1),
                                    (2, 2, 0, 1, 3), (1, 2, 3, 1, 1)])
    covered = [[-1] * 5 for _ in range(3)]
    for k, r, c, h, w in rects:
        for y in range(r, r + h):
            for x in range(c, c + w):
                assert covered[y][x] == -1  # no cell twice
                covered[y][x] = k
    assert covered == run


def test_the_tile_planner_merges_cells_never_lightens_them_and_upgrades_only_when_cheaper(model: ClassSR) -> None:
    """Cells of a branch run as rectangles (the halo paid once per rectangle, not per cell); with a full halo
    the pixels are the heavy branch's on the frame; blocks only move cells up to heavier branches, and only
    when the whole plan then costs less."""
    from classsr_cli.engine.cells import plan_cells, plan_tiles

    lr = torch.rand(1, 3, 112, 112)
    run = FrameRun(model, lr, router=Router(Forced(2)), block=2, halo=3, whole_bands=False)
    (band,) = list(run)
    assert run.result.classes.tolist() == [[2] * 4] * 4
    assert run.result.flops.used < run.result.flops.heavy  # one (112+6)² tile, not 16 cells of (28+6)²
    with torch.no_grad():
        want = model.branches[2](lr)
    assert torch.allclose(band.rows[..., 6:-6, 6:-6], want[..., 6:-6, 6:-6], atol=1e-5)
    plan = plan_cells(112, 112, step=28, patch=32, halo=4, block=2)
    costs = [0.0, 1.0, 3.0]
    speckled = torch.full((4, 4), 2)
    speckled[0, 1] = speckled[3, 2] = 1  # lone medium cells inside heavy blocks: raising them costs less
    tiles = plan_tiles(speckled, plan, costs)
    assert tiles.run.tolist() == [[2] * 4] * 4 and len(tiles.rects) == 1
    assert tiles.cost < plan_tiles(speckled, plan_cells(112, 112, step=28, patch=32, halo=4), costs).cost
    halves = torch.tensor([[2, 2, 1, 1]] * 4)  # each block is one class: nothing to raise
    assert torch.equal(plan_tiles(halves, plan, costs).run, halves)
    for tol in (0.0, 0.5, 2.0, 1e9):
        mixed = FrameRun(model, lr, router=Router(Argmax(tol)), block=2, whole_bands=False)
        list(mixed)
        decided = mixed.result.decided  # what the classifier decided, before the planner raised cells
        assert decided is not None and torch.equal(decided, model.classify_frame(lr, 28, tol))
        assert bool((mixed.result.classes >= decided).all())
        assert mixed.result.routing()["decided"] == decided.tolist()
        single = FrameRun(model, lr, router=Router(Argmax(tol)), block=1, whole_bands=False)
        list(single)
        assert mixed.result.flops.used <= single.result.flops.used


def test_a_base_branch_runs_on_the_whole_band_and_heavier_cells_replace_it(model: ClassSR) -> None:
    """A band of mostly medium cells runs medium on all of it (no halos) and heavy only on its heavy cells: the
    lighter cells take medium, the heavy cell's pixels are heavy's (full halo), and it costs less than tiles."""
    from classsr_cli.engine.cells import (
        CALL_PIXELS,
        band_input,
        call_pixels,
        pad_frame,
        plan_cells,
        plan_tiles,
        run_cells,
    )

    plan = plan_cells(112, 112, step=28, patch=32, halo=3)
    costs = [0.0, 1.0, 3.0]
    cls = torch.ones(4, 4, dtype=torch.long)
    cls[0, 0], cls[2, 1] = 0, 2
    tiles = plan_tiles(cls, plan, costs, band_pixels=112 * 112)
    assert tiles.base == 1 and tiles.rects == ((2, 2, 1, 1, 1),)
    assert torch.equal(tiles.run, cls.clamp(min=1))
    assert tiles.cost == 112 * 112 * 1.0 + 3.0 * 34 * 34 + 2 * 3.0 * CALL_PIXELS["cpu"]  # two calls: base and tile
    assert tiles.cost < plan_tiles(cls, plan, costs).cost and plan_tiles(cls, plan, costs).base == 0
    assert plan_tiles(torch.full((4, 4), 2), plan, costs, band_pixels=112 * 112).rects == ()  # heavy whole
    two = torch.zeros(4, 4, dtype=torch.long)
    two[0, 0] = two[2, 0] = two[2, 1] = 2  # tiles of two widths, one height: one canvas, one call
    spread = plan_tiles(two, plan, costs)
    assert sorted(spread.rects) == [(2, 0, 0, 1, 1), (2, 2, 0, 1, 2)]
    assert spread.cost == 3.0 * (34 * 34 + 34 * 62) + 3.0 * CALL_PIXELS["cpu"]
    two[2, 1], two[3, 0] = 0, 2  # a tile two cells tall: a second canvas, a second call
    assert sorted(plan_tiles(two, plan, costs).rects) == [(2, 0, 0, 1, 1), (2, 2, 0, 2, 1)]
    assert plan_tiles(two, plan, costs).cost == 3.0 * (34 * 34 + 62 * 34) + 2 * 3.0 * CALL_PIXELS["cpu"]
    # a tile pixel priced at a multiple of a whole band's (TILE_FACTOR): the tiles' part of the cost scales, and
    # a plan of tiles that beats the heavy branch on the whole band at 1 loses to it at 10
    dear = plan_tiles(cls, plan, costs, band_pixels=112 * 112, tile_factor=2.0)
    assert dear.base == 1 and dear.cost == 112 * 112 * 1.0 + 2.0 * 3.0 * 34 * 34 + 2 * 3.0 * CALL_PIXELS["cpu"]
    assert plan_tiles(two, plan, costs, band_pixels=112 * 112).base == 0
    assert plan_tiles(two, plan, costs, band_pixels=112 * 112, tile_factor=10.0).base == 2
    # a GPU's call costs tens of thousands of pixels: the same band then runs one branch whole, no tiles
    gpu = plan_tiles(cls, plan, costs, band_pixels=112 * 112, call_pixels=call_pixels(torch.device("cuda")))
    assert gpu.rects == () and gpu.base == 2 and call_pixels(torch.device("cpu")) == CALL_PIXELS["cpu"]
    lr = torch.rand(1, 3, 112, 112)
    branches = list(model.branches)
    band = band_input(pad_frame(lr, plan), plan, 0, 4)
    got, flops = run_cells(branches, band, plan, tiles, 112, lr=lr, y0=0)  # type: ignore[arg-type]
    medium_b, heavy_b = model.branches[1], model.branches[2]
    assert flops == (0, medium_b.tile_flops(112, 112), heavy_b.tile_flops(28, 28, 3))  # type: ignore[operator]
    assert flops[2] < heavy_b.tile_flops(34, 34)  # type: ignore[operator]  # its layers shrink into the halo
    with torch.no_grad():
        medium, heavy = model.branches[1](lr), model.branches[2](lr)
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    mask = torch.zeros(1, 1, 224, 224, dtype=torch.bool)
    mask[..., 112:168, 56:112] = True  # cell (2, 1) at x2
    assert torch.allclose(torch.where(mask, heavy, medium)[inner], got[inner], atol=1e-5)
    with pytest.raises(ValueError, match="base branch"):
        run_cells(branches, band, plan, tiles, 112)  # type: ignore[arg-type]
    frame = torch.rand(1, 3, 90, 70)  # bands of one cell row, as base or as tiles: the branch's pixels in each
    parts = list(FrameRun(model, frame, router=Router(Forced(1)), band_rows=1, block=1))
    with torch.no_grad():
        assert len(parts) == 4 and torch.allclose(torch.cat([p.rows for p in parts], 2)[inner],
                                                  model.branches[1](frame)[inner], atol=1e-5)


def test_a_band_routing_cannot_pay_for_runs_the_heavy_branch_whole(model: ClassSR) -> None:
    """All-heavy cells cost their halos; the heavy branch on the whole band costs only the band's: the engine
    runs that instead, with the heavy branch's pixels (inside the frame's border band)."""
    lr = torch.rand(1, 3, 64, 72)
    fast = FrameRun(model, lr, router=Router(Forced(2)), halo=3)
    (band,) = list(fast)
    slow = FrameRun(model, lr, router=Router(Forced(2)), halo=3, whole_bands=False, block=1)
    (cells,) = list(slow)
    with torch.no_grad():
        want = model.branches[2](lr)
    assert torch.allclose(band.rows, want, atol=1e-5)  # one band: the heavy branch's own output, borders included
    assert torch.allclose(cells.rows[..., 6:-6, 6:-6], want[..., 6:-6, 6:-6], atol=1e-5)
    parts = list(FrameRun(model, lr, router=Router(Forced(2)), halo=3, band_rows=1, block=1))  # bands see halo rows
    assert len(parts) == 3 and torch.allclose(torch.cat([p.rows for p in parts], 2)[..., 6:-6, 6:-6],
                                              want[..., 6:-6, 6:-6], atol=1e-5)
    assert fast.result.counts == slow.result.counts == (0, 0, fast.result.grid.count)
    assert fast.result.flops.used < slow.result.flops.used
    assert fast.result.flops.used <= fast.result.flops.whole * ((64 + 6) * (72 + 6)) / (64 * 72) * 1.01
    light = FrameRun(model, lr, router=Router(Argmax(1e9)))  # everything bicubic: routing pays, cells run
    list(light)
    assert light.result.counts[0] == light.result.grid.count
    assert light.result.flops.used < 0.5 * light.result.flops.whole  # bicubic + this tiny model's classifier


def test_the_planner_bound_skips_only_covers_that_cannot_win() -> None:
    """plan_tiles prices the heaviest class's whole-band plan without a cover and skips lighter bases whose lower
    bound is above it: on random bands it picks the same plan as covering every base (the unpruned search)."""
    import random

    from classsr_cli.engine.cells import _plan_over, plan_cells, plan_tiles

    rng = random.Random(0)
    for _ in range(300):
        plan = plan_cells(rng.randint(20, 250), rng.randint(20, 330), step=28, patch=32, halo=rng.choice([0, 4]),
                          block=rng.choice([1, 2]))
        p = rng.random()
        cls = torch.tensor([[min(2, int(rng.random() * 3 * p + (rng.random() < p))) for _ in range(plan.cols)]
                            for _ in range(plan.rows)])
        costs = rng.choice([[0.0, 1.0, 3.0], [0.0, 0.5, 0.6], [0.2, 1.0, 3.0], [0.9, 1.0, 3.0]])  # light may cost
        band = rng.choice([0, plan.height * plan.width])
        call = rng.choice([0, 1000, 43000])
        f = rng.choice([1.0, 1.5])  # the tiles' price factor (TILE_FACTOR)
        got = plan_tiles(cls, plan, costs, band, call_pixels=call, tile_factor=f)
        grid = [[*row, *[-1] * (plan.padded_cols - plan.cols)] for row in cls.tolist()]
        grid += [[-1] * plan.padded_cols] * (plan.padded_rows - plan.rows)
        c = costs[-1] * call
        none = -1 if costs[0] > 0 else 0  # no base (a learned light branch may be one)
        want = _plan_over(grid, plan, costs, none, call=c, factor=f)
        for base in range(none + 1, 3) if band else ():
            if costs[base] <= 0:
                continue
            raised = [[max(v, base) if v >= 0 else v for v in row] for row in grid]
            alt = _plan_over(raised, plan, costs, base, costs[base] * band + c, call=c, factor=f)
            want = alt if alt[2] < want[2] else want
        assert (got.base, got.cost) == (want[3], want[2])
        assert got.run.tolist() == [row[: plan.cols] for row in want[0][: plan.rows]]


def test_a_light_branch_that_computes_something_runs_on_its_cells() -> None:
    """A residual light branch of width > 0 is not bicubic: cells routed to it run it, as tiles (no base covers
    them) or, where its cells fill the band, on the whole band (the branch's own pixels)."""
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    torch.manual_seed(0)
    model = build_model(ClassSRConfig(family="residual", scale=4, widths=(4, 8, 16), classifier_width=8,
                                      routing="deficit")).eval()
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    lr = torch.rand(1, 3, 64, 80)
    run = FrameRun(model, lr, router=Router(Forced(0)), whole_bands=False)
    (band,) = list(run)
    with torch.no_grad():
        want, bicubic = model.branches[0](lr), torch.nn.functional.pixel_shuffle(model.branches[0].upsample(lr), 4)
    # a tile sees 4 LR pixels of context (less than the branch's receptive radius): close to it, far from bicubic
    off_branch, off_bicubic = (band.rows - want).abs().mean(), (band.rows - bicubic).abs().mean()
    assert off_branch < 0.05 * off_bicubic
    assert run.result.flops.used > 0 and run.result.classes.eq(0).all()
    whole = FrameRun(model, lr, router=Router(Forced(0)))  # every cell light: the light branch on the whole frame
    (band,) = list(whole)
    assert torch.allclose(band.rows, want, atol=1e-5) and whole.result.classes.eq(0).all()
    assert 0 < whole.result.flops.used < run.result.flops.used  # no halos


def test_a_learned_light_branch_can_be_the_base_of_a_band() -> None:
    """With a light branch that costs something, a band of light cells and one heavy cell runs light on the whole
    band and heavy on its cell (cheaper than a tile per light cell); with bicubic as the light branch, no base
    is reported as 0, as before."""
    from classsr_cli.engine.cells import CALL_PIXELS, plan_cells, plan_tiles

    plan = plan_cells(112, 112, step=28, patch=32, halo=3)
    cls = torch.zeros(4, 4, dtype=torch.long)
    cls[1, 2] = 2
    got = plan_tiles(cls, plan, [0.3, 1.0, 3.0], band_pixels=112 * 112)
    assert got.base == 0 and got.rects == ((2, 1, 2, 1, 1),) and torch.equal(got.run, cls)
    assert got.cost == 0.3 * 112 * 112 + 3.0 * 34 * 34 + 2 * 3.0 * CALL_PIXELS["cpu"]
    none = plan_tiles(cls, plan, [0.3, 1.0, 3.0])  # no whole band allowed: every cell a tile
    assert none.base == -1 and len(none.rects) > 1 and none.cost > got.cost
    assert plan_tiles(cls, plan, [0.0, 1.0, 3.0], band_pixels=112 * 112).base == 0  # bicubic light: no base


def test_a_shallower_light_branch_routes_as_cells_with_its_own_context() -> None:
    """A light branch of depth 0 (two convolutions) beside deeper ones: its tiles carry the context its own
    layers consume, so routed cells are each branch's output on the frame, and a band of light cells with a
    heavy one runs the light branch as the base."""
    torch.manual_seed(8)
    cfg = ClassSRConfig("residual", 2, (4, 6, 8), {"depth": 2}, classifier_width=8, routing="deficit",
                        tolerance=1.0, luma=(True, False, False), depths=(0, 2, 2))
    m = build_model(cfg).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    assert isinstance(m, ClassSR)
    lr = torch.rand(1, 3, 56, 84)
    with torch.no_grad():
        light, heavy = m.branches[0](lr), m.branches[2](lr)
    for whole in (False, True):
        run = FrameRun(m, lr, router=Router(Forced(0)), whole_bands=whole)
        (band,) = list(run)
        assert torch.allclose(band.rows[..., 8:-8, 8:-8], light[..., 8:-8, 8:-8], atol=1e-5)
    from classsr_cli.engine.cells import band_input, pad_frame, plan_cells, plan_tiles, run_cells, unit_flops

    plan = plan_cells(56, 84, step=28, patch=32, halo=4)
    costs = unit_flops(m, plan)["residual_px"]
    assert 0 < costs[0] < costs[1] < costs[2]
    cls = torch.zeros(2, 3, dtype=torch.long)
    cls[1, 2] = 2
    tiles = plan_tiles(cls, plan, costs, band_pixels=56 * 84)
    assert tiles.base == 0 and [r[0] for r in tiles.rects] == [2]
    got, _ = run_cells(list(m.branches), band_input(pad_frame(lr, plan), plan, 0, 2), plan, tiles, 56, lr=lr,
                       y0=0)  # type: ignore[arg-type]
    mask = torch.zeros(1, 1, 112, 168, dtype=torch.bool)
    mask[..., 56:112, 112:168] = True  # cell (1, 2) at x2
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert torch.allclose(torch.where(mask, heavy, light)[inner], got[inner], atol=1e-5)


def test_a_window_context_classifier_counts_conv1_once_and_its_middle_convolutions_per_window() -> None:
    """Its FLOPs as run (Classifier.grid_scores): conv1 (4x4, stride 4) once over the windows' frame, conv2-4 on
    every window alone (zero-padded at its edge), conv5 and the head once per window."""
    from dataclasses import replace

    from classsr_cli.engine.cells import cell_flops

    model = residual_model()
    model.cfg = replace(model.cfg, classifier_kernel=3, classifier_context="window")
    m = build_model(model.cfg).eval()
    assert isinstance(m, ClassSR)
    plan = FrameRun(m, torch.rand(1, 3, 75, 61)).cells
    assert plan is not None and plan.context == 0 and (plan.rows, plan.cols) == (3, 3)
    clf = cell_flops(m, plan, (0, 0, 0), classified=True).used - cell_flops(m, plan, (0, 0, 0), classified=False).used
    c = m.classifier.conv1.out_channels
    frame_blocks = ((plan.rows - 1) * 28 + 32) * ((plan.cols - 1) * 28 + 32) // 16
    windows = plan.rows * plan.cols
    assert clf == frame_blocks * 2 * 48 * c + windows * (64 * 2 * 3 * 9 * c * c + m.classifier.head_flops())


def test_a_frame_context_classifier_counts_its_convolutions_once_over_the_frame() -> None:
    """Its FLOPs as run: conv1-4 once over the windows and their context, conv5 and the head once per window;
    on a frame of many cells fewer than a window-context classifier's, whose windows each run alone (on a small
    one the context ring costs more than the windows' overlap saves)."""
    from dataclasses import replace

    from classsr_cli.engine.cells import cell_flops

    model = residual_model()
    frame = FrameRun(model, torch.rand(1, 3, 75, 61)).cells
    model.cfg = replace(model.cfg, classifier_kernel=3, classifier_context="frame")
    ctx = build_model(model.cfg).eval()
    assert isinstance(ctx, ClassSR)
    plan = FrameRun(ctx, torch.rand(1, 3, 75, 61)).cells
    assert plan is not None and frame is not None and plan.context == 12 and frame.context == 0
    clf = cell_flops(ctx, plan, (0, 0, 0), classified=True).used - cell_flops(ctx, plan, (0, 0, 0), classified=False).used
    c = ctx.classifier.conv1.out_channels
    blocks = ((plan.rows - 1) * 28 + 32 + 24) * ((plan.cols - 1) * 28 + 32 + 24) // 16
    per_window = ctx.classifier.head_flops()  # conv5 (c -> 32) and the head
    assert per_window > 2 * c * 32
    assert clf == blocks * 2 * (48 * c + 3 * 9 * c * c) + plan.rows * plan.cols * per_window
    window = build_model(replace(model.cfg, classifier_context="window")).eval()
    assert isinstance(window, ClassSR)
    big = torch.rand(1, 3, 280, 392)
    fplan, wplan = FrameRun(ctx, big).cells, FrameRun(window, big).cells
    assert fplan is not None and wplan is not None

    def spent(m: ClassSR, p: CellPlan) -> int:
        return cell_flops(m, p, (0, 0, 0), classified=True).used - cell_flops(m, p, (0, 0, 0), classified=False).used

    assert spent(ctx, fplan) < 0.95 * spent(window, wplan)  # 0.94: the ring of context against the overlap


def _frame_out(model: ClassSR, lr: torch.Tensor, router: Router, **kw: object) -> tuple[torch.Tensor, FrameRun]:
    run = FrameRun(model, lr, router=router, **kw)  # type: ignore[arg-type]
    rows = torch.cat([b.rows.clone() for b in run], dim=2)
    return rows, run


@pytest.mark.parametrize("band_rows", [None, 1])
@pytest.mark.parametrize("scene", ["tiles", "whole band"])
def test_reuse_runs_as_cells_and_recomputes_only_the_cells_a_change_reaches(
        model: ClassSR, band_rows: int | None, scene: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Video's ``--reuse`` on a default-family model keeps the cell engine (it fell back to 32x32 patches, which
    routed otherwise and cost more when nothing was reused): the same classes and pixels as without reuse, an
    unchanged frame reused whole at no cost, and a change on the frame's top edge recomputing only the cell whose
    window holds it where the band runs as tiles; where the plan runs a branch on the whole band, the band is
    computed as without reuse (a tile there differs near the frame's edges: a probe measured 34 levels)."""
    import classsr_cli.engine.bands as bands
    from classsr_cli.engine.router import Reuse

    grid = torch.zeros(3, 3, dtype=torch.long)
    grid[0, 1] = grid[2, 2] = 2  # heavy cells among light ones (one on the top edge): the planner runs tiles
    if scene == "whole band":
        grid[:] = 1  # every cell medium: the medium branch on the whole band
    monkeypatch.setattr(bands, "classify_frame_cells", lambda *a, **k: grid.clone())
    torch.manual_seed(0)
    f0 = torch.rand(1, 3, 75, 61)
    f2 = f0.clone()
    f2[0, :, 1, 28 + 14] += 0.3  # on the top edge, inside cell (0, 1)
    reuse, plain = Router(Argmax(), reuse=Reuse(0)), Router(Argmax())
    runs = []
    for lr in (f0, f0.clone(), f2):
        got, run = _frame_out(model, lr, reuse, band_rows=band_rows)
        want, ref = _frame_out(model, lr, plain, band_rows=band_rows)
        assert run.cells is not None  # the cell engine, with reuse
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        assert torch.equal(run.result.classes, ref.result.classes)
        runs.append((run, ref))
    cells = grid.numel()
    first, same, changed = (r.result for r, _ in runs)
    assert sum(first.computed) == cells and sum(same.computed) == 0 and same.flops.used == 0
    if scene == "tiles":
        assert sum(changed.computed) == 1 and changed.flops.used < runs[2][1].result.flops.used
    else:
        band = 3 if band_rows is None else 1  # the cell rows of the band that holds the change
        assert sum(changed.computed) == band * 3 and changed.flops.used <= runs[2][1].result.flops.used
    assert reuse.stats.reused == 2 * cells - sum(changed.computed)
