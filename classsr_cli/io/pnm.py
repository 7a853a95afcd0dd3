"""Netpbm pictures (PPM, PGM): the deep colour ones Pillow reads at 8 bits, and every one classsr writes; and PFM
(Portable Float Map: HDR research data, Intel's Open Image Denoise), linear light in 32-bit floats.

Pillow reads PBM, PGM and PPM, plain (ASCII) and raw, and a deep PGM (``maxval`` above 255) at 16 bits, but a deep
raw PPM at 8: :func:`read_deep` keeps its 16. :func:`write` writes raw PPM (``P6``) or PGM (``P5``) band by band, at
8 bits or 16 (big-endian, ``maxval`` 65535), as Netpbm, ffmpeg and OpenCV read them. PAM (``P7``: Netpbm's
format with alpha, which ImageMagick's ``pam:-`` pipes), which Pillow does not read, is read (:func:`read_pam`) and
written (:func:`write_pam`) here too.

A PFM is ``PF`` (colour) or ``Pf`` (gray), its width and height, and a scale whose sign gives the byte order (negative:
little-endian), then float32 rows from the bottom up; Pillow reads it as a float picture of unknown light, so classsr
reads (:func:`read_pfm`) and writes (:func:`write_pfm`) it, its light taken as linear (as EXR's), the scale's size
left as 1. Read as KDE's and ImageMagick's readers read them: a PHM (``PH``, ``Ph``: the same of half floats),
comment lines after the magic, and Photoshop's PFM, whose height is on a line of its own and whose rows run from the
top down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

__all__ = ["Header", "PfmHeader", "header", "is_pam", "is_pfm", "load_pfm", "pam_header", "pfm_header", "plain", "read_deep", "read_pam",
           "read_pfm", "write", "write_pam", "write_pfm"]

_WHITESPACE = b" \t\r\n\v\f"


class Header(NamedTuple):
    """A Netpbm file's magic (``P1`` .. ``P6``), size, largest level and where its raster starts."""

    magic: bytes
    width: int
    height: int
    maxval: int
    offset: int


class PfmHeader(NamedTuple):
    """A PFM's (or PHM's) magic (``PF``, ``Pf``; ``PH``, ``Ph``), size, byte order (-1 little-endian, 1 big), where its
    floats start and whether its rows run from the top down (Photoshop's)."""

    magic: bytes
    width: int
    height: int
    maxval: int
    offset: int
    top_down: bool = False


def header(data: bytes) -> Header | None:
    """The :class:`Header` at the start of ``data`` (the first kilobytes of the file suffice), comments skipped;
    ``None`` for what is not a PBM, PGM or PPM header."""
    if len(data) < 2 or data[:1] != b"P" or data[1:2] not in b"123456":
        return None
    magic, at, fields = data[:2], 2, list[int]()
    wanted = 2 if magic in (b"P1", b"P4") else 3
    while len(fields) < wanted:
        while at < len(data) and (data[at] in _WHITESPACE or data[at] == ord("#")):
            if data[at] == ord("#"):
                while at < len(data) and data[at] not in b"\r\n":
                    at += 1
            else:
                at += 1
        start = at
        while at < len(data) and data[at : at + 1].isdigit():
            at += 1
        if start == at:
            return None
        fields.append(int(data[start:at]))
    if at >= len(data) or data[at] not in _WHITESPACE:
        return None
    width, height, maxval = (*fields, 1) if wanted == 2 else fields
    if width < 1 or height < 1 or not 0 < maxval < 65536:
        return None
    return Header(magic, width, height, maxval, at + 1)


def plain(data: bytes) -> bytes | None:
    """A copy of the PBM, PGM or PPM ``data`` whose header (its comments wherever the format allows them, the
    whitespace between its fields of any kind and length) is rewritten as Pillow reads every one: magic, width,
    height and ``maxval``, each after one newline; ``None`` where its header does not read (:func:`header`)."""
    head = header(data[:4096])
    if head is None:
        return None
    fields = [head.width, head.height] + ([] if head.magic in (b"P1", b"P4") else [head.maxval])
    return b"\n".join([head.magic, *(str(v).encode() for v in fields)]) + b"\n" + data[head.offset :]


