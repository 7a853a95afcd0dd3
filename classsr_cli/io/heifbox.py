"""HEIF files edited at the box level: an auxiliary image added (how a HEIC output keeps an iPhone photo's HDR gain map),
properties given to the primary picture (its HDR light levels, which libheif neither reads nor writes here), EXIF and
XMP items added (to an AVIF ffmpeg wrote); an ISO 21496-1 gain map's items found (:func:`tone_map`) and its image
made the primary picture of a copy, to be decoded so, or added to a picture (:func:`add_tone_map`).

libheif (through pillow_heif) writes a picture and reads auxiliary images but writes none, so the gain map is encoded
as a HEIC of its own and its coded image moved into the picture's file as a new item: its item information (hidden,
as cameras write it), its properties (``hvcC``, ``ispe``, ... and an ``auxC`` naming its type), an ``auxl`` reference
to the primary picture, and its data in a ``mdat`` box of its own at the end; the item locations are rewritten, as the
``meta`` box grows, for the data that follows it (ISO/IEC 23008-12, ISO/IEC 14496-12).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from classsr_cli.io import bmff

__all__ = ["Coded", "ToneMap", "add_auxiliary", "add_metadata", "add_tone_map", "head", "primary_coded", "primary_kind",
           "primary_properties", "tone_map", "with_primary", "with_properties"]

_T = TypeVar("_T")

#: How much of a HEIF file :func:`head` reads: its ``meta`` box comes first, a few kB.
HEAD = 1 << 20


def head(path: str | os.PathLike[str]) -> bytes:
    """The first :data:`HEAD` bytes of the HEIF file ``path``, where its properties are (none where it cannot be
    read): what :func:`primary_properties` reads."""
    try:
        with open(path, "rb") as f:
            return f.read(HEAD)
    except OSError:
        return b""


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The boxes in ``data[start:end]`` (:func:`~classsr_cli.io.bmff.boxes`): (type, where it starts, where it ends);
    ``ValueError`` where one does not fit (rebuilt from what was read, the box would lose the rest)."""
    out = [(kind, at, at + size) for kind, at, size, _ in bmff.boxes(data, start, end)]
    if (out[-1][2] if out else start) + 8 <= end:
        raise ValueError(f"a damaged HEIF box at {out[-1][2] if out else start}")
    return out


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big") if size else 0


@dataclass
class _Item:
    """One item's location (``iloc``): its construction method, data reference, base and extents."""

    item: int
    method: int
    reference: int
    base: int
    extents: list[tuple[int, int, int]] = field(default_factory=list)  # (index, offset, length)


@dataclass
class _Meta:
    """A HEIF file's ``meta`` box, parsed as far as adding an item needs."""

    version_flags: bytes
    boxes: list[tuple[bytes, bytes]]  # (type, the whole box), in order
    primary: int
    locations: list[_Item]
    iloc_version: int
    index_size: int
    ipco: list[bytes]  # the property boxes, whole
    ipma_version: int
    ipma_flags: int
    associations: list[tuple[int, list[tuple[bool, int]]]]  # (item, [(essential, property index from 1)])
    infe: list[bytes]  # the item information entries, whole
    iinf_version: int
    references: list[tuple[bytes, int, tuple[int, ...]]] = field(default_factory=list)  # added: (type, from, to items)


