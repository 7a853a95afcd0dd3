"""Frames of 16 bits from an RGB ICC profile to sRGB, in numpy: LittleCMS, through Pillow, converts 8-bit pictures
only. Matrix/TRC profiles only (Adobe RGB, ProPhoto, Display P3, Rec. 2020: the RGB working spaces photographers
export in), as LittleCMS converts between two of them: each channel linearised by its tone curve, to the D50
connection space by its colorants, to sRGB's linear channels by sRGB's (LittleCMS's own sRGB profile, the one Pillow
builds), clipped, and encoded by sRGB's curve. Profiles built on lookup tables are left to the caller (``None``).
Not done: black point compensation, which LittleCMS applies to a version 4 profile whose black is above 0 (a
parametric curve with an offset); the working spaces' black is 0."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable

import numpy as np

__all__ = ["d50_white", "is_gray", "is_srgb", "libpng_warns", "rgb_of_gray", "srgb16_transform", "srgb_decode",
           "srgb_encode", "with_srgb_curves"]

def _tags(icc: bytes) -> dict[bytes, bytes]:
    """The profile's tags: signature -> data."""
    (count,) = struct.unpack(">I", icc[128:132])
    tags = {}
    for k in range(count):
        sig, offset, size = struct.unpack(">4sII", icc[132 + 12 * k : 144 + 12 * k])
        tags[sig] = icc[offset : offset + size]
    return tags


def _fixed(data: bytes, at: int, n: int) -> list[float]:
    """``n`` s15Fixed16Numbers from ``at``."""
    return [v / 65536.0 for v in struct.unpack(f">{n}i", data[at : at + 4 * n])]


def _curve(data: bytes) -> np.ndarray:
    """A ``curv`` or ``para`` tone curve, sampled at the 65,536 levels of 16 bits (linear light, 0-1)."""
    kind = data[:4]
    x = np.arange(65536, dtype=np.float64) / 65535.0
    if kind == b"curv":
        (n,) = struct.unpack(">I", data[8:12])
        if n == 0:
            return x.copy()
        if n == 1:
            return x ** (struct.unpack(">H", data[12:14])[0] / 256.0)
        table = np.frombuffer(data[12 : 12 + 2 * n], dtype=">u2").astype(np.float64) / 65535.0
        return np.interp(x, np.linspace(0.0, 1.0, n), table)
    if kind == b"para":
        (fn,) = struct.unpack(">H", data[8:10])
        count = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}.get(fn)
        if count is None:
            raise ValueError(f"parametric curve of type {fn}")
        g, a, b, c, d, e, f = [*_fixed(data, 12, count), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][:7]
        if fn == 0:
            return x**g
        with np.errstate(invalid="ignore"):
            power = np.power(np.maximum(a * x + b, 0.0), g)
        if fn == 1:
            return np.where(x >= -b / a, power, 0.0)
        if fn == 2:
            return np.where(x >= -b / a, power + c, c)
        if fn == 3:
            return np.where(x >= d, power, c * x)
        return np.where(x >= d, power + e, c * x + f)
    raise ValueError(f"tone curve of type {kind!r}")


def _matrix_shaper(icc: bytes) -> tuple[np.ndarray, np.ndarray]:
    """An RGB matrix/TRC profile's three tone curves (3, 65536) and colorants (3x3, columns r, g, b, to D50 XYZ)."""
    if icc[16:20] != b"RGB ":
        raise ValueError("not an RGB profile")
    tags = _tags(icc)
    matrix = np.array([_fixed(tags[sig], 8, 3) for sig in (b"rXYZ", b"gXYZ", b"bXYZ")]).T
    curves = np.clip(np.stack([_curve(tags[sig]) for sig in (b"rTRC", b"gTRC", b"bTRC")]), 0.0, 1.0)  # as LittleCMS
    return curves, matrix


