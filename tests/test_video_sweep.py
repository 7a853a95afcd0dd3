"""scripts/video_sweep.py: `classsr video` run on every file of a folder, each ending sorted as written, partial,
refused in one line, or a problem (an output that does not decode, an "internal error", a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from classsr_cli.io.video import ffmpeg_exe

ROOT = Path(__file__).resolve().parent.parent


def _sweep(folder: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "video_sweep.py"), str(folder), *args],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines()], run.stderr


@pytest.mark.slow
def test_each_file_is_written_refused_or_listed_as_a_problem(tmp_path: Path) -> None:
    ff = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.3", "-c:v",
          "libx264", "-pix_fmt", "yuv420p"]  # fmt: skip
    subprocess.run([*ff, str(tmp_path / "clip.mp4")], check=True)
    subprocess.run([*ff, "-encryption_scheme", "cenc-aes-ctr", "-encryption_key", "76a6c65c5ea762046bd749a2e632ccbb",
                    "-encryption_kid", "a7e61c373e219033c21091fa607bf3b8", str(tmp_path / "drm.mp4")], check=True)  # fmt: skip
    (tmp_path / "notes.txt").write_text("not a video\n")
    code, problems, said = _sweep(tmp_path, "--containers", "mkv")
    assert code == 0 and problems == []
    assert said.splitlines()[-1] == "written 2, partial 0, refused 3, problems 0"  # clip and drm into .mp4, .mkv
    assert "drm.mp4 -> .mp4  error:" in said and "is encrypted (DRM)" in said
    code, problems, said = _sweep(tmp_path, "--only", "txt", "--containers")  # the suffixes asked for alone
    lines = said.splitlines()
    assert code == 0 and len(lines) == 2 and lines[-1] == "written 0, partial 0, refused 1, problems 0"
    assert lines[0].startswith("refused ") and f"notes.txt -> .mkv  error: {tmp_path / 'notes.txt'}: not a " in lines[0]


@pytest.mark.slow
def test_with_check_an_output_its_reference_tool_fails_is_a_problem(tmp_path: Path) -> None:
    """--check: each output written is checked by its format's tools (output_check.py); a fake mkvinfo on the PATH
    that finds an error in every Matroska file makes the .mkv output a problem, the .mp4 one (no tool) written."""
    import os

    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.3",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "clip.mp4")], check=True)  # fmt: skip
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mkvinfo").write_text(f"#!{sys.executable}\nprint('+ EBML head')\n"
                                   "print('(MKVInfo) Error: The Cues element is damaged')\n")  # fmt: skip
    (tools / "mkvinfo").chmod(0o755)
    folder = tmp_path / "in"
    folder.mkdir()
    os.replace(tmp_path / "clip.mp4", folder / "clip.mp4")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "video_sweep.py"), str(folder), "--containers", "mkv",
                          "--check"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"})  # fmt: skip
    problems = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1 and run.stderr.splitlines()[-1] == "written 1, partial 0, refused 0, problems 1"
    assert problems == [{"file": "clip.mp4", "into": "mkv", "problem": "mkvinfo: + EBML head / (MKVInfo) Error: The "
                         "Cues element is damaged", "stderr": problems[0]["stderr"]}]  # fmt: skip
