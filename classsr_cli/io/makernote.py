"""A camera's EXIF maker note kept readable when its EXIF is written anew.

A maker note (tag 0x927C in the Exif IFD) is the camera maker's own block, carried by Pillow as opaque bytes. Many makers'
(Canon's, Panasonic's, Sony's, Olympus's older ones) hold a TIFF IFD whose values are found by offsets counted from the
EXIF's TIFF header, not from the maker note: once the EXIF is laid out again (its orientation taken out, its sizes
changed), the block lands elsewhere and every such offset points at the wrong bytes (exiftool: "Possibly incorrect maker
notes offsets"; exiv2, and the tools built on it, read garbage). :func:`moved` shifts them by as much as the block moved,
as exiftool does when it writes. Maker notes whose offsets count from themselves (Nikon's, Fujifilm's, Apple's) are left
as they are: they move whole.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["MAKER_NOTE", "find", "moved", "moved_in_ifd"]

#: The Exif IFD's tag of the maker note, and of the Exif IFD in IFD0.
MAKER_NOTE = 0x927C
_EXIF_IFD = 0x8769
#: Bytes per value of each TIFF type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL,
#: FLOAT, DOUBLE, IFD).
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
#: Where a maker note's IFD may start after the maker's header: none (Canon), ``OLYMP\0`` and the like (8), ``Panasonic``
#: or ``SONY DSC`` with its padding (12), and the others seen in the wild.
_HEADERS = (0, 6, 8, 10, 12, 14, 16, 18)


class _Tiff(NamedTuple):
    """A TIFF structure held in ``buf``: TIFF offset ``x`` at ``buf[x + shift]``, its byte order and first IFD."""

    buf: bytes
    shift: int
    order: str
    first: int


def _exif(exif: bytes) -> _Tiff:
    """The TIFF structure of ``exif`` (as Pillow gives it: after ``Exif\0\0``, or bare)."""
    shift = 6 if exif[:6] == b"Exif\x00\x00" else 0
    order = {b"II": "<", b"MM": ">"}[exif[shift : shift + 2]]
    return _Tiff(exif, shift, order, struct.unpack(order + "I", exif[shift + 4 : shift + 8])[0])


def _ifd(tiff: _Tiff, at: int, order: str | None = None) -> list[tuple[int, int, int, int, int]]:
    """The entries of the IFD at TIFF offset ``at``: ``(where, tag, type, count, value)``, ``where`` the entry's TIFF
    offset; read in ``order`` (else the structure's)."""
    order = order or tiff.order
    (count,) = struct.unpack(order + "H", tiff.buf[at + tiff.shift : at + tiff.shift + 2])
    out = []
    for k in range(count):
        where = at + 2 + 12 * k
        tag, kind, n, value = struct.unpack(order + "HHII", tiff.buf[where + tiff.shift : where + tiff.shift + 12])
        out.append((where, tag, kind, n, value))
    return out


def _find(tiff: _Tiff) -> tuple[int, int, int] | None:
    """Where the maker note of ``tiff`` lies (TIFF offset, length) and where its entry is, or ``None``."""
    for _, tag, kind, _, value in _ifd(tiff, tiff.first):
        if tag == _EXIF_IFD and kind in (4, 13):
            for where, sub, kind2, n, at in _ifd(tiff, value):
                if sub == MAKER_NOTE and kind2 in (1, 7) and n > 4 and at + n + tiff.shift <= len(tiff.buf):
                    return at, n, where
    return None


def find(exif: bytes) -> tuple[int, int, int] | None:
    """Where the maker note of ``exif`` lies in its TIFF structure (offset, length) and where its entry is, or
    ``None`` (none, or EXIF that does not parse)."""
    try:
        return _find(_exif(exif))
    except (KeyError, struct.error):
        return None


def _relative(tiff: _Tiff, at: int, length: int) -> tuple[int, str] | None:
    """The maker note's IFD (its start, its byte order) where its out-of-line values are found by offsets counted from
    the TIFF header: every such offset inside the block, the first after the IFD itself (a maker note that counts
    from itself has them small, near its own start), give or take a little (``slop``: half the block's offset, at
    most 256 bytes) for a file that an earlier tool already moved them in (exiftool: "Adjusted MakerNotes base",
    which it keeps so); ``None`` where it has none or is not such a block."""
    end = at + length
    slop = min(256, at // 2)
    for header in _HEADERS:
        for order in ("<", ">"):
            start = at + header
            if start + 2 > end:
                continue
            (count,) = struct.unpack(order + "H", tiff.buf[start + tiff.shift : start + tiff.shift + 2])
            ifd_end = start + 2 + 12 * count
            if not 0 < count <= 1000 or ifd_end > end:
                continue
            offsets = []
            for _, _, kind, n, value in _ifd(tiff, start, order):
                if kind not in _SIZES:
                    break
                if _SIZES[kind] * n > 4:
                    offsets.append((value, _SIZES[kind] * n))
            else:
                if offsets and all(ifd_end - slop <= value and value + size <= end + slop for value, size in offsets):
                    return start, order
    return None


def _patches(source: bytes, out: _Tiff) -> list[tuple[int, bytes]]:
    """What :func:`moved` changes in ``out`` (where in its buffer, the bytes there) for the EXIF ``source``."""
    old = _exif(source)
    was, now = _find(old), _find(out)
    if was is None or now is None or was[1] != now[1]:
        return []
    at, length, _ = was
    if old.buf[at + old.shift : at + old.shift + length] != out.buf[now[0] + out.shift : now[0] + out.shift + length]:
        return []
    patches = [(now[2] + out.shift + 2, struct.pack(out.order + "H", 7))]  # UNDEFINED
    found = _relative(old, at, length)
    if found is None or at == now[0]:
        return patches
    start, order = found
    delta = now[0] - at
    for where, _, kind, n, value in _ifd(old, start, order):
        if _SIZES[kind] * n > 4:
            patches.append((where + delta + 8 + out.shift, struct.pack(order + "I", value + delta)))
    tail = now[0] + length + out.shift
    footer = out.buf[tail - 8 : tail]  # a Canon's: a TIFF header's byte order, the block's place (moved with it)
    mark = {b"II*\x00": "<I", b"MM\x00*": ">I"}.get(footer[:4])
    if mark is not None and 0 <= (place := struct.unpack(mark, footer[4:])[0] + delta) < 1 << 32:
        patches.append((tail - 4, struct.pack(mark, place)))
    return patches


def _applied(buf: bytes, patches: list[tuple[int, bytes]]) -> bytes:
    data = bytearray(buf)
    for where, value in patches:
        data[where : where + len(value)] = value
    return bytes(data)


def moved(source: bytes, out: bytes) -> bytes:
    """``out``, the EXIF ``source`` laid out anew, with its maker note's offsets (:func:`_relative`) shifted by as
    much as the block moved (and a Canon's footer, which records the block's place, moved alike), and typed
    UNDEFINED as Exif types it (Pillow writes it as BYTE); ``out`` as it is where it has no maker note or either does
    not parse, its offsets as they are where the block did not move or counts from itself."""
    try:
        return _applied(out, _patches(source, _exif(out)))
    except (KeyError, struct.error):
        return out


def moved_in_ifd(source: bytes, block: bytes, at: int, order: str) -> bytes:
    """A TIFF file's first IFD ``block`` (in byte ``order``), written at file offset ``at`` with the EXIF ``source``'s
    tags and sub-IFDs (its values after it), with the maker note's offsets made the file's, as :func:`moved` does."""
    try:
        return _applied(block, _patches(source, _Tiff(block, -at, order, at)))
    except (KeyError, struct.error):
        return block
