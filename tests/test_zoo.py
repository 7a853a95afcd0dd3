"""zoo: which model a name or the default resolves to."""

from __future__ import annotations

from pathlib import Path

import pytest

from classsr_cli import zoo


def test_the_default_prefers_the_residual_preset_and_falls_back_to_the_paper_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zoo, "weights_dirs", lambda: [tmp_path])
    assert zoo.default_model_name(3) == "classsr_fsrcnn_x3"  # nothing installed: the name the error reports
    (tmp_path / "classsr_fsrcnn_x3.safetensors").write_bytes(b"")
    assert zoo.default_model_name(3) == "classsr_fsrcnn_x3"
    (tmp_path / "classsr_residual_x3.safetensors").write_bytes(b"")
    assert zoo.default_model_name(3) == "classsr_residual_x3"
    assert zoo.resolve_model(None, 3) == tmp_path / "classsr_residual_x3.safetensors"
    assert zoo.resolve_model("classsr_fsrcnn_x3", 3) == tmp_path / "classsr_fsrcnn_x3.safetensors"
