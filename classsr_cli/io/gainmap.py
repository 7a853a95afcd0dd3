"""HDR gain maps in JPEG (Ultra HDR: Android's and Google Photos' HDR photos; ISO 21496-1): read, resized with the
picture, and written back, so an upscaled HDR photo still shows as HDR. An ISO 21496-1 gain map in a HEIF or AVIF
(a ``tmap`` item, :func:`read_iso`) is read too, and kept in a JPEG output, and one of either kind in a HEIC or AVIF
output as such an item (:func:`heif_with`).

An iPhone's HEIC (iOS 14.1 on) holds its gain map as an auxiliary image (:data:`APPLE_AUX`), its headroom in the
EXIF's Apple maker note (or the XMP): read by :func:`read_apple`, kept in a HEIC output (:func:`heif_with`) and made an
Ultra HDR gain map for a JPEG output (:func:`ultra_hdr`), as Apple's "Applying Apple HDR effect to your photos"
describes it: HDR = SDR x (1 + (headroom - 1) x gain), in linear light, the gain map's values Rec. 709-coded.

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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.parsers import expat

import numpy as np
from PIL import Image

from classsr_cli.io import heifbox
from classsr_cli.io import xmp as xmp_io
from classsr_cli.io.xmp import STANDARD as XMP_HEADER

__all__ = ["APPLE_AUX", "ISO_URN", "GainMap", "apple_headroom", "described", "heif_with", "in_heif", "jpeg_with", "primary_xmp",
           "read", "read_apple", "read_iso", "tone_map_data", "ultra_hdr"]

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
    #: An iPhone's gain map (a HEIC's auxiliary image, :func:`read_apple`): the headroom its largest value brightens
    #: by; its pixels are Apple's (Rec. 709-coded linear gain), not Ultra HDR's (:func:`ultra_hdr` makes them so).
    apple_headroom: float | None = None
    #: A HEIF's or AVIF's ``tmap`` item's properties but its size (its HDR rendition's colour, depth and light levels:
    #: :attr:`~classsr_cli.io.heifbox.ToneMap.properties`), which a HEIC or AVIF output gives its own.
    alternate: tuple[bytes, ...] = ()
    #: An iPhone's gain map's own XMP (its ``HDRGainMapVersion``: an iPhone HEIC's auxiliary image's, or made from an
    #: iPhone JPEG's picture's), which a HEIC output gives its auxiliary image, as an iPhone does.
    apple_xmp: bytes | None = None

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


def _mp_entries(mp: bytes) -> list[tuple[int, int, int]]:
    """The ``(attribute, size, offset)`` of each picture an MPF index (the APP2 segment's data after ``MPF\0``) lists
    (the attribute's low 24 bits its MP type: :data:`MP_PREVIEWS`, ...)."""
    order = "<" if mp[:2] == b"II" else ">"
    (at,) = struct.unpack(order + "I", mp[4:8])
    (count,) = struct.unpack(order + "H", mp[at : at + 2])
    for k in range(count):
        tag, _, length, value = struct.unpack(order + "HHII", mp[at + 2 + 12 * k : at + 14 + 12 * k])
        if tag == 0xB002:  # MPEntry: 16 bytes a picture
            return [struct.unpack(order + "III", mp[value + i : value + i + 12]) for i in range(0, length, 16)]
    return []


#: The MP types (CIPA DC-007) of a camera's previews of its own picture: large thumbnails of VGA and full-HD size,
#: which its playback shows; an output of the upscaled picture has no use for them.
MP_PREVIEWS = (0x010001, 0x010002)


#: The MP type of a stereo camera's pictures (CIPA DC-007's multi-frame "disparity image": a view of a stereo pair,
#: or of a set of views side by side), and the attributes a stereo MPO output's pictures get: the first marked
#: representative (the one a 2D reader shows), each a disparity image.
DISPARITY = 0x020002
STEREO_TYPES = (0x20000000 | DISPARITY, DISPARITY)


def views(mp: object) -> tuple[int, ...]:
    """Which pictures after the first an MPF index (``mp``: Pillow's ``info["mp"]``) lists as a stereo camera's other
    views (:data:`DISPARITY`), by their place in the file; none where it lists none or does not parse."""
    try:
        entries = _mp_entries(mp)  # type: ignore[arg-type]
    except (struct.error, TypeError, ValueError, IndexError):
        return ()
    return tuple(k for k, (attribute, _, _) in enumerate(entries) if k and attribute & 0xFFFFFF == DISPARITY)


def previews(mp: object) -> int:
    """How many of the pictures an MPF index (``mp``: Pillow's ``info["mp"]``) lists are a camera's previews
    (:data:`MP_PREVIEWS`); 0 where it lists none or does not parse."""
    try:
        return sum((attribute & 0xFFFFFF) in MP_PREVIEWS for attribute, _, _ in _mp_entries(mp))  # type: ignore[arg-type]
    except (struct.error, TypeError, ValueError, IndexError):
        return 0


def _mpf_offset(path: Path) -> int:
    """Where the MPF index's offsets count from in the JPEG ``path``: its TIFF header, after the APP2 segment's
    ``MPF\0`` (Pillow gives it for a JPEG, and drops it for a file it opens as a multi-picture MPO: an iPhone's)."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    for marker, at, _ in _leading(head):  # (after a comment too: classsr's record)
        if marker == 0xE2 and head[at + 4 : at + 8] == b"MPF\x00":
            return at + 8
    raise ValueError("no MPF index")


def read(path: Path, im: Image.Image) -> GainMap | None:
    """The gain map of the opened JPEG ``im`` read from ``path``: where it has an MPF index, its XMP or an ISO 21496-1
    segment says it has a gain map, and its second picture is a JPEG that reads; an iPhone's JPEG's (its XMP's
    ``HDRGainMapVersion``, the second picture Apple's gain map) with the headroom its EXIF or XMP gives
    (:func:`apple_headroom`); else ``None``. (Pillow opens such a
    file as a JPEG, not as a multi-picture MPO, and reads the first picture only.)"""
    xmp = im.info.get("xmp")
    mp = im.info.get("mp")
    xmp = xmp if isinstance(xmp, bytes) else None
    apple = xmp is not None and b"HDRGainMapVersion" in xmp  # an iPhone's JPEG: Apple's gain map, said by its XMP
    if not isinstance(mp, bytes) or not ((xmp and any(m in xmp for m in _MARKS)) or _app2(im) or apple):
        return None
    try:
        entries = _mp_entries(mp)
        _, size, offset = entries[1]
        with path.open("rb") as f:
            f.seek(offset + (int(im.info["mpoffset"]) if "mpoffset" in im.info else _mpf_offset(path)))
            blob = f.read(size)
        with Image.open(io.BytesIO(blob), formats=["JPEG"]) as g:
            g.load()
            pixels = np.asarray(g if g.mode == "L" else g.convert("RGB"))
            gxmp = g.info.get("xmp")
            iso = _app2(g)
    except Exception:  # a second picture that is not a gain map after all: the picture alone
        return None
    gxmp = gxmp if isinstance(gxmp, bytes) else None
    if (gxmp is not None and APPLE_AUX in gxmp) or (apple and not iso and not (gxmp and b"hdrgm:" in gxmp)):
        exif = im.info.get("exif")
        headroom = apple_headroom(exif if isinstance(exif, bytes) else None, xmp)
        if headroom is None or headroom <= 1.0 or pixels.ndim != 2:  # (Apple's are gray)
            return None
        return GainMap(pixels[..., None], None, (), (), im.size, apple_headroom=headroom, apple_xmp=_apple_aux_xmp(xmp))
    return GainMap(pixels.reshape(pixels.shape[0], pixels.shape[1], -1), gxmp, iso, _app2(im), im.size)


#: The version an iPhone JPEG's XMP gives its gain map (``HDRGainMapVersion``, as an attribute or an element).
_VERSION = re.compile(rb"HDRGainMap:HDRGainMapVersion(?:\s*=\s*[\"']|>)\s*(\d+)")


def _apple_aux_xmp(xmp: bytes | None) -> bytes | None:
    """The XMP an iPhone HEIC gives its gain map (its auxiliary image), made from an iPhone JPEG picture's ``xmp``,
    which gives its version (the JPEG's gain map picture names its type alone); ``None`` where it gives none."""
    found = _VERSION.search(xmp or b"")
    if found is None:
        return None
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description rdf:about="" xmlns:HDRGainMap="http://ns.apple.com/HDRGainMap/1.0/">'
            b"<HDRGainMap:HDRGainMapVersion>" + found.group(1) + b"</HDRGainMap:HDRGainMapVersion>"
            b"</rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip


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


def _leading(jpeg: bytes) -> Iterator[tuple[int, int, int]]:
    """A JPEG's leading APPn and COM segments (those before its tables and frame), as far as ``jpeg`` holds them: each
    one's marker (``0xE1``: APP1), where it starts (its ``0xFF``) and where it ends."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and (0xE0 <= jpeg[at + 1] <= 0xEF or jpeg[at + 1] == 0xFE):
        end = at + 2 + struct.unpack(">H", jpeg[at + 2 : at + 4])[0]
        yield jpeg[at + 1], at, end
        at = end


def _segments_end(jpeg: bytes) -> int:
    """Where a JPEG's leading APPn and COM segments end (the MPF index goes there, after EXIF and XMP)."""
    return max((end for _, _, end in _leading(jpeg)), default=2)


#: The MP attributes (CIPA DC-007) of a multi-view picture that an MPO output carries from each of an MPO's pictures,
#: by tag, with their TIFF types: the panorama's orientation (LONG) and overlaps (RATIONAL), the base viewpoint's
#: number (LONG), the convergence angle (SRATIONAL, degrees), the baseline length (RATIONAL, metres), the vertical
#: divergence (degrees), the axis distances X, Y and Z (metres) and the yaw, pitch and roll angles (degrees), SRATIONAL.
VIEW_TAGS = {0xB201: 4, 0xB202: 5, 0xB203: 5, 0xB204: 4, 0xB205: 10, 0xB206: 5, **dict.fromkeys(range(0xB207, 0xB20E), 10)}

#: A picture's MP attributes: ``(tag, type, value)``, the value big-endian (:data:`VIEW_TAGS`).
Attributes = tuple[tuple[int, int, bytes], ...]


def view_attributes(mp: object) -> Attributes:
    """A picture's MP attributes of its view (:data:`VIEW_TAGS`) in its MPF segment (``mp``: the APP2 segment's data
    after ``MPF\0``; Pillow's ``info["mp"]`` for the first picture, where they follow its index); none where it has
    none or they do not parse."""
    try:
        data: bytes = mp  # type: ignore[assignment]
        order = "<" if data[:2] == b"II" else ">"
        (at,) = struct.unpack(order + "I", data[4:8])
        out: list[tuple[int, int, bytes]] = []
        for _ in range(2):  # the first picture's index IFD, then its attribute IFD; another picture's attribute IFD
            (count,) = struct.unpack(order + "H", data[at : at + 2])
            for k in range(count):
                tag, kind, n, value = struct.unpack(order + "HHII", data[at + 2 + 12 * k : at + 14 + 12 * k])
                if VIEW_TAGS.get(tag) == kind and n == 1:
                    if kind == 4:
                        out.append((tag, kind, struct.pack(">I", value)))
                    else:
                        numbers = struct.unpack(order + ("ii" if kind == 10 else "II"), data[value : value + 8])
                        out.append((tag, kind, struct.pack(">ii" if kind == 10 else ">II", *numbers)))
            (at,) = struct.unpack(order + "I", data[at + 2 + 12 * count : at + 6 + 12 * count])  # the next IFD
            if not at:
                break
        return tuple(out)
    except (struct.error, TypeError, ValueError, IndexError):
        return ()


#: How much of a picture's start :func:`picture_meta` reads: its leading segments (an APP1 holds at most 64 KiB).
_LEADING = 1 << 18


def picture_meta(path: Path, mp: object, k: int) -> tuple[Attributes, bytes | None]:
    """Picture ``k`` (after the first) of the MPO ``path`` whose first picture's MPF index is ``mp`` (Pillow's
    ``info["mp"]``): its own MP attributes (:func:`view_attributes`) and XMP, read from its leading segments, which
    Pillow does not read (it gives another picture's EXIF alone); none where it has none or they do not read."""
    try:
        offset = _mp_entries(mp)[k][2] + _mpf_offset(path)  # type: ignore[arg-type]
        with path.open("rb") as f:
            f.seek(offset)
            head = f.read(_LEADING)
    except (OSError, struct.error, TypeError, ValueError, IndexError):
        return (), None
    attributes: Attributes = ()
    xmp = None
    for marker, at, end in _leading(head) if head[:2] == b"\xff\xd8" else ():
        body = head[at + 4 : end]
        if marker == 0xE2 and body.startswith(b"MPF\x00"):
            attributes = view_attributes(body[4:])
        elif marker == 0xE1 and body.startswith(XMP_HEADER) and xmp is None:
            xmp = body[len(XMP_HEADER) :] or None
    return attributes, xmp


def _attribute_ifd(number: int, attributes: Attributes, at: int) -> bytes:
    """An MP attribute IFD (CIPA DC-007) at TIFF offset ``at``: the MPF version, the picture's individual ``number``
    and its view's ``attributes`` (:func:`view_attributes`; a base viewpoint of 1 where they give none), values of
    more than four bytes after it; big-endian."""
    tags = {0xB000: (7, b"0100"), 0xB101: (4, struct.pack(">I", number)), 0xB204: (4, struct.pack(">I", 1))}
    tags.update({tag: (kind, value) for tag, kind, value in attributes})
    entries, data = b"", b""
    after = at + 2 + 12 * len(tags) + 4
    for tag in sorted(tags):
        kind, value = tags[tag]
        count = 4 if kind == 7 else 1
        if len(value) <= 4:
            entries += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            entries += struct.pack(">HHII", tag, kind, count, after + len(data))
            data += value
    return struct.pack(">H", len(tags)) + entries + struct.pack(">I", 0) + data


def _with_attributes(picture: bytes, number: int, attributes: Attributes) -> bytes:
    """The JPEG ``picture`` (a stereo MPO's view after the first) with an MPF APP2 segment holding its MP attribute
    IFD (:func:`_attribute_ifd`), after its leading segments."""
    at = _segments_end(picture)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + _attribute_ifd(number, attributes, 8)
    return picture[:at] + b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(tiff)) + b"MPF\x00" + tiff + picture[at:]


def jpeg_with(primary: bytes, *others: bytes, types: tuple[int, ...] = (0x030000, 0),
              attributes: tuple[Attributes, ...] | None = None) -> bytes:
    """The JPEG ``primary`` followed by the JPEGs ``others`` (an HDR gain map; a stereo MPO's other views), indexed by
    an MPF APP2 segment as CIPA DC-007 and Ultra HDR lay it out (big-endian; offsets from the MPF header; ``types``:
    each picture's attribute, the last repeated for those past it; by default the primary a "baseline MP primary
    image", the others undefined). With ``attributes`` (a stereo MPO's, each picture's: :func:`view_attributes`;
    none known for those past them), every picture gets its MP attribute IFD (:func:`_attribute_ifd`), numbered
    from 1, as a stereo camera writes."""
    if attributes is not None:
        each = [attributes[k] if k < len(attributes) else () for k in range(1 + len(others))]
        others = tuple(_with_attributes(p, k + 2, each[k + 1]) for k, p in enumerate(others))
    at = _segments_end(primary)
    count = 1 + len(others)
    index = 8 + 2 + 3 * 12 + 4 + 16 * count  # the TIFF header, an IFD of three tags, the entries
    own = b"" if attributes is None else _attribute_ifd(1, each[0], index)
    length = index + len(own)
    size = len(primary) + 2 + 2 + 4 + length  # the segment: marker, length, "MPF\0", the TIFF
    tiff_at = at + 8
    kinds = [types[min(k, len(types) - 1)] for k in range(count)]
    entries = struct.pack(">IIIHH", kinds[0], size, 0, 0, 0)
    offset = size - tiff_at
    for kind, picture in zip(kinds[1:], others, strict=True):
        entries += struct.pack(">IIIHH", kind, len(picture), offset, 0, 0)
        offset += len(picture)
    ifd = struct.pack(">H", 3) + struct.pack(">HHI4s", 0xB000, 7, 4, b"0100") + struct.pack(">HHII", 0xB001, 4, 1, count)
    ifd += struct.pack(">HHII", 0xB002, 7, len(entries), 8 + 2 + 3 * 12 + 4) + struct.pack(">I", index if own else 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd + entries + own
    segment = b"\xff\xe2" + struct.pack(">H", 2 + 4 + len(tiff)) + b"MPF\x00" + tiff
    assert len(tiff) == length
    return primary[:at] + segment + primary[at:] + b"".join(others)


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


#: Apple's maker note: its name, a version, then a TIFF byte order and an IFD whose offsets count from the note's start.
_APPLE_NOTE = b"Apple iOS\x00"
#: The XMP property iOS writes the headroom in (16 on), as an attribute or an element.
_HEADROOM_XMP = re.compile(rb"HDRGainMapHeadroom(?:=[\"']|>)\s*([0-9.eE+-]+)")
_EXIF_IFD, _MAKER_NOTE = 0x8769, 0x927C


def _apple_note(note: bytes) -> dict[int, float]:
    """The numbers (rational, float or integer) of an Apple maker note's IFD, by tag."""
    if not note.startswith(_APPLE_NOTE) or len(note) < 16 or note[12:14] not in (b"MM", b"II"):
        return {}
    order = ">" if note[12:14] == b"MM" else "<"
    out: dict[int, float] = {}
    try:
        (count,) = struct.unpack_from(order + "H", note, 14)
        for k in range(min(count, 512)):
            tag, kind, n, value = struct.unpack_from(order + "HHI4s", note, 16 + 12 * k)
            if n != 1:
                continue
            if kind in (5, 10):  # (signed) rational: at an offset from the note's start
                (at,) = struct.unpack(order + "I", value)
                num, den = struct.unpack_from(order + ("ii" if kind == 10 else "II"), note, at)
                if den:
                    out[tag] = num / den
            elif kind == 11:
                out[tag] = struct.unpack(order + "f", value)[0]
            elif kind in (3, 4, 8, 9):
                out[tag] = float(struct.unpack(order + {3: "H2x", 4: "I", 8: "h2x", 9: "i"}[kind], value)[0])
    except struct.error:
        pass
    return out


def apple_headroom(exif: bytes | None, xmp: bytes | None) -> float | None:
    """The headroom of an iPhone photo's gain map: from its XMP (``HDRGainMap:HDRGainMapHeadroom``), else from its
    EXIF's Apple maker note (tags 33 and 48, by Apple's published formula); ``None`` where neither says."""
    if xmp and (m := _HEADROOM_XMP.search(xmp)):
        try:
            value = float(m.group(1))
        except ValueError:
            value = 0.0
        if np.isfinite(value) and value >= 1.0:
            return value
    if not exif:
        return None
    ex = Image.Exif()
    try:
        with warnings.catch_warnings():  # (Pillow's warning of a damaged EXIF: no headroom, said by the note)
            warnings.simplefilter("ignore")
            ex.load(exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
            note = ex.get_ifd(_EXIF_IFD).get(_MAKER_NOTE)
    except Exception:  # a damaged EXIF: no headroom
        return None
    values = _apple_note(note) if isinstance(note, bytes) else {}
    if 33 not in values or 48 not in values:
        return None
    m33, m48 = values[33], values[48]
    if m33 < 1.0:
        stops = -20.0 * m48 + 1.8 if m48 <= 0.01 else -0.101 * m48 + 1.601
    else:
        stops = -70.0 * m48 + 3.0 if m48 <= 0.01 else -0.303 * m48 + 2.303
    return float(2.0 ** max(stops, 0.0)) if np.isfinite(stops) else None


def read_apple(path: Path, exif: bytes | None, xmp: bytes | None) -> GainMap | None:
    """An iPhone HEIC's gain map (its first auxiliary image of type :data:`APPLE_AUX`, decoded by libheif) with the
    headroom its EXIF or XMP gives (:func:`apple_headroom`); ``None`` where it has none, or no headroom above 1 (the
    gain map would brighten nothing)."""
    headroom = apple_headroom(exif, xmp)
    if headroom is None or headroom <= 1.0:
        return None
    try:
        import pillow_heif

        saved, pillow_heif.options.AUX_IMAGES = pillow_heif.options.AUX_IMAGES, True  # (classsr's opener: off)
        try:
            heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=True)
        finally:
            pillow_heif.options.AUX_IMAGES = saved
        ids = heif.info.get("aux", {}).get(APPLE_AUX.decode(), [])
        if not ids:
            return None
        with heif.get_aux_image(ids[0]).to_pillow() as g:
            pixels = np.asarray(g.convert("L"))
        size = heif.size
        pixels = _turned_as_primary(heifbox.head(path), ids[0], pixels)
        own = heifbox.xmp_of(path.read_bytes(), ids[0])  # (its version, which the picture's XMP does not give)
    except Exception:  # libheif cannot decode it: the picture alone, as before
        return None
    if not _covers(pixels, size):
        return None
    return GainMap(pixels[..., None], None, (), (), size, apple_headroom=headroom, apple_xmp=own or _apple_aux_xmp(xmp))


def read_iso(path: Path, size: tuple[int, int]) -> GainMap | None:
    """An ISO 21496-1 gain map of a HEIF or AVIF ``path`` whose picture is ``size`` (``(width, height)``, as opened; a
    ``tmap`` item: a Samsung's or iOS 18's HEIC, Lightroom's or Chrome's AVIF, :func:`heifbox.tone_map`): the gain map
    decoded as the primary picture of a copy of the file (:func:`heifbox.with_primary`) and turned as the picture is,
    its metadata (the ``tmap`` item's data: a version byte, then what a JPEG's ISO 21496-1 segment holds) carried for
    a JPEG output; ``None`` where there is none, or it does not decode."""
    try:
        data = path.read_bytes()
        found = heifbox.tone_map(data)
        if found is None or len(found[0]) < 5 or found[0][0] != 0:  # (version 0, the one there is)
            return None
        metadata, gain, kind, alternate = found
        copy = heifbox.with_primary(data, gain)
        if kind == b"av01":  # (as stored: turned with the picture by the EXIF orientation Pillow gives)
            with Image.open(io.BytesIO(copy), formats=["AVIF"]) as g:
                g.load()
                pixels = np.asarray(g if g.mode == "L" else g.convert("RGB"))
        else:  # (libheif turns the picture: the gain map turned alike)
            import pillow_heif

            with pillow_heif.open_heif(io.BytesIO(copy), convert_hdr_to_8bit=True).to_pillow() as g:
                pixels = _turned_as_primary(data, gain, np.asarray(g if g.mode == "L" else g.convert("RGB")))
    except Exception:  # a gain map this cannot read: the picture alone, as before
        return None
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1)
    if not _covers(pixels, size):
        return None
    return GainMap(pixels, None, (ISO_URN + metadata[1:],), (ISO_URN + metadata[1:5],), size, alternate=alternate)


def tone_map_data(gain: GainMap) -> bytes | None:
    """``gain``'s ISO 21496-1 metadata as a HEIF's ``tmap`` item holds it (version 0, then what its JPEG segment holds
    after the name: :func:`read_iso` in reverse), else made from its Ultra HDR XMP (:func:`_iso_from_xmp`; an iPhone's
    from the Ultra HDR one it makes, :func:`ultra_hdr`); ``None`` where neither gives metadata a reader takes."""
    if gain.apple_headroom is not None:  # (the Ultra HDR XMP ultra_hdr gives it; its pixels are not needed here)
        return _iso_from_xmp(_apple_xmp(gain.apple_headroom))
    whole = [seg for seg in gain.iso if seg.startswith(ISO_URN) and len(seg) > len(ISO_URN) + 4]
    if whole and _iso_valid(data := b"\x00" + whole[0][len(ISO_URN) :]):
        return data
    return _iso_from_xmp(gain.xmp) if gain.xmp else None


#: Ultra HDR's XMP namespace (Adobe's gain map specification), and its properties' values where it leaves them out.
_HDRGM = "http://ns.adobe.com/hdr-gain-map/1.0/"
_HDRGM_DEFAULTS = {"GainMapMin": "0", "Gamma": "1", "OffsetSDR": str(1 / 64), "OffsetHDR": str(1 / 64),
                   "HDRCapacityMin": "0", "BaseRenditionIsHDR": "False"}  # fmt: skip


def _hdrgm(xmp: bytes) -> dict[str, list[str]]:
    """The ``hdrgm`` properties of an XMP packet: each one's values (one, or a channel's each in an ``rdf:Seq``), as an
    attribute or an element."""
    out: dict[str, list[str]] = {}
    within: list[str | None] = []  # the hdrgm property each open element is part of
    text: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        for key, value in attrs.items():
            space, _, local = key.rpartition(" ")
            if space == _HDRGM:
                out.setdefault(local, []).append(value)
        space, _, local = name.rpartition(" ")
        within.append(local if space == _HDRGM else within[-1] if within else None)
        text.clear()

    def end(name: str) -> None:
        prop, value = within.pop(), "".join(text).strip()
        if prop is not None and value:  # (the property's own text, or an rdf:li's in it)
            out.setdefault(prop, []).append(value)
        text.clear()

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text.append
    xmp_io.parse(parser, xmp)
    return out


def _iso_from_xmp(xmp: bytes) -> bytes | None:
    """ISO 21496-1 metadata (a ``tmap`` item's data) that brightens as ``xmp``'s Ultra HDR description of a gain map
    says, as libultrahdr converts one: its range, gamma and offsets per channel, HDR capacity as the headrooms (all
    in stops but the gamma and offsets), the gain applied in the picture's colours; ``None`` where the XMP does not
    describe one, or one of an HDR picture (whose SDR rendition the gain map would make: not converted here)."""
    try:
        props = _hdrgm(xmp)
        if "Version" not in props or "GainMapMax" not in props or "HDRCapacityMax" not in props:
            return None
        values = {k: [float(v) for v in props.get(k, [_HDRGM_DEFAULTS.get(k, "")])]
                  for k in ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR", "HDRCapacityMin", "HDRCapacityMax")}  # fmt: skip
        if props.get("BaseRenditionIsHDR", ["False"])[0].lower() == "true":
            return None
    except (expat.ExpatError, ValueError):
        return None
    channels = max(len(v) for v in values.values())
    if channels not in (1, 3) or any(len(v) not in (1, channels) for v in values.values()):
        return None
    scale = 1 << 20
    try:
        head = struct.pack(">BHHBIIII", 0, 0, 0, (0x80 if channels == 3 else 0) | 0x40,
                           round(values["HDRCapacityMin"][0] * scale), scale,
                           round(values["HDRCapacityMax"][0] * scale), scale)  # fmt: skip
        data = head + b"".join(struct.pack(">iIiIIIiIiI", *(x for k in ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR")
                                                           for x in (round(values[k][c % len(values[k])] * scale), scale)))
                               for c in range(channels))  # fmt: skip
    except (struct.error, OverflowError, ValueError):  # (out of the fractions' range, negative headroom, NaN)
        return None
    return data if _iso_valid(data) else None


def described(gain: GainMap) -> GainMap:
    """``gain`` with an Ultra HDR XMP (``hdrgm``) made from its ISO 21496-1 metadata where it has none (a HEIC's or
    AVIF's ``tmap`` item), as libultrahdr writes both: readers that know only the XMP (Android 14, older Chrome) show
    the JPEG as HDR too. Left as it is where the metadata is not of an SDR picture (its alternate headroom above the
    base's) or not one a reader takes."""
    data = tone_map_data(gain) if gain.xmp is None and gain.apple_headroom is None else None
    if data is None or struct.unpack_from(">H", data, 1)[0]:
        return gain
    channels = 3 if data[5] & 0x80 else 1
    bn, bd, an, ad = struct.unpack_from(">IIII", data, 6)
    base, alternate = bn / bd, an / ad
    if alternate <= base:
        return gain
    values = [struct.unpack_from(">iIiIIIiIiI", data, 22 + 40 * c) for c in range(channels)]
    names = ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR")
    per = {name: [f"{v[2 * k] / v[2 * k + 1]:.6g}" for v in values] for k, name in enumerate(names)}
    attributes = "".join(f' hdrgm:{k}="{v[0]}"' for k, v in per.items() if len(set(v)) == 1)
    elements = "".join(f"<hdrgm:{k}><rdf:Seq>{''.join(f'<rdf:li>{x}</rdf:li>' for x in v)}</rdf:Seq></hdrgm:{k}>"
                       for k, v in per.items() if len(set(v)) > 1)  # fmt: skip
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           f'<rdf:Description xmlns:hdrgm="{_HDRGM}" hdrgm:Version="1.0"{attributes} hdrgm:HDRCapacityMin="{base:.6g}" '
           f'hdrgm:HDRCapacityMax="{alternate:.6g}" hdrgm:BaseRenditionIsHDR="False">{elements}</rdf:Description>'
           "</rdf:RDF></x:xmpmeta>")  # fmt: skip
    return replace(gain, xmp=xmp.encode())


def _iso_valid(data: bytes) -> bool:
    """Whether ``data`` (a ``tmap`` item's) is ISO 21496-1 metadata as libavif checks it, which refuses to show an
    AVIF whose ``tmap`` item fails (where a JPEG reader leaves a segment it cannot read): version 0; where its minimum
    version is 0 (else a reader leaves it), its flags, two headrooms and one or three channels' five fractions (a
    writer version of 0: nothing after them), each denominator above 0, the gamma too, the range's top not under its
    bottom."""
    if len(data) < 5 or data[0] != 0:
        return False
    minimum, writer = struct.unpack_from(">HH", data, 1)
    if minimum:
        return True
    channels = 3 if len(data) > 5 and data[5] & 0x80 else 1
    need = 6 + 16 + 40 * channels
    if len(data) < need or (writer == 0 and len(data) != need):
        return False
    headrooms = struct.unpack_from(">IIII", data, 6)
    fractions = [struct.unpack_from(">iIiIIIiIiI", data, 22 + 40 * c) for c in range(channels)]
    return (all(headrooms[1::2]) and all(all(f[1::2]) and f[4] > 0 for f in fractions)
            and all(f[2] / f[3] >= f[0] / f[1] for f in fractions))  # fmt: skip


def _covers(pixels: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether a gain map of ``pixels`` has the shape of a picture of ``size`` (``(width, height)``): turned as it is."""
    return bool(abs(np.log(pixels.shape[1] / pixels.shape[0] * size[1] / size[0])) <= 0.1)


def _turned_as_primary(heif: bytes, item: int, pixels: np.ndarray) -> np.ndarray:
    """The auxiliary image ``item``'s decoded ``pixels`` turned as libheif turns the primary picture (its ``irot``
    and ``imir``, in their order: a portrait photo's quarter turn), where the auxiliary image has no turn of its own
    (which libheif would have applied): the gain map covers the picture as it shows (libavif reads an auxiliary
    image so)."""
    turns = (b"irot", b"imir")
    if heifbox.primary_properties(heif, turns, item):
        return pixels
    for box in heifbox.primary_properties(heif, turns):
        if box[4:8] == b"irot":
            pixels = np.rot90(pixels, box[8] & 3)  # anticlockwise, in quarter turns
        else:
            pixels = np.flipud(pixels) if box[8] & 1 == 0 else np.fliplr(pixels)  # axis 0: top and bottom exchanged
    return np.ascontiguousarray(pixels)


#: The Ultra HDR XMP of a gain map made from an Apple one (:func:`ultra_hdr`): its range in stops, gamma 1, no offsets.
_GAIN_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" '
             b'hdrgm:GainMapMin="0" hdrgm:GainMapMax="%.6f" hdrgm:Gamma="1" hdrgm:OffsetSDR="0" hdrgm:OffsetHDR="0" '
             b'hdrgm:HDRCapacityMin="0" hdrgm:HDRCapacityMax="%.6f" hdrgm:BaseRenditionIsHDR="False"/>'
             b"</rdf:RDF></x:xmpmeta>")  # fmt: skip


def apple_gain(values: np.ndarray, headroom: float) -> np.ndarray:
    """How much brighter (linear) an Apple gain map's 8-bit ``values`` make the picture: 1 + (headroom - 1) x the
    value decoded by Rec. 709's transfer (as Apple's document gives it)."""
    v = np.asarray(values, np.float64) / 255.0
    linear = np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))
    return 1.0 + (headroom - 1.0) * linear


def ultra_hdr(gain: GainMap) -> GainMap:
    """An Apple gain map as an Ultra HDR one that brightens alike: each value re-coded as the gain's share of the
    headroom in stops (``log2(gain) / log2(headroom)``), its XMP giving that range; an Ultra HDR one as it is."""
    if gain.apple_headroom is None:
        return gain
    stops = float(np.log2(gain.apple_headroom))
    table = np.rint(np.log2(apple_gain(np.arange(256), gain.apple_headroom)) / stops * 255.0)
    pixels = np.clip(table, 0, 255).astype(np.uint8)[gain.pixels]
    return replace(gain, pixels=pixels, xmp=_apple_xmp(gain.apple_headroom), iso=(), primary_iso=(), apple_headroom=None)


def _apple_xmp(headroom: float) -> bytes:
    """The Ultra HDR XMP of an Apple gain map of ``headroom`` made Ultra HDR's (:func:`ultra_hdr`)."""
    stops = float(np.log2(headroom))
    return _GAIN_XMP % (stops, stops)


#: A container directory's picture item (``rdf:li``) as Ultra HDR and Motion Photo writers write it.
_PRIMARY_ITEM = re.compile(rb'<rdf:li\b[^>]*>\s*<Container:Item\b[^>]*\bItem:Semantic="Primary"[^>]*?'
                           rb"(?:/>|>\s*</Container:Item>)\s*</rdf:li>")  # fmt: skip
_GAIN_ITEM = (b'<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" '
              b'Item:Length="0"/></rdf:li>')  # fmt: skip


def with_directory(xmp: bytes | None) -> bytes:
    """A picture's XMP with Ultra HDR's description of its gain map (``hdrgm:Version`` and a container directory)
    beside its own properties, where it has none (an iPhone's, whose gain map was another file's item); where it has
    a directory already (a Motion Photo's), the gain map's item put into it after the picture's, as the video comes
    after the gain map in the file."""
    if xmp and b'Item:Semantic="GainMap"' in xmp:
        return xmp
    if not xmp or b"</rdf:RDF>" not in xmp:
        return _XMP
    if b"Container:Directory" in xmp and (item := _PRIMARY_ITEM.search(xmp)) is not None:
        xmp = xmp[: item.end()] + _GAIN_ITEM + xmp[item.end() :]
        own = b"" if b"hdrgm:Version" in xmp else (b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" '
                                                   b'hdrgm:Version="1.0"/>')  # fmt: skip
    else:
        own = _XMP[_XMP.index(b"<rdf:Description") : _XMP.index(b"</rdf:RDF>")]
    at = xmp.rindex(b"</rdf:RDF>")
    return xmp[:at] + own + xmp[at:]


def heif_with(heif: bytes, gain: GainMap, fmt: str, **options: Any) -> bytes:
    """The HEIC or AVIF (``fmt``: ``HEIF``, ``AVIF``) ``heif`` with the gain map ``gain``, coded by libheif or libavif
    (Pillow's) with the encoder's ``options`` (``quality``, ``speed``, ``enc_params``: the picture's), as an ISO
    21496-1 ``tmap`` item and its gain map image (:func:`~classsr_cli.io.heifbox.add_tone_map`), tagged as libavif
    tags a gain map (no colour primaries or transfer: its values are gains, not colours); an iPhone's (into a HEIC
    alone) both as its auxiliary image (:data:`APPLE_AUX`, :func:`~classsr_cli.io.heifbox.add_auxiliary`, described
    by its own XMP: :attr:`GainMap.apple_xmp`), which
    Apple's readers apply, and made an ISO one (:func:`ultra_hdr`), which others apply, as iOS 18 writes both."""
    from classsr_cli.io import bmff

    if gain.apple_headroom is not None:
        heif = heifbox.add_auxiliary(heif, _coded(gain, fmt, options), APPLE_AUX, gain.apple_xmp)
        gain = ultra_hdr(gain)
    data = tone_map_data(gain)
    if data is None:
        raise ValueError("a gain map without ISO 21496-1 metadata")
    coded = _coded(gain, fmt, options)
    nclx = [box for box in heifbox.primary_properties(coded, (b"colr",)) if box[8:12] == b"nclx"]
    matrix, full = (nclx[0][16:18], nclx[0][18] & 0x80) if nclx else (b"\x00\x06", 0x80)
    gains = heifbox.with_properties(coded, [bmff.box(b"colr", b"nclx\x00\x02\x00\x02" + matrix + bytes([full]))])
    return heifbox.add_tone_map(heif, gains, data, gain.alternate)


def _coded(gain: GainMap, fmt: str, options: dict[str, Any]) -> bytes:
    """``gain``'s pixels coded as a picture of ``fmt`` (``HEIF``, ``AVIF``) with the encoder's ``options``."""
    arr = np.ascontiguousarray(gain.pixels[..., 0] if gain.pixels.shape[2] == 1 else gain.pixels)
    coded = io.BytesIO()
    if fmt == "AVIF":
        Image.fromarray(arr).save(coded, format="AVIF", **options)
    else:
        import pillow_heif

        mode = "L" if arr.ndim == 2 else "RGB"
        pillow_heif.from_bytes(mode=mode, size=(arr.shape[1], arr.shape[0]), data=arr.tobytes()).save(coded, **options)
    return coded.getvalue()
