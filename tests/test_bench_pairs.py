"""scripts/bench_pairs.py: two models' `classsr bench --json` runs, timed in turns, as one table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


def _report(scale: int, heavy_s: float, routed_s: float, psnr: float, light: int,
            load: list[float] | None = None) -> dict:
    r = {"scale": scale, "methods": {
        "heavy": {"psnr_y": 30.0, "ssim_y": 0.9, "flops": 200, "seconds": heavy_s},
        "classsr": {"psnr_y": psnr, "ssim_y": 0.89, "flops": 50, "seconds": routed_s,
                    "patches": {"light": light, "medium": 4 - light, "heavy": 0}}}}
    if load is not None:
        r["load_average"] = load
    return r


def _write(folder: Path, name: str, report: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(report))
    return path


def test_one_row_per_model_with_each_turns_time_and_load(tmp_path: Path,
                                                           load_script: Callable[[str], dict]) -> None:
    files = [_write(tmp_path, "x2_Set5_a_t1.json", _report(2, 1.0, 0.5, 29.9, 1)),
             _write(tmp_path, "x4_Set5_a_t1.json", _report(4, 2.0, 1.0, 29.95, 2, [0.5, 1.0])),
             _write(tmp_path, "x4_Set5_b_t1.json", _report(4, 2.0, 1.2, 29.5, 1)),
             _write(tmp_path, "x4_Set5_a_t2.json", _report(4, 2.0, 1.5, 29.95, 2, [1.0, 2.0])),
             _write(tmp_path, "x4_Set5_b_t2.json", _report(4, 4.0, 2.0, 29.5, 1))]
    rows = [line.split("|")[1:-1] for line in load_script("bench_pairs.py")["table"](files).splitlines()[2:]]
    assert [(r[0].strip(), r[2].strip()) for r in rows] == [("×4", "a"), ("×4", "b"), ("×2", "a")]
    a, b = rows[0], rows[1]
    assert [c.strip() for c in a[3:]] == ["29.9500", "-0.0500", "0.8900", "0.2500", "50.0 / 50.0 / 0.0",
                                          "0.500, 0.750", "0.5–1, 1–2"]
    assert b[8].strip() == "0.600, 0.500" and b[9].strip() == "–, –"  # time over its own run's heavy; no load


def test_a_turn_with_other_quality_or_a_bad_name_is_an_error(tmp_path: Path,
                                                            load_script: Callable[[str], dict]) -> None:
    table = load_script("bench_pairs.py")["table"]
    first = _write(tmp_path, "x4_Set5_a_t1.json", _report(4, 2.0, 1.0, 29.95, 2))
    with pytest.raises(ValueError, match="psnr_y differs in turn 2"):
        table([first, _write(tmp_path, "x4_Set5_a_t2.json", _report(4, 2.0, 1.0, 29.9, 2))])
    with pytest.raises(ValueError, match="patches differs"):
        table([first, _write(tmp_path, "x4_Set5_a_t3.json", _report(4, 2.0, 1.0, 29.95, 3))])
    with pytest.raises(ValueError, match="expected a name"):
        table([_write(tmp_path, "Set5_x4.json", _report(4, 2.0, 1.0, 29.95, 2))])
    with pytest.raises(ValueError, match="the report x2"):
        table([_write(tmp_path, "x4_Set5_c_t1.json", _report(2, 2.0, 1.0, 29.95, 2))])
