"""classsr_cli.io.gainmap: an HDR JPEG's gain map (Ultra HDR, ISO 21496-1) read, turned and resized with the
picture, and written back behind it with an MPF index that Pillow's own MPF parser follows."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from classsr_cli.io import gainmap
from classsr_cli.io.image import Picture, read_image, write_image, write_image_rows

_Y, _X = np.mgrid[0:48, 0:64]
PICTURE = np.stack([_X * 4, _Y * 5, (_X + _Y) * 2], -1).astype(np.uint8)  # 64x48
GAIN = (_X[::4, ::4] * 16 + _Y[::4, ::4]).astype(np.uint8)  # 16x12, a quarter of the picture, as phones write it
GAIN_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" '
            b'hdrgm:GainMapMax="2.3" hdrgm:HDRCapacityMax="2.3"/></rdf:RDF></x:xmpmeta>')  # fmt: skip
ISO_PRIMARY = gainmap.ISO_URN + b"\x00\x00\x00\x00"  # the version alone
ISO_GAIN = gainmap.ISO_URN + bytes(range(40))  # the gain map's parameters (carried as they are)


def app2(payload: bytes) -> bytes:
    return b"\xff\xe2" + (len(payload) + 2).to_bytes(2, "big") + payload


def pillow_ultra_hdr(path: Path, *, orientation: int = 1) -> Path:
    """An Ultra HDR JPEG as Pillow's own MPO writer lays one out (little-endian MPF, its own offsets): the picture
    with the container directory's XMP (a wrong gain map length, which the writer is to correct) and EXIF."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    xmp = gainmap.primary_xmp(None, 999)
    Image.fromarray(PICTURE).save(path, format="MPO", save_all=True, append_images=[Image.fromarray(GAIN)], xmp=xmp,
                                  exif=exif.tobytes(), quality=95)  # fmt: skip
    return path


def parts(path: Path) -> tuple[Image.Image, Image.Image, list[dict[str, object]]]:
    """The picture, and the gain map found through Pillow's own parse of the MPF index; the MP entries."""
    data = path.read_bytes()
    first = Image.open(io.BytesIO(data))
    entries = JpegImagePlugin._getmp(first)[0xB002]  # type: ignore[attr-defined]
    start = int(entries[1]["DataOffset"]) + int(first.info["mpoffset"])
    second = Image.open(io.BytesIO(data[start : start + int(entries[1]["Size"])]))
    return first, second, entries


def test_an_ultra_hdr_jpeg_keeps_its_gain_map_turned_and_resized_with_the_picture(tmp_path: Path) -> None:
    """Read: the gain map turned by the picture's EXIF orientation (6: clockwise) as the picture is. Written as a JPEG
    four times larger: the gain map four times larger too, behind the picture, found through the MPF index by
    Pillow's parser, its length in the picture's XMP container directory; read back as it was written."""
    pic = read_image(pillow_ultra_hdr(tmp_path / "hdr.jpg", orientation=6))
    assert pic.source_format == "JPEG" and pic.notes == [] and pic.gain_map is not None
    assert pic.pixels.shape == (64, 48, 3) and pic.gain_map.of_size == (48, 64)
    assert np.abs(pic.gain_map.pixels[..., 0].astype(int) - np.rot90(GAIN, -1)).mean() < 2
    big = Picture(np.repeat(np.repeat(pic.pixels, 4, 0), 4, 1), exif=pic.exif, xmp=pic.xmp, gain_map=pic.gain_map)
    assert write_image(tmp_path / "big.jpg", big) == []
    first, second, entries = parts(tmp_path / "big.jpg")
    assert first.size == (192, 256) and second.size == (48, 64) and second.mode == "L"
    want = np.asarray(Image.fromarray(np.rot90(GAIN, -1).copy()).resize((48, 64), Image.Resampling.BICUBIC), int)
    assert np.abs(np.asarray(second, int) - want).mean() < 3
    assert entries[0]["DataOffset"] == 0 and entries[0]["Size"] + entries[1]["Size"] == (tmp_path / "big.jpg").stat().st_size
    assert re.findall(rb'Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="(\d+)"', first.info["xmp"]) == [
        str(entries[1]["Size"]).encode()]
    back = read_image(tmp_path / "big.jpg")
    assert back.gain_map is not None and back.gain_map.pixels.shape == (64, 48, 1) and back.gain_map.of_size == (192, 256)
    write_image_rows(tmp_path / "rows.jpg", (256, 192), 3, np.uint8, (big.pixels[:100], big.pixels[100:]),
                     meta=pic.carried())  # an output too large to hold whole: the same gain map  # fmt: skip
    assert parts(tmp_path / "rows.jpg")[1].size == (48, 64)


