"""scripts/bench_table.py: the Markdown tables that scripts/bench_val.sh writes from `classsr bench --json` files."""

from __future__ import annotations

from collections.abc import Callable


def _method(seconds: float, psnr: float, flops: int, spread: float | None = None) -> dict:
    m = {"psnr_y": psnr, "psnr_rgb": psnr - 1, "ssim_y": 0.9, "flops": flops, "flops_paper": flops / 10,
         "seconds": seconds, "seconds_all": [seconds], "mp_per_s": 1 / seconds, "peak_mem_mb": None}
    if spread is not None:
        m["spread"] = spread
    return m


def _report(load: list[float] | None, spread: float | None) -> dict:
    r = {"scale": 4, "device": "cpu", "device_name": "CPU", "threads": 2, "precision": "fp32", "repeat": 3, "step": 28,
         "model": "weights/m.safetensors", "torch": "2", "images": 5,
         "methods": {"heavy": _method(2.0, 30.0, 100, spread),
                     "classsr": {**_method(1.0, 29.95, 30, spread), "patches": {"light": 1, "medium": 2, "heavy": 1}}}}
    if load is not None:
        r["load_average"] = load
    return r


def test_the_table_gives_each_methods_spread_and_each_runs_load(load_script: Callable[[str], dict]) -> None:
    md = load_script("bench_table.py")["table"]([("SetA", _report([0.5, 1.9], 1.31)), ("SetB", _report(None, None))])
    rows = [line for line in md.splitlines() if line.startswith("| SetA")]
    assert rows[1].split("|")[10:12] == [" 0.50 ", " 1.31 "]  # classsr: time × heavy, then its spread
    assert "| SetB (5) | classsr |" in md and md.count(" – |") >= 2  # an older file: no spread, a dash
    assert "Load average before → after each run: SetA 0.5 → 1.9." in md
    assert "SetB 0" not in md  # no load recorded, none invented


def test_no_load_line_when_no_file_recorded_one(load_script: Callable[[str], dict]) -> None:
    assert "Load average" not in load_script("bench_table.py")["table"]([("SetB", _report(None, None))])