def _parse_meta(data: bytes, start: int, end: int) -> _Meta:
    boxes, primary, locations, iloc_version, index_size = [], 0, [], 0, 0
    ipco: list[bytes] = []
    ipma_version = ipma_flags = iinf_version = 0
    associations: list[tuple[int, list[tuple[bool, int]]]] = []
    infe: list[bytes] = []
    for kind, a, b in _children(data, start + 12, end):
        boxes.append((kind, data[a:b]))
        version = data[a + 8]
        if kind == b"pitm":
            primary = _uint(data, a + 12, 2 if version == 0 else 4)
        elif kind == b"iloc":
            iloc_version = version
            at = a + 12
            offset_size, length_size = data[at] >> 4, data[at] & 15
            base_size, index_size = data[at + 1] >> 4, (data[at + 1] & 15) if version in (1, 2) else 0
            at += 2
            count = _uint(data, at, 2 if version < 2 else 4)
            at += 2 if version < 2 else 4
            if at + 6 * count > b:  # (each item's ID, data reference and extent count at least: a damaged count)
                raise ValueError("a damaged HEIF item location box")
            for _ in range(count):
                item = _uint(data, at, 2 if version < 2 else 4)
                at += 2 if version < 2 else 4
                method = 0
                if version in (1, 2):
                    method = _uint(data, at, 2) & 15
                    at += 2
                reference = _uint(data, at, 2)
                base = _uint(data, at + 2, base_size)
                at += 2 + base_size
                n = _uint(data, at, 2)
                at += 2
                if at + n * (index_size + offset_size + length_size) > b:
                    raise ValueError("a damaged HEIF item location box")
                extents = []
                for _ in range(n):
                    index = _uint(data, at, index_size)
                    at += index_size
                    offset, length = _uint(data, at, offset_size), _uint(data, at + offset_size, length_size)
                    at += offset_size + length_size
                    extents.append((index, offset, length))
                locations.append(_Item(item, method, reference, base, extents))
            if at > b:
                raise ValueError("a damaged HEIF item location box")
        elif kind == b"iinf":
            iinf_version = version
            first = a + 12 + (2 if version == 0 else 4)
            infe = [data[x:y] for k, x, y in _children(data, first, b) if k == b"infe"]
        elif kind == b"iprp":
            for k, x, y in _children(data, a + 8, b):
                if k == b"ipco":
                    ipco = [data[p:q] for _, p, q in _children(data, x + 8, y)]
                elif k == b"ipma" and associations:  # (libheif writes one: a second is not carried over)
                    raise ValueError("a HEIF file with more than one property association box")
                elif k == b"ipma":
                    ipma_version, ipma_flags = data[x + 8], _uint(data, x + 9, 3)
                    at, count = x + 16, _uint(data, x + 12, 4)
                    if at + 3 * count > y:  # (each entry's item ID and count at least: a damaged count)
                        raise ValueError("a damaged HEIF property association box")
                    for _ in range(count):
                        item = _uint(data, at, 2 if ipma_version < 1 else 4)
                        at += 2 if ipma_version < 1 else 4
                        n, at = data[at], at + 1
                        props = []
                        for _ in range(n):
                            if ipma_flags & 1:
                                v, at = _uint(data, at, 2), at + 2
                                props.append((bool(v >> 15), v & 0x7FFF))
                            else:
                                v, at = data[at], at + 1
                                props.append((bool(v >> 7), v & 0x7F))
                        associations.append((item, props))
    if not primary or not locations or not ipco:
        raise ValueError("a HEIF file without a primary item, its locations or its properties")
    return _Meta(data[start + 8 : start + 12], boxes, primary, locations, iloc_version, index_size, ipco, ipma_version,
                 ipma_flags, associations, infe, iinf_version)  # fmt: skip


def _iloc(meta: _Meta, size: int) -> bytes:
    """The item location box of ``meta``'s items, offsets and lengths in ``size`` bytes, base offsets none."""
    version = meta.iloc_version
    out = bytearray([size << 4 | size, meta.index_size if version in (1, 2) else 0])
    width = 2 if version < 2 else 4
    out += len(meta.locations).to_bytes(width, "big")
    for loc in meta.locations:
        out += loc.item.to_bytes(width, "big")
        if version in (1, 2):
            out += loc.method.to_bytes(2, "big")
        out += loc.reference.to_bytes(2, "big") + len(loc.extents).to_bytes(2, "big")
        for index, offset, length in loc.extents:
            out += index.to_bytes(meta.index_size, "big") if version in (1, 2) else b""
            out += offset.to_bytes(size, "big") + length.to_bytes(size, "big")
    return bmff.full_box(b"iloc", bytes(out), version)


def _ipma(meta: _Meta) -> bytes:
    wide = any(i > 0x7F for _, props in meta.associations for _, i in props)
    flags = meta.ipma_flags | (1 if wide else 0)
    out = bytearray(len(meta.associations).to_bytes(4, "big"))
    for item, props in meta.associations:
        out += item.to_bytes(2 if meta.ipma_version < 1 else 4, "big") + bytes([len(props)])
        for essential, index in props:
            out += (essential << 15 | index).to_bytes(2, "big") if flags & 1 else bytes([essential << 7 | index])
    return bmff.full_box(b"ipma", bytes(out), meta.ipma_version, flags)


def _infe(box: bytes) -> tuple[int, bytes]:
    """An item information entry's (version 2 or 3) item ID and type."""
    if box[8] == 3:
        return _uint(box, 12, 4), box[18:22]
    return _uint(box, 12, 2), box[16:20]


