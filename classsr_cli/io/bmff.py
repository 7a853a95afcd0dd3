"""ISO base media file format (ISO/IEC 14496-12) boxes, as MP4, MOV, HEIF and AVIF files are made of: walked
(:func:`boxes`) and made (:func:`box`, :func:`full_box`). Used by :mod:`classsr_cli.io.spherical` (a 360° video's
projection boxes) and :mod:`classsr_cli.io.heifbox` (a HEIF's items and properties)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["box", "boxes", "full_box"]


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


def box(kind: bytes, payload: bytes) -> bytes:
    """A box of ``kind`` holding ``payload``."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    """A full box (its version and flags before ``payload``)."""
    return box(kind, struct.pack(">I", version << 24 | flags) + payload)
