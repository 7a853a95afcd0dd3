"""The residual family (the default preset's branches): bicubic path, zero-start residual, width 0, receptive
radius, FLOPs of what runs; and the decision rules of deficit and budget routing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from classsr_cli.config import BranchConfig, ClassSRConfig
from classsr_cli.engine.flops import count_flops
from classsr_cli.errors import ConfigError
from classsr_cli.models import build_branch, build_model
from classsr_cli.models.classsr import (
    DEFICIT_EPS,
    budget_classes,
    capped_classes,
    cheapest_within,
    deficit_classes,
    predicted_loss_db,
    priced_classes,
)
from classsr_cli.models.fsrcnn import FSRCNN
from classsr_cli.models.residual import ResidualSR, bicubic_phase_weights, fit_base, receptive_radius


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_path_equals_pillow_inside_the_frame(scale: int) -> None:
    x = np.random.default_rng(scale).random((23, 29)).astype(np.float32)
    want = np.asarray(Image.fromarray(x, mode="F").resize((29 * scale, 23 * scale), Image.BICUBIC))
    net = ResidualSR(width=0, scale=scale).eval()
    with torch.no_grad():
        got = net(torch.from_numpy(x)[None, None].expand(1, 3, -1, -1))[0, 1].numpy()
    b = 2 * scale  # Pillow renormalises the kernel at the border; we replicate
    assert np.abs(got - want)[b:-b, b:-b].max() < 1e-5
    assert np.abs(got - want).max() < 0.1


def test_an_untrained_branch_is_bicubic_and_width_0_has_no_parameters() -> None:
    x = torch.rand(2, 3, 12, 10)
    plain = ResidualSR(width=0, scale=4).eval()
    fresh = ResidualSR(width=8, depth=2, scale=4).eval()
    assert sum(p.numel() for p in plain.parameters()) == 0 and plain.state_dict() == {}
    with torch.no_grad():
        assert torch.allclose(fresh(x), plain(x), atol=1e-6)
        fresh.tail.bias.fill_(0.01)  # type: ignore[union-attr]
        assert not torch.allclose(fresh(x), plain(x), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_16_bit_branch_keeps_its_bicubic_base_and_output_in_float32(dtype: torch.dtype) -> None:
    """Cast to a 16-bit float, a branch computes its residual in it, but its bicubic weights stay float32, and on
    a float32 frame so do its base and its sum: an untrained branch is still bicubic to float32 rounding (a 16-bit
    base is off by up to 2^-8), a trained one differs from its float32 self by its residual's rounding alone. A
    16-bit frame gets a 16-bit output."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 10)
    fresh = ResidualSR(width=8, depth=2, scale=4).eval()
    with torch.no_grad():
        want = fresh(x)
        half = ResidualSR(width=8, depth=2, scale=4).eval().to(dtype)
        assert half.bicubic.dtype == torch.float32 and half.tail.weight.dtype == dtype  # type: ignore[union-attr]
        assert half.to("meta").bicubic.dtype == torch.float32  # every move and cast keeps it
        half = ResidualSR(width=8, depth=2, scale=4).eval().to(dtype)
        got = half(x)
        assert got.dtype == torch.float32 and (got - want).abs().max() < 1e-6
        fresh.tail.bias.fill_(0.01)  # type: ignore[union-attr]
        half.load_state_dict(fresh.state_dict())
        assert (half(x) - fresh(x)).abs().max() < 1e-3
        assert half(x.to(dtype)).dtype == dtype


def test_only_the_residual_family_takes_width_0() -> None:
    assert build_branch(BranchConfig("residual", 0, scale=2)).scale == 2
    with pytest.raises(ConfigError, match="width"):
        BranchConfig("fsrcnn", 0)
    with pytest.raises(ConfigError, match="hyper-parameter"):
        BranchConfig("residual", 8, extra={"blocks": 3})


@pytest.mark.parametrize("width", [0, 6])
def test_receptive_radius_bounds_what_an_output_block_sees(width: int) -> None:
    depth, scale = 2, 2
    net = ResidualSR(width=width, depth=depth, scale=scale).eval()
    if width:
        for p in net.parameters():
            torch.nn.init.normal_(p, std=0.3)
    r = receptive_radius(depth, width)
    x = torch.rand(1, 3, 25, 25)
    y0 = net(x)
    c = 12
    for dist, changes in ((r, True), (r + 1, False)):
        x1 = x.clone()
        x1[0, :, c, c + dist] += 0.5
        diff = (net(x1) - y0)[0, :, c * scale : (c + 1) * scale, c * scale : (c + 1) * scale].abs().max()
        assert bool(diff > 1e-6) is changes, (dist, float(diff))