def read_deep(path: Path, head: Header) -> np.ndarray:
    """The pixels of a raw PPM or PGM (``P6``, ``P5``) of ``maxval`` above 255 as ``(H, W, C)`` ``uint16``, its levels
    stretched to 0-65535. :class:`ValueError` for a file cut short."""
    channels = 3 if head.magic == b"P6" else 1
    count = head.width * head.height * channels
    with path.open("rb") as f:
        f.seek(head.offset)
        raw = np.fromfile(f, dtype=">u2", count=count)
    if raw.size < count:
        raise ValueError(f"cut short: {raw.size * 2:,} of its {count * 2:,} bytes of pixels")
    levels = raw.astype(np.uint32).reshape(head.height, head.width, channels)
    if head.maxval != 65535:
        levels = (np.minimum(levels, head.maxval) * 65535 + head.maxval // 2) // head.maxval
    return levels.astype(np.uint16)


def write(f: BinaryIO, size: tuple[int, int], channels: int, dtype: np.dtype, bands: Iterable[np.ndarray]) -> None:
    """Write a raw PPM (``channels`` 3) or PGM (1) of ``size = (height, width)`` to ``f`` from ``bands`` of rows
    ``(n, width, channels)`` of ``dtype`` (uint8 or uint16), as they arrive."""
    height, width = size
    deep = np.dtype(dtype) == np.uint16
    f.write(b"P6" if channels == 3 else b"P5")
    f.write(f"\n{width} {height}\n{65535 if deep else 255}\n".encode())
    for band in bands:
        f.write(np.ascontiguousarray(band, dtype=">u2" if deep else np.uint8).tobytes())


_PFM = re.compile(rb"\A(P[FfHh])\s+(?:#[^\n]*\n\s*)*(\d+)([ \t]*[\r\n]\s*|\s+)(\d+)\s+"
                  rb"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s")


def is_pfm(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a PFM (or a PHM)."""
    return head[:2] in (b"PF", b"Pf", b"PH", b"Ph") and head[2:3].isspace()


def pfm_header(data: bytes) -> PfmHeader | None:
    """A PFM's :class:`PfmHeader` from its first bytes: ``magic`` ``PF`` or ``Pf`` (``PH``, ``Ph``: a PHM's), ``maxval``
    -1 for little-endian floats and 1 for big-endian ones, ``top_down`` where its height is on a line of its own
    (Photoshop's); ``None`` where it does not read."""
    m = _PFM.match(data)
    if m is None:
        return None
    width, height, scale = int(m[2]), int(m[4]), float(m[5])
    if width < 1 or height < 1 or scale == 0 or not np.isfinite(scale):
        return None
    return PfmHeader(m[1], width, height, -1 if scale < 0 else 1, m.end(), top_down=b"\n" in m[3] or b"\r" in m[3])


def read_pfm(path: Path, head: PfmHeader) -> np.ndarray:
    """A PFM's (or PHM's) light, ``(H, W, C)`` float32 top row first (``C`` 3 for ``PF``, 1 for ``Pf``).
    :class:`ValueError` for a file cut short."""
    channels = 3 if head.magic in (b"PF", b"PH") else 1
    size = 2 if head.magic in (b"PH", b"Ph") else 4
    count = head.width * head.height * channels
    with path.open("rb") as f:
        f.seek(head.offset)
        raw = np.fromfile(f, dtype=f"{'<' if head.maxval < 0 else '>'}f{size}", count=count)
    if raw.size < count:
        raise ValueError(f"cut short: {raw.size * size:,} of its {count * size:,} bytes of pixels")
    rows = raw.astype(np.float32).reshape(head.height, head.width, channels)
    return np.ascontiguousarray(rows if head.top_down else rows[::-1])


def load_pfm(path: Path) -> np.ndarray:
    """:func:`read_pfm` of the file ``path``, its header read first; :class:`ValueError` where it does not read."""
    with path.open("rb") as f:
        head = pfm_header(f.read(256))
    if head is None:
        raise ValueError("its PFM header does not read")
    return read_pfm(path, head)


def write_pfm(f: BinaryIO, light: np.ndarray) -> None:
    """Write ``light`` (``(H, W, 3)`` or ``(H, W, 1)`` float32, top row first) to ``f`` as a little-endian PFM."""
    height, width, channels = light.shape
    f.write(f"{'PF' if channels == 3 else 'Pf'}\n{width} {height}\n-1.0\n".encode())
    f.write(np.ascontiguousarray(light[::-1], dtype="<f4").tobytes())


def is_pam(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a PAM (not an XV thumbnail, ``P7 332``: xv's 3-3-2 colour, which
    shares its magic number and was said to be a PAM whose header does not read)."""
    return head[:3] in (b"P7\n", b"P7\r", b"P7 ") and not head.startswith(b"P7 332")


class PamHeader(NamedTuple):
    """A PAM's size, samples a pixel (``depth``: 1 gray, 2 gray and alpha, 3 RGB, 4 RGB and alpha), largest level and
    where its raster starts."""

    width: int
    height: int
    depth: int
    maxval: int
    offset: int


def pam_header(data: bytes) -> PamHeader | None:
    """A PAM's :class:`PamHeader` from its first bytes (up to ``ENDHDR``); ``None`` where it does not read or holds
    what classsr does not (a depth above 4)."""
    end = data.find(b"ENDHDR\n")
    if not is_pam(data) or end < 0:
        return None
    fields: dict[bytes, bytes] = {}
    for line in data[3:end].splitlines():
        key, _, value = line.strip().partition(b" ")
        if key and not key.startswith(b"#"):
            fields[key] = fields.get(key, b"") + value.strip() if key == b"TUPLTYPE" else value.strip()
    try:
        width, height, depth, maxval = (int(fields[k]) for k in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"))
    except (KeyError, ValueError):
        return None
    if width < 1 or height < 1 or not 1 <= depth <= 4 or not 0 < maxval < 65536:
        return None
    return PamHeader(width, height, depth, maxval, end + 7)


def read_pam(path: Path, head: PamHeader) -> np.ndarray:
    """A PAM's samples, ``(H, W, depth)``: uint8 where its maxval is 255 or less, else uint16, its levels stretched
    to 0-255 or 0-65535 (as Pillow stretches a PGM's). :class:`ValueError` for a file cut short."""
    wide = head.maxval > 255
    count = head.width * head.height * head.depth
    with path.open("rb") as f:
        f.seek(head.offset)
        raw = np.fromfile(f, dtype=">u2" if wide else np.uint8, count=count)
    if raw.size < count:
        raise ValueError(f"cut short: {raw.size * (1 + wide):,} of its {count * (1 + wide):,} bytes of pixels")
    levels = raw.reshape(head.height, head.width, head.depth)
    if head.maxval == 255:
        return levels.astype(np.uint8)
    top = 65535 if wide else 255
    levels = np.minimum(levels.astype(np.uint32), head.maxval)
    return ((levels * top + head.maxval // 2) // head.maxval).astype(np.uint16 if wide else np.uint8)


def write_pam(f: BinaryIO, size: tuple[int, int], depth: int, dtype: np.dtype, bands: Iterable[np.ndarray]) -> None:
    """Write a PAM of ``size = (height, width)`` and ``depth`` samples a pixel (1-4: gray, gray and alpha, RGB, RGB and
    alpha) from ``bands`` of rows ``(n, width, depth)`` of ``dtype`` (uint8 or uint16), as they arrive."""
    height, width = size
    deep = np.dtype(dtype) == np.uint16
    kind = ("GRAYSCALE", "GRAYSCALE_ALPHA", "RGB", "RGB_ALPHA")[depth - 1]
    f.write(f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {65535 if deep else 255}\nTUPLTYPE {kind}\n"
            "ENDHDR\n".encode())
    for band in bands:
        f.write(np.ascontiguousarray(band, dtype=">u2" if deep else np.uint8).tobytes())
