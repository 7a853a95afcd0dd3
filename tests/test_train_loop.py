"""The training loop's guards and reporting: a diverged loss stops the stage (nothing non-finite is saved or logged
as bare NaN), progress off a terminal is plain flushed lines, SIGTERM ends a run as Ctrl-C does, and an interrupted
invocation's time counts in the provenance.

Tiny as tests/test_train.py: a few seeded ~96x80 photos at x2, FSRCNN widths 4/6/8, a few iterations, one thread.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner, Result

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.cli import app
from classsr_cli.cli.train import _Lines
from classsr_cli.errors import TrainingDivergedError
from classsr_cli.train.config import STAGES, StageConfig, load_train_config
from classsr_cli.train.data import prepare
from classsr_cli.train.loop import Dist, Event, MetricsLog, fit
from classsr_cli.train.stages import Trainer

runner = CliRunner()


def strict(line: str) -> dict[str, Any]:
    """A JSON line as strict parsers (jq, JavaScript) read it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [strict(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(96, 80), (100, 83), (112, 72)]):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        img = np.stack([x * 2 + 10 * i, y * 3, (x + y) * 1.2], -1)
        img[:, w // 2 :] += rng.normal(0, 30, (h, w - w // 2, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def write_config(path: Path, *, iterations: int = 4, baseline_lr: float = 1e-3) -> Path:
    stages = []
    for name in STAGES:
        lr = baseline_lr if name == "baseline" else 1e-3
        stages.append(f"[{name}]\niterations = {iterations}\nbatch_size = 4\nlr = {lr}\nval_every = 3\nckpt_every = 2\n")
    path.write_text('family = "fsrcnn"\nscale = 2\nwidths = [4, 6, 8]\nextra = {s = 4, m = 1}\npatch = 32\n'
                    "data_step = 16\nfactors = [1.0]\nval_fraction = 0.0\nlog_every = 2\nclassifier_warmup = 2\n\n"
                    + "\n".join(stages))
    return path


def train(stage: str, run_dir: Path, hr: Path, config: Path) -> Result:
    return runner.invoke(app, ["train", stage, "--hr", str(hr), "--config", str(config), "--out", str(run_dir),
                               "--threads", "1", "--device", "cpu"])


# -- a diverged loss -------------------------------------------------------------------------------------------------
def test_the_metrics_log_writes_null_for_nan_and_infinity(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", True)
    log.write(stage="s", a=float("nan"), b=torch.tensor(float("inf")), c=np.float32("-inf"), d=[float("nan"), 1.5],
              e={"f": np.float64("nan")}, g=torch.tensor(2.0))
    rec = metrics(tmp_path)[0]
    assert (rec["a"], rec["b"], rec["c"], rec["d"], rec["e"], rec["g"]) == (None, None, None, [None, 1.5], {"f": None}, 2.0)


def _linear_fit(tmp_path: Path, cfg: StageConfig, loss_fn: Any, log_every: int) -> None:
    """``fit`` a Linear(3, 1) on ``loss_fn(output, iteration)`` into ``tmp_path``."""
    torch.manual_seed(0)

    def step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        loss = loss_fn(extras["train_module"](torch.ones(2, 3)), it)
        return loss, {"l1": loss.detach()}

    fit("baseline", nn.Linear(3, 1), step, cfg, tmp_path / "baseline.state.pt", dist=Dist(), seed=0,
        log=MetricsLog(tmp_path / "metrics.jsonl", True), log_every=log_every)


def test_a_non_finite_loss_stops_the_stage_and_keeps_the_last_finite_checkpoint(tmp_path: Path) -> None:
    """NaN at iteration 6 (log every 4, checkpoints every 2): the stage stops at the checkpoint of 6, naming the
    iteration, and the state file keeps iteration 4, finite; nothing in metrics.jsonl is bare NaN."""
    cfg = StageConfig(iterations=10, batch_size=2, lr=1e-3, ckpt_every=2, val_every=100)
    with pytest.raises(TrainingDivergedError) as e:
        _linear_fit(tmp_path, cfg, lambda y, it: y.square().mean() * (float("nan") if it == 5 else 1.0), log_every=4)
    assert "baseline: training diverged at iteration 6 of 10" in str(e.value) and "lower [baseline] lr" in str(e.value)
    state = torch.load(tmp_path / "baseline.state.pt", weights_only=True)
    assert state["iteration"] == 4 and all(bool(v.isfinite().all()) for v in state["model"].values())
    recs = metrics(tmp_path)
    assert recs[-1]["event"] == "diverged" and recs[-1]["iteration"] == 6
    assert [r["iteration"] for r in recs if "l1" in r] == [4]  # the window holding the NaN was not logged


def test_weights_made_nan_by_a_finite_loss_are_not_saved(tmp_path: Path) -> None:
    """sqrt at 0: a finite loss (0) whose gradient is NaN; the checkpoint after that step is refused."""
    cfg = StageConfig(iterations=4, batch_size=2, lr=1e-3, ckpt_every=1, val_every=100)
    with pytest.raises(TrainingDivergedError, match=r"iteration 1 of 4 \(its weights became NaN"):
        _linear_fit(tmp_path, cfg, lambda y, it: (y * 0).sqrt().mean(), log_every=100)
    assert not (tmp_path / "baseline.state.pt").exists()


def test_a_diverging_stage_is_one_line_naming_the_stage_and_its_lr(hr_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    r = train("baseline", run_dir, hr_dir, write_config(tmp_path / "c.toml", baseline_lr=1e12))
    assert r.exit_code == 1, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: baseline: training diverged at iteration "), r.stderr
    assert "lower [baseline] lr (now 1e+12)" in errors[0]
    assert not (run_dir / "baseline.safetensors").exists()
    assert any(rec.get("event") == "diverged" for rec in metrics(run_dir))


# -- progress off a terminal, SIGTERM --------------------------------------------------------------------------------
def test_progress_off_a_terminal_is_plain_lines_at_start_every_half_minute_and_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = [0.0]
    lines = _Lines(clock=lambda: now[0])

    def at(t: float, event: Event) -> None:
        now[0] = t
        lines(event)

    at(0, Event("baseline", 40, 100, {}, 0.0, kind="start"))
    at(1, Event("baseline", 50, 100, {"l1": 0.25}, 10.0))  # the first log step: a line
    at(20, Event("baseline", 60, 100, {"l1": 0.2}, 10.0))  # under 30 s since: none
    at(45, Event("baseline", 70, 100, {"l1": 0.125}, 10.0))
    at(90, Event("baseline", 100, 100, {"l1": 0.1}, 10.0))
    at(91, Event("calibrate", 1, 9, {"loss": 0.5}, 2.0))  # the calibration's scan has no start event
    at(92, Event("branch0", 0, 9, {}, 0.0, kind="start"))
    at(93, Event("branch0", 1, 9, {"l1": 0.5}, 0.04))  # under one a second (RCAN on a CPU): it said "0.0 it/s"
    assert capsys.readouterr().err.splitlines() == [
        "baseline: resume 40/100",
        "baseline: 50/100 l1=0.25 10.0 it/s, 1.0s elapsed, ETA 5.0s",
        "baseline: 70/100 l1=0.125 10.0 it/s, 45.0s elapsed, ETA 3.0s",
        "baseline: done 100/100 l1=0.1 10.0 it/s in 1m30s",
        "calibrate: start 0/9",
        "calibrate: 1/9 loss=0.5 2.0 it/s, 0.0s elapsed, ETA 4.0s",
        "branch0: start 0/9",
        "branch0: 1/9 l1=0.5 25 s/it, 1.0s elapsed, ETA 3m20s",
    ]


def test_train_off_a_terminal_prints_plain_progress_lines(hr_dir: Path, tmp_path: Path) -> None:
    r = train("baseline", tmp_path / "run", hr_dir, write_config(tmp_path / "c.toml"))
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert "baseline: start 0/4" in lines and any(line.startswith("baseline: done 4/4 l1=") for line in lines), r.stderr
    assert "━" not in r.stderr and "…" not in r.stderr.split("baseline: start")[1]  # no bar cut at 80 columns


@pytest.mark.slow
def test_sigterm_ends_a_run_as_ctrl_c_does_with_its_progress_already_logged(hr_dir: Path, tmp_path: Path) -> None:
    """`classsr train all 2> log`, then SIGTERM (a timeout, a scheduler's preemption) mid-stage: the log holds the
    progress so far and one error line, exit 143, the last checkpoint resumes, and the stage's time is recorded."""
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    config = write_config(tmp_path / "c.toml", iterations=100000)
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "classsr_cli", "train", "all", "--hr", str(hr_dir), "--config", str(config),
             "--out", str(run_dir), "--threads", "1", "--device", "cpu"],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
        try:
            end = time.monotonic() + 120
            while not (run_dir / "baseline.state.pt").exists():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < end, "timed out"
                time.sleep(0.05)
            assert "baseline: start 0/100000" in log.read_text().splitlines()  # written while it runs
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 143
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text().splitlines()
    assert text[-1] == "error: terminated (SIGTERM); run the same command again to resume from the last checkpoint"
    assert torch.load(run_dir / "baseline.state.pt", weights_only=True)["iteration"] >= 2
    stopped = [rec for rec in metrics(run_dir) if rec.get("event") == "stopped"]
    assert [(rec["stage"], rec["reason"]) for rec in stopped] == [("baseline", "interrupted")]


# -- provenance seconds ----------------------------------------------------------------------------------------------
class _Stop(KeyboardInterrupt):
    pass


def test_an_interrupted_invocations_time_counts_in_the_stage_seconds(hr_dir: Path, tmp_path: Path) -> None:
    """Ctrl-C in the baseline after 0.3 s, then the run again: the export's baseline seconds are both invocations'."""
    torch.set_num_threads(1)
    cfg = load_train_config(write_config(tmp_path / "c.toml", iterations=2))
    cfg = replace(cfg, baseline=StageConfig(6, 4, 1e-3, val_every=3, ckpt_every=2))
    prepare([hr_dir], tmp_path / "data", scale=2, patch=32, step=16, factors=(1.0,), val_fraction=0.0)

    def stop_at_4(event: Event) -> None:
        if event.stage == "baseline" and event.iteration == 4 and event.kind == "log":
            time.sleep(0.3)
            raise _Stop

    with pytest.raises(_Stop):
        Trainer(cfg, tmp_path / "run", tmp_path / "data", Dist(), observer=stop_at_4).all()
    out = Trainer(cfg, tmp_path / "run", tmp_path / "data", Dist()).all()
    recs = [rec for rec in metrics(tmp_path / "run") if rec["stage"] == "baseline" and "seconds" in rec]
    assert [(rec["event"], rec.get("reason")) for rec in recs] == [("stopped", "interrupted"), ("done", None)]
    assert recs[0]["seconds"] >= 0.3
    seconds = load_checkpoint(out, expect_kind="classsr").provenance["stages"]["baseline"]["seconds"]
    assert math.isclose(seconds, round(recs[0]["seconds"] + recs[1]["seconds"], 1))


@pytest.mark.parametrize("damage", ["truncated", "no model", "random", "wrong shape"])
def test_a_damaged_resume_state_is_one_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    """A truncated state file was "internal error: RuntimeError: PytorchStreamReader failed ...", one without its
    model a KeyError: now a CheckpointError that names the file and says how to start the stage afresh."""
    from classsr_cli.errors import CheckpointError

    cfg = StageConfig(iterations=4, batch_size=2, lr=1e-3, ckpt_every=2, val_every=100)
    _linear_fit(tmp_path, cfg, lambda y, it: y.square().mean(), log_every=100)
    state = tmp_path / "baseline.state.pt"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:100])
    elif damage == "random":  # torch's UnpicklingError, whose message advised unpickling it unsafely
        state.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif damage == "wrong shape":
        saved = torch.load(state, weights_only=True)
        saved["model"] = {k: torch.zeros(3, 3) for k in saved["model"]}
        torch.save(saved, state)
    else:
        torch.save({"iteration": 2}, state)
    with pytest.raises(CheckpointError, match=r"baseline.state.pt: a damaged resume state .*delete it to train baseline") as e:
        _linear_fit(tmp_path, replace(cfg, iterations=6), lambda y, it: y.square().mean(), log_every=100)
    why = str(e.value).split("(", 1)[1].rsplit(")", 1)[0]
    assert "weights_only" not in why and "Error(s) in loading" not in why and not why.endswith(": ")