def d50_white(icc: bytes) -> bytes:
    """``icc`` with the white point tag (``wtpt``) a version 4 display profile holds, D50 (the connection space's
    illuminant, its header's), where it holds its display's white (D65) beside a chromatic adaptation (``chad``) from
    it, as Qt writes profiles (KDE's framenumbers.avif, profile_gray.png): libjxl adapts that white once more by the
    ``chad`` and encodes a white of about (0.28, 0.30) xy with custom primaries (jxlinfo), which decoders show
    otherwise (djxl 0.7: 3-40 levels on average from classsr's reading of KDE's such outputs).
    LittleCMS converts the profile as before (it takes the white from the ``chad`` alone); ``icc`` as it is
    otherwise."""
    try:
        if icc[8] < 4 or icc[12:16] != b"mntr" or icc[16:20] not in (b"RGB ", b"GRAY"):
            return icc
        (count,) = struct.unpack(">I", icc[128:132])
        entries = {sig: (offset, size) for sig, offset, size in
                   (struct.unpack(">4sII", icc[132 + 12 * k : 144 + 12 * k]) for k in range(count))}  # fmt: skip
        at, size = entries[b"wtpt"]
        if b"chad" not in entries or size < 20 or icc[at : at + 4] != b"XYZ " or at + 20 > len(icc):
            return icc
        d50 = _fixed(icc, 68, 3)
        if max(abs(a - b) for a, b in zip(_fixed(icc, at + 8, 3), d50, strict=True)) < 0.002:
            return icc
    except (KeyError, IndexError, struct.error):
        return icc
    out = bytearray(icc)
    out[at + 8 : at + 20] = icc[68:80]
    out[84:100] = bytes(16)  # (its profile ID, an MD5 of the old bytes: none)
    return bytes(out)


@functools.lru_cache(maxsize=8)  # (asked of every PNG written with a profile: a sequence's frames carry one)
def libpng_warns(icc: bytes) -> bool:
    """Whether ``icc`` is a version 2 sRGB profile of the kind libpng checks PNG's ``iCCP`` against: of the lengths of
    the ICC's and HP's published sRGB profiles (:data:`_LIBPNG_LENGTHS`: libvips's test photos carry the ICC's "black
    scaled" one), or with D65 in its white point tag where D50 belongs (HP's and Microsoft's, which Photoshop and
    Windows embed). libpng warns of such a profile on reading a PNG ("iCCP: known incorrect sRGB profile", "... that
    has been edited") and refuses it on writing one (heif-convert's PNG writer)."""
    try:
        if len(icc) < 132 or icc[8] != 2 or not is_srgb(icc):
            return False
        white = _fixed(_tags(icc)[b"wtpt"], 8, 3)
    except (KeyError, struct.error, ValueError):
        return False
    return len(icc) in _LIBPNG_LENGTHS or max(abs(a - b) for a, b in zip(white, _fixed(icc, 68, 3), strict=True)) > 0.002


#: The lengths of the version 2 sRGB profiles libpng knows (png.c's png_sRGB_checks): the ICC's black-scaled and
#: unscaled ones, HP's without black point compensation, HP's and Microsoft's.
_LIBPNG_LENGTHS = (3048, 3052, 3024, 3144)


def is_gray(icc: bytes | None) -> bool:
    """Whether ``icc`` is a profile of gray pictures (its colour space ``GRAY``)."""
    return bool(icc) and icc[16:20] == b"GRAY"  # type: ignore[index]


def rgb_of_gray(icc: bytes) -> bytes | None:
    """The gray profile ``icc`` made an RGB one for its gray written as RGB (HEIC, WebP: a gray profile on RGB
    pixels is invalid, libheif's and libpng's converters refuse it): its tags kept, its gray tone curve (``kTRC``) each
    channel's, and sRGB's colorants (LittleCMS's, adapted to D50), which add up to D50's white, so that a pixel of
    three equal levels shows as the gray one did. ``None`` for a profile without a ``kTRC`` or one that does not
    read."""
    try:
        tags = _tags(icc)
        srgb = _tags(_srgb_bytes())
        trc = tags.pop(b"kTRC")
        own = {**{sig: data for sig, data in tags.items() if data}, **{sig: srgb[sig] for sig in (b"rXYZ", b"gXYZ", b"bXYZ")}}
    except (KeyError, struct.error, ValueError, OSError):
        return None
    return _rebuilt(icc, {**own, b"rTRC": trc, b"gTRC": trc, b"bTRC": trc}, b"RGB ")


