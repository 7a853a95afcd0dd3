"""zoo: which model a name or the default resolves to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from classsr_cli import zoo

if TYPE_CHECKING:
    from classsr_cli.models.classsr import ClassSR


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


def test_list_models_reports_routing_and_the_calibrated_tolerance(tmp_path: Path) -> None:
    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    cfg = ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="deficit", tolerance=2.5)
    path = save_checkpoint(build_model(cfg), tmp_path / "mine_x2.safetensors")
    (info,) = [m for m in zoo.list_models([path]) if m.path == path]
    assert (info.family, info.scale, info.routing, info.tolerance) == ("residual", 2, "deficit", 2.5)
    paper = [m for m in zoo.list_models() if m.family == "fsrcnn"]
    assert paper and all(m.routing == "argmax" and m.tolerance is None for m in paper)
    both = ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="budget", tolerance=0.05,
                         cell_tolerance=1.5)
    path = save_checkpoint(build_model(both), tmp_path / "both_x2.safetensors")
    (info,) = [m for m in zoo.list_models([path]) if m.path == path]
    assert (info.routing, info.tolerance, info.cell_tolerance, info.cell_price) == ("budget", 0.05, 1.5, 0.0)
    priced = ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="budget",
                           tolerance=0.05, cell_price=3.5)
    path = save_checkpoint(build_model(priced), tmp_path / "priced_x2.safetensors")
    (info,) = [m for m in zoo.list_models([path]) if m.path == path]
    assert (info.tolerance, info.cell_tolerance, info.cell_price, info.frame_cap_db) == (0.05, 0.0, 3.5, 0.0)
    capped = ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8, routing="budget",
                           tolerance=0.05, cell_price=3.5, frame_cap_db=0.1)
    path = save_checkpoint(build_model(capped), tmp_path / "capped_x2.safetensors")
    (info,) = [m for m in zoo.list_models([path]) if m.path == path]
    assert (info.cell_price, info.frame_cap_db) == (3.5, 0.1)


def test_list_models_says_what_lr_each_model_was_trained_on(tmp_path: Path) -> None:
    """From the recipe a model records: clean LR, LR saved as JPEG (a recipe's jpeg_quality), with noise first (its
    noise_sigma), or not known."""
    from typer.testing import CliRunner

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.cli import app
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    net = build_model(ClassSRConfig("residual", 2, (0, 4, 8), {"depth": 1}, classifier_width=8))
    jpeg = save_checkpoint(net, tmp_path / "jpeg_x2.safetensors", provenance={"recipe": {"jpeg_quality": [30, 95]}})
    old = save_checkpoint(net, tmp_path / "old_x2.safetensors", provenance={"recipe": {"scale": 2}})
    bare = save_checkpoint(net, tmp_path / "bare_x2.safetensors")
    noisy = save_checkpoint(net, tmp_path / "noisy_x2.safetensors",
                            provenance={"recipe": {"jpeg_quality": [30, 95], "noise_sigma": [1, 12.5]}})
    got = {m.path: m for m in zoo.list_models([jpeg, old, bare, noisy])}
    assert (got[jpeg].jpeg_quality, got[jpeg].noise_sigma, got[jpeg].trained_on) == ((30, 95), (), "JPEG q30-95")
    assert (got[noisy].noise_sigma, got[noisy].trained_on) == ((1.0, 12.5), "noise σ1-12.5, JPEG q30-95")
    assert zoo.lr_trained_on(noisy) == zoo.TrainedLR((30, 95), (1.0, 12.5)) and zoo.lr_trained_on(tmp_path) is None
    assert (got[old].jpeg_quality, got[old].trained_on) == ((), "clean")  # a recipe from before the setting
    assert (got[bare].jpeg_quality, got[bare].noise_sigma, got[bare].trained_on) == (None, None, "–")
    assert all(m.trained_on == "clean" for m in zoo.list_models() if m.name.startswith("classsr_residual_x"))
    r = CliRunner().invoke(app, ["models", str(jpeg), "--json"])
    assert r.exit_code == 0, r.output
    record = next(json.loads(line) for line in r.stdout.splitlines() if json.loads(line)["path"] == str(jpeg))
    assert (record["jpeg_quality"], record["noise_sigma"]) == ([30, 95], [])
    r = CliRunner().invoke(app, ["models", str(jpeg)])
    assert r.exit_code == 0 and "trained on" in r.stdout and "JPEG q30-95" in r.stdout


def test_a_folder_given_as_the_model_names_the_file_a_training_run_exports(tmp_path: Path) -> None:
    from classsr_cli.errors import ModelNotFoundError

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ModelNotFoundError, match=r"is a folder, not a model file$"):
        zoo.resolve_model(str(run), 4)
    (run / "classsr.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=re.escape(f"exports there is {run / 'classsr.safetensors'}")):
        zoo.resolve_model(str(run), 4)
    with pytest.raises(ModelNotFoundError, match="no such model file"):
        zoo.resolve_model(str(run / "missing.safetensors"), 4)


def test_tolerance_needs_a_model_that_predicts_errors(tiny_model: ClassSR) -> None:
    """The paper preset routes by argmax, so --tolerance would do nothing there: refused, in one message that
    names the way to choose a branch instead; a negative tolerance is refused for every model."""
    from classsr_cli.errors import ConfigError
    from classsr_cli.zoo import check_tolerance

    assert tiny_model.cfg.routing == "argmax"
    check_tolerance(tiny_model, None)
    with pytest.raises(ConfigError, match=r"--tolerance needs a model that predicts each branch's error.*--force-branch"):
        check_tolerance(tiny_model, 0.1)
    with pytest.raises(ConfigError, match="at least 0"):
        check_tolerance(tiny_model, -1.0)


def test_a_model_name_not_found_suggests_the_closest_installed_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A name one slip away (a typo, a part of the name) is answered with the installed name it most likely meant; one
    like none gets no guess."""
    from classsr_cli.errors import ModelNotFoundError

    for name in ("classsr_residual_x4", "classsr_residual_jpeg_x4", "classsr_fsrcnn_x2"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    monkeypatch.setattr(zoo, "weights_dirs", lambda: [tmp_path, tmp_path / "missing"])
    for given, meant in (("classsr_residul_x4", "classsr_residual_x4"), ("residual_x4", "classsr_residual_x4"),
                         ("classsr_residual_jpg_x4", "classsr_residual_jpeg_x4"), ("fsrcnn_x2", "classsr_fsrcnn_x2")):
        with pytest.raises(ModelNotFoundError, match=rf"^no model named '{given}'; did you mean {meant}\? "):
            zoo.resolve_model(given, 4)
    with pytest.raises(ModelNotFoundError, match=r"^no model named 'edsr' \(`classsr models` lists the installed ones\)$"):
        zoo.resolve_model("edsr", 4)
