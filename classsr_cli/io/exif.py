"""A camera's EXIF kept as it wrote it when classsr writes it anew.

Pillow lays EXIF out afresh when it writes it (its orientation taken out, its sizes changed), which loses two things
readers rely on, put back here (:func:`relaid`; :func:`relaid_in_ifd` for a TIFF file's own IFD):

- **The maker note's offsets.** A maker note (tag 0x927C in the Exif IFD) is the camera maker's own block, carried as
  opaque bytes. Many makers' (Canon's, Panasonic's, Sony's, Olympus's older ones) hold a TIFF IFD whose values are found
  by offsets counted from the EXIF's TIFF header, not from the maker note: once the block lands elsewhere every such
  offset points at the wrong bytes (exiftool: "Possibly incorrect maker notes offsets"; exiv2, and the tools built on
  it, read garbage). They are shifted by as much as the block moved, as exiftool does when it writes. Maker notes whose
  offsets count from themselves (Nikon's, Fujifilm's, Apple's) move whole and are left as they are.
- **The tags' types.** Pillow types each value by its Python type: the Exif standard's UNDEFINED tags
  (ComponentsConfiguration, FileSource, UserComment, the maker note) come out as BYTE, its SRATIONAL ones
  (ShutterSpeedValue, BrightnessValue, ExposureCompensation) as RATIONAL where their value is not negative (exiftool
  -validate: "Non-standard format"). Each tag gets its source's type back where it has the same size.
"""

from __future__ import annotations

import mmap
import struct
from typing import NamedTuple

__all__ = ["EXIF_IFD", "GPS_IFD", "INTEROP_IFD", "MAKER_NOTE", "find", "relaid", "relaid_in_ifd"]

#: The Exif IFD's tag of the maker note; IFD0's tags of the Exif and GPS IFDs, and the Exif IFD's of the
#: Interoperability IFD.
MAKER_NOTE = 0x927C
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
#: The sub-IFDs whose tags' types are put back: the Exif and GPS IFDs (in IFD0), the Interoperability IFD (in the Exif
#: IFD).
_SUB_IFDS = {EXIF_IFD: "exif", GPS_IFD: "gps"}
#: The types one may stand for another of the same size: BYTE, UNDEFINED and SBYTE; SHORT and SSHORT; LONG and SLONG;
#: RATIONAL and SRATIONAL.
_KINDRED = ({1, 6, 7}, {3, 8}, {4, 9}, {5, 10})
#: Bytes per value of each TIFF type (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL,
#: FLOAT, DOUBLE, IFD).
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
#: Where a maker note's IFD may start after the maker's header: none (Canon), ``OLYMP\0`` and the like (8), ``Panasonic``
#: or ``SONY DSC`` with its padding (12), and the others seen in the wild.
_HEADERS = (0, 6, 8, 10, 12, 14, 16, 18)


class _Tiff(NamedTuple):
    """A TIFF structure held in ``buf``: TIFF offset ``x`` at ``buf[x + shift]``, its byte order and first IFD."""

    buf: bytes | mmap.mmap  # (a TIFF file's own structure, mapped)
    shift: int
    order: str
    first: int


def _exif(exif: bytes | mmap.mmap) -> _Tiff:
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
        if tag == EXIF_IFD and kind in (4, 13):
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


def _types(tiff: _Tiff) -> dict[tuple[str, int], tuple[int, int]]:
    """Each tag of IFD0 and its Exif, GPS and Interoperability IFDs, by IFD and tag: its type and its entry's place."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    ifds = [("0", tiff.first)]
    while ifds:
        name, at = ifds.pop()
        for where, tag, kind, _, value in _ifd(tiff, at):
            out[(name, tag)] = (kind, where)
            sub = _SUB_IFDS.get(tag) if name == "0" else "interop" if name == "exif" and tag == INTEROP_IFD else None
            if sub is not None and kind in (4, 13) and 0 < value + tiff.shift < len(tiff.buf):
                ifds.append((sub, value))
    return out


def _retyped(old: _Tiff, out: _Tiff) -> list[tuple[int, bytes]]:
    """What gives each tag of ``out`` its type in ``old``, where the two are of one size (:data:`_KINDRED`)."""
    was = _types(old)
    patches = []
    for key, (kind, where) in _types(out).items():
        source = was.get(key, (kind, 0))[0]
        if source != kind and any({kind, source} <= kin for kin in _KINDRED):
            patches.append((where + 2 + out.shift, struct.pack(out.order + "H", source)))
    return patches


def _moved(old: _Tiff, out: _Tiff) -> list[tuple[int, bytes]]:
    """What shifts the maker note's offsets in ``out`` by as much as the block moved from where it was in ``old``
    (:func:`_relative`), and a Canon's footer, which records the block's place, alike."""
    was, now = _find(old), _find(out)
    if was is None or now is None or was[1] != now[1] or was[0] == now[0]:
        return []
    at, length, _ = was
    if old.buf[at + old.shift : at + old.shift + length] != out.buf[now[0] + out.shift : now[0] + out.shift + length]:
        return []
    found = _relative(old, at, length)
    if found is None:
        return []
    start, order = found
    delta = now[0] - at
    patches = []
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


def relaid(source: bytes | mmap.mmap, out: bytes) -> bytes:
    """``out``, the EXIF ``source`` laid out anew (by Pillow), with each tag's type and the maker note's offsets as
    ``source`` had them (the module's docstring); ``out`` as it is where either does not parse."""
    try:
        old, new = _exif(source), _exif(out)
        return _applied(out, _retyped(old, new) + _moved(old, new))
    except (KeyError, struct.error):
        return out


def relaid_in_ifd(source: bytes, block: bytes, at: int, order: str) -> bytes:
    """A TIFF file's first IFD ``block`` (in byte ``order``), written at file offset ``at`` with the EXIF ``source``'s
    tags and sub-IFDs (its values after it), with their types and the maker note's offsets as :func:`relaid` gives
    them."""
    try:
        old, new = _exif(source), _Tiff(block, -at, order, at)
        return _applied(block, _retyped(old, new) + _moved(old, new))
    except (KeyError, struct.error):
        return block
