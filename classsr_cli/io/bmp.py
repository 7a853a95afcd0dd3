"""BMP layouts Pillow refuses, turned into copies it reads (bmpsuite's "questionable" files, and what Windows CE,
OS/2 and image editors write):

- bit fields other than Pillow's few (16-bit 4-4-4-4 or 1-9-2-4, 32-bit 10-10-10 or 11-11-10, masks in any order, and
  ``BI_ALPHABITFIELDS``, whose header gives an alpha mask): each channel read by its mask and scaled to 8 bits, the copy
  32-bit BGRA (or BGRX where there is no alpha mask);
- 2 bits a pixel (Windows CE's four-colour palette): the copy 8 bits a pixel, the same palette;
- an OS/2 2.x header shorter than its 64 bytes (16: width, height, planes and bits alone): padded to 40 with zeros,
  as the format's text says the fields it leaves out read;
- a palette of more entries than its bits index (bmpsuite's ``pal8oversizepal``: 300): the first ``2**bits`` kept;
- OS/2's 24-bit run-length coding (RLE24): run out into a 24-bit copy;
- a JPEG or PNG inside (``BI_JPEG``, ``BI_PNG``: for printers): that file itself.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import numpy as np

__all__ = ["Layout", "layout", "readable"]

#: The sizes of Windows' BMP headers (BITMAPINFOHEADER to BITMAPV5HEADER); the others from 16 to 64 are OS/2 2.x's.
_WINDOWS = (40, 52, 56, 108, 124)

#: ``BI_BITFIELDS``, ``BI_JPEG``, ``BI_PNG`` and ``BI_ALPHABITFIELDS``; OS/2's RLE24 (its 4, Windows' BI_JPEG).
_BITFIELDS, _JPEG, _PNG, _ALPHABITFIELDS, _RLE24 = 3, 4, 5, 6, 4


class Layout(NamedTuple):
    """What a BMP's headers say: its header's size, where its pixels start, its size (``height`` negative where its
    rows run top down), bits a pixel, compression, palette entries (0: as many as its bits index), print resolution
    (pixels a metre, x and y) and whether its header is OS/2's."""

    header: int
    offset: int
    width: int
    height: int
    bits: int
    compression: int
    colors: int
    per_metre: tuple[int, int]
    os2: bool


def layout(data: bytes) -> Layout | None:
    """The :class:`Layout` of the BMP ``data`` (its first bytes suffice), an OS/2 2.x header shorter than 40 read as
    though padded with zeros; ``None`` where it is not a BMP with a header of 16 to 124 bytes."""
    if len(data) < 30 or data[:2] != b"BM":
        return None
    offset, header = struct.unpack_from("<II", data, 10)
    if not 16 <= header <= 124 or len(data) < 14 + header:
        return None
    fields = data[18 : 14 + header].ljust(36, b"\0")
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", fields)
    per_metre, colors = struct.unpack_from("<ii", fields, 20), struct.unpack_from("<I", fields, 28)[0]
    return Layout(header, offset, width, height, bits, compression, colors, per_metre, header not in _WINDOWS)


def readable(data: bytes) -> tuple[bytes, str] | None:
    """A copy of the BMP ``data`` that Pillow reads, and the format to read it as (``BMP``, or ``JPEG``/``PNG`` for the
    file inside one); ``None`` for a layout this module does not turn (Pillow's own, or one it refuses too).
    :class:`ValueError` where its pixels are cut short or do not add up. Check its :func:`layout`'s size against a pixel
    limit first: the copy is made in memory."""
    head = layout(data)
    if head is None or head.width < 1 or head.height == 0:
        return None
    padded = head.header < 40
    if padded:  # (OS/2 2.x, shortened): the fields it leaves out are zeros
        pad = 40 - head.header
        data = (data[:10] + struct.pack("<II", head.offset + pad, 40) + data[18 : 14 + head.header] + bytes(pad)
                + data[14 + head.header :])  # fmt: skip
        head = head._replace(header=40, offset=head.offset + pad)
    if not head.os2 and head.compression in (_JPEG, _PNG) and head.bits == 0:
        inside = data[head.offset :]
        return inside, "JPEG" if head.compression == _JPEG else "PNG"
    if head.os2 and head.compression == _RLE24 and head.bits == 24:
        return _bmp(head, _rle24(data, head), 24, None), "BMP"
    if not head.os2 and head.compression in (_BITFIELDS, _ALPHABITFIELDS) and head.bits in (16, 32):
        return _bitfields(data, head), "BMP"
    if head.bits == 2 and head.compression == 0:
        return _two_bits(data, head), "BMP"
    if 0 < head.bits <= 8 and head.colors > 1 << head.bits:
        copy = bytearray(data)
        struct.pack_into("<I", copy, 46, 1 << head.bits)
        return bytes(copy), "BMP"
    return (data, "BMP") if padded else None


def _rows(data: bytes, head: Layout, bits: int) -> np.ndarray:
    """The stored rows of ``data`` at ``bits`` a pixel, ``(rows, stride)`` bytes, as stored (bottom up unless its height
    is negative). :class:`ValueError` where they are cut short."""
    stride = (head.width * bits + 31) // 32 * 4
    rows = abs(head.height)
    got = data[head.offset : head.offset + stride * rows]
    if len(got) < stride * rows:
        raise ValueError(f"its pixels cut short: {len(got):,} of {stride * rows:,} bytes")
    return np.frombuffer(got, np.uint8).reshape(rows, stride)


