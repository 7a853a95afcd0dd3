"""classsr_cli.io.frames: numbered files, one a frame, each written whole on a thread of its own, its errors raised
to the caller."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from classsr_cli.errors import OutputError
from classsr_cli.io.frames import FrameFiles


@pytest.mark.parametrize("background", [False, True])
def test_frames_are_numbered_written_whole_and_their_errors_come_back(tmp_path: Path, background: bool) -> None:
    """In turn, or (``background``: a GPU's run) on a thread of their own, the error of a frame written there raised
    at the next frame or at close."""
    written: list[tuple[str, int, str]] = []

    def encode(path: Path, rows: list[np.ndarray], light: object) -> None:
        if path.name == "f_12.png":
            raise OSError(28, "No space left on device")
        written.append((path.name, sum(r.shape[0] for r in rows), threading.current_thread().name))
        path.write_bytes(np.concatenate(rows).tobytes())

    files = FrameFiles(tmp_path / "f_%02d.png", 4, 3, channels=3, encode=encode, dtype=np.uint8, first_number=10,
                       target=tmp_path / "out_%02d.png", background=background)  # fmt: skip
    frame = np.arange(36, dtype=np.uint8).reshape(3, 4, 3)
    for _ in range(2):
        files.begin_frame(0, None)
        files.write_rows(frame[:1])
        files.write_rows(frame[1:])
    files.close()
    assert [(name, rows) for name, rows, _ in written] == [("f_10.png", 3), ("f_11.png", 3)]
    assert all(thread.startswith("classsr-frames") == background for _, _, thread in written)
    assert (tmp_path / "f_11.png").read_bytes() == frame.tobytes()  # a copy of the rows, whole
    files.begin_frame(0, None)
    with pytest.raises(OutputError, match=r"out_%02d\.png"):
        files.write_rows(frame)  # f_12 fails: at once, or on its thread and said at close
        files.close()
    with pytest.raises(ValueError, match=r"expected \(n, 4, 3\) uint8 rows"):
        files.begin_frame(0, None)
        files.write_rows(frame.astype(np.uint16))
    files.abort()
    files.begin_frame(0, None)
    files.write_rows(frame[:2])
    with pytest.raises(ValueError, match="stopped at row 2 of 3"):
        files.close()
