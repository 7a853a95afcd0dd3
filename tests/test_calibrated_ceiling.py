"""scripts/calibrated_ceiling.py: cells of a photo, the rules it calibrates, and the recipe's scan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

COSTS = (0.0, 0.25, 1.0)


@pytest.fixture()
def script(load_script: Callable[[str], dict]) -> dict:
    return load_script("calibrated_ceiling.py")


def cells(script: dict, errors: list[list[float]], px: float = 100.0, gains: list[float] | None = None) -> object:
    e = np.asarray(errors, dtype=np.float64) * px  # summed errors from per-pixel ones
    n = len(e)
    return script["Cells"](e, np.full(n, px), np.asarray(gains if gains else range(n), dtype=np.float64),
                           torch.zeros(n, 3, dtype=torch.float64), np.zeros((n, 3)), e[:, :2] - e[:, 2:])


def test_block_sums_cover_partial_blocks(script: dict) -> None:
    a = np.arange(35, dtype=np.float64).reshape(5, 7)
    got = script["block_sums"](a, 3)
    want = [a[r:r + 3, c:c + 3].sum() for r in (0, 3) for c in (0, 3, 6)]
    assert np.allclose(got, want) and got.sum() == a.sum()


def test_oracle_prices_measured_deficits_and_its_cap_takes_the_budget(script: dict) -> None:
    # per pixel: light, medium, heavy errors. Cell 0: light is within the price; cell 1: medium saves 4 over light
    # (> 10 * 0.25) and is 1 over heavy (< 10 * 0.75); cell 2: medium 9 over heavy (> 7.5).
    c = cells(script, [[1.5, 1.0, 1.0], [6.0, 2.0, 1.0], [12.0, 10.0, 1.0]])
    assert script["route"](c, "oracle", 10.0, 0.1, COSTS).tolist() == [0, 1, 2]
    # noise-free scores of the measured errors decide as the oracle does (the engine's rule on them)
    assert script["route"](c, "noisy0", 10.0, 0.1, COSTS).tolist() == [0, 1, 2]
    # loss of [0, 1, 2]: 10*log10((1.5 + 2 + 1) / 3) = 1.76 dB, past a 0.1 dB cap: the cheapest routing within it
    # spends at most (10**0.01 - 1) * 3 = 0.069 per pixel over the heavy error: cell 0 medium (no increase there),
    # the others heavy
    assert script["route"](c, "oracle_capped", 10.0, 0.1, COSTS).tolist() == [1, 2, 2]
    # within a 2 dB cap the priced classes stand
    assert script["route"](c, "oracle_capped", 10.0, 2.0, COSTS).tolist() == [0, 1, 2]
    # the LR-only rule prices the distances from heavy's output instead: cell 1's light output as far from heavy's as
    # its medium one, cell 2's medium output 12 from it
    c.far[:] = np.array([[0.0, 0.0], [3.0, 3.0], [20.0, 12.0]]) * 100
    assert script["route"](c, "lr_only", 10.0, 0.1, COSTS).tolist() == [0, 0, 2]


def test_noise_moves_the_scores_by_sigma(script: dict) -> None:
    c = cells(script, [[2.0, 1.5, 1.0]])
    c.noise[:] = 1.0
    base = c.measured_scores(0.0)
    assert torch.allclose(base, torch.log10(0.1 + torch.tensor([[1.0, 0.5, 1.0]], dtype=torch.float64)))
    assert torch.allclose(c.measured_scores(0.3) - base, torch.full((1, 3), 0.3, dtype=torch.float64))
    c.far[:] = [[50.0, 20.0]]  # summed over its 100 pixels: 0.5 and 0.2 per pixel
    want = torch.log10(0.1 + torch.tensor([[0.5, 0.2, 1.0]], dtype=torch.float64))
    assert torch.allclose(c.measured_scores(0.0, lr_only=True), want)


def test_calibrate_scans_upwards_as_the_recipe_does(script: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The largest price within the tolerance, scanning until the loss passes twice it: a price where the loss dips
    back under the tolerance after that is never reached."""
    prices = script["PRICES"]
    losses = {float(p): (0.01 if p < 1 else 0.04 if p < 10 else 0.2 if p < 100 else 0.0) for p in prices}
    g = script["calibrate"].__globals__
    monkeypatch.setitem(g, "route", lambda c, rule, p, cap, costs: np.array([float(p)]))
    monkeypatch.setitem(g, "routing_loss_db", lambda errors, k: losses[float(k[0])])
    price, loss = script["calibrate"]([cells(script, [[1.0, 1.0, 1.0]])], "oracle", 0.05, 0.1, COSTS)
    assert price == pytest.approx(max(p for p in prices if p < 10)) and loss == 0.04


