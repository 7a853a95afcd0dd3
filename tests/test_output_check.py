"""scripts/output_check.py: a picture checked by its format's reference tools (here fakes of them on the PATH, so that
it runs where they are not installed): a validator that fails is a problem, a decoder's picture compared with
classsr's reading of the file, a tool not installed skipped; and read_sweep.py --check, each picture it writes so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
Y, X = np.mgrid[0:12, 0:16]
PICTURE = np.dstack([X * 13, Y * 20, np.full_like(X, 70)]).astype(np.uint8)


def _tool(folder: Path, name: str, body: str) -> None:
    """A fake ``name`` on the PATH: a Python script of ``body``, its arguments in ``args``."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n{body}\n")
    path.chmod(0o755)


def _tools(tmp_path: Path) -> Path:
    tools = tmp_path / "bin"
    tools.mkdir()
    _tool(tools, "pngcheck", "if 'bad' in args[-1]:\n    print(args[-1] + '  CRC error in chunk IDAT')\n    sys.exit(2)\n"
                             "if 'hdr' in args[-1]:  # (pngcheck 3.0.3 on PNG's third edition's chunks)\n"
                             "    print(args[-1] + '  illegal (unless recently approved) unknown, public chunk cICP')\n"
                             "    print('ERROR: ' + args[-1])\n    sys.exit(2)")
    _tool(tools, "djpeg", "from PIL import Image\nImage.open(args[-1]).save(args[1])")  # -outfile OUT IN, faithful
    _tool(tools, "dwebp", "import numpy as np\nfrom PIL import Image\na = np.asarray(Image.open(args[0]).convert('RGB'))"
                          ".astype(int)\na[1:, :, 0] += 12\nImage.fromarray(a.clip(0, 255).astype(np.uint8)).save(args[-1])")
    # (red 12 levels brighter below the first row: on average 2.75 of RGBA's levels off)
    return tools


def _run(script: str, tools: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    env = {**os.environ, "PATH": str(tools)}  # (the fakes alone: no real tool found)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                         timeout=300, env=env)  # fmt: skip
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()], run.stderr


def test_validators_fail_and_decoders_differ_as_problems(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("good.png", "bad.png", "hdr.png", "a.jpg", "a.webp", "a.tif"):
        Image.fromarray(PICTURE).save(pics / name, **({"lossless": True} if name.endswith(".webp") else {}))
    code, problems, summary = _run("output_check.py", tools, str(pics))
    # good.png, bad.png, hdr.png (an unknown chunk of PNG's third edition: excused): pngcheck; a.jpg: djpeg
    # (faithful); a.webp: dwebp (red off); a.tif: no tool here
    assert summary.strip() == "checked 5 files, 5 tool runs, problems 2" and code == 1
    off, bad = problems  # (in the order of the files)
    assert bad["file"] == str(pics / "bad.png") and bad["tool"] == "pngcheck" and bad["exit"] == 2
    assert bad["said"] == [f"{pics / 'bad.png'}  CRC error in chunk IDAT"]
    assert off["file"] == str(pics / "a.webp") and off["tool"] == "dwebp" and off["max"] == 12 and off["at"] == [0, 1, "R"]
    assert off["mean"] == round(12 * 11 / 12 / 4, 3)


def test_read_sweep_checks_each_picture_it_writes(tmp_path: Path) -> None:
    tools = _tools(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(PICTURE).save(src / "a.png")
    code, problems, summary = _run("read_sweep.py", tools, str(src), "--formats", "png", "webp", "--check")
    assert summary.strip().splitlines()[-1] == "read 1, refused in one line 0, problems 1" and code == 1
    assert [(p["stage"], p["tool"], p["max"]) for p in problems] == [("check webp", "dwebp", 12)]
    code, problems, _ = _run("read_sweep.py", tools, str(src), "--formats", "png", "webp")
    assert code == 0 and problems == []  # (not checked unless asked)
