"""DDS textures written as games load them: the source's block compression where Pillow encodes it, and a full chain
of mip levels where the source had one.

A DDS file is ``DDS `` and a 124-byte header (its flags, height, width, pitch, depth, mip level count, pixel format and
capabilities), a 20-byte DX10 header where the pixel format's FourCC is ``DX10``, then each mip level's data, the
largest first, every one half the size of the one before (rounded down, at least 1) down to 1 x 1. Pillow reads the
largest level (BC1-3 in sRGB, B8G8R8A8 and B8G8R8X8, which it refuses, as the formats of the same data it reads:
:func:`readable`, :func:`stored`) and writes one level (uncompressed, or DXT1/3/5, BC2/3/5 through its block
encoder); classsr encodes each level with Pillow and joins them under one header that counts them, a DX10 one with
the source's own DXGI format where the source had one (its UNORM or TYPELESS, and sRGB, which says how a game's
sampler reads the colours). BC4
(one channel: a roughness or height map) is BC3's alpha blocks, which Pillow encodes: each level is written as BC3
with the channel as its alpha and those blocks kept. BC7 is encoded by etcpak where it is installed (the optional
``classsr[textures]``). Pillow encodes no signed BC5 or BC6H, nor BC7 without etcpak: those sources are written
uncompressed (a game tool compresses them as it needs), said; an sRGB one (BC7's) as R8G8B8A8_UNORM_SRGB, so that it
still reads as sRGB. A cube map holds six faces, a cube map array six a cube, and a texture array its textures one
after another, each with its levels: Pillow reads the first; :func:`other_faces` reads the others (each as a one-face
DDS Pillow opens), and :func:`write` writes them all back in their order under the source's layout.
"""

from __future__ import annotations

import importlib.util
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

__all__ = ["RGB_LUMINANCE", "RXGB", "Raw", "Texture", "as_held", "cube_neighbours", "head", "mip_sizes", "notes",
           "other_faces", "own_format", "raw_format", "read_raw", "readable", "stored", "texture_of", "write"]

#: The header's offsets (from the file's start): flags, mip level count, capabilities.
_FLAGS, _MIPS, _CAPS = 8, 28, 108
_DDSD_MIPMAPCOUNT = 0x20000
_DDSCAPS_COMPLEX, _DDSCAPS_MIPMAP = 0x8, 0x400000
_HEADER, _DX10_HEADER = 128, 148
#: A source's block compression (Pillow's name for it) -> the one Pillow encodes it as (the same blocks; under the
#: source's DX10 header where it had one).
_ENCODED = {"DXT1": "DXT1", "BC1": "DXT1", "DXT3": "DXT3", "BC2": "DXT3", "DXT5": "DXT5", "BC3": "DXT5", "BC5": "BC5",
            "BC4": "BC4"}
#: DXGI formats: the sRGB ones read uncompressed (BC7's and 8-bit RGBA's, BGRA's and BGRX's), and the one an sRGB
#: source is written uncompressed as.
_SRGB_FORMATS = (29, 99, 91, 93)
_RGBA8, _RGBA8_SRGB = 28, 29
#: The DDS header's flags (DDSD: caps, height, width, pixel format; pitch or linear size) and DDPF_FOURCC.
_DDSD = 0x1 | 0x2 | 0x4 | 0x1000
_DDSD_PITCH, _DDSD_LINEARSIZE, _DDPF_FOURCC = 0x8, 0x80000, 0x4
_DDSCAPS_TEXTURE = 0x1000


