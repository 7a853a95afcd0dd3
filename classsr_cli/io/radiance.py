"""Radiance HDR (``.hdr``, RGBE: HDRI environment maps, HDR merges) through the bundled ffmpeg's native ``hdr`` decoder
and encoder; the header read and written here.

A Radiance file is a text header (``#?RADIANCE``, ``FORMAT=32-bit_rle_rgbe``, ``EXPOSURE=``, ... up to an empty line),
a resolution line (``-Y height +X width``: rows top to bottom) and RGBE pixels (three 8-bit mantissas sharing an
exponent), run-length coded by scanline. Its light is linear with no ceiling, as an EXR's: :mod:`classsr_cli.io.exr`
splits and joins it. The header's own lines (exposure, colour correction, primaries, view, comments) are carried into
a Radiance output; ffmpeg's decoder leaves the exposure unapplied, and so the values are read and written as stored.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Header", "cut_short", "decode", "encode", "header", "is_radiance"]

_MAGICS = (b"#?RADIANCE", b"#?RGBE")
_SIZE = re.compile(rb"^([-+])Y\s+(\d+)\s+([-+])X\s+(\d+)$")  # (any spaces between: libvips pads the numbers)
#: The header lines ``--strip-metadata`` keeps: how the picture looks (not the commands that made it, its view, its
#: capture date and place: ``CAPDATE=``, ``GMT=``, ``LATLONG=``, comments).
LOOKS = ("EXPOSURE=", "COLORCORR=", "PRIMARIES=", "PIXASPECT=")


def looks(lines: tuple[str, ...]) -> tuple[str, ...]:
    """The header ``lines`` that say how the picture looks (:data:`LOOKS`): what ``--strip-metadata`` keeps."""
    return tuple(ln for ln in lines if ln.startswith(LOOKS))
_OWN = ("FORMAT=", "SOFTWARE=")  # written anew (PIXASPECT, a pixel's height over its width, holds: both sides grow alike)


def is_radiance(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a Radiance picture."""
    return head.startswith(_MAGICS)


class Header(NamedTuple):
    """A Radiance file's size, its header's lines (the magic line left out), and the offset of its pixels."""

    width: int
    height: int
    lines: tuple[str, ...]
    data: int

    @property
    def carried(self) -> tuple[str, ...]:
        """The lines a Radiance output keeps (the format and software are written anew)."""
        return tuple(ln for ln in self.lines if ln and not ln.startswith(_OWN))


def header(data: bytes) -> Header:
    """The :class:`Header` of a Radiance file starting with ``data``. ``ValueError`` where it is not one, its header
    is cut short, its pixels are not RGBE, or its rows do not run top to bottom, left to right (``-Y H +X W``, the
    layout nearly every writer uses)."""
    if not is_radiance(data):
        raise ValueError("not a Radiance HDR file")
    end = data.find(b"\n\n")
    if end < 0:
        raise ValueError("Radiance header cut short")
    stop = data.find(b"\n", end + 2)
    if stop < 0:
        raise ValueError("Radiance resolution line cut short")
    lines = tuple(ln.decode("latin-1") for ln in data[:end].split(b"\n")[1:])
    size = _SIZE.match(data[end + 2 : stop].strip())
    if size is None:
        raise ValueError(f"Radiance resolution line {data[end + 2 : stop][:40]!r} not understood")
    if (size.group(1), size.group(3)) != (b"-", b"+"):
        raise ValueError(f"Radiance rows stored as {size.group(0).decode()}: only -Y H +X W (top to bottom) is read")
    fmt = next((ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("FORMAT=")), "32-bit_rle_rgbe")
    if fmt != "32-bit_rle_rgbe":
        raise ValueError(f"Radiance pixels of {fmt}: only RGBE (32-bit_rle_rgbe) is read")
    return Header(width=int(size.group(4)), height=int(size.group(2)), lines=lines, data=stop + 1)


