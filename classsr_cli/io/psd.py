"""Photoshop documents (``.psd``, and ``.psb`` for large ones): the flattened picture Photoshop stores beside the
layers, read at its own depth with its ICC profile, EXIF, XMP, IPTC record and print resolution.

A PSD is a header (``8BPS``, version 1, or 2 for PSB; channels, height, width, depth, colour mode), the colour mode
data, the image resources (``8BIM`` blocks: the ICC profile is 1039, EXIF 1058, XMP 1060, IPTC 1028, the resolution 1005, and
1057's ``hasRealMergedData``, false where the document was saved without "Maximize Compatibility" and holds no
flattened picture), the layers and masks (a negative layer count, or an ``Mtrn``/``Mt16``/``Mt32`` block, says that
the first extra channel is the flattened picture's transparency), and then that picture: every channel's rows, raw
or PackBits-coded (Photoshop's RLE, a table of each row's length first), channel after channel. Pillow reads 8-bit
ones only (a photographer's document is often 16-bit), and neither that flag nor whether an extra channel is the
picture's transparency or a saved selection; so classsr reads them itself. The transparency's colours are stored
matted on white: they are brought back to straight colour, as a PNG holds them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["MODES", "Document", "is_psd", "read", "read_header", "unmatted"]

#: The colour modes classsr reads, by number, and their colour channels as stored (CMYK, Lab and Multichannel at 8 or
#: 16 bits, Indexed at 8, Bitmap at 1; Duotone read as its gray channel, as the format's text tells readers to;
#: Multichannel's inks as CMYK's, up to four, one as gray: :meth:`Document.colour_channels`).
MODES = {0: ("Bitmap", 1), 1: ("Grayscale", 1), 2: ("Indexed", 1), 3: ("RGB", 3), 4: ("CMYK", 4), 7: ("Multichannel", 4),
         8: ("Duotone", 1), 9: ("Lab", 3)}
_MODE_NAMES = {0: "Bitmap", 1: "Grayscale", 2: "Indexed", 3: "RGB", 4: "CMYK", 7: "Multichannel", 8: "Duotone", 9: "Lab"}
_ICC, _EXIF, _XMP, _RESOLUTION, _VERSION_INFO, _IPTC = 1039, 1058, 1060, 1005, 1057, 1028
_TRANSPARENT_INDEX = 1047  # an Indexed document's colour shown as transparent


def is_psd(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a PSD or PSB."""
    return head[:4] == b"8BPS" and head[4:6] in (b"\x00\x01", b"\x00\x02")