def test_flops_count_what_runs() -> None:
    shape = (1, 3, 32, 32)
    bicubic = 2 * 32 * 32 * 3 * 16 * 25
    assert count_flops(ResidualSR(width=0, scale=4), shape) == bicubic
    w, d = 16, 4
    convs = 32 * 32 * (3 * w * 9 + d * w * w * 9 + w * 48 * 9)
    assert count_flops(ResidualSR(width=w, depth=d, scale=4), shape) == bicubic + 2 * convs
    # FSRCNN's output layer runs as a sub-pixel convolution (K=3 taps at x4): counted as such in real FLOPs.
    f = FSRCNN(d=56, scale=4)
    real, paper = count_flops(f, shape, "real"), count_flops(f, shape, "paper")
    rest = 2 * 32 * 32 * (3 * 56 * 25 + 56 * 12 + 4 * 12 * 12 * 9 + 12 * 56)
    assert real == rest + 2 * 32 * 32 * 48 * 56 * 9
    assert paper == rest + 2 * 128 * 128 * 56 * 3 * 81


def test_a_tile_s_layers_shrink_into_its_halo_and_its_core_is_the_branch_s_own() -> None:
    """residual_tile: with a halo of the receptive radius the core is the branch's residual on the frame, exactly;
    a shorter halo changes only the core's edge; what it computes (tile_flops) is less than the whole padded tile
    and, at halo 0, the residual's own FLOPs."""
    branch = _random_branches(depth=2)[2]
    frame = torch.rand(2, 3, 30, 41)
    layers = len(branch.convs())
    assert layers == receptive_radius(2, branch.width) == 4
    with torch.no_grad():
        whole = branch.residual(frame)
        assert whole is not None
        for halo in (4, 6):
            tile = branch.residual_tile(frame[:, :, 9 - halo : 19 + halo, 12 - halo : 27 + halo], halo)
            assert tile is not None and tile.shape == (2, 12, 10, 15)
            assert torch.allclose(tile, whole[:, :, 9:19, 12:27], atol=1e-5)
        short = branch.residual_tile(frame[:, :, 7:21, 10:29], 2)
        assert short is not None and short.shape == (2, 12, 10, 15)
        diff = (short - whole[:, :, 9:19, 12:27]).abs().amax((0, 1))
        assert diff.max() > 1e-4 and diff[2:-2, 2:-2].max() < 1e-5
        assert _random_branches()[0].residual_tile(frame, 3) is None  # width 0: bicubic alone
    assert branch.tile_flops(30, 41) == count_flops(branch, (1, 3, 30, 41)) - branch.functional_flops(frame[:1])
    assert branch.tile_flops(28, 28, 4) < branch.tile_flops(36, 36)
    assert branch.tile_flops(28, 28, 4) == branch.tile_flops(28, 28, 9)  # a halo past the radius is cut off


def test_deficit_routing_takes_the_cheapest_branch_within_the_tolerance() -> None:
    d = torch.tensor([[0.0, 0.0], [5.0, 0.5], [50.0, 20.0], [0.2, 30.0]])  # light, medium deficits
    scores = torch.log10(DEFICIT_EPS + torch.cat([d, torch.zeros(4, 1)], 1))
    assert deficit_classes(scores, 0.0).tolist() == [0, 2, 2, 2]
    assert deficit_classes(scores, 1.0).tolist() == [0, 1, 2, 0]
    assert deficit_classes(scores, 25.0).tolist() == [0, 0, 1, 0]
    assert deficit_classes(scores, 1e9).tolist() == [0, 0, 0, 0]
    # a larger tolerance never picks a more expensive branch
    s = torch.randn(200, 3)
    prev = deficit_classes(s, 0.0)
    for tol in (0.1, 1.0, 10.0, 100.0):
        cur = deficit_classes(s, tol)
        assert bool((cur <= prev).all())
        prev = cur


def _budget_scores(d: torch.Tensor, heavy_mse: torch.Tensor) -> torch.Tensor:
    return torch.log10(DEFICIT_EPS + torch.cat([d, heavy_mse[:, None]], 1))


def _loss_db(d: torch.Tensor, heavy_mse: torch.Tensor, classes: torch.Tensor) -> float:
    spent = torch.cat([d, torch.zeros(len(d), 1)], 1).gather(1, classes[:, None]).sum()
    return float(10 * torch.log10(1 + spent / heavy_mse.sum()))


def test_budget_routing_spends_a_frame_s_psnr_budget_where_it_saves_most() -> None:
    torch.manual_seed(0)
    d = torch.rand(300, 2) * torch.tensor([40.0, 8.0])  # light deficits above medium's, as trained
    e = 20 + 80 * torch.rand(300)
    costs = (0.0, 0.3, 1.0)
    scores = _budget_scores(d, e)
    assert budget_classes(scores, 0.0, costs).tolist() == [2] * 300  # no budget: every patch heavy
    prev_cost, prev_loss = float("inf"), 0.0
    for tol in (0.01, 0.05, 0.2, 1.0, 5.0):
        k = budget_classes(scores, tol, costs)
        loss = _loss_db(d, e, k)
        cost = float(torch.tensor(costs)[k].sum())
        assert loss <= tol * 1.0001  # within the budget, as predicted
        assert cost <= prev_cost and loss >= prev_loss  # a larger budget is never more expensive
        prev_cost, prev_loss = cost, loss
    assert budget_classes(scores, 1e3, costs).tolist() == [0] * 300  # anything goes: all light
    # the same deficits on a textured frame (heavy's own error 10x larger) afford more cheap patches
    flat = budget_classes(scores, 0.05, costs)
    busy = budget_classes(_budget_scores(d, 10 * e), 0.05, costs)
    assert float(torch.tensor(costs)[busy].sum()) < float(torch.tensor(costs)[flat].sum())
    # with a fixed budget the cheap patches are those with the least deficit per saving
    easy = budget_classes(_budget_scores(torch.tensor([[0.5, 0.1], [30.0, 6.0]]), torch.tensor([50.0, 50.0])),
                          0.02, costs)
    assert easy.tolist()[1] == 2 and easy.tolist()[0] < 2