def _meta_box(data: bytes) -> tuple[int, int]:
    """Where the top-level ``meta`` box of the HEIF file ``data`` (or of its first bytes: the boxes after it may be
    cut short) starts and ends."""
    for kind, at, size, _ in bmff.boxes(data, 0, len(data)):
        if kind == b"meta":
            return at, at + size
    raise ValueError("not a HEIF file (no whole meta box)")


def _primary_image(data: bytes, *, coded: bool = True) -> tuple[_Meta, int, int, bytes]:
    """A HEIF file's meta box, where it lies, and its primary item's coded data (where ``coded``)."""
    a, b = _meta_box(data)
    meta = _parse_meta(data, a, b)
    if not coded:
        return meta, a, b, b""
    loc = next((x for x in meta.locations if x.item == meta.primary), None)
    if loc is None or loc.method != 0:
        raise ValueError("a HEIF file whose primary item's data is not in the file's boxes")
    return meta, a, b, b"".join(data[loc.base + off : loc.base + off + n] for _, off, n in loc.extents)


#: The content type of a ``mime`` item holding XMP.
_XMP_TYPE = b"application/rdf+xml"


def _new_item(meta: _Meta) -> int:
    """The ID of an item added to ``meta``: one above every ID it uses (16 bits, as the boxes written hold)."""
    new = max(max(loc.item for loc in meta.locations), *(i for i, _ in meta.associations), meta.primary) + 1
    if new > 0xFFFF:
        raise ValueError("a HEIF file with too many items to add one")
    return new


def _moved_image(meta: _Meta, image: bytes, *more: bytes) -> tuple[int, bytes]:
    """``image``'s primary coded image (a HEIF file of one, such as pillow_heif or Pillow writes) made a hidden item of
    ``meta`` (as cameras write a gain map): its item information, its properties and then ``more`` (essential), and a
    location for its data, which the caller puts at the end (:func:`_written`). Its new ID, and its data."""
    other, _, _, coded = _primary_image(image)
    kind = next((t for i, t in map(_infe, other.infe) if i == other.primary), b"hvc1")
    new = _new_item(meta)
    props = [(essential, i) for essential, i in dict(other.associations).get(other.primary, []) if 0 < i <= len(other.ipco)]
    first = len(meta.ipco) + 1
    meta.ipco += [other.ipco[i - 1] for _, i in props] + list(more)
    meta.associations.append((new, [(essential, first + k) for k, (essential, _) in enumerate(props)]
                              + [(True, first + len(props) + k) for k in range(len(more))]))  # fmt: skip
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", new, 0) + kind + b"\x00", 2, 1))  # (flags 1: hidden)
    meta.locations.append(_Item(new, 0, 0, 0, [(0, 0, len(coded))]))
    return new, coded


def _add_auxiliary(heif: bytes, aux: bytes, aux_type: bytes, xmp: bytes | None) -> bytes:
    """:func:`add_auxiliary`, unguarded: ``aux``'s image with an ``auxC`` naming its type, referring (``auxl``) to the
    primary picture, and ``xmp`` describing it."""
    meta, start, end, _ = _primary_image(heif, coded=False)
    new, coded = _moved_image(meta, aux, bmff.full_box(b"auxC", aux_type + b"\x00"))
    meta.references.append((b"auxl", new, (meta.primary,)))
    if not xmp:
        return _written(heif, meta, start, end, coded)
    described = _new_item(meta)
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", described, 0) + b"mime\x00" + _XMP_TYPE + b"\x00", 2))
    meta.references.append((b"cdsc", described, (new,)))
    meta.locations.append(_Item(described, 0, 0, 0, [(0, 0, len(xmp))]))
    return _written(heif, meta, start, end, coded, xmp)


def add_auxiliary(heif: bytes, aux: bytes, aux_type: bytes, xmp: bytes | None = None) -> bytes:
    """``heif`` (a HEIF file) with ``aux``'s primary image (a HEIF file of one coded image, such as pillow_heif
    writes) added as an auxiliary image of ``heif``'s primary picture, of type ``aux_type`` (a URN, such as
    :data:`~classsr_cli.io.gainmap.APPLE_AUX`), with ``xmp`` (a ``mime`` item) describing it, as an iPhone describes
    its gain map. Raises ``ValueError`` for a file it cannot follow."""
    return _followed(_add_auxiliary, heif, aux, aux_type, xmp)


