"""OpenEXR: pictures and a sequence's frames read through the bundled ffmpeg's decoder, pictures written here; the
split of linear light that Radiance HDR (:mod:`classsr_cli.io.radiance`) shares.

An EXR holds scene-linear light as half or float numbers, premultiplied by its alpha, with no ceiling: a lamp or the
sun may be 20. The models were trained on sRGB-encoded pictures of 0-1, so a linear picture is split in two
(:func:`split`): its light within 0-1, encoded by sRGB's curve into the 16-bit pixels every model runs on, and the
light outside it (above 1, below 0), kept as linear numbers (:class:`Linear`) that are enlarged by bicubic
interpolation and added back when an EXR is written (:func:`linear_rows`). A picture within 0-1 is upscaled exactly
as the same picture in a 16-bit PNG would be. Where most of the light is above 1 (:data:`WITHIN`), it is first made
darker by whole stops, so the model sees it as a photo exposed for it would show it, and brought back after; a
sequence's frames are all read at its first frame's stops (:func:`stops_for`, :func:`frame`).

Read here, without decoding: the first part's header (OpenEXR's file layout: the channels and their pixel types, the
compression, the data and display windows, the other attributes), so a picture's size is checked before any pixel is
decoded. Decoded by ffmpeg (its native ``exr`` decoder, in imageio-ffmpeg's build: every compression up to DWAB, not
the newer HTJ2K or ZSTD), in its own float format (a conversion to another clips half floats to 0-1).
Written here (:func:`write`): single-part scanlines, ZIP in blocks of 16, as the rows arrive, the chunks deflated by
ISA-L in threads (ffmpeg's encoder is many times slower, on one thread). The attributes that describe the picture
rather than its layout (chromaticities, owner, comments, capture date, place, ...) are carried from an EXR into its
output, with a record of how it was made.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import subprocess
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from classsr_cli.io.icc import srgb_decode, srgb_encode

__all__ = [
    "CARRIED",
    "LEVEL",
    "LINES",
    "MAGIC",
    "Header",
    "Linear",
    "brighter",
    "colour_alpha",
    "cut_short",
    "decode",
    "deflate_module",
    "frame",
    "frame_bytes",
    "frame_encoder",
    "header",
    "is_exr",
    "is_float",
    "linear_bands",
    "linear_rows",
    "split",
    "stops_for",
    "unpack",
    "write",
]

#: An OpenEXR file's first four bytes.
MAGIC = b"\x76\x2f\x31\x01"
#: Attributes carried from an EXR into its output: what the picture is (its colours' chromaticities and white, its
#: maker, place and time), not how it is laid out (the writer writes those) or how it was framed for a render.
CARRIED = ("chromaticities", "whiteLuminance", "adoptedNeutral", "owner", "comments", "capDate", "utcOffset",
           "longitude", "latitude", "altitude", "pixelAspectRatio", "isoSpeed", "expTime", "aperture", "focus",
           "wrapmodes", "envmap")  # fmt: skip
#: Of those, the ones ``--strip-metadata`` keeps: how the picture looks and is laid out for viewing, not who made it,
#: where and when (``owner``, ``comments``, ``capDate``, ``latitude``, ...), or with what camera settings.
LOOKS = ("chromaticities", "whiteLuminance", "adoptedNeutral", "pixelAspectRatio", "wrapmodes", "envmap")


def looks(attributes: dict[str, tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """The ``attributes`` that say how the picture looks (:data:`LOOKS`): what ``--strip-metadata`` keeps."""
    return {k: v for k, v in attributes.items() if k in LOOKS}
#: Scanlines a chunk of the EXRs classsr writes: 16, ZIP compression's (OpenEXR's default; lossless).
LINES = 16
#: Deflate level of each chunk (ISA-L's 0-3, else zlib's): 2. A 4096x3072 picture in linear half floats (the size
#: of ``examples/lighthouse.jpg``'s ×4 upscale) was written in 0.13 s at 2 for 10.2 MB, 0.20 s at 3 for 10.2 MB, 0.12 s
#: at 1 for 10.6 MB, on 2 threads; ffmpeg's EXR encoder took 1.97 s for 8.6 MB (``scripts/exr_speed.py``, docs/cli.md).
LEVEL = 2
_HALF, _FLOAT, _ZIP = 1, 2, 3
#: OpenEXR's compressions newer than ffmpeg's decoder, by code.
NEWER = {10: "HTJ2K256", 11: "HTJ2K32", 12: "LJ2K", 13: "ZSTD"}
_HALF_MAX = 65504.0


def chromaticities(attributes: dict[str, tuple[str, bytes]]) -> tuple[float, ...] | None:
    """The primaries' and white point's CIE xy (red, green, blue, white) an EXR's ``attributes`` say, where they do."""
    kind, value = attributes.get("chromaticities", ("", b""))
    return struct.unpack("<8f", value) if kind == "chromaticities" and len(value) == 32 else None


