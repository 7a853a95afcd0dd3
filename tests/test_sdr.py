"""HDR and wide-gamut pictures shown as SDR sRGB where the output cannot say what they are: classsr_cli.io.sdr."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from classsr_cli.io.image import Nclx, Picture, read_image, write_image, write_image_rows
from classsr_cli.io.sdr import needs, to_sdr
from classsr_cli.io.video import ffmpeg_exe

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 65536, (6, 48, 3), dtype=np.uint16)
PIXELS[0] = np.linspace(0, 65535, 48).astype(np.uint16)[:, None]  # a row of greys


def _ffmpeg(pixels: np.ndarray, primaries: str, transfer: str, tone: bool) -> np.ndarray:
    """The same pixels through the filters ``classsr video`` converts frames with (zscale, tonemap)."""
    chain = (f"setparams=color_primaries={primaries}:color_trc={transfer}:colorspace=gbr:range=pc,"
             "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
             + ("tonemap=mobius:desat=0:peak=10," if tone else "") + "zscale=t=iec61966-2-1,format=rgb48le")  # fmt: skip
    h, w = pixels.shape[:2]
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{w}x{h}", "-i",
                          "-", "-vf", chain, "-f", "rawvideo", "-pix_fmt", "rgb48le", "-"],
                         input=pixels.astype("<u2").tobytes(), capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    return np.frombuffer(out, "<u2").reshape(h, w, 3)


@pytest.mark.parametrize(("primaries", "transfer", "names", "rows"), [
    (9, 16, ("bt2020", "smpte2084"), slice(None)),  # PQ: every colour
    (12, 13, ("smpte432", "iec61966-2-1"), slice(None)),  # Display P3, sRGB's curve
    (9, 18, ("bt2020", "arib-std-b67"), slice(0, 1)),  # HLG: greys (zimg's OOTF is per channel, BT.2100's on luminance)
])
def test_the_conversion_is_what_the_video_filters_make_of_it(
    primaries: int, transfer: int, names: tuple[str, str], rows: slice
) -> None:
    """A still picture shows as a video frame of the same colours does in frames without colour tags: within a fifth of
    an 8-bit level of ffmpeg's zscale and tonemap."""
    got = to_sdr(PIXELS, primaries, transfer).astype(float) / 257
    want = _ffmpeg(PIXELS, *names, tone=transfer in (16, 18)).astype(float) / 257
    assert np.abs(got - want)[rows].max() < 0.2


def test_hdr_reference_white_lands_near_sdr_white_and_gray_and_8_bits_follow() -> None:
    """BT.2408's reference white (203 cd/m²: PQ's 58 %, HLG's 75 % signal), which showed as 148 and 191 of 255, lands
    near SDR's white; black stays black, a highlight is brighter still; a gray picture and an 8-bit one are converted
    alike; BT.709 pictures, and codes it does not take, are left as they are."""
    for transfer, white, brighter in ((16, 0.58, 0.75), (18, 0.75, 0.9)):
        levels = np.array([[[0.0] * 3, [white] * 3, [brighter] * 3]])
        got = to_sdr(np.round(levels * 65535).astype(np.uint16), 9, transfer) / 257
        assert got[0, 0].max() < 0.5 and 225 <= got[0, 1].min() <= 245 and got[0, 2].min() > got[0, 1].max() + 5
        gray = to_sdr(np.round(levels[..., :1] * 65535).astype(np.uint16), 9, transfer) / 257
        assert np.abs(gray[..., 0] - got[..., 0]).max() < 0.5
        eight = to_sdr(np.round(levels * 255).astype(np.uint8), 9, transfer)
        assert eight.dtype == np.uint8 and np.abs(eight.astype(float) - got).max() <= 1.5
    assert not needs(1, 13) and not needs(1, 1) and not needs(9, 8) and needs(12, 13) and needs(1, 16)
    assert to_sdr(PIXELS, 1, 13) is PIXELS and to_sdr(PIXELS, 9, 8) is PIXELS


