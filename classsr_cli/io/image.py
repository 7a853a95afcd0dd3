"""Reading and writing images, with the whole mode policy in one place.

Reading (:func:`read_image`) gives a :class:`Picture`: colour as ``(H, W, C)`` ``uint8`` or ``uint16`` with
``C = 1`` (gray) or ``3`` (RGB), and the alpha channel, if any, apart as ``(H, W)`` of the same dtype.

* Formats: PNG, JPEG, WebP, AVIF, HEIC/HEIF (through pillow-heif's plugin), JPEG XL (through the bundled ffmpeg's
  libjxl, :mod:`classsr_cli.io.jxl`), OpenEXR (through its native decoder, :mod:`classsr_cli.io.exr`: scene-linear
  light within 0-1 encoded by sRGB's curve into 16-bit pixels, the light outside kept apart and added back into an EXR
  output; Radiance HDR alike, :mod:`classsr_cli.io.radiance`), TIFF, BMP, GIF (first frame), TGA (tried only on a
  ``.tga`` file or one with TGA 2.0's footer: TGA 1.0 has no signature), Netpbm (PBM, PGM, PPM; a deep PPM
  through :mod:`classsr_cli.io.pnm`), JPEG 2000 (a deep one through the bundled ffmpeg), QOI, DDS (its largest mip
  level; written with its compression and mip levels, :mod:`classsr_cli.io.dds`),
  PFM (linear light, :mod:`classsr_cli.io.pnm`) and Photoshop documents (their flattened picture,
  :mod:`classsr_cli.io.psd`; written as TIFF by default). Other Pillow plugins are never tried.
* EXIF orientation is applied to the pixels; the tag is then dropped from the carried EXIF.
* Grayscale (``1``, ``L``, ``I;16``) stays grayscale; ``LA`` keeps its alpha.
* Palette images become RGB, or RGBA when they have transparency; an RGB or gray colour key (PNG ``tRNS``)
  becomes alpha (RGBA, LA) the same way. CMYK (and YCbCr, LAB, HSV) become RGB,
  through the embedded ICC profile when there is one.
* 16-bit PNG and TIFF are read at 16 bits (Pillow reads 16-bit colour as 8-bit, so 16-bit PNG goes through
  the bundled ffmpeg, or pypng for a colour key, and 16-bit TIFF through tifffile) and written back at 16 bits;
  a 10 or 12-bit HEIF is read at 16 bits (its levels stretched to 0-65535) and written back at its depth, a 10 or
  12-bit AVIF read at 16 bits too (decoded by the bundled ffmpeg: Pillow's AVIF decoder gives 8); either kept at its
  depth into HEIF or AVIF.
* Animated GIF/WebP and multi-page TIFF: the first frame only, with a note. An HDR JPEG's gain map (Ultra HDR, ISO
  21496-1; :mod:`classsr_cli.io.gainmap`) is read with the picture, turned and resized with it, and written behind
  a JPEG output; an iPhone HEIC's (its auxiliary image) into a HEIC output as it came, into a JPEG one as Ultra HDR's.
* The ICC profile, EXIF and XMP are kept and written to outputs whose format holds them (PNG, JPEG, WebP,
  AVIF, HEIF, TIFF), with the print resolution (PNG, JPEG, TIFF) and a PNG's text chunks (PNG); XMP's orientation and pixel
  dimensions are brought up to date, as EXIF's are.
* A decompression-bomb guard refuses images above ``max_pixels`` before any pixel is decoded.

Writing (:func:`write_image`) is atomic: a temporary file in the target folder, then a rename; an existing
file is refused unless ``overwrite``. Every failure is a typed error that names the file. Every PNG goes through
one writer of classsr's own (:func:`_png_writer`: Up filter, ISA-L's deflate at level 1, several times faster
than Pillow's at a smaller size); the other formats through Pillow (tifffile at 16 bits).
:func:`write_image_rows` writes an image handed over in row bands, for outputs too large to hold whole: PNG is
encoded as the rows arrive; the other formats collect the rows in a memory-mapped file beside the output first.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import mmap
import os
import re
import secrets
import struct
import subprocess
import tempfile
import threading
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from classsr_cli import __version__
from classsr_cli.errors import (
    ALREADY_EXISTS,
    ConfigError,
    InputError,
    OutputError,
    OutputExistsError,
    PixelLimitError,
)
from classsr_cli.io import bmff, bmp, dds, gainmap, motion, packed, pnm
from classsr_cli.io.dds import Texture
from classsr_cli.io.exif import EXIF_IFD, GPS_IFD, INTEROP_IFD, relaid, relaid_in_ifd
from classsr_cli.io.exr import Linear, shown
from classsr_cli.io.files import IMAGE_SUFFIXES, RAW_ADVICE, RAW_SUFFIXES, VIDEO_SUFFIXES
from classsr_cli.io.gainmap import GainMap
from classsr_cli.io.icc import d50_white, is_gray, libpng_warns, rgb_of_gray, with_srgb_curves

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "HEIF_SUFFIXES",
    "OWN_NAMES",
    "QUALITY_FORMATS",
    "READ_NAMES",
    "READ_SUFFIXES",
    "WRITE_FORMATS",
    "Meta",
    "Nclx",
    "Picture",
    "PngText",
    "Stereo",
    "article",
    "check_output_size",
    "exr_attributes",
    "exr_frames",
    "full_circle",
    "jpeg_encoder",
    "jpeg_quality_of",
    "light_decoder",
    "open_formats",
    "output_format",
    "output_suffix",
    "own_format",
    "panorama_only",
    "peek_size",
    "pfm_encoder",
    "pfm_frames",
    "png_encoder",
    "primaries_of",
    "radiance_encoder",
    "radiance_frames",
    "radiance_lines",
    "read_image",
    "readable_formats",
    "tiff_encoder",
    "to_8bit",
    "webp_lossless",
    "write_image",
    "write_image_rows",
]

#: Largest input accepted by default, in pixels (width x height of the LR input).
DEFAULT_MAX_PIXELS = 100_000_000

_READ_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "HEIF", "TIFF", "BMP", "GIF", "JPEG2000", "QOI", "PPM", "DDS", "TGA",
                 "ICO", "CUR", "ICNS", "BLP")  # JPEG also opens MPO; an icon's or a cursor's largest picture
#: Suffixes of TGA files: the one format opened by its name (a TGA 1.0 file has no signature, so that Pillow's TGA
#: reader would take a damaged file of another format for one) or by TGA 2.0's footer (:data:`TGA_FOOTER`).
_TGA_SUFFIXES = (".tga", ".icb", ".vda", ".vst")
#: The last 18 bytes of a TGA 2.0 file, which GIMP, Photoshop, ImageMagick, ffmpeg, Pillow and classsr write: the
#: signature a TGA on standard input, or under another name, is known by.
TGA_FOOTER = b"TRUEVISION-XFILE.\x00"
#: File suffixes picked up when a folder or glob is given (:data:`classsr_cli.io.files.IMAGE_SUFFIXES`).
READ_SUFFIXES = IMAGE_SUFFIXES
#: HEIF's suffixes (HEIC: HEVC in HEIF, what phones save; ``.hif``: cameras').
HEIF_SUFFIXES = (".heic", ".heif", ".hif")
#: The formats classsr reads, as they are said.
READ_NAMES = ("PNG, JPEG, WebP, AVIF, HEIC, JPEG XL, JPEG 2000, OpenEXR, Radiance HDR, PFM, TIFF, BMP, GIF, QOI, TGA, "
              "PPM/PGM/PBM/PAM, DDS, BLP, ICO/CUR/ICNS, Photoshop PSD or OpenRaster/Krita")
#: Output suffix -> Pillow format name.
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".mpo": "JPEG",  # a 3D camera's multi-picture JPEG: its views kept (Meta.stereo)
    ".webp": "WEBP",
    ".avif": "AVIF",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".hif": "HEIF",
    ".jxl": "JXL",
    ".exr": "EXR",
    ".hdr": "HDR",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".tga": "TGA",
    ".dds": "DDS",  # classsr's mip chain (io.dds) of Pillow's levels: the source's compression where Pillow encodes it
    ".qoi": "QOI",
    ".jp2": "JPEG2000",  # lossless: Pillow's OpenJPEG at 8 bits, ffmpeg's encoder at 16 (_jp2_writer16)
    ".j2k": "JPEG2000",  # the bare codestream
    ".ppm": "PPM",  # classsr's own Netpbm writer (io.pnm): colour
    ".pgm": "PGM",  # gray (a colour picture's luma, said)
    ".pnm": "PNM",  # as the picture is: PGM for gray, PPM for colour
    ".pam": "PAM",  # classsr's own (io.pnm): Netpbm with alpha
    ".pfm": "PFM",  # classsr's own (io.pnm): linear light in 32-bit floats
}
#: The Netpbm outputs, written by :func:`classsr_cli.io.pnm.write`.
_PNM_FORMATS = ("PPM", "PGM", "PNM")
#: The largest side each format's encoder writes (JPEG: libjpeg's 65500; WebP: 16383; GIF, which ``classsr video``
#: writes: 65535), or its decoders open (AVIF: libavif's default limit, Pillow's and browsers'; classsr writes one
#: picture, no grid); PNG, TIFF and BMP have none an upscale reaches.
MAX_SIDE = {"JPEG": 65500, "WEBP": 16383, "TGA": 65535, "AVIF": 32768, "GIF": 65535}
_META_FORMATS = ("PNG", "JPEG", "WEBP", "AVIF", "HEIF", "JXL", "TIFF", "EXR", "HDR")  # hold ICC + EXIF (EXR, HDR: their own)
_LINEAR_FORMATS = ("EXR", "HDR", "PFM")  # formats of linear light with no ceiling (io.exr.Linear)
#: Formats written at a quality (``--quality``); the others are lossless.
QUALITY_FORMATS = ("JPEG", "WEBP", "AVIF", "HEIF", "JXL")
_HIGH_BIT_FORMATS = ("PNG", "TIFF", "HEIF", "JXL", "EXR", "HDR", "PFM", "JPEG2000", "PAM", *_PNM_FORMATS)  # HEIF: 10 bits (what phones and Apple's and Windows' decoders take)
_ALPHA_FORMATS = ("PNG", "WEBP", "AVIF", "HEIF", "JXL", "TIFF", "EXR", "TGA", "JPEG2000", "QOI", "PAM", "DDS")  # BMP's 32-bit alpha: most readers (Pillow too) ignore it
#: Deflate level of every PNG written (:func:`_png_writer`, ISA-L's or zlib's, :func:`_deflater`): 1, the
#: fastest, as OpenCV's ``imwrite`` (Real-ESRGAN's writer) defaults to. A 4096x3072 ×4 output of
#: ``examples/lighthouse.jpg`` took 1.16 s to write by Pillow at zlib's default 6 and 0.36 s at 1, for a file
#: 23 % larger (3.2 against 3.95 MB): at 6 the write took longer than the model (docs/experiments.md). Lossless.
PNG_LEVEL = 1
#: PNG filter of every row (:func:`_png_writer`): 2, Up (each byte minus the byte above it). An upscaled image
#: changes slowly from row to row, so one fixed filter compresses it as well as Pillow's choice per row among
#: all five, in half the time: the ×4 output of ``examples/lighthouse.jpg`` 0.16 s and 3.87 MB against Pillow's
#: 0.37 s and 3.95 MB at level 1; Sub, which the banded and 16-bit writers used before, 4.98 MB
#: (``scripts/png_filters.py``, docs/experiments.md).
PNG_FILTER = 2
#: Threads that compress a TIFF's strips (:func:`_tiff_writer`; zlib lets go of the GIL while it works).
_TIFF_WORKERS = max(1, min(4, os.cpu_count() or 1))
_ORIENTATION = 0x0112
# Base-IFD tags worth carrying from a TIFF (the rest of a TIFF's tags describe its own pixel layout).
_TIFF_EXIF_TAGS = {270, 271, 272, 274, 282, 283, 296, 305, 306, 315, 33432, 34665, 34853}
_IMAGE_DESCRIPTION = 270
_X_RESOLUTION = 282
#: TIFF's compressions by their code, as said.
_TIFF_COMPRESSIONS = {5: "LZW", 7: "JPEG", 8: "Deflate", 32946: "Deflate", 32773: "PackBits", 50000: "Zstandard",
                      34925: "LZMA", 50001: "WebP", 50002: "JPEG XL", 34887: "LERC", 34676: "SGILog", 34677: "SGILog24"}
#: Those Pillow's libtiff is built without (its wheels'): a load of one printed "WEBP compression support is not
#: configured" on stderr and failed as "decoder error -2".
_TIFF_UNREAD = (50001, 50002, 34887)
#: XResolution, YResolution, ResolutionUnit: a TIFF output's are its picture's print resolution, not its EXIF's (a
#: camera's 65535 as the unit, which libtiff refuses on stderr).
_RESOLUTION_TAGS = (282, 283, 296)
#: Held while Pillow's own bomb check is off (:func:`pixel_limit_off`); re-entrant: a read may read a file held in
#: the one it reads (:func:`_read_part`: the PNG inside a BMP).
_BOMB_LOCK = threading.RLock()


class PngText(NamedTuple):
    """One PNG text chunk: its keyword and text, and for an international one (iTXt) the language of the text (an
    RFC 3066 tag such as ``fr``; empty: unknown) and the keyword translated into it."""

    keyword: str
    text: str
    language: str = ""
    translated: str = ""


class PngGamma(NamedTuple):
    """A PNG's ``gAMA`` (its image gamma times 100,000: 45455 is 1/2.2) and ``cHRM`` (white point and primaries' x, y
    times 100,000; ``None``: none), which browsers apply where it has no ICC profile."""

    gamma: int
    chroma: tuple[int, ...] | None = None

    @property
    def srgb_like(self) -> bool:
        """A gamma of about 1/2.2 and no chromaticities: shown as sRGB anyway."""
        return self.chroma is None and 45000 <= self.gamma <= 46000

    def chunks(self) -> bytes:
        return _png_chunk(b"gAMA", struct.pack(">I", self.gamma)) + (
            _png_chunk(b"cHRM", struct.pack(">8I", *self.chroma)) if self.chroma else b"")


class Nclx(NamedTuple):
    """A HEIF's or JPEG XL's colour description without an ICC profile (ITU-T H.273 code points): colour primaries,
    transfer characteristics, matrix coefficients, full range."""

    primaries: int
    transfer: int
    matrix: int
    full_range: bool
    #: An HDR HEIF's light levels, its ``clli`` (MaxCLL, MaxFALL) and ``mdcv`` (the mastering display) property
    #: boxes, whole: carried into a HEIF output, and the peak an SDR output is tone-mapped from (:attr:`peak`).
    light: tuple[bytes, ...] = ()

    @property
    def peak(self) -> float:
        """The light (cd/m²) a PQ picture's brightest pixels are tone-mapped from, as ``classsr video`` takes a PQ
        video's: its MaxCLL, else its mastering display's peak, else :data:`~classsr_cli.io.sdr.HDR_PEAK`."""
        from classsr_cli.io.sdr import HDR_PEAK

        boxes = {b[4:8]: b for b in self.light}
        if self.transfer == 16 and len(clli := boxes.get(b"clli", b"")) >= 10 and (cll := struct.unpack_from(">H", clli, 8)[0]):
            return float(cll)
        if self.transfer == 16 and len(mdcv := boxes.get(b"mdcv", b"")) >= 28 and (top := struct.unpack_from(">I", mdcv, 24)[0]):
            return top / 10000
        return float(HDR_PEAK)

    @property
    def srgb(self) -> bool:
        """Whether it says sRGB (BT.709 primaries, sRGB's curve) or nothing: what an untagged picture is read as."""
        return self.primaries in (1, 2) and self.transfer in (2, 13)


class _Unsupported(ValueError):
    """A well-formed image of a kind classsr does not handle."""


@dataclass(frozen=True)
class Meta:
    """What a file carries besides its pixels (:meth:`Picture.carried`), as the writers take it: the ICC profile,
    EXIF, XMP, print resolution (dots per inch), PNG text chunks, and whether the source was lossless."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: tuple[PngText, ...] = ()
    lossless: bool = False
    made_by: str | None = None
    nclx: Nclx | None = None
    depth: int | None = None  # a HEIF's or AVIF's 10 or 12 bits, which a HEIF or AVIF output of 16-bit pixels keeps
    gain_map: GainMap | None = None  # an HDR JPEG's (Ultra HDR) or an iPhone HEIC's, which a JPEG (HEIC) output keeps
    linear: Linear | None = None  # an EXR's or Radiance picture's light (io.exr.Linear), which such an output keeps
    # The pixel shape (width over height, in lowest terms: a video frame's SAR) where there is no print resolution,
    # written into PNG, TIFF and JPEG as ffmpeg's encoders write it, which its decoders read back
    aspect: tuple[int, int] | None = None
    uncompressed: bool = False  # a TGA stored without run-length coding, which a TGA output keeps
    texture: Texture | None = None  # a DDS's compression and mip levels, which a DDS output keeps
    gamma: PngGamma | None = None  # a PNG's gAMA and cHRM, which a PNG output keeps
    iptc: bytes | None = None  # a JPEG's or TIFF's IPTC record (IPTC-IIM), which JPEG and TIFF outputs keep
    comments: tuple[bytes, ...] = ()  # a JPEG's or GIF's comments, which JPEG (COM) and PNG (Comment text, one) outputs keep
    motion: bytes | None = None  # a Motion Photo's video (io.motion); an output's: what is appended to it (io.motion.for_output)
    stereo: Stereo | None = None  # a stereo pair's other views, which JPEG (an MPO) and HEIC outputs keep

    def for_output(self, fmt: str, width: int, height: int) -> Meta:
        """What an output of Pillow format ``fmt``, ``width`` x ``height``, holds of it, brought up to date; the record
        of how it was made (``made_by``) as PNG text (``Software``, ``classsr``) or a JPEG comment."""
        if fmt not in _META_FORMATS:  # (a PFM holds nothing but its light, which an nclx picture's is decoded by)
            linear = self.linear.resized(width, height) if self.linear is not None and fmt in _LINEAR_FORMATS else None
            return Meta(lossless=self.lossless, linear=linear, uncompressed=self.uncompressed, texture=self.texture,
                        nclx=self.nclx if fmt in _LINEAR_FORMATS and not self.icc else None)  # fmt: skip
        text = self.text if fmt == "PNG" else ()
        if fmt == "PNG" and not any(t.keyword == "Comment" for t in text):  # a JPEG's or GIF's, as ImageMagick has it
            text += (PngText("Comment", "\n".join(map(_comment_text, self.comments))),) if self.comments else ()
        comments = (self.comments or tuple(t.text.encode() for t in self.text if t.keyword == "Comment")
                    if fmt == "JPEG" else ())  # fmt: skip
        if self.made_by and fmt == "PNG":  # this run's record replaces a carried one (an output upscaled again)
            text = (*(t for t in text if t.keyword not in ("Software", "classsr")),
                    PngText("Software", f"classsr {__version__}"), PngText("classsr", self.made_by))  # fmt: skip
        gain_map = self.gain_map.resized(width, height) if self.gain_map is not None and _keeps_gain(fmt, self.gain_map) else None
        xmp, appended = motion.for_output(_xmp_for_output(self.xmp, width, height), self.motion, fmt, gain_map is not None)
        return Meta(
            icc=self.icc, exif=_for_format(fmt, _exif_for_output(self.exif, width, height)), xmp=xmp, motion=appended,
            dpi=self.dpi if fmt in ("PNG", "JPEG", "TIFF") else None, text=text, lossless=self.lossless,
            made_by=self.made_by if fmt in ("JPEG", *_LINEAR_FORMATS) else None,
            nclx=self.nclx if fmt in ("HEIF", "JXL", "PNG", "AVIF") or (fmt in _LINEAR_FORMATS and not self.icc)
            else None,
            depth=self.depth if fmt in ("HEIF", "AVIF") else None,
            gain_map=gain_map,
            linear=self.linear.resized(width, height) if self.linear is not None and fmt in _LINEAR_FORMATS else None,
            aspect=self.aspect if fmt in ("PNG", "JPEG", "TIFF") and not self.dpi else None,
            gamma=self.gamma if fmt == "PNG" else None,
            iptc=self.iptc if fmt in ("JPEG", "TIFF") else None, comments=comments,
            stereo=self.stereo.for_output(fmt, gain_map is not None) if self.stereo is not None else None,
        )


@dataclass(frozen=True)
class Stereo:
    """A stereo pair's views after the first (a 3D camera's MPO's disparity pictures; a spatial photo's right eye, of
    a HEIC's ``ster`` group whose left eye is its primary picture) and what the file says of them: kept by a JPEG
    output as a stereo MPO, by a HEIC one as a pair (the first other view); other formats hold the first view alone
    (said).

    Attributes:
        views: each view, ``(H, W, 3)`` ``uint8``, turned as the picture is: upscaled with it, each alone.
        own: each view's EXIF (its orientation taken out, as :attr:`Picture.exif`'s) and XMP, as the file held them (an
            MPO's pictures', a spatial photo's right eye's).
        properties: a spatial photo's eyes' camera properties (:data:`~classsr_cli.io.heifbox.EYE_PROPERTIES`: the
            left's, the right's), carried to a HEIC output.
        attributes: a stereo MPO's pictures' MP attributes of their views (:data:`~classsr_cli.io.gainmap.VIEW_TAGS`:
            base viewpoint, convergence angle, baseline length, axis distances, angles), the first picture's and each
            view's as their MPF segments give them, carried to a stereo MPO output, each of whose pictures gets its
            MP attribute IFD, as a stereo camera writes.
    """

    views: tuple[np.ndarray, ...] = field(compare=False, repr=False)
    own: tuple[tuple[bytes | None, bytes | None], ...] = ()
    properties: tuple[tuple[bytes, ...], ...] = ()
    attributes: tuple[gainmap.Attributes, ...] = ()

    def with_views(self, views: Iterable[np.ndarray]) -> Stereo:
        """This pair with ``views`` (upscaled) for its views."""
        return replace(self, views=tuple(views))

    def each(self) -> list[tuple[np.ndarray, tuple[bytes | None, bytes | None]]]:
        """Each view with its own EXIF and XMP (none where it came without them)."""
        own = list(self.own) + [(None, None)] * (len(self.views) - len(self.own))
        return list(zip(self.views, own, strict=False))

    def for_output(self, fmt: str, gain_map: bool) -> Stereo | None:
        """What a ``fmt`` output holds of this pair (a JPEG's all its views, where it holds no gain map; a HEIC's the
        first), each view's EXIF and XMP brought up to its size; ``None``: nothing."""
        views = self.views if fmt == "JPEG" and not gain_map else self.views[:1] if fmt == "HEIF" else ()
        if not views:
            return None
        own = tuple((_for_format(fmt, _exif_for_output(exif, v.shape[1], v.shape[0])),
                     _xmp_for_output(xmp, v.shape[1], v.shape[0])) for v, (exif, xmp) in self.each()[: len(views)])  # fmt: skip
        return Stereo(views, own, self.properties if fmt == "HEIF" else (), self.attributes if fmt == "JPEG" else ())

    def stripped(self) -> Stereo:
        """This pair without its views' EXIF and XMP (but a panorama's properties), as :meth:`Picture.stripped`."""
        return replace(self, own=tuple((None, panorama_only(xmp)) for _, xmp in self.own))