def is_exr(head: bytes) -> bool:
    """Whether a file starting with ``head`` is OpenEXR."""
    return head.startswith(MAGIC)


class Header(NamedTuple):
    """What the first part's header says: the display window's size (the picture's frame, which ffmpeg decodes,
    zeros where no data lies), the data window (the pixels stored: ``(x0, y0, x1, y1)``, inclusive) and the display
    window's, each channel's name and pixel type (0 uint, 1 half, 2 float), the compression, whether the file is
    tiled, deep or of several parts, and every attribute's raw bytes by name (``(type, value)``)."""

    width: int
    height: int
    data_window: tuple[int, int, int, int]
    display_window: tuple[int, int, int, int]
    channels: tuple[tuple[str, int], ...]
    compression: int
    tiled: bool
    deep: bool
    multipart: bool
    attributes: dict[str, tuple[str, bytes]]
    table: int = 0  # where the first part's offset table starts
    chunks: int | None = None  # how many offsets it holds (None: not known here, as for an unknown compression)

    @property
    def overscan(self) -> bool:
        """Whether data lies outside the display window (which ffmpeg's decoder, so classsr, leaves out)."""
        (x0, y0, x1, y1), (dx0, dy0, dx1, dy1) = self.data_window, self.display_window
        return x0 < dx0 or y0 < dy0 or x1 > dx1 or y1 > dy1

    @property
    def layer(self) -> str | None:
        """The layer whose channels are read where the file has no R, G, B or Y of its own (Photoshop's ``Layer 1.R``,
        Blender's ``ViewLayer.Combined.R``): the one layer holding R, G and B (or Y), else the one of those named
        ``Combined`` (Blender's finished picture); ``None`` otherwise."""
        names = {name for name, _ in self.channels}
        if names & {"R", "G", "B", "Y"}:
            return None
        held = sorted({name.rpartition(".")[0] for name in names if "." in name})
        held = [p for p in held if {f"{p}.R", f"{p}.G", f"{p}.B"} <= names or f"{p}.Y" in names]
        combined = [p for p in held if p.rpartition(".")[2] == "Combined"]
        return held[0] if len(held) == 1 else combined[0] if len(combined) == 1 else None

    @property
    def read(self) -> dict[str, int]:
        """The channels read (R, G, B, A and Y; those of :attr:`layer`), by their names without the layer's, and their
        pixel types."""
        prefix = f"{self.layer}." if self.layer is not None else ""
        named = ((name.removeprefix(prefix), kind) for name, kind in self.channels if name.startswith(prefix))
        return {name: kind for name, kind in named if name in ("R", "G", "B", "A", "Y")}

    @property
    def half(self) -> bool:
        """Whether the channels read are all half floats (an output keeps that pixel type)."""
        return all(t == _HALF for t in self.read.values())

    @property
    def others(self) -> tuple[str, ...]:
        """Channels besides those read (other layers, such as ``diffuse.R``; depth ``Z``): not read."""
        prefix = f"{self.layer}." if self.layer is not None else ""
        read = {prefix + name for name in self.read}
        return tuple(name for name, _ in self.channels if name not in read)

    def chromaticities(self) -> tuple[float, ...] | None:
        """The primaries' and white point's CIE xy (red, green, blue, white), where the file says them."""
        return chromaticities(self.attributes)


def _cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.find(b"\x00", at)
    if end < 0:
        raise ValueError("EXR header cut short")
    return data[at:end].decode("latin-1"), end + 1


