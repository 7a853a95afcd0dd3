"""scripts/compare_weights.py: two files of one recipe, compared tensor by tensor and by what their stages recorded."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from classsr_cli.checkpoint import save_checkpoint
from classsr_cli.errors import CheckpointError


@pytest.fixture()
def script(load_script: Callable[[str], dict]) -> dict:
    return load_script("compare_weights.py")


def _provenance(psnr: float, l1: float) -> dict:
    return {"data": {"hash": "sha256:abc"}, "stages": {"branch1": {"iterations": 10, "seconds": 3.0,
            "val": {"psnr": psnr}}, "classifier": {"iterations": 5, "val": {"l1_log10": l1}}},
            "ranking": {"mean_mse": [3.0, 2.0, 1.0]}}


def test_a_copy_is_identical_and_a_nudged_weight_is_found(script: dict, tiny_model: torch.nn.Module,
                                                          tmp_path: Path) -> None:
    a = save_checkpoint(tiny_model, tmp_path / "a.safetensors", provenance=_provenance(28.5, 0.3))
    b = save_checkpoint(tiny_model, tmp_path / "b.safetensors", provenance=_provenance(28.5, 0.3))
    same = script["compare"](a, b)
    assert same["config"] == {} and same["tensors"]["different"] == {}
    assert same["tensors"]["identical"] == len(tiny_model.state_dict())
    assert same["stages"]["branch1"] == [{"iterations": 10, "val": {"psnr": 28.5}}] * 2  # seconds left out

    nudged = copy.deepcopy(tiny_model)
    name, weight = next((k, v) for k, v in nudged.state_dict().items() if v.dtype.is_floating_point and v.numel())
    with torch.no_grad():
        weight.view(-1)[0] += 0.25
    c = save_checkpoint(nudged, tmp_path / "c.safetensors", provenance=_provenance(28.4, 0.31))
    got = script["compare"](a, c)
    assert list(got["tensors"]["different"]) == [name]
    assert got["tensors"]["different"][name]["max_abs_diff"] == pytest.approx(0.25, abs=1e-6)
    assert got["tensors"]["identical"] == len(tiny_model.state_dict()) - 1
    assert got["stages"]["classifier"][0]["val"]["l1_log10"] == 0.3
    assert got["stages"]["classifier"][1]["val"]["l1_log10"] == 0.31


def test_configs_that_differ_are_named_with_both_values(script: dict) -> None:
    got = script["config_diff"]({"scale": 4, "widths": [0, 16, 32]}, {"scale": 4, "widths": [0, 16, 64], "x": 1})
    assert got == {"widths": [[0, 16, 32], [0, 16, 64]], "x": [None, 1]}


def test_a_file_that_is_not_a_model_is_refused(script: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        script["compare"](bad, bad)


def test_training_logs_agree_but_for_the_machines_figures_and_a_changed_loss_is_found(script: dict,
                                                                                     tmp_path: Path) -> None:
    def log(path: Path, records: list[dict]) -> Path:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return path

    base = [{"stage": "baseline", "iteration": 200, "lr": 5e-4, "l1": 0.04, "it_per_s": 17.0, "time": 1.0},
            {"stage": "baseline", "iteration": 200, "event": "val", "psnr": 28.1, "time": 2.0},
            {"stage": "base", "event": "done", "seconds": 27.8, "sub_images": 10}]
    a = log(tmp_path / "a.jsonl", base)
    timing = [dict(r, time=9.0, it_per_s=3.0) if "time" in r else dict(r, seconds=1.0) for r in base]
    b = log(tmp_path / "b.jsonl", [*timing, {"stage": "classifier", "iteration": 200, "l1": 0.3}])
    same = script["compare_logs"](a, b)
    assert (same["common"], same["identical"], same["differ"]) == (3, 3, [])
    assert (same["only_first"], same["only_second"], same["stages"]) == (0, 1, ["base", "baseline"])
    c = log(tmp_path / "c.jsonl", [dict(base[0], l1=0.0400001), *base[1:]])
    changed = script["compare_logs"](a, c)
    assert changed["identical"] == 2
    assert changed["differ"] == [{"key": ["baseline", 200, None], "first": {k: v for k, v in base[0].items()
                                                                             if k not in ("time", "it_per_s")},
                                  "second": {"stage": "baseline", "iteration": 200, "lr": 5e-4, "l1": 0.0400001}}]
