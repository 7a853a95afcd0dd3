"""classsr_cli.io.gainmap: an HDR JPEG's gain map (Ultra HDR, ISO 21496-1) read, turned and resized with the
picture, and written back behind it with an MPF index that Pillow's own MPF parser follows."""

from __future__ import annotations

import contextlib
import io
import re
import struct
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
    offset = first.info["mpoffset"] if "mpoffset" in first.info else gainmap._mpf_offset(path)  # (no XMP: none said)
    start = int(entries[1]["DataOffset"]) + int(offset)
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
        "PNG output: the HDR gain map (Ultra HDR) is not kept, a JPEG, HEIC or AVIF output keeps it: the picture shows "
        "as SDR"]


def test_a_picture_without_a_gain_map_and_a_plain_multi_picture_jpeg_are_left_as_they_were(tmp_path: Path) -> None:
    """An MPO of two pictures of no stated type (no gain map, no stereo pair) is still its first picture with a note; a
    plain JPEG has none, nor a camera's JPEG with a preview of itself (its MPF's large thumbnail, which Pillow opens as
    a second frame)."""
    Image.fromarray(PICTURE).save(tmp_path / "mpo.jpg", format="MPO", save_all=True,
                                  append_images=[Image.fromarray(PICTURE[::-1])])  # fmt: skip
    mpo = read_image(tmp_path / "mpo.jpg")
    assert mpo.gain_map is None and mpo.notes == ["MPO with 2 frames: only the first is upscaled"]
    first, preview = io.BytesIO(), io.BytesIO()
    Image.fromarray(PICTURE).save(first, format="JPEG", quality=95)
    Image.fromarray(PICTURE[::2, ::2]).save(preview, format="JPEG")
    for kind in gainmap.MP_PREVIEWS:
        (tmp_path / "camera.jpg").write_bytes(gainmap.jpeg_with(first.getvalue(), preview.getvalue(), types=(0x030000, kind)))
        with Image.open(tmp_path / "camera.jpg") as im:
            assert (im.format, getattr(im, "n_frames", 1)) == ("MPO", 2)
        camera = read_image(tmp_path / "camera.jpg")
        assert camera.notes == [] and camera.gain_map is None and camera.pixels.shape == PICTURE.shape
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
                    "output shows as SDR (an Ultra HDR JPEG's gain map is carried, an iPhone's whose headroom its EXIF "
                    "or XMP gives, and an ISO 21496-1 one that decodes)"]  # (this one has no EXIF: no headroom)
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


#: An ISO 21496-1 ``tmap`` item's data: version 0, then what a JPEG's gain map segment holds after its name (minimum
#: and writer version, flags, headroom fractions and one channel's fractions: its bytes are carried, not read).
TMAP = b"\x00" + bytes(4) + bytes([0]) + bytes(range(1, 57))


def iso_heif(path: Path, fmt: str = "HEIF", orientation: int = 1, in_idat: bool = False,
             properties: tuple[bytes, ...] = ()) -> Path:  # fmt: skip
    """A HEIF (or AVIF) with an ISO 21496-1 gain map, as libheif's and libavif's writers lay it out: the gain map a
    hidden image item, a ``tmap`` item holding :data:`TMAP` derived (``dimg``) from the primary picture and the gain
    map, in that order, with ``properties``; the picture's EXIF ``orientation`` made its turn (``irot``) by the writer,
    the gain map's none; ``in_idat``: the ``tmap`` data in the ``meta`` box's ``idat`` (construction method 1), as
    libavif stores it. Built from two files of one picture each, at the box level."""
    import struct

    import pillow_heif

    from classsr_cli.io import bmff, heifbox

    pillow_heif.register_heif_opener()
    picture, gain = io.BytesIO(), io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(PICTURE).save(picture, format=fmt, quality=95, exif=exif.tobytes())
    Image.fromarray(GAIN).save(gain, format=fmt, quality=95)
    meta, start, end, _ = heifbox._primary_image(picture.getvalue(), coded=False)
    other, _, _, coded = heifbox._primary_image(gain.getvalue())
    kind = next(t for i, t in map(heifbox._infe, other.infe) if i == other.primary)
    ids = [loc.item for loc in meta.locations] + [i for i, _ in meta.associations] + [meta.primary]
    g, t = max(ids) + 1, max(ids) + 2
    props = dict(other.associations)[other.primary]
    first = len(meta.ipco) + 1
    meta.ipco += [other.ipco[i - 1] for _, i in props]
    meta.associations.append((g, [(e, first + k) for k, (e, _) in enumerate(props)]))
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", g, 0) + kind + b"\x00", 2, 1))  # hidden
    meta.locations.append(heifbox._Item(g, 0, 0, 0, [(0, 0, len(coded))]))
    data = heifbox._written(picture.getvalue(), meta, start, end, coded)
    meta, start, end, _ = heifbox._primary_image(data, coded=False)
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", t, 0) + b"tmap\x00", 2))
    meta.associations.append((t, [(False, len(meta.ipco) + 1 + k) for k in range(len(properties))]))
    meta.ipco += properties
    meta.references.append((b"dimg", t, (meta.primary, g)))
    if in_idat:
        meta.iloc_version = max(meta.iloc_version, 1)  # (version 0 has no construction method)
        meta.boxes.append((b"idat", bmff.box(b"idat", TMAP)))
        meta.locations.append(heifbox._Item(t, 1, 0, 0, [(0, 0, len(TMAP))]))
        path.write_bytes(heifbox._written(data, meta, start, end))
    else:
        meta.locations.append(heifbox._Item(t, 0, 0, 0, [(0, 0, len(TMAP))]))
        path.write_bytes(heifbox._written(data, meta, start, end, TMAP))
    return path