def test_the_gain_maps_own_xmp_and_iso_segments_are_carried_and_other_formats_say_they_drop_it(tmp_path: Path) -> None:
    """The gain map's hdrgm XMP and both ISO 21496-1 segments go out as they came; without the picture's XMP
    (``--strip-metadata``) an Ultra HDR 1.0 directory is written for it; a PNG output says it keeps no gain map."""
    second = io.BytesIO()
    Image.fromarray(GAIN).save(second, format="JPEG", xmp=GAIN_XMP, extra=app2(ISO_GAIN))
    first = io.BytesIO()
    Image.fromarray(PICTURE).save(first, format="JPEG", xmp=gainmap.primary_xmp(None, second.tell()),
                                  extra=app2(ISO_PRIMARY))  # fmt: skip
    (tmp_path / "iso.jpg").write_bytes(gainmap.jpeg_with(first.getvalue(), second.getvalue()))
    pic = read_image(tmp_path / "iso.jpg")
    assert pic.gain_map is not None and pic.gain_map.xmp == GAIN_XMP
    assert pic.gain_map.iso == (ISO_GAIN,) and pic.gain_map.primary_iso == (ISO_PRIMARY,)
    write_image(tmp_path / "out.jpg", pic.stripped())
    out_first, out_second, _ = parts(tmp_path / "out.jpg")
    assert (ISO_PRIMARY in [d for m, d in out_first.applist if m == "APP2"]
            and [d for m, d in out_second.applist if m == "APP2"] == [ISO_GAIN])  # fmt: skip
    assert out_second.info["xmp"] == GAIN_XMP and b'hdrgm:Version="1.0"' in out_first.info["xmp"]
    assert write_image(tmp_path / "out.png", pic) == [
        "PNG output: the HDR gain map (Ultra HDR) is not kept, only a JPEG output keeps it: the picture shows as SDR"]


def test_a_picture_without_a_gain_map_and_a_plain_multi_picture_jpeg_are_left_as_they_were(tmp_path: Path) -> None:
    """A stereo MPO (two pictures, no gain map) is still its first picture with a note; a plain JPEG has none."""
    Image.fromarray(PICTURE).save(tmp_path / "mpo.jpg", format="MPO", save_all=True,
                                  append_images=[Image.fromarray(PICTURE[::-1])])  # fmt: skip
    mpo = read_image(tmp_path / "mpo.jpg")
    assert mpo.gain_map is None and mpo.notes == ["MPO with 2 frames: only the first is upscaled"]
    Image.fromarray(PICTURE).save(tmp_path / "plain.jpg")
    assert read_image(tmp_path / "plain.jpg").gain_map is None


@pytest.mark.parametrize(
    ("xmp", "want"),
    [
        (None, b'Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="77"/>'),
        (b'<x:xmpmeta><Container:Item Item:Semantic="GainMap" Item:Length="5" Item:Mime="image/jpeg"/></x:xmpmeta>',
         b'<Container:Item Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="77"/>'),
        (b'<x:xmpmeta><Container:Item Item:Mime="image/jpeg" Item:Semantic="GainMap"></Container:Item></x:xmpmeta>',
         b'<Container:Item Item:Mime="image/jpeg" Item:Semantic="GainMap" Item:Length="77">'),
    ],
)
def test_the_pictures_xmp_gives_the_gain_maps_new_length(xmp: bytes | None, want: bytes) -> None:
    out = gainmap.primary_xmp(xmp, 77)
    assert out is not None and want in out and out.count(b"Item:Length=") == 1


def test_an_xmp_without_a_directory_is_kept_and_an_iso_gain_map_needs_none() -> None:
    own = b'<x:xmpmeta><rdf:Description dc:title="x"/></x:xmpmeta>'
    assert gainmap.primary_xmp(own, 77) == own  # the photo's rights and keywords are not replaced
    assert gainmap.primary_xmp(None, 77, ultra_hdr=False) is None


