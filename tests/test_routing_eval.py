"""scripts/routing_eval.py on the shipped x4 default: the frame cap read apart from the classifier's decisions, and the
rules it measures routings by."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_routing_eval_reads_the_default_without_its_frame_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each photo's ``cap`` fires exactly where the loss the classifier predicts for the uncapped classes passes the
    model's cap; the cap only moves cells to dearer branches, so without it no third sends fewer cells light."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 224.0
    smooth = np.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 + 0.2 * np.sin(3 * xx)], -1)
    Image.fromarray((smooth * 255).round().astype(np.uint8)).save(photos / "smooth.png")
    Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(photos / "noise.png")
    lighthouse = np.asarray(Image.open(ROOT / "examples" / "lighthouse.jpg").convert("RGB"))[:448, :448]
    Image.fromarray(lighthouse).save(photos / "photo.png")  # a clean photo crop: the cap fires on it
    out = tmp_path / "routing.json"
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    monkeypatch.setattr(sys, "argv", ["routing_eval.py", str(photos), "--threads", "1", "--json", str(out)])
    assert runpy.run_path(str(ROOT / "scripts" / "routing_eval.py"), run_name="not_main")["main"]() == 0
    report = json.loads(out.read_text())
    free = report["decided_without_cap"]
    cap = free["frame_cap_db"]
    assert cap > 0
    fired = {r["image"]: r["cap"]["fired"] for r in report["images"]}
    assert fired == {r["image"]: r["cap"]["predicted_loss_db"] > cap for r in report["images"]}
    assert fired["photo.png"] and not fired["noise.png"]
    for third in ("easiest_third_to_cheapest", "hardest_third_to_cheapest"):
        assert free[third] >= report["decided"][third]
    assert free["hardest_third_to_cheapest"] > report["decided"]["hardest_third_to_cheapest"]  # the crop's cells
    cost = report["mean_branch_cost_vs_heavy"]  # the cap only moves cells to dearer branches: it costs more
    assert cost["decided"] > cost["decided_without_cap"]
    assert set(report["mean_extra_luma_error_levels2"]) == set(cost) == {"decided", "ceiling", "lr_only",
                                                                         "decided_without_cap"}
    assert 0 <= report["lr_only"]["hardest_third_to_cheapest"] <= report["lr_only"]["easiest_third_to_cheapest"] <= 1
    assert set(report["mean_routing_loss_db"]) == set(cost)
    assert report["mean_routing_loss_db"]["decided"] == pytest.approx(
        np.mean([r["routing_loss_db"]["decided"] for r in report["images"]]), abs=1e-4)


def _script() -> dict:
    return runpy.run_path(str(ROOT / "scripts" / "routing_eval.py"), run_name="not_main")


def test_priced_on_measured_deficits_is_the_engines_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ceiling's and the LR-only rule's classes are the engine's priced rule on deficits given in levels²,
    negative ones clipped: free light cells stay light, a medium that saves more than the price of its compute is
    taken, heavy only where both cheaper branches fall short by more than its price."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    priced_on = _script()["priced_on"]
    costs = (0.0, 0.25, 1.0)
    d = np.array([[0.0, 0.0], [-5.0, 1.0], [10.0, 0.0], [30.0, 20.0], [12.0, 5.0], [2.0, 0.0]])
    assert priced_on(d, 16.0, costs).tolist() == [0, 0, 1, 2, 1, 0]  # 2 <= 0 + 16 * 0.25: light
    assert priced_on(d, 4.0, costs).tolist() == [0, 0, 1, 2, 2, 1]  # the price falls: dearer branches pay


def test_routing_cost_is_the_measured_error_over_heavy_and_the_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    routing_cost = _script()["routing_cost"]
    errors = np.array([[5.0, 3.0, 2.0], [1.0, 4.0, 4.0], [9.0, 8.0, 6.0]])
    extra, cost = routing_cost(errors, np.array([0, 1, 2]), np.array([0.0, 0.25, 1.0]))
    assert extra == pytest.approx((3.0 + 0.0 + 0.0) / 3) and cost == pytest.approx(1.25 / 3)
    extra, cost = routing_cost(errors, np.array([1, 0, 0]), np.array([0.0, 0.25, 1.0]))
    assert extra == pytest.approx((1.0 - 3.0 + 3.0) / 3) and cost == pytest.approx(0.25 / 3)


def test_routing_loss_db_is_the_photos_psnr_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo's loss is the PSNR of its summed squared errors against heavy's: 0 dB all heavy, 10*log10 of the ratio."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    routing_loss_db = _script()["routing_loss_db"]
    errors = np.array([[50.0, 30.0, 20.0], [10.0, 40.0, 40.0], [90.0, 80.0, 60.0]])  # summed per cell
    assert routing_loss_db(errors, np.array([2, 2, 2])) == pytest.approx(0.0)
    assert routing_loss_db(errors, np.array([0, 1, 2])) == pytest.approx(10 * np.log10((50 + 40 + 60) / 120))
    assert routing_loss_db(errors, np.array([1, 0, 2])) < 0  # a cheaper branch better than heavy on a cell



def test_measured_numerator_db_is_the_caps_loss_on_measured_distances(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the cells' distances from heavy equal to what the classifier predicts, the measured-numerator loss is the
    cap's own predicted loss; heavy cells add nothing, and doubling the distances raises it."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import torch

    from classsr_cli.models.classsr import DEFICIT_EPS, predicted_loss_db

    measured_numerator_db = _script()["measured_numerator_db"]
    levels = np.array([[4.0, 1.0, 30.0], [0.5, 0.2, 10.0], [9.0, 3.0, 50.0]])
    scores = torch.from_numpy(np.log10(DEFICIT_EPS + levels))
    classes = np.array([0, 1, 2])
    want = predicted_loss_db(scores, torch.from_numpy(classes))
    assert measured_numerator_db(levels[:, :2], classes, scores) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(10 * np.log10(1 + (4.0 + 0.2) / 90.0), rel=1e-6)
    dist = levels[:, :2].copy()
    dist[2] = 1000.0  # the heavy cell's distances are not read
    assert measured_numerator_db(dist, classes, scores) == pytest.approx(want, rel=1e-6)
    assert measured_numerator_db(2 * levels[:, :2], classes, scores) > want
