"""scripts/look_sweep.py: every file of a folder opened as the still reader, the video probe and the bench loader
open it; an exception other than classsr's errors, or a Python warning, listed as a problem."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

from conftest import unimplemented_dds
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def test_each_file_is_taken_refused_or_a_problem(tmp_path: Path) -> None:
    """A PNG still (read, refused by the probe as a still, loaded), a DDS Pillow's plugin does not implement and a
    palette PNG with partial transparency (each once an internal error or a warning on stderr): no problem; a stage
    that raises or warns is listed, with what it raised or warned."""
    Image.new("RGB", (8, 8), (200, 40, 40)).save(tmp_path / "ok.png")
    unimplemented_dds(tmp_path / "bgrx.dds")
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 200, 40, 40, 9, 9, 9] + [0] * 759)
    im.save(tmp_path / "p.png", transparency=bytes([0, 128, 255]))
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "look_sweep.py"), str(tmp_path)], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0 and not run.stdout, run.stdout
    assert run.stderr.splitlines() == ["read: 3 files, took 2, refused in one line 1, problems 0",
                                       "probe: 3 files, took 0, refused in one line 3, problems 0",
                                       "bench: 3 files, took 2, refused in one line 1, problems 0"]  # fmt: skip
    sweep = runpy.run_path(str(ROOT / "scripts" / "look_sweep.py"))
    stages = sweep["STAGES"]

    def warns(path: Path) -> None:
        warnings.warn("a warning", UserWarning, stacklevel=1)

    stages.update({"warns": warns, "fails": lambda path: 1 / 0})
    verdicts, problems = sweep["look"](tmp_path / "ok.png")
    assert verdicts == {"read": "took", "probe": "refused", "bench": "took", "warns": "problem", "fails": "problem"}
    assert [(p["stage"], p.get("warning") or p.get("error")) for p in problems] == [
        ("warns", "UserWarning: a warning"), ("fails", "ZeroDivisionError: division by zero")]
    json.dumps(problems)  # (what the script writes, a line each)