def _attributes(data: bytes, at: int = 8) -> tuple[dict[str, tuple[str, bytes]], int]:
    """The attributes (name -> (type, value)) of the header at ``at`` (the first: 8) and the offset just past its
    closing null byte."""
    found = dict[str, tuple[str, bytes]]()
    while True:
        name, at = _cstring(data, at)
        if not name:
            return found, at
        kind, at = _cstring(data, at)
        (size,) = struct.unpack("<i", data[at : at + 4])
        if size < 0 or at + 4 + size > len(data):
            raise ValueError(f"attribute {name!r} runs past the end")
        found[name] = (kind, data[at + 4 : at + 4 + size])
        at += 4 + size


def _channels(value: bytes) -> tuple[tuple[str, int], ...]:
    found, at = [], 0
    while at < len(value) and value[at]:
        name, at = _cstring(value, at)
        (kind,) = struct.unpack("<i", value[at : at + 4])
        found.append((name, kind))
        at += 16  # pixel type, pLinear and three reserved bytes, x and y sampling
    return tuple(found)


def header(data: bytes) -> Header:
    """The :class:`Header` of an EXR starting with ``data`` (the header is at the file's start; a few KB hold it).
    ``ValueError`` where it is not an EXR or its header is cut short or malformed."""
    if not is_exr(data):
        raise ValueError("not an OpenEXR file")
    (version,) = struct.unpack("<I", data[4:8])
    multipart = bool(version & 0x1000)
    try:
        attributes, table = _attributes(data)
        while multipart and table < len(data) and data[table]:  # the other parts' headers, to the empty one after
            table = _attributes(data, table)[1]
        table += multipart
        channels = _channels(attributes["channels"][1])
        windows = [struct.unpack("<4i", attributes[k][1]) for k in ("dataWindow", "displayWindow")]
        compression = attributes["compression"][1][0]
    except (KeyError, IndexError, struct.error) as e:
        raise ValueError(f"EXR header cut short or malformed ({type(e).__name__}: {e})") from None
    (x0, y0, x1, y1), (dx0, dy0, dx1, dy1) = windows
    if x1 < x0 or y1 < y0 or dx1 < dx0 or dy1 < dy0:
        raise ValueError("EXR window of negative size")
    tiled = bool(version & 0x200) or attributes.get("type", ("", b""))[1].startswith(b"tiledimage")
    return Header(width=dx1 - dx0 + 1, height=dy1 - dy0 + 1, data_window=windows[0], display_window=windows[1],
                  channels=channels, compression=compression, tiled=tiled, deep=bool(version & 0x800),
                  multipart=multipart, attributes=attributes, table=table,
                  chunks=_chunks(attributes, x1 - x0 + 1, y1 - y0 + 1, compression, tiled))  # fmt: skip


#: Scanlines a chunk holds, by compression code (OpenEXR's file layout).
_BLOCK_LINES = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}