def with_srgb_curves(icc: bytes) -> bytes | None:
    """The matrix/TRC (or gray) profile ``icc`` with sRGB's tone curve for each channel, its colorants kept: the
    profile of levels written with sRGB's curve from the light a profile of linear light described (a 32-bit
    Photoshop document's "Linear RGB Profile", whose light classsr writes into 8 and 16-bit formats with sRGB's curve;
    carried as it was, it made them show far too bright). ``None`` for a profile of lookup tables, or one that does
    not read."""
    try:
        tags = _tags(icc)
        curve = _tags(_srgb_bytes())[b"rTRC"]
    except (KeyError, struct.error, ValueError, OSError):
        return None
    curves = [sig for sig in (b"rTRC", b"gTRC", b"bTRC", b"kTRC") if sig in tags]
    if icc[16:20] not in (b"RGB ", b"GRAY") or not curves or any(sig in tags for sig in (b"A2B0", b"A2B1", b"B2A0")):
        return None
    return _rebuilt(icc, {sig: (curve if sig in curves else data) for sig, data in tags.items() if data}, icc[16:20])


@functools.cache
def _srgb_bytes() -> bytes:
    """LittleCMS's sRGB profile (version 4), as Pillow builds it."""
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _rebuilt(icc: bytes, tags: dict[bytes, bytes], space: bytes) -> bytes:
    """A profile of ``icc``'s header (its colour ``space`` given, its ID cleared) and ``tags`` (signature: data, in
    order; equal data stored once, as tags may share it)."""
    at = 132 + 12 * len(tags)
    table, body, placed = bytearray(struct.pack(">I", len(tags))), bytearray(), {}
    for sig, data in tags.items():
        if data not in placed:
            placed[data] = at + len(body)
            body += data + bytes(-len(data) % 4)
        table += struct.pack(">4sII", sig, placed[data], len(data))
    head = bytearray(icc[:128])
    head[16:20] = space
    head[84:100] = bytes(16)  # (its profile ID, an MD5 of the old bytes: none)
    head[0:4] = struct.pack(">I", 128 + len(table) + len(body))
    return bytes(head + table + body)


def is_srgb(icc: bytes) -> bool:
    """Whether ``icc`` describes sRGB's colours: a matrix/TRC profile whose colorants lie within 0.005 of sRGB's and
    whose tone curves within 0.02 of sRGB's curve (a profile of lookup tables, or one that does not read: not said to
    be)."""
    try:
        curves, matrix = _matrix_shaper(icc)
        srgb_curves, srgb_matrix = _srgb_shaper()
    except (KeyError, ValueError, struct.error, OSError):
        return False
    return bool(np.abs(matrix - srgb_matrix).max() < 0.005 and np.abs(curves - srgb_curves).max() < 0.02)


@functools.cache
def _srgb_shaper() -> tuple[np.ndarray, np.ndarray]:
    return _matrix_shaper(_srgb_bytes())


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB's tone curve (IEC 61966-2-1, LittleCMS's parametric type 3), linear 0-1 -> 0-1."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(np.maximum(linear, 0.0), 1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """The inverse of :func:`srgb_encode`: sRGB-encoded 0-1 -> linear 0-1."""
    return np.where(encoded <= 0.04045, encoded / 12.92, np.power((np.maximum(encoded, 0.0) + 0.055) / 1.055, 2.4))


@functools.lru_cache(maxsize=4)  # a run's plan and its reader ask for the same profile's
def srgb16_transform(icc: bytes) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function that converts a 16-bit RGB frame ``(H, W, 3)`` from the matrix/TRC profile ``icc`` to sRGB at 16
    bits, or ``None`` where the profile is not one (or cannot be read)."""
    from PIL import ImageCms

    try:
        curves, matrix = _matrix_shaper(icc)
        target = np.linalg.inv(_srgb_shaper()[1])
    except (KeyError, ValueError, struct.error, np.linalg.LinAlgError, OSError, ImageCms.PyCMSError):
        return None
    luts = curves.astype(np.float32)
    combined = (target @ matrix).astype(np.float32)  # linear source -> linear sRGB

    def convert(rgb: np.ndarray) -> np.ndarray:
        linear = np.stack([luts[c][rgb[..., c]] for c in range(3)], axis=-1) @ combined.T
        out = srgb_encode(np.clip(linear, 0.0, 1.0))
        return np.rint(out * 65535.0).astype(np.uint16)

    return convert