def test_shares_split_the_pooled_cells_in_thirds(script: dict) -> None:
    # six cells over two photos, gains 0..5: the easiest third is gains 0 and 1, the hardest 4 and 5
    a = cells(script, [[1.0, 1.0, 1.0], [50.0, 1.0, 1.0], [50.0, 1.0, 1.0]], gains=[0, 2, 4])
    b = cells(script, [[1.0, 1.0, 1.0], [50.0, 50.0, 1.0], [1.0, 1.0, 1.0]], gains=[1, 3, 5])
    got = script["shares"]([a, b], "oracle", 10.0, 0.1, COSTS)
    assert got["easiest_third_to_cheapest"] == 1.0 and got["hardest_third_to_cheapest"] == 0.5
    # photo a: light, medium, medium -> errors 1 + 1 + 1 against 3: 0 dB; photo b: light, heavy, light: 0 dB
    assert got["mean_loss_db"] == 0.0
    assert got["mean_branch_cost_vs_heavy"] == pytest.approx((0 + 0.25 + 0.25 + 0 + 1 + 0) / 6)


def test_cells_of_a_photo_add_up_to_the_photo(script: dict) -> None:
    """The cells' summed heavy errors are the photo's luma squared error (border = scale) and their pixels the
    photo's; the scores are the engine's, one row per cell."""
    from classsr_cli import zoo
    from classsr_cli.degrade import make_pair
    from classsr_cli.metrics import rgb_to_y

    model = zoo.load(None, 4, device=torch.device("cpu"), dtype=torch.float32).net
    yy, xx = np.mgrid[0:200, 0:232]
    img = np.stack([(yy * 1.1) % 256, (xx * 0.7 + yy) % 256, (xx * 1.3) % 256], -1).astype(np.uint8)
    c = script["cells_of"](model, img, np.random.default_rng(0))
    hr, lr = make_pair(img, 4)
    x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255)
    with torch.inference_mode():
        heavy = script["to_u8"](model.branches[2](x))
    e = (rgb_to_y(heavy) - rgb_to_y(hr)) ** 2
    e[:4], e[-4:], e[:, :4], e[:, -4:] = 0, 0, 0, 0
    rows, cols = -(-lr.shape[0] // 28), -(-lr.shape[1] // 28)
    assert c.errors.shape == (rows * cols, 3) and c.scores.shape == (rows * cols, 3)
    assert np.isclose(c.errors[:, 2].sum(), e.sum()) and c.px.sum() == hr.shape[0] * hr.shape[1]
    with torch.inference_mode():
        light = script["to_u8"](model.branches[0](x))
    d = (rgb_to_y(light) - rgb_to_y(heavy)) ** 2
    d[:4], d[-4:], d[:, :4], d[:, -4:] = 0, 0, 0, 0
    assert np.isclose(c.far[:, 0].sum(), d.sum()) and d.sum() > 0
    with torch.inference_mode():
        assert torch.equal(c.scores, model.frame_scores(x, 28).reshape(-1, 3))


def test_engine_loss_is_the_recipes_measure(script: dict) -> None:
    """Through the engine, every cell heavy loses nothing against heavy on the whole image, and every cell light
    loses what the cells' errors say (the planner runs the light branch whole); the loss is cached by classes."""
    from classsr_cli import zoo
    from classsr_cli.degrade import make_pair

    model = zoo.load(None, 4, device=torch.device("cpu"), dtype=torch.float32).net
    yy, xx = np.mgrid[0:160, 0:200]
    img = np.stack([(yy * 2.1) % 256, (xx * 0.9 + yy) % 256, (xx * 1.7) % 256], -1).astype(np.uint8)
    hr, lr = make_pair(img, 4)
    c = script["keep_pair"](model, script["cells_of_pair"](model, hr, lr, np.random.default_rng(0)), hr, lr)
    n = len(c.px)
    assert abs(script["engine_loss"](model, c, np.full(n, 2))) < 1e-9
    light = np.zeros(n, dtype=np.int64)
    assert script["engine_loss"](model, c, light) == pytest.approx(script["cell_loss"](c, light), abs=1e-6)
    assert script["engine_loss"](model, c, light) > 0.1 and len(c.losses) == 2
    assert "decide" not in vars(model)  # the engine's decision is the model's own again


def test_calibration_cells_make_the_recipes_images(script: dict, tmp_path: Path) -> None:
    """Each photo and its downscales, each tagged with its photo; a photo whose LR is narrower than a patch gives
    none, and a downscale that would be is left out."""
    from PIL import Image

    from classsr_cli import zoo

    model = zoo.load(None, 4, device=torch.device("cpu"), dtype=torch.float32).net
    yy, xx = np.mgrid[0:160, 0:200]
    img = np.stack([(yy * 2.1) % 256, (xx * 0.9 + yy) % 256, (xx * 1.7) % 256], -1).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "big.png")  # LR 40 x 50: itself and 0.9 (36 x 45); 0.6 (24 x 30) is too small
    Image.fromarray(img[:120, :120]).save(tmp_path / "small.png")  # LR 30 x 30: below a patch
    paths = [tmp_path / "big.png", tmp_path / "small.png"]
    got = script["calibration_cells"](model, paths, [1.0, 0.9, 0.6], np.random.default_rng(0))
    assert [p.name for p, _ in got] == ["big.png", "big.png"]
    assert [len(c.px) for _, c in got] == [2 * 2, 2 * 2]  # cells of 28: ceil(40/28) x ceil(50/28), ceil(36/28) ...
    assert got[0][1].px.sum() == 160 * 200 and got[1][1].px.sum() < got[0][1].px.sum()


