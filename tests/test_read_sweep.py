"""scripts/read_sweep.py: every file of a folder read, written into the formats asked and its run's own, read back;
each read, refused in one line, or a problem, in one process or each file in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _sweep(folder: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "read_sweep.py"), str(folder), *args],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()], run.stderr


@pytest.mark.parametrize("apart", [False, True])
def test_each_file_is_read_refused_or_a_problem(tmp_path: Path, apart: bool) -> None:
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(30))  # a damaged PNG: refused in one line
    Image.fromarray(np.zeros((65501, 1), np.uint8)).save(tmp_path / "tall.png")  # into JPEG: a typed problem
    code, problems, summary = _sweep(tmp_path, "--formats", "png", "jpg", *(("--timeout", "60") if apart else ()))
    assert summary.strip().splitlines()[-1] == "read 2, refused in one line 1, problems 1" and code == 1
    assert [(p["file"], p["stage"]) for p in problems] == [(str(tmp_path / "tall.png"), "write jpg (typed)")]
    assert "65500 pixels a side" in str(problems[0]["error"])
