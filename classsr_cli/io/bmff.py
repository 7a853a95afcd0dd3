"""ISO base media file format (ISO/IEC 14496-12) boxes, as MP4, MOV, HEIF and AVIF files are made of: walked
(:func:`boxes`; a file's top level by its headers alone, :func:`top_level`) and made (:func:`box`, :func:`full_box`).
Used by :mod:`classsr_cli.io.spherical` (a 360° video's projection boxes), :mod:`classsr_cli.io.heifbox` (a HEIF's
items and properties) and :mod:`classsr_cli.io.video` (a fragmented MP4's segments, an encrypted track)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SAMPLE_DESCRIPTIONS", "box", "boxes", "full_box", "top_level"]

#: The boxes on the way from ``moov`` to a track's sample descriptions (its sample entries: ``avc1``, ``mp4a``...).
SAMPLE_DESCRIPTIONS = (b"trak", b"mdia", b"minf", b"stbl", b"stsd")


def boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """The boxes in ``data[start:end]``: type, where it starts, its size, its header's size (8, or 16 with a 64-bit
    size; a size of 0 runs to ``end``); stops at one that does not fit."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1 and at + 16 <= end:
            size, header = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at, size, header
        at += size


def top_level(path: str | os.PathLike[str]) -> list[tuple[bytes, int, int]]:
    """The boxes at ``path``'s top level: type, where it starts and its size, read by their headers alone (a file of
    gigabytes reads a few bytes a box); the last may run past the file's end (a truncated file)."""
    found = []
    with Path(path).open("rb") as f:
        total = f.seek(0, os.SEEK_END)
        at = 0
        while at + 8 <= total:
            f.seek(at)
            head = f.read(16)
            size, kind = struct.unpack_from(">I4s", head)
            if size == 1 and len(head) == 16:
                size = struct.unpack_from(">Q", head, 8)[0]
            elif size == 0:
                size = total - at
            if size < 8:
                break
            found.append((kind, at, size))
            at += size
    return found


def box(kind: bytes, payload: bytes) -> bytes:
    """A box of ``kind`` holding ``payload``."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    """A full box (its version and flags before ``payload``)."""
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)
