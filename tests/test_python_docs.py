"""docs/python.md: every code block runs as written, in order, from the repository's root (one namespace, as a reader
pastes them into one session), and what it asserts and prints holds for the shipped default model."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "python.md").read_text(), flags=re.S)


@pytest.mark.slow
def test_the_python_pages_blocks_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    code = blocks()
    assert len(code) == 6
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    for block in code:
        # the page writes to /tmp/classsr_*: here into this test's folder
        exec(compile(block.replace("/tmp/classsr_", f"{tmp_path}{os.sep}"), "docs/python.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"296 light, 65 medium, 0 heavy; 90\.6% of the FLOPs saved in \d+\.\d\d s", printed[0])
    assert printed[1].startswith("{'light': 296, 'medium': 65, 'heavy': 0, 'total': 361}")
    assert printed[2].startswith("10 (")  # ten frames of the clip, their patches per class
    assert printed[3] == "no model named 'no-such-model' (`classsr models` lists the installed ones)"
    assert (tmp_path / "baby_x4.png").is_file() and (tmp_path / "clip_x4.mp4").is_file()
    assert (tmp_path / "lighthouse_x4.png").is_file()  # by the JPEG model, which --model auto picks for it
