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


def gray_profile(curve: bytes) -> bytes:
    """A gray display profile of ``curve`` (sRGB's profile, as LittleCMS builds it, without its colorants and
    channel curves, with a ``kTRC``), as GIMP embeds in a gray picture."""
    (count,) = struct.unpack(">I", SRGB[128:132])
    tags = [(b"kTRC", curve)]
    for k in range(count):
        sig, offset, size = struct.unpack(">4sII", SRGB[132 + 12 * k : 144 + 12 * k])
        if sig not in (b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"):
            tags.append((sig, SRGB[offset : offset + size]))
    at = 132 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += struct.pack(">4sII", sig, at + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    head = bytearray(SRGB[:128])
    head[16:20] = b"GRAY"
    head[0:4] = struct.pack(">I", 132 + len(table) + len(body))
    head[84:100] = b"\0" * 16
    return bytes(head) + struct.pack(">I", len(tags)) + table + body


@pytest.mark.parametrize("curve", [gamma(1.8), para(3, *SRGB_CURVE), table(2.2)])
def test_a_gray_profile_made_rgb_shows_three_equal_levels_as_the_gray_one(curve: bytes) -> None:
    """A gray picture's profile made an RGB one (its gray written as RGB: HEIC, WebP): LittleCMS converts each gray
    level of the gray profile and the three equal levels of the RGB one to the same sRGB colour (within a level: its
    8-bit tables near black)."""
    from classsr_cli.io.icc import is_gray, rgb_of_gray

    gray = gray_profile(curve)
    rgb = rgb_of_gray(gray)
    assert is_gray(gray) and rgb is not None and rgb[16:20] == b"RGB " and not is_gray(rgb)
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    srgb = ImageCms.createProfile("sRGB")
    want = ImageCms.profileToProfile(Image.fromarray(levels), ImageCms.ImageCmsProfile(io.BytesIO(gray)), srgb,
                                     outputMode="RGB")  # fmt: skip
    got = ImageCms.profileToProfile(Image.fromarray(np.repeat(levels[..., None], 3, axis=2)),
                                    ImageCms.ImageCmsProfile(io.BytesIO(rgb)), srgb, outputMode="RGB")  # fmt: skip
    assert want is not None and got is not None
    assert np.abs(np.asarray(got).astype(int) - np.asarray(want)).max() <= 1  # (LittleCMS's 8-bit tables near black)
    assert np.abs(np.asarray(want).astype(int)[..., 0] - levels).max() > 5 or curve == para(3, *SRGB_CURVE)
    assert rgb_of_gray(SRGB) is None  # (no gray curve)


def test_a_gray_picture_into_heic_or_webp_carries_an_rgb_profile(tmp_path: object) -> None:
    """Gray written as RGB (HEIC, WebP) with its gray profile was a gray profile on RGB pixels, which libheif's
    heif-convert and libpng refuse ("Gray color space not permitted on RGB PNG"): an RGB one of its curve; gray
    outputs (PNG, JPEG, TIFF) keep the gray one."""
    from pathlib import Path

    from classsr_cli.io.image import Picture, read_image, write_image

    tmp = Path(str(tmp_path))
    gray = gray_profile(gamma(1.8))
    pic = Picture(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), icc=gray)
    for suffix in (".webp", ".heic", ".png", ".jpg", ".tif"):
        assert write_image(tmp / f"a{suffix}", pic) == []
        back = read_image(tmp / f"a{suffix}").icc
        assert back is not None and back[16:20] == (b"RGB " if suffix in (".webp", ".heic") else b"GRAY"), suffix


def test_a_profile_that_does_not_fit_its_pixels_is_fitted_on_reading(tmp_path: object) -> None:
    """An RGB PNG with a gray profile (KDE's ps_testcard_gray_amiga.png; libheif's and libpng's tools refused the
    HEIC and PNG outputs that carried it): an RGB profile of its curve, the pixels as they were; a gray PNG with an
    RGB profile: read as RGB, the profile kept, said; with sRGB's, gray without it."""
    from pathlib import Path

    from classsr_cli.io.image import read_image

    tmp = Path(str(tmp_path))
    levels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    Image.fromarray(levels).save(tmp / "rgb.png", icc_profile=gray_profile(gamma(1.8)))
    pic = read_image(tmp / "rgb.png")
    assert pic.icc is not None and pic.icc[16:20] == b"RGB " and np.array_equal(pic.pixels, levels) and pic.notes == []
    adobe = profile(ADOBE, gamma(2.2))
    Image.fromarray(levels[..., 0]).save(tmp / "gray.png", icc_profile=adobe)
    pic = read_image(tmp / "gray.png")
    assert pic.icc == adobe and pic.pixels.shape == (4, 4, 3) and np.array_equal(pic.pixels[..., 2], levels[..., 0])
    assert pic.notes == ["gray picture with an RGB ICC profile: read as RGB, its profile kept"]
    Image.fromarray(levels[..., 0]).save(tmp / "srgb.png", icc_profile=SRGB)
    pic = read_image(tmp / "srgb.png")
    assert pic.icc is None and pic.pixels.shape == (4, 4, 1) and pic.notes == []


def qt_profile() -> bytes:
    """LittleCMS's sRGB profile (version 4, with a ``chad``) with D65 in its white point tag, where version 4 puts
    D50: as Qt writes profiles (KDE's framenumbers.avif)."""
    out = bytearray(SRGB)
    (count,) = struct.unpack(">I", SRGB[128:132])
    for k in range(count):
        sig, offset, _ = struct.unpack(">4sII", SRGB[132 + 12 * k : 144 + 12 * k])
        if sig == b"wtpt":
            out[offset + 8 : offset + 20] = struct.pack(">3i", *(round(v * 65536) for v in (0.9505, 1.0, 1.0890)))
    return bytes(out)


def test_a_qt_profile_keeps_its_white_in_a_jpeg_xl(tmp_path: object) -> None:
    """A lossy JPEG XL of a picture with a version 4 profile whose white point tag holds D65 (Qt's): libjxl adapted
    that white again by the ``chad`` and encoded a white of about (0.28, 0.30), custom primaries (read back as BT.2020
    colours by ffmpeg, otherwise by djxl): given the profile with D50 there (:func:`d50_white`), which LittleCMS
    converts as before, it encodes sRGB. A conforming profile is given as it is."""
    from pathlib import Path

    from classsr_cli.io.icc import d50_white
    from classsr_cli.io.image import Picture, read_image, write_image

    tmp = Path(str(tmp_path))
    qt = qt_profile()
    fixed = d50_white(qt)
    assert fixed != qt and d50_white(fixed) == fixed and d50_white(SRGB) == SRGB
    (count,) = struct.unpack(">I", qt[128:132])
    wtpt = next(offset for sig, offset, _ in (struct.unpack(">4sII", qt[132 + 12 * k : 144 + 12 * k])
                                               for k in range(count)) if sig == b"wtpt")  # fmt: skip
    assert d50_white(qt[: wtpt + 10]) == qt[: wtpt + 10]  # (a profile cut inside its white point: as it is)
    levels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    a = ImageCms.profileToProfile(Image.fromarray(levels), ImageCms.ImageCmsProfile(io.BytesIO(qt)), SRGB_PROFILE)
    b = ImageCms.profileToProfile(Image.fromarray(levels), ImageCms.ImageCmsProfile(io.BytesIO(fixed)), SRGB_PROFILE)
    assert a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b))
    y, x = np.mgrid[0:32, 0:48]
    smooth = np.dstack([x * 5, y * 7, np.full_like(x, 60)]).astype(np.uint8)
    assert write_image(tmp / "a.jxl", Picture(smooth, icc=qt)) == []
    back = read_image(tmp / "a.jxl")
    assert back.nclx is None and np.abs(back.pixels.astype(int) - smooth).mean() < 1.5