@pytest.mark.parametrize(("fmt", "in_idat"), [("HEIF", False), ("AVIF", False), ("AVIF", True)])
def test_an_iso_gain_map_in_a_heic_or_avif_is_kept_in_a_jpeg_output(tmp_path: Path, fmt: str, in_idat: bool) -> None:
    """A HEIC or AVIF with an ISO 21496-1 gain map (a ``tmap`` item: a Samsung's HEIC, Lightroom's AVIF) is read (it
    was dropped with a note): the gain map decoded as the file's picture would be, its metadata carried into a JPEG
    output as the ISO 21496-1 segments of an Ultra HDR JPEG (the gain map's whole, the picture's its versions: the
    ``tmap`` data after its version byte), which reads back alike; a PNG output says it is not kept. A portrait photo's
    gain map (no turn of its own) is turned as the picture is; beside an Apple gain map without a headroom (iOS 18
    writes both), the ISO one is read."""
    src = iso_heif(tmp_path / f"photo.{'heic' if fmt == 'HEIF' else 'avif'}", fmt, in_idat=in_idat)
    assert gainmap.in_heif(src) == "ISO 21496-1"
    pic = read_image(src)
    assert not [n for n in pic.notes if "gain map" in n] and pic.gain_map is not None
    assert pic.gain_map.iso == (gainmap.ISO_URN + TMAP[1:],) and pic.gain_map.primary_iso == (gainmap.ISO_URN + TMAP[1:5],)
    assert np.abs(pic.gain_map.pixels[..., 0].astype(int) - GAIN).mean() < 3 and pic.gain_map.of_size == (64, 48)
    assert np.abs(pic.pixels.astype(int) - PICTURE).mean() < 3  # the picture still the primary one
    big = Picture(np.repeat(np.repeat(pic.pixels, 2, 0), 2, 1), exif=pic.exif, gain_map=pic.gain_map)
    assert write_image(tmp_path / "out.jpg", big) == []
    first, second, entries = parts(tmp_path / "out.jpg")
    assert second.size == (32, 24) and [d for m, d in second.applist if m == "APP2"] == [gainmap.ISO_URN + TMAP[1:]]
    assert gainmap.ISO_URN + TMAP[1:5] in [d for m, d in first.applist if m == "APP2"]
    # the Ultra HDR XMP too, as libultrahdr writes both (a reader of the XMP alone shows it as HDR): the same numbers
    made = gainmap._iso_from_xmp(second.info["xmp"])
    assert made is not None and len(made) == len(TMAP)
    want, got = (struct.unpack(">IIIIiIiIIIiIiI", d[6:]) for d in (TMAP, made))
    assert [n / d for n, d in zip(got[::2], got[1::2], strict=True)] == pytest.approx(
        [n / d for n, d in zip(want[::2], want[1::2], strict=True)], rel=1e-5)
    assert f'Item:Semantic="GainMap" Item:Mime="image/jpeg" Item:Length="{entries[1]["Size"]}"'.encode() in first.info["xmp"]
    back = read_image(tmp_path / "out.jpg")
    assert back.gain_map is not None and back.gain_map.iso == pic.gain_map.iso
    assert write_image(tmp_path / "out.png", pic) == [
        "PNG output: the HDR gain map (ISO 21496-1) is not kept, a JPEG, HEIC or AVIF output keeps it: the picture "
        "shows as SDR"]
    turned = read_image(iso_heif(tmp_path / f"turned.{fmt.lower()}", fmt, orientation=6))  # a portrait photo
    assert turned.pixels.shape == (64, 48, 3) and turned.gain_map is not None
    assert np.abs(turned.gain_map.pixels[..., 0].astype(int) - np.rot90(GAIN, -1)).mean() < 3
    if fmt == "HEIF":  # iOS 18's: Apple's gain map beside it, here without a headroom: the ISO one read
        from classsr_cli.io.heifbox import add_auxiliary

        aux = io.BytesIO()
        Image.fromarray(GAIN).save(aux, format="HEIF", quality=95)
        both = tmp_path / "ios18.heic"
        both.write_bytes(add_auxiliary(src.read_bytes(), aux.getvalue(), gainmap.APPLE_AUX))
        assert gainmap.in_heif(both) == "Apple's"
        got = read_image(both)
        assert got.gain_map is not None and got.gain_map.iso == pic.gain_map.iso and got.gain_map.apple_headroom is None


