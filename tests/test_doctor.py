"""classsr_cli.doctor and `classsr doctor`: the checks pass on this installation, and each kind of failure (a device
whose output is wrong, one whose output is not finite, a model that does not load) is one failed check and exit 1."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from classsr_cli import doctor
from classsr_cli.cli import app
from classsr_cli.errors import ConfigError, ModelNotFoundError, PrecisionError
from classsr_cli.pipeline import Upscaler

runner = CliRunner()


def records(output: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["area"], r["name"]): r for r in map(json.loads, output.splitlines())}


@pytest.mark.slow
def test_this_installation_passes_every_check() -> None:
    r = runner.invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    got = records(r.stdout)
    assert all(rec["ok"] is not False for rec in got.values())
    assert got[("formats", "JPEG XL")]["ok"] and got[("formats", "HEIC")]["ok"] and got[("ffmpeg", "libx264")]["ok"]
    assert got[("ffmpeg", "16-bit levels")]["detail"].startswith("swscale reads 10-bit video's white as 65283 of")
    assert got[("models", "default x4")]["detail"].endswith("classsr_residual_x4.safetensors")
    assert got[("self-test", "cpu fp32")]["detail"].startswith("the reference")
    bf16 = got[("self-test", "cpu bf16")]
    assert bf16["ok"] and float(bf16["detail"].split()[0]) <= doctor.LEVELS["bf16"]


def test_an_optional_package_absent_is_told_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """isal (fast PNG) and etcpak (BC7 textures) are optional: absent, each is told with what it gives and how to get
    it, and the check does not fail; a needed one absent fails."""
    monkeypatch.setattr(doctor, "_version", lambda name: None if name in ("etcpak", "isal", "safetensors") else "1.0")
    got = {c.name: c for c in doctor.environment()}
    assert got["etcpak"].ok is None and "pip install 'classsr[textures]'" in got["etcpak"].detail
    assert got["isal"].ok is None and got["safetensors"].ok is False and got["numpy"].ok is True


def test_files_of_the_weights_folders_that_are_not_models_are_told(tmp_path: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged download or foreign weights in $CLASSSR_WEIGHTS is told (not failed: the models beside it load),
    named; none, no such line."""
    from pathlib import Path

    from safetensors.torch import save_file

    weights = Path(tmp_path)
    save_file({}, str(weights / "empty_foreign.safetensors"))  # readable, no classsr metadata
    (weights / "cut.safetensors").write_bytes(b"\x10\x00")
    import torch

    save_file({"block_1.c1_r.sk.weight": torch.zeros(2)}, str(weights / "span.safetensors"))  # another tool's: named
    monkeypatch.setenv("CLASSSR_WEIGHTS", str(weights))
    got = {c.name: c for c in doctor.models()}
    assert got["left out"].ok is None and got["left out"].detail == (
        f"3 file(s) in the weights folders that are not classsr checkpoints: {weights / 'cut.safetensors'}, "
        f"{weights / 'empty_foreign.safetensors'}, {weights / 'span.safetensors'} (a SPAN network)")
    assert got["default x4"].ok is True  # the shipped models, after $CLASSSR_WEIGHTS
    for f in weights.iterdir():
        f.unlink()
    assert "left out" not in {c.name for c in doctor.models()}


def test_the_plan_is_the_cpu_and_each_device_asked_for() -> None:
    import torch

    assert doctor.self_test_plan("cpu") == [("cpu", "fp32"), ("cpu", "bf16")]
    if not torch.cuda.is_available():
        assert doctor.self_test_plan("auto") == doctor.self_test_plan("cpu")
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            doctor.self_test_plan("cuda")


def test_a_wrong_or_non_finite_output_and_a_missing_model_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 made to give every pixel 8 levels brighter fails with its figure; one that raises the pipeline's
    PrecisionError (values that are not finite) fails with its message; the CPU's fp32 reference still passes."""
    import torch

    real = Upscaler.upscale_array

    def brighter(self: Upscaler, pixels: np.ndarray, *a: Any, **k: Any) -> Any:
        got = real(self, pixels, *a, **k)
        if self.dtype == torch.bfloat16:
            got.pixels[...] = np.clip(got.pixels.astype(int) + 8, 0, 255)
        return got

    monkeypatch.setattr(Upscaler, "upscale_array", brighter)
    checks = {c.name: c for c in doctor.self_test([("cpu", "fp32"), ("cpu", "bf16")])}
    assert checks["cpu fp32"].ok and checks["cpu bf16"].ok is False
    assert "levels from the CPU's fp32 (at most 2)" in checks["cpu bf16"].detail
    assert checks["cpu bf16"].detail.endswith("the output is wrong on this device")

    def not_finite(self: Upscaler, pixels: np.ndarray, *a: Any, **k: Any) -> Any:
        if self.dtype == torch.bfloat16:
            raise PrecisionError("the model in bf16 gave values that are not finite; use --precision fp32")
        return real(self, pixels, *a, **k)

    monkeypatch.setattr(Upscaler, "upscale_array", not_finite)
    failed = doctor.self_test([("cpu", "bf16")])
    assert [(c.name, c.ok) for c in failed] == [("cpu fp32", True), ("cpu bf16", False)]
    assert "not finite" in failed[1].detail

    def missing(spec: Any, scale: int) -> Any:
        raise ModelNotFoundError(f"no default x{scale} model found")

    monkeypatch.setattr("classsr_cli.zoo.resolve_model", missing)
    assert [(c.name, c.ok) for c in doctor.models()] == [("default x4", False), ("default x2", False)]


@pytest.mark.slow
def test_the_cli_exits_1_and_names_the_failed_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "models", lambda: [doctor.Check("models", "default x4", False, "no model")])
    r = runner.invoke(app, ["doctor", "--no-self-test"])
    assert r.exit_code == 1 and "FAIL" in r.stdout and "1 check(s) failed: models default x4" in r.stderr
    assert "self-test" not in r.stdout