def test_cheapest_within_keeps_an_absolute_budget_and_is_the_budget_s_sweep() -> None:
    torch.manual_seed(2)
    d = (torch.rand(200, 2) * torch.tensor([30.0, 6.0])).double().numpy()
    costs = (0.0, 0.3, 1.0)
    prev = float("inf")
    for budget in (0.0, 10.0, 100.0, 400.0):
        k = cheapest_within(d[:, 0], d[:, 1], budget, costs)
        spent = float(np.where(k == 0, d[:, 0], np.where(k == 1, d[:, 1], 0.0)).sum())
        cost = float(np.asarray(costs)[k].sum())
        assert spent <= budget + 1e-9 and cost <= prev  # within it; a larger budget is never dearer
        prev = cost
    assert cheapest_within(d[:, 0], d[:, 1], float(d[:, 0].sum()), costs).tolist() == [0] * 200
    # budget_classes is this sweep with the budget a frame's dB make of heavy's own predicted error
    e = 20 + 80 * torch.rand(200)
    scores = _budget_scores(torch.from_numpy(d).float(), e)
    v = np.maximum(10.0 ** scores.double().numpy() - DEFICIT_EPS, 0.0)
    want = cheapest_within(v[:, 0], v[:, 1], (10 ** 0.005 - 1) * float(v[:, 2].sum()), costs)
    assert budget_classes(scores, 0.05, costs).tolist() == want.tolist()


def test_budget_routing_takes_the_smallest_multiplier_that_keeps_the_budget() -> None:
    """The exact solution against a brute force over every breakpoint: at each candidate multiplier (in
    increasing order) every patch takes its cheapest class, a tie going to the heavier one (a patch moves at its
    breakpoint); the first candidate within the budget is the answer."""
    g = torch.Generator().manual_seed(1)
    costs = (0.0, 0.35, 1.0)
    for trial in range(40):
        n = 1 + trial % 12
        d = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([30.0, 6.0], dtype=torch.float64)
        d[torch.rand(n, generator=g) < 0.2, 1] = 50.0  # medium never worth it on some patches
        e = 10 + 100 * torch.rand(n, generator=g, dtype=torch.float64)
        tol = float(torch.rand(1, generator=g)) * 0.4
        got = budget_classes(_budget_scores(d, e), tol, costs)
        assert got.dtype == torch.long
        v = (10 ** _budget_scores(d, e) - DEFICIT_EPS).clamp_min(0)
        dd = torch.cat([v[:, :2], torch.zeros(n, 1, dtype=v.dtype)], 1)
        budget = (10 ** (tol / 10) - 1) * float(v[:, 2].sum())
        c = torch.tensor(costs, dtype=torch.float64)
        lams = sorted({0.0} | {float((c[b] - c[a]) / (dd[i, a] - dd[i, b])) for i in range(n)
                               for a in range(3) for b in range(a + 1, 3) if dd[i, a] > dd[i, b]})
        for lam in lams:
            f = c + lam * dd
            want = torch.tensor([max(k for k in range(3) if f[i, k] <= f[i].min() * (1 + 1e-12) + 1e-15)
                                 for i in range(n)]) if lam > 0 else f.argmin(1)
            if float(dd.gather(1, want[:, None]).sum()) <= budget * (1 + 1e-12):
                break
        assert got.tolist() == want.tolist(), (trial, got.tolist(), want.tolist())


def test_priced_routing_raises_a_patch_only_where_the_error_saved_is_worth_the_compute() -> None:
    costs = (0.0, 0.25, 1.0)
    d = torch.tensor([[0.5, 0.0], [3.0, 0.2], [9.0, 2.0], [9.0, 4.0], [1.0, 9.0]])  # light, medium deficits
    scores = _budget_scores(d, torch.full((5,), 50.0))  # heavy's own error plays no part
    # price 4: light -> medium where it saves more than 1, medium -> heavy where medium leaves more than 3
    assert priced_classes(scores, 4.0, costs).tolist() == [0, 1, 1, 2, 0]
    # Two patches that one tolerance cannot route both to medium: below 2 the first goes heavy, from 2 the
    # second goes light. The price does (spending 2 levels² at half a heavy patch's compute).
    pair = _budget_scores(torch.tensor([[9.0, 2.0], [2.0, 0.0]]), torch.full((2,), 50.0))
    assert {tuple(deficit_classes(pair, t).tolist()) for t in np.linspace(0, 20, 81)} == {(2, 1), (1, 0), (0, 0)}
    assert priced_classes(pair, 4.0, costs).tolist() == [1, 1]
    # each patch takes its argmin of deficit + price * cost, ties to the cheaper branch; a higher price is
    # never dearer, and a patch's class depends on it alone
    g = torch.Generator().manual_seed(3)
    s = torch.log10(DEFICIT_EPS + torch.rand(300, 3, generator=g) * 30)
    v = (10 ** s[:, :2].double() - DEFICIT_EPS).clamp_min(0)
    prev = torch.full((300,), 2)
    for price in (0.5, 2.0, 8.0, 32.0, 1e6):
        got = priced_classes(s, price, costs)
        f = torch.stack([v[:, 0], v[:, 1] + price * 0.25, torch.full_like(v[:, 0], price)], 1)
        assert torch.equal(got, f.argmin(1)) and bool((got <= prev).all())
        assert torch.equal(priced_classes(s[:7], price, costs), got[:7])
        prev = got
    assert prev.tolist() == [0] * 300  # at any price above every deficit: all light