def test_view_scores_map_each_view_back_onto_the_frames_cells(script: dict) -> None:
    """One view is the engine's scores; on a frame of whole cells, the mirrored views are the frame's mirror image
    scored and mapped back, so that every cell of every view is the frame's own cell; transposed views likewise."""
    from classsr_cli import zoo

    model = zoo.load(None, 4, device=torch.device("cpu"), dtype=torch.float32).net
    x = torch.rand(1, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    views = script["view_scores"]
    with torch.inference_mode():
        plain = model.frame_scores(x, 28)
        assert torch.equal(views(model, x, 28, 1), plain)
        mirrored = model.frame_scores(x.flip(-1), 28).flip(1)
        assert torch.allclose(views(model, x, 28, 2), (plain + mirrored) / 2, atol=1e-6)
        assert not torch.allclose(mirrored, plain, atol=1e-3)  # a view that adds something
        flips = [model.frame_scores(x.flip(-2), 28).flip(0), model.frame_scores(x.flip(-1).flip(-2), 28).flip(0).flip(1)]
        assert torch.allclose(views(model, x, 28, 4), (plain + mirrored + sum(flips)) / 4, atol=1e-6)
        t = x.transpose(-1, -2)
        turned = [model.frame_scores(v, 28) for v in (t, t.flip(-2), t.flip(-1), t.flip(-1).flip(-2))]
        back = [turned[0], turned[1].flip(0), turned[2].flip(1), turned[3].flip(0).flip(1)]
        eight = (plain + mirrored + sum(flips) + sum(b.transpose(0, 1) for b in back)) / 8
        assert views(model, x, 28, 8).shape == plain.shape
        assert torch.allclose(views(model, x, 28, 8), eight, atol=1e-6)
    # a frame of partial cells keeps its grid
    y = torch.rand(1, 3, 50, 71, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert views(model, y, 28, 8).shape == model.frame_scores(y, 28).shape


def test_score_l1_measures_the_scores_against_their_targets(script: dict) -> None:
    c = cells(script, [[2.0, 1.5, 1.0], [1.0, 1.0, 1.0]])
    c.scores = c.measured_scores(0.0)
    assert script["score_l1"]([c]) == [0.0, 0.0, 0.0]
    c.scores = c.scores + torch.tensor([0.2, -0.1, 0.0], dtype=torch.float64)
    assert script["score_l1"]([c, c]) == pytest.approx([0.2, 0.1, 0.0])