@dataclass(frozen=True)
class Texture:
    """How a DDS file stored its picture, which a DDS output keeps: its block compression (Pillow's pixel format name:
    ``DXT1``, ``BC7``, ...; ``None``: uncompressed), whether it had mip levels, and its DX10 header's format; a cube
    map's (or a cube map array's) or a texture array's other faces, upscaled with the first and written after it; and
    what is left out (a volume texture's other slices: the output is then one 2D texture)."""

    compression: str | None = None
    mipmaps: bool = False
    #: The source's DXGI format where it had a DX10 header (71: BC1_UNORM, 99: BC7_UNORM_SRGB, ...), else ``None``.
    dxgi: int | None = None
    #: ``cube map``, ``volume texture`` or ``texture array``: a source of several 2D pictures, else ``None``.
    layout: str | None = None
    #: The 2D pictures a cube map or texture array holds, as its header counts them (a DX10 cube map's six a cube,
    #: a legacy one's faces present; an array's textures); 1 for another texture.
    count: int = 1
    #: Channels that hold something else than colour as stored: ``normal map`` (DDPF_NORMAL: DXT5nm, X in alpha, Y
    #: in green) or ``YCoCg`` (GIMP's DXT5 of YCoCg: its ``YCG1`` or ``YCG2`` marker), read and written as stored,
    #: the flag and the marker (``marker``: the header's reserved bytes that hold it) kept; ``RXGB`` (Doom 3's normal
    #: maps, red in alpha), read as RGB (:func:`stored`) and written back so, under its FourCC.
    swizzle: str | None = None
    marker: bytes = b""
    #: A cube map's faces after the first (+X; then -X, +Y, -Y, +Z, -Z; a cube map array's cubes in turn) or an
    #: array's textures after the first, in file order: each ``(pixels, alpha)`` as
    #: :class:`~classsr_cli.io.image.Picture` holds them (the reader's, then upscaled); empty where the layout's other
    #: pictures are not read (a volume, a legacy cube map without all six faces).
    faces: tuple[tuple[np.ndarray, np.ndarray | None], ...] = field(default=(), compare=False, repr=False)

    def notes(self) -> list[str]:
        """What of the source is not upscaled: a volume's other slices, a cube map's where they were not read; a BC6H
        texture's light above 1.0 (HDR, which Pillow reads at 8 bits)."""
        said = []
        if self.compression in ("BC6H", "BC6HS"):
            said.append("DDS BC6H holds HDR light: read at 8 bits per channel (Pillow's decoder), light above 1.0 "
                        "clipped; an OpenEXR of it keeps that light through classsr")
        if self.swizzle == "normal map":
            said.append("DDS normal map (DXT5nm: X in its alpha, Y in green): upscaled as stored, its X as alpha (by "
                        "bicubic); a DDS output keeps that layout, another format shows the alpha as transparency")
        elif self.swizzle == "YCoCg":
            said.append("DDS of YCoCg (GIMP's): its Y, Co and Cg upscaled as stored, not converted to RGB; a DDS output "
                        "keeps them so")
        if self.layout is not None and not self.faces:
            part = {"cube map": "face", "volume texture": "slice"}.get(self.layout, "texture")
            said.append(f"DDS {self.layout}: only its first {part} is upscaled, written as one 2D texture")
        return said


def head(path: Path) -> bytes:
    """The DDS file ``path``'s headers: its first 148 bytes (fewer where it is shorter)."""
    with path.open("rb") as f:
        return f.read(_DX10_HEADER)


def texture_of(head: bytes, im: Image.Image) -> Texture:
    """The :class:`Texture` of the DDS file whose headers are ``head`` (:func:`head`), opened by Pillow as ``im`` (its
    other faces not read yet: :func:`other_faces`)."""
    flags, mips, caps2 = (struct.unpack_from("<I", head, at)[0] for at in (_FLAGS, _MIPS, _CAPS + 4))
    cube, volume = bool(caps2 & 0x200), bool(caps2 & 0x200000)  # DDSCAPS2_CUBEMAP, DDSCAPS2_VOLUME
    dxgi, textures = None, 1
    count = (caps2 & 0xFC00).bit_count()  # a legacy cube map's faces present
    if head[84:88] == b"DX10" and len(head) == _DX10_HEADER:
        dxgi, dimension, misc, textures = struct.unpack_from("<4I", head, _HEADER)
        cube, volume = cube or bool(misc & 0x4), volume or dimension == 4  # TEXTURECUBE; TEXTURE3D
        count = 6 * textures if cube else textures
    layout = "cube map" if cube else "volume texture" if volume else "texture array" if textures > 1 else None
    pfflags = struct.unpack_from("<I", head, 80)[0] if len(head) >= 84 else 0
    ycocg = head[32:40] == b"GIMP-DDS" and head[44:48] in (b"YCG1", b"YCG2")
    swizzle = ("RXGB" if head[84:88] == b"RXGB" else "normal map" if pfflags & _DDPF_NORMAL else
               "YCoCg" if ycocg else None)  # fmt: skip
    return Texture(getattr(im, "pixel_format", None), bool(flags & _DDSD_MIPMAPCOUNT) and mips > 1, dxgi, layout,
                   count if layout in ("cube map", "texture array") else 1, swizzle, head[32:48] if ycocg else b"")