def test_frame_cap_routes_a_frame_by_its_budget_only_where_the_per_patch_rule_would_cost_more() -> None:
    costs = (0.0, 0.25, 1.0)
    d = torch.tensor([[0.5, 0.0], [3.0, 0.2], [9.0, 2.0], [9.0, 4.0], [1.0, 9.0]])  # light, medium deficits
    for heavy_mse in (50.0, 2.0):  # a textured frame, then a clean one: the same deficits, many more dB
        e = torch.full((5,), heavy_mse)
        scores = _budget_scores(d, e)
        priced = priced_classes(scores, 4.0, costs)
        loss = _loss_db(d, e, priced)
        assert predicted_loss_db(scores, priced) == pytest.approx(loss, rel=1e-5)  # what the cap weighs
        for cap in (0.05, 0.2, 0.5, 1.0, 5.0):
            got = capped_classes(scores, priced, cap, costs)
            if loss <= cap:  # within the cap: the per-patch rule's classes, untouched
                assert torch.equal(got, priced)
            else:  # over it: the frame's budget at the cap, which spends at most the cap and costs more
                assert torch.equal(got, budget_classes(scores, cap, costs))
                assert _loss_db(d, e, got) <= cap + 1e-9 < loss
                assert sum(costs[k] for k in got.tolist()) > sum(costs[k] for k in priced.tolist())
    assert _loss_db(d, torch.full((5,), 50.0), priced_classes(_budget_scores(d, torch.full((5,), 50.0)), 4.0, costs)) < 0.2
    assert _loss_db(d, torch.full((5,), 2.0), priced_classes(_budget_scores(d, torch.full((5,), 2.0)), 4.0, costs)) > 1.0
    assert capped_classes(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 0.1, costs).numel() == 0
    assert predicted_loss_db(torch.empty(0, 3), torch.empty(0, dtype=torch.long)) == 0.0


def test_model_decide_follows_its_routing() -> None:
    argmax = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8))
    deficit = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                        routing="deficit", tolerance=3.0))
    scores = torch.log10(DEFICIT_EPS + torch.tensor([[1.0, 0.5, 0.0], [9.0, 2.0, 0.0]]))
    assert argmax.decide(scores).tolist() == [0, 0]  # type: ignore[operator]
    assert deficit.decide(scores).tolist() == [0, 1]  # type: ignore[operator]
    assert deficit.decide(scores, tolerance=0.1).tolist() == [2, 2]  # type: ignore[operator]
    budget = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                       routing="budget", tolerance=0.05))
    assert budget.branch_costs[0] == 0 < budget.branch_costs[1] < budget.branch_costs[2]  # type: ignore[operator]
    e = torch.log10(DEFICIT_EPS + torch.tensor([[1.0, 0.5, 1000.0], [20.0, 2.0, 10.0]]))
    assert budget.decide(e).tolist() == [0, 1]  # type: ignore[operator]  # 0.05 dB of 1010: 11.7 to spend
    assert budget.decide(e, tolerance=0.0).tolist() == [2, 2]  # type: ignore[operator]
    # A calibrated per-patch default: the deficit rule when no tolerance is asked for, the budget when one is.
    both = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                     routing="budget", tolerance=0.05, cell_tolerance=1.5))
    assert both.decide(e).tolist() == [0, 2]  # type: ignore[operator]  # 1.0 and 0.5 fit 1.5; 20 and 2 do not
    assert both.decide(e, tolerance=0.05).tolist() == [0, 1]  # type: ignore[operator]
    # A calibrated price: the priced rule when no tolerance is asked for, the budget when one is.
    priced = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                       routing="budget", tolerance=0.05, cell_price=4.0))
    assert priced.decide(e).tolist() == priced_classes(e, 4.0, priced.branch_costs).tolist()  # type: ignore[operator]
    assert priced.decide(e, tolerance=0.05).tolist() == [0, 1]  # type: ignore[operator]
    assert priced.decide(e).tolist() != both.decide(e).tolist()  # type: ignore[operator]
    # A frame cap: the per-patch default unless its predicted loss passes the cap; an explicit tolerance ignores it.
    clean = torch.log10(DEFICIT_EPS + torch.tensor([[1.0, 0.5, 2.0], [1.5, 0.2, 2.0], [0.9, 0.1, 2.0]]))
    for cfg_extra in ({"cell_price": 4.0}, {"cell_tolerance": 1.5}):
        rule = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="budget",
                                         tolerance=0.05, **cfg_extra))  # type: ignore[arg-type]
        capped = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8,
                                           routing="budget", tolerance=0.05, frame_cap_db=0.5, **cfg_extra))  # type: ignore[arg-type]
        assert rule.decide(clean).tolist() == [0, 0, 0]  # type: ignore[operator]  # 3.4 levels² over 6: 1.8 dB
        assert capped.decide(clean).tolist() == budget_classes(clean, 0.5, capped.branch_costs).tolist() != [0, 0, 0]  # type: ignore[operator]
        assert capped.decide(e).tolist() == rule.decide(e).tolist()  # type: ignore[operator]  # within the cap
        assert capped.decide(clean, tolerance=0.05).tolist() == rule.decide(clean, tolerance=0.05).tolist()  # type: ignore[operator]
    for bad in ({"routing": "deficit"}, {"routing": "argmax"}):
        with pytest.raises(ConfigError, match="frame_cap_db"):
            ClassSRConfig("residual", 2, (0, 4, 8), frame_cap_db=0.1, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="frame_cap_db"):
        ClassSRConfig("residual", 2, (0, 4, 8), routing="budget", frame_cap_db=-1.0)
    for bad in ({"routing": "deficit"}, {"routing": "budget", "cell_tolerance": 1.0}):
        with pytest.raises(ConfigError, match="cell_price"):
            ClassSRConfig("residual", 2, (0, 4, 8), cell_price=4.0, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="routing"):
        ClassSRConfig("residual", 2, (0, 4, 8), routing="best")
    with pytest.raises(ConfigError, match="cell_tolerance"):
        ClassSRConfig("residual", 2, (0, 4, 8), routing="deficit", cell_tolerance=1.0)


