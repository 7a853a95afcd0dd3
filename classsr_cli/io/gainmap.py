"""HDR gain maps in JPEG (Ultra HDR: Android's and Google Photos' HDR photos; ISO 21496-1): read, resized with the
picture, and written back, so an upscaled HDR photo still shows as HDR.

Such a JPEG is an SDR picture followed by a second, smaller JPEG (the gain map: how much brighter each part is in
HDR), found through a Multi-Picture Format index (CIPA DC-007, an ``MPF`` APP2 segment) and described by the picture's
XMP (``hdrgm:Version`` and a container directory giving the gain map's length) and the gain map's own XMP and ISO
21496-1 APP2 segment (its range, gamma and offsets, which do not depend on its size and are carried as they are).
The gain map is resized by Pillow's bicubic with the picture (it is smooth, and a small fraction of its size); the
writer builds the MPF index and the container directory for the new lengths.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["APPLE_AUX", "ISO_URN", "GainMap", "in_heif", "jpeg_with", "primary_xmp", "read"]

#: ISO 21496-1's APP2 segments start with this name.
ISO_URN = b"urn:iso:std:iso:ts:21496:-1\x00"
#: The auxiliary-image type of the HDR gain map iPhones store in their HEIC photos (iOS 14.1 on).
APPLE_AUX = b"urn:com:apple:photo:2020:aux:hdrgainmap"
#: An ISO 21496-1 gain map in HEIF or AVIF: an item of type ``tmap`` (its ``infe``: version 2 or 3, flags, the item's
#: ID in 2 or 4 bytes, a protection index, the type), as iOS 18, Android and Chrome write it.
_TMAP = re.compile(rb"infe(?:\x02[\s\S]{5}|\x03[\s\S]{7})[\s\S]{2}tmap")
#: The most of a ``meta`` box read to look for them (an iPhone's holds a few kilobytes).
_META_LIMIT = 1 << 24
#: What a picture's XMP says where it has a gain map (Ultra HDR's namespace; Adobe's ``hdrgm`` too).
_MARKS = (b"hdrgm:Version", b'Item:Semantic="GainMap"')
#: The primary XMP classsr writes for a gain map when the picture has none (``--strip-metadata``): Ultra HDR 1.0's.
_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:Container="http://ns.google.com/photos/1.0/container/" '
        b'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" '
        b'hdrgm:Version="1.0"><Container:Directory><rdf:Seq>'
        b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" Item:Mime="image/jpeg"/></rdf:li>'
        b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" '
        b'Item:Length="0"/></rdf:li></rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>')  # fmt: skip


@dataclass(frozen=True)
class GainMap:
    """A picture's gain map: its pixels (``(h, w, 1)`` or ``(h, w, 3)`` uint8, turned as the picture is), its XMP
    and ISO 21496-1 segments (their payloads, the name included), the picture's own ISO segments, and the size
    ``(width, height)`` of the picture it belongs to."""

    pixels: np.ndarray
    xmp: bytes | None
    iso: tuple[bytes, ...]
    primary_iso: tuple[bytes, ...]
    of_size: tuple[int, int]

    def turned(self, arr: Any) -> GainMap:
        """This gain map with ``arr`` (its pixels turned as the picture's were) for pixels."""
        return replace(self, pixels=np.ascontiguousarray(arr))

    def resized(self, width: int, height: int) -> GainMap:
        """This gain map for the picture at ``width`` x ``height``: its pixels resized in the same ratio (Pillow's
        bicubic, antialiased where it shrinks)."""
        if (width, height) == self.of_size:
            return self
        gh, gw = self.pixels.shape[:2]
        size = (max(1, round(gw * width / self.of_size[0])), max(1, round(gh * height / self.of_size[1])))
        im = Image.fromarray(self.pixels[..., 0] if self.pixels.shape[2] == 1 else self.pixels)
        out = np.asarray(im.resize(size, Image.Resampling.BICUBIC))
        return replace(self, pixels=out.reshape(size[1], size[0], -1), of_size=(width, height))


def _app2(im: Image.Image) -> tuple[bytes, ...]:
    """An opened JPEG's ISO 21496-1 APP2 payloads."""
    return tuple(data for marker, data in getattr(im, "applist", []) if marker == "APP2" and data.startswith(ISO_URN))


def _mp_entries(mp: bytes) -> list[tuple[int, int]]:
    """The ``(size, offset)`` of each picture an MPF index (the APP2 segment's data after ``MPF\0``) lists."""
    order = "<" if mp[:2] == b"II" else ">"
    (at,) = struct.unpack(order + "I", mp[4:8])
    (count,) = struct.unpack(order + "H", mp[at : at + 2])
    for k in range(count):
        tag, _, length, value = struct.unpack(order + "HHII", mp[at + 2 + 12 * k : at + 14 + 12 * k])
        if tag == 0xB002:  # MPEntry: 16 bytes a picture
            return [struct.unpack(order + "II", mp[value + i + 4 : value + i + 12]) for i in range(0, length, 16)]
    return []


def read(path: Path, im: Image.Image) -> GainMap | None:
    """The gain map of the opened JPEG ``im`` read from ``path``: where it has an MPF index, its XMP or an ISO 21496-1
    segment says it has a gain map, and its second picture is a JPEG that reads; else ``None``. (Pillow opens such a
    file as a JPEG, not as a multi-picture MPO, and reads the first picture only.)"""
    xmp = im.info.get("xmp")
    mp = im.info.get("mp")
    if not isinstance(mp, bytes) or not ((isinstance(xmp, bytes) and any(m in xmp for m in _MARKS)) or _app2(im)):
        return None
    try:
        entries = _mp_entries(mp)
        size, offset = entries[1]
        with path.open("rb") as f:
            f.seek(offset + int(im.info["mpoffset"]))
            blob = f.read(size)
        with Image.open(io.BytesIO(blob), formats=["JPEG"]) as g:
            g.load()
            pixels = np.asarray(g if g.mode == "L" else g.convert("RGB"))
            gxmp = g.info.get("xmp")
            iso = _app2(g)
    except Exception:  # a second picture that is not a gain map after all: the picture alone
        return None
    return GainMap(pixels.reshape(pixels.shape[0], pixels.shape[1], -1), gxmp if isinstance(gxmp, bytes) else None,
                   iso, _app2(im), im.size)  # fmt: skip


def primary_xmp(xmp: bytes | None, length: int, *, ultra_hdr: bool = True) -> bytes | None:
    """The picture's XMP with its container directory's gain map item at ``length`` bytes; where it has no XMP,
    Ultra HDR 1.0's own if the gain map is described by XMP (``ultra_hdr``; an ISO 21496-1 one needs none). An XMP
    without a directory is left as it is."""
    if not xmp:
        if not ultra_hdr:
            return None
        xmp = _XMP
    if b'Item:Semantic="GainMap"' not in xmp:
        return xmp
    item = re.compile(rb'(<Container:Item\b[^>]*Item:Semantic="GainMap"[^>]*?)(\s*/?>)')

    def sized(m: re.Match[bytes]) -> bytes:
        head = re.sub(rb'\s+Item:Length="\d*"', b"", m.group(1))
        return head + b' Item:Length="%d"' % length + m.group(2)

    return item.sub(sized, xmp, count=1)


def _segments_end(jpeg: bytes) -> int:
    """Where a JPEG's leading APPn and COM segments end (the MPF index goes there, after EXIF and XMP)."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and (0xE0 <= jpeg[at + 1] <= 0xEF or jpeg[at + 1] == 0xFE):
        at += 2 + struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
    return at


def jpeg_with(primary: bytes, gain_map: bytes) -> bytes:
    """The JPEG ``primary`` followed by the JPEG ``gain_map``, indexed by an MPF APP2 segment as CIPA DC-007 and
    Ultra HDR lay it out (big-endian; the primary typed "baseline MP primary image", offsets from the MPF header)."""
    at = _segments_end(primary)
    size = len(primary) + 90  # the segment: marker, length, "MPF\0", 82 bytes of TIFF
    tiff_at = at + 8
    entries = struct.pack(">IIIHH", 0x030000, size, 0, 0, 0) + struct.pack(">IIIHH", 0, len(gain_map), size - tiff_at, 0, 0)
    ifd = struct.pack(">H", 3) + struct.pack(">HHI4s", 0xB000, 7, 4, b"0100") + struct.pack(">HHII", 0xB001, 4, 1, 2)
    ifd += struct.pack(">HHII", 0xB002, 7, len(entries), 8 + 2 + 3 * 12 + 4) + struct.pack(">I", 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + entries
    segment = b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(tiff)) + b"MPF\x00" + tiff
    assert len(segment) == 90
    return primary[:at] + segment + primary[at:] + gain_map


def in_heif(path: Path) -> str | None:
    """Which HDR gain map a HEIF or AVIF file holds beside its picture, from its ``meta`` box: ``"Apple's"`` (an
    auxiliary image of type :data:`APPLE_AUX`), ``"ISO 21496-1"`` (a ``tmap`` item), or ``None``."""
    try:
        with path.open("rb") as f:
            while head := f.read(8):
                if len(head) < 8:
                    return None
                size, kind = struct.unpack(">I4s", head)
                header = 8
                if size == 1:  # a 64-bit size follows
                    size, header = struct.unpack(">Q", f.read(8))[0], 16
                if kind == b"meta":
                    meta = f.read(min(size - header, _META_LIMIT) if size else _META_LIMIT)
                    return "Apple's" if APPLE_AUX in meta else "ISO 21496-1" if _TMAP.search(meta) else None
                if size < header:  # 0: the box runs to the end
                    return None
                f.seek(size - header, 1)
    except (OSError, struct.error):
        return None
    return None