#: Bytes per 4 x 4 block of the block compressions Pillow reads (the others: 16).
_BLOCK_BYTES = {"DXT1": 8, "BC1": 8, "BC4": 8}
#: Bytes per pixel of the uncompressed DXGI formats read (R8G8B8A8, B8G8R8A8, B8G8R8X8: UNORM, sRGB, TYPELESS;
#: R10G10B10A2; R8_UNORM).
_DXGI_BYTES = {23: 4, 24: 4, 27: 4, 28: 4, 29: 4, 87: 4, 88: 4, 90: 4, 91: 4, 92: 4, 93: 4, 61: 1}
#: DXGI formats Pillow does not read -> one it reads whose data is the same but for the colour space (BC1-3's sRGB:
#: how a game's sampler reads the colours, which the header a DDS output keeps still says) or the order of the bytes
#: (B8G8R8A8 and B8G8R8X8, UNORM, TYPELESS, sRGB: read as R8G8B8A8, then turned back by :func:`stored`).
_READ_AS = {72: 71, 75: 74, 78: 77, 87: 28, 90: 27, 91: 29, 88: 28, 92: 27, 93: 29}
_BGR, _BGRX = (87, 88, 90, 91, 92, 93), (88, 92, 93)
#: R10G10B10A2, typeless and UNORM (read as R8G8B8A8 by :func:`readable`).
_RGB10A2 = (23, 24)
#: :func:`own_format`'s RXGB: its FourCC as a number, outside DXGI's.
RXGB = int.from_bytes(b"RXGB", "little")
#: :func:`own_format`'s legacy luminance flagged RGB too (DDPF_LUMINANCE | DDPF_RGB, as KDE's and some tools' 8-bit
#: gray is), whose one level Pillow reads as red: a number outside DXGI's.
RGB_LUMINANCE = int.from_bytes(b"LUMI", "little")
_DDPF_RGB, _DDPF_LUMINANCE, _DDPF_NORMAL = 0x40, 0x20000, 0x80000000
#: DDSCAPS2_CUBEMAP and its six faces' bits, all present.
_CUBE_FACES = 0x200 | 0xFC00


def own_format(data: bytes) -> int | None:
    """The DDS file ``data``'s own format as :func:`readable` and :func:`stored` take it: its DX10 header's DXGI
    format, :data:`RXGB` for that FourCC, :data:`RGB_LUMINANCE` for luminance flagged RGB too; ``None`` for another
    legacy header."""
    if data[84:88] == b"DX10" and len(data) >= _DX10_HEADER:
        return int(struct.unpack_from("<I", data, _HEADER)[0])
    if data[84:88] == b"RXGB":
        return RXGB
    flags = int.from_bytes(data[80:84], "little")
    return RGB_LUMINANCE if flags & _DDPF_RGB and flags & _DDPF_LUMINANCE else None


class Raw(NamedTuple):
    """An uncompressed format Pillow does not decode, read here (:func:`raw_format`): its name, channels and the
    numpy type of a sample (``<f2``, ``<f4``: floats, HDR light; ``<u2``: 16-bit levels; ``u1``: A8's alpha)."""

    name: str
    channels: int
    sample: str

    @property
    def floats(self) -> bool:
        return self.sample.startswith("<f")


#: The raw formats by DXGI number (a DX10 header's).
_DXGI_RAW = {2: Raw("R32G32B32A32_FLOAT", 4, "<f4"), 6: Raw("R32G32B32_FLOAT", 3, "<f4"),
             10: Raw("R16G16B16A16_FLOAT", 4, "<f2"), 16: Raw("R32G32_FLOAT", 2, "<f4"),
             34: Raw("R16G16_FLOAT", 2, "<f2"), 41: Raw("R32_FLOAT", 1, "<f4"), 54: Raw("R16_FLOAT", 1, "<f2"),
             11: Raw("R16G16B16A16_UNORM", 4, "<u2"), 35: Raw("R16G16_UNORM", 2, "<u2"),
             56: Raw("R16_UNORM", 1, "<u2")}  # fmt: skip