def routed_frame(branches: list[ResidualSR], frame: torch.Tensor, classes: torch.Tensor, *, step: int, halo: int,
                 batch_size: int = 256) -> torch.Tensor:
    """Cell execution of a whole frame with given classes (the engine's cell path without the classifier)."""
    from classsr_cli.engine.cells import band_input, pad_frame, plan_cells, plan_tiles, run_cells

    plan = plan_cells(frame.shape[2], frame.shape[3], step=step, patch=step + 4, halo=halo)
    band = band_input(pad_frame(frame, plan), plan, 0, plan.rows)
    tiles = plan_tiles(classes, plan, [0.0, 1.0, 2.0])
    assert torch.equal(tiles.run, classes)  # no blocks: every cell runs its own class
    sr, _ = run_cells(branches, band, plan, tiles, frame.shape[2], batch_size=batch_size)
    return sr


def _random_branches(scale: int = 2, depth: int = 1, base: torch.Tensor | None = None) -> list[ResidualSR]:
    torch.manual_seed(3)
    branches = [ResidualSR(width=w, depth=depth, scale=scale, fitted_base=base is not None).eval() for w in (0, 4, 6)]
    for b in branches:
        for p in b.parameters():
            torch.nn.init.normal_(p, std=0.2)
        if base is not None:
            b.fitted_base = base.clone()
    return branches


def test_fit_base_is_the_least_squares_linear_upsampler() -> None:
    """Fitted to pairs whose HR is the bicubic upsampling of their LR, the base is bicubic; fitted to a sharper
    target it is that target's filter, not bicubic's (each of the 25 taps of each phase solved for)."""
    torch.manual_seed(0)
    lr = torch.rand(6, 3, 14, 15, dtype=torch.float64)
    assert torch.allclose(fit_base([(lr, ResidualSR(width=0, scale=3)(lr))], 3), bicubic_phase_weights(3), atol=1e-6)
    want = bicubic_phase_weights(4) * 1.2
    want[:, :, 2, 2] -= 0.2  # a sharpening filter, still summing to 1 per phase
    net = ResidualSR(width=0, scale=4, fitted_base=True)
    net.fitted_base = want
    halves = [(lr[:3].float(), net(lr[:3].float())), (lr[3:].float(), net(lr[3:].float()))]  # batches add up
    got = fit_base(halves, 4)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, bicubic_phase_weights(4), atol=1e-2)
    with pytest.raises(ConfigError, match="larger than 4x4"):
        fit_base([(lr[:, :, :4, :4], lr.repeat_interleave(4, 2).repeat_interleave(4, 3)[:, :, :16, :16])], 4)