def test_an_iso_gain_map_stored_in_tiles_is_read_whole(tmp_path: Path) -> None:
    """A gain map stored as a grid of tiles (a ``grid`` item, hidden, as a large photo's may be: libheif writes a
    picture above its tile size so), its ``tmap`` item derived from the picture (a grid too) and it: read whole."""
    import pillow_heif

    from classsr_cli.io import bmff, heifbox

    ramp = np.tile((np.arange(64) * 4).astype(np.uint8), (48, 1))
    heif = pillow_heif.from_bytes(mode="RGB", size=(128, 96), data=np.repeat(np.repeat(PICTURE, 2, 0), 2, 1).tobytes())
    heif.add_frombytes(mode="L", size=(64, 48), data=ramp.tobytes())
    coded = io.BytesIO()
    heif.save(coded, quality=95, tile_size=32)  # (both pictures grids of 32x32 tiles)
    data = coded.getvalue()
    meta, start, end, _ = heifbox._primary_image(data, coded=False)
    grid = max(i for i, kind in map(heifbox._infe, meta.infe) if kind == b"grid")
    assert grid != meta.primary
    t = heifbox._new_item(meta)
    meta.infe = [b[:11] + bytes([b[11] | 1]) + b[12:] if heifbox._infe(b)[0] == grid else b for b in meta.infe]  # hidden
    meta.infe.append(bmff.full_box(b"infe", struct.pack(">HH", t, 0) + b"tmap\x00", 2))
    meta.references.append((b"dimg", t, (meta.primary, grid)))
    meta.locations.append(heifbox._Item(t, 0, 0, 0, [(0, 0, len(TMAP))]))
    (tmp_path / "tiled.heic").write_bytes(heifbox._written(data, meta, start, end, TMAP))
    pic = read_image(tmp_path / "tiled.heic")
    assert pic.notes == [] and pic.pixels.shape == (96, 128, 3) and pic.gain_map is not None
    assert pic.gain_map.pixels.shape == (48, 64, 1) and np.abs(pic.gain_map.pixels[..., 0].astype(int) - ramp).mean() < 2


#: A ``tmap`` item's own properties as an HDR AVIF gives its HDR rendition: BT.2020 primaries, PQ, its light levels.
ALTERNATE = (b"\x00\x00\x00\x13colrnclx\x00\x09\x00\x10\x00\x09\x80", b"\x00\x00\x00\x0cclli\x03\xe8\x01\x90")


@pytest.mark.parametrize(("fmt", "out"), [("HEIF", "heic"), ("AVIF", "avif"), ("HEIF", "avif"), ("AVIF", "heic")])
def test_an_iso_gain_map_is_kept_in_a_heic_or_avif_output_as_libavif_lays_one_out(
    tmp_path: Path, fmt: str, out: str
) -> None:
    """An ISO 21496-1 gain map (a Samsung's HEIC, Lightroom's AVIF) into a HEIC or AVIF output (it was dropped, with a
    note): its gain map resized with the picture as a hidden image, a ``tmap`` item with the metadata and its HDR
    rendition's properties as they came, derived from the picture and the gain map, the two pictures an ``altr`` group
    (libheif reads it so: the ``tmap`` item first) and the ``tmap`` brand; read back alike, the picture as before.
    libavif (Pillow's) checks the ``tmap`` item as it opens an AVIF: the output opens, and the same file with the
    metadata's gamma made 0 in place is refused, as a gain map written wrong would make every reader refuse it."""
    import pillow_heif

    from classsr_cli.io import heifbox

    src = iso_heif(tmp_path / f"photo.{fmt.lower()}", fmt, properties=ALTERNATE)
    pic = read_image(src)
    big = Picture(np.repeat(np.repeat(pic.pixels, 2, 0), 2, 1), exif=pic.exif, gain_map=pic.gain_map)
    path = tmp_path / f"big.{out}"
    assert write_image(path, big) == []
    data = path.read_bytes()
    brands = data[16 : int.from_bytes(data[:4], "big")]
    assert b"tmap" in [brands[k : k + 4] for k in range(0, len(brands), 4)]
    found = heifbox.tone_map(data)
    assert found is not None and found.data == TMAP and found.properties == ALTERNATE
    assert found.kind == (b"hvc1" if out == "heic" else b"av01")
    back = read_image(path)
    assert back.notes == [] and np.abs(back.pixels.astype(int) - big.pixels).mean() < 3
    assert back.gain_map is not None and back.gain_map.of_size == (128, 96) and back.gain_map.iso == pic.gain_map.iso
    want = pic.gain_map.resized(128, 96).pixels.astype(int)
    assert back.gain_map.pixels.shape == want.shape and np.abs(back.gain_map.pixels.astype(int) - want).mean() < 3
    if out == "heic":
        heif = pillow_heif.open_heif(path)
        assert [(g["type"], g["entities"][1]) for g in heif.info["entity_groups"]] == [("altr", 1)]
        assert heifbox.primary_properties(data, (b"ispe",), heif.info["entity_groups"][0]["entities"][0]) == [
            b"\x00\x00\x00\x14ispe" + struct.pack(">III", 0, 128, 96)]  # the tmap item's: the picture's size
    else:
        with Image.open(path) as im:
            im.load()
        wrong = data.replace(TMAP, TMAP[:38] + bytes(4) + TMAP[42:])  # (the one channel's gamma numerator)
        assert wrong != data
        with pytest.raises(Exception, match="tone mapped"), Image.open(io.BytesIO(wrong)) as im:
            im.load()