#: ... and by legacy D3DFMT number (a legacy header's FourCC).
_D3D_RAW = {111: Raw("R16F", 1, "<f2"), 112: Raw("G16R16F", 2, "<f2"), 113: Raw("A16B16G16R16F", 4, "<f2"),
            114: Raw("R32F", 1, "<f4"), 115: Raw("G32R32F", 2, "<f4"), 116: Raw("A32B32G32R32F", 4, "<f4"),
            36: Raw("A16B16G16R16", 4, "<u2"), 34: Raw("G16R16", 2, "<u2"), 81: Raw("L16", 1, "<u2")}  # fmt: skip
_DDPF_ALPHA = 0x2


def raw_format(data: bytes) -> Raw | None:
    """The :class:`Raw` format of the DDS file starting with ``data`` (its first 148 bytes) where it is one Pillow
    does not decode and classsr reads: floats (HDR textures), 16-bit levels (R16_UNORM: a height map; L16, by its
    FourCC or 16-bit DDPF_LUMINANCE), or A8 (an alpha-only texture, DDPF_ALPHA); ``None`` otherwise."""
    if len(data) < _HEADER or data[:4] != b"DDS ":
        return None
    if data[84:88] == b"DX10":
        return _DXGI_RAW.get(int.from_bytes(data[_HEADER : _HEADER + 4], "little")) if len(data) >= _DX10_HEADER else None
    flags, code, bits = struct.unpack_from("<3I", data, 80)
    if flags & _DDPF_FOURCC:
        return _D3D_RAW.get(code)
    if flags & _DDPF_LUMINANCE and not flags & 0x1 and bits == 16:  # (not DDPF_ALPHAPIXELS: Pillow's LA)
        return Raw("L16", 1, "<u2")
    return Raw("A8", 1, "u1") if flags == _DDPF_ALPHA and bits == 8 else None


def read_raw(data: bytes) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """A raw DDS's (:func:`raw_format`) first level: ``(H, W, C)`` samples (float32 light, or ``uint16`` or
    ``uint8`` levels as stored), C 1 (gray) or 3 (R and G with blue 0 for a two-channel one), its alpha where it has
    one, and whether its colour is premultiplied by that alpha (DX10's alpha mode 2). ``ValueError`` for a file cut
    short."""
    raw = raw_format(data)
    assert raw is not None
    height, width = struct.unpack_from("<2I", data, 12)
    start = _DX10_HEADER if data[84:88] == b"DX10" else _HEADER
    size = np.dtype(raw.sample).itemsize
    count = width * height * raw.channels
    if len(data) < start + count * size:
        raise ValueError(f"cut short: {len(data) - start:,} of its {count * size:,} bytes of pixels")
    values = np.frombuffer(data, raw.sample, count=count, offset=start)
    pixels = values.astype(np.float32 if raw.floats else values.dtype.newbyteorder("=")).reshape(height, width, -1)
    alpha = pixels[..., 3].copy() if raw.channels == 4 else None
    if raw.channels == 2:
        pixels = np.dstack([pixels, np.zeros((height, width, 1), pixels.dtype)])
    premultiplied = start == _DX10_HEADER and int.from_bytes(data[_HEADER + 16 : _HEADER + 20], "little") & 7 == 2
    return np.ascontiguousarray(pixels[..., :3] if pixels.shape[2] >= 3 else pixels), alpha, premultiplied


def as_held(head: bytes, im: Image.Image) -> Image.Image:
    """``im``, Pillow's reading of the DDS file whose headers are ``head`` (:func:`head`), as the file holds it
    (:func:`stored`) where Pillow read it otherwise: luminance flagged RGB too (:data:`RGB_LUMINANCE`), read as red."""
    own = own_format(head)
    return stored(im, own) if own == RGB_LUMINANCE else im