def test_a_jpeg_or_tiff_output_is_converted_whole_or_in_bands_and_heic_png_jpeg_xl_keep_it(tmp_path: Path) -> None:
    """An HDR picture described by code points (a Canon's HDR PQ HEIF) into JPEG or TIFF: tone-mapped, said, the same
    written whole or in bands; into PNG tagged as it is (``cICP``), no conversion, no note; with an ICC profile, which
    says what its colours are, left alone."""
    pq = Nclx(9, 16, 9, True)
    pic = Picture(PIXELS, nclx=pq)
    said = ["the picture is HDR (PQ) in BT.2020 colours, which the TIFF output cannot say: tone-mapped to SDR sRGB; a "
            "HEIC, AVIF, JPEG XL or PNG output keeps it HDR"]
    assert write_image(tmp_path / "whole.tif", pic) == said
    assert write_image_rows(tmp_path / "bands.tif", PIXELS.shape[:2], 3, np.uint16, (PIXELS[:2], PIXELS[2:]),
                            meta=pic.carried()) == said  # fmt: skip
    whole = read_image(tmp_path / "whole.tif").pixels
    assert np.array_equal(whole, to_sdr(PIXELS, 9, 16)) and np.array_equal(read_image(tmp_path / "bands.tif").pixels, whole)
    assert write_image(tmp_path / "out.jpg", pic)[0].startswith("the picture is HDR (PQ) in BT.2020 colours, which the JPEG")
    assert write_image(tmp_path / "out.png", pic) == []
    assert np.array_equal(read_image(tmp_path / "out.png").pixels, PIXELS)
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert write_image(tmp_path / "icc.tif", Picture(PIXELS, nclx=pq, icc=srgb)) == []
    assert np.array_equal(read_image(tmp_path / "icc.tif").pixels, PIXELS)


def test_an_hdr_picture_into_exr_or_pfm_is_written_as_the_light_it_shows(tmp_path: Path) -> None:
    """An HDR (PQ) picture described by code points into OpenEXR or PFM: its light as it shows (1.0 = 100 cd/m²,
    BT.709's primaries; PQ's reference white, 58 % signal, about 2.03), not its levels read as sRGB's (at most 1.0),
    and said; whole and in bands alike."""
    from classsr_cli.io import exr
    from classsr_cli.io.sdr import linear

    levels = np.array([[[0.0] * 3, [0.58] * 3, [0.75] * 3, [0.5, 0.3, 0.1]]])
    pixels = np.repeat(np.round(levels * 65535).astype(np.uint16), 2, axis=0)
    pic = Picture(pixels, nclx=Nclx(9, 16, 9, True))
    want = linear(pixels, 9, 16)
    assert 1.95 < want[0, 1, 0] < 2.1 and want[0, 2, 0] > 9  # 203 cd/m², about 1,000
    assert write_image(tmp_path / "out.pfm", pic) == [
        "PFM output: the HDR (PQ) picture's light written as it shows, in BT.709's primaries (1.0 = 100 cd/m², SDR's "
        "white)"]
    data = (tmp_path / "out.pfm").read_bytes()
    body = data.split(b"\n", 3)[3]
    got = np.frombuffer(body, "<f4").reshape(2, 4, 3)[::-1]  # stored bottom row first
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6)
    write_image(tmp_path / "out.exr", pic)
    write_image_rows(tmp_path / "bands.exr", pixels.shape[:2], 3, np.uint16, (pixels[:1], pixels[1:]), meta=pic.carried())
    for name in ("out.exr", "bands.exr"):
        light = exr.decode(ffmpeg_exe(), tmp_path / name)[..., :3]
        assert np.allclose(light, want, rtol=2e-3, atol=1e-3), name  # half floats


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


#: A PQ photo's light levels as a camera writes them: MaxCLL 1,500 and MaxFALL 400 cd/m²; a 4,000 cd/m² mastering
#: display (its primaries and white point in 0.00002 units, its luminance in 0.0001 cd/m²).
CLLI = _box(b"clli", (1500).to_bytes(2, "big") + (400).to_bytes(2, "big"))
MDCV = _box(b"mdcv", b"".join(v.to_bytes(2, "big") for v in (8500, 39850, 6550, 2300, 35400, 14600, 15635, 16450))
            + (40_000_000).to_bytes(4, "big") + (50).to_bytes(4, "big"))