def cut_short(pixels: bytes, width: int, height: int) -> str | None:
    """Why the pixels of a Radiance picture (``pixels``: the bytes after its resolution line) are not whole, or
    ``None``: each of its ``height`` rows run-length coded as Radiance writes them for widths of 8 to 32767 (``2 2``,
    the width in two bytes, then each of the four components as runs: a code above 128 repeats the next byte ``code -
    128`` times, any other is followed by that many bytes) must be there, each component exactly ``width`` long.
    ffmpeg's decoder gives the rows a cut file lacks as zeros, and says nothing. A picture whose first row is stored
    otherwise (flat pixels, which the old run-length code marks ``1 1 1 n`` to repeat the pixel before, as ffmpeg's
    decoder reads it) has its pixels counted (:func:`_flat_pixels`); rows that turn flat after coded ones are not
    checked."""
    data, n, at = pixels, len(pixels), 0
    if not 8 <= width <= 0x7FFF or (n >= 4 and (data[0] != 2 or data[1] != 2 or data[2] & 0x80)):
        got = _flat_pixels(data)
        short = width * height - got
        return None if short <= 0 else f"{-(-short // width)} of its {height} rows missing"
    for y in range(height):
        if at + 4 > n:
            return f"{height - y} of its {height} rows missing"
        if data[at] != 2 or data[at + 1] != 2 or data[at + 2] & 0x80:
            return None  # flat or old-style rows from here on
        if (data[at + 2] << 8 | data[at + 3]) != width:
            return f"row {y + 1} of {height} says {data[at + 2] << 8 | data[at + 3]} pixels, not {width}"
        at += 4
        for _ in range(4):
            x = 0
            while x < width:
                if at >= n:
                    return f"{height - y} of its {height} rows missing"
                code = data[at]
                if code > 128:
                    x, at = x + code - 128, at + 2
                else:
                    x, at = x + code, at + 1 + code
            if x > width:
                return f"row {y + 1} of {height} runs past its {width} pixels"
        if at > n:
            return f"{height - y} of its {height} rows missing"
    return None


def _flat_pixels(data: bytes) -> int:
    """How many pixels flat RGBE ``data`` holds: one a 4 bytes, but where the old run-length code marks a repeat
    (``1 1 1 n``: the pixel before ``n`` more times, ``n`` shifted 8 bits further for each marker right after
    another)."""
    quads = np.frombuffer(data[: len(data) // 4 * 4], np.uint8).reshape(-1, 4)
    marker = (quads[:, 0] == 1) & (quads[:, 1] == 1) & (quads[:, 2] == 1)
    if not marker.any():
        return len(quads)
    index = np.arange(len(quads))
    run_start = np.maximum.accumulate(np.where(~marker, index + 1, 0))  # first index of each run of markers
    shift = np.where(marker, 8 * (index - run_start), 0)
    repeats = (quads[:, 3].astype(np.int64) << shift.astype(np.int64))[marker].sum()
    return int((~marker).sum() + repeats)


def decode(exe: str, source: Path) -> np.ndarray:
    """The picture as ``(H, W, 3)`` float32 linear light (RGB), decoded by the bundled ffmpeg. ``ValueError`` with
    ffmpeg's reason where it fails."""
    got = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-xerror", "-i", str(source), "-map", "0:v:0", "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gbrpf32le", "-"], capture_output=True, check=False,
    )  # fmt: skip
    text = got.stderr.decode(errors="replace")
    size = re.search(r"Video: hdr, [^\n]*?, (\d+)x(\d+)", text)
    if got.returncode or size is None:
        from classsr_cli.io.video import ffmpeg_reason

        raise ValueError(ffmpeg_reason(text, "hdr", "ffmpeg decoded nothing"))
    width, height = int(size.group(1)), int(size.group(2))
    if len(got.stdout) != 3 * width * height * 4:
        raise ValueError(f"ffmpeg gave {len(got.stdout)} bytes for a {width}x{height} picture")
    planes = np.frombuffer(got.stdout, "<f4").reshape(3, height, width)
    return np.ascontiguousarray(np.moveaxis(planes[[2, 0, 1]], 0, -1))  # G, B, R planes -> R, G, B


def encode(exe: str, planes: np.ndarray, lines: tuple[str, ...] = (), software: str = "") -> bytes:
    """A Radiance file of ``planes`` (``(3, H, W)`` float32 linear light in ffmpeg's order G, B, R; negative values
    become 0, as RGBE holds none), RGBE run-length coded by the bundled ffmpeg, under a header of ``lines`` (a source's
    :attr:`Header.carried`) and ``SOFTWARE``. ``ValueError`` with ffmpeg's reason where it fails."""
    _, height, width = planes.shape
    got = subprocess.run(
        [exe, "-hide_banner", "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "gbrpf32le",
         "-s", f"{width}x{height}", "-i", "-", "-frames:v", "1", "-c:v", "hdr", "-f", "rawvideo", "-"],
        input=np.ascontiguousarray(np.maximum(planes, 0.0), "<f4").tobytes(), capture_output=True, check=False,
    )  # fmt: skip
    if got.returncode or not is_radiance(got.stdout):
        from classsr_cli.io.video import ffmpeg_reason

        raise ValueError(ffmpeg_reason(got.stderr, "hdr", "ffmpeg encoded nothing"))
    pixels = got.stdout[header(got.stdout).data :]
    own = ["#?RADIANCE", *( [f"SOFTWARE={software}"] if software else []), *lines, "FORMAT=32-bit_rle_rgbe"]
    return ("\n".join(own) + f"\n\n-Y {height} +X {width}\n").encode("latin-1", "replace") + pixels