def _masks(data: bytes, head: Layout) -> tuple[int, int, int, int]:
    """The red, green, blue and alpha masks of a bit-field BMP: in its header from 52 bytes on (alpha from 56), else
    after a 40-byte one (alpha there only for ``BI_ALPHABITFIELDS``)."""
    count = 4 if head.header >= 56 or head.compression == _ALPHABITFIELDS else 3
    if len(data) < 54 + 4 * count:
        raise ValueError("its bit-field masks cut short")
    got = struct.unpack_from(f"<{count}I", data, 54)
    return got[0], got[1], got[2], got[3] if count == 4 else 0


def _bitfields(data: bytes, head: Layout) -> bytes:
    """A 32-bit BGRA (BGRX) copy of a bit-field BMP: each channel its mask's bits, scaled to 0-255."""
    rows = _rows(data, head, head.bits)
    stored = rows.view("<u2" if head.bits == 16 else "<u4")[:, : head.width].astype(np.uint64)
    red, green, blue, alpha = _masks(data, head)
    out = np.zeros(stored.shape, np.uint32)
    for shift, mask in ((16, red), (8, green), (0, blue), (24, alpha)):
        if mask:
            low = (mask & -mask).bit_length() - 1
            top = mask >> low
            levels = (stored & mask) >> low
            out |= (((levels * 255 + top // 2) // top).astype(np.uint32) & 0xFF) << shift
    return _bmp(head, out.astype("<u4").view(np.uint8).reshape(len(out), -1), 32, bool(alpha))


def _two_bits(data: bytes, head: Layout) -> bytes:
    """An 8-bit copy of a BMP of 2 bits a pixel, its palette (4 bytes an entry) kept."""
    rows = _rows(data, head, 2)
    indices = np.stack([(rows >> s) & 3 for s in (6, 4, 2, 0)], axis=-1).reshape(rows.shape[0], -1)[:, : head.width]
    count = head.colors or 4
    palette = data[14 + head.header : 14 + head.header + 4 * count].ljust(4 * count, b"\0")
    return _bmp(head, indices.astype(np.uint8), 8, None, palette)


def _rle24(data: bytes, head: Layout) -> np.ndarray:
    """The BGR rows of an OS/2 RLE24 BMP, bottom up, ``(rows, width * 3)``: runs of one colour (a count, then B, G, R)
    and literal stretches (0, a count of 3 or more, its colours, padded to an even length); 0 0 ends a row, 0 1 the
    picture, 0 2 moves by the two bytes after it. What no run reaches stays black. :class:`ValueError` where the runs
    are cut short before the last row."""
    rows, width = abs(head.height), head.width
    out = np.zeros((rows, width, 3), np.uint8)
    at, x, y = head.offset, 0, 0
    while y < rows:
        if at + 2 > len(data):
            raise ValueError(f"its runs cut short at row {y} of {rows}")
        count, code = data[at], data[at + 1]
        at += 2
        if count:  # a run of one colour, its first byte ``code``
            if at + 2 > len(data):
                raise ValueError(f"its runs cut short at row {y} of {rows}")
            out[y, x : x + count] = np.frombuffer(data, np.uint8, 3, at - 1)
            at, x = at + 2, x + count
        elif code == 0:
            x, y = 0, y + 1
        elif code == 1:
            break
        elif code == 2:
            if at + 2 > len(data):
                raise ValueError(f"its runs cut short at row {y} of {rows}")
            x, y, at = x + data[at], y + data[at + 1], at + 2
        else:  # a literal stretch
            if at + 3 * code > len(data):
                raise ValueError(f"its runs cut short at row {y} of {rows}")
            shown = min(code, max(0, width - x))
            out[y, x : x + shown] = np.frombuffer(data, np.uint8, 3 * shown, at).reshape(shown, 3)
            at, x = at + 3 * code + (3 * code) % 2, x + code
    return out.reshape(rows, width * 3)


def _bmp(head: Layout, rows: np.ndarray, bits: int, alpha: bool | None, palette: bytes = b"") -> bytes:
    """A BMP Pillow reads of ``rows`` (``(rows, bytes)``, in the order ``head``'s are: top down where its height is
    negative) at ``bits`` a pixel: a 56-byte header with BGRA or BGRX masks where ``alpha`` is not ``None``, else a
    40-byte one, uncompressed, with ``palette``; ``head``'s print resolution kept."""
    stride = (rows.shape[1] + 3) // 4 * 4
    pixels = np.zeros((rows.shape[0], stride), np.uint8)
    pixels[:, : rows.shape[1]] = rows
    size = 40 if alpha is None else 56
    masks = b"" if alpha is None else struct.pack("<4I", 0xFF0000, 0xFF00, 0xFF, 0xFF000000 if alpha else 0)
    offset = 14 + size + len(palette)
    header = struct.pack("<IiiHHIIiiII", size, head.width, head.height, 1, bits, 0 if alpha is None else _BITFIELDS,
                         pixels.size, *head.per_metre, len(palette) // 4, 0) + masks  # fmt: skip
    return b"BM" + struct.pack("<IHHI", offset + pixels.size, 0, 0, offset) + header + palette + pixels.tobytes()