SRGB_PROFILE = ImageCms.createProfile("sRGB")


def test_hps_srgb_profile_is_written_into_png_as_its_srgb_chunk(tmp_path: object) -> None:
    """HP's version 2 sRGB profile, D65 in its white point tag (Photoshop's and Windows'), of which libpng warns
    ("iCCP: known incorrect sRGB profile") and which it refuses to write, and a version 2 one of the length of a
    profile libpng knows (it warns of a copy "that has been edited"): a PNG output says sRGB by its own chunk,
    in the profile's rendering intent, a HEIC or AVIF by its colour code points; another sRGB profile (LittleCMS's
    version 4, Qt's) is carried as it is, and HP's into JPEG."""
    from pathlib import Path

    from classsr_cli.io.icc import libpng_warns
    from classsr_cli.io.image import Picture, read_image, write_image

    tmp = Path(str(tmp_path))
    hp = bytearray(qt_profile())
    hp[8:12] = bytes([2, 0x10, 0, 0])
    hp[64:68] = bytes([0, 0, 0, 1])  # (media-relative: HP's second)
    assert libpng_warns(bytes(hp)) and not libpng_warns(qt_profile()) and not libpng_warns(SRGB)
    v2 = bytearray(SRGB)  # a version 2 sRGB profile, D50 in its white point tag: of a length libpng knows or not
    v2[8:12] = bytes([2, 0, 0, 0])
    assert not libpng_warns(bytes(v2))
    black_scaled = v2 + bytes(3048 - len(v2))  # (the ICC's "black scaled" one's length: libvips's test photos')
    black_scaled[0:4] = struct.pack(">I", 3048)
    assert libpng_warns(bytes(black_scaled))
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert write_image(tmp / "hp.png", Picture(pixels, icc=bytes(hp))) == []
    data = (tmp / "hp.png").read_bytes()
    assert b"iCCP" not in data and data[data.index(b"sRGB") - 4 : data.index(b"sRGB") + 5] == b"\0\0\0\1sRGB\1"
    back = read_image(tmp / "hp.png")
    assert back.icc is None and np.array_equal(back.pixels, pixels)
    write_image(tmp / "qt.png", Picture(pixels, icc=qt_profile()))
    assert read_image(tmp / "qt.png").icc == qt_profile()
    for suffix in (".heic", ".avif"):  # (libheif's converters to PNG refused it): their colour code points say sRGB
        assert write_image(tmp / f"hp{suffix}", Picture(pixels, icc=bytes(hp))) == []
        back = read_image(tmp / f"hp{suffix}")
        assert back.icc is None and (back.nclx is None or back.nclx.srgb), suffix
    write_image(tmp / "hp.jpg", Picture(pixels, icc=bytes(hp)))
    assert read_image(tmp / "hp.jpg").icc == bytes(hp)  # (carried where nothing else says sRGB)