def test_a_fitted_base_is_every_branch_s_upsampler_and_travels_in_the_checkpoint(tmp_path: Path) -> None:
    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint

    cfg = ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1, "fitted_base": 1}, classifier_width=8)
    plain = build_model(replace(cfg, extra={"depth": 1}))
    light = build_model(replace(cfg, extra={"depth": 1, "fitted_base": 2}))
    assert [b.fitted_base is not None for b in light.branches] == [True, False, False]
    with pytest.raises(ConfigError, match="fitted_base"):
        replace(cfg, widths=(2, 4, 6), extra={"depth": 1, "fitted_base": 2})
    with pytest.raises(ConfigError, match="fitted_base"):
        replace(cfg, extra={"depth": 1, "fitted_base": 3})
    assert all(b.fitted_base is None and "fitted_base" not in b.state_dict() for b in plain.branches)
    model = build_model(cfg).eval()
    base = bicubic_phase_weights(2) * 0.9
    for b in model.branches:
        assert torch.equal(b.base, bicubic_phase_weights(2))  # an unfitted base starts as bicubic
        b.fitted_base = base.clone()
    frame = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert torch.allclose(model.branches[0](frame), 0.9 * plain.branches[0](frame), atol=1e-6)
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "fitted.safetensors"), expect_kind="classsr").module
    assert all(torch.equal(b.fitted_base, base) for b in loaded.branches)
    half = loaded.to(torch.bfloat16).branches[0]
    assert half.base.dtype == torch.float32 and torch.equal(half.base, base)  # exact, as the bicubic base


@pytest.mark.parametrize("light_only", [False, True])
def test_routed_frame_with_a_fitted_base_equals_each_branch_on_the_whole_frame(light_only: bool) -> None:
    """With a fitted base under every branch, or under the width-0 light branch alone (``fitted_base = 2``: its
    cells take its base, the others bicubic + their residual), every cell is its branch's own output."""
    base = bicubic_phase_weights(2) * 1.1 - 0.1 / 25
    branches = _random_branches(base=base)
    if light_only:
        plain = _random_branches()
        branches = [branches[0], plain[1], plain[2]]
    frame = torch.rand(1, 3, 29, 35)
    classes = torch.randint(0, 3, (4, 5))
    halo = receptive_radius(1)
    with torch.no_grad():
        got = routed_frame(branches, frame, classes, step=8, halo=halo)
        whole = [b(frame) for b in branches]
    b = halo * 2
    for r in range(4):
        for c in range(5):
            ys = slice(max(r * 16, b), min((r + 1) * 16, 58 - b))
            xs = slice(max(c * 16, b), min((c + 1) * 16, 70 - b))
            assert torch.allclose(got[..., ys, xs], whole[int(classes[r, c])][..., ys, xs], atol=1e-5), (r, c)
    assert not torch.allclose(whole[0], ResidualSR(width=0, scale=2)(frame), atol=1e-3)


def test_routed_frame_with_a_full_halo_equals_each_branch_on_the_whole_frame() -> None:
    """Cells whose halo covers the receptive radius are exactly the branch's whole-frame output (inside the
    frame's border band, where the frame's own padding differs from the tiles' replicate padding)."""
    branches = _random_branches()
    depth, step, s = 1, 8, 2
    halo = receptive_radius(depth)
    frame = torch.rand(1, 3, 37, 45)  # not a multiple of the step: the last row and column of cells stick out
    classes = torch.randint(0, 3, (5, 6))
    with torch.no_grad():
        got = routed_frame(branches, frame, classes, step=step, halo=halo, batch_size=4)
        whole = [b(frame) for b in branches]
    assert got.shape == (1, 3, 37 * s, 45 * s)
    b = halo * s
    for r in range(5):
        for c in range(6):
            ys = slice(max(r * step * s, b), min((r + 1) * step * s, 37 * s - b))
            xs = slice(max(c * step * s, b), min((c + 1) * step * s, 45 * s - b))
            want = whole[int(classes[r, c])][..., ys, xs]
            assert torch.allclose(got[..., ys, xs], want, atol=1e-5), (r, c)
    assert {0, 1, 2} <= set(classes.flatten().tolist())


def test_routed_frame_all_bicubic_is_bicubic_and_a_short_halo_only_changes_cell_edges() -> None:
    branches = _random_branches()
    frame = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        light = routed_frame(branches, frame, torch.zeros(4, 5, dtype=torch.long), step=8, halo=0)
        assert torch.equal(light, branches[0](frame))
        full = routed_frame(branches, frame, torch.full((4, 5), 2), step=8, halo=3)
        short = routed_frame(branches, frame, torch.full((4, 5), 2), step=8, halo=1)
    diff = (full - short).abs()[0].amax(0)  # (64, 80)
    assert diff.max() > 1e-4
    edge = torch.zeros_like(diff, dtype=torch.bool)
    for k in range(0, 81, 16):  # cell boundaries and the frame's border in HR pixels, +- (radius - halo) * scale
        edge[:, max(0, k - 4) : k + 4] = True
        if k <= 64:
            edge[max(0, k - 4) : k + 4, :] = True
    assert diff[~edge].max() < 1e-5


