"""Numbered picture files that classsr writes itself, one a frame of ``classsr video`` (OpenEXR, PNG), where its own
writers beat ffmpeg's encoders: :class:`FrameFiles` takes the frames as :class:`~classsr_cli.io.video.VideoWriter`
takes them, row by row, and hands each whole frame to an encoder (:func:`classsr_cli.io.exr.frame_encoder`,
:func:`classsr_cli.io.image.png_encoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classsr_cli.errors import OutputError

if TYPE_CHECKING:
    from classsr_cli.io.exr import Linear

__all__ = ["Encode", "FrameFiles"]

#: Writes one frame: the file, its rows (``(n, W, C)`` bands, top to bottom) and its light (an OpenEXR source's stops
#: and light outside 0-1, :class:`~classsr_cli.io.exr.Linear`; ``None`` for other sources).
Encode = Callable[[Path, list[np.ndarray], "Linear | None"], None]


class FrameFiles:
    """A numbered picture sequence (``path`` a printf pattern, ``shot_%04d.exr``), one file a frame from
    ``first_number``, each written by ``encode``: the frames given as ``(n, width, channels)`` rows of ``dtype``
    (:meth:`begin_frame`, :meth:`write_rows`), held until a frame's last row arrives, then written whole. ``target``:
    the pattern the errors name (``path`` a hidden one it is written under). ``linear``: the encoder writes light
    (OpenEXR), so it takes the levels as the model computed them, with each frame's light, not as shown."""

    def __init__(
        self, path: Path, width: int, height: int, *, channels: int, encode: Encode, dtype: type = np.uint16,
        first_number: int = 1, target: Path | None = None, linear: bool = False,
    ) -> None:
        self.path, self.width, self.height, self.channels = Path(path), width, height, channels
        self.linear = linear
        self.encode, self.dtype, self.first_number = encode, np.dtype(dtype), first_number
        self.target = Path(target) if target is not None else self.path
        self.frames_written = 0
        self._rows: list[np.ndarray] = []
        self._held = 0
        self._light: Linear | None = None
        self._open = False

    def begin_frame(self, pts: int, duration: int | None, light: Linear | None = None) -> None:
        """Start the next frame (``pts`` and ``duration`` unused: a picture a frame, numbered in order), with its
        ``light``; its rows follow with :meth:`write_rows`."""
        del pts, duration
        if self._open:
            raise ValueError("the previous frame is not finished")
        self._open, self._rows, self._held, self._light = True, [], 0, light

    def write_rows(self, rows: np.ndarray) -> None:
        """The frame's next rows, top to bottom; the file is written when the last arrives."""
        if not self._open:
            raise ValueError("begin_frame first")
        if rows.ndim != 3 or rows.shape[1:] != (self.width, self.channels) or rows.dtype != self.dtype:
            raise ValueError(f"expected (n, {self.width}, {self.channels}) {self.dtype} rows, got {rows.shape} "
                             f"{rows.dtype}")  # fmt: skip
        if self._held + rows.shape[0] > self.height:
            raise ValueError(f"{self._held + rows.shape[0]} rows of a {self.height}-row frame")
        self._rows.append(np.array(rows))  # a copy: the caller may reuse its buffer
        self._held += rows.shape[0]
        if self._held == self.height:
            name = self.path.with_name(self.path.name % (self.first_number + self.frames_written))
            try:
                self.encode(name, self._rows, self._light)
            except OSError as e:
                raise OutputError.of(self.target, e) from None
            self._open, self._rows, self._light = False, [], None
            self.frames_written += 1

    def close(self) -> None:
        """Finish: a frame begun and not whole is an error (the caller stopped midway)."""
        if self._open:
            raise ValueError(f"a frame of {self.target} stopped at row {self._held} of {self.height}")

    def abort(self) -> None:
        """Drop a frame not yet written (the files written are the caller's to remove)."""
        self._open, self._rows = False, []