def _chunks(attributes: dict[str, tuple[str, bytes]], width: int, height: int, compression: int, tiled: bool) -> int | None:
    """How many chunks the first part's offset table lists: its ``chunkCount``, else as the layout makes them
    (scanline blocks; tiles over every level of a mipmap or a ripmap, each level's size rounded down or up as the
    file says, as OpenEXR lays them out); ``None`` where not known here."""
    if "chunkCount" in attributes:
        return int(struct.unpack("<i", attributes["chunkCount"][1][:4])[0])
    if not tiled:
        lines = _BLOCK_LINES.get(compression)
        return None if lines is None else -(-height // lines)
    kind, value = attributes.get("tiles", ("", b""))
    if kind != "tiledesc" or len(value) < 9:
        return None
    xs, ys = struct.unpack("<II", value[:8])
    mode, up = value[8] & 0x0F, value[8] >> 4 == 1  # one level, mipmap, ripmap; each level's size rounded down or up
    if not (xs and ys) or mode > 2:
        return None

    def levels(n: int) -> int:  # as many as halve the size to 1 (OpenEXR's numLevels)
        return ((n - 1).bit_length() if up else n.bit_length() - 1) + 1

    def size(n: int, level: int) -> int:
        return max(1, -(-n >> level) if up else n >> level)

    def tiles(lx: int, ly: int) -> int:
        return -(-size(width, lx) // xs) * -(-size(height, ly) // ys)

    if mode == 0:
        return tiles(0, 0)
    if mode == 1:
        return sum(tiles(level, level) for level in range(levels(max(width, height))))
    return sum(tiles(lx, ly) for ly in range(levels(height)) for lx in range(levels(width)))


def cut_short(path: Path, head: Header) -> str | None:
    """Why the file ``path``, of header ``head``, does not hold all its chunks (a download or copy cut short, where
    ffmpeg's decoder would give zeros for what is missing), or ``None``: every offset in the first part's table within
    the file, and the chunk furthest in ending before the file does."""
    if not head.chunks:
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(head.table)
        table = f.read(8 * head.chunks)
        if len(table) < 8 * head.chunks:
            return f"its offset table ends at byte {size}"
        offsets = struct.unpack(f"<{head.chunks}Q", table)
        last = max(offsets)
        if min(offsets) < head.table + len(table) or last >= size:
            return f"{sum(o < head.table + len(table) or o >= size for o in offsets)} of its {head.chunks} chunks missing"
        lead = 4 * head.multipart + (16 if head.tiled else 4)  # part number; tile coordinates and levels, or y
        f.seek(last + lead)
        got = f.read(4)
    if len(got) < 4 or last + lead + 4 + struct.unpack("<i", got)[0] > size:
        return f"its last chunk ends past the file's {size} bytes"
    return None


_PIX_FMT = re.compile(r"Video: exr, (\w+)")
_PLANES = {"grayf16le": 1, "grayf32le": 1, "yaf16le": 2, "yaf32le": 2, "gbrpf16le": 3, "gbrpf32le": 3, "gbrapf16le": 4,
           "gbrapf32le": 4}


def decode(exe: str, source: Path, layer: str | None = None) -> np.ndarray:
    """The first part's pixels as ffmpeg's native decoder stores them: ``(H, W, C)`` float32 of linear light, C 1
    (Y), 2 (YA), 3 (RGB) or 4 (RGBA; colour premultiplied by alpha, as EXR stores it), half floats widened exactly (asked
    in ffmpeg's own pixel format: a conversion to another would clip them to 0-1); those of ``layer`` where one is
    given (:attr:`Header.layer`). ``ValueError`` with ffmpeg's reason where it fails, also where the decoder logged an
    error and went on (a chunk whose data does not inflate: ffmpeg gives its rows as zeros, exit 0)."""
    got = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-loglevel", "level+info", "-xerror", *(("-layer", layer) if layer else ()),
         "-i", str(source), "-map", "0:v:0", "-frames:v", "1", "-f", "rawvideo", "-"], capture_output=True, check=False,
    )  # fmt: skip
    text = got.stderr.decode(errors="replace")
    found = _PIX_FMT.search(text)
    size = re.search(r"Video: exr, [^\n]*?, (\d+)x(\d+)", text)
    logged = [ln for ln in text.splitlines() if "[exr @" in ln and ("[error]" in ln or "[fatal]" in ln)]
    if logged:
        said = re.sub(r"^(\[[^\]]*\]\s*)+", "", logged[0]).strip().rstrip(".")
        raise ValueError(f"a chunk's data does not decode: {said}")
    if got.returncode or found is None or size is None:
        from classsr_cli.io.video import ffmpeg_reason

        raise ValueError(ffmpeg_reason(text, "exr", "ffmpeg decoded nothing"))
    fmt, (width, height) = found.group(1), (int(size.group(1)), int(size.group(2)))
    if fmt not in _PLANES:
        raise ValueError(f"pixels ffmpeg gives as {fmt}, which classsr does not read")
    if len(got.stdout) != frame_bytes(fmt, width, height):
        raise ValueError(f"ffmpeg gave {len(got.stdout)} bytes for a {width}x{height} {fmt} picture")
    return unpack(got.stdout, fmt, width, height)


def is_float(pix_fmt: str | None) -> bool:
    """Whether ffmpeg's pixel format ``pix_fmt`` is one of the float ones an EXR decodes to."""
    return (pix_fmt or "") in _PLANES


def frame_bytes(pix_fmt: str, width: int, height: int) -> int:
    """The bytes of one raw ``pix_fmt`` frame (:func:`is_float`)."""
    return _PLANES[pix_fmt] * width * height * (2 if "f16" in pix_fmt else 4)


