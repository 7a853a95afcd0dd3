"""classsr_cli.io.icc: 16-bit frames from matrix/TRC profiles to sRGB, as LittleCMS converts 8-bit ones."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from classsr_cli.io.icc import srgb16_transform

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
PROPHOTO = ((0.7977, 0.2880, 0.0), (0.1352, 0.7119, 0.0001), (0.0313, 0.0001, 0.8249))  # D50 colorants
ADOBE = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def _xyz(v: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + struct.pack(">3i", *(round(c * 65536) for c in v))


def profile(colorants: tuple[tuple[float, float, float], ...], curve: bytes, name: str = "Test") -> bytes:
    """sRGB's profile (LittleCMS's, as Pillow builds it) with other colorants and one tone curve for the three
    channels, its description's "sRGB" made ``name`` (4 letters): an RGB matrix/TRC profile such as photographers
    export in, rebuilt tag by tag."""
    (count,) = struct.unpack(">I", SRGB[128:132])
    tags = []
    for k in range(count):
        sig, offset, size = struct.unpack(">4sII", SRGB[132 + 12 * k : 144 + 12 * k])
        tags.append((sig, SRGB[offset : offset + size]))
    new = {b"rXYZ": _xyz(colorants[0]), b"gXYZ": _xyz(colorants[1]), b"bXYZ": _xyz(colorants[2]),
           b"rTRC": curve, b"gTRC": curve, b"bTRC": curve}  # fmt: skip
    tags = [(sig, new.get(sig, data)) for sig, data in tags]
    at = 132 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data = data.replace("sRGB".encode("utf-16-be"), name.encode("utf-16-be")) + b"\0" * (-len(data) % 4)
        table += struct.pack(">4sII", sig, at + len(body), len(data))
        body += data
    head = bytearray(SRGB[:128])
    head[0:4] = struct.pack(">I", 132 + len(table) + len(body))
    head[84:100] = b"\0" * 16  # no profile ID: the contents changed
    return bytes(head) + struct.pack(">I", len(tags)) + table + body


def gamma(g: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(g * 256)) + b"\0\0"


def table(g: float, n: int = 256) -> bytes:
    values = np.rint(np.linspace(0, 1, n) ** g * 65535).astype(">u2").tobytes()
    return b"curv\0\0\0\0" + struct.pack(">I", n) + values


def para(kind: int, *params: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", kind, 0) + struct.pack(f">{len(params)}i", *(round(p * 65536) for p in params))


SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
CASES = {
    "prophoto, gamma 1.8": (PROPHOTO, gamma(1.8)),
    "adobe, a table of 2.2": (ADOBE, table(2.2)),
    "p3, sRGB's parametric curve": (P3, para(3, *SRGB_CURVE)),
    "adobe, parametric type 0": (ADOBE, para(0, 2.2)),
    "p3, parametric type 4": (P3, para(4, *SRGB_CURVE, 0.01, 0.0)),  # (f > 0 lifts black: LittleCMS compensates)
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_16_bit_frame_is_converted_as_littlecms_converts_an_8_bit_one(case: str) -> None:
    """Every 8-bit colour, taken to 16 bits and converted, lands within 1.5 levels of what LittleCMS (Pillow) makes of
    it at 8 bits; the conversion is a real one (tens of levels for some colours)."""
    colorants, curve = CASES[case]
    icc = profile(colorants, curve)
    rng = np.random.default_rng(0)
    rgb = np.concatenate([rng.integers(0, 256, (60, 64, 3)), np.repeat(np.arange(256)[:, None], 3, 1)[None].repeat(4, 0)
                          [:, :64]], axis=0).astype(np.uint8)  # fmt: skip
    want = np.asarray(ImageCms.profileToProfile(Image.fromarray(rgb), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                ImageCms.createProfile("sRGB")))  # fmt: skip
    convert = srgb16_transform(icc)
    assert convert is not None
    got = convert(rgb.astype(np.uint16) * 257)
    assert got.dtype == np.uint16 and got.shape == rgb.shape
    error = got.astype(float) / 257 - want
    assert np.abs(error).max() <= 1.5 and np.abs(error).mean() < 0.25, case  # LittleCMS rounds to 8 bits
    assert np.abs(want.astype(int) - rgb).max() > 10  # a real conversion


def test_srgb_is_unchanged_and_the_levels_between_8_bit_ones_are_kept() -> None:
    """sRGB to sRGB gives every 16-bit level back; a 16-bit gradient in Adobe RGB stays a gradient of more than 256
    levels (the reason for converting at 16 bits)."""
    levels = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1).repeat(3, axis=2)
    same = srgb16_transform(SRGB)
    assert same is not None and np.abs(same(levels).astype(int) - levels).max() <= 1
    adobe = srgb16_transform(profile(ADOBE, gamma(2.2)))
    assert adobe is not None and len(np.unique(adobe(levels)[..., 1])) > 10000


def test_profiles_it_cannot_convert_are_left_to_the_caller() -> None:
    """A CMYK or gray profile, one of lookup tables (no colorants), or bytes that are no profile: ``None``."""
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert srgb16_transform(lab) is None and srgb16_transform(b"not a profile" * 20) is None
    no_colorants = profile(ADOBE, gamma(2.2)).replace(b"rXYZ", b"rXYX")
    assert srgb16_transform(no_colorants) is None


def test_is_srgb_tells_srgb_from_the_working_spaces() -> None:
    """sRGB's own profile, and one rebuilt with its colorants and a table of its curve, are sRGB; Adobe RGB, ProPhoto
    and Display P3, or sRGB's colorants with a gamma of 1.8, are not; bytes that are no profile are not said to be."""
    from classsr_cli.io.icc import is_srgb

    (count,) = struct.unpack(">I", SRGB[128:132])
    at = {SRGB[132 + 12 * k : 136 + 12 * k]: struct.unpack(">I", SRGB[136 + 12 * k : 140 + 12 * k])[0] for k in range(count)}
    srgb_colorants = tuple(tuple(c / 65536 for c in struct.unpack(">3i", SRGB[at[sig] + 8 : at[sig] + 20]))
                           for sig in (b"rXYZ", b"gXYZ", b"bXYZ"))  # fmt: skip
    levels = np.linspace(0, 1, 1024)
    decode = np.where(levels <= 0.04045, levels / 12.92, ((levels + 0.055) / 1.055) ** 2.4)
    curve = b"curv\0\0\0\0" + struct.pack(">I", 1024) + np.rint(decode * 65535).astype(">u2").tobytes()
    assert is_srgb(SRGB) and is_srgb(profile(srgb_colorants, curve))
    for colorants in (ADOBE, PROPHOTO, P3):
        assert not is_srgb(profile(colorants, para(3, *SRGB_CURVE)))
    assert not is_srgb(profile(srgb_colorants, gamma(1.8)))
    assert not is_srgb(b"not a profile")
