"""scripts/score_calibration.py: the corrections' features and fit, the error summaries and the cap's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture()
def script(load_script: Callable[[str], dict]) -> dict:
    return load_script("score_calibration.py")


def test_frame_features_carry_the_frames_statistics_on_every_cell(script: dict) -> None:
    s = np.array([[0.0, 1.0, 2.0], [2.0, 3.0, 2.0]])
    f = script["frame"](s)
    assert f.shape == (2, 10)
    assert np.array_equal(f[:, :3], s) and np.all(f[:, -1] == 1)
    assert np.allclose(f[0, 3:9], [1.0, 2.0, 2.0, 1.0, 1.0, 0.0]) and np.array_equal(f[0, 3:9], f[1, 3:9])
    assert np.array_equal(script["affine"](s), np.concatenate([s, np.ones((2, 1))], 1))


def test_fit_lad_recovers_an_affine_map_past_outliers(script: dict) -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(400, 3))
    t = s @ np.array([[0.8, 0.1, 0.0], [0.0, 1.2, 0.0], [0.0, 0.0, 1.0]]) + np.array([-0.3, 0.2, 0.0])
    t[::20] += 5.0  # a few large errors, which least absolute deviations ignores
    w = script["fit_lad"](script["affine"](s), t)
    pred = script["affine"](s) @ w
    assert np.median(np.abs(pred - t)) < 1e-3


def test_errors_are_mean_absolute_and_signed_per_column(script: dict) -> None:
    got = script["errors"](np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]]), np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]))
    assert got["cells"] == 2
    assert got["l1"] == {"light_deficit": 2.0, "medium_deficit": 1.0, "heavy_error": 0.0}
    assert got["bias"] == {"light_deficit": 2.0, "medium_deficit": -1.0, "heavy_error": 0.0}


def test_cap_summary_counts_frames_past_the_cap(script: dict) -> None:
    pred = np.array([0.2, 0.05, 0.3, 0.0])
    meas = np.array([0.1, 0.15, 0.2, 0.005])  # the last is below 0.01 dB: not in the ratio
    got = script["cap_summary"](pred, meas, 0.1)
    assert got["median_ratio_predicted_to_measured"] == pytest.approx(np.median([2.0, 1 / 3, 1.5]), abs=1e-3)
    assert (got["past_cap_predicted"], got["past_cap_measured"], got["past_cap_both"]) == (2, 2, 1)