def unpack(data: bytes | bytearray, pix_fmt: str, width: int, height: int) -> np.ndarray:
    """A raw frame of float ``pix_fmt`` as ``(H, W, C)`` float32 R, G, B (A), or Y (A), half floats widened exactly."""
    planes, kind = _PLANES[pix_fmt], "<f2" if "f16" in pix_fmt else "<f4"
    if planes == 2:  # packed: Y, A a pixel
        return np.frombuffer(data, kind).reshape(height, width, 2).astype(np.float32)
    stacked = np.frombuffer(data, kind).reshape(planes, height, width).astype(np.float32)
    order = (0,) if planes == 1 else (2, 0, 1, 3)[:planes]  # ffmpeg's planes are G, B, R (A): to R, G, B (A)
    return np.ascontiguousarray(np.moveaxis(stacked[list(order)], 0, -1))


@dataclass(frozen=True)
class Linear:
    """What a scene-linear source (EXR) carries beside its 16-bit pixels: whether its channels were half floats,
    its light outside 0-1 (``outside``: ``(h, w, c)`` float32, the linear value minus its clip to 0-1; ``None``
    where all of it lies within), to be brought to ``size`` (``(width, height)``) when an EXR is written, and its
    header's :data:`CARRIED` attributes (name -> (type, value)), or a Radiance file's header lines (``lines``)."""

    half: bool
    outside: np.ndarray | None = None
    size: tuple[int, int] | None = None
    attributes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    lines: tuple[str, ...] = ()
    stops: int = 0  # the pixels and ``outside`` hold the light 2**stops times darker (:func:`split`)
    share: float = 0.0  # the fraction of pixels with light outside 0-1 as the file has it

    def resized(self, width: int, height: int) -> Linear:
        return replace(self, size=(width, height))

    def band(self, start: int, rows: int) -> np.ndarray | None:
        """Rows ``start .. start + rows`` of ``outside`` brought to ``size`` (``(rows, W, C)`` float32; Pillow's
        bicubic, in linear light), or ``None`` where no light outside 0-1 reaches them. Made from the source rows the
        filter reaches alone (the same values as the whole picture resized, within float rounding; tested), so an
        output written in bands holds one band of it at a time."""
        if self.outside is None:
            return None
        height, width = self.outside.shape[:2]
        out_w, out_h = self.size or (width, height)
        if (out_w, out_h) == (width, height):
            part = self.outside[start : start + rows]
            return part if part.any() else None
        from PIL import Image

        scale = height / out_h
        top, bottom = start * scale, (start + rows) * scale
        reach = 2 * max(1.0, scale) + 1  # bicubic's support, in source rows, and one more
        lo, hi = max(0, math.floor(top - reach)), min(height, math.ceil(bottom + reach))
        source = self.outside[lo:hi]
        if not source.any():
            return None
        box = (0.0, top - lo, float(width), bottom - lo)
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(source[..., c]), "F").resize(
            (out_w, rows), Image.Resampling.BICUBIC, box=box)) for c in range(source.shape[2])], axis=-1)  # fmt: skip


#: The share of a picture's pixels the model sees within its range (0-1): where more than 1 % of them are brighter, the
#: light is made darker by whole stops (exactly, in floats) until 99 % of them lie within, and brought back after.
#: Measured on ten photos made into light two and four stops over their exposure: the ×4 default, at the stops this
#: picks, 0.8-1.8 dB above the same model at none (which is no better than bicubic) by every rendering of the light
#: (``scripts/hdr_exposure.py``, docs/cli.md).
WITHIN = 0.99


def split(
    linear: np.ndarray, alpha: np.ndarray | None, half: bool, *, within: float | None = WITHIN
) -> tuple[np.ndarray, np.ndarray | None, Linear, int]:
    """A decoded picture (``(H, W, C)`` float32, colour premultiplied by ``alpha`` as EXR stores it) as 16-bit
    sRGB-encoded pixels of its light within 0-1 (colour divided by alpha where alpha is above 0: the straight colour
    the pipeline takes), 16-bit alpha, the :class:`Linear` rest, and the count of non-finite values (NaN, infinity),
    which become 0 and the largest half float. Where more than 1 - ``within`` of the visible pixels are brighter than 1,
    the light is first made darker by whole stops until ``within`` of them lie within (``Linear.stops``), so the model
    sees most of the picture, as a photo exposed for it would show it (``None``: never)."""
    bad = int(np.count_nonzero(~np.isfinite(linear))) + (0 if alpha is None else int(np.count_nonzero(~np.isfinite(alpha))))
    colour, a = _straight(linear, alpha)
    share = float(np.mean(np.any((colour < 0) | (colour > 1), axis=-1)))
    stops = 0 if within is None else _stops(colour, a, within)
    pixels, a16, rest = _levels(colour, a, stops)
    return pixels, a16, Linear(half=half, outside=rest, stops=stops, share=share), bad