def xmp_of(heif: bytes, item: int) -> bytes | None:
    """The XMP (a ``mime`` item of :data:`_XMP_TYPE`) that describes (``cdsc``) ``item`` of the HEIF file ``heif``
    (an iPhone's gain map's: its version); ``None`` where there is none or the file cannot be followed."""
    try:
        meta = _primary_image(heif, coded=False)[0]
        xmps = {i for i, box in ((_infe(b)[0], b) for b in meta.infe) if _infe(box)[1] == b"mime" and _XMP_TYPE in box}
        for source, to in _references(meta, b"cdsc"):
            if source in xmps and item in to:
                return _item_data(heif, meta, source)
    except (ValueError, IndexError, struct.error):
        pass
    return None


def _add_item(heif: bytes, kind: bytes, data: bytes, content_type: bytes = b"") -> bytes:
    """:func:`add_metadata`'s one item, unguarded: an item of ``kind`` (``content_type``: a ``mime`` item's) holding
    ``data``, described by (``cdsc``) the primary picture."""
    meta, start, end, _ = _primary_image(heif, coded=False)
    new = _new_item(meta)
    named = content_type + b"\x00" if content_type else b""
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", new, 0) + kind + b"\x00" + named, 2))
    meta.references.append((b"cdsc", new, (meta.primary,)))
    meta.locations.append(_Item(new, 0, 0, 0, [(0, 0, len(data))]))
    return _written(heif, meta, start, end, data)


