"""scripts/tta_table.py: the figures it reads from a pair of bench records, and the pairs it refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def _record(tta: int, heavy: tuple[float, float, int], routed: tuple[float, float, int]) -> dict[str, Any]:
    def method(psnr: float, seconds: float, flops: int) -> dict[str, Any]:
        return {"psnr_y": psnr, "seconds": seconds, "flops": flops}

    return {"tta": tta, "images": 3, "inputs": ["a", "b", "c"], "model": "m",
            "methods": {"heavy": method(*heavy), "classsr": method(*routed)}}


def test_a_pair_gives_the_gains_and_the_ratios(load_script: Callable[[str], dict]) -> None:
    row = load_script("tta_table.py")["row"]
    plain = _record(1, (30.0, 1.0, 100), (29.9, 0.5, 30))
    eight = _record(8, (30.2, 9.0, 800), (30.15, 4.0, 250))
    r = row(plain, eight)
    assert r["heavy_gain"] == pytest.approx(0.2) and r["classsr_gain"] == pytest.approx(0.25)
    assert r["heavy_time"] == pytest.approx(9.0) and r["classsr_time"] == pytest.approx(8.0)
    assert r["heavy_flops"] == 8 and r["classsr_flops"] == pytest.approx(250 / 30)
    assert r["classsr_vs_heavy_tta_time"] == pytest.approx(4 / 9)
    assert r["classsr_vs_heavy_tta_psnr"] == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="first record must be without"):
        row(eight, plain)
    other = _record(8, (30.2, 9.0, 800), (30.15, 4.0, 250)) | {"inputs": ["d"]}
    with pytest.raises(ValueError, match="not of the same images"):
        row(plain, other)