def stops_for(linear: np.ndarray, alpha: np.ndarray | None) -> int:
    """The stops :func:`split` makes a picture darker by (a sequence's first frame: its frames are all read at it)."""
    return _stops(*_straight(linear, alpha), WITHIN)


def frame(
    linear: np.ndarray, alpha: np.ndarray | None, stops: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A frame of a sequence of linear light as :func:`split` reads a picture, at the sequence's ``stops``: 16-bit
    sRGB-encoded pixels of its light within 0-1, 16-bit alpha, and the light outside 0-1 (as :attr:`Linear.outside`,
    ``None`` where there is none: an EXR output adds it back, a video holds no more)."""
    return _levels(*_straight(linear, alpha), stops)


def colour_alpha(decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A decoded picture's (:func:`decode`, :func:`unpack`) colour, ``(H, W, 3)`` or ``(H, W, 1)`` (Y), and alpha."""
    channels = decoded.shape[2]
    return decoded[..., : 3 if channels >= 3 else 1], decoded[..., -1] if channels in (2, 4) else None


def _straight(linear: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour divided by alpha where alpha is above 0 (a copy), non-finite values made 0 and the largest half float;
    alpha clipped to 0-1."""
    colour = np.nan_to_num(linear, nan=0.0, posinf=65504.0, neginf=-65504.0)
    if alpha is None:
        return colour, None
    a = np.clip(np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    seen = a > 0
    colour[seen] /= a[seen][:, None]
    return colour, a


def _stops(colour: np.ndarray, alpha: np.ndarray | None, within: float) -> int:
    peak = np.max(colour, axis=-1)
    seen = peak if alpha is None else peak[alpha > 0]
    top = float(np.quantile(seen, within)) if seen.size else 0.0
    return max(0, math.ceil(math.log2(top))) if top > 1 else 0


def _levels(
    colour: np.ndarray, alpha: np.ndarray | None, stops: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """16-bit sRGB-encoded pixels of straight ``colour`` made ``stops`` darker (in place), clipped to 0-1; 16-bit
    ``alpha``; and what lay outside 0-1 (``None`` where nothing did)."""
    if stops:
        colour *= np.float32(2.0**-stops)
    inside = np.clip(colour, 0.0, 1.0)
    outside = colour - inside
    a16 = None if alpha is None else np.rint(alpha * 65535.0).astype(np.uint16)
    return np.rint(srgb_encode(inside) * 65535.0).astype(np.uint16), a16, outside if outside.any() else None


def shown(rows: np.ndarray, linear: Linear | None, start: int = 0) -> np.ndarray:
    """Rows ``start ..`` of pixels split with ``linear`` as a format of sRGB-encoded levels 0-1 shows them: the light
    outside 0-1 added back, as bright as the file's, clipped to 0-1 (the pixels hold it ``linear.stops`` darker)."""
    if linear is None or (not linear.stops and linear.outside is None):
        return rows
    top = int(np.iinfo(rows.dtype).max)
    rest = linear.band(start, rows.shape[0])
    if rest is None:  # a lookup table does it
        return brighter(top, linear.stops)[rows]
    light = (_decoding(top)[rows] + rest) * np.float32(2.0**linear.stops)
    return np.rint(srgb_encode(np.clip(light, 0.0, 1.0)) * top).astype(rows.dtype)


@functools.cache
def brighter(top: int, stops: int) -> np.ndarray:
    """Each of ``top + 1`` sRGB-encoded levels ``stops`` brighter in linear light, clipped at 1 (a lookup table)."""
    light = srgb_decode(np.arange(top + 1, dtype=np.float64) / top) * 2.0**stops
    return np.rint(srgb_encode(np.minimum(light, 1.0)) * top).astype(np.uint8 if top == 255 else np.uint16)


def linear_rows(
    rows: np.ndarray, alpha: np.ndarray | None, linear: Linear | None, start: int, *, half: bool,
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Rows ``start ..`` of an EXR output, ``(n, W, C)`` float32 linear light as EXR stores it (colour premultiplied
    by alpha, alpha last), from ``rows`` of sRGB-encoded pixels (uint8 or uint16; gray as Y) and their ``alpha``:
    decoded by sRGB's curve (or ``decode``: an HDR picture's own, :func:`classsr_cli.io.sdr.linear`), ``linear``'s
    light outside 0-1 added back, held within half floats' range where ``half``."""
    top = int(np.iinfo(rows.dtype).max)
    out = _decoding(top)[rows] if decode is None else decode(rows)
    rest = None if linear is None else linear.band(start, rows.shape[0])
    if rest is not None:
        out += rest
    if linear is not None and linear.stops:
        out *= np.float32(2.0**linear.stops)  # exact in floats
    if half:
        np.clip(out, -_HALF_MAX, _HALF_MAX, out=out)
    if alpha is None:
        return out
    a = alpha.astype(np.float32)[..., None] / top
    return np.concatenate([out * a, a], axis=2)


def linear_bands(
    bands: Iterable[np.ndarray], alpha: np.ndarray | None, linear: Linear | None, half: bool,
    decode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[np.ndarray]:
    """The sRGB-encoded ``bands`` (top to bottom; or as ``decode`` decodes them) and the matching rows of ``alpha`` as
    linear light (:func:`linear_rows`)."""
    at = 0
    for band in bands:
        a = None if alpha is None else alpha[at : at + band.shape[0]]
        yield linear_rows(band, a, linear, at, half=half, decode=decode)
        at += band.shape[0]


@functools.cache
def _decoding(top: int) -> np.ndarray:
    """sRGB's curve decoded at each of ``top + 1`` levels (a lookup table), float32."""
    return srgb_decode(np.arange(top + 1, dtype=np.float64) / top).astype(np.float32)


def _attribute(name: str, kind: str, value: bytes) -> bytes:
    return name.encode("latin-1") + b"\x00" + kind.encode("latin-1") + b"\x00" + struct.pack("<i", len(value)) + value


def _header(width: int, height: int, names: list[str], half: bool, attributes: dict[str, tuple[str, bytes]],
            made_by: str | None) -> bytes:
    """A single-part scanline header (ZIP compression) for the channels ``names``, with the :data:`CARRIED` of
    ``attributes`` and ``made_by`` as a string attribute ``classsr``."""
    chlist = b"".join(n.encode() + b"\x00" + struct.pack("<iB3xii", _HALF if half else _FLOAT, 0, 1, 1)
                      for n in sorted(names)) + b"\x00"  # fmt: skip
    window = struct.pack("<4i", 0, 0, width - 1, height - 1)
    own = {"channels": ("chlist", chlist), "compression": ("compression", bytes([_ZIP])), "dataWindow": ("box2i", window),
           "displayWindow": ("box2i", window), "lineOrder": ("lineOrder", b"\x00"),
           "pixelAspectRatio": ("float", struct.pack("<f", 1.0)), "screenWindowCenter": ("v2f", struct.pack("<2f", 0, 0)),
           "screenWindowWidth": ("float", struct.pack("<f", 1.0))}  # fmt: skip
    own.update({k: v for k, v in attributes.items() if k in CARRIED})
    if made_by:
        own["classsr"] = ("string", made_by.encode("utf-8"))
    long_names = any(len(k) > 31 for k in own)
    body = b"".join(_attribute(k, *v) for k, v in own.items())
    return MAGIC + struct.pack("<I", 2 | (0x400 if long_names else 0)) + body + b"\x00"


def _zip_chunk(rows: np.ndarray, half: bool) -> bytes:
    """``rows`` (``(n, W, C)`` float32, channels in name order) as one ZIP chunk's data: each scanline's channels one
    after another, the bytes split into even and odd halves, each byte stored as its difference from the one before
    (plus 128), deflated; stored raw where deflate would not make it smaller (as OpenEXR does)."""
    raw = np.ascontiguousarray(rows.transpose(0, 2, 1)).astype("<f2" if half else "<f4").view(np.uint8).ravel()
    n, middle = raw.size, (raw.size + 1) // 2
    split = np.empty(n, np.uint8)
    split[:middle], split[middle:] = raw[0::2], raw[1::2]
    delta = np.empty(n, np.uint8)
    delta[0] = split[0]
    np.subtract(split[1:], split[:-1], out=delta[1:])
    delta[1:] += 128
    packed = _deflate(delta.data)
    return packed if len(packed) < n else raw.tobytes()


def _deflate(data: memoryview) -> bytes:
    """zlib data at :data:`LEVEL`, by :func:`deflate_module`'s."""
    return bytes(deflate_module().compress(data, LEVEL))


def deflate_module() -> Any:
    """The zlib module classsr compresses with (EXR chunks, PNG data): ISA-L's (``isal``, a dependency where it has
    wheels: x86-64 and ARM64) where installed, many times faster than zlib's at its low levels, else zlib itself. Both
    write zlib streams every reader decodes."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


def write(
    f: BinaryIO, bands: Iterable[np.ndarray], *, width: int, height: int, channels: int, half: bool,
    attributes: dict[str, tuple[str, bytes]] | None = None, made_by: str | None = None, workers: int = 1,
) -> None:
    """Write a single-part scanline OpenEXR (ZIP, blocks of :data:`LINES` scanlines; half or float channels Y, YA,
    RGB or RGBA: ``channels`` 1 to 4) into the seekable file ``f`` from ``bands``: ``(n, W, channels)`` float32 rows top
    to bottom, as EXR stores them (:func:`linear_rows`). Chunks are compressed by ``workers`` threads as the bands
    arrive, and the offset table is filled in last."""
    names = {1: ["Y"], 2: ["Y", "A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}[channels]
    order = sorted(range(channels), key=lambda i: names[i])  # EXR stores channels by name: A, B, G, R
    count = -(-height // LINES)
    f.write(_header(width, height, names, half, attributes or {}, made_by))
    table = f.tell()
    f.write(bytes(8 * count))
    offsets: list[int] = []

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        held, at = np.empty((0, width, channels), np.float32), 0
        for band in bands:
            held = np.concatenate([held, band]) if held.shape[0] else band
            while held.shape[0] >= LINES:
                yield at, held[:LINES][..., order]
                held, at = held[LINES:], at + LINES
        if held.shape[0]:
            yield at, held[..., order]
        if at + held.shape[0] != height:
            raise ValueError(f"got {at + held.shape[0]} rows of {height}")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque[tuple[int, Future[bytes]]] = deque()
        for y, rows in blocks():
            pending.append((y, pool.submit(_zip_chunk, rows, half)))
            while len(pending) > 2 * max(1, workers):
                _put(f, *pending.popleft(), offsets)
        while pending:
            _put(f, *pending.popleft(), offsets)
    f.seek(table)
    f.write(struct.pack(f"<{count}Q", *offsets))
    f.seek(0, 2)


def _put(f: BinaryIO, y: int, chunk: Future[bytes], offsets: list[int]) -> None:
    data = chunk.result()
    offsets.append(f.tell())
    f.write(struct.pack("<ii", y, len(data)))
    f.write(data)


def frame_encoder(
    *, alpha: bool = False, half: bool = True, gray: bool = False, attributes: dict[str, tuple[str, bytes]] | None = None,
    made_by: str | None = None, workers: int = 2, decode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Callable[[Path, list[np.ndarray], Linear | None], None]:
    """What writes a frame of an OpenEXR sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, 3)``
    uint16 rows of sRGB-encoded levels (alpha as a fourth channel with ``alpha``) in linear light, the frame's
    :class:`Linear` (the stops it was read darker by, its light outside 0-1) added back (:func:`linear_rows`), in half
    floats unless ``half`` is false, as Y (and A) where ``gray`` (the first channel: a gray source's frames come as
    three equal ones), with ``attributes`` and ``made_by`` (:func:`write`); an HDR source's levels as ``decode``
    decodes them (:func:`classsr_cli.io.sdr.linear`)."""

    def encode(path: Path, rows: list[np.ndarray], light: Linear | None) -> None:
        colour = [band[..., : 1 if gray else 3] for band in rows]
        a = np.concatenate([band[..., 3] for band in rows]) if alpha else None
        with path.open("wb") as f:
            write(f, linear_bands(colour, a, light, half, decode), width=rows[0].shape[1], height=sum(len(b) for b in rows),
                  channels=(1 if gray else 3) + alpha, half=half, attributes=attributes, made_by=made_by,
                  workers=workers)  # fmt: skip

    return encode