def test_an_hdr_pictures_gain_map_stays_with_it_in_heic_and_is_not_kept_where_the_picture_is_tone_mapped(
    tmp_path: Path,
) -> None:
    """An HDR (PQ) picture with an ISO 21496-1 gain map (an HDR AVIF's, which gives its SDR rendition): a HEIC output
    keeps both, the picture tagged PQ; a JPEG output, whose picture is tone-mapped to SDR, no longer matches the gain
    map: it is not kept (it would have been written behind the SDR picture, read as the HDR one's), and said."""
    from classsr_cli.io.image import Nclx

    gain = gainmap.GainMap(GAIN[..., None], None, (gainmap.ISO_URN + TMAP[1:],), (), (64, 48))
    hdr = Picture(PICTURE.astype(np.uint16) * 257, nclx=Nclx(9, 16, 9, True), gain_map=gain, depth=10)
    assert write_image(tmp_path / "hdr.heic", hdr) == []
    back = read_image(tmp_path / "hdr.heic")
    assert back.nclx is not None and back.nclx.transfer == 16 and back.gain_map is not None
    said = write_image(tmp_path / "sdr.jpg", back)
    assert "the HDR gain map is not kept: it was made for the HDR picture, tone-mapped here; a HEIC or AVIF output " \
           "keeps both" in said and any("tone-mapped to SDR" in n for n in said)  # fmt: skip
    assert read_image(tmp_path / "sdr.jpg").gain_map is None
    rows = write_image_rows(tmp_path / "rows.jpg", (48, 64), 3, np.uint16, [back.pixels], meta=back.carried())
    assert rows == said and read_image(tmp_path / "rows.jpg").gain_map is None


def test_an_ultra_hdr_jpegs_gain_map_goes_into_a_heic_or_avif_by_its_iso_metadata_else_its_xmp(tmp_path: Path) -> None:
    """An Ultra HDR JPEG's ISO 21496-1 segment becomes a HEIC output's ``tmap`` item (a version byte before it); where
    it has none, or one libavif would refuse (a gamma of 0: the AVIF would not open), its XMP is made that metadata as
    libultrahdr converts it (its range in stops, the defaults it leaves out: gamma 1, offsets 1/64); an XMP that
    describes none (no capacity) leaves it out of an AVIF, with a note that a JPEG output keeps it."""
    from classsr_cli.io import heifbox

    def ultra_hdr(path: Path, iso: bytes | None, xmp: bytes = GAIN_XMP) -> Picture:
        second = io.BytesIO()
        Image.fromarray(GAIN).save(second, format="JPEG", xmp=xmp, **({"extra": app2(iso)} if iso else {}))
        first = io.BytesIO()
        Image.fromarray(PICTURE).save(first, format="JPEG", xmp=gainmap.primary_xmp(None, second.tell()),
                                      **({"extra": app2(ISO_PRIMARY)} if iso else {}))  # fmt: skip
        path.write_bytes(gainmap.jpeg_with(first.getvalue(), second.getvalue()))
        return read_image(path)

    pic = ultra_hdr(tmp_path / "iso.jpg", gainmap.ISO_URN + TMAP[1:])
    assert write_image(tmp_path / "out.heic", pic) == []
    found = heifbox.tone_map((tmp_path / "out.heic").read_bytes())
    assert found is not None and found.data == TMAP and found.properties == ()
    bad = ultra_hdr(tmp_path / "bad.jpg", gainmap.ISO_URN + TMAP[1:38] + bytes(4) + TMAP[42:])
    for n, picture in enumerate((ultra_hdr(tmp_path / "xmp.jpg", None), bad)):
        assert write_image(tmp_path / f"out{n}.avif", picture) == []
        found = heifbox.tone_map((tmp_path / f"out{n}.avif").read_bytes())
        assert found is not None and found.data[:6] == b"\x00" + bytes(4) + b"\x40"  # one channel, the picture's colours
        values = struct.unpack(">IIII", found.data[6:22]) + struct.unpack(">iIiIIIiIiI", found.data[22:])
        fractions = [values[k] / values[k + 1] for k in range(0, len(values), 2)]
        assert fractions == pytest.approx([0, 2.3, 0, 2.3, 1, 1 / 64, 1 / 64], abs=1e-6)
    none = ultra_hdr(tmp_path / "none.jpg", None, GAIN_XMP.replace(b' hdrgm:HDRCapacityMax="2.3"', b""))
    assert write_image(tmp_path / "none.avif", none) == [
        "AVIF output: the HDR gain map (Ultra HDR) is not kept, only a JPEG output keeps it: the picture shows as SDR"]
    assert heifbox.tone_map((tmp_path / "none.avif").read_bytes()) is None