def _segments(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in parts of at most ``size`` bytes, none cut inside a UTF-8 character (where it is UTF-8)."""
    at = 0
    while at < len(data):
        end = min(at + size, len(data))
        while at < end < len(data) and end > at + size - 4 and data[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        yield data[at:end]
        at = end


def _comment_text(comment: bytes) -> str:
    """A JPEG's or GIF's comment as text: UTF-8, else Latin-1 (which their older writers meant)."""
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


@dataclass
class Picture:
    """A decoded image.

    Attributes:
        pixels: ``(H, W, C)`` ``uint8`` or ``uint16``; ``C`` is 1 (gray) or 3 (RGB).
        alpha: ``(H, W)`` with the dtype of ``pixels``, or ``None``.
        icc: the embedded ICC profile, carried to the output.
        exif: EXIF bytes (``Exif\\0\\0`` + TIFF structure) without the orientation tag, carried to the output.
        xmp: the XMP packet (bytes of XML), carried to the output.
        dpi: the print resolution (dots per inch, x and y), carried to outputs that hold one.
        text: a PNG's text chunks (:class:`PngText`, languages kept), carried to PNG outputs.
        lossless: whether the file was stored losslessly where its format has both (a lossless WebP): a WebP
            output is then lossless too, unless a quality is asked for.
        jpeg_quality: a JPEG's quality on libjpeg's 1-100 scale, estimated from its luma quantisation table
            (:func:`jpeg_quality_of`); ``None`` for other formats.
        nclx: a HEIF's or JPEG XL's colour description where it has no ICC profile (:class:`Nclx`: an HDR transfer,
            wide-gamut primaries), carried to HEIF and JPEG XL outputs, and to PNG ones as a ``cICP`` chunk where it is
            not sRGB's.
        depth: a HEIF's or AVIF's bits per channel where more than 8 (10, 12: its pixels are read at 16), kept by
            HEIF and AVIF outputs.
        gain_map: an HDR JPEG's gain map (Ultra HDR, ISO 21496-1: :class:`~classsr_cli.io.gainmap.GainMap`), or an
            iPhone HEIC's, turned as the pixels are, resized with them into a JPEG output (an iPhone's into a HEIC one
            too; other formats hold none: said).
        linear: an EXR's or a Radiance picture's :class:`~classsr_cli.io.exr.Linear`: its pixel type, the stops its
            light is held darker by in ``pixels``, the light outside 0-1 after that (enlarged by bicubic interpolation
            and added back into an EXR or Radiance output; other formats show the light as bright as it was, clipped:
            said) and its attributes or header lines.
        made_by: how an output was made (classsr's version, the model and its hash, the settings; JSON), written
            into PNG text and JPEG comments; ``None`` on what was read.
        aspect: the pixel shape (width over height, lowest terms) of a PNG or JPEG that gives one without a print
            resolution (a video frame's, as ffmpeg writes it: ``pHYs`` or JFIF density without a unit), carried to
            PNG, JPEG and TIFF outputs (:attr:`Meta.aspect`); ``None`` for square or unknown.
        uncompressed: a TGA stored without run-length coding: a TGA output is then written so too (else run-length
            coded, as ffmpeg and GIMP write TGA, where that is smaller: a ×4 upscale of a photo, 15-69 % smaller).
        texture: a DDS's block compression and whether it had mip levels (:class:`~classsr_cli.io.dds.Texture`),
            kept by a DDS output (:func:`classsr_cli.io.dds.write`).
        gamma: a PNG's ``gAMA`` and ``cHRM`` (:class:`PngGamma`), carried to PNG outputs; other formats show the
            picture as sRGB (said where its gamma is not about 1/2.2 and it has no ICC profile).
        iptc: a JPEG's or TIFF's IPTC record (IPTC-IIM datasets: caption, keywords, byline, copyright, ...), the one
            news agencies and Photo Mechanic read, carried to JPEG (Photoshop's ``APP13``) and TIFF (``IPTC-NAA``)
            outputs; other formats hold none (their XMP, where the editor wrote IPTC Core beside it, is carried).
        comments: a JPEG's comments (``COM``) or a GIF's, but a record of an earlier upscale, carried to JPEG outputs
            (before this run's record) and PNG ones (one ``Comment`` text, a line each); a PNG's ``Comment`` text goes into a JPEG
            output's comment.
        stereo: a stereo pair's other views (:class:`Stereo`: a 3D camera's MPO, an iPhone's or Vision Pro's spatial
            photo), upscaled with the picture and kept by JPEG (a stereo MPO) and HEIC (a pair) outputs.
        source_format: Pillow's format name of the file it came from (``PNG``, ``JPEG``, ...).
        source_mode: the file's own mode (``P``, ``CMYK``, ``I;16``, ...).
        notes: conversions worth telling the user about (palette expanded, first frame of an animation, ...).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    exif: bytes | None = None
    source_format: str = ""
    source_mode: str = ""
    notes: list[str] = field(default_factory=list)
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: tuple[PngText, ...] = ()
    lossless: bool = False
    made_by: str | None = None
    jpeg_quality: int | None = None
    nclx: Nclx | None = None
    depth: int | None = None
    gain_map: GainMap | None = None
    linear: Linear | None = None
    aspect: tuple[int, int] | None = None
    uncompressed: bool = False
    texture: Texture | None = None
    gamma: PngGamma | None = None
    iptc: bytes | None = None
    comments: tuple[bytes, ...] = ()
    motion: bytes | None = None
    stereo: Stereo | None = None

    def carried(self) -> Meta:
        """What the output carries of this picture besides its pixels."""
        return Meta(self.icc, self.exif, self.xmp, self.dpi, self.text, self.lossless, self.made_by, self.nclx,
                    self.depth, self.gain_map, self.linear, self.aspect, self.uncompressed, self.texture, self.gamma,
                    self.iptc, self.comments, self.motion, self.stereo)

    def stripped(self) -> Picture:
        """This picture without the metadata that says where, when and by whom it was made (EXIF with its GPS and
        camera, XMP, IPTC, text, the record of the upscale, an EXR's owner, place and date, a Radiance file's commands and
        capture date); the ICC profile, print size, HDR gain map, a 360° photo's panorama properties
        (:func:`panorama_only`), an EXR's chromaticities and a Radiance file's exposure, part of how it looks, kept (:func:`classsr_cli.io.exr.looks`, :func:`classsr_cli.io.radiance.looks`)."""
        from classsr_cli.io import exr, radiance

        linear = self.linear and replace(self.linear, attributes=exr.looks(self.linear.attributes),
                                         lines=radiance.looks(self.linear.lines))  # fmt: skip
        return replace(self, exif=None, xmp=panorama_only(self.xmp), iptc=None, text=(), comments=(), made_by=None,
                       linear=linear, motion=None, stereo=self.stereo and self.stereo.stripped())  # fmt: skip

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def bits(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def gray(self) -> bool:
        return self.pixels.shape[2] == 1

    @property
    def mode(self) -> str:
        """``L``, ``LA``, ``RGB`` or ``RGBA`` (the bit depth is :attr:`bits`)."""
        return ("L" if self.gray else "RGB") + ("A" if self.alpha is not None else "")


def output_suffix(suffix: str) -> str:
    """Suffix of the default output for an input with ``suffix``: the same, except GIF, PBM (1 bit a pixel) and
    suffixes that are not an image's (a video given by mistake, which reading then refuses), written as PNG, a
    Photoshop document, written as TIFF, and JPEG 2000's other names (a ``.j2c`` or ``.jpc`` codestream, a ``.jpf``
    JPX file), written as ``.j2k`` and ``.jp2``."""
    s = suffix.lower()
    if s in _OUTPUT_OF:
        return _OUTPUT_OF[s]
    return ".png" if s in (".gif", ".pbm") or s not in IMAGE_SUFFIXES else suffix


#: Suffixes read but not written, and the one their default output takes instead: the flattened picture of a
#: Photoshop document, at its depth, with its profile, is what TIFF holds; JPEG 2000's codestream and JPX names;
#: an icon's or a cursor's largest picture; an OpenRaster's or a Krita document's merged PNG.
_OUTPUT_OF = {".psd": ".tif", ".psb": ".tif", ".j2c": ".j2k", ".jpc": ".j2k", ".jpf": ".jp2", ".ico": ".png",
              ".cur": ".png", ".icns": ".png", ".blp": ".png", ".ora": ".png",
              ".kra": ".png"}  # (an icon holds 256 pixels a side, a Mac's 1024, a Blizzard texture is not written)


# ----------------------------------------------------------------------------------------------- reading


@contextlib.contextmanager
def pixel_limit_off() -> Iterator[None]:
    """Turn Pillow's own bomb check off: :func:`read_image` applies ``max_pixels`` itself, and a look at a file's
    header alone (nothing decoded) needs none."""
    with _BOMB_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Picture:
    """Read ``path`` into a :class:`Picture` (see the module docstring for the policy); what Pillow warns of while
    reading it (a damaged EXIF, tags past the file's end, a malformed MPO or APNG) becomes its notes
    (:func:`_pillow_notes`), not Python's warnings on stderr.

    Raises :class:`InputError` naming the file when it is missing, empty, not an image classsr reads,
    truncated or corrupt, or larger than ``max_pixels`` (``None`` or 0: no limit).
    """
    with _pillow_warnings() as notes:
        picture = _profile_fitted(_on_srgb_curve(_read_image(Path(path), max_pixels)))
    return replace(picture, notes=[*picture.notes, *notes]) if notes else picture


def _profile_fitted(picture: Picture) -> Picture:
    """``picture`` with an ICC profile that fits its pixels: a gray profile on RGB pixels (a PNG KDE's writer made,
    which libpng and libheif's tools refuse to carry on) made an RGB one of its curve
    (:func:`~classsr_cli.io.icc.rgb_of_gray`: three equal levels show as the gray one did); an RGB profile on gray
    pixels left out where it is sRGB's (the gray shows so without it), else kept and the gray levels made RGB."""
    from classsr_cli.io.icc import is_srgb

    icc, colours = picture.icc, picture.pixels.shape[2]
    if icc is None or len(icc) < 20:
        return picture
    if colours == 3 and is_gray(icc):
        return replace(picture, icc=rgb_of_gray(icc))
    if colours == 1 and icc[16:20] == b"RGB " and is_srgb(icc):
        return replace(picture, icc=None)
    if colours == 1 and icc[16:20] == b"RGB ":
        return replace(picture, pixels=np.repeat(picture.pixels, 3, axis=2),
                       notes=[*picture.notes, "gray picture with an RGB ICC profile: read as RGB, its profile kept"])
    return picture


#: What a power-law transfer (:data:`classsr_cli.io.sdr.POWER`) is called in a note.
_POWER_NAMES = {8: "linear light", 4: "gamma 2.2", 5: "gamma 2.8"}


def _on_srgb_curve(picture: Picture) -> Picture:
    """``picture`` with its levels on sRGB's curve where its colour description (:attr:`Picture.nclx`: a JPEG XL's,
    HEIF's or PNG's ``cICP``) codes them with a power law, linear light above all (KDE's ``gray_linear_lossy.jxl``):
    the model upscales sRGB levels, and outputs that hold no such tag (JPEG, WebP, TIFF, ...) showed the linear levels
    as sRGB's, dark; said. Its primaries are kept (a wide gamut's described as on sRGB's curve)."""
    from classsr_cli.io.sdr import POWER, on_srgb_curve

    nclx = picture.nclx
    if nclx is None or nclx.transfer not in POWER:
        return picture
    coded = nclx._replace(transfer=13, light=())
    kind = {"JXL": "JPEG XL"}.get(picture.source_format, picture.source_format)
    return replace(picture, pixels=on_srgb_curve(picture.pixels, nclx.transfer), nclx=None if coded.srgb else coded,
                   notes=[*picture.notes, f"{kind} in {_POWER_NAMES[nclx.transfer]}: converted to sRGB's curve"])


#: Held while a read catches warnings (:func:`_pillow_warnings`): Python's warning filters are the process's, so
#: reads in several threads take turns (Pillow's decoding already held :data:`_BOMB_LOCK`).
_WARNINGS_LOCK = threading.RLock()


@contextlib.contextmanager
def _pillow_warnings() -> Iterator[list[str]]:
    """Catch the warnings issued inside: Pillow's become the notes in the list given (filled on leaving,
    :func:`_pillow_notes`), the others are issued again once the filters are back, also where the block raised; and
    what tifffile logs (a damaged TIFF's tags, which went to stderr as lines of their own) becomes notes alike."""
    notes: list[str] = []
    caught: list[warnings.WarningMessage] = []
    log, logged = logging.getLogger("tifffile"), _Logged()
    with _WARNINGS_LOCK:
        propagate, log.propagate = log.propagate, False
        log.addHandler(logged)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield notes
        finally:
            log.removeHandler(logged)
            log.propagate = propagate
            notes.extend(_pillow_notes(caught) + _capped([f"tifffile warns: {m}" for m in dict.fromkeys(logged.said)],
                                                         "tifffile's warnings"))


class _Logged(logging.Handler):
    """What a library logs at WARNING or above, kept (:func:`_pillow_warnings`)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(" ".join(record.getMessage().split()).rstrip("."))


#: How many of Pillow's warnings of one file become notes; the rest are counted.
_PILLOW_NOTES = 3


def _pillow_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """Pillow's warnings (its ``UserWarning``s) as notes, each said once, at most :data:`_PILLOW_NOTES` of them and a
    count of the rest; other warnings are issued again, as they came."""
    said: list[str] = []
    for w in caught:
        if issubclass(w.category, UserWarning) and f"{os.sep}PIL{os.sep}" in w.filename:
            text = " ".join(str(w.message).split()).rstrip(".")
            if f"Pillow warns: {text}" not in said:
                said.append(f"Pillow warns: {text}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return _capped(said, "Pillow's warnings")


def _capped(said: list[str], whose: str) -> list[str]:
    """At most :data:`_PILLOW_NOTES` of ``said``, and a count of the rest (``whose``: "Pillow's warnings")."""
    more = len(said) - _PILLOW_NOTES
    return said[:_PILLOW_NOTES] + ([f"and {more} more of {whose} of the file"] if more > 0 else [])


def _read_image(path: Path, max_pixels: int | None) -> Picture:
    """:func:`read_image`, its warnings as they come."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    if size == 0:
        raise InputError(f"{path}: empty file")
    _refuse_raw(path)
    own = _own_format(path)
    if own is not None:
        return _OWN_READERS[own](path, max_pixels)
    Image.init()  # register every plugin, so that the format list below resolves (MPO, WebP, TIFF)
    with pixel_limit_off():
        try:
            with Image.open(path, formats=open_formats(path)) as im:
                _refuse_raw(path, im)
                _check_pixels(path, im.size, max_pixels)
                return _decode(path, im)
        except UnidentifiedImageError:
            if _is_tiff(path):  # layouts Pillow does not open (16-bit gray + alpha, ...): tifffile alone
                try:
                    return _decode_tiff_only(path, max_pixels)
                except InputError:  # (its size above the pixel limit: said as it is)
                    raise
                except _Unsupported as e:
                    raise InputError(f"{path}: {e}") from None
                except Exception as e:
                    raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
            if path.suffix.lower() in VIDEO_SUFFIXES:
                raise InputError(f"{path}: is a video, not an image; use `classsr video`") from None
            if path.suffix.lower() == ".avif" and "AVIF" not in Image.OPEN:
                raise InputError(f"{path}: this Pillow ({Image.__version__}) cannot read AVIF: install Pillow 11.3 or "
                                 "later with its codec") from None
            if path.suffix.lower() in HEIF_SUFFIXES and "HEIF" not in Image.OPEN:
                raise InputError(f"{path}: reading HEIC needs pillow-heif (pip install pillow-heif)") from None
            if (frame := _jpeg_frame(path)) is not None and frame.beyond_pillow:
                return _read_beyond_pillow(path, frame, max_pixels)
            if (netpbm := _read_netpbm_as_pillow_reads(path, max_pixels)) is not None:
                return netpbm
            if (tga := _read_tga_as_pillow_reads(path, max_pixels)) is not None:  # a 15-bit colour map
                return tga
            if (said := _signature(path)) is not None:  # its first bytes name a format Pillow reads: it is damaged
                raise InputError(f"{path}: truncated or corrupt image ({article(said)} {said} by its first bytes, "
                                 "which Pillow cannot open)") from None
            if not (path.suffix.lower() in (*HEIF_SUFFIXES, ".avif", ".avci", ".hej2") and _is_heif(path)):
                raise InputError(f"{path}: not an image classsr reads ({READ_NAMES})") from None
            if _heif_sequence(path):
                raise InputError(f"{path}: a HEIF image sequence (its pictures a video track, no still picture): "
                                 f"`classsr video {path.name} {path.stem}_x4.mp4` upscales it") from None
            appended = _appended_at(path)  # a Motion Photo's video appended bare: read below, this read's lock let go
            if appended is None:  # boxes the decoder cannot read; or a picture larger than it opens (a bomb's)
                _refuse_heif_size(path, max_pixels)
                if (coded := _read_heif_coded(path)) is not None:  # JPEG, JPEG 2000, uncompressed, H.264
                    return coded
                raise InputError(f"{path}: truncated or corrupt image (its HEIF boxes do not read)") from None
        except PermissionError:
            raise InputError(f"{path}: cannot read (permission denied)") from None
        except _Unsupported as e:
            raise InputError(f"{path}: {e}") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError) as e:
            if (bmp_read := _read_bmp_as_pillow_reads(path, max_pixels)) is not None:  # a layout Pillow refuses
                return bmp_read
            if (tga := _read_tga_as_pillow_reads(path, max_pixels)) is not None:  # a colour map it has no use for
                return tga
            if (dds_read := _read_dds_raw(path, max_pixels)) is not None:  # 16-bit luminance ("Unsupported bitcount")
                return dds_read
            raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
        except (TypeError, NotImplementedError) as e:  # Pillow's plugins' on a damaged file (a TIFF without its size)
            if not _from_pillow(e):  # or one of a kind they do not decode (a DDS of a DXGI format they lack); ours: a bug
                raise
            if isinstance(e, NotImplementedError) and (dds_read := _read_dds_as_pillow_reads(path, max_pixels)) is not None:
                return dds_read
            if isinstance(e, NotImplementedError):
                raise InputError(f"{path}: a kind of {path.suffix.lstrip('.').upper() or 'image'} this Pillow "
                                 f"({Image.__version__}) does not decode ({_reason(e)})") from None
            raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
        except RuntimeError as e:  # libheif's decoder errors (pillow-heif), which Pillow's own plugins never raise
            if not _is_heif(path):
                raise
            _refuse_heif_size(path, max_pixels)
            if (coded := _read_heif_coded(path)) is not None:
                return coded
            if "not been built in: AV1" in str(e):  # pillow-heif has no AV1 decoder: Pillow's AVIF reader refused it
                raise InputError(f"{path}: truncated or corrupt image (an AV1 picture in HEIF boxes that libavif, "
                                 "Pillow's AVIF reader, refuses; pillow-heif, which opens them, decodes no AV1)") from None
            raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    return _read_appended(path, appended, max_pixels)


def _from_pillow(e: BaseException) -> bool:
    """Whether ``e`` was raised inside Pillow (its last frame in one of its modules), not by classsr's own code."""
    frames = traceback.extract_tb(e.__traceback__)
    return bool(frames) and f"{os.sep}PIL{os.sep}" in frames[-1].filename


def peek_size(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(height, width)`` of the picture :func:`read_image` would give (EXIF orientation applied), from the file's
    header alone; the same :class:`InputError` for a file it would refuse before decoding (a layout only the full
    read handles is read whole). Pillow's warnings are not issued (:func:`read_image` makes them notes)."""
    with _pillow_warnings():
        return _peek_size(Path(path), max_pixels)


def _peek_size(path: Path, max_pixels: int | None) -> tuple[int, int]:
    """:func:`peek_size`, its warnings as they come."""
    _refuse_raw(path)
    own = _own_format(path)
    if own == "JXL":
        shown = _jxl_header(path).shown  # as read_image reads it, before anything is decoded
        _check_pixels(path, shown, max_pixels)
        return shown[1], shown[0]
    if own in ("PSD", "PAM"):
        doc = _psd_document(path) if own == "PSD" else _pam_header(path)
        _check_pixels(path, (doc.width, doc.height), max_pixels)
        return doc.height, doc.width
    if own in ("EXR", "HDR", "PFM"):
        head = _exr_header(path) if own == "EXR" else _radiance_header(path) if own == "HDR" else _pfm_header(path)
        _check_pixels(path, (head.width, head.height), max_pixels)
        return head.height, head.width
    Image.init()
    try:
        with pixel_limit_off(), Image.open(path, formats=open_formats(path)) as im:
            _refuse_raw(path, im)
            w, h = im.size
            _check_pixels(path, (w, h), max_pixels)  # before anything is decoded, as read_image refuses it
            orientation = _header_orientation(im)
    except InputError:
        raise
    except Exception:
        picture = read_image(path, max_pixels=max_pixels)  # says what is wrong, as a run would
        return picture.height, picture.width
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _refuse_raw(path: Path, im: Image.Image | None = None) -> None:
    """An :class:`InputError` for a camera RAW file: by its name, or, once opened (``im``), a DNG by its DNGVersion tag
    whatever its name. Most are TIFF inside, which Pillow opens: it would give only the embedded preview (a DNG's
    thumbnail of a few hundred pixels), upscaled as though it were the photo."""
    dng = im is not None and im.format == "TIFF" and _DNG_VERSION in getattr(im, "tag_v2", {})
    if path.suffix.lower() in RAW_SUFFIXES or dng:
        kind = "DNG" if dng else path.suffix.lstrip(".").upper()
        raise InputError(f"{path}: a camera RAW file ({kind}): {RAW_ADVICE}")


_DNG_VERSION = 50706


def _header_orientation(im: Image.Image) -> int:
    """The EXIF orientation of an opened file without decoding its pixels: a PNG's from the chunks before its image
    data (Pillow's ``getexif`` decodes the whole PNG to look past it, for a rare eXIf after the pixels)."""
    if im.format == "PNG":
        exif = Image.Exif()
        raw = im.info.get("exif")
        profile = im.info.get("Raw profile type exif")  # ImageMagick's, which Pillow (so read_image) reads too
        if not isinstance(raw, bytes):
            raw = _raw_profile(profile)
        if isinstance(raw, bytes):
            with contextlib.suppress(Exception):
                exif.load(raw)
        return int(exif.get(_ORIENTATION, 1) or 1)
    return int(im.getexif().get(_ORIENTATION, 1) or 1)


def _appended_at(path: Path) -> int | None:
    """Where a second file begins in the HEIF ``path``: a top-level ``ftyp`` box after its first (a Motion Photo's
    MP4 appended bare, as the format's text allows, past which libheif does not read); ``None`` where none does."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return next((at for kind, at, _, _ in bmff.boxes(data, 0, len(data)) if kind == b"ftyp" and at > 0), None)


#: The most pixels Pillow's AVIF decoder (libavif's default limit) opens; libheif's own is larger.
_AVIF_DECODER_PIXELS = 16384 * 16384
#: The formats whose decoders open pictures of at most so many pixels: an output above it is refused before the upscale.
_MAX_PIXELS = {"AVIF": _AVIF_DECODER_PIXELS}


def _refuse_heif_size(path: Path, max_pixels: int | None) -> None:
    """The :class:`InputError` for a HEIF or AVIF file Pillow did not open whose primary image (its ``ispe``
    property) is above ``max_pixels`` (a decompression bomb: libvips's 1,340-byte ``17000x17000.avif``), or above what
    the AVIF decoder opens; nothing otherwise."""
    from classsr_cli.io import heifbox

    head = heifbox.head(path)
    ispe = heifbox.primary_properties(head, (b"ispe",))
    if not ispe or len(ispe[0]) < 20:
        return
    width, height = struct.unpack(">II", ispe[0][12:20])
    _check_pixels(path, (width, height), max_pixels)
    if width * height > _AVIF_DECODER_PIXELS:
        raise InputError(f"{path}: {width}x{height} is {width * height:,} pixels, more than the AVIF decoder opens "
                         f"({_AVIF_DECODER_PIXELS:,})")
    if max(width, height) > MAX_SIDE["AVIF"] and heifbox.primary_kind(head) == b"av01":
        raise InputError(f"{path}: {width}x{height} has a side longer than the AVIF decoder opens "
                         f"({MAX_SIDE['AVIF']} pixels)")


def _read_appended(path: Path, at: int, max_pixels: int | None) -> Picture:
    """The picture of the HEIF ``path`` whose first ``at`` bytes are the picture's own file (:func:`_appended_at`),
    read from a copy of them; its Motion Photo's video (:func:`classsr_cli.io.motion.read`) from ``path`` itself."""
    with path.open("rb") as f:
        pic = _read_part(path, f.read(at), path.suffix, max_pixels, "")
    return replace(pic, motion=motion.read(path, pic.xmp))


def _read_part(path: Path, data: bytes, suffix: str, max_pixels: int | None, what: str) -> Picture:
    """The picture of ``data``, a file held in ``path`` (a HEIF's own picture before its appended video, the PNG inside a
    BMP), read as a file of its own named with ``suffix``; its errors said of ``path`` (``what``: "the PNG inside
    it: ", or "")."""
    with tempfile.TemporaryDirectory(prefix="classsr-") as folder:
        part = Path(folder) / f"picture{suffix}"
        part.write_bytes(data)
        try:
            return read_image(part, max_pixels=max_pixels)
        except InputError as e:  # (said of the file given)
            raise InputError(f"{path}: {what}{str(e).removeprefix(f'{part}: ')}") from None


#: Codings of a HEIF's picture other than HEVC and AV1 (which pillow-heif's libheif and Pillow decode), and their names.
_HEIF_CODINGS = {b"unci": "uncompressed (ISO/IEC 23001-17)", b"jpeg": "JPEG", b"j2k1": "JPEG 2000", b"avc1": "H.264",
                 b"vvc1": "H.266 (VVC)", b"evc1": "EVC"}  # fmt: skip


def _read_heif_coded(path: Path) -> Picture | None:
    """The HEIF ``path`` whose primary picture is coded in a way (:data:`_HEIF_CODINGS`) pillow-heif's libheif here
    does not decode (which Pillow then does not open, or opens and fails on), decoded by classsr
    (:mod:`classsr_cli.io.heifitem`: JPEG, JPEG 2000, uncompressed, H.264), turned as its properties say, its
    colour (ICC profile, or code points), alpha, EXIF and XMP kept; ``None`` for another coding (its size already
    checked: :func:`_refuse_heif_size`). Raises :class:`InputError` for a coding or layout it does not decode, said
    as such, or damaged data."""
    from classsr_cli.errors import VideoError
    from classsr_cli.io import heifbox, heifitem
    from classsr_cli.io.video import ffmpeg_exe

    kind = heifbox.primary_type(heifbox.head(path))
    if kind not in _HEIF_CODINGS:
        return None
    name = f"{_HEIF_CODINGS[kind]} ({kind.decode()!r} item)"
    try:
        exe: str | None = ffmpeg_exe() if kind == b"avc1" else None
    except VideoError:
        exe = None
    try:
        coded = heifbox.primary_coded(path.read_bytes())
        levels = heifitem.transformed(heifitem.decode(coded, exe), coded)
        alpha = None
        if coded.alpha is not None and levels.shape[2] in (1, 3):
            alpha = heifitem.transformed(heifitem.decode(coded.alpha, exe), coded.alpha)[..., 0]
    except heifitem.Unsupported as e:
        raise InputError(f"{path}: a HEIF whose picture is coded as {name}: {e}; save it as HEVC, or as PNG or "
                         "TIFF") from None
    except (ValueError, OSError, SyntaxError, EOFError, struct.error, IndexError) as e:
        raise InputError(f"{path}: truncated or corrupt image (its {name}: {_reason(e)})") from None
    notes = []
    if levels.shape[2] in (2, 4):  # alpha of its own samples
        levels, alpha = levels[..., :-1], levels[..., -1]
    if alpha is not None and (alpha.shape != levels.shape[:2] or alpha.dtype != levels.dtype):
        notes.append(f"HEIF's alpha image of another size or depth ({alpha.shape[1]}x{alpha.shape[0]}): left out")
        alpha = None
    icc, codes = heifitem.colour(coded)
    nclx = _coded(codes[0], codes[1]) if codes is not None and icc is None else None
    nclx = None if nclx is None or nclx.srgb else nclx
    exif = None
    if coded.exif:
        loaded = Image.Exif()
        with contextlib.suppress(Exception):
            loaded.load(b"Exif\x00\x00" + coded.exif)
        exif = _exif_bytes(loaded, "HEIF", b"Exif\x00\x00" + coded.exif)
    bits = heifitem.bits(coded) if levels.dtype == np.uint16 else 8
    return Picture(pixels=np.ascontiguousarray(levels), alpha=_kept_alpha(alpha), icc=icc, exif=exif, xmp=coded.xmp,
                   source_format="HEIF", source_mode="L" if levels.shape[2] == 1 else "RGB",
                   nclx=nclx, depth=bits if bits > 8 else None, notes=notes + _colour_notes("HEIF", nclx))


def _is_heif(path: Path) -> bool:
    """Whether ``path`` starts as a HEIF does (an ISO-BMFF ``ftyp`` box), whatever its name."""
    try:
        with path.open("rb") as f:
            return f.read(12)[4:8] == b"ftyp"
    except OSError:
        return False


#: The first bytes of formats classsr reads through Pillow, and their names: a file that starts so and that Pillow
#: cannot open is damaged (a PNG with a broken iCCP chunk: libpng's crashers), not of another kind. JPEG's: its start
#: of image alone (a damaged one may have junk before its first marker, as gdk-pixbuf's bug775218.jpg has).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
               (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
               (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"icns", "ICNS"), (b"BLP1", "BLP"), (b"BLP2", "BLP"))  # fmt: skip


def article(name: str) -> str:
    """``a`` or ``an`` before a format's ``name`` as it is said: an AVIF, an ICO, an MPO (said letter by letter)."""
    return "an" if name[0] in "AEIO" or name in ("MPO", "MSP", "SGI", "XBM", "XPM") else "a"


def _signature(path: Path) -> str | None:
    """The format the first bytes of ``path`` name among :data:`_SIGNATURES` (WebP's: RIFF....WEBP; BMP's: BM and
    its reserved words), or ``None``."""
    with path.open("rb") as f:
        head = f.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM" and head[6:10] == bytes(4):  # (its two reserved words: "BM" alone starts text too)
        return "BMP"
    return next((name for magic, name in _SIGNATURES if head.startswith(magic)), None)


class _JpegFrame(NamedTuple):
    """A JPEG's frame header (its first ``SOFn``): its marker's last byte (0xC0 baseline ... 0xC3 lossless), the bits a
    sample has, its components, where in the file its precision byte is, and whether a scan (``SOS``) follows it."""

    marker: int
    bits: int
    components: int
    at: int
    scan: bool

    @property
    def lossless(self) -> bool:
        return self.marker in (0xC3, 0xC7, 0xCB, 0xCF)

    @property
    def beyond_pillow(self) -> bool:
        """Whether Pillow (libjpeg's 8-bit API) cannot decode it: more or fewer bits than 8, or lossless coding."""
        return self.bits != 8 or self.lossless


def _jpeg_frame(path: Path) -> _JpegFrame | None:
    """The JPEG ``path``'s frame header, from its markers (each segment's length, the rest skipped) up to its first
    scan; ``None`` where it is no JPEG or has no frame header in its first 16 MiB."""
    frame: _JpegFrame | None = None
    with path.open("rb") as f:
        if f.read(2) != b"\xff\xd8":
            return None
        while f.tell() < 1 << 24 and len(head := f.read(4)) == 4 and head[0] == 0xFF:
            marker, size = head[1], struct.unpack(">H", head[2:4])[0]
            if marker == 0xDA or size < 2:  # its first scan; or a damaged length: read no further
                return frame._replace(scan=marker == 0xDA) if frame is not None else None
            if frame is None and 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header (SOFn)
                at = f.tell()
                data = f.read(6)
                if len(data) < 6:
                    return None
                frame = _JpegFrame(marker, data[0], data[5], at, scan=False)
                f.seek(at)
            f.seek(size - 2, os.SEEK_CUR)
    return frame


def _read_beyond_pillow(path: Path, frame: _JpegFrame, max_pixels: int | None) -> Picture:
    """A JPEG of more bits a sample than 8 (12: medical and scientific pictures'; a lossless one of up to 16), which
    Pillow does not open: its markers (EXIF, ICC profile, XMP, comments) read by Pillow from a copy whose frame header
    says 8 bits, its pixels decoded by the bundled ffmpeg (:func:`_decode`, :func:`_read_jpeg_ffmpeg`)."""
    data = bytearray(path.read_bytes())
    data[frame.at] = 8
    return _read_copy(path, bytes(data), "JPEG", max_pixels,
                      unopened=f"{_kind(frame)} of {frame.components} components, which classsr does not read")


def _read_dds_as_pillow_reads(path: Path, max_pixels: int | None) -> Picture | None:
    """The DDS file ``path`` whose DXGI format Pillow does not read, read from a copy in one of the same data it reads
    (:func:`classsr_cli.io.dds.readable`: BC1-3 in sRGB, BGRA and BGRX, R10G10B10A2, RXGB) and turned back to its own
    (:func:`classsr_cli.io.dds.stored`; its own format, which a DDS output keeps, from ``path``); ``None`` where no
    such copy is made, or of an uncompressed format read here (:func:`_read_dds_raw`), else ``None``."""
    data = _bytes_of(path, b"DDS ")
    if data is None:
        return None
    copy = dds.readable(data)
    if copy is None:
        return _read_dds_raw(path, max_pixels, data)
    own = dds.own_format(data)
    return _read_copy(path, copy, "DDS", max_pixels, unopened="truncated or corrupt image (its DDS header)",
                      turn=lambda im: dds.stored(im, own))


def _read_dds_raw(path: Path, max_pixels: int | None, data: bytes | None = None) -> Picture | None:
    """A DDS of an uncompressed format Pillow does not decode (:func:`classsr_cli.io.dds.raw_format`), its first
    level: floats (an HDR texture) read as an EXR's light is (:func:`classsr_cli.io.exr.split`), 16-bit levels (a
    height map) at 16 bits, A8 (an alpha-only texture) as gray; one channel as gray, two as red and green; ``None``
    for another file. ``data``: the file's bytes, where they were read already."""
    from classsr_cli.io import exr

    data = data if data is not None else _bytes_of(path, b"DDS ")
    raw = None if data is None else dds.raw_format(data[:148])
    if data is None or raw is None:
        return None
    height, width = struct.unpack_from("<2I", data, 12)
    _check_pixels(path, (width, height), max_pixels)
    try:
        samples, alpha, premultiplied = dds.read_raw(data)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    caps2 = int.from_bytes(data[112:116], "little")
    several = caps2 & 0x200 or caps2 & 0x200000 or (data[84:88] == b"DX10" and int.from_bytes(data[140:144], "little") > 1)
    notes = [f"DDS of several faces or slices ({raw.name}): only its first is upscaled"] if several else []
    mode = ("L", "RGB", "RGB", "RGBA")[raw.channels - 1]
    if not raw.floats:
        if raw.name == "A8":
            notes.insert(0, "DDS of alpha alone (A8): its alpha read as gray")
        return Picture(pixels=samples, alpha=_kept_alpha(alpha), source_format="DDS", source_mode=mode, notes=notes,
                       lossless=True)  # fmt: skip
    if alpha is not None and not premultiplied:  # (split takes colour premultiplied, as EXR stores it)
        samples = samples * np.clip(np.nan_to_num(alpha), 0, 1)[..., None]
    pixels, alpha16, linear, bad = exr.split(samples, alpha, half=raw.sample == "<f2")
    notes[:0] = [f"DDS of floats ({raw.name}): read as linear light, as an OpenEXR's (light above 1.0 kept in an "
                 "OpenEXR, Radiance or PFM output; a DDS output holds 8 bits a channel)", *_darker_notes("DDS", linear)]
    notes += [f"DDS with {bad:,} non-finite values: read as 0 and the largest half float"] if bad else []
    return Picture(pixels=pixels, alpha=alpha16, source_format="DDS", source_mode=mode, notes=notes, lossless=True,
                   linear=linear)  # fmt: skip


def _read_bmp_as_pillow_reads(path: Path, max_pixels: int | None) -> Picture | None:
    """The BMP file ``path`` in a layout Pillow refuses, read from a copy in one it reads
    (:func:`classsr_cli.io.bmp.readable`: bit fields of any masks, 2 bits a pixel, OS/2's short headers and RLE24, an
    oversized palette, a JPEG or PNG inside); ``None`` where no such copy is made (where Pillow's refusal stands)."""
    data = _bytes_of(path, b"BM")
    head = None if data is None else bmp.layout(data)
    if data is None or head is None:
        return None
    _check_pixels(path, (head.width, abs(head.height)), max_pixels)  # (the copy is made in memory)
    try:
        made = bmp.readable(data)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    if made is None:
        if head.os2 and head.compression == 3 and head.bits == 1:  # (Windows' BI_BITFIELDS: Pillow's message says so)
            raise InputError(f"{path}: an OS/2 BMP compressed with Huffman 1D (fax coding), which classsr does not "
                             "decode: save it uncompressed or as PNG")
        return None
    copy, fmt = made
    if fmt == "BMP":
        return _read_copy(path, copy, fmt, max_pixels, unopened="truncated or corrupt image (its BMP header)")
    return _read_part(path, copy, f".{fmt.lower()}", max_pixels, f"the {fmt} inside it: ")  # (a file of its own)


def _read_netpbm_as_pillow_reads(path: Path, max_pixels: int | None) -> Picture | None:
    """A PBM, PGM or PPM Pillow does not open because a comment follows its magic number at once (``P6#...``, which
    the format allows), read from a copy whose header is rewritten without comments (:func:`classsr_cli.io.pnm.plain`);
    ``None`` for any other file."""
    data = _bytes_of(path, b"P")
    copy = None if data is None else pnm.plain(data)
    if copy is None:
        return None
    return _read_copy(path, copy, "PPM", max_pixels, unopened="truncated or corrupt image (its Netpbm header)")


def _read_tga_as_pillow_reads(path: Path, max_pixels: int | None) -> Picture | None:
    """A TGA Pillow does not open or read, read from a copy it reads: a colour map of 15-bit colours (Pillow knows
    16-bit ones: the same but for the top bit, cleared) and a true-colour picture's colour map, which it has no use for
    (dropped: Pillow gave it to the picture and failed); ``None`` for any other file."""
    if "TGA" not in open_formats(path):  # (a TGA by its name, or by TGA 2.0's footer: TGA 1.0 has no signature)
        return None
    data = _bytes_of(path, b"")
    if data is None or len(data) < 18 or data[1] != 1 or data[2] not in (1, 2, 3, 9, 10, 11):
        return None
    count, depth = struct.unpack_from("<HB", data, 5)
    start, size = 18 + data[0], count * ((depth + 1) // 8)
    if depth != 15 and data[2] in (1, 9):
        return None
    head = bytearray(data[:18])
    if data[2] in (1, 9):  # colour-mapped: its 15-bit map as a 16-bit one without the top bit
        colours = np.frombuffer(data[start : start + size], "<u2", count=min(count, (len(data) - start) // 2))
        table = (colours & 0x7FFF).astype("<u2").tobytes()
        head[7] = 16
        copy = bytes(head) + data[18:start] + table + data[start + len(table) :]
    else:  # true colour or gray with a colour map: the map dropped
        head[1], head[3:8] = 0, bytes(5)
        copy = bytes(head) + data[18:start] + data[start + size :]
    return _read_copy(path, copy, "TGA", max_pixels, unopened="truncated or corrupt image (its TGA header)")


def _bytes_of(path: Path, magic: bytes) -> bytes | None:
    """The bytes of ``path`` where it starts with ``magic``; ``None`` where it does not, or cannot be read."""
    if not _head(path).startswith(magic):
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _read_copy(path: Path, data: bytes, fmt: str, max_pixels: int | None, *, unopened: str,
               turn: Callable[[Image.Image], Image.Image] | None = None) -> Picture:  # fmt: skip
    """The picture of ``path`` read by Pillow (as ``fmt``) from ``data``, a copy of it changed so that Pillow reads
    it, ``turn``-ed before it is decoded; its errors said of ``path`` as :func:`_read_image` says them (this runs in
    its handler of Pillow's refusal, where its own clauses catch nothing); ``unopened``: why, where Pillow does not
    open the copy either."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            _check_pixels(path, im.size, max_pixels)
            return _decode(path, im if turn is None else turn(im))
    except UnidentifiedImageError:
        raise InputError(f"{path}: {unopened}") from None
    except _Unsupported as e:
        raise InputError(f"{path}: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, NotImplementedError) as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None


def _kind(frame: _JpegFrame) -> str:
    """What the JPEG of ``frame`` is, said: "a lossless JPEG of 16 bits a sample"."""
    return f"{'a lossless JPEG' if frame.lossless else 'a JPEG'} of {frame.bits} bits a sample"


#: ffmpeg's input options for a JPEG's pixels as stored: read as one JPEG whatever its name, not turned by its EXIF
#: orientation (which :func:`_decode` applies, as to every JPEG).
_AS_STORED = ("-f", "jpeg_pipe", "-noautorotate")


#: The pixel format ffmpeg's JPEG decoder gives, from its log (``yuv420p16le(12 bpc, ...)``, ``gray16le``, ``bgr24``).
_MJPEG_FORMAT = re.compile(r"Video: mjpeg\b[^,]*, (\w+)")


def _read_jpeg_ffmpeg(path: Path, im: Image.Image, frame: _JpegFrame) -> np.ndarray:
    """The pixels of a JPEG Pillow does not decode (:attr:`_JpegFrame.beyond_pillow`; ``im``: its markers, opened), by
    the bundled ffmpeg: at 16 bits, each level stretched to 0-65535, where the decoder gives more than 8 (a 12-bit
    JPEG's 4095 as 65535); at 8 where it gives 8 (a lossless JPEG of 8 bits, ffmpeg's own lossless RGB)."""
    channels = {"L": 1, "RGB": 3}.get(im.mode)
    if channels is None:
        raise _Unsupported(f"{_kind(frame)} in {im.mode}, which neither Pillow nor the bundled ffmpeg decodes")
    eight = frame.bits <= 8  # (a lossless JPEG of 8 bits: decoded at 8 once)
    got = _ffmpeg16(path, im.size, channels, _AS_STORED, eight=eight)
    if got is None:
        raise _Unsupported(_undecoded(frame))
    levels, log = got
    if not frame.scan:  # (ffmpeg gives a black picture)
        raise ValueError("no scan after its frame header: its picture is missing")
    if (trouble := _DECODE_TROUBLE.search(log)) is not None:
        raise ValueError(f"ffmpeg: {trouble.group(1).strip()}")
    if eight:
        return levels
    decoded = _MJPEG_FORMAT.search(log)
    if decoded is not None and not re.search(r"(9|1[0-6])[lb]e$", decoded.group(1)):  # 8 bits: read again at 8
        got = _ffmpeg16(path, im.size, channels, _AS_STORED, eight=True)  # (exactly as decoded)
        if got is None:
            raise _Unsupported(_undecoded(frame))
        return got[0]
    return _stretched(levels, max(frame.bits, 9))


def _undecoded(frame: _JpegFrame) -> str:
    """Why a JPEG Pillow does not decode is not read where ffmpeg gave no picture of it."""
    return (f"{_kind(frame)}, which Pillow does not decode and the bundled ffmpeg gave no picture of (damaged, or coded "
            "in a way it lacks: arithmetic, hierarchical)")


#: An error ffmpeg's JPEG decoder reports of the picture data (a truncated or damaged file, whose frame it still
#: gives), not of its metadata (its EXIF or ICC profile, which Pillow reads and says of).
_DECODE_TROUBLE = re.compile(r"\[mjpeg @ [^\]]*\] ((?!.*(?:EXIF|ICC)).*(?:error|overread|invalid|[Mm]ismatch|"
                             r"[Oo]ut of range|[Nn]ot enough|[Cc]orrupt|EOI missing).*)")


def _heif_sequence(path: Path) -> bool:
    """Whether the HEIF ``path`` is an image sequence alone (brand ``msf1``: a burst, an animation; its pictures a
    ``moov`` box's video track, no ``meta`` box of still items), which libheif does not open and ffmpeg reads as a
    video; from its top-level box headers."""
    kinds: list[bytes] = []
    try:
        with path.open("rb") as f:
            while len(head := f.read(16)) >= 8 and len(kinds) < 64:
                size, kind = struct.unpack(">I4s", head[:8])
                if size == 1 and len(head) == 16:
                    size = struct.unpack(">Q", head[8:16])[0]
                kinds.append(kind)
                if size < 8:
                    break
                f.seek(size - len(head), os.SEEK_CUR)
    except OSError:
        return False
    return b"moov" in kinds and b"meta" not in kinds


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


@contextlib.contextmanager
def pillow_look(path: str | os.PathLike[str], *, header: bool = False) -> Iterator[None]:
    """Pillow opening ``path`` to look at it, not to read the picture an upscale reads (``classsr video``'s probe, a
    Motion Photo's XMP, a piped picture's format): Pillow's warnings kept off stderr (a damaged APNG's "will use
    default PNG image": what decodes, the run's reading says). ``header``: its header alone, nothing decoded, Pillow's
    bomb check off; else a picture above twice Pillow's ``MAX_IMAGE_PIXELS`` is refused in one line with its size
    (:class:`InputError`: ``classsr video`` decoding its frames would take gigabytes before a pixel is upscaled, and
    a damaged header says such sizes too), one above it and below that read without Pillow's warning."""
    with warnings.catch_warnings(), pixel_limit_off() if header else contextlib.nullcontext():
        warnings.simplefilter("ignore")
        try:
            yield
        except Image.DecompressionBombError:
            with pixel_limit_off(), Image.open(path) as im:  # (its header alone)
                w, h = im.size
            raise PixelLimitError(path, w, h, 2 * (Image.MAX_IMAGE_PIXELS or 0),
                                  "`classsr video` reads no larger frame") from None


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    w, h = size
    if max_pixels and w * h > max_pixels:
        raise PixelLimitError(path, w, h, max_pixels)


#: Animated formats (Pillow's names) and the extension ``classsr video`` writes each as (an animated AVIF as WebP:
#: ``classsr video`` reads AVIF, but writes no AVIF).
_ANIMATED = {"GIF": ".gif", "WEBP": ".webp", "PNG": ".apng", "AVIF": ".webp"}


#: An ICNS's entries that hold a PNG or JPEG 2000 picture, and its side in pixels (Apple's icon types).
_ICNS_SIDES = {b"icp4": 16, b"icp5": 32, b"icp6": 64, b"ic07": 128, b"ic08": 256, b"ic09": 512, b"ic10": 1024,
               b"ic11": 32, b"ic12": 64, b"ic13": 256, b"ic14": 512}
#: How such an entry's PNG or JPEG 2000 picture starts (:data:`_SIGNATURES`).
_ICNS_PICTURES = tuple(start for start, name in _SIGNATURES if name in ("PNG", "JPEG 2000"))


def _icns_sizes_agree(path: Path) -> None:
    """Refuse an ICNS whose PNG or JPEG 2000 pictures say another size than their entries (a 256x256 entry whose
    picture's header says 256x1 billion: Pillow decodes it before it compares, and the memory runs out), from the
    entries' headers (:data:`_ICNS_SIDES`)."""
    with path.open("rb") as f:
        end = int.from_bytes(f.read(8)[4:], "big")
        at = 8
        while at + 8 <= end:
            f.seek(at)
            kind, length = (entry := f.read(8))[:4], int.from_bytes(entry[4:8], "big")
            if length < 8:
                return
            head = f.read(min(length - 8, 4096))
            at += length
            if kind not in _ICNS_SIDES or not head.startswith(_ICNS_PICTURES):
                continue
            try:
                with pixel_limit_off(), Image.open(io.BytesIO(head), formats=["JPEG2000", "PNG"]) as picture:
                    said = picture.size
            except Exception:  # (a header Pillow cannot read: its own decoding says what it says)
                continue
            side = _ICNS_SIDES[kind]
            if said != (side, side):
                raise InputError(f"{path}: truncated or corrupt image (its {kind.decode('latin-1')} picture says "
                                 f"{said[0]}x{said[1]} where its entry is {side}x{side})")


def _decode(path: Path, im: Image.Image, *, orient: bool = True) -> Picture:
    """The :class:`Picture` of the opened file ``im``; its EXIF orientation applied unless not ``orient`` (a
    JPEG XL's decoder applies its own)."""
    fmt = im.format or ""
    notes: list[str] = []
    frames = int(getattr(im, "n_frames", 1) or 1)
    gain = gainmap.read(path, im) if fmt in ("JPEG", "MPO") else None
    if gain is not None and fmt == "MPO":
        frames -= 1  # the second picture is the HDR gain map, carried
    if fmt == "MPO":  # a camera JPEG's previews of itself (its MPF's large thumbnails): not pictures of their own
        frames -= gainmap.previews(im.info.get("mp"))
    at_views = gainmap.views(im.info.get("mp")) if fmt == "MPO" and gain is None else ()
    eyes: tuple[tuple[bytes, ...], ...] = ()
    if fmt == "HEIF":
        at_views, eyes = _right_eye(path, im)
    frames -= len(at_views)  # a stereo camera's other views (a spatial photo's right eye): upscaled too
    if fmt == "HEIF":
        notes.extend(_heif_notes(im, frames))
    elif fmt in ("ICO", "CUR", "ICNS") and len(sizes := im.info.get("sizes") or ()) > 1:
        notes.append(f"{fmt} with {len(sizes)} sizes: the largest ({im.width}x{im.height}) is upscaled")
    elif frames > 1:
        what = "pages" if fmt == "TIFF" else "frames"
        note = f"{fmt} with {frames} {what}: only the first is upscaled"
        if fmt in _ANIMATED:  # `classsr video` reads and writes animations, their timing and loop count kept
            ext = _ANIMATED[fmt]
            note += f" (`classsr video` upscales every frame: e.g. `classsr video {path.name} {path.stem}_x4{ext}`)"
        notes.append(note)
    dds_head = dds.head(path) if fmt == "DDS" else b""
    if fmt == "DDS":
        im = dds.as_held(dds_head, im)
    if fmt == "ICO":
        im = _ico_deepest(im)
    if fmt == "ICNS":
        _icns_sizes_agree(path)
    texture = dds.texture_of(dds_head, im) if fmt == "DDS" else None
    if texture is not None:
        faces = [_face(face) for face in dds.other_faces(path, texture)]
        texture = replace(texture, faces=tuple(faces)) if faces else texture
        notes.extend(texture.notes())
    if fmt in ("HEIF", "AVIF") and (kind := gainmap.in_heif(path)) is not None:
        heif_exif, heif_xmp = im.info.get("exif"), im.info.get("xmp")
        gain = (gainmap.read_apple(path, heif_exif if isinstance(heif_exif, bytes) else None,
                                   heif_xmp if isinstance(heif_xmp, bytes) else None)
                if kind == "Apple's" else None) or gainmap.read_iso(path, im.size)  # (iOS 18's: Apple's, else its ISO one)  # fmt: skip
        if gain is None:
            notes.append(f"{fmt} with an HDR gain map ({kind}): the SDR picture is upscaled and the gain map not kept, "
                         "so the output shows as SDR (an Ultra HDR JPEG's gain map is carried, an iPhone's whose "
                         "headroom its EXIF or XMP gives, and an ISO 21496-1 one that decodes)")
    deep = _avif_bits(path) if fmt == "AVIF" else 8
    frame = _jpeg_frame(path) if fmt in ("JPEG", "MPO") else None  # one Pillow does not decode: ffmpeg decodes it
    coded: Nclx | None = None  # a deep AVIF's colour description, as ffmpeg reads it
    if fmt == "PNG" and "exif" not in im.info:  # what getexif does first, for an eXIf after the pixels: where they do
        im.load()  # not decode, said as they fail (loaded again, a truncated interlaced PNG gave Pillow's TypeError)
    try:
        exif = im.getexif()
    except (SyntaxError, ValueError, struct.error, IndexError, OSError) as e:  # a damaged EXIF: the picture without it
        exif = Image.Exif()
        profile = _raw_profile(im.info.get("Raw profile type exif")) if fmt == "PNG" else None
        if profile is None:
            notes.append(f"its EXIF does not read ({_reason(e)}): left out")
        else:  # ImageMagick's raw profile with bytes after the length it gives, where Pillow's reading does not stop
            try:
                exif.load(profile)
            except (SyntaxError, ValueError, struct.error, IndexError, OSError, TypeError) as again:
                notes.append(f"its EXIF does not read ({_reason(again)}): left out")
    orientation = int(exif.get(_ORIENTATION, 1) or 1) if orient else 1
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    png = _png_header(path) if fmt == "PNG" else None
    if png is not None and png.cicp is not None and png.cicp[2] == 0 and png.cicp[3] and not icc:  # RGB, full range
        coded = _coded(png.cicp[0], png.cicp[1])._replace(light=png.light)  # (the matrix a HEIC output is coded in)
        coded = None if coded.srgb else coded
    if png is not None and png.bits == 16:
        colour, alpha = _read_png16(path, png)
    elif fmt == "TIFF" and _tiff_is_16bit(im):
        colour, alpha = _read_tiff16(path)
    elif fmt == "HEIF" and int(im.info.get("bit_depth") or 8) > 8:
        colour, alpha = _read_heif16(path)
    elif fmt == "PPM" and (ppm16 := _deep_ppm(path)) is not None:
        colour, alpha = pnm.read_deep(path, ppm16), None
    elif fmt == "JPEG2000" and (bits := _jp2_bits(path)) > 8 and (got16 := _read_jp2_16(path, im, bits)) is not None:
        colour, alpha = got16
    elif frame is not None and frame.beyond_pillow:
        colour, alpha = _read_jpeg_ffmpeg(path, im, frame), None
        mode = f"{mode};{frame.bits}" if colour.dtype == np.uint16 else mode
        notes.append(f"{_kind(frame)}: decoded by the bundled ffmpeg (Pillow decodes lossy 8-bit JPEGs alone), read "
                     f"at {colour.itemsize * 8} bits")
    elif deep > 8 and (got := _read_avif16(path, im)) is not None:
        colour, coded, alpha = got
        coded = None if coded is None or coded.srgb or icc else coded
        notes.extend(_colour_notes("AVIF", coded))
    else:
        if deep > 8:
            notes.append(f"AVIF of {deep} bits per channel: read at 8 (Pillow's AVIF decoder; tiles, or an alpha ffmpeg "
                         "does not give)")
        if fmt == "TIFF" and (code := int(getattr(im, "tag_v2", {}).get(259) or 0)) in _TIFF_UNREAD:
            raise _Unsupported(f"a TIFF compressed with {_TIFF_COMPRESSIONS[code]}, which Pillow's libtiff does not "
                               "decode: save it with LZW, Deflate or no compression")  # (before libtiff says so on stderr)
        if fmt == "JPEG2000" and im.mode == "CMYK" and (cmyk := _jp2_deep_cmyk(path, im)) is not None:
            im = cmyk
        try:
            im.load()
        except OSError:
            decoded = _tga_by_ffmpeg(path, im) if fmt == "TGA" else None
            if decoded is None:
                raise
            im = decoded
        key = im.info.get("transparency")
        if png is not None and png.colour_type == 0 and png.bits < 8 and isinstance(key, int):
            top = (1 << png.bits) - 1  # Pillow scales 2 and 4-bit gray to 8 bits but reports the key unscaled
            if key <= top:
                im.info["transparency"] = key * (255 // top)
        colour, alpha, icc = _pil_arrays(im, icc, notes)
        if fmt == "TGA" and alpha is not None and _tga_alpha_unused(path, alpha):
            alpha = None
        if fmt == "GIF":
            alpha = _gif_uncovered(im, alpha, colour.shape[:2])
        elif fmt == "WEBP" and alpha is None:
            alpha = _webp_uncovered(path, colour.shape[:2])
    colour = _orient(colour, orientation)
    alpha = None if alpha is None else _orient(alpha, orientation)
    stereo = None
    try:
        read = [_view(path, im, k, orientation, fmt) for k in at_views]
        if read:
            attributes = (gainmap.view_attributes(im.info.get("mp")), *(a for _, _, a in read)) if fmt == "MPO" else ()
            stereo = Stereo(tuple(px for px, _, _ in read), tuple(own for _, own, _ in read), eyes, attributes)
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # a damaged other view: the first, as it was read
        notes.append(f"{fmt}: the stereo pair's other view does not decode ({_reason(e)}): only the first is upscaled")
    if gain is not None:
        gain = gain.turned(_orient(gain.pixels, orientation))
        gain = replace(gain, of_size=(colour.shape[1], colour.shape[0]))
    more = _more_meta(path, im, fmt)
    return Picture(
        pixels=np.ascontiguousarray(colour),
        alpha=_kept_alpha(alpha),
        icc=icc,
        exif=_carried_exif(path, im, fmt, exif),
        source_format=fmt,
        source_mode=mode,
        notes=notes,
        gain_map=gain,
        texture=texture,
        motion=motion.read(path, more.get("xmp")) if fmt in ("JPEG", "MPO", "HEIF", "AVIF") else None,
        stereo=stereo,
        **{**more, **({"nclx": coded} if coded else {}),
           **({"depth": deep} if fmt == "AVIF" and deep > 8 else {})},
    )


#: PNG text that is metadata classsr carries in its own place, brought up to date, or not at all: XMP, and
#: ImageMagick's raw EXIF/XMP/APP1/Photoshop profiles (whose orientation, carried as it was, turned the upscaled
#: picture a second time in readers that take it), a text named ``exif`` (EXIF as text, which Pillow reads as the
#: picture's EXIF, carried as such: written back as text, Pillow's reading of the output failed); its IPTC profile
#: and plain text are carried.
_STALE_TEXT = re.compile(r"XML:com\.adobe\.xmp$|Raw profile type (exif|xmp|app1|8bim|icc|icm)$|exif$", re.IGNORECASE)


def _more_meta(path: Path, im: Image.Image, fmt: str) -> dict[str, Any]:
    """The XMP, print resolution or pixel shape, PNG text chunks and WebP losslessness of an opened file (the orientation
    applied to the pixels is taken out of the XMP by the writer, :func:`_xmp_for_output`)."""
    xmp = im.info.get("xmp") or (_raw_profile(im.info.get("Raw profile type xmp")) if fmt == "PNG" else None) or None
    dpi = im.info.get("dpi")  # Pillow's, in inches whatever the file's unit (TIFF's as rationals); none for an aspect
    if fmt == "TIFF" and _X_RESOLUTION not in getattr(im, "tag_v2", {}):
        dpi = None  # (Pillow gives a TIFF that says none 1 dpi: a print 1 inch a pixel, were it written so)
    try:
        dpi = (round(float(dpi[0]), 2), round(float(dpi[1]), 2))  # type: ignore[index]
        dpi = dpi if all(0 < v < 1e6 for v in dpi) else None
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        dpi = None
    shape = im.info.get("aspect") if fmt == "PNG" else (  # pHYs without a unit; JFIF's density without one
        im.info.get("jfif_density") if fmt in ("JPEG", "MPO") and im.info.get("jfif_unit") == 0 else None)
    try:
        ratio = Fraction(int(shape[0]), int(shape[1])) if shape and not dpi else None
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        ratio = None
    text = tuple(PngText(k, str(v), getattr(v, "lang", None) or "", getattr(v, "tkey", None) or "")
                 for k, v in (getattr(im, "text", None) or {}).items()
                 if fmt == "PNG" and isinstance(v, str) and not _STALE_TEXT.match(k))  # fmt: skip
    xmp = bytes(xmp) if isinstance(xmp, bytes | bytearray) else (xmp.encode() if isinstance(xmp, str) else None)
    if xmp and fmt in ("JPEG", "MPO"):  # its ExtendedXMP, where its StandardXMP names one
        from classsr_cli.io.xmp import joined

        xmp = joined(xmp, (data for marker, data in getattr(im, "applist", ()) if marker == "APP1"))
    return {
        "xmp": xmp,
        "dpi": dpi,
        "text": text,
        "lossless": fmt == "WEBP" and webp_lossless(path),
        "jpeg_quality": jpeg_quality_of(im) if fmt in ("JPEG", "MPO") else None,
        "nclx": _nclx(im, path) if fmt == "HEIF" else None,
        "depth": depth if fmt == "HEIF" and (depth := int(im.info.get("bit_depth") or 8)) > 8 else None,
        "aspect": (ratio.numerator, ratio.denominator) if ratio and ratio != 1 else None,
        "uncompressed": fmt == "TGA" and im.info.get("compression") != "tga_rle",
        "gamma": _png_gamma(im) if fmt == "PNG" else None,
        "iptc": _iptc(path, im, fmt),
        "comments": _comments(im, fmt),
    }


def _comments(im: Image.Image, fmt: str) -> tuple[bytes, ...]:
    """An opened JPEG's comments (its ``COM`` segments) or GIF's (its comment extension), but a record of an earlier
    upscale, which this run's replaces; a PNG's ``Comment`` text is carried with its other text."""
    if fmt in ("JPEG", "MPO"):
        found = [bytes(data) for marker, data in getattr(im, "applist", ()) if marker == "COM"]
    elif fmt == "GIF" and isinstance(im.info.get("comment"), bytes):
        found = [im.info["comment"]]
    else:
        found = []
    return tuple(c for c in found if c.strip(b"\x00 ") and not c.startswith(b"classsr {"))


#: Photoshop's image resource that holds the IPTC record, and the one that holds its MD5 digest.
_IPTC_RESOURCE, _IPTC_DIGEST = 0x0404, 0x0425
#: The PNG text ImageMagick keeps a JPEG's IPTC record in, as its "raw profile" (hexadecimal).
_RAW_IPTC = "Raw profile type iptc"


def _carried_exif(path: Path, im: Image.Image, fmt: str, exif: Image.Exif) -> bytes | None:
    """:func:`_exif_bytes` of the opened ``im``'s ``exif``, its tags' types and maker note's offsets kept from the EXIF
    as the file holds it: Pillow's reading of it (a JPEG's, a WebP's, a PNG's ``eXIf``), a PNG's ImageMagick raw
    profile, or a TIFF's own structure (its Exif IFD hangs from its first IFD, which libtiff writes after the pixels),
    the file mapped, so that only the pages of its IFDs are read; Pillow's types where none is found."""
    raw = im.info.get("exif")
    if not (isinstance(raw, bytes) and raw) and fmt == "PNG":
        raw = _raw_profile(im.info.get("Raw profile type exif"))
    if not (isinstance(raw, bytes) and raw) and fmt == "TIFF" and len(exif):
        try:
            with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as whole:
                return _exif_bytes(exif, fmt, whole)
        except (OSError, ValueError):  # (a file that cannot be mapped: Pillow's types)
            pass
    return _exif_bytes(exif, fmt, raw)


def _raw_profile(text: object) -> bytes | None:
    """The bytes of an ImageMagick raw profile (PNG text: a blank line, the profile's name, its length in bytes, then
    the bytes in hexadecimal), as many as its length says (anything after them left: libavif's test picture
    ``paris_icc_exif_xmp.png`` has a line of other bytes there); ``None`` where it is not one or holds fewer."""
    if not isinstance(text, str):
        return None
    lines = text.strip("\n").split("\n")
    try:
        size = int(lines[1])
        data = bytes.fromhex("".join(lines[2:])[: 2 * size])
    except (IndexError, ValueError):
        return None
    return data if len(data) == size else None


#: The TIFF tag that holds the IPTC record (IPTC-NAA).
_IPTC_TAG = 33723


def _iptc(path: Path, im: Image.Image, fmt: str) -> bytes | None:
    """An opened JPEG's IPTC record (its Photoshop ``APP13`` resource 0x0404), TIFF's (tag 33723, read by tifffile:
    Photoshop and exiftool store it as 32-bit integers, which Pillow's declaration of the tag refuses, with a warning;
    the bytes as the file has them) or PNG's (ImageMagick's raw profile text, :data:`_RAW_IPTC`); ``None`` where it
    has none or the data is not IPTC datasets (0x1C first)."""
    data: Any = None
    if fmt in ("JPEG", "MPO"):
        data = (im.info.get("photoshop") or {}).get(_IPTC_RESOURCE)
    elif fmt == "PNG" and isinstance(raw := (getattr(im, "text", None) or {}).get(_RAW_IPTC), str):
        data = _raw_profile(raw)
        if data is not None and data[:4] == b"8BIM":  # ImageMagick's iptc profile as Photoshop's resources
            from classsr_cli.io.psd import _resources

            data = _resources(data).get(_IPTC_RESOURCE)
    elif fmt == "TIFF":
        import tifffile

        with tifffile.TiffFile(path) as tf:
            tag = tf.pages.first.tags.get(_IPTC_TAG)
            if tag is not None and (isinstance(tag.value, bytes) or tag.dtype in (1, 4, 7)):  # BYTE, LONG, UNDEFINED
                data = tag.value if isinstance(tag.value, bytes) else np.asarray(
                    tag.value, f"{tf.byteorder}{'u4' if tag.dtype == 4 else 'u1'}").tobytes()
    if isinstance(data, bytearray | bytes) and data[:1] == b"\x1c":
        return bytes(data)
    return None


def _app13(iptc: bytes) -> bytes:
    """``APP13`` segments that hold ``iptc`` as Photoshop writes it into a JPEG: its image resources 0x0404 (the
    record) and 0x0425 (its MD5 digest, which Photoshop checks), split over as many segments as they need."""
    import hashlib

    def resource(rid: int, data: bytes) -> bytes:
        return b"8BIM" + struct.pack(">HHI", rid, 0, len(data)) + data + b"\0" * (len(data) % 2)

    stream = resource(_IPTC_RESOURCE, iptc) + resource(_IPTC_DIGEST, hashlib.md5(iptc).digest())
    head = b"Photoshop 3.0\0"
    room = 0xFFFF - 2 - len(head)
    return b"".join(b"\xff\xed" + struct.pack(">H", 2 + len(head) + len(part)) + head + part
                    for part in (stream[i : i + room] for i in range(0, len(stream), room)))  # fmt: skip


def _png_gamma(im: Image.Image) -> PngGamma | None:
    """An opened PNG's ``gAMA`` and ``cHRM``, as their integers (Pillow gives them divided by 100,000)."""
    try:
        gamma = round(float(im.info["gamma"]) * 100_000)
    except (KeyError, TypeError, ValueError):
        return None
    chroma = im.info.get("chromaticity")
    try:
        points = tuple(round(float(v) * 100_000) for v in chroma) if chroma else None
    except (TypeError, ValueError):
        points = None
    if points is not None and not (len(points) == 8 and all(0 <= v < 2**31 for v in points)):
        points = None  # a malformed cHRM: the gamma alone
    return PngGamma(gamma, points) if 0 < gamma < 2**31 else None


#: The sum of the IJG's (libjpeg's) luma quantisation table at quality 50, the table its quality setting scales.
_IJG_LUMA_SUM = 3688


def jpeg_quality_of(im: Image.Image) -> int | None:
    """The quality an opened JPEG was saved at, on libjpeg's 1-100 scale: its first (luma) quantisation table's sum
    against the IJG table's, which that scale multiplies (``5000 / q`` percent below 50, ``200 - 2q`` above). Exact
    for files libjpeg or Pillow saved (below about 25 the clipped table reads a little high); for a camera's own
    tables, the libjpeg quality closest to them. ``None`` without a table."""
    tables = getattr(im, "quantization", None)
    if not tables:
        return None
    first = tables[min(tables)]
    if max(first) <= 1:  # every step 1: quality 100 (the sum alone reads 99)
        return 100
    percent = 100.0 * sum(int(v) for v in first) / _IJG_LUMA_SUM
    quality = (200.0 - percent) / 2 if percent <= 100 else 5000.0 / percent
    return max(1, min(100, round(quality)))


def webp_lossless(path: Path) -> bool:
    """Whether a WebP's image is stored losslessly (a ``VP8L`` chunk, not ``VP8 ``), from its RIFF chunks."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
                return False
            while chunk := f.read(8):
                if len(chunk) < 8:
                    return False
                tag, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if tag in (b"VP8L", b"VP8 "):
                    return tag == b"VP8L"
                if tag == b"ANMF":  # an animation's first frame: its image chunk follows its 16-byte header
                    f.seek(16, 1)
                    continue
                f.seek(size + (size & 1), 1)
    except OSError:
        return False
    return False


def _kept_alpha(alpha: np.ndarray | None) -> np.ndarray | None:
    """``alpha`` as :class:`Picture` holds it: ``None`` where fully opaque (nothing to keep), else C-contiguous."""
    if alpha is None or int(alpha.min()) == np.iinfo(alpha.dtype).max:
        return None
    return np.ascontiguousarray(alpha)


def _right_eye(path: Path, im: Image.Image) -> tuple[tuple[int, ...], tuple[tuple[bytes, ...], ...]]:
    """Which picture of the opened HEIF ``im`` is the right eye of a stereo pair (its ``ster`` group: an
    iPhone's or Vision Pro's spatial photo) whose left eye is its primary picture, the first, and each eye's camera
    properties (:data:`~classsr_cli.io.heifbox.EYE_PROPERTIES`, the left's first); none where it has none, or its
    right eye is not an image libheif gives (the HEIF conformance files' multilayer005: a layer of a layered one)."""
    from classsr_cli.io import heifbox

    groups = im.info.get("entity_groups") or []
    pair = next((g for g in groups if isinstance(g, dict) and g.get("type") == "ster"), None)
    if pair is None or len(pair.get("images") or ()) != 2:
        return (), ()
    first, right = pair["images"]
    if first != 0 or not isinstance(right, int):  # (an eye pillow-heif gives no image of: a layered one, ...)
        return (), ()
    eyes = heifbox.stereo(heifbox.head(path))
    if eyes is None:
        return (), ()
    return (right,), (eyes.left_properties, eyes.right_properties)


def _view(path: Path, im: Image.Image, k: int, orientation: int, fmt: str
          ) -> tuple[np.ndarray, tuple[bytes | None, bytes | None], gainmap.Attributes]:  # fmt: skip
    """Picture ``k`` of the MPO or HEIF ``im`` read from ``path`` (a stereo pair's other view), in RGB (a HEIF's of
    10 or 12 bits at 16, as its primary picture is read), turned by the first's ``orientation``, its own EXIF
    (without its orientation) and XMP, where the file gives them, and an MPO picture's MP attributes of its view
    (:func:`~classsr_cli.io.gainmap.picture_meta`: Pillow reads an MPO picture's EXIF, not its XMP or MPF segment);
    ``im`` is left at its first picture."""
    attributes, xmp = gainmap.picture_meta(path, im.info.get("mp"), k) if fmt == "MPO" else ((), None)
    try:
        im.seek(k)
        deep = fmt == "HEIF" and int(im.info.get("bit_depth") or 8) > 8
        colour = _read_heif16(path, k)[0] if deep else np.asarray(im.convert("RGB"))
        pixels = np.ascontiguousarray(_orient(colour, orientation))
        raw, xmp = im.info.get("exif"), im.info.get("xmp") if fmt == "HEIF" else xmp
        exif = Image.Exif()
        if isinstance(raw, bytes) and raw:
            exif.load(raw)
        return pixels, (_exif_bytes(exif, fmt, raw), xmp if isinstance(xmp, bytes) and xmp else None), attributes
    finally:
        im.seek(0)


def _face(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """A DDS face's ``(pixels, alpha)`` as :class:`Picture` holds them."""
    colour, alpha, _ = _pil_arrays(im, None, [])
    return np.ascontiguousarray(colour), _kept_alpha(alpha)


def _pil_arrays(
    im: Image.Image, icc: bytes | None, notes: list[str]
) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """8-bit (and 16-bit gray) pixels through Pillow, converting the mode by the policy."""
    mode = im.mode
    # A palette's transparency, or an 8-bit RGB or gray colour key (PNG tRNS): Pillow's conversion to RGBA or LA
    # turns it into alpha, the one path for both.
    keyed = "transparency" in im.info
    if keyed and mode in ("1", "L", "RGB"):
        im = im.convert("RGBA" if mode == "RGB" else "LA")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("P", "PA"):  # (a palette of RGBA colours, a DDS's or a 32-bit TGA colour map's: its alpha kept)
        rgba = mode == "PA" or keyed or (im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if rgba else "RGB")
        notes.append(f"palette image converted to {im.mode}")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im, icc = _to_rgb(im, icc, notes)
    elif mode in ("RGBa", "La"):
        im = im.convert(mode[0:-1] + "A" if mode == "La" else "RGBA")
    elif mode == "RGBX":
        im = im.convert("RGB")
    elif mode == "F":
        raise _Unsupported("32-bit float images are not supported (whether their light is linear is not said); save an "
                           "HDR picture as OpenEXR, or a 16-bit TIFF")
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise _Unsupported("32-bit integer samples outside the 16-bit range are not supported (8 or 16-bit "
                               "integers are)")
        return arr.astype(np.uint16)[..., None], None, icc
    arr = np.asarray(im)
    if mode == "L":
        return arr[..., None], None, icc
    if mode == "LA":
        return arr[..., :1], arr[..., 1], icc
    if mode == "RGB":
        return arr, None, icc
    if mode == "RGBA":
        return arr[..., :3], arr[..., 3], icc
    raise _Unsupported(f"unsupported image mode {mode}")


def _to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> tuple[Image.Image, bytes | None]:
    """CMYK/YCbCr/LAB/HSV to RGB; through the ICC profile into sRGB when there is one."""
    if icc:
        import io

        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            notes.append(f"{im.mode} converted to sRGB through its ICC profile")
            assert out is not None
            return out, None
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    notes.append(f"{im.mode} converted to RGB (no usable ICC profile)")
    return im.convert("RGB"), None


@dataclass(frozen=True)
class _PngHeader:
    """What classsr reads of a PNG before its pixels: the IHDR, whether a tRNS chunk precedes the pixels, and its
    ``cICP`` chunk's code points (primaries, transfer, matrix, full range: an HDR or wide-gamut PNG's), if any."""

    width: int
    height: int
    bits: int
    colour_type: int
    keyed: bool
    cicp: tuple[int, int, int, int] | None = None
    light: tuple[bytes, ...] = ()  # its cLLi and mDCv as HEIF's clli and mdcv boxes (:func:`_png_light`)


def _avif_bits(path: Path) -> int:
    """Bits per channel an AVIF's ``pixi`` property says (HEIF's pixel information: version and flags, a channel
    count, then each channel's depth), from the file's first 64 KiB where its meta box lives; 8 where it says none."""
    with path.open("rb") as f:
        head = f.read(65536)
    at = head.find(b"pixi")
    if at < 4 or int.from_bytes(head[at - 4 : at], "big") < 14 or len(head) < at + 10:
        return 8
    count = head[at + 8]
    depths = head[at + 9 : at + 9 + count]
    return max(depths) if depths else 8


#: nclx transfer characteristics of HDR (PQ, HLG) and colour primaries other than sRGB's (wide gamuts), by name.
_HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
_PRIMARIES = {9: "BT.2020", 11: "DCI-P3", 12: "Display P3"}



def _nclx(im: Image.Image, path: Path | None = None) -> Nclx | None:
    """An opened HEIF's colour description where it has no ICC profile (the profile says it where there is one); an
    HDR one's (PQ, HLG) light levels read from ``path`` (:func:`_with_light`), which libheif does not give."""
    nclx = im.info.get("nclx_profile")
    if not isinstance(nclx, dict) or im.info.get("icc_profile"):
        return None
    try:
        got = Nclx(int(nclx["color_primaries"]), int(nclx["transfer_characteristics"]),
                   int(nclx["matrix_coefficients"]), bool(nclx["full_range_flag"]))  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
    return _with_light(got, path) if path is not None else got


def _with_light(nclx: Nclx, path: Path) -> Nclx:
    """``nclx`` of the HEIF or AVIF ``path`` with its light levels (:attr:`Nclx.light`) where it is HDR (PQ, HLG):
    its primary item's ``clli`` and ``mdcv`` properties (:func:`classsr_cli.io.heifbox.head`)."""
    if nclx.transfer not in (16, 18):
        return nclx
    from classsr_cli.io import heifbox

    return nclx._replace(light=tuple(heifbox.primary_properties(heifbox.head(path), (b"clli", b"mdcv"))))


def _heif_notes(im: Image.Image, images: int) -> list[str]:
    """What a HEIF holds that the upscale does not keep: other top-level images (a burst, a pair), and
    :func:`_colour_notes`."""
    notes = [f"HEIF with {images} images: only the primary one is upscaled"] if images > 1 else []
    return notes + _colour_notes("HEIF", _nclx(im))


def _format_notes(fmt: str, dtype: np.dtype[Any], source: Meta, out: Meta, deep: bool = False) -> list[str]:
    """What a ``fmt`` output of ``dtype`` pixels does not hold of what its picture carries (``source``:
    :meth:`Picture.carried`; ``out``: that brought to the output, :meth:`Meta.for_output`; ``deep``: an AVIF of 10
    bits, :func:`_deep_avif`): the notes :func:`write_image` and :func:`write_image_rows` give alike."""
    return (_depth_notes(fmt, dtype, out, deep) + _gain_notes(fmt, source.gain_map) + _motion_notes(fmt, source, out)
            + _linear_notes(fmt, source)
            + _profile_notes(fmt, source.icc) + _gamma_notes(fmt, source) + _texture_notes(fmt, source.texture)
            + _view_notes(fmt, source, out)
            + _xmp_notes(fmt, out) + _exif_notes(fmt, source) + _iptc_notes(fmt, source) + _comment_notes(fmt, source))


def _sdr_of(fmt: str, meta: Meta, deep: bool = False) -> Nclx | None:
    """The colour description a ``fmt`` output's pixels are converted from to SDR sRGB (:func:`classsr_cli.io.sdr.to_sdr`):
    an HDR or wide-gamut one given without an ICC profile, which only HEIC, JPEG XL, PNG and (``deep``:
    :func:`_deep_avif`) AVIF outputs hold."""
    from classsr_cli.io.sdr import needs

    nclx = meta.nclx
    if nclx is None or meta.icc or deep or fmt in ("HEIF", "JXL", "PNG") or fmt in _LINEAR_FORMATS:
        return None
    return nclx if needs(nclx.primaries, nclx.transfer) else None


def _motion_notes(fmt: str, source: Meta, out: Meta) -> list[str]:
    """What a ``fmt`` output (``out``, :meth:`Meta.for_output`) does with a Motion Photo's video (:mod:`classsr_cli.io.motion`),
    where it does not keep it."""
    if source.motion is None or out.motion is not None:
        return []
    return [f"{fmt} output: the Motion Photo's video is not kept, a JPEG, HEIC or AVIF output keeps it (as it came, "
            "behind the upscaled picture)"]


def _without_hdr_gain(out: Meta, coded: Nclx | None) -> tuple[Meta, list[str]]:
    """``out`` (an output's :class:`Meta`) without its HDR gain map where its HDR picture is tone-mapped to SDR
    (``coded``: :func:`_sdr_of`), which the gain map, made for the HDR picture (an HDR AVIF's that gives its SDR
    rendition), no longer describes; and the note that says so."""
    from classsr_cli.io.sdr import HLG, PQ

    if out.gain_map is None or coded is None or coded.transfer not in (PQ, HLG):
        return out, []
    return replace(out, gain_map=None), [
        "the HDR gain map is not kept: it was made for the HDR picture, tone-mapped here; a HEIC or AVIF output keeps "
        "both"]


def _sdr_notes(fmt: str, nclx: Nclx) -> list[str]:
    """What :func:`_sdr_of` does to a ``fmt`` output, said."""
    hdr, wide = _HDR_TRANSFERS.get(nclx.transfer), _PRIMARIES.get(nclx.primaries)
    keepers = "a HEIC, JPEG XL or PNG output" if fmt == "AVIF" else "a HEIC, AVIF, JPEG XL or PNG output"  # (AVIF: no libaom)
    if hdr:
        what = f"HDR ({hdr}){f' in {wide} colours' if wide else ''}"
        return [f"the picture is {what}, which the {fmt} output cannot say: tone-mapped to SDR sRGB; {keepers} keeps "
                "it HDR"]
    return [f"the picture is in {wide} colours without an ICC profile, which the {fmt} output cannot say: converted to "
            f"sRGB's; {keepers} keeps them"]


def _colour_notes(kind: str, nclx: Nclx | None) -> list[str]:
    """An HDR transfer or wide-gamut primaries signalled without an ICC profile that other outputs than HEIC, JPEG XL
    and PNG (``cICP``) cannot show as they are (read as sRGB), as said of a ``kind`` file; none where those outputs
    convert it (:func:`_sdr_of`, said there)."""
    from classsr_cli.io.sdr import needs

    if nclx is None or needs(nclx.primaries, nclx.transfer):
        return []
    if (transfer := _HDR_TRANSFERS.get(nclx.transfer)) is not None:
        return [f"{kind} in HDR ({transfer}): upscaled as coded; only a HEIC, AVIF, JPEG XL or PNG output is tagged "
                f"{transfer}"]
    if (primaries := _PRIMARIES.get(nclx.primaries)) is not None:
        return [f"{kind} in {primaries} colours without an ICC profile: only a HEIC, AVIF, JPEG XL or PNG output is "
                "tagged so (others are read as sRGB)"]
    return []


def _coded(primaries: int, transfer: int) -> Nclx:
    """The :class:`Nclx` of RGB pixels in ``primaries`` and ``transfer`` (H.273), with the YCbCr matrix a HEIC output
    of them is coded in: BT.2020's for BT.2020 primaries, else BT.601's (libheif's own)."""
    return Nclx(primaries, transfer, 9 if primaries == 9 else 6, True)


def _own_format(path: Path) -> str | None:
    """The format ``path`` starts as, whatever its name, where classsr reads it without Pillow (:func:`own_format`);
    one read of its first bytes."""
    return own_format(_head(path))


def own_format(head: bytes) -> str | None:
    """The format a file starting with ``head`` (its first 64 bytes; 12 tell all but OpenRaster and Krita) is, where
    classsr reads it without Pillow: ``JXL``, ``EXR``, ``HDR`` (Radiance), ``PFM``, ``PAM``, ``PSD`` or ``ORA``
    (OpenRaster or Krita); ``None`` otherwise."""
    from classsr_cli.io import exr, jxl, merged, psd, radiance

    checks = (("JXL", jxl.is_jxl), ("EXR", exr.is_exr), ("HDR", radiance.is_radiance), ("PFM", pnm.is_pfm),
              ("PAM", pnm.is_pam), ("PSD", psd.is_psd), ("ORA", lambda h: merged.kind(h) is not None))
    return next((name for name, starts in checks if starts(head)), None)


#: What each format :func:`own_format` names is called.
OWN_NAMES = {"JXL": "JPEG XL", "EXR": "OpenEXR", "HDR": "Radiance HDR", "PFM": "PFM", "PAM": "PAM", "PSD": "Photoshop",
             "ORA": "OpenRaster or Krita"}


def _radiance_header(path: Path) -> Any:
    """A Radiance file's :class:`~classsr_cli.io.radiance.Header` (from its first 64 KB); an :class:`InputError` where
    it does not read or is of a kind classsr does not read."""
    from classsr_cli.io import radiance

    try:
        with path.open("rb") as f:
            return radiance.header(f.read(1 << 16))
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(f"{path}: {_reason(e)}") from None


def _radiance_whole(path: Path, head: Any) -> None:
    """An :class:`InputError` where the Radiance picture at ``path`` (its :class:`~classsr_cli.io.radiance.Header`
    ``head``) is cut short or its rows do not add up (:func:`classsr_cli.io.radiance.cut_short`): ffmpeg's decoder
    gives the rows it lacks as zeros, without a word."""
    from classsr_cli.io import radiance

    try:
        with path.open("rb") as f:
            f.seek(head.data)
            pixels = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    if why := radiance.cut_short(pixels, head.width, head.height):
        raise InputError(f"{path}: truncated or corrupt image ({why})")


def _read_radiance(path: Path, max_pixels: int | None) -> Picture:
    """A Radiance HDR picture, decoded by the bundled ffmpeg and split as an EXR's light is
    (:func:`classsr_cli.io.exr.split`), its header's lines kept for a Radiance output."""
    from classsr_cli.io import exr, radiance

    head = _radiance_header(path)
    _check_pixels(path, (head.width, head.height), max_pixels)
    _radiance_whole(path, head)
    light = _decoded_light(path, (head.width, head.height), max_pixels, "hdr", "Radiance HDR", radiance.decode)
    pixels, _, linear, bad = exr.split(light, None, half=True)
    linear = replace(linear, lines=head.carried)
    notes = _darker_notes("Radiance HDR", linear)
    notes += [f"Radiance HDR with {bad:,} non-finite values: read as 0 and the largest half float"] if bad else []
    notes += _primaries_notes("Radiance HDR", linear)
    return Picture(pixels=pixels, source_format="HDR", source_mode="RGB", notes=notes, lossless=True, linear=linear)


_H = TypeVar("_H")


def _own_header(path: Path, parse: Callable[[bytes], _H | None], size: int, why: str) -> _H:
    """The header ``parse`` reads from the first ``size`` bytes of ``path``; where it reads none, one line with ``why``."""
    with path.open("rb") as f:
        head = parse(f.read(size))
    if head is None:
        raise InputError(f"{path}: truncated or corrupt image ({why})")
    return head


def _pfm_header(path: Path) -> pnm.PfmHeader:
    return _own_header(path, pnm.pfm_header, 256, "its PFM header does not read")


def _read_pfm(path: Path, max_pixels: int | None) -> Picture:
    """A PFM's linear light (:func:`classsr_cli.io.pnm.read_pfm`), split as an EXR's is
    (:func:`classsr_cli.io.exr.split`)."""
    from classsr_cli.io import exr

    head = _pfm_header(path)
    _check_pixels(path, (head.width, head.height), max_pixels)
    try:
        light = pnm.read_pfm(path, head)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    pixels, _, linear, bad = exr.split(light, None, half=False)
    notes = _darker_notes("PFM", linear)
    notes += [f"PFM with {bad:,} non-finite values: read as 0 and the largest half float"] if bad else []
    return Picture(pixels=pixels, source_format="PFM", source_mode="RGB" if light.shape[2] == 3 else "L", notes=notes,
                   lossless=True, linear=linear)  # fmt: skip


def _pam_header(path: Path) -> pnm.PamHeader:
    return _own_header(path, pnm.pam_header, 4096, "its PAM header does not read, or holds more than 4 samples a pixel")


def _read_pam(path: Path, max_pixels: int | None) -> Picture:
    """A PAM (:func:`classsr_cli.io.pnm.read_pam`): gray or RGB, the last sample alpha where it has 2 or 4."""
    head = _pam_header(path)
    _check_pixels(path, (head.width, head.height), max_pixels)
    try:
        samples = pnm.read_pam(path, head)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    colour = samples[..., : 3 if head.depth >= 3 else 1]
    alpha = samples[..., -1] if head.depth in (2, 4) else None
    return Picture(pixels=np.ascontiguousarray(colour), alpha=_kept_alpha(alpha),
                   source_format="PAM", source_mode=("L", "LA", "RGB", "RGBA")[head.depth - 1])  # fmt: skip


def _psd_document(path: Path) -> Any:
    """A Photoshop document's :class:`~classsr_cli.io.psd.Document`; the :class:`InputError` that says why not, where
    it does not read or holds nothing classsr reads."""
    from classsr_cli.io import psd

    try:
        doc = psd.read_header(path)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    depths = {0: (1,), 2: (8,), 4: (8, 16), 7: (8, 16), 9: (8, 16)}.get(doc.mode, (8, 16, 32))
    if doc.mode not in psd.MODES or doc.depth not in depths:
        raise InputError(f"{path}: a {doc.depth}-bit Photoshop document in {doc.mode_name} mode: classsr reads RGB, "
                         "Grayscale and Duotone ones (8, 16 or 32 bits), CMYK, Lab and Multichannel (8 or 16), Indexed (8) "
                         "and Bitmap; convert it (Image > Mode), or export a TIFF")
    if not doc.merged:
        raise InputError(f"{path}: a Photoshop document saved without Maximize Compatibility holds no flattened "
                         "picture, only its layers: save it with that option on, or export a TIFF")
    return doc


def _read_psd(path: Path, max_pixels: int | None) -> Picture:
    """A Photoshop document's flattened picture (:mod:`classsr_cli.io.psd`) at its own depth (32 bits: linear light,
    split as an EXR's is), its transparency as alpha, CMYK converted through its profile, ICC, EXIF, XMP and print
    resolution kept."""
    from classsr_cli.io import exr, psd

    doc = _psd_document(path)
    _check_pixels(path, (doc.width, doc.height), max_pixels)
    name, colours = psd.MODES[doc.mode][0], doc.colour_channels
    alpha_too = doc.transparency and doc.channels > colours and doc.mode != 7  # (Multichannel's others: spot inks)
    try:
        planes = psd.read(path, doc, colours + alpha_too)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    colour = np.moveaxis(planes[:colours], 0, -1)
    alpha = planes[colours] if alpha_too else None
    if alpha is not None and doc.mode != 2:  # (an Indexed one's plane is of indices, not matted colours)
        colour = psd.unmatted(colour, alpha, lab=doc.mode == 9)
    if doc.mode == 2:  # Indexed: through its palette, its transparent colour (where it gives one) as alpha
        colour, keyed = doc.colours(planes[0])
        alpha = keyed if alpha is None else alpha
    notes: list[str] = []
    icc = doc.icc
    exif = Image.Exif()
    if doc.exif:
        with contextlib.suppress(Exception):
            exif.load(doc.exif)
    meta: dict[str, Any] = {"exif": _exif_bytes(exif, "PSD", doc.exif), "xmp": doc.xmp, "iptc": doc.iptc, "dpi": doc.dpi,
                            "source_format": "PSD", "source_mode": name}
    if doc.depth == 32:  # linear light in floats, as Photoshop's 32-bit mode holds an HDR merge
        light = colour if alpha is None else colour * alpha[..., None]
        pixels, alpha16, linear, bad = exr.split(light, alpha, half=False)
        notes = _darker_notes("Photoshop document", linear)
        notes += [f"Photoshop document with {bad:,} non-finite values: read as 0 and the largest half float"] if bad else []
        return Picture(pixels=pixels, alpha=alpha16, icc=icc, notes=notes, linear=linear, **meta)
    if doc.mode == 7:  # Multichannel: its inks as CMYK's (none where it has fewer), one alone as gray
        if doc.channels > 4:
            notes.append(f"Multichannel document of {doc.channels} channels: its first four read as CMYK, the others "
                         "(spot inks) left out")
        if colours == 1:
            return Picture(pixels=np.ascontiguousarray(colour), notes=notes, **{**meta, "source_mode": name})
        top = np.iinfo(colour.dtype).max
        colour = np.concatenate([colour, np.full((*colour.shape[:2], 4 - colours), top, colour.dtype)], axis=-1)
        icc = None  # (a profile it carries is not a CMYK one)
    if doc.mode in (4, 7, 9) and doc.depth == 16:  # (Pillow converts them at 8 bits)
        colour, alpha = to_8bit(colour), None if alpha is None else to_8bit(alpha)
        notes.append(f"16-bit {name} converted to RGB at 8 bits")
    if doc.mode in (4, 7):  # CMYK, stored as 255 - ink
        im = Image.frombytes("CMYK", (doc.width, doc.height), np.ascontiguousarray(255 - colour).tobytes())
        if doc.mode == 7:
            rgb = im.convert("RGB")
            notes.append("Multichannel document's inks converted to RGB as CMYK's (without a profile)")
        else:
            rgb, icc = _to_rgb(im, icc, notes)
        colour = np.asarray(rgb)
    elif doc.mode == 9:  # Lab: defined by itself (a profile it carries describes the same), into sRGB
        colour, icc = _lab_to_rgb(colour), None
        notes.append("Lab converted to sRGB")
    return Picture(pixels=np.ascontiguousarray(colour), alpha=alpha, icc=icc, notes=notes, **meta)


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """8-bit L*a*b* levels (``(H, W, 3)``: L* 0-100 as 0-255, a* and b* -128-127 as 0-255, as Photoshop's Lab mode
    holds them) in sRGB, through LittleCMS's Lab of D50's white (Photoshop's). (Pillow's ``LAB`` holds a* and b* as
    signed bytes.)"""
    signed = lab ^ np.array([0, 128, 128], np.uint8)
    im = Image.frombytes("LAB", (lab.shape[1], lab.shape[0]), np.ascontiguousarray(signed).tobytes())
    out = ImageCms.profileToProfile(im, ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), outputMode="RGB")
    assert out is not None
    return np.asarray(out)


def _read_merged(path: Path, max_pixels: int | None) -> Picture:
    """An OpenRaster's or a Krita document's merged picture (:mod:`classsr_cli.io.merged`), read as the PNG it is."""
    from classsr_cli.io import merged

    name = merged.kind(_head(path)) or "OpenRaster"
    try:
        data = merged.merged_png(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        if "only its layers" in str(e):
            raise InputError(f"{path}: a{'n' if name[0] == 'O' else ''} {name} document with {e}: export a PNG or "
                             "TIFF of it") from None
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
    picture = _read_part(path, data, ".png", max_pixels, "its merged picture: ")
    return replace(picture, source_format="ORA" if name == "OpenRaster" else "KRA")


def _darker_notes(kind: str, linear: Linear) -> list[str]:
    """What was done to light mostly above the model's range (:func:`classsr_cli.io.exr.split`)."""
    if not linear.stops:
        return []
    return [f"{kind} light above 1.0 in {100 * linear.share:.1f} % of the pixels: upscaled {linear.stops} stop"
            f"{'s' if linear.stops > 1 else ''} darker, within the model's range, and brought back"]


def _decoded_light(path: Path, size: tuple[int, int], max_pixels: int | None, codec: str, name: str,
                   decode: Callable[[str, Path], np.ndarray]) -> np.ndarray:
    """A float picture's linear light, ``decode``d by the bundled ffmpeg's ``codec`` once its header's ``size`` has
    passed the pixel limit; the :class:`InputError` that says why not."""
    _check_pixels(path, size, max_pixels)  # before anything is decoded
    exe = _codec_ffmpeg(path, codec, name, "decoders")
    try:
        return decode(exe, path)
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None


def _head(path: Path) -> bytes:
    """The first 64 bytes of ``path`` (fewer, or none where it cannot be read): enough to tell its format."""
    try:
        with path.open("rb") as f:
            return f.read(64)
    except OSError:
        return b""


def _jxl_ffmpeg(path: Path, kind: str) -> str:
    """The bundled ffmpeg where it has libjxl's ``kind`` (``decoders``, ``encoders``); else the error that says so."""
    return _codec_ffmpeg(path, "libjxl", "JPEG XL", kind)


def _codec_ffmpeg(path: Path, codec: str, name: str, kind: str) -> str:
    """The bundled ffmpeg where it has ``codec``'s ``kind`` (``decoders``, ``encoders``) for the format ``name``;
    else the error that says so."""
    from classsr_cli.errors import VideoError
    from classsr_cli.io.video import ffmpeg_codecs, ffmpeg_exe

    try:
        exe = ffmpeg_exe()
    except VideoError as e:
        exe, why = None, str(e)
    if exe is not None and codec in ffmpeg_codecs(kind):
        return exe
    if exe is not None:
        why = f"this ffmpeg ({exe}) has no {codec} {kind.removesuffix('s')}"
    what = "reading" if kind == "decoders" else "writing"
    error = InputError if kind == "decoders" else ConfigError
    raise error(f"{path}: {what} {name} needs the ffmpeg imageio-ffmpeg bundles, built with {codec} ({why})")


def _exr_header(path: Path) -> Any:
    """An EXR's :class:`~classsr_cli.io.exr.Header`, from the file's first 4 KB (a header without a preview fits in
    them: a sequence's thousands of frames are each checked so), read 16 times further each time the header runs past
    them; an :class:`InputError` where it does not read or describes what classsr does not."""
    from classsr_cli.io import exr

    try:
        with path.open("rb") as f:
            data = f.read(1 << 12)
            while True:
                try:
                    head = exr.header(data)
                    break
                except ValueError:
                    more = f.read(15 * len(data))
                    if not more:  # the whole file read: its header is cut short or malformed
                        raise
                    data += more
        return _exr_checked(path, head)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None


def _exr_checked(path: Path, head: Any) -> Any:
    if head.deep:
        raise InputError(f"{path}: a deep EXR (samples at several depths a pixel): not an image classsr upscales")
    names = set(head.read)
    if not (names & {"R", "G", "B", "Y"}):
        shown = ", ".join(sorted(name for name, _ in head.channels)[:6]) or "none"
        raise InputError(f"{path}: an EXR without R, G, B or Y channels, of its own or in one layer (it has {shown}): "
                         "classsr reads those")
    if {name for name, _ in head.channels} & {"RY", "BY"}:
        raise InputError(f"{path}: an EXR stored as luminance and chroma (Y, RY, BY), which the bundled ffmpeg reads as "
                         "gray: save it as RGB")
    if 0 < len(names & {"R", "G", "B"}) < 3:
        has, lacks = (", ".join(c for c in "RGB" if (c in names) == want) for want in (True, False))
        raise InputError(f"{path}: an EXR without {lacks} (it has {has}), which the bundled ffmpeg does not read: save "
                         "it with R, G and B")
    from classsr_cli.io.exr import NEWER

    if head.compression in NEWER:
        raise InputError(f"{path}: an EXR compressed with {NEWER[head.compression]} (a newer OpenEXR compression), which the "
                         "bundled ffmpeg does not decode: save it with ZIP, PIZ or DWAA compression")
    if len({kind for name, kind in head.read.items() if name in ("R", "G", "B")}) > 1:
        raise InputError(f"{path}: an EXR whose R, G and B channels differ in pixel type (half and float), which the "
                         "bundled ffmpeg does not decode: save them in one type")
    return head


def exr_attributes(path: Path, *, strip: bool = False) -> dict[str, tuple[str, bytes]]:
    """The attributes an EXR output carries from the EXR ``path`` (:data:`classsr_cli.io.exr.CARRIED`; with ``strip``
    only those of how it looks, :data:`classsr_cli.io.exr.LOOKS`)."""
    from classsr_cli.io import exr

    carried = {k: v for k, v in _exr_header(path).attributes.items() if k in exr.CARRIED}
    return exr.looks(carried) if strip else carried


def exr_frames(frames: Iterable[Path]) -> None:
    """Every frame of an OpenEXR sequence checked before any is decoded, as :func:`read_image` checks a picture (its
    header, what classsr reads, every chunk in the file: ffmpeg's decoder fills a cut frame with zeros and says
    nothing) and against the first frame (its size, channels and pixel type, which the video reader reads every frame
    in): an :class:`InputError` naming the first frame that fails."""
    from classsr_cli.io import exr

    first: tuple[Path, tuple[Any, ...]] | None = None
    for path in frames:
        head = _exr_header(path)
        if why := exr.cut_short(path, head):
            raise InputError(f"{path}: truncated or corrupt image ({why})")
        if head.layer is not None:
            raise InputError(f"{path}: an EXR of layers (its colour in layer {head.layer!r}), which `classsr upscale` "
                             "reads, but a sequence of which `classsr video` does not: save the frames with R, G and B "
                             "of their own, or upscale them one by one")
        read = head.read
        alike = ((head.width, head.height), "".join(c for c in "RGBAY" if c in read) if "R" in read else
                 "".join(c for c in "YA" if c in read), head.half)  # fmt: skip
        if first is None:
            first = path, alike
            continue
        if alike != first[1]:
            (size, channels, half), (was, had, halved) = alike, first[1]
            said = (f"{size[0]}x{size[1]}, the first frame ({first[0].name}) {was[0]}x{was[1]}" if size != was else
                    f"{'+'.join(channels)}, the first frame ({first[0].name}) {'+'.join(had)}" if channels != had else
                    f"{'half' if half else 'float'} pixels, the first frame ({first[0].name}) "
                    f"{'half' if halved else 'float'}")  # fmt: skip
            raise InputError(f"{path}: a frame unlike the sequence's first ({said}), which `classsr video` reads every "
                             "frame as: upscale the frames one by one with `classsr upscale`")


def pfm_frames(frames: Iterable[Path]) -> None:
    """Every frame of a PFM sequence checked before any is decoded: its header, its size on disk (a cut frame, which
    ffmpeg's decoder would refuse only when it comes to it), and its size and channels against the first frame's:
    an :class:`InputError` naming the first frame that fails."""
    first: tuple[Path, tuple[int, int, bytes]] | None = None
    for path in frames:
        head = _pfm_header(path)
        need = head.offset + head.width * head.height * (3 if head.magic == b"PF" else 1) * 4
        if (size := path.stat().st_size) < need:
            raise InputError(f"{path}: truncated or corrupt image (cut short: {size - head.offset:,} of its "
                             f"{need - head.offset:,} bytes of pixels)")
        alike = (head.width, head.height, head.magic)
        if first is None:
            first = path, alike
        elif alike != first[1]:
            raise InputError(f"{path}: a frame unlike the sequence's first ({head.width}x{head.height} "
                             f"{'colour' if head.magic == b'PF' else 'gray'}, the first frame ({first[0].name}) "
                             f"{first[1][0]}x{first[1][1]} {'colour' if first[1][2] == b'PF' else 'gray'}), which "
                             "`classsr video` reads every frame as: upscale the frames one by one with `classsr upscale`")


def pfm_encoder(meta: Meta) -> Callable[[Path, list[np.ndarray], Any], None]:
    """What writes a frame of a PFM sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, 3)`` uint16 rows
    of sRGB-encoded levels (alpha as a fourth channel: colour premultiplied, as a PFM holds none) in linear light with
    the frame's :class:`~classsr_cli.io.exr.Linear` added back (:func:`_pfm_writer`)."""

    def encode(path: Path, rows: list[np.ndarray], light: Linear | None) -> None:
        colour, alpha = _whole_frame(rows)
        linear = light if light is not None else Linear(half=False)
        _pfm_writer(path, colour.shape[:2], colour.shape[2], [colour], replace(meta, linear=linear), alpha)

    return encode


def radiance_frames(frames: Iterable[Path]) -> None:
    """Every frame of a Radiance HDR sequence checked before any is decoded, as :func:`read_image` checks a picture
    (its header: RGBE, top to bottom; its rows all there: :func:`_radiance_whole`) and against the first frame (its
    size, which the video reader reads every frame at): an :class:`InputError` naming the first frame that fails."""
    first: tuple[Path, tuple[int, int]] | None = None
    for path in frames:
        head = _radiance_header(path)
        _radiance_whole(path, head)
        size = (head.width, head.height)
        if first is None:
            first = path, size
        elif size != first[1]:
            raise InputError(f"{path}: a frame unlike the sequence's first ({size[0]}x{size[1]}, the first frame "
                             f"({first[0].name}) {first[1][0]}x{first[1][1]}), which `classsr video` reads every frame "
                             "as: upscale the frames one by one with `classsr upscale`")


def radiance_lines(path: Path, *, strip: bool = False) -> tuple[str, ...]:
    """The header lines a Radiance output carries from the Radiance file ``path`` (with ``strip`` only those of how it
    looks, :data:`classsr_cli.io.radiance.LOOKS`)."""
    from classsr_cli.io import radiance

    lines = tuple(_radiance_header(path).carried)
    return radiance.looks(lines) if strip else lines


def _read_exr(path: Path, max_pixels: int | None) -> Picture:
    """An OpenEXR's first part, decoded by the bundled ffmpeg (:func:`classsr_cli.io.exr.decode`) and split into
    16-bit sRGB-encoded pixels of its light within 0-1 and the linear rest (:func:`classsr_cli.io.exr.split`), with
    notes on what is not read (other parts, layers) or not as it was (non-finite values, light outside 0-1)."""
    from classsr_cli.io import exr

    head = _exr_header(path)
    _check_pixels(path, (head.width, head.height), max_pixels)
    if why := exr.cut_short(path, head):  # ffmpeg's decoder gives zeros for the chunks a cut file lacks
        raise InputError(f"{path}: truncated or corrupt image ({why})")
    decoded = _decoded_light(path, (head.width, head.height), max_pixels, "exr", "OpenEXR",
                             lambda exe, source: exr.decode(exe, source, head.layer))
    if (decoded.shape[1], decoded.shape[0]) != (head.width, head.height):
        raise InputError(f"{path}: truncated or corrupt image (decoded {decoded.shape[1]}x{decoded.shape[0]}, its "
                         f"header says {head.width}x{head.height})")  # fmt: skip
    colour, alpha = exr.colour_alpha(decoded)
    pixels, alpha16, linear, bad = exr.split(colour, alpha, head.half)
    linear = replace(linear, attributes={k: v for k, v in head.attributes.items() if k in exr.CARRIED})
    notes: list[str] = _darker_notes("EXR", linear)
    if head.multipart:
        notes.append("EXR of several parts: only the first is upscaled")
    if head.layer is not None:
        notes.append(f"EXR of layers: layer {head.layer!r} read (the file has no R, G and B of its own)")
    if head.others:
        shown = ", ".join(head.others[:6]) + (", ..." if len(head.others) > 6 else "")
        whose = "" if head.layer is None else "that layer's "
        notes.append(f"EXR channels besides {whose}R, G, B, A and Y not read ({shown})")
    if bad:
        notes.append(f"EXR with {bad:,} non-finite values (NaN, infinity): read as 0 and the largest half float")
    if head.overscan:
        notes.append("EXR with data outside its display window (overscan): only the display window is upscaled")
    notes += _primaries_notes("EXR", linear)
    mode = ("L" if pixels.shape[2] == 1 else "RGB") + ("A" if alpha is not None else "")
    return Picture(pixels=pixels, alpha=alpha16, source_format="EXR", source_mode=mode, notes=notes, lossless=True,
                   linear=linear)  # fmt: skip


#: sRGB's (Rec. 709's) primaries and D65 white, CIE xy: an EXR's chromaticities where it says none.
_REC709 = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def _jxl_boxes(path: Path) -> Any:
    """A JPEG XL file's :class:`~classsr_cli.io.jxl.Boxes` and codestream :class:`~classsr_cli.io.jxl.Header`; an
    :class:`InputError` where they do not read."""
    from classsr_cli.io import jxl

    try:
        boxes = jxl.read_boxes(path.read_bytes())
        return boxes, jxl.header(boxes.codestream)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None


def _jxl_header(path: Path) -> Any:
    return _jxl_boxes(path)[1]


def _read_jxl(path: Path, max_pixels: int | None) -> Picture:
    """A JPEG XL's first frame, decoded by the bundled ffmpeg's libjxl into a PNG and read as one (its 8 or 16 bits,
    gray, alpha, ICC profile; turned by the codestream's orientation, which EXIF's does not repeat), with the file's
    own EXIF and XMP and, where it describes its colours without an ICC profile, their :class:`Nclx`."""
    from classsr_cli.io import jxl

    boxes, head = _jxl_boxes(path)
    _check_pixels(path, head.shown, max_pixels)  # before anything is decoded
    exe = _jxl_ffmpeg(path, "decoders")
    with tempfile.TemporaryDirectory(prefix="classsr-jxl-") as tmp:
        png = Path(tmp) / "frame.png"
        try:
            colour = jxl.decode(exe, path, png)
        except ValueError as e:
            if not (head.animated and _head(path).startswith(jxl.CONTAINER)):
                raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
            bare = Path(tmp) / "codestream.jxl"  # ffmpeg's reader of animations finds no size in some containers (a
            bare.write_bytes(boxes.codestream)  # codestream in parts): its codestream alone, which it reads
            try:
                colour = jxl.decode(exe, bare, png)
            except ValueError:
                raise InputError(f"{path}: truncated or corrupt image ({_reason(e)})") from None
        with pixel_limit_off(), Image.open(png, formats=["PNG"]) as im:
            picture = _decode(png, im, orient=False)
    if (picture.width, picture.height) != head.shown:
        raise InputError(f"{path}: truncated or corrupt image (decoded {picture.width}x{picture.height}, its header "
                         f"says {head.shown[0]}x{head.shown[1]})")  # fmt: skip
    notes = list(picture.notes)
    if head.animated:
        notes.append(f"JPEG XL animation: only the first frame is upscaled (`classsr video` upscales every frame: e.g. "
                     f"`classsr video {path.name} {path.stem}_x4.webp`)")  # fmt: skip
    exif = picture.exif  # what libjxl gave ffmpeg (Brotli-compressed boxes too), else the file's own box
    if boxes.exif:
        loaded = Image.Exif()
        with contextlib.suppress(Exception):
            loaded.load(b"Exif\x00\x00" + boxes.exif)
        exif = _exif_bytes(loaded, "JXL", b"Exif\x00\x00" + boxes.exif) or exif
    if "xml" in boxes.compressed and boxes.xmp is None:
        notes.append("JPEG XL with Brotli-compressed XMP: not carried")
    nclx = None
    if colour is not None and picture.icc is None:
        nclx = _coded(*colour)
        nclx = None if nclx.srgb else nclx
    notes.extend(_colour_notes("JPEG XL", nclx))
    # not the intermediate PNG's text, print size or gAMA/cHRM (ffmpeg's, from the colours the ICC profile or the
    # nclx above describe: carried as a PNG's own, a JPEG output said a PNG gamma was left out)
    return replace(picture, exif=exif, xmp=boxes.xmp or picture.xmp, text=(), dpi=None, gamma=None,
                   source_format="JXL", notes=notes, nclx=nclx)  # fmt: skip


#: The reader of each format :func:`own_format` names.
_OWN_READERS: dict[str, Callable[[Path, int | None], Picture]] = {
    "JXL": _read_jxl, "EXR": _read_exr, "HDR": _read_radiance, "PFM": _read_pfm, "PSD": _read_psd, "PAM": _read_pam,
    "ORA": _read_merged,
}


def _read_heif16(path: Path, index: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A 10 or 12-bit HEIF's primary image (or its image ``index``: a spatial photo's right eye) at 16 bits
    (pillow-heif gives its levels in the top bits: stretched to 0-65535, as a 16-bit PNG holds them), turned as its
    transforms say; colour and alpha."""
    import pillow_heif

    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    image = heif if index is None else heif[index]
    depth = int(image.info.get("bit_depth") or 16)  # type: ignore[arg-type]
    arr = to16(np.asarray(image) >> (16 - depth), depth)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] in (2, 4):
        return arr[..., :-1], arr[..., -1]
    return arr, None


#: ffmpeg's raw 16-bit pixel format of each channel count (gray, gray + alpha, RGB, RGBA).
_RAW16 = {1: "gray16le", 2: "ya16le", 3: "rgb48le", 4: "rgba64le"}
#: And its 8-bit one.
_RAW8 = {1: "gray", 2: "ya8", 3: "rgb24", 4: "rgba"}


def _ffmpeg16(path: Path, size: tuple[int, int], channels: int, before: tuple[str, ...] = (),
              stream: int = 0, *, eight: bool = False, yuv: bool = False) -> tuple[np.ndarray, str] | None:  # fmt: skip
    """A still's first picture (of its video ``stream``: an AVIF's alpha is its second) decoded by the bundled ffmpeg
    at 16 bits (each level stretched to 0-65535; at 8 where ``eight``), ``(H, W, channels)``, and ffmpeg's log;
    ``None`` where ffmpeg fails or gives another ``size`` (``(width, height)``) or no ffmpeg is there. ``before``:
    options for the input; ``yuv``: a YUV picture, converted to RGB as ``classsr video`` converts frames
    (:data:`~classsr_cli.io.video.DECODE_FLAGS`: chroma upsampled by bicubic interpolation, exact rounding; by
    default swscale repeats each chroma sample, closer to the original by 0.06-0.24 levels RMS on the examples'
    10-bit AVIFs)."""
    from classsr_cli.errors import VideoError
    from classsr_cli.io.video import DECODE_FLAGS, decoded_white, ffmpeg_exe, stretched, to_16bit

    try:
        exe = ffmpeg_exe()
    except VideoError:
        return None
    width, height = size
    small = () if eight or not (vf := to_16bit(width, height)) else ("-vf", vf)  # (a swscale bug: see to_16bit)
    got = subprocess.run(
        [exe, "-hide_banner", "-nostdin", *before, "-i", str(path), "-map", f"0:v:{stream}", "-frames:v", "1",
         *(("-sws_flags", DECODE_FLAGS) if yuv else ()), *small, "-f", "rawvideo",
         "-pix_fmt", _RAW8[channels] if eight else _RAW16[channels], "-"], capture_output=True, check=False,
    )  # fmt: skip
    if got.returncode or len(got.stdout) != width * height * channels * (1 if eight else 2):
        return None
    levels = np.frombuffer(got.stdout, "u1" if eight else "<u2").reshape(height, width, channels)
    log = got.stderr.decode(errors="replace")
    if yuv and not eight and channels == 3 and (coded := _CODED_FORMAT.search(log)) is not None:
        # swscale gives white below 65535: stretched back, as classsr video's reader does
        levels = stretched(levels, decoded_white(coded.group(1), coded.group(2), bool(small)))
    return levels if levels.flags.writeable else levels.copy(), log


#: The pixel format and colour properties of the picture ffmpeg decodes, from its log (``Video: av1 (libdav1d) ...,
#: yuv420p10le(tv, bt709), ...``; the properties may be missing): its first stream's.
_CODED_FORMAT = re.compile(r"Stream #0:\d+\S*: Video: [^,]+, (\w+)(?:\(([^)]*)\))?")


def _jp2_bits(path: Path) -> int:
    """The most bits a JPEG 2000 file's components have (its codestream's SIZ marker, right after SOC), from its first
    64 KiB; 8 where it says none."""
    with path.open("rb") as f:
        head = f.read(65536)
    at = head.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(head) < at + 44:
        return 8
    count = int.from_bytes(head[at + 40 : at + 42], "big")
    depths = [(head[at + 42 + 3 * k] & 0x7F) + 1 for k in range(count) if at + 42 + 3 * k < len(head)]
    return max(depths, default=8)


def _read_jp2_16(path: Path, im: Image.Image, bits: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A JPEG 2000 of ``bits`` above 8 (Pillow's decoder gives a colour one 8) at 16, through ffmpeg's decoder, each
    level stretched to 0-65535 (ffmpeg's decoder gives 12 bits shifted up: 4095 as 65520): colour and alpha; ``None``
    where ffmpeg does not give it."""
    channels = {"L": 1, "I;16": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(im.mode)
    got = None if channels is None else _ffmpeg16(path, im.size, channels)
    if got is None:
        return None
    levels = _stretched(got[0], bits)
    colour = levels[..., : 3 if channels in (3, 4) else 1]
    return np.ascontiguousarray(colour), (levels[..., -1].copy() if channels in (2, 4) else None)


def _gif_uncovered(im: Image.Image, alpha: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """A GIF's alpha with the canvas its first picture does not cover (a picture smaller than the GIF's screen) clear,
    as browsers and gdk-pixbuf show it: Pillow fills it with the background colour, opaque. ``size``: (height,
    width)."""
    box = getattr(im, "dispose_extent", None)
    height, width = size
    if box is None or (box[0] <= 0 and box[1] <= 0 and box[2] >= width and box[3] >= height):
        return alpha
    x0, y0, x1, y1 = (max(0, int(v)) for v in box)
    clear = np.ones(size, bool)
    clear[y0:y1, x0:x1] = False
    out = np.full(size, 255, np.uint8) if alpha is None else alpha.copy()
    out[clear] = 0
    return out


def _webp_uncovered(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """An animated WebP's alpha where its first frame leaves some of its canvas uncovered: that canvas clear, as
    libwebp and browsers show it (Pillow reads a WebP that says it has no alpha as RGB, the rest black). ``None``
    where the first frame covers the canvas, or the file is not an animated WebP. ``size``: (height, width)."""
    from classsr_cli.io.video import webp_first_box

    try:
        box = webp_first_box(path)
    except OSError:
        return None
    height, width = size
    if box is None or (box[0] <= 0 and box[1] <= 0 and box[2] >= width and box[3] >= height):
        return None
    x0, y0, x1, y1 = box
    alpha = np.zeros(size, np.uint8)
    alpha[y0:y1, x0:x1] = 255
    return alpha


def _ico_deepest(im: Image.Image) -> Image.Image:
    """An icon's picture of its largest size (``im``'s) in the most bits a pixel its directory gives that size: Pillow
    takes the fewest (an 8-bit palette one before a 32-bit one of alpha, image-rs's multiple_entries test icon)."""
    ico = getattr(im, "ico", None)
    same = [e for e in getattr(ico, "entry", ()) if e.dim == im.size]
    if ico is None or len(same) < 2 or max(e.bpp for e in same) <= same[0].bpp:
        return im
    deepest = ico.getimage(im.size, max(same, key=lambda e: e.bpp).color_depth)
    deepest.info = {**im.info, **deepest.info}
    return deepest


def _jp2_deep_cmyk(path: Path, im: Image.Image) -> Image.Image | None:
    """A CMYK JPEG 2000 of more than 8 bits (``im``, as Pillow opened it) as 8-bit CMYK from ffmpeg's decoding at 16:
    Pillow's decoder wraps its top levels round to 0, full ink read as none; ``None`` for one of 8 bits, or where
    ffmpeg does not give it."""
    bits = _jp2_bits(path)
    got = _ffmpeg16(path, im.size, 4) if bits > 8 else None
    if got is None:
        return None
    out = Image.frombytes("CMYK", im.size, to_8bit(_stretched(got[0], bits)).tobytes())
    out.info.update(im.info)
    return out


def _tga_by_ffmpeg(path: Path, im: Image.Image) -> Image.Image | None:
    """A TGA Pillow opened but does not decode, decoded by the bundled ffmpeg as a picture of ``im``'s mode (a
    colour-mapped one's as RGBA): a run-length packet over more than two rows (a flat sky's: TGA 1.0 let packets run
    on across rows), which Pillow's decoder refuses ("buffer overrun"); ``None`` where ffmpeg gives no picture
    either."""
    mode = "RGBA" if im.mode in ("P", "PA") else im.mode
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(mode)
    got = None if channels is None else _ffmpeg16(path, im.size, channels, ("-f", "image2", "-c:v", "targa"), eight=True)
    if got is None or _TGA_TROUBLE.search(got[1]):
        return None
    decoded = Image.fromarray(got[0][..., 0] if channels == 1 else got[0], mode)
    decoded.info.update(im.info)  # (its run-length coding, which a TGA output keeps)
    return decoded


def _tga_alpha_unused(path: Path, alpha: np.ndarray) -> bool:
    """Whether the fourth byte of a TGA's colours (``alpha``, as Pillow reads it) is no alpha: its TGA 2.0 extension
    area says so (attributes type 0, 1 or 2: none, undefined to be ignored, undefined to be kept), or its header gives
    no alpha bits and every byte is 0 (a 32-bit TGA whose writer left the byte unused, which was read as a wholly
    transparent picture)."""
    try:
        with path.open("rb") as f:
            flags = f.read(18)[17:18]
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 26))
            footer = f.read(26)
            at = int.from_bytes(footer[:4], "little") if footer.endswith(TGA_FOOTER) else 0
            if 18 <= at <= size - 495:
                f.seek(at + 494)
                if f.read(1) in (b"\x00", b"\x01", b"\x02"):
                    return True
    except OSError:
        return False
    return len(flags) == 1 and flags[0] & 0x0F == 0 and not alpha.any()


#: An error ffmpeg's TGA decoder reports of the data (a file cut short, whose rows it still gives).
_TGA_TROUBLE = re.compile(r"\[targa @ [^\]]*\] .*(?:[Tt]oo short|[Ii]nvalid|[Ee]rror|[Nn]ot enough)")


def _stretched(levels: np.ndarray, bits: int) -> np.ndarray:
    """16-bit ``levels`` of a picture of ``bits`` as ffmpeg gives them, each stretched to 0-65535 where they came
    shifted up (its JPEG 2000 decoder's 4095 of 12 bits as 65520) rather than stretched (its colour conversions')."""
    shift = 16 - bits
    if 0 < shift < 8 and not np.any(levels & ((1 << shift) - 1)):  # shifted, not stretched
        return to16(levels >> shift, bits)
    return levels


def to16(levels: np.ndarray, bits: int) -> np.ndarray:
    """``levels`` of ``bits`` (0 to 2**bits - 1; above it, the top) stretched to 0-65535, rounded, in ``uint16``."""
    top = (1 << bits) - 1
    return ((np.minimum(levels, top).astype(np.uint32) * 65535 + top // 2) // top).astype(np.uint16)


def _read_avif16(path: Path, im: Image.Image) -> tuple[np.ndarray, Nclx | None, np.ndarray | None] | None:
    """A 10 or 12-bit AVIF's colour at 16 bits, decoded by the bundled ffmpeg (dav1d; Pillow's AVIF decoder gives 8)
    as stored, before its ``irot``/``imir`` (which Pillow gives as the EXIF orientation :func:`_decode` applies); each
    level stretched to 0-65535 (one ffmpeg call, to raw 16-bit pixels); its colour description (an HDR photo's PQ or
    HLG, wide gamut) as ffmpeg reads it; and its alpha (its auxiliary image, which ffmpeg gives as a second stream)
    alike. ``None`` where ffmpeg would not give the picture Pillow opened: a grid of tiles, an alpha it does not give,
    no ffmpeg."""
    from classsr_cli.io.jxl import colour_codes

    if im.mode not in ("RGB", "L", "RGBA", "LA"):
        return None
    colours = 3 if im.mode.startswith("RGB") else 1
    got = _ffmpeg16(path, im.size, colours, ("-noautorotate",), yuv=True)  # None: a grid ffmpeg did not join
    alpha = None
    if got is not None and im.mode in ("RGBA", "LA"):
        alpha = _ffmpeg16(path, im.size, 1, ("-noautorotate",), stream=1)
        if alpha is None:
            return None
    if got is None:
        return None
    colour, log = got
    if colours == 1 and (limited := _LIMITED_GRAY.search(log)) is not None:
        colour = _full_range(colour, int(limited.group(1)))
    codes = colour_codes(log, "av1")
    return colour, None if codes is None else _with_light(_coded(*codes), path), None if alpha is None else alpha[0][..., 0]


#: A gray AV1 picture of limited ("tv") range as ffmpeg describes it, and its bits: ffmpeg gives its levels as stored
#: (black 64, white 940 of 1,023 at 10 bits), where it expands a colour one's in converting it to RGB.
_LIMITED_GRAY = re.compile(r"Video: av1\b[^,]*, gray(\d+)\w*\(tv\b")


def _full_range(levels: np.ndarray, bits: int) -> np.ndarray:
    """Gray ``levels`` of a limited-range picture of ``bits`` (stretched to 0-65535 as stored) made full range, as
    libavif shows them: black (16 at 8 bits) to 0, white (235) to 65535, those outside clipped."""
    top = (1 << bits) - 1
    black, white = (16 << (bits - 8)) / top, (235 << (bits - 8)) / top
    full = (levels.astype(np.float64) / 65535 - black) / (white - black)
    return np.clip(np.rint(full * 65535), 0, 65535).astype(np.uint16)


def _png_header(path: Path) -> _PngHeader:
    """The PNG's :class:`_PngHeader` (chunk headers up to the first IDAT; their data is skipped)."""
    with path.open("rb") as f:
        head = f.read(33)
        if len(head) < 33 or head[12:16] != b"IHDR":
            raise ValueError("not a PNG: no IHDR chunk")
        width, height = struct.unpack(">II", head[16:24])
        keyed, cicp, light = False, None, {}
        while len(chunk := f.read(8)) == 8:
            size, tag = struct.unpack(">I", chunk[:4])[0], chunk[4:]
            if tag in (b"IDAT", b"IEND"):
                break
            keyed = keyed or tag == b"tRNS"
            if tag == b"cICP" and size == 4:
                data = f.read(4)
                cicp = (data[0], data[1], data[2], data[3]) if len(data) == 4 else None
                size -= len(data)
            elif (tag, size) in ((b"cLLi", 8), (b"mDCv", 24)):
                data = f.read(size)
                light[tag] = data
                size -= len(data)
            f.seek(size + 4, os.SEEK_CUR)  # the data and its CRC
    return _PngHeader(width, height, head[24], head[25], keyed, cicp, _png_light(light.get(b"cLLi"), light.get(b"mDCv")))


def _png_light(clli: bytes | None, mdcv: bytes | None) -> tuple[bytes, ...]:
    """A PNG's ``cLLi`` and ``mDCv`` chunks' data as HEIF's ``clli`` and ``mdcv`` boxes (:attr:`Nclx.light`): light in
    whole cd/m² (PNG's in 0.0001), the primaries in HEIF's (HEVC's) order, green, blue, red (PNG's red, green,
    blue); :func:`_png_light_chunks` writes them back."""
    out = []
    if clli is not None and len(clli) == 8:
        cll, fall = (min(0xFFFF, round(v / 10000)) for v in struct.unpack(">II", clli))
        out.append(struct.pack(">I4sHH", 12, b"clli", cll, fall))
    if mdcv is not None and len(mdcv) == 24:
        r, g, b, white = mdcv[0:4], mdcv[4:8], mdcv[8:12], mdcv[12:16]
        out.append(struct.pack(">I4s", 32, b"mdcv") + g + b + r + white + mdcv[16:24])
    return tuple(out)


def _png_light_chunks(light: tuple[bytes, ...]) -> bytes:
    """HEIF's ``clli`` and ``mdcv`` boxes (:attr:`Nclx.light`) as a PNG's ``cLLi`` and ``mDCv`` chunks
    (:func:`_png_light`)."""
    out = b""
    for box in light:
        if box[4:8] == b"clli" and len(box) >= 12:
            out += _png_chunk(b"cLLi", struct.pack(">II", *(v * 10000 for v in struct.unpack_from(">HH", box, 8))))
        elif box[4:8] == b"mdcv" and len(box) >= 32:
            g, b, r, rest = box[8:12], box[12:16], box[16:20], box[20:32]
            out += _png_chunk(b"mDCv", r + g + b + rest)
    return out


#: PNG colour type of each number of samples a pixel (gray, gray+alpha, RGB, RGBA).
_PNG_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}
#: The raw pixel format the bundled ffmpeg hands each 16-bit PNG colour type over in.
_PNG16_RAW = {0: "gray16le", 4: "ya16le", 2: "rgb48le", 6: "rgba64le"}


def _read_png16(path: Path, head: _PngHeader) -> tuple[np.ndarray, np.ndarray | None]:
    """The colour and alpha of a 16-bit PNG as stored (its EXIF orientation, which ffmpeg would apply, is
    :func:`_decode`'s to apply), decoded by the bundled ffmpeg: several times faster than pypng,
    which unfilters in pure Python (a 1024x768 RGB photo: 0.07-0.08 against 0.40-0.98 s, docs/experiments.md). pypng
    decodes what ffmpeg is not given: a colour key (``tRNS``, which pypng turns into alpha), or any PNG where no
    ffmpeg runs, and what ffmpeg refuses (its error said where pypng refuses it too)."""
    if head.colour_type in _PNG16_RAW and not head.keyed:
        from classsr_cli.errors import VideoError
        from classsr_cli.io.video import ffmpeg_exe

        try:
            exe = ffmpeg_exe()
        except VideoError:
            exe = None
        if exe is not None:
            planes = next(n for n, t in _PNG_COLOUR_TYPE.items() if t == head.colour_type)
            got = subprocess.run(
                [exe, "-v", "error", "-xerror", "-nostdin", "-noautorotate", "-i", str(path), "-frames:v", "1", "-f",
                 "rawvideo", "-pix_fmt", _PNG16_RAW[head.colour_type], "-"], capture_output=True, check=False,
            )
            w, h = head.width, head.height
            if got.returncode or got.stderr.strip() or len(got.stdout) != w * h * planes * 2:
                why = got.stderr.decode(errors="replace").strip().splitlines()
                try:  # (ffmpeg fails a whole picture on an EXIF it cannot parse in ImageMagick's raw profile text,
                    return _read_png16_pypng(path)  # the 4 bytes before the TIFF header djxl writes there)
                except ValueError:
                    raise ValueError(why[-1] if why else f"decoded {len(got.stdout)} bytes of {w}x{h}x{planes}") from None
            data = np.frombuffer(got.stdout, "<u2").reshape(h, w, planes).copy()
            return (data[..., :-1], data[..., -1]) if planes in (2, 4) else (data, None)
    return _read_png16_pypng(path)


def _read_png16_pypng(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import png  # pypng: Pillow reads 16-bit colour PNG as 8-bit

    try:
        with path.open("rb") as f:  # (pypng leaves a file it opened itself open)
            w, h, rows, info = png.Reader(file=f).asDirect()
            data = np.array([np.asarray(r, dtype=np.uint16) for r in rows], dtype=np.uint16)
    except (png.Error, zlib.error) as e:
        raise ValueError(str(e)) from None
    planes = int(info["planes"])
    if data.shape != (h, w * planes):
        raise ValueError(f"expected {h} rows of {w * planes} samples, got {data.shape}")
    data = data.reshape(h, w, planes)
    if info.get("bitdepth") != 16:  # asDirect rescales sBIT; keep 16-bit output all the same
        data = data * (65535 // ((1 << int(info["bitdepth"])) - 1))
    alpha = bool(info.get("alpha"))
    colour = data[..., : planes - 1] if alpha else data
    return colour, (data[..., -1] if alpha else None)


def _tiff_is_16bit(im: Image.Image) -> bool:
    """Whether an opened TIFF has samples of 9 to 16 bits, read at 16 (:func:`_read_tiff16`): Pillow reads 16-bit
    colour as 8-bit, and 12-bit gray as its levels (0-4095) in 16 bits, a picture 16 times too dark."""
    bits = getattr(im, "tag_v2", {}).get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return any(9 <= int(b) <= 16 for b in bits)


def _read_tiff16(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import tifffile  # Pillow reads 16-bit colour TIFF as 8-bit

    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        arr = _tiff_page(path, page)
        photometric = int(page.photometric)
    if arr.dtype != np.uint16:
        what = "; save an HDR picture as OpenEXR" if arr.dtype.kind == "f" else ""
        raise _Unsupported(f"TIFF samples of type {arr.dtype} are not supported (8 or 16-bit integers are{what})")
    if arr.ndim == 2:
        arr = arr[..., None]
    if photometric == 0:  # MINISWHITE
        arr = 65535 - arr
    elif photometric not in (1, 2):  # MINISBLACK, RGB
        raise _deep_colours_refused(16, photometric)
    c = arr.shape[-1]
    if c in (2, 4):
        return arr[..., : c - 1], arr[..., -1]
    if c in (1, 3):
        return arr, None
    raise _Unsupported(f"16-bit TIFF with {c} samples per pixel is not supported")


def _deep_colours_refused(bits: int, photometric: int) -> _Unsupported:
    """Why a TIFF of ``bits``-bit samples in colours other than gray or RGB (TIFF's ``photometric``) is not read."""
    kind = {5: "CMYK", 6: "YCbCr", 8: "CIELab"}.get(photometric, f"photometric {photometric}")
    return _Unsupported(f"{bits}-bit {kind} TIFF is not supported (16-bit gray and RGB are, and 8-bit {kind} is "
                        "converted); save it as 16-bit RGB or as 8-bit")


def _tiff_page(path: Path, page: Any) -> np.ndarray:
    """The pixels of the TIFF ``path``'s first ``page`` (tifffile's ``TiffPage``) as tifffile gives them, levels of 9
    to 15 bits stretched to 0-65535; where tifffile needs the imagecodecs package to decode them, those of 9 to 15
    bits packed, uncompressed or Deflate-compressed, from :func:`classsr_cli.io.packed.unpack`, and others of 9 to
    16-bit unsigned samples (LZW, which Photoshop and scanners write) from the bundled ffmpeg's TIFF decoder, alike,
    samples last; an :class:`_Unsupported` naming the layout for others."""
    bits, samples, photometric = int(page.bitspersample), int(page.samplesperpixel), int(page.photometric)
    try:
        arr = page.asarray()
    except (ValueError, NotImplementedError, ImportError) as e:  # (Zstandard: Python 3.14's module, else imagecodecs)
        if "imagecodecs" not in str(e) and "not supported" not in str(e) and not isinstance(e, ImportError):
            raise
    else:
        if "S" in page.axes and page.axes.index("S") == 0:  # planes (PlanarConfiguration 2): samples last
            arr = np.moveaxis(arr, 0, -1)
        if arr.dtype == np.uint16 and 9 <= bits < 16:  # (tifffile gives a 12-bit sample's levels, 0-4095)
            arr = to16(arr, bits)
        return arr
    if packed.readable(page):  # 9 to 15 bits, packed, uncompressed or Deflate: read here (with its predictor, white)
        return to16(packed.unpack(path, page), bits)
    plain = int(page.sampleformat) == 1 and 9 <= bits <= 16 and samples <= 4 and photometric in (0, 1, 2)
    if int(page.sampleformat) == 1 and 9 <= bits <= 16 and photometric not in (0, 1, 2):  # (LZW CIELab: Nikon's)
        raise _deep_colours_refused(bits, photometric)
    wrong = bits < 16 and (int(page.predictor) != 1 or photometric == 0)  # (ffmpeg's decoder gets these wrong)
    if wrong or not plain:
        extra = (", with a predictor" if int(page.predictor) != 1 else ", white as 0") if plain else ""
        raise _Unsupported(f"{_tiff_layout(page)}{extra}, which classsr does not decode: save it with 8 or 16-bit "
                           "samples")
    got = _ffmpeg16(path, (int(page.imagewidth), int(page.imagelength)), samples, ("-f", "tiff_pipe"))
    if got is None:
        raise _Unsupported(f"{_tiff_layout(page)}, which neither tifffile (without imagecodecs) nor the bundled ffmpeg "
                           "decodes: save it with 8 or 16-bit samples")
    levels = got[0]
    if bits < 16:  # ffmpeg gives a level's bits at the top (its low bits repeated): each stretched exactly
        levels = to16(levels >> (16 - bits), bits)
    return 65535 - levels if photometric == 0 else levels  # (ffmpeg gives MINISWHITE inverted: as stored here)


def _tiff_layout(page: Any) -> str:
    """A TIFF page's samples and compression, said: "a TIFF of 12-bit samples, LZW-compressed"."""
    kind = {1: "", 2: " signed", 3: " floating-point"}.get(int(page.sampleformat), " other")
    code = int(page.compression)
    name = _TIFF_COMPRESSIONS.get(code, f"compression {code}")
    return f"a TIFF of {int(page.bitspersample)}-bit{kind} samples, " + ("uncompressed" if code == 1 else
                                                                         f"{name}-compressed")


def _is_tiff(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) in (b"II*\x00", b"MM\x00*")


def _decode_tiff_only(path: Path, max_pixels: int | None) -> Picture:
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        shape = dict(zip(page.axes, page.shape, strict=True))
        _check_pixels(path, (shape.get("X", 1), shape.get("Y", 1)), max_pixels)
        icc = page.tags.get(34675)
        orientation = page.tags.get(274)
        icc_bytes = bytes(icc.value) if icc is not None else None
        orient = int(orientation.value) if orientation is not None else 1
    colour, alpha = _read_tiff16(path)
    return Picture(
        pixels=np.ascontiguousarray(_orient(colour, orient)),
        alpha=None if alpha is None else np.ascontiguousarray(_orient(alpha, orient)),
        icc=icc_bytes,
        source_format="TIFF",
        source_mode=("L" if colour.shape[2] == 1 else "RGB") + ("A" if alpha is not None else "") + ";16",
    )


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to ``(H, W, ...)`` as ``ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _exif_bytes(exif: Image.Exif, fmt: str, raw: object = None) -> bytes | None:
    """EXIF to carry: without the orientation (applied) and, from a TIFF, without its layout tags; in the byte order it
    came in, its tags' types and its maker note's offsets as ``raw`` (the EXIF as the file held it) has them
    (:func:`classsr_cli.io.exif.relaid`)."""
    if not len(exif):
        return None
    try:
        out = Image.Exif()
        out.endian = exif.endian  # (Pillow writes big-endian otherwise: a maker note in its camera's order then reads wrong)
        for tag in list(exif):
            if tag == _ORIENTATION or (fmt == "TIFF" and tag not in _TIFF_EXIF_TAGS):
                continue  # not read: Pillow warns reading a tag stored otherwise than it declares it (IPTC's)
            value = exif[tag]
            if tag == _IMAGE_DESCRIPTION and _describes_layout(value):
                continue
            if tag in (EXIF_IFD, GPS_IFD):  # pointers: copy the sub-IFD itself, not its old offset
                if ifd := _sub_ifd(exif, tag):
                    out[tag] = ifd
                continue
            out[tag] = value
        if not len(out):
            return None
        made = out.tobytes()
        return relaid(raw, made) if isinstance(raw, bytes | mmap.mmap) else made
    except Exception:  # malformed maker notes and the like: drop the EXIF rather than the image
        return None


def _sub_ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    """The Exif or GPS sub-IFD (``tag``) of ``exif`` to write anew: its Interoperability IFD given as its tags (Pillow
    gives its old offset, which would point at other bytes in the new layout: exiftool's "Bad format" for it)."""
    ifd = dict(exif.get_ifd(tag))
    if INTEROP_IFD in ifd:
        interop = dict(exif.get_ifd(INTEROP_IFD))
        if interop:
            ifd[INTEROP_IFD] = interop
        else:
            del ifd[INTEROP_IFD]
    return ifd


def _describes_layout(description: object) -> bool:
    """Whether an ImageDescription is a program's record of the pixel layout rather than a person's text:
    tifffile's shape (``{"shape": [30, 40, 3]}``, or ``shape=(...)`` of old), an ImageJ header (``ImageJ=...``,
    ``images=``, ...) or OME-XML. Each names the input's dimensions, which the output no longer has: carried,
    tifffile warned "shaped series shape does not match page shape" reading the output (and an ImageJ or OME
    reader would lay the pixels out by the old size), so they are dropped; tifffile writes the output's own shape.
    Anything else (a camera's or a person's caption) is kept: it still describes the picture."""
    text = description.decode("latin-1") if isinstance(description, bytes) else description
    if not isinstance(text, str):
        return False
    text = text.strip()
    return (
        (text.startswith("{") and '"shape":' in text)  # tifffile's own test (TiffPage.is_shaped)
        or text.startswith(("shape=(", "ImageJ="))
        or (text.startswith("<") and text.endswith("OME>"))  # OME-XML, as tifffile's is_ome
    )


# ----------------------------------------------------------------------------------------------- writing


def output_format(path: Path) -> str:
    """Pillow format name for an output path; :class:`ConfigError` for a suffix classsr cannot write, or one whose
    codec this Pillow was built without (AVIF before Pillow 11.3, or without libavif)."""
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(set(WRITE_FORMATS)))
        animation = " (`classsr video` writes animated GIF and APNG)" if path.suffix.lower() in (".gif", ".apng") else ""
        raise ConfigError(f"{path}: cannot write {path.suffix or 'a file without suffix'}{animation}; use one of {known}")
    Image.init()
    if fmt == "HEIF" and not _heif_plugin():
        raise ConfigError(f"{path}: writing HEIC needs pillow-heif (pip install pillow-heif), or write another format")
    if fmt == "JXL":
        _jxl_ffmpeg(path, "encoders")
        return fmt
    if fmt in ("EXR", "PFM", "PAM", *_PNM_FORMATS):  # classsr's own writers
        return fmt
    if fmt == "HDR":
        _codec_ffmpeg(path, "hdr", "Radiance HDR", "encoders")
        return fmt
    if fmt not in Image.SAVE:
        raise ConfigError(f"{path}: this Pillow ({Image.__version__}) cannot write {fmt}: install Pillow 11.3 or later "
                          "with its codec, or write another format")
    return fmt


def readable_formats() -> list[str]:
    """The formats classsr reads that this Pillow has (AVIF only from Pillow 11.3, where built with libavif; HEIF
    where pillow-heif is installed)."""
    Image.init()
    _heif_plugin()
    return [f for f in _READ_FORMATS if f in Image.OPEN]


def open_formats(path: Path | None, data: bytes = b"") -> list[str]:
    """The formats Pillow may open ``path`` as (``None``: ``data``, a picture on standard input):
    :func:`readable_formats`, TGA only where the name says so or the file ends with TGA 2.0's :data:`TGA_FOOTER`."""
    if path is not None and path.suffix.lower() in _TGA_SUFFIXES:
        tga = True
    elif path is None:
        tga = data.endswith(TGA_FOOTER)
    else:
        try:
            with path.open("rb") as f:
                f.seek(max(0, path.stat().st_size - len(TGA_FOOTER)))
                tga = f.read() == TGA_FOOTER
        except OSError:
            tga = False
    return [f for f in readable_formats() if f != "TGA" or tga]


def _deep_ppm(path: Path) -> pnm.Header | None:
    """The header of a raw PPM of more than 8 bits (which Pillow reads at 8), else ``None``."""
    with path.open("rb") as f:
        head = pnm.header(f.read(4096))
    return head if head is not None and head.magic == b"P6" and head.maxval > 255 else None


@functools.cache
def _heif_plugin() -> bool:
    """Register pillow-heif's HEIF reader and writer with Pillow, once (thumbnails, depth maps and auxiliary images
    left unread); whether they are there."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    return True


def check_output_size(path: Path, height: int, width: int) -> None:
    """A :class:`ConfigError` when ``path``'s format cannot hold a ``height`` x ``width`` picture (WebP above 16383
    pixels a side, JPEG above 65500): said before the upscale runs, not by the encoder after it."""
    fmt = output_format(path)
    top, most = MAX_SIDE.get(fmt), _MAX_PIXELS.get(fmt)
    instead = f"write {path.with_suffix('.png').name} or {path.with_suffix('.tif').name} instead"
    if top is not None and max(height, width) > top:
        what = f"{fmt} decoders open" if fmt in _MAX_PIXELS else f"{fmt} holds"
        raise ConfigError(f"{path}: {width}x{height} is more than {what} ({top} pixels a side); {instead}")
    if most is not None and height * width > most:
        raise ConfigError(f"{path}: {width}x{height} is {height * width:,} pixels, more than {fmt} decoders open "
                          f"({most:,}); {instead}")


def write_image(
    path: str | os.PathLike[str], picture: Picture, *, overwrite: bool = False, quality: int | None = None
) -> list[str]:
    """Write ``picture`` to ``path`` atomically; the format follows the suffix. ``quality`` (1-100) is JPEG's,
    WebP's and AVIF's (``None``: :data:`DEFAULT_QUALITY`, and a WebP from a lossless source lossless).

    Returns notes on what the format could not hold (alpha in JPEG: composited on white; 16 bits in
    JPEG/WebP/BMP: rounded to 8). Raises :class:`OutputExistsError` when ``path`` exists and not
    ``overwrite``, :class:`ConfigError` for an unknown suffix or a picture larger than its format holds
    (:func:`check_output_size`), :class:`OutputError` when writing fails.
    """
    path = Path(path)
    fmt = output_format(path)
    check_output_size(path, *picture.pixels.shape[:2])  # (the encoder's own error says less: "broken data stream")
    notes: list[str] = []
    pixels, alpha = picture.pixels, picture.alpha
    if fmt not in _LINEAR_FORMATS and picture.linear is not None:  # as bright as the light was
        pixels = _in_srgb(shown(pixels, picture.linear.resized(pixels.shape[1], pixels.shape[0])), picture.linear)
    if alpha is not None and fmt in ("HDR", "PFM"):
        notes.append(f"{fmt} holds no alpha: written premultiplied (on black), as EXR stores colour")
    elif alpha is not None and fmt not in _ALPHA_FORMATS:
        pixels, alpha = _over_white(pixels, alpha), None
        notes.append(f"{fmt} holds no alpha: composited on white")
    carried = picture.carried()
    deep = _deep_avif(fmt, pixels.dtype, carried)
    if (coded := _sdr_of(fmt, carried, deep)) is not None:  # HDR or wide gamut the format cannot say: shown as SDR sRGB
        from classsr_cli.io.sdr import to_sdr

        pixels = to_sdr(pixels, coded.primaries, coded.transfer, coded.peak)
        notes.extend(_sdr_notes(fmt, coded))
    meta, dropped = _without_hdr_gain(carried.for_output(fmt, pixels.shape[1], pixels.shape[0]), coded)
    notes.extend(_format_notes(fmt, pixels.dtype, carried, meta, deep) + dropped)
    meta, said = _fitting_icc(fmt, meta, pixels.shape[2], picture.linear is not None)
    notes.extend(said)
    if pixels.dtype == np.uint16 and fmt not in _HIGH_BIT_FORMATS and not deep:
        pixels = to_8bit(pixels)
        alpha = None if alpha is None else to_8bit(alpha)
    if fmt == "PNG":
        arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
        size, c = arr.shape[:2], arr.shape[2]
        _atomic_write(path, lambda tmp: _png_writer(tmp, size, c, arr.dtype, _row_chunks(arr), meta), overwrite)
    elif fmt == "TIFF":
        _atomic_write(path, lambda tmp: _tiff_writer(tmp, pixels, alpha, meta), overwrite)
    elif fmt == "HEIF":
        _atomic_write(path, lambda tmp: _heif_writer(tmp, pixels, alpha, meta, quality), overwrite, meta.motion)
    elif deep:
        deep16 = np.concatenate([a if a.dtype == np.uint16 else a.astype(np.uint16) * 257  # (alpha last, as Pillow's)
                                 for a in (pixels, *(() if alpha is None else (alpha[..., None],)))], axis=2)
        _atomic_write(path, lambda tmp: _avif_writer(tmp, deep16.shape[:2], deep16.shape[2], _row_chunks(deep16), meta,
                                                     quality), overwrite, meta.motion)  # fmt: skip
    elif fmt == "JXL":
        arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
        size, c = arr.shape[:2], arr.shape[2]
        _atomic_write(path, lambda tmp: _jxl_writer(tmp, size, c, arr.dtype, _row_chunks(arr), meta, quality),
                      overwrite)  # fmt: skip
    elif fmt == "EXR":
        _atomic_write(path, lambda tmp: _exr_writer(tmp, pixels.shape[:2], pixels.shape[2], _row_chunks(pixels), meta,
                                                    alpha), overwrite)  # fmt: skip
    elif fmt == "HDR":
        _atomic_write(path, lambda tmp: _hdr_writer(tmp, pixels.shape[:2], _row_chunks(pixels), meta, alpha), overwrite)
    elif fmt == "PFM":
        _atomic_write(path, lambda tmp: _pfm_writer(tmp, pixels.shape[:2], pixels.shape[2], _row_chunks(pixels), meta,
                                                    alpha), overwrite)  # fmt: skip
    elif fmt in _PNM_FORMATS:
        notes.extend(_pnm_notes(fmt, pixels.shape[2]))
        _atomic_write(path, lambda tmp: _pnm_writer(tmp, fmt, pixels.shape[:2], pixels.shape[2], pixels.dtype,
                                                    _row_chunks(pixels)), overwrite)  # fmt: skip
    elif fmt == "JPEG2000" and pixels.dtype == np.uint16:
        _atomic_write(path, lambda tmp: _jp2_writer16(tmp, pixels, alpha), overwrite)
    elif fmt == "PAM":
        arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
        _atomic_write(path, lambda tmp: _pam_writer(tmp, arr.shape[:2], arr.shape[2], arr.dtype, _row_chunks(arr)),
                      overwrite)  # fmt: skip
    else:
        _atomic_write(path, lambda tmp: _pil_write(tmp, fmt, pixels, alpha, meta, quality), overwrite, meta.motion)
    return notes


#: Formats whose outputs hold a gray picture as RGB (HEVC's main profiles hold no gray; WebP none): a gray ICC
#: profile is made an RGB one of the same curve for them (:func:`classsr_cli.io.icc.rgb_of_gray`).
_GRAY_AS_RGB = ("HEIF", "WEBP")


def _fitting_icc(fmt: str, meta: Meta, colours: int, light: bool = False) -> tuple[Meta, list[str]]:
    """``meta`` (an output's) with the ICC profile a ``fmt`` output of ``colours`` channels should carry, and what
    is said of it: where its pixels are ``light`` written with sRGB's curve (an EXR's, a 32-bit PSD's, into a format
    of levels), the profile of that light with sRGB's curves (:func:`~classsr_cli.io.icc.with_srgb_curves`; a
    profile of lookup tables left out, said); a gray profile made an RGB one for a format that holds gray as RGB
    (:data:`_GRAY_AS_RGB`; a gray profile on RGB pixels is refused by libheif's and libpng's tools), left out where it
    has no gray curve; HP's sRGB profile, of which libpng warns (:func:`~classsr_cli.io.icc.libpng_warns`), left out
    of a HEIC or AVIF, whose colour code points then say sRGB (libheif's converters to PNG refused it); as it is
    otherwise. (A PNG output says it by its ``sRGB`` chunk: :func:`_png_writer`.)"""
    icc = meta.icc
    if icc is None:
        return meta, []
    said: list[str] = []
    if light and fmt not in _LINEAR_FORMATS:
        icc = with_srgb_curves(icc)
        if icc is None:
            return replace(meta, icc=None), [f"{fmt} output: the ICC profile of the source's light (not a matrix/TRC "
                                             "one) cannot be given sRGB's curves, which its levels are written with: "
                                             "left out"]
        meta = replace(meta, icc=icc)
    if colours == 1 and fmt in _GRAY_AS_RGB and is_gray(icc):
        rgb = rgb_of_gray(icc)
        return replace(meta, icc=rgb), said if rgb else [f"{fmt} output: its gray ICC profile has no gray curve to "
                                                         "make an RGB one of (the output holds gray as RGB): left out"]
    if fmt in ("HEIF", "AVIF") and libpng_warns(icc):
        return replace(meta, icc=None), said
    return meta, said
#: JPEG's, WebP's and AVIF's quality when none is asked for (``--quality``).
DEFAULT_QUALITY = 95
#: AVIF's encoder speed (0 slowest .. 10): the fastest. At quality 95, a 4096x3072 picture (``examples/lighthouse.jpg``
#: at the size of its ×4 upscale) took 0.24 s at 10, 0.42 s at 8, 2.0 s at Pillow's default 6 and 10.3 s at 4, for
#: files of 493, 497, 436 and 422 KB at PSNR 46.77, 46.75, 46.79 and 46.83 dB (``scripts/avif_speed.py``, this
#: project's 2-core CPU): 6 saves 12 % of the bytes for 8× the time, where the model itself takes about 0.3 s.
AVIF_SPEED = 10
#: HEIF's x265 preset: the fastest. At quality 95, the same 4096x3072 picture in 512-pixel tiles took 1.04 s at
#: ultrafast, 2.6-2.9 s at superfast to medium (x265's default) and 4.7 s at slow, for files of 1.32, 1.34-1.37 and
#: 1.29 MB at PSNR 57.16-57.22 dB (``scripts/avif_speed.py --format HEIF``, docs/cli.md).
HEIF_PRESET = "ultrafast"
#: HEIF's tile side: a HEIF is written as a grid of tiles of this size, as phones write them (HEVC holds one
#: picture of at most 142.6 million pixels, a ×4 upscale of a 12 MP photo is 195), larger where a grid of these
#: would pass the 1000 items libheif writes (:func:`_heif_tile`).
HEIF_TILE = 512
_HEIF_10 = "HEIF is written at 10 bits per channel here: 16-bit output rounded to 10"


def _heif_tile(width: int, height: int) -> int:
    """The tile side of a ``width`` x ``height`` HEIF: :data:`HEIF_TILE`, doubled until the grid has at most 900
    tiles (libheif writes at most 1000 items, the metadata's among them)."""
    tile = HEIF_TILE
    while -(-width // tile) * -(-height // tile) > 900:
        tile *= 2
    return tile


def _heif_writer(
    tmp: Path, pixels: np.ndarray, alpha: np.ndarray | None, meta: Meta, quality: int | None = None
) -> None:
    """A HEIF (HEVC, 4:2:0: the profile phones write and Apple's and Windows' decoders read) of 8 bits, or 10 from
    16-bit pixels (12 where they came from a 12-bit HEIF or AVIF: ``meta.depth``), in tiles of :func:`_heif_tile`, at
    ``quality`` (:data:`DEFAULT_QUALITY`) and x265's :data:`HEIF_PRESET`; gray written as RGB (HEVC's main profiles
    hold no gray), with the ICC profile, EXIF and XMP."""
    import pillow_heif

    arr = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels
    if alpha is not None:
        arr = np.concatenate([arr, alpha.astype(arr.dtype)[..., None]], axis=2)
    mode = ("RGBA" if alpha is not None else "RGB") + (";16" if arr.dtype == np.uint16 else "")
    height, width = arr.shape[:2]
    heif = pillow_heif.from_bytes(mode=mode, size=(width, height), data=np.ascontiguousarray(arr).tobytes())
    for view, (exif, xmp) in meta.stereo.each() if meta.stereo is not None else ():
        eye = view.astype(np.uint16) * 257 if arr.dtype == np.uint16 and view.dtype == np.uint8 else (
            to_8bit(view) if arr.dtype == np.uint8 and view.dtype == np.uint16 else view)  # the right eye (paired below)
        if alpha is not None:
            eye = np.concatenate([eye, np.full((*eye.shape[:2], 1), np.iinfo(eye.dtype).max, eye.dtype)], axis=2)
        added = heif.add_frombytes(mode=mode, size=(eye.shape[1], eye.shape[0]), data=np.ascontiguousarray(eye).tobytes())
        added.info.update({key: value for key, value in (("exif", exif), ("xmp", xmp)) if value})
    options: dict[str, Any] = {"quality": quality or DEFAULT_QUALITY, "tile_size": _heif_tile(width, height),
                               "enc_params": {"preset": HEIF_PRESET}}  # fmt: skip
    for key, value in (("icc_profile", meta.icc), ("exif", meta.exif), ("xmp", meta.xmp)):
        if value:
            options[key] = value
    if meta.nclx is not None:  # an HDR or wide-gamut source's colour description, as it came
        options["nclx_profile"] = {"color_primaries": meta.nclx.primaries, "full_range_flag": int(meta.nclx.full_range),
                                   "transfer_characteristics": meta.nclx.transfer,
                                   "matrix_coefficients": meta.nclx.matrix}  # fmt: skip
    twelve = arr.dtype == np.uint16 and meta.depth == 12  # a 12-bit source's depth kept (else 10 bits)
    saved, pillow_heif.options.SAVE_HDR_TO_12_BIT = pillow_heif.options.SAVE_HDR_TO_12_BIT, twelve
    try:
        heif.save(tmp, **options)
    except (RuntimeError, ValueError) as e:  # libheif's or x265's refusal, not the disk's: the output named
        target = _target(tmp)
        raise OutputError(f"{target}: cannot write ({_reason(e)}); write PNG or TIFF instead") from None
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = saved
    from classsr_cli.io.heifbox import with_properties

    light = list(meta.nclx.light) if meta.nclx is not None else []  # an HDR source's, which libheif does not write
    # Each edit of the boxes places the items from the file's start, as Apple's files do (exiv2 0.27 misread
    # libheif's base offsets of a tiled picture: it found no EXIF): one is made here unless a gain map or a stereo
    # pair is added below, which makes its own.
    if light or (meta.gain_map is None and meta.stereo is None):
        try:
            tmp.write_bytes(with_properties(tmp.read_bytes(), light))
        except (ValueError, IndexError, struct.error) as e:
            if light:
                raise OutputError(f"{_target(tmp)}: cannot add the HDR light levels ({_reason(e)})") from None
    _add_gain_map(tmp, "HEIF", meta, quality)
    if meta.stereo is not None:  # the two pictures a stereo pair, each eye with its camera properties
        from classsr_cli.io.heifbox import paired

        eyes = meta.stereo.properties
        try:
            tmp.write_bytes(paired(tmp.read_bytes(), *(eyes if len(eyes) == 2 else ())))
        except ValueError as e:
            raise OutputError(f"{_target(tmp)}: cannot pair the stereo eyes ({_reason(e)})") from None


def _add_gain_map(tmp: Path, fmt: str, meta: Meta, quality: int | None) -> None:
    """The HEIC or AVIF (``fmt``) ``tmp`` given ``meta``'s HDR gain map where it has one
    (:func:`~classsr_cli.io.gainmap.heif_with`), coded at ``quality`` and the encoder's speed as the picture was: an
    iPhone's as its auxiliary image in a HEIC with the EXIF that gives its headroom, else made Ultra HDR's and written
    as ISO 21496-1's, as any other one (a ``tmap`` item)."""
    gain = meta.gain_map
    if gain is None:
        return
    if gain.apple_headroom is not None and not (fmt == "HEIF" and meta.exif):
        gain = gainmap.ultra_hdr(gain)
    try:
        speed = {"speed": AVIF_SPEED} if fmt == "AVIF" else {"enc_params": {"preset": HEIF_PRESET}}
        tmp.write_bytes(gainmap.heif_with(tmp.read_bytes(), gain, fmt, quality=quality or DEFAULT_QUALITY, **speed))
    except (RuntimeError, ValueError, IndexError, struct.error) as e:
        raise OutputError(f"{_target(tmp)}: cannot add the HDR gain map ({_reason(e)})") from None


def _jxl_writer(
    tmp: Path, size: tuple[int, int], c: int, dtype: np.dtype, bands: Iterable[np.ndarray], meta: Meta,
    quality: int | None = None,
) -> None:
    """A JPEG XL of 8 or 16 bits (gray, gray+alpha, RGB or RGBA, as ``bands`` come) at ``quality``
    (:data:`DEFAULT_QUALITY`; 100: lossless): the rows into a stored PNG beside ``tmp`` with the ICC profile, encoded
    from it by the bundled ffmpeg's libjxl (a colour description without a profile, ``meta.nclx``, tagged as such),
    then the EXIF and XMP boxed with the codestream."""
    from classsr_cli.io import jxl

    target = _target(tmp)
    exe = _jxl_ffmpeg(target, "encoders")
    png = tmp.with_name(tmp.name + ".png")
    try:
        _png_writer(png, size, c, dtype, bands, Meta(icc=meta.icc and d50_white(meta.icc)), level=0)  # (libjxl's reading)
        nclx = meta.nclx if meta.nclx is not None and not meta.icc else None
        try:
            stream = jxl.encode(exe, png, quality or DEFAULT_QUALITY, primaries=nclx and nclx.primaries,
                                transfer=nclx and nclx.transfer)  # fmt: skip
        except ValueError as e:  # libjxl's refusal, not the disk's: the output named
            raise OutputError(f"{target}: cannot write ({_reason(e)}); write PNG or TIFF instead") from None
        tmp.write_bytes(jxl.container(stream, exif=meta.exif, xmp=meta.xmp))
    finally:
        png.unlink(missing_ok=True)


#: The RGB-to-YUV matrix of ffmpeg's scale filter for an H.273 matrix code (others: BT.601's, as libavif's default).
_SCALE_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020"}
#: What a deep AVIF without a colour description of its own is tagged: sRGB (BT.709 primaries, sRGB's curve,
#: BT.601's matrix, full range), as libavif tags an RGB picture.
_AVIF_SRGB = Nclx(1, 13, 6, True)
#: The note a 16-bit picture into AVIF gets (:func:`_deep_avif`).
_AVIF_10 = "AVIF is written at 10 bits per channel here: 16-bit output rounded to 10"


def _deep_avif(fmt: str, dtype: np.dtype[Any] | type, meta: Meta) -> bool:
    """Whether a ``fmt`` output is an AVIF of 10 or 12 bits (:func:`_avif_writer`: the bundled ffmpeg's libaom) rather than
    Pillow's of 8: 16-bit pixels, or an HDR or wide-gamut colour description (no ICC profile), where that ffmpeg has
    libaom."""
    from classsr_cli.io.sdr import needs
    from classsr_cli.io.video import ffmpeg_codecs

    nclx = meta.nclx
    wide = nclx is not None and not meta.icc and needs(nclx.primaries, nclx.transfer)
    if fmt != "AVIF" or not (np.dtype(dtype) == np.uint16 or wide):
        return False
    try:
        return "libaom-av1" in ffmpeg_codecs("encoders")
    except Exception:  # no ffmpeg: Pillow's writer
        return False


def _avif_writer(tmp: Path, size: tuple[int, int], c: int, bands: Iterable[np.ndarray], meta: Meta,
                 quality: int | None = None) -> None:  # fmt: skip
    """An AVIF of 10 bits, 12 where the picture came from a 12-bit HEIF or AVIF (``meta.depth``), 4:2:0 or gray (an
    alpha channel as its auxiliary image, gray, at the same depth, as libavif writes it) from 16-bit ``bands`` (gray,
    gray and alpha, RGB or RGBA: ``c``), by the bundled ffmpeg's libaom as libavif encodes a still picture
    (all-intra, its quantiser ``(100 - quality) x 63 / 100``), the rows piped to it as they come; tagged with
    ``meta.nclx`` (else sRGB, :data:`_AVIF_SRGB`) and given what ffmpeg's AVIF writer does not write
    (:mod:`classsr_cli.io.heifbox`): the ICC profile, an HDR picture's light levels, the EXIF and XMP."""
    from classsr_cli.io import heifbox
    from classsr_cli.io.video import ENCODE_FLAGS, ffmpeg_exe, ffmpeg_reason, squeeze_filters

    target = _target(tmp)
    height, width = size
    nclx = meta.nclx if meta.nclx is not None and not meta.icc else _AVIF_SRGB
    crf = round((100 - (quality or DEFAULT_QUALITY)) * 63 / 100)
    full = nclx.full_range
    bits = 12 if meta.depth == 12 else 10  # (AV1's professional profile at 12: libaom picks it, dav1d decodes it)
    gray = f"gray{bits}le"
    colour = gray if c in (1, 2) else f"yuv420p{bits}le"
    # as classsr video's writer converts: white brought to where swscale codes it, exact rounding
    matrix = _SCALE_MATRIX.get(nclx.matrix, "bt601")
    scale = "" if c in (1, 2) else ",".join([*squeeze_filters(colour, c == 4, full, matrix), (
        f"scale=out_color_matrix={matrix}:out_range={'full' if full else 'limited'}:flags={ENCODE_FLAGS},")])  # fmt: skip
    tags = (f"setparams=color_primaries={nclx.primaries}:color_trc={nclx.transfer}:colorspace={nclx.matrix}"
            f":range={'pc' if full else 'tv'}")  # (the frame's: ffmpeg's -color_* options lose to an input's own)
    if c in (2, 4):  # the alpha channel a second picture, which the AVIF writer makes the auxiliary image
        graph = ["-filter_complex", f"[0:v]split[c][a];[c]{scale}{tags}[cv];[a]alphaextract,setparams=range=pc[av]",
                 "-map", "[cv]", "-map", "[av]", "-pix_fmt:v:0", colour, "-pix_fmt:v:1", gray]  # fmt: skip
    else:
        graph = ["-vf", scale + tags, "-pix_fmt", colour]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", _RAW16[c],
           "-s", f"{width}x{height}", "-i", "-", *graph, "-frames:v", "1", "-c:v", "libaom-av1",
           "-usage", "allintra", "-cpu-used", "8", "-crf", str(crf), "-still-picture", "1", "-f", "avif", "-y", str(tmp)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError):  # (ffmpeg stopped: its error follows)
            for band in bands:
                proc.stdin.write(np.ascontiguousarray(band, "<u2").tobytes())
            proc.stdin.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read()
    if proc.wait():
        raise OutputError(f"{target}: cannot write ({ffmpeg_reason(err, 'libaom', 'ffmpeg wrote nothing')}); "
                          "write PNG or TIFF instead")
    data = tmp.read_bytes()
    try:
        if meta.icc:  # (a colour description beside it: ffmpeg's)
            data = heifbox.with_properties(data, [bmff.box(b"colr", b"prof" + meta.icc),
                                                  *heifbox.primary_properties(data, (b"colr",))])  # fmt: skip
        if meta.nclx is not None and meta.nclx.light:
            data = heifbox.with_properties(data, list(meta.nclx.light))
        data = heifbox.add_metadata(data, meta.exif, meta.xmp)
    except ValueError as e:
        raise OutputError(f"{target}: cannot add its metadata ({_reason(e)})") from None
    tmp.write_bytes(data)
    _add_gain_map(tmp, "AVIF", meta, quality)


def _jp2_writer16(tmp: Path, pixels: np.ndarray, alpha: np.ndarray | None, *, encoder: str | None = None) -> None:
    """A lossless JPEG 2000 of 16-bit ``pixels`` (and ``alpha``) by the bundled ffmpeg's OpenJPEG encoder, or its
    native one where it has none (both with the reversible 5-3 wavelet; Pillow's writes 16 bits for gray alone): a JP2
    file, or the bare codestream for a ``.j2k`` target. OpenJPEG's wrote a 4096x3072 picture in 2.6 s, the native
    one in 6.7 s, for files of 11.7 and 13.1 MB (``scripts/jp2_speed.py``, docs/cli.md). ``encoder``: ``libopenjpeg``
    or ``jpeg2000`` (the native one), to compare them."""
    from classsr_cli.errors import VideoError
    from classsr_cli.io.video import ffmpeg_codecs, ffmpeg_exe, ffmpeg_reason

    target = _target(tmp)
    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    height, width, c = arr.shape
    levels = min(6, min(height, width).bit_length())  # OpenJPEG's default 6, fewer where a side is under 32 pixels
    encoder = encoder or ("libopenjpeg" if "libopenjpeg" in ffmpeg_codecs("encoders") else "jpeg2000")
    try:
        exe = ffmpeg_exe()
    except VideoError as e:
        raise OutputError(f"{target}: cannot write 16-bit JPEG 2000 ({e}); write PNG or TIFF instead") from None
    got = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", _RAW16[c], "-s", f"{width}x{height}",
         "-i", "-", *(("-c:v", "libopenjpeg", "-numresolution", str(levels)) if encoder == "libopenjpeg"
                      else ("-c:v", "jpeg2000", "-pred", "dwt53")),
         "-format", "j2k" if target.suffix.lower() == ".j2k" else "jp2",
         "-f", "image2", "-update", "1", "-y", str(tmp)],
        input=np.ascontiguousarray(arr, "<u2").tobytes(), capture_output=True, check=False,
    )  # fmt: skip
    if got.returncode:
        raise OutputError(f"{target}: cannot write ({ffmpeg_reason(got.stderr.decode(errors='replace'), 'jpeg2000', 'ffmpeg wrote nothing')}); "
                          "write PNG or TIFF instead")


def _depth_notes(fmt: str, dtype: np.dtype[Any] | type, meta: Meta, deep: bool = False) -> list[str]:
    """What a ``fmt`` output (its carried ``meta``) does with pixels of ``dtype``: 16 bits rounded to 8 where it holds
    no more, to a HEIF's or a ``deep`` AVIF's (:func:`_deep_avif`) 10 unless they came from a HEIF or AVIF of 10 or
    12 bits, which it keeps."""
    if np.dtype(dtype) != np.uint16:
        return []
    if deep:
        return [_AVIF_10] if meta.depth not in (10, 12) else []
    if fmt not in _HIGH_BIT_FORMATS:
        return [f"{fmt} holds 8 bits per channel: 16-bit output rounded to 8 (a .png or .tif output keeps 16)"]
    return [_HEIF_10] if fmt == "HEIF" and meta.depth not in (10, 12) else []


def _profile_notes(fmt: str, icc: bytes | None) -> list[str]:
    """What a ``fmt`` output that holds no ICC profile (BMP, TGA, Netpbm, QOI, JPEG 2000 as written here) does with a
    picture's profile other than sRGB's: leaves it out, so that its colours show as sRGB's (a linear format's own note
    says so for those)."""
    from classsr_cli.io.icc import is_srgb

    if icc is None or fmt in _META_FORMATS or fmt in _LINEAR_FORMATS or is_srgb(icc):
        return []
    return [f"{fmt} output holds no colour profile: the picture's ICC profile is left out, so its colours show as "
            "sRGB's; a PNG, TIFF, JPEG, WebP, AVIF, HEIC or JPEG XL output keeps it"]


def _iptc_notes(fmt: str, meta: Meta) -> list[str]:
    """What a ``fmt`` output other than JPEG and TIFF does with an IPTC record: leaves it out, said where there is no
    XMP (editors write its fields into the XMP too, as IPTC Core, which is carried)."""
    if meta.iptc is None or fmt in ("JPEG", "TIFF") or meta.xmp:
        return []
    return [f"{fmt} holds no IPTC record: its caption, keywords and credits (IPTC-IIM) are left out; a JPEG or TIFF "
            "output keeps them"]


def _comment_notes(fmt: str, meta: Meta) -> list[str]:
    """What a ``fmt`` output other than PNG does with a picture's comment (a JPEG's or GIF's) and a PNG's text
    (``Title``, ``Author``, ...; not its ``Software``, which the record of the upscale replaces, nor ImageMagick's
    file times, ``date:create``, ...): leaves them out, but a comment in a JPEG output; said where the format holds
    other metadata (:data:`_META_FORMATS`: a BMP, TGA, ... holds none, EXIF and XMP neither, and is not said to)."""
    if fmt == "PNG" or fmt not in _META_FORMATS:
        return []
    keys = list(dict.fromkeys(t.keyword for t in meta.text
                              if t.keyword not in ("Software", "classsr") and not t.keyword.startswith("date:")
                              and not (t.keyword == _RAW_IPTC and meta.iptc)))  # fmt: skip (the IPTC record's own note)
    keys = [k for k in keys if not (fmt == "JPEG" and k == "Comment")]
    if keys:
        listed = ", ".join(keys[:-1]) + (" and " if len(keys) > 1 else "") + keys[-1]
        return [f"{fmt} output holds no PNG text: its {listed} {'are' if len(keys) > 1 else 'is'} left out; a PNG "
                f"output keeps {'them' if len(keys) > 1 else 'it'}"]  # fmt: skip
    if meta.comments and fmt != "JPEG":
        return [f"{fmt} output holds no comment: the picture's comment is left out; a JPEG or PNG output keeps it"]
    return []


def _xmp_notes(fmt: str, meta: Meta) -> list[str]:
    """What a JPEG output does with an XMP too long for its header that cannot be split into a StandardXMP and an
    ExtendedXMP (:func:`classsr_cli.io.xmp.split`): leaves it out."""
    from classsr_cli.io import xmp

    if fmt != "JPEG" or not meta.xmp or len(meta.xmp) <= xmp.STANDARD_LIMIT or xmp.split(meta.xmp) is not None:
        return []
    return [f"the XMP ({len(meta.xmp) / 1000:,.0f} kB) is too long for a JPEG's header and could not be split into a "
            "StandardXMP and an ExtendedXMP: left out; a PNG, TIFF, WebP, AVIF, HEIC or JPEG XL output keeps it"]


def _jpeg_xmp(options: dict[str, object], xmp: bytes | None) -> None:
    """Have Pillow write ``xmp`` into a JPEG (``options``): its own segment where it fits, else the StandardXMP's and
    the ExtendedXMP's (:func:`classsr_cli.io.xmp.jpeg_segments`) before the other extra segments (Pillow refused it:
    "XMP data is too long"); left out where it cannot be split (:func:`_xmp_notes`)."""
    from classsr_cli.io import xmp as xmp_io

    if not xmp:
        options["xmp"] = b""  # none: not the picture's own
    elif len(xmp) <= xmp_io.STANDARD_LIMIT:
        options["xmp"] = xmp
    else:
        options["xmp"] = b""
        if (segments := xmp_io.jpeg_segments(xmp)) is not None:
            options["extra"] = segments + options.get("extra", b"")  # type: ignore[operator]


def _gamma_notes(fmt: str, meta: Meta) -> list[str]:
    """What a ``fmt`` output other than PNG does with a PNG's gamma (``gAMA``, ``cHRM``), which browsers apply where
    there is no ICC profile: leaves it out, so that the picture shows as sRGB (said where that changes how it looks)."""
    gamma = meta.gamma
    if gamma is None or fmt == "PNG" or meta.icc is not None or gamma.srgb_like:
        return []
    return [f"{fmt} output holds no PNG gamma: the picture's gAMA (gamma 1/{100_000 / gamma.gamma:.3g})"
            f"{' and cHRM' if gamma.chroma else ''} is left out, so it shows as sRGB; a PNG output keeps it"]


def _linear_notes(fmt: str, meta: Meta) -> list[str]:
    """What a ``fmt`` output does with a scene-linear source's light outside 0-1 (an EXR keeps it; the others clip
    it), and what an EXR output does with a colour profile (EXR holds none: its light is sRGB's primaries')."""
    linear = meta.linear
    if fmt in _LINEAR_FORMATS:
        if linear is None and light_decoder(meta) is not None:
            assert meta.nclx is not None
            hdr = _HDR_TRANSFERS.get(meta.nclx.transfer)
            what = f"the HDR ({hdr}) picture's light" if hdr else "the picture's light"
            return [f"{fmt} output: {what} written as it shows, in BT.709's primaries (1.0 = 100 cd/m², SDR's white)"]
        described = meta.icc is not None or (meta.nclx is not None and not meta.nclx.srgb)
        return [f"{fmt} output: colours written as linear light of sRGB's primaries; the ICC profile or colour "
                "description is not applied"] if described and linear is None else []  # fmt: skip
    if linear is None or not linear.share:
        return []
    return [f"{fmt} output: the source's light outside 0-1 ({100 * linear.share:.1f} % of its pixels, highlights above "
            "1.0) is clipped, and its linear light written with sRGB's curve; an EXR output (-f exr) keeps it"]


def _target(tmp: Path) -> Path:
    """The output a temporary file of :func:`_atomic_write` stands for (named in the errors its writer raises)."""
    return tmp.with_name(tmp.name.removeprefix(".").rsplit(".", 2)[0])


def _primaries_notes(kind: str, linear: Linear) -> list[str]:
    """What becomes of a ``kind`` picture's light in primaries other than sRGB's (:func:`primaries_of`), said."""
    if primaries_of(linear) is not None:
        return [f"{kind} with primaries other than sRGB's: upscaled as stored, kept in a like output, converted to "
                "sRGB's primaries for other formats"]
    if (stated := _stated_primaries(linear)) is not None and not _usable_primaries(stated):
        return [f"{kind} whose primaries ({' '.join(f'{v:g}' for v in stated)}) describe no colours: read as sRGB's"]
    return []


def primaries_of(linear: Linear | None) -> tuple[float, ...] | None:
    """The primaries and white (CIE xy: red, green, blue, white) an EXR's (its ``chromaticities``) or a Radiance
    picture's (its ``PRIMARIES=`` line) light is in, where they are not sRGB's; ``None`` for sRGB's, unsaid, or said
    as no colours are (a white of y 0, primaries on a line: KDE's ``PRIMARIES=0 0 0 0 0 0 0 0``)."""
    chroma = _stated_primaries(linear)
    if chroma is None or not _usable_primaries(chroma) or np.allclose(chroma, _REC709, atol=2e-3):
        return None
    return chroma


def _stated_primaries(linear: Linear | None) -> tuple[float, ...] | None:
    """The primaries and white :func:`primaries_of` takes, as the file states them."""
    from classsr_cli.io import exr

    if linear is None:
        return None
    chroma = exr.chromaticities(linear.attributes)
    for line in linear.lines:
        if line.startswith("PRIMARIES="):
            with contextlib.suppress(ValueError):
                numbers = tuple(float(v) for v in line.split("=", 1)[1].split())
                chroma = numbers if len(numbers) == 8 else chroma
    return chroma


def _usable_primaries(chroma: tuple[float, ...]) -> bool:
    """Whether primaries and a white (CIE xy) describe colours: finite, a white of y above 0, three primaries not on
    one line."""
    xy = np.asarray(chroma, np.float64).reshape(4, 2)
    if not np.all(np.isfinite(xy)) or xy[3, 1] <= 0:
        return False
    m = np.column_stack([xy[:3, 0], xy[:3, 1], 1 - xy[:3].sum(axis=1)])
    return abs(float(np.linalg.det(m))) > 1e-6


def _in_srgb(pixels: np.ndarray, linear: Linear | None) -> np.ndarray:
    """``pixels`` of an EXR's or Radiance picture's light shown in sRGB's curve, with the colours of its primaries
    other than sRGB's (:func:`primaries_of`: ACEScg's, BT.2020's) brought into sRGB's, as a format without them shows
    its colours."""
    chroma = primaries_of(linear)
    if chroma is None or pixels.shape[2] != 3:
        return pixels
    from classsr_cli.io.sdr import to_srgb_primaries

    return to_srgb_primaries(pixels, chroma)


def light_decoder(meta: Meta) -> Callable[[np.ndarray], np.ndarray] | None:
    """How a linear output (EXR, Radiance, PFM) decodes an HDR or wide-gamut picture's levels to light
    (:func:`classsr_cli.io.sdr.linear`: 1.0 = 100 cd/m², BT.709's primaries), from its colour description; ``None``
    for sRGB's curve (an sRGB picture, one with an ICC profile, a linear source's levels)."""
    from classsr_cli.io import sdr

    nclx = meta.nclx  # (a linear source, an EXR's or Radiance picture's, has none)
    if nclx is None or meta.icc or not sdr.needs(nclx.primaries, nclx.transfer):
        return None
    return functools.partial(sdr.linear, primaries=nclx.primaries, transfer=nclx.transfer)


def _exr_writer(
    tmp: Path, size: tuple[int, int], c: int, bands: Iterable[np.ndarray], meta: Meta, alpha: np.ndarray | None = None
) -> None:
    """An OpenEXR (:func:`classsr_cli.io.exr.write`) of the sRGB-encoded rows ``bands`` (8 or 16 bits; gray as Y) and
    ``alpha`` in linear light, with the source EXR's light outside 0-1 (``meta.linear``) added back, in its pixel type
    (half floats unless its were floats), with its attributes and the record of the upscale; written as the bands
    arrive."""
    from classsr_cli.io import exr

    height, width = size
    half = meta.linear is None or meta.linear.half
    with tmp.open("wb") as f:
        exr.write(f, exr.linear_bands(bands, alpha, meta.linear, half, light_decoder(meta)), width=width, height=height,
                  channels=c + (alpha is not None), half=half, made_by=meta.made_by, workers=_TIFF_WORKERS,
                  attributes=meta.linear.attributes if meta.linear else None)  # fmt: skip


def _hdr_writer(
    tmp: Path, size: tuple[int, int], bands: Iterable[np.ndarray], meta: Meta, alpha: np.ndarray | None = None
) -> None:
    """A Radiance HDR (:func:`classsr_cli.io.radiance.encode`, RGBE by the bundled ffmpeg) of the sRGB-encoded rows
    ``bands`` in linear light, the source's light outside 0-1 (``meta.linear``) added back, premultiplied by ``alpha``
    where there is one (RGBE holds none), under its header's lines, classsr's version and the record of the upscale
    (``CLASSSR=``); gray written as RGB."""
    from classsr_cli.io import exr, radiance

    target = _target(tmp)
    exe = _codec_ffmpeg(target, "hdr", "Radiance HDR", "encoders")
    height, width = size
    planes = np.empty((3, height, width), np.float32)  # ffmpeg's G, B, R
    at = 0
    for rows in exr.linear_bands(bands, alpha, meta.linear, False, light_decoder(meta)):  # colour premultiplied, then alpha
        for plane, c in enumerate((1, 2, 0) if rows.shape[2] in (3, 4) else (0, 0, 0)):
            planes[plane, at : at + rows.shape[0]] = rows[..., c]
        at += rows.shape[0]
    carried = tuple(ln for ln in (meta.linear.lines if meta.linear else ()) if not ln.startswith("CLASSSR="))
    lines = (*carried, *((f"CLASSSR={meta.made_by}",) if meta.made_by else ()))  # this run's record, not an older one
    try:
        data = radiance.encode(exe, planes, lines, f"classsr {__version__}")
    except ValueError as e:
        raise OutputError(f"{target}: cannot write ({_reason(e)}); write EXR or PNG instead") from None
    tmp.write_bytes(data)


def _pfm_writer(tmp: Path, size: tuple[int, int], channels: int, bands: Iterable[np.ndarray], meta: Meta,
                alpha: np.ndarray | None = None) -> None:
    """A PFM (:func:`classsr_cli.io.pnm.write_pfm`) of the sRGB-encoded rows ``bands`` in linear light, the source's
    light outside 0-1 (``meta.linear``) added back, premultiplied by ``alpha`` where there is one (PFM holds none)."""
    from classsr_cli.io import exr

    light = np.empty((*size, channels), np.float32)  # a PFM is stored from the bottom row up: whole, then written
    at = 0
    for rows in exr.linear_bands(bands, alpha, meta.linear, False, light_decoder(meta)):  # colour premultiplied, then alpha
        light[at : at + rows.shape[0]] = rows[..., :channels]
        at += rows.shape[0]
    with tmp.open("wb") as f:
        pnm.write_pfm(f, light)


def _keeps_gain(fmt: str, gain: GainMap | None) -> bool:
    """Whether a ``fmt`` output keeps the HDR gain map ``gain``: a JPEG any (an iPhone's made Ultra HDR's); a HEIC or
    AVIF one with ISO 21496-1 metadata, or whose Ultra HDR XMP or iPhone headroom gives it
    (:func:`~classsr_cli.io.gainmap.tone_map_data`; a HEIC an iPhone's as it came where the EXIF whose maker note
    gives its headroom goes with it)."""
    if gain is None or fmt not in ("JPEG", "HEIF", "AVIF"):
        return False
    return fmt == "JPEG" or gainmap.tone_map_data(gain) is not None


def _gain_notes(fmt: str, gain: GainMap | None) -> list[str]:
    """What a ``fmt`` output does with an HDR gain map (:func:`_keeps_gain`), where it does not keep it."""
    if gain is None or _keeps_gain(fmt, gain):
        return []
    kind = "an iPhone's" if gain.apple_headroom is not None else "Ultra HDR" if gain.xmp else "ISO 21496-1"
    keepers = "a JPEG, HEIC or AVIF output keeps it" if gainmap.tone_map_data(gain) else "only a JPEG output keeps it"
    return [f"{fmt} output: the HDR gain map ({kind}) is not kept, {keepers}: the picture shows as SDR"]


def to_8bit(a: np.ndarray) -> np.ndarray:
    """uint16 levels -> the nearest uint8 levels."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _over_white(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    top = float(np.iinfo(pixels.dtype).max)
    a = alpha.astype(np.float32)[..., None] / top
    out = pixels.astype(np.float32) * a + top * (1.0 - a)
    return np.clip(np.rint(out), 0, top).astype(pixels.dtype)


def _exif_for_output(exif: bytes | None, width: int, height: int) -> bytes | None:
    """The carried EXIF with PixelXDimension/PixelYDimension, and ImageWidth/ImageLength where it has them (ffmpeg
    adds them to a JPEG XL's), set to the output size (its tags' types and maker note's offsets kept:
    :func:`classsr_cli.io.exif.relaid`)."""
    if not exif:
        return None
    try:
        ex = Image.Exif()
        ex.load(exif)
        if 0x0100 in ex or 0x0101 in ex:
            ex[0x0100], ex[0x0101] = width, height
        ifd = ex.get_ifd(EXIF_IFD)
        if 0xA002 in ifd or 0xA003 in ifd:
            ifd[0xA002], ifd[0xA003] = width, height
        return relaid(exif, ex.tobytes())
    except Exception:
        return exif


#: The most bytes of EXIF (``Exif\0\0`` and its TIFF structure) a JPEG's APP1 segment holds, as Pillow writes it.
_JPEG_EXIF_LIMIT = 65533
#: What a JPEG's EXIF leaves out, in turn, where it is too long for the header (Exif IFD tags: a camera's own data).
_EXIF_BULK = {0x927C: "maker note", 0x9286: "user comment"}


def _for_format(fmt: str, exif: bytes | None) -> bytes | None:
    """The EXIF a ``fmt`` output holds: a JPEG's within its header (:func:`_jpeg_exif`), the others' whole."""
    return _jpeg_exif(exif)[0] if fmt == "JPEG" else exif


def _jpeg_exif(exif: bytes | None) -> tuple[bytes | None, list[str]]:
    """``exif`` as a JPEG's header holds it (Pillow refused a longer one: "EXIF data is too long"), and what is left
    out for that: its maker note, then its user comment (:data:`_EXIF_BULK`), else all of it (``["EXIF"]``)."""
    if exif is None or len(exif) <= _JPEG_EXIF_LIMIT:
        return exif, []
    dropped: list[str] = []
    try:
        ex = Image.Exif()
        ex.load(exif)
        ifd = ex.get_ifd(EXIF_IFD)
        for tag, name in _EXIF_BULK.items():
            if tag in ifd:
                del ifd[tag]
                dropped.append(name)
                if len(out := ex.tobytes()) <= _JPEG_EXIF_LIMIT:
                    return out, dropped
    except Exception:  # malformed: left out whole
        pass
    return None, ["EXIF"]


def _exif_notes(fmt: str, meta: Meta) -> list[str]:
    """What a JPEG output leaves out of an EXIF too long for its header (:func:`_jpeg_exif`)."""
    if fmt != "JPEG" or meta.exif is None or len(meta.exif) <= _JPEG_EXIF_LIMIT:
        return []
    dropped = _jpeg_exif(meta.exif)[1]
    what = "left out" if dropped == ["EXIF"] else f"its {' and '.join(dropped)} left out"
    return [f"the EXIF ({len(meta.exif) / 1000:,.0f} kB) is too long for a JPEG's header (65.5 kB): {what}; a PNG, "
            "TIFF, WebP, AVIF, HEIC or JPEG XL output keeps it whole"]


#: A panorama's sizes in pixels (Google's Photo Sphere XMP, ``GPano``), across and down, which viewers (Google
#: Photos, Facebook, Street View) map the picture onto the sphere by.
_GPANO_ACROSS = ("CroppedAreaImageWidthPixels", "FullPanoWidthPixels", "CroppedAreaLeftPixels",
                 "LargestValidInteriorRectLeft", "LargestValidInteriorRectWidth")  # fmt: skip
_GPANO_DOWN = ("CroppedAreaImageHeightPixels", "FullPanoHeightPixels", "CroppedAreaTopPixels",
               "LargestValidInteriorRectTop", "LargestValidInteriorRectHeight")  # fmt: skip


def _xmp_value(xmp: bytes, name: str) -> str | None:
    """The value of the XMP property ``name`` (prefixed), as an attribute or an element; ``None`` where absent."""
    key = re.escape(name.encode())
    found = (re.search(rb"[\s<]" + key + rb'\s*=\s*["\']([^"\']*)["\']', xmp)
             or re.search(rb"<" + key + rb"(?:\s[^>]*)?>([^<]*)</" + key + rb">", xmp))  # fmt: skip
    return found.group(1).decode("utf-8", "replace").strip() if found else None


def _panorama(xmp: bytes, width: int, height: int) -> dict[str, int]:
    """A panorama's ``GPano`` sizes for a ``width`` x ``height`` output: each scaled as the picture, which is its
    cropped area (else its full panorama, where the cropped area is not given); none where it has none."""
    def number(name: str) -> float | None:
        value = _xmp_value(xmp, "GPano:" + name)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    old_w = number("CroppedAreaImageWidthPixels") or number("FullPanoWidthPixels")
    old_h = number("CroppedAreaImageHeightPixels") or number("FullPanoHeightPixels")
    if not old_w or not old_h:
        return {}
    out = {}
    for names, factor in ((_GPANO_ACROSS, width / old_w), (_GPANO_DOWN, height / old_h)):
        for name in names:
            if (value := number(name)) is not None:
                out["GPano:" + name] = round(value * factor)
    return out


#: The Photo Sphere properties a picture stripped of its metadata keeps (how it is shown, not where or by whom it was
#: taken: not its compass heading or capture times).
_GPANO_SHOWN = ("ProjectionType", "UsePanoramaViewer", *_GPANO_ACROSS, *_GPANO_DOWN, "InitialViewHeadingDegrees",
                "InitialViewPitchDegrees", "InitialViewRollDegrees", "InitialHorizontalFOVDegrees")  # fmt: skip


def panorama_only(xmp: bytes | None) -> bytes | None:
    """An XMP packet of ``xmp``'s Photo Sphere properties that say how the picture is shown (:data:`_GPANO_SHOWN`),
    for a picture stripped of its metadata (a 360° photo stays one); ``None`` where it has no projection."""
    from xml.sax.saxutils import quoteattr

    if not xmp or _xmp_value(xmp, "GPano:ProjectionType") is None:
        return None
    kept = [(name, value) for name in _GPANO_SHOWN if (value := _xmp_value(xmp, "GPano:" + name)) is not None]
    attributes = "".join(f" GPano:{name}={quoteattr(value)}" for name, value in kept)
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/"'
            f"{attributes}/></rdf:RDF></x:xmpmeta>").encode()


def full_circle(xmp: bytes | None) -> bool:
    """Whether ``xmp`` says its picture is a panorama all the way round (``GPano``: equirectangular, its cropped area
    as wide as the full panorama, or none given), so that its left and right edges meet."""
    if not xmp or (_xmp_value(xmp, "GPano:ProjectionType") or "").lower() != "equirectangular":
        return False
    full, cropped = _xmp_value(xmp, "GPano:FullPanoWidthPixels"), _xmp_value(xmp, "GPano:CroppedAreaImageWidthPixels")
    try:
        return full is None or cropped is None or float(full) == float(cropped)
    except ValueError:
        return False


def _xmp_for_output(xmp: bytes | None, width: int, height: int) -> bytes | None:
    """The carried XMP with its orientation set to 1 (the pixels are upright now, as the EXIF tag is dropped) and
    its pixel dimensions (``exif:PixelXDimension``, ``tiff:ImageWidth``, ...) set to the output size, a panorama's
    (``GPano``) scaled with it (:func:`_panorama`); attribute and element forms alike. A JPEG's ExtendedXMP is read joined to its StandardXMP (:func:`classsr_cli.io.xmp.joined`);
    an ``xmpNote:HasExtendedXMP`` left, which names one that was not found, is taken out."""
    if not xmp:
        return None
    from classsr_cli.io.xmp import without_extended

    xmp = without_extended(xmp)
    values: dict[str, int] = {"tiff:Orientation": 1, "exif:PixelXDimension": width, "exif:PixelYDimension": height,
                              "tiff:ImageWidth": width, "tiff:ImageLength": height}  # fmt: skip
    values.update(_panorama(xmp, width, height))
    for name, value in values.items():
        key = re.escape(name.encode())
        xmp = re.sub(rb"(" + key + rb'\s*=\s*["\'])[^"\']*(["\'])', rb"\g<1>" + str(value).encode() + rb"\g<2>", xmp)
        xmp = re.sub(rb"(<" + key + rb"(?:\s[^>]*)?>)[^<]*(</" + key + rb">)", rb"\g<1>" + str(value).encode() + rb"\g<2>",
                     xmp)  # fmt: skip
    return xmp


def _pil_image(pixels: np.ndarray, alpha: np.ndarray | None, fmt: str) -> Image.Image:
    """8-bit ``pixels`` (``(H, W, 1)`` gray or RGB) and ``alpha`` as the Pillow picture a ``fmt`` file is saved from."""
    arr = pixels[..., 0] if pixels.shape[2] == 1 else pixels
    im = Image.fromarray(np.ascontiguousarray(arr), "L" if arr.ndim == 2 else "RGB")
    if alpha is not None or fmt == "QOI":
        im = im.convert("RGB")  # WebP holds no gray + alpha, QOI no gray
    if alpha is not None:
        im.putalpha(Image.fromarray(alpha, "L"))
    return im


def _pil_write(
    tmp: Path, fmt: str, pixels: np.ndarray, alpha: np.ndarray | None, meta: Meta, quality: int | None = None
) -> None:
    im = _pil_image(pixels, alpha, fmt)
    options: dict[str, object] = {}
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.exif:
        options["exif"] = meta.exif
    if meta.xmp:
        options["xmp"] = meta.xmp
    if meta.dpi:
        options["dpi"] = meta.dpi
    if fmt == "JPEG":
        options.update(quality=quality or DEFAULT_QUALITY, subsampling=0)
        if meta.made_by:
            options["comment"] = f"classsr {meta.made_by}"
        if meta.iptc:
            options["extra"] = _app13(meta.iptc)
        for comment in meta.comments:  # the source's, before this run's record (Pillow writes one COM); a PNG's
            for part in _segments(comment, 65533):  # Comment longer than one segment holds: in several
                options["extra"] = options.get("extra", b"") + b"\xff\xfe" + struct.pack(">H", 2 + len(part)) + part  # type: ignore[operator]
        if meta.gain_map is None:
            _jpeg_xmp(options, options.pop("xmp", None))  # type: ignore[arg-type]
        else:
            _gain_map_jpeg(tmp, im, options, meta.gain_map)
            if meta.aspect:
                _jfif_aspect(tmp, *meta.aspect)
            return
    elif fmt == "WEBP" and meta.lossless and quality is None:
        options.update(lossless=True, quality=100, method=4)  # as its source: every pixel kept
    elif fmt == "WEBP":
        options.update(quality=quality or DEFAULT_QUALITY, method=4)
    elif fmt == "AVIF":
        options.update(quality=quality or DEFAULT_QUALITY, speed=AVIF_SPEED)
    elif fmt == "TGA" and not meta.uncompressed:  # run-length coded, as ffmpeg's and GIMP's TGA, where that is smaller
        options = {"compression": "tga_rle"}
    elif fmt == "JPEG2000":  # lossless (OpenJPEG's reversible 5-3 wavelet, Pillow's default); .j2k: the codestream
        options = {"no_jp2": _target(tmp).suffix.lower() == ".j2k"}
    elif fmt == "DDS":  # a cube map's or an array's other faces too
        faces = [_pil_image(px, a, fmt) for px, a in meta.texture.faces] if meta.texture else []
        dds.write(tmp, im, meta.texture, faces)
        return
    im.save(tmp, format=fmt, **options)
    if fmt == "AVIF":
        _add_gain_map(tmp, fmt, meta, quality)
    if "compression" in options and tmp.stat().st_size > 18 + im.width * im.height * len(im.getbands()) + 26:
        im.save(tmp, format=fmt)  # run-length coding grew a TGA (grain): stored plain (header, pixels, 2.0 footer)
    if fmt == "JPEG" and meta.stereo is not None:  # a stereo MPO: every view after the first, with its EXIF, indexed
        views = []
        for view, (exif, xmp) in meta.stereo.each():
            coded = io.BytesIO()
            eight = to_8bit(view) if view.dtype == np.uint16 else view
            Image.fromarray(eight).save(coded, format="JPEG", quality=options["quality"], subsampling=0,
                                        exif=exif or b"", xmp=xmp or b"")  # fmt: skip
            views.append(coded.getvalue())
        tmp.write_bytes(gainmap.jpeg_with(tmp.read_bytes(), *views, types=gainmap.STEREO_TYPES,
                                          attributes=meta.stereo.attributes))  # fmt: skip
    if fmt == "JPEG" and meta.aspect:
        _jfif_aspect(tmp, *meta.aspect)


def _view_notes(fmt: str, source: Meta, out: Meta) -> list[str]:
    """What a ``fmt`` output (``out``, :meth:`Meta.for_output`) does with a stereo pair's other views, where it does not
    keep them all."""
    views = len(source.stereo.views) + 1 if source.stereo is not None else 1
    kept = len(out.stereo.views) + 1 if out.stereo is not None else 1
    if kept == views:
        return []
    if kept > 1:  # a HEIC's pair, of a multi-view MPO
        return [f"{fmt} output: the first two of the MPO's {views} views are kept, as a stereo pair; a .mpo or .jpg "
                "output keeps them all"]
    return [f"{fmt} output: only the first of the stereo pair's {views} views (its left eye) is kept, a .mpo, .jpg or "
            ".heic output keeps them all"]


def _texture_notes(fmt: str, texture: Texture | None) -> list[str]:
    """What a ``fmt`` output does not keep of a DDS source's ``texture`` (:func:`classsr_cli.io.dds.notes`; another
    format, its other faces)."""
    if fmt == "DDS":
        return dds.notes(texture)
    if texture is not None and texture.faces:
        part = "faces" if texture.layout == "cube map" else "textures"
        return [f"DDS {texture.layout}: {fmt} holds one picture, its first face; its other {len(texture.faces)} "
                f"{part} are written only to a .dds output"]
    return []


def _pam_writer(tmp: Path, size: tuple[int, int], depth: int, dtype: np.dtype, bands: Iterable[np.ndarray]) -> None:
    with tmp.open("wb") as f:
        pnm.write_pam(f, size, depth, dtype, bands)


def _pnm_notes(fmt: str, channels: int) -> list[str]:
    return ["PGM holds gray: the colours written as their luma (ITU-R BT.601, as Pillow and Netpbm convert)"] \
        if fmt == "PGM" and channels == 3 else []


def _pnm_writer(tmp: Path, fmt: str, size: tuple[int, int], channels: int, dtype: np.dtype,
                bands: Iterable[np.ndarray]) -> None:
    """A raw PPM or PGM (:func:`classsr_cli.io.pnm.write`) of ``bands``: a PPM (``fmt``) of a gray picture in three
    equal channels, a PGM of a colour one in its luma, a PNM as the picture is."""
    out = 3 if fmt == "PPM" else 1 if fmt == "PGM" else channels

    def converted() -> Iterator[np.ndarray]:
        for band in bands:
            if channels == out:
                yield band
            elif out == 3:
                yield np.repeat(band, 3, axis=2)
            else:  # BT.601 luma, as Pillow's convert("L")
                luma = band.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                yield np.rint(luma)[..., None].astype(band.dtype)

    with tmp.open("wb") as f:
        pnm.write(f, size, out, dtype, converted())


def _app2(payload: bytes) -> bytes:
    return b"\xff\xe2" + struct.pack(">H", 2 + len(payload)) + payload


def _gain_map_jpeg(tmp: Path, im: Image.Image, options: dict[str, object], gain: GainMap) -> None:
    """``im`` as the SDR picture of an HDR JPEG (Ultra HDR) with ``gain``: the gain map written as its own JPEG with
    its XMP and ISO 21496-1 segment, the picture with its XMP's container directory sized to it and its own ISO
    segment, the two joined by an MPF index (:func:`classsr_cli.io.gainmap.jpeg_with`)."""
    xmp = options.pop("xmp", None)
    if gain.apple_headroom is not None:  # an iPhone's: made Ultra HDR's, the picture's XMP describing it
        gain, xmp = gainmap.ultra_hdr(gain), gainmap.with_directory(xmp)  # type: ignore[arg-type]
    elif gain.xmp is None and (gain := gainmap.described(gain)).xmp:  # an ISO one's XMP too, as libultrahdr writes
        xmp = gainmap.with_directory(xmp)  # type: ignore[arg-type]
    arr = gain.pixels[..., 0] if gain.pixels.shape[2] == 1 else gain.pixels
    second = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(second, format="JPEG", quality=options["quality"],
                                                    xmp=gain.xmp or b"", extra=b"".join(map(_app2, gain.iso)))  # fmt: skip
    first = io.BytesIO()
    xmp = gainmap.primary_xmp(xmp, second.tell(),  # type: ignore[arg-type]
                              ultra_hdr=bool(gain.xmp and b"hdrgm:" in gain.xmp))  # fmt: skip
    options["extra"] = options.get("extra", b"") + b"".join(map(_app2, gain.primary_iso))  # type: ignore[operator]
    _jpeg_xmp(options, xmp)
    im.save(first, format="JPEG", **options)
    tmp.write_bytes(gainmap.jpeg_with(first.getvalue(), second.getvalue()))


def _tiff_add_exif(path: Path, exif: bytes) -> None:
    """Add ``exif`` to the single-page classic TIFF at ``path``, whatever wrote it (Pillow, libtiff, tifffile).

    The first IFD is written again at the end of the file with the EXIF's descriptive base tags (make, model,
    date, ...; :data:`_TIFF_EXIF_TAGS`, but the resolution, which is the picture's) and its Exif and GPS sub-IFDs
    added, and the header pointed at it; the pixel data stays where it is and the old IFD is left unused. BigTIFF
    (outputs above 4 GB) is left as it is.
    """
    from PIL import TiffImagePlugin

    ex = Image.Exif()
    ex.load(exif)
    with path.open("r+b") as f:
        head = f.read(8)
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            return
        ifd = TiffImagePlugin.ImageFileDirectory_v2(head)
        f.seek(ifd.next)
        ifd.load(f)
        for tag in list(ifd):
            ifd[tag] = ifd[tag]  # decode every loaded tag: only decoded ones are written again
        for tag, value in ex.items():
            if tag in _RESOLUTION_TAGS or tag == _ORIENTATION or tag not in _TIFF_EXIF_TAGS:
                continue  # (the print resolution is the picture's, checked, as the writer wrote it: :attr:`Meta.dpi`)
            if tag in (EXIF_IFD, GPS_IFD):
                value = _sub_ifd(ex, tag)
                if tag == EXIF_IFD:
                    value = _tiff_exif_ifd(value)
                if not value:
                    continue
            ifd[tag] = value
        end = f.seek(0, os.SEEK_END)
        if end % 2:
            f.write(b"\x00")  # IFDs start on a word boundary
            end += 1
        order = "<" if head[:2] == b"II" else ">"
        block = relaid_in_ifd(exif, ifd.tobytes(end), end, order)  # (a camera's maker note still read, types kept)
        f.write(_keep_strip_offsets(block, end, order, ifd.get(273)))
        f.seek(4)
        f.write(struct.pack(order + "L", end))


#: Exif tags the Exif standard allows only in a compressed (JPEG) file's Exif IFD: ComponentsConfiguration,
#: CompressedBitsPerPixel, PixelXDimension, PixelYDimension (exiftool -validate: "not allowed in TIFF").
_JPEG_ONLY_EXIF = (0x9101, 0x9102, 0xA002, 0xA003)
#: The Interoperability IFD's InteropIndex (``R98``, DCF's), which the standard allows in a JPEG's only.
_INTEROP_INDEX = 0x0001


def _tiff_exif_ifd(ifd: dict[int, Any]) -> dict[int, Any]:
    """An Exif IFD (:func:`_sub_ifd`'s) as a TIFF's holds it: without :data:`_JPEG_ONLY_EXIF`, nor the Interoperability
    IFD's InteropIndex (the IFD left out where nothing else is in it)."""
    out = {tag: value for tag, value in ifd.items() if tag not in _JPEG_ONLY_EXIF}
    interop = out.get(INTEROP_IFD)
    if isinstance(interop, dict):
        interop = {tag: value for tag, value in interop.items() if tag != _INTEROP_INDEX}
        if interop:
            out[INTEROP_IFD] = interop
        else:
            del out[INTEROP_IFD]
    return out


def _keep_strip_offsets(block: bytes, at: int, order: str, strips: tuple[int, ...] | None) -> bytes:
    """Pillow's IFD writer moves StripOffsets past the IFD (where Pillow puts pixels): put the real ones back."""
    if not strips:
        return block
    out = bytearray(block)
    (n,) = struct.unpack_from(order + "H", out, 0)
    for entry in range(2, 2 + 12 * n, 12):
        tag, typ, count = struct.unpack_from(order + "HHL", out, entry)
        if tag != 273:
            continue
        data = struct.pack(order + ("H" if typ == 3 else "L") * count, *strips)
        pos = entry + 8 if len(data) <= 4 else struct.unpack_from(order + "L", out, entry + 8)[0] - at
        out[pos : pos + len(data)] = data
    return bytes(out)


def _png_itxt(t: PngText) -> bytes:
    """An uncompressed international text chunk (UTF-8) with its language tag and translated keyword; a keyword is
    1-79 Latin-1 characters, a language tag letters, digits and hyphens."""
    key = t.keyword.encode("latin-1", "replace").replace(b"\x00", b"")[:79] or b"Comment"
    lang = re.sub(r"[^A-Za-z0-9-]", "", t.language).encode("ascii")
    tkey = t.translated.replace("\x00", "").encode("utf-8")
    return _png_chunk(b"iTXt", key + b"\x00\x00\x00" + lang + b"\x00" + tkey + b"\x00" + t.text.encode("utf-8"))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _tiff_writer(tmp: Path, pixels: np.ndarray, alpha: np.ndarray | None, meta: Meta) -> None:
    """Every TIFF classsr writes (8 or 16-bit; gray, gray+alpha, RGB or RGBA), by tifffile: deflate at
    :data:`PNG_LEVEL` with the horizontal predictor (each sample minus its left neighbour's, as PNG's Sub filter),
    in strips of 64 rows compressed on up to :data:`_TIFF_WORKERS` threads; then the EXIF
    (:func:`_tiff_add_exif`). ``pixels`` may be a memory map (:func:`_mapped_writer`): strips are read from it."""
    import tifffile

    arr = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    gray = pixels.shape[2] == 1
    if gray and alpha is None:
        arr = arr[..., 0]
    tifffile.imwrite(
        tmp,
        arr,
        photometric="minisblack" if gray else "rgb",
        planarconfig="contig" if arr.ndim == 3 else None,
        extrasamples=("unassalpha",) if alpha is not None else None,
        compression="zlib",
        compressionargs={"level": PNG_LEVEL},
        predictor=True,
        rowsperstrip=64,
        maxworkers=_TIFF_WORKERS,
        metadata=None,  # not tifffile's own description ({"shape": [...]}), which viewers show as the picture's
        software=f"classsr {__version__}",  # (not "tifffile.py"; a source's own, in its EXIF, goes in after)
        iccprofile=meta.icc,
        resolution=meta.dpi or (((72, 1), (72 * meta.aspect[0], meta.aspect[1])) if meta.aspect else None),
        resolutionunit="INCH" if meta.dpi or meta.aspect else None,  # a frame's SAR as ffmpeg's encoder writes it
        extratags=[*([(700, 1, len(meta.xmp), meta.xmp, True)] if meta.xmp else ()),  # XMLPacket
                   *([(_IPTC_TAG, 7, len(meta.iptc), meta.iptc, True)] if meta.iptc else ())],  # as Pillow reads it
    )
    if meta.exif:
        _tiff_add_exif(tmp, meta.exif)


def _atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool, tail: bytes | None = None) -> None:
    """Run ``write(tmp)`` on a fresh temporary file beside ``path``, ``tail`` (a Motion Photo's video) appended, then
    move it into place."""
    if not overwrite and path.exists():
        raise OutputExistsError(f"{path}: {ALREADY_EXISTS}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # honours the umask
    except OSError as e:
        raise OutputError.of(path, e) from None
    try:
        write(tmp)
        if tail:
            with tmp.open("ab") as f:
                f.write(tail)
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_clobber(tmp, path)
    except OSError as e:
        raise OutputError.of(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def _move_no_clobber(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobbers
    except FileExistsError:
        raise OutputExistsError(f"{path}: {ALREADY_EXISTS}") from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise OutputExistsError(f"{path}: {ALREADY_EXISTS}") from None
        os.replace(tmp, path)


# ------------------------------------------------------------------------------------- writing in row bands

def write_image_rows(
    path: str | os.PathLike[str],
    size: tuple[int, int],
    channels: int,
    dtype: np.dtype | type,
    rows: Iterable[np.ndarray],
    *,
    meta: Meta | None = None,
    overwrite: bool = False,
    quality: int | None = None,
) -> list[str]:
    """Write a ``size = (height, width)`` image from ``rows``: bands of rows ``(n, width, channels)``, top to
    bottom (e.g. an :meth:`Upscaler.run <classsr_cli.pipeline.Upscaler.run>`), carrying ``meta`` (a source's
    :meth:`Picture.carried`); ``quality`` as :func:`write_image`'s.

    ``channels`` is 1 (gray) or 3 (RGB), ``dtype`` uint8 or uint16; no alpha. Atomic like :func:`write_image`:
    whatever iterating ``rows`` raises, nothing is left but the untouched target. PNG is encoded and written as the bands
    arrive (memory: one band); other formats go through a memory-mapped temporary file in the target folder,
    encoded once it is full. Returns the same notes as :func:`write_image`.
    """
    path = Path(path)
    fmt = output_format(path)
    height, width = size
    dtype = np.dtype(dtype)
    notes: list[str] = []
    deep = _deep_avif(fmt, dtype, meta or Meta())
    coded = _sdr_of(fmt, meta or Meta(), deep)  # HDR or wide gamut the format cannot say: shown as SDR sRGB
    notes.extend(_sdr_notes(fmt, coded) if coded is not None else [])  # (in write_image's order)
    carried, dropped = _without_hdr_gain((meta or Meta()).for_output(fmt, width, height), coded)
    notes.extend(_format_notes(fmt, dtype, meta or Meta(), carried, deep) + dropped)
    carried, said = _fitting_icc(fmt, carried, channels, meta is not None and meta.linear is not None)
    notes.extend(said)
    linear = None if meta is None or meta.linear is None else meta.linear.resized(width, height)

    def checked() -> Iterator[np.ndarray]:
        from classsr_cli.io.sdr import to_sdr

        done = 0
        for band in rows:
            if band.shape[1:] != (width, channels) or band.dtype != dtype or done + band.shape[0] > height:
                raise ValueError(f"row band {band.shape} {band.dtype} does not fit a {width}x{height}x{channels} image")
            out = band if fmt in _LINEAR_FORMATS else _in_srgb(shown(band, linear, done), linear)
            yield out if coded is None else to_sdr(out, coded.primaries, coded.transfer, coded.peak)
            done += band.shape[0]
        if done != height:
            raise ValueError(f"got {done} rows of {height}")

    if fmt == "PNG":
        _atomic_write(path, lambda tmp: _png_writer(tmp, size, channels, dtype, checked(), carried), overwrite)
    elif fmt == "JXL":
        _atomic_write(path, lambda tmp: _jxl_writer(tmp, size, channels, dtype, checked(), carried, quality),
                      overwrite)  # fmt: skip
    elif fmt == "EXR":
        _atomic_write(path, lambda tmp: _exr_writer(tmp, size, channels, checked(), carried), overwrite)
    elif fmt == "HDR":
        _atomic_write(path, lambda tmp: _hdr_writer(tmp, size, checked(), carried), overwrite)
    elif fmt == "PFM":
        _atomic_write(path, lambda tmp: _pfm_writer(tmp, size, channels, checked(), carried), overwrite)
    elif fmt in _PNM_FORMATS:
        notes.extend(_pnm_notes(fmt, channels))
        _atomic_write(path, lambda tmp: _pnm_writer(tmp, fmt, size, channels, dtype, checked()), overwrite)
    elif fmt == "PAM":
        _atomic_write(path, lambda tmp: _pam_writer(tmp, size, channels, dtype, checked()), overwrite)
    elif deep:
        deep16 = (b if b.dtype == np.uint16 else b.astype(np.uint16) * 257 for b in checked())
        _atomic_write(path, lambda tmp: _avif_writer(tmp, size, channels, deep16, carried, quality), overwrite,
                      carried.motion)
    else:
        _atomic_write(path, lambda tmp: _mapped_writer(tmp, fmt, size, channels, dtype, checked(), carried, quality),
                      overwrite, carried.motion)  # fmt: skip
    return notes


def _png_writer(
    tmp: Path, size: tuple[int, int], c: int, dtype: np.dtype, bands: Iterable[np.ndarray], meta: Meta, *,
    level: int = PNG_LEVEL,
) -> None:
    """Every PNG classsr writes (8 or 16-bit; gray, gray+alpha, RGB or RGBA), Up-filtered
    (:data:`PNG_FILTER`), compressed at :data:`PNG_LEVEL` (``level`` 0: stored, for a PNG handed straight to
    ffmpeg) and written band by band as ``bands`` arrive."""
    height, width = size
    bits = 16 if dtype == np.uint16 else 8
    row_bytes = width * c * bits // 8
    above = np.zeros(row_bytes, np.uint8)  # the row above the first: zeros, as the PNG specification has it
    z = _deflater() if level == PNG_LEVEL else zlib.compressobj(level)
    with tmp.open("wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, _PNG_COLOUR_TYPE[c], 0, 0, 0)))
        if meta.icc and libpng_warns(meta.icc):  # (HP's sRGB profile: PNG's own sRGB chunk, in its rendering intent)
            f.write(_png_chunk(b"sRGB", bytes([meta.icc[67] & 3])))
        elif meta.icc:
            f.write(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(meta.icc)))
        elif meta.nclx is not None and c >= 3 and not meta.nclx.srgb:  # PNG's own HDR and wide-gamut tag
            f.write(_png_chunk(b"cICP", bytes([meta.nclx.primaries, meta.nclx.transfer, 0, 1])))  # RGB, full range
            f.write(_png_light_chunks(meta.nclx.light))  # (PNG's third edition: its light levels beside it)
        if meta.gamma is not None:  # (readers take an iCCP or cICP before them)
            f.write(meta.gamma.chunks())
        if meta.dpi:  # pixels per metre
            f.write(_png_chunk(b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in meta.dpi), 1)))
        elif meta.aspect:  # no unit: the pixel shape, as ffmpeg's PNG encoder writes a frame's SAR (num, den)
            f.write(_png_chunk(b"pHYs", struct.pack(">IIB", *meta.aspect, 0)))
        if meta.exif:
            f.write(_png_chunk(b"eXIf", meta.exif[6:] if meta.exif.startswith(b"Exif\x00\x00") else meta.exif))
        for t in ((PngText("XML:com.adobe.xmp", meta.xmp.decode("utf-8", "replace")),) if meta.xmp else ()) + meta.text:
            f.write(_png_itxt(t))
        for rows in bands:
            if not rows.shape[0]:
                continue
            raw = np.ascontiguousarray(rows.astype(">u2") if bits == 16 else rows).view(np.uint8)
            raw = raw.reshape(rows.shape[0], row_bytes)
            data = np.empty((raw.shape[0], row_bytes + 1), np.uint8)
            data[:, 0] = PNG_FILTER
            np.subtract(raw[0], above, out=data[0, 1:])  # bytes wrap modulo 256, as the filter is defined
            np.subtract(raw[1:], raw[:-1], out=data[1:, 1:])
            above = raw[-1].copy()
            chunk = z.compress(data.data)  # the buffer itself, no copy
            if chunk:
                f.write(_png_chunk(b"IDAT", chunk))
        f.write(_png_chunk(b"IDAT", z.flush()))
        f.write(_png_chunk(b"IEND", b""))


def png_encoder(meta: Meta) -> Callable[[Path, list[np.ndarray], Any], None]:
    """What writes a frame of a PNG sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, C)`` rows
    (uint8 or uint16; RGB or RGBA) as every PNG classsr writes (:func:`_png_writer`), with ``meta`` (its ``cICP``, its
    text chunks)."""

    def encode(path: Path, rows: list[np.ndarray], light: Any) -> None:
        del light  # PNG holds levels, not light
        size = (sum(band.shape[0] for band in rows), rows[0].shape[1])
        _png_writer(path, size, rows[0].shape[2], rows[0].dtype, rows, meta)

    return encode


def tiff_encoder(meta: Meta) -> Callable[[Path, list[np.ndarray], Any], None]:
    """What writes a frame of a TIFF sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, C)`` rows
    (uint8 or uint16; RGB or RGBA) as every TIFF classsr writes (:func:`_tiff_writer`: deflate with the predictor, on
    threads), with ``meta``."""

    def encode(path: Path, rows: list[np.ndarray], light: Any) -> None:
        del light  # TIFF holds levels here, not light
        _tiff_writer(path, *_whole_frame(rows), meta)

    return encode


def jpeg_encoder(meta: Meta, quality: int | None = None) -> Callable[[Path, list[np.ndarray], Any], None]:
    """What writes a frame of a JPEG sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, 3)`` rows
    (uint8, or uint16 rounded to 8 bits) as `classsr upscale` writes a JPEG (:func:`_pil_write`: ``quality``, else
    :data:`DEFAULT_QUALITY`; 4:4:4), with ``meta`` (its record of the upscale as the comment)."""

    def encode(path: Path, rows: list[np.ndarray], light: Any) -> None:
        del light  # JPEG holds levels, not light
        colour, _ = _whole_frame(rows)
        _pil_write(path, "JPEG", colour if colour.dtype == np.uint8 else to_8bit(colour), None, meta, quality)

    return encode


def _jfif_aspect(path: Path, num: int, den: int) -> None:
    """Set the JFIF header of the JPEG Pillow wrote at ``path`` to a pixel shape of ``num:den`` (width over height),
    as ffmpeg's encoder writes a frame's SAR: density unit 0 (no unit, an aspect ratio), X density ``num``, Y ``den``
    (16 bits each: a ratio in larger terms is brought within them). Pillow writes a unit only with a print resolution."""
    while max(num, den) > 0xFFFF:
        num, den = max(1, round(num / 2)), max(1, round(den / 2))
    with path.open("r+b") as f:
        head = f.read(20)
        if head[2:4] != b"\xff\xe0" or head[6:11] != b"JFIF\x00":  # Pillow writes JFIF first; else left as it is
            return
        f.seek(13)
        f.write(struct.pack(">BHH", 0, num, den))


def _whole_frame(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """A frame given as bands of rows (alpha, where there is one, as a fourth channel), whole: colour and alpha."""
    whole = np.concatenate(rows) if len(rows) > 1 else rows[0]
    return (whole[..., :3], whole[..., 3]) if whole.shape[2] == 4 else (whole, None)


def radiance_encoder(meta: Meta) -> Callable[[Path, list[np.ndarray], Any], None]:
    """What writes a frame of a Radiance HDR sequence (:class:`~classsr_cli.io.frames.FrameFiles`): its ``(n, W, 3)``
    uint16 rows of sRGB-encoded levels (alpha as a fourth channel: colour premultiplied, as RGBE holds none) in linear
    light with the frame's :class:`~classsr_cli.io.exr.Linear` (its stops and light outside 0-1) added back, under
    ``meta``'s header lines (``meta.linear.lines``) and record (:func:`_hdr_writer`)."""

    def encode(path: Path, rows: list[np.ndarray], light: Linear | None) -> None:
        colour, alpha = _whole_frame(rows)
        lines = meta.linear.lines if meta.linear else ()
        linear = replace(light, lines=lines) if light is not None else Linear(half=False, lines=lines)
        _hdr_writer(path, colour.shape[:2], [colour], replace(meta, linear=linear), alpha)

    return encode


def _deflater() -> Any:
    """A streaming deflate compressor (``compress``, ``flush``) at :data:`PNG_LEVEL` for PNG data, ISA-L's where
    installed (:func:`classsr_cli.io.exr.deflate_module`): 3-4x faster than zlib's at level 1, and smaller
    (docs/experiments.md)."""
    from classsr_cli.io.exr import deflate_module

    return deflate_module().compressobj(PNG_LEVEL)


def _row_chunks(arr: np.ndarray, rows: int = 256) -> Iterator[np.ndarray]:
    """``arr`` as bands of ``rows`` rows: what :func:`_png_writer` filters at a time (bounded scratch memory)."""
    return (arr[i : i + rows] for i in range(0, arr.shape[0], rows))


def _reserve(path: Path) -> None:
    """Give the (sparse) file ``path`` its blocks now: a full disk is then an ``OSError`` here (``cannot write (No
    space left on device)``), not a bus error that kills the process when a row lands in the map. A file system
    without ``fallocate`` keeps the sparse file."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def _mapped_writer(
    tmp: Path, fmt: str, size: tuple[int, int], c: int, dtype: np.dtype, bands: Iterator[np.ndarray], meta: Meta,
    quality: int | None = None,
) -> None:
    """Collect the rows in a memory-mapped file beside ``tmp``, then encode them into ``tmp``."""
    height, width = size
    raw = tmp.with_name(tmp.name + ".rows")
    try:
        buf = np.lib.format.open_memmap(raw, mode="w+", dtype=dtype, shape=(height, width, c))
        _reserve(raw)
        at = 0
        for rows in bands:
            buf[at : at + rows.shape[0]] = rows
            at += rows.shape[0]
        buf.flush()
        pixels: np.ndarray = buf
        if fmt == "TIFF":  # tifffile writes strip by strip from the map: no second copy in memory
            _tiff_writer(tmp, pixels, None, meta)
        elif fmt == "HEIF":
            _heif_writer(tmp, pixels, None, meta, quality)
        elif fmt == "JPEG2000" and dtype == np.uint16:
            _jp2_writer16(tmp, pixels, None)
        else:
            if dtype == np.uint16:
                pixels = to_8bit(pixels)
            _pil_write(tmp, fmt, pixels, None, meta, quality)
    finally:
        raw.unlink(missing_ok=True)