def test_a_linear_sources_profile_gets_srgbs_curves_where_its_light_is_written_so(tmp_path: object) -> None:
    """The light of a linear source with a profile (a 32-bit Photoshop document's "Linear RGB Profile": OpenImageIO's
    psd_rgb_32.psd) is written into 8 and 16-bit formats with sRGB's curve; its profile of linear light, carried as it
    was, made them show far too bright. Its colorants are kept with sRGB's curves; an EXR output carries none."""
    from pathlib import Path

    from classsr_cli.io import exr
    from classsr_cli.io.icc import _curve, _tags, with_srgb_curves
    from classsr_cli.io.image import Picture, read_image, write_image

    tmp = Path(str(tmp_path))
    linear = profile(PROPHOTO, gamma(1.0), "Line")
    pixels = np.linspace(0, 65535, 48).astype(np.uint16).reshape(4, 4, 3)
    pic = Picture(pixels, icc=linear, linear=exr.Linear(half=False))
    for suffix in (".png", ".tif", ".jpg"):
        write_image(tmp / f"a{suffix}", pic)
        back = read_image(tmp / f"a{suffix}").icc
        assert back is not None and back == with_srgb_curves(linear), suffix
        tags = _tags(back)
        assert np.abs(_curve(tags[b"rTRC"]) - _curve(_tags(SRGB)[b"rTRC"])).max() < 1e-6
        assert all(tags[sig] == _tags(linear)[sig] for sig in (b"rXYZ", b"gXYZ", b"bXYZ"))
    assert write_image(tmp / "b.png", Picture(pixels, icc=linear)) == []  # (not light: its profile as it is)
    assert read_image(tmp / "b.png").icc == linear
