"""JPEG XL through the bundled ffmpeg's libjxl: the file's layout read here, the pixels decoded and encoded there.

Read here, without decoding: the codestream's size, orientation and whether it is an animation (ISO/IEC 18181-1's
``SizeHeader`` and ``ImageMetadata``, enough of them to check a picture's size before any pixel is decoded), and the
container's boxes (ISO/IEC 18181-2: the codestream, whole or in parts, EXIF and XMP). Decoded and encoded by ffmpeg
(its ``libjxl`` decoder and encoder, in imageio-ffmpeg's build): no Python codec is needed. :mod:`classsr_cli.io.image`
reads and writes the pictures; this module knows the format.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = ["CODESTREAM", "CONTAINER", "EFFORT", "Boxes", "Header", "colour_codes", "container", "decode", "distance",
           "encode", "h273", "header", "is_jxl", "read_boxes"]  # fmt: skip

#: A bare JPEG XL codestream's first bytes.
CODESTREAM = b"\xff\x0a"
#: A JPEG XL container's first box (its signature).
CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
#: libjxl's encoder effort (1 fastest .. 9; its own default 7), chosen as AVIF's speed and HEIF's preset were: at
#: quality 95 a 4096x3072 picture (``examples/lighthouse.jpg`` at the size of its ×4 upscale) took 0.50 s at 3, through
#: classsr's writer, against 1.61 s at 5 and 1.94 s at 7, for files of 416, 371 and 371 KB at PSNR 52.1, 53.7 and
#: 53.7 dB (``scripts/avif_speed.py --format JXL``, docs/cli.md): far above what shows, where the model takes ~0.3 s.
EFFORT = 3


def is_jxl(head: bytes) -> bool:
    """Whether a file starting with ``head`` is JPEG XL (a bare codestream or a container)."""
    return head.startswith(CODESTREAM) or head.startswith(CONTAINER)


class Header(NamedTuple):
    """What the codestream says before its pixels: its stored size, orientation (EXIF's 1-8, which the decoder
    applies) and whether it is an animation."""

    width: int
    height: int
    orientation: int
    animated: bool

    @property
    def shown(self) -> tuple[int, int]:
        """``(width, height)`` as the decoder gives it, turned by the orientation."""
        return (self.height, self.width) if self.orientation > 4 else (self.width, self.height)


class _Bits:
    """ISO/IEC 18181-1's bit reader: least significant bit first."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.at >> 3
            if byte >= len(self.data):
                raise ValueError("JPEG XL header cut short")
            value |= ((self.data[byte] >> (self.at & 7)) & 1) << i
            self.at += 1
        return value

    def flag(self) -> bool:
        return bool(self.u(1))

    def u32(self, *choices: tuple[int, int]) -> int:
        """``U32``: two bits choose one of four ``(bits, offset)``; a value of 0 bits is the offset alone."""
        bits, offset = choices[self.u(2)]
        return self.u(bits) + offset