def test_an_ultra_hdr_xmp_with_values_per_channel_in_elements_gives_three_channels_of_metadata() -> None:
    """``hdrgm`` properties written as elements, a channel's each in an ``rdf:Seq`` (as Adobe writes a colour gain
    map), give three channels' metadata; an HDR picture's (``BaseRenditionIsHDR``) or one out of range gives none."""
    seq = "".join(f"<rdf:li>{v}</rdf:li>" for v in (1.5, 2.0, 2.5))
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           '<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" '
           f'hdrgm:HDRCapacityMax="2.5"><hdrgm:GainMapMax><rdf:Seq>{seq}</rdf:Seq></hdrgm:GainMapMax>'
           "<hdrgm:Gamma>1.2</hdrgm:Gamma></rdf:Description></rdf:RDF></x:xmpmeta>").encode()  # fmt: skip
    data = gainmap._iso_from_xmp(xmp)
    assert data is not None and data[5] == 0xC0 and len(data) == 6 + 16 + 3 * 40
    tops = [struct.unpack_from(">iI", data, 22 + 40 * c + 8) for c in range(3)]
    assert [n / d for n, d in tops] == pytest.approx([1.5, 2.0, 2.5])
    assert all(struct.unpack_from(">II", data, 22 + 40 * c + 16) == (round(1.2 * 2**20), 2**20) for c in range(3))
    assert gainmap._iso_from_xmp(xmp.replace(b'hdrgm:Version="1.0"', b'hdrgm:Version="1.0" hdrgm:BaseRenditionIsHDR="True"')) is None
    assert gainmap._iso_from_xmp(xmp.replace(b'HDRCapacityMax="2.5"', b'HDRCapacityMax="-1"')) is None
    assert gainmap._iso_from_xmp(b"<x:xmpmeta") is None


def apple_note(m33: float, m48: float) -> bytes:
    """An iPhone's maker note as it holds the two HDR numbers: its name, version and byte order, an IFD of tags 33
    and 48 (signed rationals), their values at offsets from the note's start."""
    values = 14 + 2 + 2 * 12 + 4
    entries = struct.pack(">HHII", 33, 10, 1, values) + struct.pack(">HHII", 48, 10, 1, values + 8)
    numbers = struct.pack(">iiii", round(m33 * 1e6), 1_000_000, round(m48 * 1e6), 1_000_000)
    return b"Apple iOS\x00\x00\x01MM" + struct.pack(">H", 2) + entries + bytes(4) + numbers


#: The XMP an iPhone HEIC's gain map (its auxiliary image) is described by: its version (iPhone 13 Pro Max's, iOS 15).
APPLE_AUX_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 6.0.0"><rdf:RDF '
                 b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
                 b'xmlns:HDRGainMap="http://ns.apple.com/HDRGainMap/1.0/"><HDRGainMap:HDRGainMapVersion>65536'
                 b"</HDRGainMap:HDRGainMapVersion></rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip


def iphone_heic(path: Path, m33: float = 1.01, m48: float = 0.005) -> Path:
    """An iPhone HDR photo: the picture (with EXIF holding Apple's maker note, XMP its gain map version) and the gain
    map as an auxiliary image of Apple's type described by its own XMP (:data:`APPLE_AUX_XMP`; put in by
    :func:`classsr_cli.io.heifbox.add_auxiliary`; libheif reads it back, so the layout is checked by another
    reader)."""
    import pillow_heif

    from classsr_cli.io.heifbox import add_auxiliary

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif.get_ifd(0x8769)[0x927C] = apple_note(m33, m48)
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:HDRGainMap="http://ns.apple.com/HDRGainMap/1.0/" HDRGainMap:HDRGainMapVersion="65536"/>'
           b"</rdf:RDF></x:xmpmeta>")  # fmt: skip
    picture, gain = io.BytesIO(), io.BytesIO()
    Image.fromarray(PICTURE).save(picture, format="HEIF", quality=95, exif=exif.tobytes(), xmp=xmp)
    Image.fromarray(GAIN).save(gain, format="HEIF", quality=95)
    path.write_bytes(add_auxiliary(picture.getvalue(), gain.getvalue(), gainmap.APPLE_AUX, APPLE_AUX_XMP))
    return path


def _aux_xmp(path: Path) -> bytes | None:
    """The XMP that describes the HEIC ``path``'s Apple gain map (its auxiliary image), as libheif finds the image."""
    import pillow_heif

    from classsr_cli.io import heifbox

    saved, pillow_heif.options.AUX_IMAGES = pillow_heif.options.AUX_IMAGES, True
    try:
        ids = pillow_heif.open_heif(path).info["aux"][gainmap.APPLE_AUX.decode()]
    finally:
        pillow_heif.options.AUX_IMAGES = saved
    return heifbox.xmp_of(path.read_bytes(), ids[0])