def test_an_hdr_heics_light_levels_are_kept_in_heic_and_its_maxcll_is_the_tone_maps_peak(tmp_path: Path) -> None:
    """A PQ HEIC with MaxCLL and mastering display properties (``clli``, ``mdcv``, which libheif neither reads nor
    writes here): read (:attr:`Nclx.light`), kept in a HEIC output (ffmpeg, another reader, lists them there) and a
    PNG one (``cLLi``, ``mDCv``, read back alike), and a
    TIFF output is tone-mapped from its MaxCLL (1,500 cd/m²), as ``classsr video`` tone-maps a PQ video, not from
    1,000; the mastering display's peak where there is no MaxCLL; an HLG one keeps HLG's."""
    import io

    import pillow_heif

    from classsr_cli.io.heifbox import primary_properties, with_properties

    heic = io.BytesIO()
    pillow_heif.from_bytes("RGB;16", (48, 6), PIXELS.tobytes()).save(heic, quality=100, nclx_profile={
        "color_primaries": 9, "transfer_characteristics": 16, "matrix_coefficients": 9, "full_range_flag": 1})  # fmt: skip
    src = tmp_path / "camera.heic"
    src.write_bytes(with_properties(heic.getvalue(), [CLLI, MDCV]))
    pic = read_image(src)
    assert pic.nclx is not None and pic.nclx.light == (CLLI, MDCV) and pic.nclx.peak == 1500
    write_image(tmp_path / "out.heic", pic)
    assert primary_properties((tmp_path / "out.heic").read_bytes(), (b"clli", b"mdcv")) == [CLLI, MDCV]
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "out.heic")], capture_output=True,
                             text=True, timeout=60).stderr  # fmt: skip
    assert "MaxCLL=1500, MaxFALL=400" in listing and "max_luminance=4000.000000" in listing
    write_image(tmp_path / "out.tif", pic)
    got = read_image(tmp_path / "out.tif").pixels
    assert np.array_equal(got, to_sdr(pic.pixels, 9, 16, 1500)) and not np.array_equal(got, to_sdr(pic.pixels, 9, 16))
    assert Nclx(9, 16, 9, True, (MDCV,)).peak == 4000 and Nclx(9, 18, 9, True, (CLLI, MDCV)).peak == 1000
    # PNG (third edition) holds them beside its cICP: cLLi in 0.0001 cd/m², mDCv's primaries red, green, blue
    write_image(tmp_path / "out.png", pic)
    data = (tmp_path / "out.png").read_bytes()
    clli, mdcv = data[data.index(b"cLLi") + 4 : data.index(b"cLLi") + 12], data[data.index(b"mDCv") + 4 :][:24]
    assert clli == (15_000_000).to_bytes(4, "big") + (4_000_000).to_bytes(4, "big")
    assert mdcv == MDCV[16:20] + MDCV[8:16] + MDCV[20:32]  # (HEIF's order: green, blue, red)
    shown = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "out.png"), "-vf", "showinfo", "-f",
                            "null", "-"], capture_output=True, text=True, timeout=60).stderr  # fmt: skip
    heif_said = re.search(r"Mastering display metadata: (.*)", listing).group(1)  # type: ignore[union-attr]
    assert "MaxCLL=1500, MaxFALL=400" in shown and heif_said in shown  # ffmpeg reads the PNG as the HEIC, colours too
    back = read_image(tmp_path / "out.png")
    assert back.nclx is not None and back.nclx.light == (CLLI, MDCV) and back.nclx.peak == 1500


def test_a_10_bit_pq_avifs_light_levels_are_read_alike(tmp_path: Path) -> None:
    """An HDR AVIF (Chrome's, Lightroom's: PQ at 10 bits, decoded by ffmpeg) with ``clli`` and ``mdcv`` properties:
    read as a HEIC's are, so its TIFF output is tone-mapped from its MaxCLL and a HEIC output keeps them."""
    from classsr_cli.io.heifbox import primary_properties, with_properties

    made = tmp_path / "made.avif"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=48x32", "-frames:v", "1",
                    "-c:v", "libaom-av1", "-still-picture", "1", "-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020",
                    "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-color_range", "pc", str(made)],
                   check=True, timeout=60)  # fmt: skip
    # (ffmpeg's AVIF muxer writes its colr box unspecified: given BT.2020 and PQ, as a camera's or Chrome's says)
    data = made.read_bytes().replace(b"colrnclx\x00\x02\x00\x02\x00\x09", b"colrnclx\x00\x09\x00\x10\x00\x09")
    src = tmp_path / "hdr.avif"
    src.write_bytes(with_properties(data, [CLLI, MDCV]))
    pic = read_image(src)
    assert pic.pixels.dtype == np.uint16 and pic.nclx is not None and pic.nclx.transfer == 16
    assert pic.nclx.light == (CLLI, MDCV) and pic.nclx.peak == 1500
    write_image(tmp_path / "out.tif", pic)
    assert np.array_equal(read_image(tmp_path / "out.tif").pixels, to_sdr(pic.pixels, 9, 16, 1500))
    write_image(tmp_path / "out.heic", pic)
    assert primary_properties((tmp_path / "out.heic").read_bytes(), (b"clli", b"mdcv")) == [CLLI, MDCV]