def test_a_luma_branch_corrects_luma_alone_at_a_third_of_the_output_convolution() -> None:
    """``luma``: one output per sub-pixel, the same step added to R, G and B (BT.601 chroma unchanged: the output
    minus bicubic has no Cb/Cr), counted at its real cost; its tiles are its own residual, as an RGB branch's."""
    torch.manual_seed(1)
    rgb, luma = (ResidualSR(width=8, depth=2, scale=4, luma=v).eval() for v in (False, True))
    assert luma.tail is not None and tuple(luma.tail.weight.shape) == (16, 8, 3, 3)
    for p in luma.parameters():
        torch.nn.init.normal_(p, std=0.2)
    frame = torch.rand(2, 3, 20, 23)
    with torch.no_grad():
        res = luma.residual(frame)
        assert res is not None and res.shape == (2, 48, 20, 23)
        per_colour = res.view(2, 3, 16, 20, 23)
        assert torch.equal(per_colour[:, 0], per_colour[:, 1]) and torch.equal(per_colour[:, 0], per_colour[:, 2])
        assert per_colour.abs().max() > 0.1  # a real correction, not zero
        step = luma(frame) - torch.nn.functional.pixel_shuffle(luma.upsample(frame), 4)
        cb = -37.797 * step[:, 0] - 74.203 * step[:, 1] + 112.0 * step[:, 2]
        assert cb.abs().max() < 1e-3 and step.abs().max() > 0.1
        tile = luma.residual_tile(frame[:, :, 2:18, 3:21], 4)  # 4 convolutions: a halo of 4 is exact
        assert tile is not None and torch.allclose(tile, res[:, :, 6:14, 7:17], atol=1e-5)
    shape = (1, 3, 32, 32)
    tail_saved = 2 * 32 * 32 * 8 * 32 * 9  # 48 -> 16 output channels
    assert count_flops(rgb, shape) - count_flops(luma, shape) == tail_saved
    assert luma.tile_flops(32, 32) == rgb.tile_flops(32, 32) - tail_saved


def test_a_luma_residual_is_added_to_each_colour_without_being_copied_three_times() -> None:
    """``residual(expand=False)`` keeps a luma branch's ``s²`` channels (an RGB branch's ``3s²``) and
    ``add_residual`` adds them to R, G and B: the same bits as adding the expanded residual, on a whole
    channels-last frame and on a strided core of one."""
    torch.manual_seed(2)
    for luma in (True, False):
        branch = ResidualSR(width=8, depth=2, scale=4, luma=luma).eval()
        for p in branch.parameters():
            torch.nn.init.normal_(p, std=0.2)
        frame = torch.rand(1, 3, 20, 23)
        with torch.no_grad():
            raw, full = branch.residual(frame, expand=False), branch.residual(frame)
            assert raw is not None and full is not None and raw.shape[1] == (16 if luma else 48)
            y = branch.upsample(frame).contiguous(memory_format=torch.channels_last)
            want = y + full
            assert torch.equal(ResidualSR.add_residual(y.clone(), raw), want)
            core = y.clone()
            ResidualSR.add_residual(core[0, :, 3:11, 5:17], raw[0, :, 3:11, 5:17])  # a view: added in place
            assert torch.equal(core[0, :, 3:11, 5:17], want[0, :, 3:11, 5:17])
            assert torch.equal(core[0, :, :3], y[0, :, :3])  # nothing outside the core
            tile = branch.residual_tile(frame[:, :, 2:18, 3:21], 4, expand=False)
            assert tile is not None and tile.shape[1] == raw.shape[1]
            assert torch.allclose(tile, raw[:, :, 6:14, 7:17], atol=1e-5)


def test_luma_is_per_branch_of_the_residual_family_and_travels_in_the_config() -> None:
    cfg = ClassSRConfig("residual", 4, (0, 16, 32), luma=(False, True, False))
    assert [cfg.branch(k).luma for k in range(3)] == [False, True, False]
    again = ClassSRConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg and again.luma == (False, True, False)
    assert ClassSRConfig.from_dict({"family": "residual", "widths": [0, 16, 32]}).luma == (False, False, False)
    model = build_model(cfg)
    assert model.branches[1].tail.weight.shape[0] == 16 and model.branches[2].tail.weight.shape[0] == 48
    with pytest.raises(ConfigError, match="residual family"):
        BranchConfig("fsrcnn", 16, luma=True)
    with pytest.raises(ConfigError, match="three true/false"):
        ClassSRConfig("residual", 4, (0, 16, 32), luma=(False, True))  # type: ignore[arg-type]


def test_a_luma_model_saves_and_loads_and_a_mismatch_is_refused(tmp_path: Path) -> None:
    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.errors import CheckpointError

    cfg = ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, luma=(False, True, False), classifier_width=8)
    torch.manual_seed(2)
    model = build_model(cfg).eval()
    path = save_checkpoint(model, tmp_path / "luma.safetensors")
    loaded = load_checkpoint(path, expect_kind="classsr")
    assert loaded.module.cfg.luma == (False, True, False)
    frame = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded.module.branches[1](frame), model.branches[1](frame))
    rgb = build_model(replace(cfg, luma=(False, False, False)))
    save_checkpoint(rgb, tmp_path / "rgb.safetensors")
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["config"])["luma"] == [False, True, False]
    wrong = tmp_path / "wrong.safetensors"  # the RGB model's tensors under the luma model's config
    save_file(load_file(str(tmp_path / "rgb.safetensors")), str(wrong), metadata=meta)
    with pytest.raises(CheckpointError, match=r"branches\.1\.tail\.weight"):
        load_checkpoint(wrong)