_SIZE = ((9, 1), (13, 1), (18, 1), (30, 1))
_PREVIEW_DIV8 = ((0, 16), (0, 32), (5, 1), (9, 33))
_PREVIEW = ((6, 1), (8, 65), (10, 321), (12, 1345))
#: ``SizeHeader``'s ratios of width to height.
_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def _size(bits: _Bits, div8_sizes: tuple[tuple[int, int], ...] | None, sizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """A ``SizeHeader`` (``div8_sizes`` None: 5 bits a multiple of 8) or a ``PreviewHeader``: ``(width, height)``."""
    div8 = bits.flag()

    def side() -> int:
        if div8:
            return 8 * (bits.u(5) + 1 if div8_sizes is None else bits.u32(*div8_sizes))
        return bits.u32(*sizes)

    height = side()
    ratio = bits.u(3)
    if ratio:
        num, den = _RATIOS[ratio]
        return height * num // den, height
    return side(), height


def header(codestream: bytes) -> Header:
    """The :class:`Header` of a codestream's first bytes; ``ValueError`` where they are not one."""
    if not codestream.startswith(CODESTREAM):
        raise ValueError("not a JPEG XL codestream")
    bits = _Bits(codestream[2:])
    width, height = _size(bits, None, _SIZE)
    orientation, animated = 1, False
    if not bits.flag() and bits.flag():  # not all_default (the rest is written), and extra_fields
        orientation = bits.u(3) + 1
        if bits.flag():  # an intrinsic size
            _size(bits, None, _SIZE)
        if bits.flag():  # a preview
            _size(bits, _PREVIEW_DIV8, _PREVIEW)
        animated = bits.flag()
    return Header(width, height, orientation, animated)


class Boxes(NamedTuple):
    """What a JPEG XL file holds besides its pixels, from its container's boxes: the codestream (joined from its
    parts), the EXIF (a TIFF structure), the XMP, and the kinds of box stored Brotli-compressed (``brob``), which
    are not read."""

    codestream: bytes
    exif: bytes | None = None
    xmp: bytes | None = None
    compressed: tuple[str, ...] = ()


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The ``(type, payload)`` of each ISO-BMFF box in ``data``."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        start = at + 8
        if size == 1:  # a 64-bit size follows
            if at + 16 > len(data):
                raise ValueError("JPEG XL box cut short")
            size, start = struct.unpack(">Q", data[at + 8 : at + 16])[0], at + 16
        elif size == 0:  # to the end of the file
            size = len(data) - at
        if size < start - at or at + size > len(data):
            raise ValueError("JPEG XL box cut short")
        yield kind, data[start : at + size]
        at += size


def read_boxes(data: bytes) -> Boxes:
    """A JPEG XL file's :class:`Boxes` (a bare codestream: itself alone); ``ValueError`` where its boxes do not read."""
    if not data.startswith(CONTAINER):
        return Boxes(data)
    parts: list[bytes] = []
    exif = xmp = None
    compressed: list[str] = []
    for kind, payload in _boxes(data):
        if kind == b"jxlc":
            parts = [payload]
        elif kind == b"jxlp":  # a part, after its 4-byte index
            parts.append(payload[4:])
        elif kind == b"Exif" and exif is None and len(payload) > 4:
            offset = struct.unpack(">I", payload[:4])[0]
            exif = payload[4 + offset :] or None
        elif kind == b"xml " and xmp is None:
            xmp = payload or None
        elif kind == b"brob" and len(payload) >= 4:
            compressed.append(payload[:4].decode("latin-1").strip())
    if not parts:
        raise ValueError("JPEG XL container without a codestream")
    return Boxes(b"".join(parts), exif, xmp, tuple(compressed))


def _box(kind: bytes, payload: bytes) -> bytes:
    if len(payload) + 8 < 1 << 32:
        return struct.pack(">I4s", len(payload) + 8, kind) + payload
    return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload


def container(encoded: bytes, *, exif: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """A JPEG XL file of ``encoded``, a bare codestream or the container libjxl makes of one that needs its level 10
    (a 16-bit picture's: a ``jxll`` box before it): as it is where there is no metadata, else a container with its
    level box after the file type, as the format asks, then the EXIF (a TIFF structure, or ``Exif\\0\\0`` and one)
    and the XMP before the codestream, as libjxl writes them (the container was put whole into the codestream's box:
    a 16-bit output with EXIF or XMP did not read)."""
    if exif and exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    if not exif and not xmp:
        return encoded
    level, codestream = b"", encoded
    if encoded.startswith(CONTAINER):
        level = b"".join(_box(kind, payload) for kind, payload in _boxes(encoded) if kind == b"jxll")
        codestream = read_boxes(encoded).codestream
    out = [CONTAINER, _box(b"ftyp", b"jxl \x00\x00\x00\x00jxl "), level]
    if exif:
        out.append(_box(b"Exif", b"\x00\x00\x00\x00" + exif))
    if xmp:
        out.append(_box(b"xml ", xmp))
    out.append(_box(b"jxlc", codestream))
    return b"".join(out)


# ------------------------------------------------------------------------------------------ through ffmpeg


#: ffmpeg's names of colour primaries and transfer characteristics, and their ITU-T H.273 code points (the first
#: name of each code point is the one ffmpeg prints and ``setparams`` takes).
_PRIMARIES = {"bt709": 1, "bt470m": 4, "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "film": 8, "bt2020": 9,
              "smpte428": 10, "smpte431": 11, "smpte432": 12, "jedec-p22": 22, "ebu3213": 22}  # fmt: skip
_TRANSFERS = {"bt709": 1, "bt470m": 4, "gamma22": 4, "bt470bg": 5, "gamma28": 5, "smpte170m": 6, "smpte240m": 7,
              "linear": 8, "iec61966-2-4": 11, "bt1361e": 12, "iec61966-2-1": 13, "bt2020-10": 14, "bt2020-12": 15,
              "smpte2084": 16, "smpte428": 17, "arib-std-b67": 18}  # fmt: skip


def colour_codes(stderr: str, codec: str = "jpegxl") -> tuple[int, int] | None:
    """The H.273 primaries and transfer of the ``codec`` stream ffmpeg describes in ``stderr`` (``Video: jpegxl
    (libjxl), rgb24(pc, gbr/smpte432/iec61966-2-1), ...``), where it names both; a gray picture, which has no
    primaries (``gray16le(pc, unknown/unknown/smpte2084)``: libjxl's ``pq_gradient.jxl``), by its transfer alone,
    given BT.2020's for an HDR one (PQ, HLG), else BT.709's."""
    from classsr_cli.io.video import color_tags

    m = re.search(rf"Video: {codec}\b[^,]*, (\w+)\(([^)]*)\)", stderr)
    if m is None:
        return None
    _, primaries, transfer = color_tags(m.group(2))
    if primaries is None and transfer is not None and m.group(1).startswith(("gray", "ya")):
        primaries = "bt2020" if transfer in ("smpte2084", "arib-std-b67") else "bt709"
    return h273(primaries, transfer)


def h273(primaries: str | None, transfer: str | None) -> tuple[int, int] | None:
    """The H.273 code points of colour ``primaries`` and a ``transfer`` as ffmpeg names them, where it names both."""
    if primaries not in _PRIMARIES or transfer not in _TRANSFERS:
        return None
    return _PRIMARIES[primaries], _TRANSFERS[transfer]


def decode(exe: str, source: Path, png: Path) -> tuple[int, int] | None:
    """Decode the first frame of the JPEG XL ``source`` into the PNG ``png`` (8 or 16 bits, gray or colour, alpha,
    the ICC profile: as ffmpeg's PNG encoder writes the frame libjxl gives, turned by its orientation, stored
    uncompressed); the H.273 primaries and transfer where the file describes its colours without an ICC profile.
    ``ValueError`` with ffmpeg's reason where it fails.

    Float colour with alpha, which libjxl gives as ``rgbaf32le`` and ffmpeg's scaler does not convert ("Impossible to
    convert between the formats"), is taken apart into its planes and put together as planar float, which it
    converts; the ICC profile, which that join drops, is taken from a plane of its own and put back."""
    got = _ffmpeg_png(exe, source, [png])
    text = got.stderr.decode(errors="replace")
    if got.returncode and re.search(r"Video: jpegxl\b[^,]*, rgbaf32[lb]e\b", text):
        carrier = png.with_name(f"{png.stem}.icc.png")
        got = _ffmpeg_png(exe, source, [png, carrier], _RGBA_FLOAT)
        if not got.returncode and png.exists() and carrier.exists():
            _with_icc_of(png, carrier)
    if got.returncode or not png.exists():
        from classsr_cli.io.video import ffmpeg_reason

        raise ValueError(ffmpeg_reason(text, "libjxl", "ffmpeg decoded nothing"))
    return colour_codes(text)


#: ``rgbaf32le`` taken apart and put together as ``gbrapf32le`` (one output), and its alpha plane, which keeps the
#: frame's ICC profile (the other).
_RGBA_FLOAT = ("[0:v:0]split[p][i];[p]extractplanes=r+g+b+a[r][g][b][a];"
               "[r][g][b][a]mergeplanes=map0s=1:map1s=2:map2s=0:map3s=3:format=gbrapf32le[o0];[i]extractplanes=a[o1]")


def _ffmpeg_png(exe: str, source: Path, pngs: list[Path], graph: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """ffmpeg decoding ``source``'s first frame into each of ``pngs`` (the first video stream into the one; ``graph``'s
    outputs ``o0``, ``o1``, ... into each)."""
    outputs: list[str] = []
    for k, png in enumerate(pngs):
        outputs += ["-map", f"[o{k}]" if graph else "0:v:0", "-frames:v", "1", "-c:v", "png", "-compression_level", "0",
                    "-f", "image2", "-update", "1", "-y", str(png)]  # fmt: skip
    return subprocess.run([exe, "-hide_banner", "-nostdin", "-xerror", "-i", str(source),
                           *(["-filter_complex", graph] if graph else []), *outputs], capture_output=True, check=False)  # fmt: skip


def _with_icc_of(png: Path, carrier: Path) -> None:
    """``carrier``'s ICC profile chunk (``iCCP``), where it has one, put into ``png`` after its header."""
    data, held = png.read_bytes(), carrier.read_bytes()
    at, end = held.find(b"iCCP"), 8 + 25  # (a PNG's signature and IHDR chunk)
    if at < 8 or b"iCCP" in data:
        return
    length = struct.unpack(">I", held[at - 4 : at])[0]
    png.write_bytes(data[:end] + held[at - 4 : at + 8 + length] + data[end:])


def distance(quality: int) -> float:
    """libjxl's distance (0 lossless; 1 visually lossless) for a quality on libjpeg's 1-100 scale, as libjxl's
    ``JxlEncoderDistanceFromQuality`` maps it (``cjxl -q``)."""
    if quality >= 100:
        return 0.0
    if quality >= 30:
        return 0.1 + (100 - quality) * 0.09
    return 6.24 + 2.5 ** ((30 - quality) / 5) / 6.25


def encode(exe: str, png: Path, quality: int, *, primaries: int | None = None, transfer: int | None = None) -> bytes:
    """The JPEG XL codestream of the PNG ``png`` (its bits, channels and ICC profile) at ``quality``
    (:func:`distance`) and :data:`EFFORT`; H.273 ``primaries`` and ``transfer`` tag a picture without an ICC
    profile. ``ValueError`` with ffmpeg's reason where it fails."""
    tags: list[str] = []
    names = {v: k for k, v in reversed(_PRIMARIES.items())}, {v: k for k, v in reversed(_TRANSFERS.items())}
    if primaries in names[0] and transfer in names[1]:
        tags = ["-vf", f"setparams=color_primaries={names[0][primaries]}:color_trc={names[1][transfer]}"]
    got = subprocess.run(
        [exe, "-hide_banner", "-v", "error", "-nostdin", "-xerror", "-i", str(png), "-frames:v", "1", "-c:v", "libjxl",
         "-distance", f"{distance(quality):.3f}", "-effort", str(EFFORT), *tags, "-f", "rawvideo", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if got.returncode or not is_jxl(got.stdout):
        from classsr_cli.io.video import ffmpeg_reason

        raise ValueError(ffmpeg_reason(got.stderr, "libjxl", "ffmpeg encoded nothing"))
    return got.stdout