def iphone_jpeg(path: Path) -> Path:
    """An iPhone's JPEG HDR photo ("Most Compatible"): the picture with Apple's maker note and gain map version, its
    gain map a second JPEG (XMP naming Apple's auxiliary type) behind an MPF index."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x927C] = apple_note(1.01, 0.005)
    gain, picture = io.BytesIO(), io.BytesIO()
    Image.fromarray(GAIN).save(gain, format="JPEG", quality=95, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
                               b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                               b'xmlns:apdi="http://ns.apple.com/pixeldatainfo/1.0/" apdi:AuxiliaryImageType="'
                               + gainmap.APPLE_AUX + b'"/></rdf:RDF></x:xmpmeta>')  # fmt: skip
    Image.fromarray(PICTURE).save(picture, format="JPEG", quality=95, exif=exif.tobytes(),
                                  xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
                                  b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                                  b'xmlns:HDRGainMap="http://ns.apple.com/HDRGainMap/1.0/" '
                                  b'HDRGainMap:HDRGainMapVersion="65536"/></rdf:RDF></x:xmpmeta>')  # fmt: skip
    path.write_bytes(gainmap.jpeg_with(picture.getvalue(), gain.getvalue()))
    return path


def test_an_iphones_jpeg_with_apples_gain_map_keeps_it_as_ultra_hdr_or_in_a_heic(tmp_path: Path) -> None:
    """An iPhone's JPEG whose second picture is Apple's gain map: read with the headroom its maker note gives (it was
    dropped, said as an MPO's second frame), into a JPEG output as Ultra HDR's, into a HEIC one as Apple's auxiliary image."""
    pic = read_image(iphone_jpeg(tmp_path / "IMG_0002.JPG"))
    assert pic.gain_map is not None and pic.gain_map.apple_headroom == pytest.approx(2 ** (-70 * 0.005 + 3.0))
    assert np.abs(pic.gain_map.pixels[..., 0].astype(int) - GAIN).mean() < 2 and not pic.notes
    write_image(tmp_path / "out.jpg", pic)
    _, second, _ = parts(tmp_path / "out.jpg")
    assert b"hdrgm:GainMapMax" in second.info["xmp"]
    write_image(tmp_path / "out.heic", pic)
    back = read_image(tmp_path / "out.heic")
    assert back.gain_map is not None and back.gain_map.apple_headroom == pic.gain_map.apple_headroom
    xmp = _aux_xmp(tmp_path / "out.heic")  # described by its version, as an iPhone's HEIC describes it
    assert xmp is not None and b"<HDRGainMap:HDRGainMapVersion>65536</HDRGainMap:HDRGainMapVersion>" in xmp


def test_apples_headroom_comes_from_the_maker_note_by_its_formula_or_from_the_xmp() -> None:
    """The headroom of an iPhone's gain map, from the maker note's tags 33 and 48 on each branch of Apple's formula
    (2 to the stops, at least 1), and from the XMP's ``HDRGainMapHeadroom`` first where it is given."""
    def exif(m33: float, m48: float) -> bytes:
        e = Image.Exif()
        e.get_ifd(0x8769)[0x927C] = apple_note(m33, m48)
        return e.tobytes()

    for m33, m48, stops in ((0.5, 0.005, 1.7), (0.5, 0.5, 1.5505), (1.2, 0.005, 2.65), (1.2, 2.0, 1.697),
                            (1.2, 20.0, 0.0)):  # fmt: skip
        assert gainmap.apple_headroom(exif(m33, m48), None) == pytest.approx(2**stops, rel=1e-5), (m33, m48)
    assert gainmap.apple_headroom(exif(1.2, 0.005), b'<r HDRGainMap:HDRGainMapHeadroom="3.25"/>') == 3.25
    assert gainmap.apple_headroom(None, b"<HDRGainMap:HDRGainMapHeadroom>2.5</HDRGainMap:HDRGainMapHeadroom>") == 2.5
    assert gainmap.apple_headroom(Image.Exif().tobytes(), None) is None  # no maker note
    assert gainmap.apple_headroom(exif(1.2, 0.005)[:40], None) is None  # cut short: none, no exception


def test_a_portrait_iphone_heics_gain_map_is_turned_as_the_picture_is(tmp_path: Path) -> None:
    """An iPhone HEIC shot upright stores its picture sideways with a turn (``irot``, and a mirror: ``imir``) that
    libheif applies; a gain map with no turn of its own is turned (and mirrored) alike, in the properties' order,
    so it covers the picture as it shows (it was dropped, its shape the picture's turned); one with its own turn,
    which libheif applies, is not turned twice."""
    from classsr_cli.io import bmff, heifbox

    src = iphone_heic(tmp_path / "IMG_0003.HEIC")
    for props, turn in (([b"irot\x03"], lambda a: np.rot90(a, 3)), ([b"irot\x01", b"imir\x00"], lambda a: np.flipud(np.rot90(a))),
                        ([b"imir\x01"], np.fliplr)):  # fmt: skip
        turned = tmp_path / "turned.heic"
        turned.write_bytes(heifbox.with_properties(src.read_bytes(), [bmff.box(p[:4], p[4:]) for p in props]))
        pic = read_image(turned)
        assert np.abs(pic.pixels.astype(int) - turn(PICTURE)).mean() < 3, props  # (libheif's turn: the reference)
        assert pic.gain_map is not None and not [n for n in pic.notes if "gain map" in n], props
        assert np.abs(pic.gain_map.pixels[..., 0].astype(int) - turn(GAIN)).mean() < 2, props
    picture, gain = io.BytesIO(), io.BytesIO()
    Image.fromarray(PICTURE).save(picture, format="HEIF", quality=95, exif=read_image(src).exif)
    Image.fromarray(GAIN).save(gain, format="HEIF", quality=95)
    rot = [bmff.box(b"irot", b"\x01")]
    own = heifbox.add_auxiliary(heifbox.with_properties(picture.getvalue(), rot),
                                heifbox.with_properties(gain.getvalue(), rot), gainmap.APPLE_AUX)
    (tmp_path / "own.heic").write_bytes(own)
    aux = max(i for i in range(1, 64) if heifbox.primary_properties(own, (b"hvcC",), i))  # (the item added last)
    assert heifbox.primary_properties(own, (b"irot",), aux) == rot
    pic = read_image(tmp_path / "own.heic")
    assert pic.gain_map is not None and np.abs(pic.gain_map.pixels[..., 0].astype(int) - np.rot90(GAIN)).mean() < 2


def test_an_iphones_gain_map_is_kept_in_a_heic_output_and_made_ultra_hdr_in_a_jpeg_one(tmp_path: Path) -> None:
    """An iPhone HDR photo upscaled x2: a HEIC output holds the gain map again as Apple's auxiliary image (libheif reads
    it), described by its own XMP (its version) as the source's was, the headroom its EXIF gives unchanged, its values the source's resized, and beside it as an ISO 21496-1 one
    that brightens alike (as iOS 18 writes both, for readers other than Apple's); a JPEG output holds it as an Ultra HDR
    gain map whose gain is Apple's (1 + (headroom - 1) x the Rec. 709-decoded value) within its 8-bit steps, the
    picture's XMP describing it beside Apple's own property. A PNG says it is not kept; a HEIC without EXIF too."""
    src = iphone_heic(tmp_path / "IMG_0001.HEIC")
    headroom = 2 ** (-70 * 0.005 + 3.0)
    pic = read_image(src)
    assert not [n for n in pic.notes if "gain map" in n]
    assert pic.gain_map is not None and pic.gain_map.apple_headroom == pytest.approx(headroom, rel=1e-5)
    assert np.abs(pic.gain_map.pixels[..., 0].astype(int) - GAIN).mean() < 2  # (HEVC-coded)
    big = Picture(np.asarray(Image.fromarray(pic.pixels).resize((128, 96))), None, pic.icc, pic.exif,
                  xmp=pic.xmp, gain_map=pic.gain_map)  # fmt: skip
    want = np.asarray(Image.fromarray(pic.gain_map.pixels[..., 0]).resize((32, 24), Image.Resampling.BICUBIC))

    heic = tmp_path / "out.heic"
    assert not [n for n in write_image(heic, big) if "gain map" in n]
    assert _aux_xmp(src) == _aux_xmp(heic) == APPLE_AUX_XMP  # its own XMP (its version) kept with it
    back = read_image(heic)
    assert back.gain_map is not None and back.gain_map.apple_headroom == pytest.approx(headroom, rel=1e-5)
    assert back.gain_map.pixels.shape == (24, 32, 1) and np.abs(back.gain_map.pixels[..., 0].astype(int) - want).mean() < 2
    assert np.abs(back.pixels.astype(int) - big.pixels).mean() < 3
    iso = gainmap.read_iso(heic, (128, 96))  # and an ISO 21496-1 one beside it, as iOS 18 writes, for other readers
    assert iso is not None and iso.pixels.shape == (24, 32, 1)
    gains = struct.unpack(">iIiIIIiIiI", iso.iso[0][len(gainmap.ISO_URN) + 21 :])
    assert gains[2] / gains[3] == pytest.approx(np.log2(headroom), abs=1e-5)
    stops = iso.pixels[..., 0].astype(np.float64) / 255 * np.log2(headroom)
    assert np.abs(stops - np.log2(gainmap.apple_gain(want, headroom))).mean() < 0.03
    import pillow_heif

    groups = pillow_heif.open_heif(heic).info.get("entity_groups") or []
    assert [g["type"] for g in groups] == ["altr"], groups  # libheif reads the file, the tmap item's group

    jpeg = tmp_path / "out.jpg"
    assert not [n for n in write_image(jpeg, big) if "gain map" in n]
    first, second, _ = parts(jpeg)
    xmp = first.info["xmp"]
    assert b'hdrgm:Version="1.0"' in xmp and b"HDRGainMapVersion" in xmp  # Ultra HDR's and Apple's, side by side
    length = int(re.search(rb'Item:Semantic="GainMap"[^>]*Item:Length="(\d+)"', xmp).group(1))  # type: ignore[union-attr]
    assert length == len(jpeg.read_bytes()) - int(first.info["mpoffset"]) - int(parts(jpeg)[2][1]["DataOffset"])
    top = float(re.search(rb'hdrgm:GainMapMax="([0-9.]+)"', second.info["xmp"]).group(1))  # type: ignore[union-attr]
    assert top == pytest.approx(np.log2(headroom), abs=1e-5)
    stops = np.asarray(second.convert("L"), np.float64) / 255 * top  # Ultra HDR: log2 gain, gamma 1, no offsets
    assert np.abs(stops - np.log2(gainmap.apple_gain(want, headroom))).mean() < 0.02
    again = read_image(jpeg)
    assert again.gain_map is not None and again.gain_map.apple_headroom is None  # now an Ultra HDR JPEG

    said = [n for n in write_image(tmp_path / "out.png", big) if "gain map" in n]
    assert said == ["PNG output: the HDR gain map (an iPhone's) is not kept, a JPEG, HEIC or AVIF output keeps it: the "
                    "picture shows as SDR"]  # fmt: skip
    write_image(tmp_path / "bare.jpg", big.stripped())
    assert read_image(tmp_path / "bare.jpg").gain_map is not None  # an Ultra HDR JPEG needs no EXIF
    # an AVIF, or a HEIC without the EXIF that gives Apple's headroom: as ISO 21496-1's, brightening alike
    for out, picture in (("out.avif", big), ("bare.heic", big.stripped())):
        assert not [n for n in write_image(tmp_path / out, picture) if "gain map" in n]
        back = read_image(tmp_path / out)
        assert back.gain_map is not None and back.gain_map.apple_headroom is None and back.gain_map.iso
        gains = struct.unpack(">iIiIIIiIiI", back.gain_map.iso[0][len(gainmap.ISO_URN) + 21 :])
        assert gains[2] / gains[3] == pytest.approx(np.log2(headroom), abs=1e-5) and gains[0] == gains[6] == gains[8] == 0
        stops = back.gain_map.pixels[..., 0].astype(np.float64) / 255 * np.log2(headroom)
        assert np.abs(stops - np.log2(gainmap.apple_gain(want, headroom))).mean() < 0.03


def test_an_auxiliary_image_goes_into_a_tiled_heic_with_metadata_items_and_leaves_the_picture_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """:func:`~classsr_cli.io.heifbox.add_auxiliary` into a HEIC of a grid of tiles (its ``iref`` already referring
    tiles and EXIF) with EXIF and XMP items: libheif decodes the picture, EXIF and XMP as before and the auxiliary
    image as coded; a file it cannot follow raises ``ValueError``."""
    import pillow_heif

    from classsr_cli.io.heifbox import add_auxiliary

    monkeypatch.setattr(pillow_heif.options, "AUX_IMAGES", True)  # (classsr's opener turns them off)
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (300, 520, 3), dtype=np.uint8)
    out, aux = io.BytesIO(), io.BytesIO()
    pillow_heif.from_bytes("RGB", (520, 300), photo.tobytes()).save(out, quality=90, tile_size=256,
                                                                      exif=Image.Exif().tobytes(), xmp=b"<x/>")  # fmt: skip
    Image.fromarray(GAIN).save(aux, format="HEIF", quality=95)
    both = add_auxiliary(out.getvalue(), aux.getvalue(), gainmap.APPLE_AUX)
    before, after = pillow_heif.open_heif(io.BytesIO(out.getvalue())), pillow_heif.open_heif(io.BytesIO(both))
    assert np.array_equal(np.asarray(after.to_pillow()), np.asarray(before.to_pillow()))
    assert after.info["exif"] == before.info["exif"] and after.info["xmp"] == before.info["xmp"]
    (aux_id,) = after.info["aux"][gainmap.APPLE_AUX.decode()]
    alone = np.asarray(pillow_heif.open_heif(io.BytesIO(aux.getvalue())).to_pillow())
    assert np.array_equal(np.asarray(after.get_aux_image(aux_id).to_pillow()), alone)
    with pytest.raises(ValueError):
        add_auxiliary(b"\x00\x00\x00\x10ftypheic\x00\x00\x00\x00", aux.getvalue(), gainmap.APPLE_AUX)
    from classsr_cli.io.heifbox import with_properties

    rng, whole = np.random.default_rng(5), out.getvalue()
    for _ in range(200):  # damaged metadata: a ValueError, never another exception
        damaged = np.frombuffer(whole, np.uint8).copy()
        damaged[rng.integers(0, 700, 4)] = rng.integers(0, 256, 4)
        for edit in (lambda d: add_auxiliary(d, aux.getvalue(), gainmap.APPLE_AUX),
                     lambda d: with_properties(d, [b"\x00\x00\x00\x0cclli\x00\x01\x00\x02"])):  # fmt: skip
            with contextlib.suppress(ValueError):
                edit(damaged.tobytes())