def test_an_hdr_picture_into_avif_stays_hdr_at_10_bits_whole_or_in_bands(tmp_path: Path) -> None:
    """An HDR picture (PQ, BT.2020, with its light levels, EXIF and XMP) into AVIF is written at 10 bits by the bundled
    ffmpeg's libaom, tagged as it is (it was tone-mapped to SDR at 8 bits), its light levels, EXIF and XMP added
    (ffmpeg's AVIF writer writes none of them), read back within an 8-bit level on average, whole or in bands; with alpha
    (an auxiliary image) alike; an ICC-tagged 16-bit picture keeps its profile beside sRGB's code points."""
    from classsr_cli.io.heifbox import primary_properties

    y, x = np.mgrid[0:48, 0:96]
    smooth = np.stack([x * 650, y * 1300, (x + y) * 450], -1).astype(np.uint16)  # (its colour halved by 4:2:0)
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'
    pic = Picture(smooth, exif=exif.tobytes(), xmp=xmp, nclx=Nclx(9, 16, 9, True, (CLLI, MDCV)))
    assert write_image(tmp_path / "whole.avif", pic, quality=100) == ["AVIF is written at 10 bits per channel here: "
                                                                      "16-bit output rounded to 10"]  # fmt: skip
    assert write_image_rows(tmp_path / "bands.avif", smooth.shape[:2], 3, np.uint16, (smooth[:20], smooth[20:]),
                            meta=pic.carried(), quality=100) == write_image(tmp_path / "w2.avif", pic, quality=100)  # fmt: skip
    for name in ("whole.avif", "bands.avif"):
        back = read_image(tmp_path / name)
        assert back.pixels.dtype == np.uint16 and back.nclx is not None and back.nclx[:3] == (9, 16, 9), name
        assert back.nclx.light == (CLLI, MDCV) and back.exif is not None and b"Camera" in back.exif
        assert np.abs(back.pixels.astype(int) - smooth).mean() < 257, name  # (4:2:0 at 10 bits: 0.66 levels)
        assert (np.unique(back.pixels) % 257 != 0).mean() > 0.5  # more levels than 8 bits hold
        assert back.xmp == xmp and primary_properties((tmp_path / name).read_bytes(), (b"clli",)) == [CLLI]
    assert read_image(tmp_path / "whole.avif").exif == read_image(tmp_path / "bands.avif").exif
    alpha = np.full(smooth.shape[:2], 200, np.uint8)  # with alpha: its auxiliary image, the picture HDR alike
    said = write_image(tmp_path / "alpha.avif", Picture(smooth, alpha=alpha, nclx=Nclx(9, 16, 9, True)))
    assert said == ["AVIF is written at 10 bits per channel here: 16-bit output rounded to 10"]
    with Image.open(tmp_path / "alpha.avif") as im:  # (Pillow's 8-bit decoder, which reads the alpha)
        assert im.mode == "RGBA" and np.abs(np.asarray(im)[..., 3].astype(int) - 200).max() <= 1
    colr = primary_properties((tmp_path / "alpha.avif").read_bytes(), (b"colr",))
    assert [b[12:18] for b in colr] == [bytes([0, 9, 0, 16, 0, 9])]
    back = read_image(tmp_path / "alpha.avif")  # read back HDR, its alpha at 16 bits
    assert back.nclx is not None and back.nclx[:3] == (9, 16, 9) and back.alpha is not None
    assert back.alpha.dtype == np.uint16 and np.abs(back.alpha.astype(int) - 200 * 257).max() <= 257
    ramp = (np.arange(1024) * 64).astype(np.uint16)[None, :, None].repeat(4, 0)  # 16-bit gray: kept at 10 bits
    write_image(tmp_path / "ramp.avif", Picture(ramp), quality=100)
    back = read_image(tmp_path / "ramp.avif").pixels
    assert len(np.unique(back)) > 1000 and np.abs(back.astype(int) - ramp).mean() < 0.15 * 257  # (8 bits: 256)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write_image(tmp_path / "icc.avif", Picture(smooth, icc=icc))
    back = read_image(tmp_path / "icc.avif")
    assert back.icc == icc and back.pixels.dtype == np.uint16
    colr = primary_properties((tmp_path / "icc.avif").read_bytes(), (b"colr",))
    assert [b[8:12] for b in colr] == [b"prof", b"nclx"] and colr[1][12:18] == bytes([0, 1, 0, 13, 0, 6])


def test_light_in_cie_xyz_primaries_is_converted_as_absolute_xyz() -> None:
    """An EXR whose chromaticities are CIE XYZ's (red (1, 0), green (0, 1), blue (0, 0), white (1/3, 1/3): OpenEXR's
    Chromaticities/XYZ.exr, the same picture as its Rec709.exr) divided by zero (blue's y) and, adapted from its
    equal-energy white to D65, came out tinted: its values are absolute XYZ, so D65's white is white and Rec. 709's
    red is red. Another white (DCI-P3's) is still adapted."""
    from classsr_cli.io import sdr

    xyz = ((1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (1 / 3, 1 / 3))
    to709 = sdr._to_bt709(xyz)
    d65 = sdr._to_xyz(1) @ np.ones(3)  # (D65's XYZ: 0.9505, 1, 1.089)
    assert to709 @ d65 == pytest.approx(np.ones(3), abs=1e-6)
    assert to709 @ (sdr._to_xyz(1) @ np.array([1.0, 0.0, 0.0])) == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    dci = sdr._to_bt709(11)  # DCI-P3's white (0.314, 0.351) adapted to D65: its white is white
    assert dci @ np.ones(3) == pytest.approx(np.ones(3), abs=1e-3)
