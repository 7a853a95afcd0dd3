"""scripts/reference_sweep.py: each picture with a reference of the same name beside it read and compared with it:
close, off (by how much and where, or in size), refused; float pictures as linear levels where asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.io import pnm

ROOT = Path(__file__).resolve().parent.parent


def _sweep(folder: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "reference_sweep.py"), str(folder), *args],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()], run.stderr


def test_pictures_are_compared_with_their_references(tmp_path: Path) -> None:
    y, x = np.mgrid[0:12, 0:16]
    rgba = np.dstack([x * 15, y * 20, x + y, np.where(x < 4, 0, 255)]).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / "same.png")
    Image.fromarray(rgba).save(tmp_path / "same.tga")  # close
    hidden = rgba.copy()
    hidden[:, :4, :3] = 99  # colour where both are transparent: not compared
    Image.fromarray(hidden).save(tmp_path / "same.qoi")
    Image.fromarray(rgba).save(tmp_path / "off.png")
    Image.fromarray(np.flipud(rgba)).save(tmp_path / "off.tga")  # upside down: off
    Image.fromarray(rgba[:6]).save(tmp_path / "small.png")
    Image.fromarray(rgba).save(tmp_path / "small.tga")  # another size
    (tmp_path / "bad.png").write_bytes((tmp_path / "same.png").read_bytes())
    (tmp_path / "bad.qoi").write_bytes(b"qoif" + bytes(10))  # refused
    (tmp_path / "alone.tga").write_bytes((tmp_path / "same.tga").read_bytes())  # no reference: not compared
    (tmp_path / "bad.qoi.json").write_text("{}")
    code, said, summary = _sweep(tmp_path)
    assert summary.strip() == "compared 5, close 2, off 2, refused 1, failed 0" and code == 0
    verdicts = {Path(str(s["file"])).name: s for s in said}
    assert sorted(verdicts) == ["bad.qoi", "off.tga", "small.tga"]
    assert verdicts["off.tga"]["verdict"] == "off" and int(str(verdicts["off.tga"]["max"])) > 200
    assert verdicts["small.tga"]["size"] == [16, 12] and verdicts["small.tga"]["reference size"] == [16, 6]
    assert verdicts["bad.qoi"]["verdict"] == "refused"
    light = (np.mgrid[0:6, 0:8][1][..., None] / 8.0).repeat(3, axis=2).astype(np.float32)  # linear, 0 to 0.875
    (tmp_path / "lin").mkdir()
    with (tmp_path / "lin" / "f.pfm").open("wb") as f:
        pnm.write_pfm(f, light)
    Image.fromarray(np.rint(light * 255).astype(np.uint8)).save(tmp_path / "lin" / "f.png")  # linear levels
    assert _sweep(tmp_path / "lin")[2].strip() == "compared 1, close 0, off 1, refused 0, failed 0"
    assert _sweep(tmp_path / "lin", "--linear")[2].strip() == "compared 1, close 1, off 0, refused 0, failed 0"
    Image.fromarray(np.flipud(rgba)).save(tmp_path / "off_qt6_8.png")  # a variant reference, found first
    said = {Path(str(s["file"])).name: s for s in _sweep(tmp_path, "--variant", "_qt6_8")[1]}
    assert "off.tga" not in said
    code, said, summary = _sweep(tmp_path, "--ffmpeg", "tga")  # each TGA against the bundled ffmpeg's decoding
    assert summary.strip() == "compared 4, close 4, off 0, refused 0, failed 0" and said == []
