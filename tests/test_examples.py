"""examples/: the photos are there and readable, and both scripts run (tiny model, in-process)."""

from __future__ import annotations

import importlib.util
import re
import runpy
import sys
from pathlib import Path

import pytest

from classsr_cli.io.image import read_image

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_photos() -> None:
    # Outputs of the README's set-up line (baby_x4.png beside baby.png) are not example photos.
    photos = sorted(
        p for p in EXAMPLES.iterdir() if p.suffix in (".png", ".jpg") and not re.search(r"_x\d|_classmap", p.stem)
    )
    assert "baby.png" in {p.name for p in photos}  # the README's set-up line upscales it
    assert sum(p.stat().st_size for p in photos) < 1_500_000
    for p in photos:
        assert p.name in (EXAMPLES / "SOURCES.md").read_text()
        assert read_image(p).width >= 256
    assert read_image(EXAMPLES / "bridge.png").gray


def test_api_example(tiny_model_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["api_upscale.py", str(photo), "--model", str(tiny_model_path), "-x", "3"])
    runpy.run_path(str(EXAMPLES / "api_upscale.py"), run_name="__main__")
    assert "patches: light" in capsys.readouterr().out
    assert read_image(photo.with_name("photo_x3.png")).width == 48 * 3
    from classsr_cli.io.files import is_own_output

    assert is_own_output(photo.with_name("photo_x3.png"))  # so `classsr bench` and folder runs leave it out
    # Without -x a --model runs at its own scale, as the CLI does (the x2 default was a ConfigError traceback).
    monkeypatch.setattr(sys, "argv", ["api_upscale.py", str(photo), "--model", "classsr_residual_x2"])
    runpy.run_path(str(EXAMPLES / "api_upscale.py"), run_name="__main__")
    assert read_image(photo.with_name("photo_x2.png")).width == 48 * 2
    assert "vs heavy on the whole image" in capsys.readouterr().out


def test_batched_vs_single(tiny_model_path: Path, photo: Path) -> None:
    spec = importlib.util.spec_from_file_location("batched_vs_single", EXAMPLES / "batched_vs_single.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--model", str(tiny_model_path), "--image", str(photo), "--repeat", "1"])
    assert result["ratio"] > 0 and result["max_diff"] < 1e-4
