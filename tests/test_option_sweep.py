"""scripts/option_sweep.py: random combinations of the options of every `classsr` command, each run that ends otherwise
than the CLI promises (an internal error, a traceback, another exit code) listed."""

from __future__ import annotations

import json
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "option_sweep.py"


def sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_runs_that_break_the_clis_promise_are_listed() -> None:
    """A stand-in for classsr that says "internal error" is a problem each run, one JSON line each, exit 1; one that
    refuses in one line with exit 2 is not; a crash (exit 70) is."""
    fake = f"{shlex.quote(sys.executable)} -c"
    boom = "import sys; print('error: internal error: boom', file=sys.stderr); sys.exit(1)"
    said = sweep("--runs", "3", "--classsr", f"{fake} {shlex.quote(boom)}")
    assert said.returncode == 1 and said.stderr.endswith("runs 3: exit 0 0, exit 1-3 (said in one line) 0, problems 3\n")
    records = [json.loads(line) for line in said.stdout.splitlines()]
    assert len(records) == 3 and all(r["exit"] == 1 and "boom" in r["stderr"] for r in records)
    refused = sweep("--runs", "2", "--commands", "upscale", "--classsr", f"{fake} 'import sys; sys.exit(2)'")
    assert refused.returncode == 0 and refused.stderr.endswith("exit 1-3 (said in one line) 2, problems 0\n")
    crashed = sweep("--runs", "1", "--commands", "video", "--classsr", f"{fake} 'import sys; sys.exit(70)'")
    assert crashed.returncode == 1 and json.loads(crashed.stdout)["exit"] == 70


def test_the_same_seed_draws_the_same_commands() -> None:
    import random

    command = runpy.run_path(str(SCRIPT))["command"]
    first = [command(random.Random(5)) for _ in range(3)]
    assert first == [command(random.Random(5)) for _ in range(3)]
    drawn = [command(random.Random(seed)) for seed in range(60)]
    assert {c[0] for c in drawn} == {"upscale", "video", "bench", "train", "convert", "models", "doctor"}
    assert len({tuple(c) for c in drawn}) > 50
    trains = [command(random.Random(seed), ("train",)) for seed in range(30)]
    assert {c[0] for c in trains} == {"train"} and {c[1] for c in trains} > {"prepare", "all"}
    assert all("--iterations" in c for c in trains if c[1] != "prepare")  # never a full recipe's hours


def test_commands_choose_the_subcommands(tmp_path: Path) -> None:
    """`--commands train,convert` draws only those; a name that is not a subcommand is a usage error. The log holds
    every run, the problems' lines too."""
    fake = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(1)'"
    log = tmp_path / "runs.jsonl"
    run = sweep("--runs", "6", "--seed", "2", "--commands", "train,convert", "--classsr", fake, "--log", str(log))
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 6 and all(r["exit"] == 1 for r in records)
    assert {shlex.split(r["command"])[3] for r in records} <= {"train", "convert"}
    assert sweep("--runs", "1", "--commands", "upscale,nope", "--classsr", fake).returncode == 2


def test_real_runs_keep_the_promise() -> None:
    """Four real runs of the installed classsr (seed 1; no `train`, whose runs take a minute or two) on the made-up
    inputs: none is a problem."""
    run = sweep("--runs", "4", "--seed", "1", "--commands", "upscale,video,bench,convert", "--classsr",
                f"{shlex.quote(sys.executable)} -m classsr_cli")
    assert run.returncode == 0 and not run.stdout, run.stdout + run.stderr
    assert run.stderr.startswith("runs 4: ") and run.stderr.endswith("problems 0\n")
