"""scripts/loader_agreement.py: the bench and train loader against Pillow's plain conversion, picture by picture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "loader_agreement.py"


def test_an_8_bit_picture_reads_the_same_and_a_16_bit_one_does_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).save(tmp_path / "rgb.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((6, 8), 128 * 257, np.uint16)).save(tmp_path / "sub" / "g16.png")
    (tmp_path / "empty.png").write_bytes(b"")  # refused by both: the same
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert run.stdout.splitlines() == [f"{tmp_path / 'sub' / 'g16.png'}: up to 127 levels apart",
                                       "3 pictures: 2 read the same, 1 differ"]
    (tmp_path / "sub" / "g16.png").unlink()
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout == "2 pictures: 2 read the same, 0 differ\n"