def test_depths_are_per_branch_of_the_residual_family_and_travel_in_the_config(tmp_path: Path) -> None:
    """``depths``: a shallower light branch (fewer convolutions); the shared ``extra`` keeps its depth, the
    config round-trips through JSON and the checkpoint, and a checkpoint whose tensors are of other depths is
    refused by name."""
    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.errors import CheckpointError

    cfg = ClassSRConfig("residual", 2, (4, 6, 8), {"depth": 2}, luma=(True, True, False), depths=(0, 2, 2),
                        classifier_width=8)
    assert [cfg.branch(k).extra["depth"] for k in range(3)] == [0, 2, 2] and cfg.extra["depth"] == 2
    assert ClassSRConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert ClassSRConfig.from_dict({"family": "residual", "widths": [0, 16, 32]}).depths == ()
    torch.manual_seed(3)
    model = build_model(cfg).eval()
    assert [len(b.convs()) for b in model.branches] == [2, 4, 4]
    path = save_checkpoint(model, tmp_path / "depths.safetensors")
    loaded = load_checkpoint(path, expect_kind="classsr").module
    frame = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert loaded.cfg.depths == (0, 2, 2) and torch.equal(loaded.branches[0](frame), model.branches[0](frame))
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    save_checkpoint(build_model(replace(cfg, depths=())), tmp_path / "deep.safetensors")
    wrong = tmp_path / "wrong.safetensors"  # depth-2 light tensors under the depth-0 light config
    save_file(load_file(str(tmp_path / "deep.safetensors")), str(wrong), metadata=meta)
    with pytest.raises(CheckpointError, match=r"branches\.0\."):
        load_checkpoint(wrong)
    for bad in ((0, 2), (0, -1, 2), (0, True, 2)):
        with pytest.raises(ConfigError, match="depths must be three integers"):
            ClassSRConfig("residual", 2, (4, 6, 8), depths=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="depths must be three integers"):
        ClassSRConfig("fsrcnn", 4, (16, 36, 56), depths=(1, 2, 3))


def test_an_hwc_array_permuted_to_nchw_runs_with_standard_channels_last_strides() -> None:
    """``torch.from_numpy(hwc).permute(2, 0, 1)[None]`` is channels-last to PyTorch but with a batch stride of 3
    (legal at N = 1); oneDNN then took other, slower kernels. ``canonical_strides`` gives the same memory its
    standard strides (no copy), and a branch's output is then the one it gives the NCHW copy, to the bit."""
    from classsr_cli.models.residual import canonical_strides

    torch.manual_seed(4)
    hwc = torch.rand(20, 28, 3)
    odd = hwc.permute(2, 0, 1)[None]
    assert odd.stride() == (3, 1, 84, 3) and odd.is_contiguous(memory_format=torch.channels_last)
    fixed = canonical_strides(odd)
    assert fixed.stride() == (20 * 28 * 3, 1, 84, 3) and fixed.data_ptr() == odd.data_ptr()
    assert torch.equal(fixed, odd)
    nchw = odd.contiguous()
    assert canonical_strides(nchw) is nchw
    branch = ResidualSR(width=8, depth=2, scale=4).eval()
    for p in branch.parameters():
        torch.nn.init.normal_(p, std=0.2)
    with torch.inference_mode():
        assert torch.equal(branch(odd), branch(nchw))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_pixel_shuffle_of_a_channels_last_tensor_is_torch_s_to_the_bit(scale: int, dtype: torch.dtype) -> None:
    """The engine's ``pixel_shuffle`` moves each sub-pixel row as one wide element where it makes 4, 8 or 16 bytes
    (float32 at x2/x4, half types): the values, NaN payloads included, are ``F.pixel_shuffle``'s, NCHW-contiguous,
    for a batch, a batch slice (a storage offset) and NCHW input."""
    from classsr_cli.models.residual import pixel_shuffle

    torch.manual_seed(5)
    y = torch.randn(3, 3 * scale * scale, 11, 13).to(dtype).contiguous(memory_format=torch.channels_last)
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[y.element_size()]
    y.view(bits)[1, 0, 2, 3] = -1  # a NaN with a payload: moved as bits, never as a float
    for x in (y, y[1:], y.contiguous()):
        got, want = pixel_shuffle(x, scale), torch.nn.functional.pixel_shuffle(x.contiguous(), scale)
        assert got.dtype == dtype and got.is_contiguous() and got.shape == want.shape
        assert torch.equal(got.view(bits), want.view(bits))



def test_pixel_shuffle_keeps_the_gradient_of_a_tensor_that_needs_one() -> None:
    """The wide-element copy is a view as integers, which has no gradient: a channels-last tensor that requires
    grad (a branch in eval mode inside a training step) takes the differentiable path, with torch's gradient."""
    from classsr_cli.models.residual import pixel_shuffle

    torch.manual_seed(7)
    y = torch.randn(1, 48, 5, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(1, 3, 20, 24)
    (pixel_shuffle(y * 1, 4) * weight).sum().backward()
    want = torch.nn.functional.pixel_unshuffle(weight, 4)
    assert y.grad is not None and torch.equal(y.grad, want)