def readable(data: bytes) -> bytes | None:
    """The DDS file ``data`` in a format Pillow reads, where its own (:func:`own_format`) is one Pillow does not:
    its DXGI format one whose data is the same (:data:`_READ_AS`); R10G10B10A2 (typeless or UNORM) made R8G8B8A8, each
    10-bit level rounded to 8 bits, its 2-bit alpha stretched; RXGB (Doom 3's normal maps: DXT5 with red in alpha)
    under DXT5's FourCC. ``None`` otherwise. Its picture as the file holds it is then :func:`stored`'s."""
    own = own_format(data)
    if own == RXGB:
        return data[:84] + b"DXT5" + data[88:]
    if own in _RGB10A2:
        words = np.frombuffer(data, "<u4", count=(len(data) - _DX10_HEADER) // 4, offset=_DX10_HEADER).astype(np.uint32)
        levels = [((words >> shift) & 1023) for shift in (0, 10, 20)]
        rgba = np.stack([*((v * 255 + 511) // 1023 for v in levels), (words >> 30) * 85], axis=-1).astype(np.uint8)
        return data[:_HEADER] + struct.pack("<I", _RGBA8) + data[_HEADER + 4 : _DX10_HEADER] + rgba.tobytes()
    if own not in _READ_AS:
        return None
    return data[:_HEADER] + struct.pack("<I", _READ_AS[own]) + data[_HEADER + 4 :]


def stored(im: Image.Image, dxgi: int | None) -> Image.Image:
    """``im``, Pillow's reading of a DDS face of format ``dxgi`` (:func:`own_format`) through :func:`readable`'s copy,
    as that format holds it: blue and red back in their places for B8G8R8A8 and B8G8R8X8, whose fourth byte (X) is no
    alpha; RXGB's red back from its alpha (no alpha of its own); luminance flagged RGB too gray (its red; alpha where it
    has one)."""
    if dxgi not in (*_BGR, RXGB, RGB_LUMINANCE):
        return im
    r, g, b, a = im.convert("RGBA").split()
    if dxgi == RGB_LUMINANCE:
        out = Image.merge("LA", (r, a)) if "A" in im.mode else r
    else:
        out = (Image.merge("RGB", (a, g, b)) if dxgi == RXGB else Image.merge("RGB", (b, g, r)) if dxgi in _BGRX
               else Image.merge("RGBA", (b, g, r, a)))  # fmt: skip
    out.format, out.info = im.format, dict(im.info)
    out.pixel_format = getattr(im, "pixel_format", None)  # type: ignore[attr-defined]  # (what texture_of reads)
    return out


def other_faces(path: Path, texture: Texture) -> list[Image.Image]:
    """A cube map's five faces after the first (a cube map array's every cube's six in turn), or a texture array's
    textures after the first, each as Pillow reads a one-face DDS of it (the source's header with the layout taken
    out, then that face's data: every format Pillow reads). Empty for a 2D texture, a volume or a cube map without all
    six faces, and for a layout whose faces' size this cannot tell (an uncompressed DX10 format it does not know)."""
    count = texture.count
    if texture.layout not in ("cube map", "texture array") or (texture.layout == "cube map" and count % 6):
        return []  # a legacy cube map with some faces left out: its first face only (said)
    raw = path.read_bytes()
    caps2 = struct.unpack_from("<I", raw, _CAPS + 4)[0]
    start = _DX10_HEADER if raw[84:88] == b"DX10" else _HEADER
    height, width = struct.unpack_from("<2I", raw, 12)
    levels = mip_sizes(width, height)[: max(1, struct.unpack_from("<I", raw, _MIPS)[0])] if texture.mipmaps else [
        (width, height)]
    if texture.compression:
        block = _BLOCK_BYTES.get(texture.compression, 16)
        face = sum(((w + 3) // 4) * ((h + 3) // 4) * block for w, h in levels)
    else:
        bits = struct.unpack_from("<I", raw, 88)[0] if texture.dxgi is None else 8 * _DXGI_BYTES.get(texture.dxgi, 0)
        if not bits:
            return []
        face = sum(((w * bits + 7) // 8) * h for w, h in levels)
    if len(raw) < start + count * face:
        return []  # cut short: the faces Pillow could not read either
    head = bytearray(raw[:start])
    struct.pack_into("<I", head, _CAPS + 4, caps2 & ~_CUBE_FACES)
    if start == _DX10_HEADER:  # one 2D texture: not a cube, an array of one
        misc = struct.unpack_from("<I", head, _HEADER + 8)[0]
        struct.pack_into("<2I", head, _HEADER + 8, misc & ~0x4, 1)
    own = own_format(bytes(head))
    faces: list[Image.Image] = []
    for k in range(1, count):
        one = bytes(head) + raw[start + k * face : start + (k + 1) * face]
        with Image.open(io.BytesIO(readable(one) or one)) as im:  # (as the first face was read)
            im.load()
            faces.append(stored(im, own))
    return faces


#: Each cube map face's direction from its texel coordinates ``sc``, ``tc`` (-1 to 1, right and down): as D3D and
#: OpenGL select a face (+X, -X, +Y, -Y, +Z, -Z; the major axis, then sc and tc over it; left-handed, y up).
_FACE_AXES = (
    lambda sc, tc: (1.0, -tc, -sc), lambda sc, tc: (-1.0, -tc, sc),   # +X, -X: (x, y, z)
    lambda sc, tc: (sc, 1.0, tc), lambda sc, tc: (sc, -1.0, -tc),     # +Y, -Y
    lambda sc, tc: (sc, -tc, 1.0), lambda sc, tc: (-sc, -tc, -1.0),   # +Z, -Z
)


def cube_neighbours(size: int, pad: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each face of a cube map of ``size`` x ``size`` faces in turn, the texels of that face grown by ``pad`` on
    every side: ``(face, row, column)`` index arrays of ``(size + 2 pad)`` squares. Past an edge, the face it meets,
    unfolded there (the texel ``d`` past the edge is the neighbour's ``d`` in from it, along the edge as it runs: the
    two faces' texels continue each other at one density, as the unfolded cross draws them); past a corner, where
    three faces meet, the nearest texel. Upscaling each face with its neighbours' texels around it, then cropping
    them, leaves no seam where the faces meet: alone, each face's border sees only its own pixels."""
    span = size + 2 * pad
    i, j = np.nonzero(np.pad(np.zeros((size, size), bool), pad, constant_values=True))  # the grown border's texels
    tc, sc = ((np.stack([i, j]).astype(np.float64) - pad + 0.5) / size * 2 - 1)  # texel centres, -1 .. 1 on the face
    past = np.maximum(np.abs(sc) - 1, 0) + np.maximum(np.abs(tc) - 1, 0)  # how far beyond the face's edges
    inside = np.arange(-pad, size + pad, dtype=np.int32).clip(0, size - 1)
    for f, axes in enumerate(_FACE_AXES):
        normal = np.asarray(axes(0.0, 0.0), dtype=np.float64)
        on = np.stack(np.broadcast_arrays(*axes(np.clip(sc, -1, 1), np.clip(tc, -1, 1))), axis=-1)
        x, y, z = np.moveaxis(on - past[..., None] * normal, -1, 0)  # folded over the edge onto the neighbour
        ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
        major = np.where((ax >= ay) & (ax >= az), 0, np.where(ay >= az, 1, 2))
        face = np.choose(major, [np.where(x > 0, 0, 1), np.where(y > 0, 2, 3), np.where(z > 0, 4, 5)])
        ma = np.choose(major, [ax, ay, az])
        # each face's (sc, tc) of the point, as the table that selects it
        s_of = np.choose(face, [-z, z, x, x, x, -x])
        t_of = np.choose(face, [-y, -y, z, -z, -y, -y])
        faces = np.full((span, span), f, np.int8)
        rows = np.repeat(inside[:, None], span, axis=1)
        cols = np.repeat(inside[None, :], span, axis=0)
        faces[i, j] = face
        cols[i, j] = np.clip(np.floor((s_of / ma + 1) / 2 * size), 0, size - 1)
        rows[i, j] = np.clip(np.floor((t_of / ma + 1) / 2 * size), 0, size - 1)
        yield faces, rows, cols


def mip_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes of a full mip chain under a ``width`` x ``height`` level: each half the one before, rounded down and
    at least 1, down to 1 x 1 (the largest first)."""
    sizes = [(width, height)]
    while sizes[-1] != (1, 1):
        w, h = sizes[-1]
        sizes.append((max(1, w // 2), max(1, h // 2)))
    return sizes


def _encoding(texture: Texture | None) -> str | None:
    """The block compression a DDS output of a picture of ``texture`` is written in (Pillow's name; ``BC7`` through
    etcpak), ``None``: uncompressed."""
    compression = texture.compression if texture is not None else None
    if compression == "BC7":
        return "BC7" if importlib.util.find_spec("etcpak") is not None else None
    return _ENCODED.get(compression or "")


def notes(texture: Texture | None) -> list[str]:
    """What a DDS output of a picture of ``texture`` does not keep: a compression neither Pillow nor etcpak encodes."""
    compression = texture.compression if texture is not None else None
    if compression and _encoding(texture) is None:
        keep = ("pip install 'classsr[textures]' (etcpak) keeps it, or compress it with the game's own tool"
                if compression == "BC7" else "compress it with the game's own tool")
        return [f"DDS written uncompressed: Pillow encodes no {compression} (the source's compression); {keep}"]
    return []


def write(path: Path, im: Image.Image, texture: Texture | None, faces: list[Image.Image] | None = None) -> None:
    """Write ``im`` (``L``, ``LA``, ``RGB`` or ``RGBA``) to ``path`` as a DDS file: block-compressed as ``texture``
    was where Pillow encodes that, else uncompressed (:func:`notes` says so); with a full mip chain where ``texture``
    had mip levels, or where there is no ``texture`` (a picture of another format made a texture: what a game
    samples at a distance). ``faces``: a cube map's or a texture array's other faces (``texture.layout``), each
    ``im``'s size, written after it as the source held them (each face's levels in turn)."""
    faces = list(faces or [])
    encoded = _encoding(texture)
    dxgi = texture.dxgi if texture is not None else None
    srgb = encoded is None and dxgi in _SRGB_FORMATS  # written uncompressed, read as sRGB still
    layout = texture.layout if faces and texture is not None else None  # a cube map's or an array's faces written
    array = layout == "texture array" or (layout == "cube map" and len(faces) > 5)  # several textures, or cubes
    rgba = srgb or (array and encoded is None)  # R8G8B8A8 under a DX10 header (only a DX10 header holds an array)
    if rgba:
        dxgi = _RGBA8_SRGB if srgb else _RGBA8
    levels = mip_sizes(*im.size) if texture is None or texture.mipmaps else [im.size]
    data: list[bytes] = []
    header = b""
    modes = {face.mode for face in (im, *faces)}  # one layout for every face (RGBA where faces differ: some have alpha)
    rxgb = texture is not None and texture.swizzle == "RXGB" and encoded == "DXT5"
    mode = _MODES.get(encoded or "", "RGBA" if rgba or rxgb or len(modes) > 1 else im.mode)
    for face in (im, *faces):
        if rxgb:  # red back into alpha, as Doom 3 reads it (red itself unused: 0)
            r, g, b = face.convert("RGB").split()
            face = Image.merge("RGBA", (Image.new("L", face.size, 0), g, b, r))
        face = face.convert(mode)
        for size in levels:
            level = face if size == face.size else face.resize(size, Image.Resampling.BOX)  # each pixel its area
            if rgba:  # R, G, B, A bytes, as DXGI's R8G8B8A8 holds them
                data.append(level.tobytes())
                continue
            if encoded in ("BC4", "BC7"):
                data.append(_bc4(level) if encoded == "BC4" else _bc7(level))
                continue
            buf = io.BytesIO()
            level.save(buf, format="DDS", **({"pixel_format": encoded} if encoded else {}))
            raw = buf.getvalue()
            start = _DX10_HEADER if raw[84:88] == b"DX10" else _HEADER
            header = header or raw[:start]
            data.append(raw[start:])
    if dxgi is not None and (encoded or rgba):  # the source's own DX10 format (Pillow writes BC2/3/5 as TYPELESS)
        header = _dx10_header(im.size, dxgi, len(levels), len(data[0]) if encoded else 4 * im.width)
    elif encoded == "BC4":  # a legacy FourCC, as the source had (ATI1 or BC4U: ATI1 is the one every reader knows)
        header = _dx10_header(im.size, None, len(levels), len(data[0]), fourcc=b"ATI1")
    elif len(levels) > 1:
        head = bytearray(header)
        _set_bits(head, _FLAGS, _DDSD_MIPMAPCOUNT)
        struct.pack_into("<I", head, _MIPS, len(levels))
        _set_bits(head, _CAPS, _DDSCAPS_COMPLEX | _DDSCAPS_MIPMAP)
        header = bytes(head)
    if layout is not None:
        header = _with_faces(header, layout, 1 + len(faces))
    if texture is not None and texture.swizzle and encoded == "DXT5" and header[84:88] == b"DXT5":  # its layout kept
        head = bytearray(header)
        if texture.swizzle == "RXGB":  # (a normal map too, as GIMP flags one)
            head[84:88] = b"RXGB"
        if texture.swizzle in ("RXGB", "normal map"):
            _set_bits(head, 80, _DDPF_NORMAL)
        if texture.swizzle == "YCoCg":
            head[32:48] = texture.marker
        header = bytes(head)
    path.write_bytes(header + b"".join(data))


#: The mode each encoder here takes a picture in (BC4: one channel; BC5: two, a normal map's X and Y, which Pillow
#: takes from RGB; BC7: etcpak's RGBA).
_MODES = {"BC4": "L", "BC5": "RGB", "BC7": "RGBA"}


def _with_faces(header: bytes, layout: str, count: int) -> bytes:
    """``header`` made a cube map's (its six faces' bits; a DX10 header's TEXTURECUBE and ``count`` / 6 cubes) or an
    array of ``count`` textures' (DX10)."""
    head = bytearray(header)
    _set_bits(head, _CAPS, _DDSCAPS_COMPLEX)
    dx10 = head[84:88] == b"DX10"
    if layout == "cube map":
        _set_bits(head, _CAPS + 4, _CUBE_FACES)
        if dx10:
            _set_bits(head, _HEADER + 8, 0x4)  # D3D11_RESOURCE_MISC_TEXTURECUBE
            struct.pack_into("<I", head, _HEADER + 12, count // 6)  # a cube map array's cubes
    elif dx10:
        struct.pack_into("<I", head, _HEADER + 12, count)
    return bytes(head)


def _set_bits(head: bytearray, at: int, bits: int) -> None:
    """Set ``bits`` in the little-endian 32-bit field of ``head`` at offset ``at``."""
    struct.pack_into("<I", head, at, struct.unpack_from("<I", head, at)[0] | bits)


def _bc4(level: Image.Image) -> bytes:
    """The ``L`` picture ``level`` as BC4 blocks: those of BC3's alpha (the same 8 bytes: two endpoints and a 3-bit
    index a texel), which Pillow encodes; each BC3 block is 16 bytes, its alpha's the first 8."""
    clear = Image.new("L", level.size)
    buf = io.BytesIO()
    Image.merge("RGBA", (clear, clear, clear, level)).save(buf, format="DDS", pixel_format="DXT5")
    blocks = buf.getvalue()[_HEADER:]
    return b"".join(blocks[at:at + 8] for at in range(0, len(blocks), 16))


def _bc7(level: Image.Image) -> bytes:
    """The ``RGBA`` picture ``level`` as BC7 blocks, by etcpak (whose encoder takes whole blocks: a level is padded
    with its last row and column to a multiple of 4, the texels a DDS's partial blocks hold)."""
    import etcpak  # the optional classsr[textures]

    w, h = level.size
    px = np.asarray(level)
    px = np.pad(px, ((0, -h % 4), (0, -w % 4), (0, 0)), mode="edge")
    return bytes(etcpak.compress_bc7(px.tobytes(), px.shape[1], px.shape[0], None))  # its default parameters


def _dx10_header(size: tuple[int, int], dxgi: int | None, mips: int, pitch: int, fourcc: bytes = b"DX10") -> bytes:
    """A DDS header with a DX10 one of DXGI format ``dxgi`` for a 2D texture of ``size`` with ``mips`` levels
    (``pitch``: a block-compressed level's size in bytes, else a row's); with ``dxgi`` ``None``, a block-compressed
    one of that ``fourcc`` and no DX10 header."""
    compressed = dxgi not in (_RGBA8, _RGBA8_SRGB)
    flags = _DDSD | (_DDSD_LINEARSIZE if compressed else _DDSD_PITCH) | (_DDSD_MIPMAPCOUNT if mips > 1 else 0)
    caps = _DDSCAPS_TEXTURE | (_DDSCAPS_COMPLEX | _DDSCAPS_MIPMAP if mips > 1 else 0)
    return (b"DDS " + struct.pack("<7I", 124, flags, size[1], size[0], pitch, 0, mips if mips > 1 else 0)
            + bytes(44) + struct.pack("<2I4s5I", 32, _DDPF_FOURCC, fourcc if dxgi is None else b"DX10", 0, 0, 0, 0, 0)
            + struct.pack("<5I", caps, 0, 0, 0, 0)
            + (struct.pack("<5I", dxgi, 3, 0, 1, 0) if dxgi is not None else b""))  # 2D, one of it, alpha unknown
