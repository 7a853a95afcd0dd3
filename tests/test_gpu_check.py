"""scripts/gpu_check.py, the script a lent GPU's short lease runs (scripts/gpu_session.sh), as a dry run on the CPU.

A GPU is lent rarely and for minutes, so the script must not meet a renamed engine function there first: the
twenty-sixth pass renamed the frame classifier the stage profiler times, and only a dry run showed it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_step_of_the_gpu_check_runs_on_the_cpu(tmp_path: Path) -> None:
    crop = np.asarray(Image.open(ROOT / "examples" / "baby.png").convert("RGB"))[96:288, 128:384]
    (tmp_path / "Tiny").mkdir()
    Image.fromarray(crop).save(tmp_path / "Tiny" / "crop.png")
    native = tmp_path / "native.png"
    Image.fromarray(crop[:96, :128]).save(native)
    out = tmp_path / "gpu_check.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--device", "cpu", "--precisions", "fp32",
         "--data", str(tmp_path), "--set", "Tiny", "--native", str(native), "--out", str(out), "--repeat", "1",
         "--call-pixels", "1000", "--compile-before", "0"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    steps = ("correctness", "syncs", "call_costs", "speed", "stages", "fixed_shape")
    failed = {s: report[s]["error"] for s in steps if isinstance(report.get(s), dict) and "error" in report[s]}
    assert not failed, failed
    assert all(s in report for s in steps)
    assert report["correctness"]["fp32"]["routed_mean_abs_levels"] == 0.0  # the CPU against itself
    for frames in report["stages"].values():  # each profiled engine step is one the engine still calls
        assert all(frames[name] > 0 for name in ("pad_frame", "classify_frame_cells", "plan_tiles", "run_cells")), frames
