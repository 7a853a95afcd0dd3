"""Numbered picture files that classsr writes itself, one a frame of ``classsr video`` (OpenEXR, Radiance HDR, PNG,
TIFF, JPEG), where its own writers beat ffmpeg's encoders: :class:`FrameFiles` takes the frames as
:class:`~classsr_cli.io.video.VideoWriter` takes them, row by row, and hands each whole frame to an encoder
(:func:`classsr_cli.io.exr.frame_encoder`, :func:`classsr_cli.io.image.radiance_encoder`,
:func:`~classsr_cli.io.image.png_encoder`, :func:`~classsr_cli.io.image.tiff_encoder`,
:func:`~classsr_cli.io.image.jpeg_encoder`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
    (:meth:`begin_frame`, :meth:`write_rows`), held until a frame's last row arrives, then written whole: with
    ``background``, on a thread of its own while the caller goes on (one frame at a time: the next waits for it), as
    where the model runs on a GPU and the CPU is free; in turn otherwise (on a 2-core CPU the thread competed with the
    model's: 14-24 % slower for TIFF and EXR frames, docs/cli.md). ``target``:
    the pattern the errors name (``path`` a hidden one it is written under). ``linear``: the encoder writes light
    (OpenEXR), so it takes the levels as the model computed them, with each frame's light, not as shown."""

    def __init__(
        self, path: Path, width: int, height: int, *, channels: int, encode: Encode, dtype: type = np.uint16,
        first_number: int = 1, target: Path | None = None, linear: bool = False, background: bool = False,
    ) -> None:
        self.path, self.width, self.height, self.channels = Path(path), width, height, channels
        self.linear, self.background = linear, background
        self.encode, self.dtype, self.first_number = encode, np.dtype(dtype), first_number
        self.target = Path(target) if target is not None else self.path
        self.frames_written = 0
        self._rows: list[np.ndarray] = []
        self._held = 0
        self._light: Linear | None = None
        self._open = False
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[None] | None = None

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
            self._wait()
            whole, light = self._rows, self._light
            self._open, self._rows, self._light = False, [], None
            if not self.background:
                try:
                    self.encode(name, whole, light)
                except OSError as e:
                    raise OutputError.of(self.target, e) from None
            else:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="classsr-frames")
                self._pending = self._pool.submit(self.encode, name, whole, light)
            self.frames_written += 1

    def _wait(self) -> None:
        """Wait for the frame being written; its error, if it failed (an :class:`OutputError` for the file's)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except OSError as e:
            raise OutputError.of(self.target, e) from None

    def close(self) -> None:
        """Finish: the last frame written (its error raised), and a frame begun and not whole is an error (the caller
        stopped midway)."""
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        if self._open:
            raise ValueError(f"a frame of {self.target} stopped at row {self._held} of {self.height}")

    def abort(self) -> None:
        """Drop a frame not yet written, after the one being written is (the files written are the caller's to
        remove)."""
        self._open, self._rows = False, []
        with contextlib.suppress(Exception):
            self._wait()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
