"""An HDR (PQ, HLG) or wide-gamut picture as SDR sRGB, for an output that cannot say what it is.

A HEIF, AVIF or JPEG XL may describe its colours by code points (an nclx box: a Canon's or Sony's HDR PQ/HLG HEIF, a
Display P3 picture without an ICC profile) instead of an ICC profile. Only HEIC, JPEG XL and PNG outputs hold that
description; viewers read a JPEG, WebP, TIFF, ... without one as sRGB, so its coded levels showed dim and flat (PQ),
pale (HLG, wide gamut). :func:`to_sdr` converts them as ``classsr video`` does into frames without colour tags
(zscale and tonemap there, :func:`classsr_cli.io.video._to_sdr`): the light made linear (100 cd/m² at 1.0; HLG through
its display's light at a 1,000 cd/m² peak), the primaries converted to BT.709's (a wide-gamut SDR picture's through
its display light, BT.1886's gamma 2.4 for BT.709's curve), an HDR picture's light tone-mapped by the Möbius curve
(linear up to 0.3, its highlights rolled off up to its peak: 1,000 cd/m²) on its brightest channel, and written with
sRGB's curve.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["HDR_PEAK", "POWER", "linear", "needs", "on_srgb_curve", "to_sdr", "to_srgb_primaries"]

#: The light an HDR picture's brightest pixels are taken to have (cd/m²): HLG's nominal peak, and the most common
#: mastering display's for PQ; `classsr video` tone-maps from it too (:func:`classsr_cli.io.video.hdr_peak`).
HDR_PEAK = 1000
#: H.273 colour primaries: red, green, blue and white (CIE 1931 xy).
_PRIMARIES = {
    1: ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06), (0.3127, 0.3290)),  # BT.709, sRGB
    9: ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), (0.3127, 0.3290)),  # BT.2020
    11: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.314, 0.351)),  # DCI-P3 (SMPTE RP 431-2)
    12: ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290)),  # Display P3 (SMPTE EG 432-1)
}
#: H.273 transfer characteristics: PQ, HLG; and the SDR ones a wide-gamut picture is made linear by (BT.709's and its
#: kin through BT.1886's display gamma, as zimg does; sRGB's own curve).
PQ, HLG, SRGB = 16, 18, 13
_SDR = {1, 6, 14, 15, 2, 13}
#: H.273 transfer characteristics of a pure power law, by the exponent that makes their levels light: linear light
#: (8: a JPEG XL or PNG kept linear), gamma 2.2 (4) and 2.8 (5).
POWER = {8: 1.0, 4: 2.2, 5: 2.8}
#: Bradford's cone response matrix, for a white point other than D65 (DCI-P3's).
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def needs(primaries: int, transfer: int) -> bool:
    """Whether a picture of these H.273 code points shows otherwise than its levels as sRGB's: HDR, or wide gamut
    with a transfer :func:`to_sdr` takes."""
    return transfer in (PQ, HLG) or (primaries in (9, 11, 12) and transfer in _SDR)


def _to_xyz(primaries: int | tuple[tuple[float, float], ...]) -> np.ndarray:
    """The matrix from linear RGB in ``primaries`` to CIE XYZ (white's Y 1): each primary's xyz scaled so that the
    three add up to the white (a primary of y 0, such as XYZ's own blue at (0, 0), is no division by zero)."""
    (xr, yr), (xg, yg), (xb, yb), (xw, yw) = _PRIMARIES[primaries] if isinstance(primaries, int) else primaries
    m = np.array([[x, y, 1 - x - y] for x, y in ((xr, yr), (xg, yg), (xb, yb))]).T
    white = np.array([xw / yw, 1.0, (1 - xw - yw) / yw])
    return m * np.linalg.solve(m, white)


def _to_bt709(primaries: int | tuple[tuple[float, float], ...]) -> np.ndarray:
    """The matrix from linear RGB in ``primaries`` (H.273's code, or red, green, blue and white in CIE xy) to linear
    BT.709 RGB (white adapted to D65 by Bradford's; not from CIE XYZ's own white, equal-energy (1/3, 1/3), whose
    values are absolute XYZ: OpenEXR's Chromaticities/XYZ.exr shows as its Rec709.exr does, as its README asks)."""
    to_xyz = _to_xyz(primaries)
    (xw, yw), (xd, yd) = (_PRIMARIES[primaries] if isinstance(primaries, int) else primaries)[3], _PRIMARIES[1][3]
    if (xw, yw) != (xd, yd) and not (abs(xw - 1 / 3) < 1e-4 and abs(yw - 1 / 3) < 1e-4):
        src = _BRADFORD @ np.array([xw / yw, 1.0, (1 - xw - yw) / yw])
        dst = _BRADFORD @ np.array([xd / yd, 1.0, (1 - xd - yd) / yd])
        to_xyz = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD @ to_xyz
    return np.linalg.inv(_to_xyz(1)) @ to_xyz


def _pq_light(v: np.ndarray) -> np.ndarray:
    """PQ's signal to light, in units of 100 cd/m² (SMPTE ST 2084)."""
    m1, m2, c1, c2, c3 = 0.1593017578125, 78.84375, 0.8359375, 18.8515625, 18.6875
    p = np.power(np.clip(v, 0, 1), 1 / m2)
    return 100 * np.power(np.maximum(p - c1, 0) / (c2 - c3 * p), 1 / m1)


def _hlg_scene(v: np.ndarray) -> np.ndarray:
    """HLG's signal to scene light, 0-1 (BT.2100's inverse OETF)."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.5, v * v / 3, (np.exp((v - c) / a) + b) / 12)


def _sdr_light(v: np.ndarray, transfer: int) -> np.ndarray:
    v = np.clip(v, 0, 1)
    if transfer == SRGB:
        return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))
    return np.power(v, POWER.get(transfer, 2.4))  # a power law's; else BT.1886's display gamma


@functools.cache
def _decoder(transfer: int, levels: int) -> np.ndarray:
    """Each of ``levels`` coded levels' light (float32): PQ's in units of 100 cd/m², HLG's scene light, an SDR
    curve's display light."""
    v = np.arange(levels, dtype=np.float64) / (levels - 1)
    light = _pq_light(v) if transfer == PQ else _hlg_scene(v) if transfer == HLG else _sdr_light(v, transfer)
    return light.astype(np.float32)


def _mobius(x: np.ndarray, peak: float, j: float = 0.3) -> np.ndarray:
    """The Möbius tone curve (ffmpeg's tonemap=mobius, its parameter 0.3): linear up to ``j``, then rolling ``peak``
    off to 1."""
    a = -j * j * (peak - 1) / (j * j - 2 * j + peak)
    b = (j * j - 2 * j * peak + peak) / max(peak - 1, 1e-6)
    return np.where(x <= j, x, (b * b + 2 * b * j + j * j) / (b - a) * (x + a) / (x + b))


def linear(pixels: np.ndarray, primaries: int, transfer: int) -> np.ndarray:
    """``pixels`` (``(H, W, C)`` ``uint8`` or ``uint16``; ``C`` 1 or 3, full range) of these H.273 code points as the
    light they show, float32, in BT.709's primaries (1.0: 100 cd/m², SDR's white; PQ's up to 100, HLG's display's up
    to :data:`HDR_PEAK`; a wide gamut's colours outside BT.709's below 0), as an OpenEXR holds light."""
    top = np.iinfo(pixels.dtype).max
    light = _decoder(transfer, top + 1)[pixels]
    colour = pixels.shape[2] == 3
    if transfer == HLG:  # the display's light: scene light times the scene luminance to the system gamma's excess
        luma = (_to_xyz(primaries if primaries in _PRIMARIES else 1)[1] if colour else np.ones(1)).astype(np.float32)
        gamma = 1.2 + 0.42 * np.log10(HDR_PEAK / 1000)
        light *= (HDR_PEAK / 100) * np.power(np.maximum(light @ luma, 1e-12), gamma - 1)[..., None]
    if primaries in _PRIMARIES and colour and primaries != 1:
        light = light @ _to_bt709(primaries).astype(np.float32).T
    return light


def to_sdr(pixels: np.ndarray, primaries: int, transfer: int, peak: float = HDR_PEAK) -> np.ndarray:
    """``pixels`` (``(H, W, C)`` ``uint8`` or ``uint16``; ``C`` 1 or 3, full range) of these H.273 code points as
    SDR sRGB levels of the same shape and type (see the module); as they are where :func:`needs` says no. HLG's light
    is its display's at :data:`HDR_PEAK` (BT.2100's OOTF, on the scene's luminance)."""
    if not needs(primaries, transfer):
        return pixels
    top = np.iinfo(pixels.dtype).max
    out = np.empty_like(pixels)
    step = max(1, (1 << 21) // max(1, pixels.shape[1] * pixels.shape[2]))  # about 2 M samples of float32 at a time
    for y in range(0, pixels.shape[0], step):
        light = np.maximum(linear(pixels[y : y + step], primaries, transfer), 0)
        if transfer in (PQ, HLG):
            brightest = np.maximum(light.max(axis=2, keepdims=True), 1e-6)
            light *= _mobius(brightest, peak / 100) / brightest
        np.clip(light, 0, 1, out=light)
        out[y : y + step] = _encoder(top)[(light * (_ENCODED - 1) + 0.5).astype(np.int32)]
    return out


def on_srgb_curve(pixels: np.ndarray, transfer: int) -> np.ndarray:
    """``pixels`` (``(H, W, C)`` ``uint8`` or ``uint16``) coded with a power-law ``transfer`` (:data:`POWER`) as
    levels of sRGB's curve, of the same shape and type and in the same primaries: what the models were trained on, and
    what a viewer takes levels without a tag for."""
    top = np.iinfo(pixels.dtype).max
    table = _encoder(top)[(_decoder(transfer, top + 1) * (_ENCODED - 1) + 0.5).astype(np.int32)]
    return table[pixels]


def to_srgb_primaries(pixels: np.ndarray, chromaticities: tuple[float, ...]) -> np.ndarray:
    """``pixels`` (``(H, W, 3)`` ``uint8`` or ``uint16``: sRGB's curve) whose light is in other primaries, given as an
    OpenEXR's ``chromaticities`` (red, green, blue and white x and y: ACEScg's, BT.2020's), with their colours in sRGB's
    primaries (white adapted by Bradford's; colours outside them clipped)."""
    top = np.iinfo(pixels.dtype).max
    xy = tuple(zip(chromaticities[0::2], chromaticities[1::2], strict=True))
    matrix = _to_bt709(xy).astype(np.float32).T
    out = np.empty_like(pixels)
    step = max(1, (1 << 21) // max(1, pixels.shape[1] * 3))
    for y in range(0, pixels.shape[0], step):
        light = np.clip(_decoder(SRGB, top + 1)[pixels[y : y + step]] @ matrix, 0, 1)
        out[y : y + step] = _encoder(top)[(light * (_ENCODED - 1) + 0.5).astype(np.int32)]
    return out


#: The steps of linear light :func:`_encoder` tabulates sRGB's curve at: within 2.2 levels of 16 bits of the curve
#: computed (0.01 of 8 bits), where a table of 65,536 would be 13 off near black.
_ENCODED = 1 << 18


@functools.cache
def _encoder(top: int) -> np.ndarray:
    """sRGB's curve at :data:`_ENCODED` steps of linear light from 0 to 1, as levels of ``top`` (255 or 65535)."""
    v = np.arange(_ENCODED, dtype=np.float64) / (_ENCODED - 1)
    shown = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.rint(shown * top).astype(np.uint16 if top > 255 else np.uint8)
