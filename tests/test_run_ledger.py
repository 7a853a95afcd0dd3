"""scripts/run_ledger.py: the recorded timing runs of one model file, counted from their JSON, and the counts the
README and docs/results.md quote."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PSNR = 29.7


def _bench(routed_s: float, heavy_s: float = 1.0, psnr: float = PSNR, *, threads: int = 2, scale: int = 4,
           precision: str = "fp32", images: int = 80, folder: str = "SunHays80") -> dict:
    return {"threads": threads, "scale": scale, "precision": precision, "images": images, "native": False,
            "inputs": [f"/data/val/{folder}/img{i}.png" for i in range(images)],
            "methods": {"heavy": {"psnr_y": 29.8, "seconds": heavy_s},
                        "classsr": {"psnr_y": psnr, "seconds": routed_s}}}


def _write(root: Path, rel: str, record: dict) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_counts_only_this_files_runs_of_the_set_scale_threads_and_precision(
        tmp_path: Path, load_script: Callable[[str], dict]) -> None:
    mod = load_script("run_ledger.py")
    _write(tmp_path, "a/SunHays80_x4.json", _bench(0.45))
    _write(tmp_path, "b/SunHays80_x4.json", _bench(1.2, heavy_s=2.0))  # 0.6
    _write(tmp_path, "b/other_model.json", _bench(0.3, psnr=PSNR - 0.001))  # another file's output
    _write(tmp_path, "b/bf16.json", _bench(0.2, precision="bf16"))
    _write(tmp_path, "b/one_thread.json", _bench(0.2, threads=1))
    _write(tmp_path, "b/x2.json", _bench(0.2, scale=2))
    _write(tmp_path, "b/b100.json", _bench(0.2, images=100, folder="B100"))
    _write(tmp_path, "b/part.json", _bench(0.2, images=20))  # part of the set
    _write(tmp_path, "c/dial_SunHays80_x4.json", {  # scripts/dial_curve.py: its default point only
        "threads": 2, "images": 80, "points": [
            {"tolerance": None, "default": True, "psnr_y": PSNR, "time_vs_heavy": 0.49},
            {"tolerance": 0.2, "default": False, "psnr_y": PSNR - 0.2, "time_vs_heavy": 0.3}]})
    (tmp_path / "c" / "broken.json").write_text("{not json")
    found = mod["ledger"](tmp_path, psnr_y=PSNR)
    assert [(r["file"], r["time_vs_heavy"]) for r in found["counted"]] == [
        ("a/SunHays80_x4.json", 0.45), ("b/SunHays80_x4.json", 0.6), ("c/dial_SunHays80_x4.json", 0.49)]
    assert (found["runs"], found["under_count"], found["min"], found["max"]) == (3, 2, 0.45, 0.6)
    assert found["set_aside"] == []
    assert mod["ledger"](tmp_path, psnr_y=PSNR, under=0.46)["under_count"] == 1
    with pytest.raises(ValueError, match="give psnr_y"):  # no shipped figure to recognise the file by
        mod["ledger"](tmp_path, name="Set5")


def test_runs_the_docs_set_aside_are_listed_apart(tmp_path: Path, load_script: Callable[[str], dict]) -> None:
    mod = load_script("run_ledger.py")
    aside = next(iter(mod["NOT_COUNTED"]))
    _write(tmp_path, aside, _bench(0.3))
    _write(tmp_path, "kept.json", _bench(0.5))
    found = mod["ledger"](tmp_path, psnr_y=PSNR)
    assert [r["file"] for r in found["counted"]] == ["kept.json"]
    assert [r["file"] for r in found["set_aside"]] == [aside]
    assert (found["runs"], found["under_count"]) == (1, 0)


def test_the_readme_and_results_quote_the_shipped_x4_defaults_runs_as_counted(
        load_script: Callable[[str], dict]) -> None:
    """README.md and docs/results.md give the SunHays80 ×4 runs of the shipped default as the ledger counts them
    from docs/results: a new run recorded without updating them (or the reverse) fails here."""
    mod = load_script("run_ledger.py")
    found = mod["ledger"](ROOT / "docs" / "results")
    assert found["runs"] >= 40  # the JSON of every pass since the thirty-third is there
    span = f"{found['min']:.3f}–{found['max']:.3f}"
    readme = (ROOT / "README.md").read_text()
    assert f"{span} ({found['runs']} runs, {found['under_count']} under 0.5)" in readme
    results = re.sub(r"\s+", " ", (ROOT / "docs" / "results").with_suffix(".md").read_text())
    assert results.count(f"{span}× the time in {found['runs']} runs") == 2
    assert f"the stretch in {found['under_count']} of the {found['runs']}" in results
    for name in ("B100", "Urban100"):  # the "never slower than heavy" sets
        each = mod["ledger"](ROOT / "docs" / "results", name=name, under=1.0)
        assert each["runs"] >= 10
        assert f"{each['min']:.2f}–{each['max']:.2f} ({each['runs']} runs)" in readme
        assert f"{name} {each['min']:.2f}–{each['max']:.2f}× in {each['runs']} runs" in results
        assert f"{name} {each['min']:.3f}–{each['max']:.3f}× in {each['runs']} runs" in results