@dataclass(frozen=True)
class Document:
    """A PSD's header, the image resources classsr carries, and where its flattened picture starts."""

    version: int  # 1: PSD, 2: PSB
    channels: int
    height: int
    width: int
    depth: int  # 1, 8, 16 or 32 bits per channel
    mode: int
    resources: dict[int, bytes] = field(default_factory=dict)
    transparency: bool = False  # the first channel after the colour ones is the flattened picture's alpha
    merged: bool = True  # the document holds a flattened picture (resource 1057)
    data: int = 0  # the offset of the flattened picture's compression code
    palette: bytes = b""  # an Indexed document's colour mode data: 256 reds, 256 greens, 256 blues

    def colours(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """An Indexed document's ``index`` plane (``(H, W)`` ``uint8``) as RGB through its palette, ``(H, W, 3)``, and
        its alpha where it gives a transparent index (resource 1047: 0 there, 255 elsewhere), else ``None``."""
        table = np.frombuffer(self.palette.ljust(768, b"\0")[:768], np.uint8).reshape(3, 256).T
        given = self.resources.get(_TRANSPARENT_INDEX, b"")
        alpha = None
        if len(given) >= 2 and _u(given, 0, 2) < 256:
            alpha = np.where(index == _u(given, 0, 2), 0, 255).astype(np.uint8)
        return table[index], alpha

    @property
    def colour_channels(self) -> int:
        """The channels its colours take (:data:`MODES`'); a Multichannel document's, up to four (more are spot inks
        left out)."""
        return min(self.channels, 4) if self.mode == 7 else MODES[self.mode][1]

    @property
    def mode_name(self) -> str:
        return _MODE_NAMES.get(self.mode, f"mode {self.mode}")

    @property
    def dpi(self) -> tuple[float, float] | None:
        """The print resolution (resource 1005, dots per inch), or ``None``. Its values are pixels per inch whatever
        the unit it names, which is the one Photoshop shows them in (a document of 22.3189 pixels per centimetre
        holds 56.69, its EXIF 22.3189 with centimetres: they were taken as per centimetre, 2.54 times too many)."""
        info = self.resources.get(_RESOLUTION)
        if info is None or len(info) < 16:
            return None
        h, _, _, v, _, _ = struct.unpack(">IHHIHH", info[:16])
        per_inch = (h / 65536, v / 65536)
        return per_inch if all(p > 0 for p in per_inch) else None

    @property
    def icc(self) -> bytes | None:
        return self.resources.get(_ICC) or None

    @property
    def exif(self) -> bytes | None:
        """EXIF as a JPEG's APP1 holds it (``Exif\\0\\0`` and the TIFF structure resource 1058 stores)."""
        raw = self.resources.get(_EXIF)
        return b"Exif\x00\x00" + raw if raw and raw[:2] in (b"II", b"MM") else None

    @property
    def xmp(self) -> bytes | None:
        return self.resources.get(_XMP) or None

    @property
    def iptc(self) -> bytes | None:
        """The IPTC record (resource 1028: caption, keywords, byline, ...), where it holds IPTC datasets."""
        data = self.resources.get(_IPTC)
        return data if data and data[:1] == b"\x1c" else None


def _u(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big")


def read_header(path: Path) -> Document:
    """The :class:`Document` of the PSD or PSB ``path``: its header, resources and layer count read, the layers
    skipped. :class:`ValueError` where they do not read."""
    with path.open("rb") as f:
        head = f.read(26)
        if len(head) < 26 or not is_psd(head):
            raise ValueError("not a Photoshop document")
        version, channels, height, width, depth, mode = struct.unpack(">H6xHIIHH", head[4:26])
        length = f.read(4)  # the colour mode data: an Indexed document's palette
        if len(length) < 4:
            raise ValueError("cut short in its header")
        palette = f.read(768) if mode == 2 and _u(length, 0, 4) >= 768 else b""
        f.seek(_u(length, 0, 4) - len(palette), 1)
        length = f.read(4)
        size = _u(length, 0, 4)
        blocks = f.read(size)
        if len(length) < 4 or len(blocks) < size:
            raise ValueError("cut short in its image resources")
        resources = _resources(blocks)
        wide = 8 if version == 2 else 4
        length = f.read(wide)  # the layers and masks
        if len(length) < wide:
            raise ValueError("cut short before its layers")
        start = f.tell()
        data = start + _u(length, 0, wide)
        transparency = _merged_alpha(f, start, data, wide)
    info = resources.get(_VERSION_INFO, b"")
    merged = not (len(info) >= 5 and info[4] == 0)
    return Document(version, channels, height, width, depth, mode, resources, transparency, merged, data, palette)


#: Tagged blocks whose length takes 8 bytes in a PSB.
_LONG = {b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk", b"lnk2", b"FEid", b"FXid",
         b"PxSD"}


def _merged_alpha(f: BinaryIO, start: int, end: int, wide: int) -> bool:
    """Whether the flattened picture's first extra channel is its transparency, from the layers and masks section
    (``start`` .. ``end``): a negative layer count (in the layer info, or in a 16 or 32-bit document's ``Lr16`` or
    ``Lr32`` block), or an ``Mtrn``, ``Mt16`` or ``Mt32`` block. The layers' own data is skipped, not read."""
    try:
        return _transparency(f, start, end, wide)
    except struct.error:  # a section cut short: no transparency read
        return False


def _transparency(f: BinaryIO, start: int, end: int, wide: int) -> bool:
    if end - start < wide:
        return False
    f.seek(start)
    size = _u(f.read(wide), 0, wide)
    if size >= 2 and struct.unpack(">h", f.read(2))[0] < 0:
        return True
    f.seek(start + wide + size)
    f.seek(_u(f.read(4), 0, 4), 1)  # the global layer mask
    while f.tell() + 12 <= end:
        head = f.read(8)
        if head[:4] not in (b"8BIM", b"8B64"):
            return False
        key = head[4:]
        n = 8 if wide == 8 and key in _LONG else 4
        length = _u(f.read(n), 0, n)
        at = f.tell()
        if key in (b"Mtrn", b"Mt16", b"Mt32"):
            return True
        if key in (b"Lr16", b"Lr32") and length >= 2 and struct.unpack(">h", f.read(2))[0] < 0:
            return True
        f.seek(at + length + length % 2)
    return False


def _resources(blocks: bytes) -> dict[int, bytes]:
    """The image resources classsr uses, by ID, from the resources section's ``blocks``."""
    out: dict[int, bytes] = {}
    at = 0
    while at + 12 <= len(blocks) and blocks[at : at + 4] == b"8BIM":
        rid = _u(blocks, at + 4, 2)
        name = blocks[at + 6]
        at += 6 + (name + 2 if name % 2 == 0 else name + 1)  # a Pascal string, padded to an even length
        size = _u(blocks, at, 4)
        if rid in (_ICC, _EXIF, _XMP, _RESOLUTION, _VERSION_INFO, _IPTC, _TRANSPARENT_INDEX):
            out[rid] = blocks[at + 4 : at + 4 + size]
        at += 4 + size + size % 2
    return out


def read(path: Path, doc: Document, channels: int) -> np.ndarray:
    """The flattened picture's first ``channels`` channels, ``(channels, H, W)``: uint8 (a 1-bit Bitmap document's as
    gray levels, its 1 black), big-endian uint16 levels as uint16, or float32 (32-bit documents). :class:`ValueError`
    for a compression classsr does not read or a file cut short."""
    from PIL import Image

    height, width = doc.height, doc.width
    row = width * doc.depth // 8 if doc.depth >= 8 else (width + 7) // 8
    rows = channels * height
    with path.open("rb") as f:
        f.seek(doc.data)
        code = _u(f.read(2), 0, 2)
        if code == 0:
            raw = f.read(rows * row)
        elif code == 1:
            wide = 4 if doc.version == 2 else 2
            table = f.read(doc.channels * height * wide)
            if len(table) < doc.channels * height * wide:
                raise ValueError("cut short in its row table")
            counts = np.frombuffer(table, ">u4" if wide == 4 else ">u2")[:rows]
            coded = f.read(int(counts.sum()))
            if len(coded) < int(counts.sum()):
                raise ValueError(f"cut short: {len(coded):,} of its {int(counts.sum()):,} bytes of coded rows")
            raw = Image.frombytes("L", (row, rows), coded, "packbits", "L").tobytes()
        else:
            raise ValueError(f"its flattened picture is compressed in a way classsr does not read (code {code}); save "
                             "it from Photoshop, or export a TIFF")
    if len(raw) < rows * row:
        raise ValueError(f"cut short: {len(raw):,} of its {rows * row:,} bytes of pixels")
    if doc.depth == 1:
        bits = np.unpackbits(np.frombuffer(raw, np.uint8, count=rows * row).reshape(rows, row), axis=1)[:, :width]
        return ((1 - bits) * 255).astype(np.uint8).reshape(channels, height, width)
    kind = np.dtype({8: "u1", 16: ">u2", 32: ">f4"}[doc.depth])
    planes = np.frombuffer(raw, kind, count=rows * width).reshape(channels, height, width)
    return planes.astype(np.float32 if doc.depth == 32 else np.uint16 if doc.depth == 16 else np.uint8)


def unmatted(colour: np.ndarray, alpha: np.ndarray, *, lab: bool = False) -> np.ndarray:
    """``colour`` (``(H, W, C)``, integer levels) stored matted on white over ``alpha`` as straight colour: where
    alpha is above 0, ``(colour - white * (1 - a)) / a``; where it is 0, as stored. White is the top level in every
    channel, but in a Lab document's a* and b*, where it is their middle (no colour)."""
    top = 1.0 if colour.dtype.kind == "f" else float(np.iinfo(colour.dtype).max)
    a = alpha.astype(np.float32)[..., None] / top
    white = np.array([top] + [(top + 1) / 2] * (colour.shape[-1] - 1) if lab else [top], np.float32)
    straight = (colour.astype(np.float32) - white * (1.0 - a)) / np.maximum(a, 1e-12)
    if colour.dtype.kind == "f":  # linear light: no ceiling to clip to
        return np.where(a > 0, straight, colour).astype(np.float32)
    out = np.where(a > 0, np.clip(np.rint(straight), 0, top), colour.astype(np.float32))
    return out.astype(colour.dtype)