def _boxes(data: bytes, at: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """The ISO-BMFF boxes in ``data[at:end]``: (type, start, size)."""
    out, end = [], len(data) if end is None else end
    while at < end:
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        out.append((kind, at, size))
        at += size
    return out


def _heic_with_gain_map(path: Path) -> Path:
    """A HEIC as iPhones write one: its alpha plane (an auxiliary image, as pillow-heif writes it) relabelled as Apple's
    HDR gain map, the boxes that hold the longer type grown and the pictures' offsets (``iloc``) moved with them."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    Image.fromarray(np.dstack([PICTURE, GAIN.repeat(4, 0).repeat(4, 1)])).save(path)
    data = bytearray(path.read_bytes())
    old = b"urn:mpeg:hevc:2015:auxid:1"
    grow, urn = len(gainmap.APPLE_AUX) - len(old), data.index(old)

    def add(at: int, n: int) -> None:  # a big-endian number of n bytes at ``at``, grown
        data[at : at + n] = (int.from_bytes(data[at : at + n], "big") + grow).to_bytes(n, "big")

    top = {kind: (start, size) for kind, start, size in _boxes(bytes(data))}
    meta = top[b"meta"][0]
    assert top[b"mdat"][0] > meta  # libheif writes the pictures after the metadata: their offsets move
    inner = {kind: start for kind, start, _ in _boxes(bytes(data), meta + 12, meta + top[b"meta"][1])}
    assert inner[b"iloc"] < urn  # every edit below lies before the type: their places hold
    for at in (meta, inner[b"iprp"], data.index(b"ipco") - 4, data.rindex(b"auxC", 0, urn) - 4):
        add(at, 4)
    p, version = inner[b"iloc"] + 8, data[inner[b"iloc"] + 8]
    offset_size, length_size, base_size = data[p + 4] >> 4, data[p + 4] & 15, data[p + 5] >> 4
    index_size = data[p + 5] & 15 if version in (1, 2) else 0
    count_size = 4 if version == 2 else 2
    items, p = int.from_bytes(data[p + 6 : p + 6 + count_size], "big"), p + 6 + count_size
    for _ in range(items):
        p += count_size + (2 if version in (1, 2) else 0) + 2  # item ID, construction method, data reference
        if base_size:
            add(p, base_size)
        extents, p = int.from_bytes(data[p + base_size : p + base_size + 2], "big"), p + base_size + 2
        for _ in range(extents):
            if not base_size:
                add(p + index_size, offset_size)
            p += index_size + offset_size + length_size
    data[urn : urn + len(old)] = gainmap.APPLE_AUX
    path.write_bytes(bytes(data))
    return path


def test_a_heic_with_apples_hdr_gain_map_says_the_output_shows_as_sdr(tmp_path: Path) -> None:
    """An iPhone's HDR photo (a HEIC with Apple's gain map, an auxiliary image) is upscaled as its SDR picture with a
    note that the gain map is not kept; the same HEIC without it, and a JPEG, get none; an ISO 21496-1 ``tmap`` item
    (iOS 18's, Android's, Chrome's AVIF) is told apart."""
    path = _heic_with_gain_map(tmp_path / "iphone.heic")
    assert gainmap.in_heif(path) == "Apple's"
    pic = read_image(path)
    assert pic.alpha is None and np.abs(pic.pixels.astype(int) - PICTURE).mean() < 3  # still decodes: the picture
    said = [n for n in pic.notes if "gain map" in n]
    assert said == ["HEIF with an HDR gain map (Apple's): the SDR picture is upscaled and the gain map not kept, so the "
                    "output shows as SDR (only an Ultra HDR JPEG's gain map is carried)"]
    Image.fromarray(PICTURE).save(tmp_path / "plain.heic")
    assert gainmap.in_heif(tmp_path / "plain.heic") is None
    assert not any("gain map" in n for n in read_image(tmp_path / "plain.heic").notes)
    Image.fromarray(PICTURE).save(tmp_path / "p.jpg")
    assert gainmap.in_heif(tmp_path / "p.jpg") is None
    data = (tmp_path / "plain.heic").read_bytes()
    at = data.index(b"infe")  # the first item's type, as a tmap item's would read
    tmap = data[: at + 12] + b"tmap" + data[at + 16 :]  # version, flags, ID, protection index, type
    (tmp_path / "tmap.heic").write_bytes(tmap)
    assert data[at + 4] == 2 and gainmap.in_heif(tmp_path / "tmap.heic") == "ISO 21496-1"