def add_metadata(heif: bytes, exif: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """``heif`` with ``exif`` (a TIFF header on, or ``Exif\\0\\0`` before it) as an ``Exif`` item and ``xmp`` as a
    ``mime`` item (``application/rdf+xml``), each describing its primary picture, as libheif and libavif write them
    (ffmpeg's AVIF writer writes neither). Raises ``ValueError`` for a file it cannot follow."""
    if exif:
        tiff = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        heif = _followed(_add_item, heif, b"Exif", bytes(4) + tiff)  # (no bytes before the TIFF header)
    if xmp:
        heif = _followed(_add_item, heif, b"mime", xmp, _XMP_TYPE)
    return heif


class ToneMap(NamedTuple):
    """A HEIF file's ISO 21496-1 gain map as :func:`tone_map` finds it."""

    data: bytes  # the ``tmap`` item's: a version byte, then the gain map's metadata (ISO 21496-1, C.2.2)
    gain: int  # the gain map image's item
    kind: bytes  # its type: ``hvc1``, ``av01``
    properties: tuple[bytes, ...]  # the ``tmap`` item's own, but its size: its HDR rendition's colour, depth, light


def tone_map(heif: bytes) -> ToneMap | None:
    """The HEIF file ``heif``'s ISO 21496-1 gain map: a ``tmap`` item derived (``dimg``) from its primary picture and
    a gain map image, in that order; ``None`` where it has none, or one this cannot follow."""
    try:
        meta = _primary_image(heif, coded=False)[0]
        kinds = dict(map(_infe, meta.infe))
        for source, to in _references(meta, b"dimg"):
            if kinds.get(source) == b"tmap" and len(to) == 2 and to[0] == meta.primary:
                own = tuple(box for box in _item_properties(meta, source) if box[4:8] != b"ispe")
                return ToneMap(_item_data(heif, meta, source), to[1], kinds.get(to[1], b""), own)
    except (ValueError, IndexError, struct.error):
        pass
    return None


def add_tone_map(heif: bytes, gain: bytes, data: bytes, properties: tuple[bytes, ...] = ()) -> bytes:
    """``heif`` (a HEIF or AVIF file) with an ISO 21496-1 gain map, laid out as libavif writes one: ``gain``'s primary
    image (a file of one coded image, such as pillow_heif or Pillow writes) as a hidden image item, a ``tmap`` item
    holding ``data`` (:attr:`ToneMap.data`) derived from the primary picture and that gain map, in that order, with
    the picture's size and ``properties`` (:attr:`ToneMap.properties`), the two pictures in an ``altr`` group (the
    ``tmap`` one preferred: a reader that knows it shows the HDR rendition, others the picture as before) and the
    ``tmap`` brand among the file's. Raises ``ValueError`` for a file it cannot follow."""
    return _followed(_add_tone_map, heif, gain, data, properties)


def _add_tone_map(heif: bytes, gain: bytes, data: bytes, properties: tuple[bytes, ...]) -> bytes:
    meta, start, end, _ = _primary_image(heif, coded=False)
    image, coded = _moved_image(meta, gain)
    tmap = image + 1
    size = [box for box in _item_properties(meta, meta.primary) if box[4:8] == b"ispe"][:1]  # (a grid's too)
    own = [*size, *properties]
    meta.associations.append((tmap, [(False, len(meta.ipco) + 1 + k) for k in range(len(own))]))
    meta.ipco += own
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", tmap, 0) + b"tmap\x00", 2))
    meta.references.append((b"dimg", tmap, (meta.primary, image)))
    meta.locations.append(_Item(tmap, 0, 0, 0, [(0, 0, len(data))]))
    _grouped(meta, b"altr", (tmap, meta.primary))
    heif, grown = _with_brand(heif, meta, b"tmap")
    return _written(heif, meta, start + grown, end + grown, coded, data)


def _grouped(meta: _Meta, kind: bytes, entities: tuple[int, ...]) -> None:
    """``meta`` with an entity group of ``kind`` (``altr``, ``ster``) of ``entities`` in its ``grpl`` box (made where
    it has none), under an ID no item or other group has (ISO/IEC 14496-12, 8.18.3.3)."""
    at = next((k for k, (box, _) in enumerate(meta.boxes) if box == b"grpl"), None)
    groups = b"" if at is None else meta.boxes[at][1][8:]
    taken = [_uint(groups, a + 12, 4) for _, a, _ in _children(groups, 0, len(groups))]
    group = max([*entities, *(loc.item for loc in meta.locations), *taken]) + 1
    payload = struct.pack(">II", group, len(entities)) + b"".join(struct.pack(">I", e) for e in entities)
    grpl = bmff.box(b"grpl", groups + bmff.full_box(kind, payload))
    if at is None:
        meta.boxes.append((b"grpl", grpl))
    else:
        meta.boxes[at] = (b"grpl", grpl)


#: The properties of a stereo pair's eye that a HEIC output carries as they came: its camera's intrinsics and
#: extrinsics (ISO/IEC 23008-12's ``cmin`` and ``cmex``: the intrinsics in units of the picture's own width and
#: height, so they hold at any size) and Apple's own (``uuid`` boxes: an iPhone's or Vision Pro's spatial photo).
EYE_PROPERTIES = (b"cmin", b"cmex", b"uuid")


class Stereo(NamedTuple):
    """A HEIF file's stereo pair (a ``ster`` entity group) whose left eye is its primary picture: the right eye's item
    and each eye's :data:`EYE_PROPERTIES`, whole."""

    right: int
    left_properties: tuple[bytes, ...]
    right_properties: tuple[bytes, ...]


def stereo(heif: bytes) -> Stereo | None:
    """``heif``'s stereo pair whose left eye is its primary picture (:class:`Stereo`); ``None`` where it has none, or
    it cannot be followed."""
    try:
        meta = _primary_image(heif, coded=False)[0]
        grpl = next((whole for kind, whole in meta.boxes if kind == b"grpl"), None)
        if grpl is None:
            return None
        for kind, a, _ in _children(grpl, 8, len(grpl)):
            count = _uint(grpl, a + 16, 4)
            if kind == b"ster" and count == 2 and _uint(grpl, a + 20, 4) == meta.primary:
                right = _uint(grpl, a + 24, 4)

                def own(item: int) -> tuple[bytes, ...]:
                    return tuple(box for box in _item_properties(meta, item) if box[4:8] in EYE_PROPERTIES)

                return Stereo(right, own(meta.primary), own(right))
    except (ValueError, IndexError, struct.error):
        pass
    return None


def paired(heif: bytes, left: tuple[bytes, ...] = (), right: tuple[bytes, ...] = ()) -> bytes:
    """``heif`` (two pictures, as pillow_heif writes two images: its primary the left eye) with its pictures made a
    stereo pair: a ``ster`` group, left first, each eye given its properties (``left``, ``right``:
    :attr:`Stereo.left_properties`, ..., not essential). Raises ``ValueError`` for a file it cannot follow, or one
    without exactly one other picture shown."""
    return _followed(_paired, heif, left, right)


def _paired(heif: bytes, left: tuple[bytes, ...], right: tuple[bytes, ...]) -> bytes:
    meta, start, end, _ = _primary_image(heif, coded=False)
    tiles = {t for _, to in _references(meta, b"dimg") for t in to}  # (a grid's tiles; a tmap's inputs)
    shown = [item for box in meta.infe for item, kind in (_infe(box),)
             if not box[11] & 1 and item != meta.primary and item not in tiles  # (infe flags 1: hidden)
             and kind in (b"hvc1", b"grid", b"av01")]  # fmt: skip
    if len(shown) != 1:
        raise ValueError(f"a HEIF file with {len(shown) + 1} pictures shown, not a pair")
    _give(meta, meta.primary, list(left))
    _give(meta, shown[0], list(right))
    _grouped(meta, b"ster", (meta.primary, shown[0]))
    return _written(heif, meta, start, end)


def _with_brand(heif: bytes, meta: _Meta, brand: bytes) -> tuple[bytes, int]:
    """``heif`` with ``brand`` among its file type box's compatible brands, and by how many bytes that box grew:
    ``meta``'s locations in the file (after it) moved alike."""
    kind, at, size, header = next(bmff.boxes(heif, 0, len(heif)), (b"", 1, 0, 0))
    if kind != b"ftyp" or at or header != 8:
        raise ValueError("a HEIF file that does not start with a file type box")
    if brand in [heif[k : k + 4] for k in range(16, size, 4)]:
        return heif, 0
    for loc in meta.locations:
        if loc.method == 0:
            loc.base += len(brand)
    return struct.pack(">I", size + len(brand)) + heif[4:size] + brand + heif[size:], len(brand)


def _item_data(heif: bytes, meta: _Meta, item: int) -> bytes:
    """The data of ``meta``'s ``item`` (in the file ``heif``, or in the ``meta`` box's ``idat``: construction methods
    0 and 1); ``ValueError`` where it has none this can read."""
    loc = next((x for x in meta.locations if x.item == item), None)
    if loc is None or loc.method not in (0, 1):
        raise ValueError(f"no data for HEIF item {item} this can read")
    data = heif
    if loc.method == 1:
        idat = next((whole for kind, whole in meta.boxes if kind == b"idat"), None)
        if idat is None:
            raise ValueError("a HEIF item in an idat box the file has not")
        data = idat[8:]
    out = b"".join(data[loc.base + off : loc.base + off + n] for _, off, n in loc.extents)
    if len(out) != sum(n for _, _, n in loc.extents):
        raise ValueError(f"HEIF item {item}'s data cut short")
    return out


def _references(meta: _Meta, kind: bytes) -> list[tuple[int, list[int]]]:
    """``meta``'s item references of ``kind`` (``dimg``, ``auxl``, ...): (from item, to items), in its ``iref``'s
    order; ``ValueError`` for one cut short."""
    iref = next((whole for k, whole in meta.boxes if k == b"iref"), None)
    if iref is None:
        return []
    width = 2 if iref[8] == 0 else 4
    out = []
    for k, a, b in _children(iref, 12, len(iref)):
        if k == kind:
            count = _uint(iref, a + 8 + width, 2)
            at = a + 10 + width
            if at + count * width > b:
                raise ValueError("a damaged HEIF item reference")
            out.append((_uint(iref, a + 8, width), [_uint(iref, at + width * n, width) for n in range(count)]))
    return out


def with_primary(heif: bytes, item: int) -> bytes:
    """``heif`` with its ``item`` (an image item: a gain map, hidden) as its primary picture, shown: what a decoder
    that decodes only the primary picture (libheif through pillow-heif, Pillow's libavif) then decodes. Raises
    ``ValueError`` for a file it cannot follow."""
    return _followed(_with_primary, heif, item)


def _with_primary(heif: bytes, item: int) -> bytes:
    meta, start, end, _ = _primary_image(heif, coded=False)
    at = next((k for k, box in enumerate(meta.infe) if _infe(box)[0] == item), None)
    if at is None:
        raise ValueError(f"no HEIF item {item}")
    box = meta.infe[at]
    meta.infe[at] = box[:9] + bytes([box[9], box[10], box[11] & 0xFE]) + box[12:]  # (flags: hidden cleared)
    version = next(whole[8] for kind, whole in meta.boxes if kind == b"pitm")
    pitm = bmff.full_box(b"pitm", item.to_bytes(2 if version == 0 else 4, "big"), version)
    meta.boxes = [(kind, pitm if kind == b"pitm" else whole) for kind, whole in meta.boxes]
    meta.primary = item
    return _written(heif, meta, start, end)


def with_properties(heif: bytes, boxes: list[bytes]) -> bytes:
    """``heif`` with the property ``boxes`` (whole: ``clli``, ``mdcv``) given to its primary item, not essential
    (a reader that does not know them shows the picture as before), in place of any of their kinds it has. Raises
    ``ValueError`` for a file it cannot follow."""
    return _followed(_with_properties, heif, boxes)


def _followed(edit: Callable[..., _T], *args: Any) -> _T:
    """``edit(*args)``, any way it fails on a file it cannot follow (a field out of range, a box cut short) raised
    as ``ValueError``."""
    try:
        return edit(*args)
    except (IndexError, struct.error, OverflowError) as e:
        raise ValueError(f"a HEIF file this cannot follow ({e})") from None


def primary_properties(heif: bytes, kinds: tuple[bytes, ...], item: int | None = None) -> list[bytes]:
    """The property boxes of ``kinds`` (``clli``, ``mdcv``, ``irot``, ...) the HEIF file ``heif``'s primary item
    (or its ``item``) has, whole, in its order; none for a file this cannot follow."""
    try:
        meta = _primary_image(heif, coded=False)[0]
    except (ValueError, IndexError, struct.error):
        return []
    return [box for box in _item_properties(meta, meta.primary if item is None else item) if box[4:8] in kinds]


def primary_type(heif: bytes) -> bytes | None:
    """The HEIF file ``heif``'s primary item's type (``hvc1``, ``av01``, ``grid``, ``unci``, ``jpeg``, ...); ``None``
    for a file this cannot follow."""
    try:
        meta = _primary_image(heif, coded=False)[0]
        return next((kind for item, kind in map(_infe, meta.infe) if item == meta.primary), None)
    except (ValueError, IndexError, struct.error):
        return None


class Coded(NamedTuple):
    """A HEIF file's primary picture as it is coded (:func:`primary_coded`), for a decoder of classsr's own."""

    kind: bytes  # its item's type: jpeg, j2k1, unci, avc1, ...
    data: bytes
    properties: tuple[bytes, ...]  # its property boxes, whole, in order (their transforms are applied so)
    alpha: Coded | None  # its alpha auxiliary image's, with no alpha, EXIF or XMP of its own
    exif: bytes | None  # its Exif item's TIFF structure
    xmp: bytes | None


#: The ``auxC`` types of an alpha auxiliary image: MPEG-B's, and HEVC's as iPhones and older libheif name it.
_ALPHA_TYPES = (b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1")


def primary_kind(heif: bytes) -> bytes:
    """The item type of the primary picture of ``heif`` (a file or its :func:`head`): ``b"av01"``, ``b"hvc1"``,
    ``b"grid"``...; ``b""`` where its boxes do not say."""
    try:
        return _followed(_primary_kind, heif)
    except ValueError:
        return b""


def _primary_kind(heif: bytes) -> bytes:
    meta = _primary_image(heif, coded=False)[0]
    return dict(map(_infe, meta.infe)).get(meta.primary, b"")


def primary_coded(heif: bytes) -> Coded:
    """The HEIF file ``heif``'s primary picture as coded (:class:`Coded`): its data, properties, alpha image (an
    ``auxl`` one whose ``auxC`` names alpha) and the EXIF and XMP items that describe it (``cdsc``). Raises
    ``ValueError`` for a file it cannot follow."""
    return _followed(_primary_coded, heif)


def _primary_coded(heif: bytes) -> Coded:
    meta = _primary_image(heif, coded=False)[0]
    kinds = dict(map(_infe, meta.infe))
    alpha = None
    for source, to in _references(meta, b"auxl"):
        props = _item_properties(meta, source)
        auxc = next((box[12:] for box in props if box[4:8] == b"auxC"), b"")
        if meta.primary in to and auxc.startswith(_ALPHA_TYPES) and alpha is None:
            alpha = Coded(kinds.get(source, b""), _item_data(heif, meta, source), tuple(props), None, None, None)
    exif = xmp = None
    for source, to in _references(meta, b"cdsc"):
        box = next((b for b in meta.infe if _infe(b)[0] == source), b"")
        if meta.primary not in to:
            continue
        if kinds.get(source) == b"Exif" and exif is None:
            raw = _item_data(heif, meta, source)
            exif = raw[4 + _uint(raw, 0, 4) :] if len(raw) >= 4 else None  # (after the offset to its TIFF header)
        elif kinds.get(source) == b"mime" and _XMP_TYPE in box and xmp is None:
            xmp = _item_data(heif, meta, source)
    own = tuple(_item_properties(meta, meta.primary))
    return Coded(kinds.get(meta.primary, b""), _item_data(heif, meta, meta.primary), own, alpha, exif, xmp)


def _item_properties(meta: _Meta, item: int) -> list[bytes]:
    """The property boxes ``meta`` associates with ``item``, whole, in its order."""
    props = dict(meta.associations).get(item, [])
    return [meta.ipco[i - 1] for _, i in props if 0 < i <= len(meta.ipco)]


def _with_properties(heif: bytes, boxes: list[bytes]) -> bytes:
    """:func:`with_properties`, unguarded."""
    meta, start, end, _ = _primary_image(heif, coded=False)
    _give(meta, meta.primary, boxes)
    return _written(heif, meta, start, end)


def _give(meta: _Meta, item: int, boxes: list[bytes]) -> None:
    """``meta`` with the property ``boxes`` given to its ``item``, not essential, in place of any of their kinds it
    has."""
    if not boxes:
        return
    kinds = {b[4:8] for b in boxes}
    at = next((k for k, (owner, _) in enumerate(meta.associations) if owner == item), None)
    if at is None:  # (an item with no properties yet)
        meta.associations.append((item, []))
        at = len(meta.associations) - 1
    own = [(e, i) for e, i in meta.associations[at][1] if not (0 < i <= len(meta.ipco) and meta.ipco[i - 1][4:8] in kinds)]
    first = len(meta.ipco) + 1
    meta.ipco += boxes
    meta.associations[at] = (item, own + [(False, first + k) for k in range(len(boxes))])


def _reference(source: int, to: tuple[int, ...], width: int) -> bytes:
    """One item reference's payload: ``source``, the count, each of ``to``, in IDs of ``width`` bytes."""
    return source.to_bytes(width, "big") + len(to).to_bytes(2, "big") + b"".join(t.to_bytes(width, "big") for t in to)


def _written(heif: bytes, meta: _Meta, start: int, end: int, *tails: bytes) -> bytes:
    """``heif`` with ``meta`` (changed) in place of its ``meta`` box (``start``...``end``): the data after it moved
    by how much it grew, and ``tails`` (the last locations' data, in their order, where given) in a ``mdat`` of its
    own at the end."""
    tail = b"".join(tails)
    size = 4 if len(heif) + len(tail) + (1 << 20) < 1 << 32 else 8
    for loc in meta.locations:
        if loc.method == 0:
            loc.extents = [(i, loc.base + off, n) for i, off, n in loc.extents]
            loc.base = 0
    saved = [list(loc.extents) for loc in meta.locations]
    added = meta.references

    def built(shift: int, at: int) -> bytes:
        for loc, extents in zip(meta.locations, saved, strict=True):
            if loc.method == 0:
                loc.extents = [(i, off + shift if off >= end else off, n) for i, off, n in extents]
        for n, data in enumerate(tails):
            meta.locations[n - len(tails)].extents = [(0, at + sum(map(len, tails[:n])), len(data))]
        parts = []
        has_iref = any(k == b"iref" for k, _ in meta.boxes)
        for k, whole in meta.boxes:
            if k == b"iloc":
                parts.append(_iloc(meta, size))
            elif k == b"iinf":
                count = len(meta.infe).to_bytes(2 if meta.iinf_version == 0 else 4, "big")
                parts.append(bmff.full_box(b"iinf", count + b"".join(meta.infe), meta.iinf_version))
            elif k == b"iref":  # (version 1: 32-bit item IDs)
                more = b"".join(bmff.box(kind, _reference(a, b, 2 if whole[8] == 0 else 4)) for kind, a, b in added)
                parts.append(struct.pack(">I", len(whole) + len(more)) + whole[4:] + more)
            elif k == b"iprp":
                parts.append(bmff.box(b"iprp", bmff.box(b"ipco", b"".join(meta.ipco)) + _ipma(meta)))
            else:
                parts.append(whole)
            if k == b"iinf" and not has_iref and added:
                parts.append(bmff.full_box(b"iref", b"".join(bmff.box(kind, _reference(a, b, 2)) for kind, a, b in added)))
        return bmff.box(b"meta", meta.version_flags + b"".join(parts))

    grown = len(built(0, 0)) - (end - start)  # (its size does not depend on the offsets: they take ``size`` bytes)
    head = built(grown, len(heif) + grown + 8)
    return heif[:start] + head + heif[end:] + (bmff.box(b"mdat", tail) if tail else b"")
