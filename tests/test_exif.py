"""A camera's EXIF as it wrote it, through classsr: its maker note's values found where its offsets say and its tags'
types kept, in every output."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.io import exif
from classsr_cli.io.image import read_image, write_image

#: The bytes a maker note's out-of-line value holds (a lens name, say), which a reader must find after the upscale.
PAYLOAD = b"LUMIX G 12-32 mm"


def _exif(kind: str, orientation: int = 6, off: int = 0) -> bytes:
    """Little-endian EXIF as a camera writes it: IFD0 (make, orientation, Exif IFD), the Exif IFD (a maker note and an
    Interoperability IFD), the maker note a ``kind``: ``panasonic`` (a header, then an IFD whose values are found by
    offsets from the TIFF header), ``canon`` (no header, such offsets, a footer giving the block's place) or ``fuji``
    (a header with the IFD's place, offsets from the maker note's start); ``off``: its offsets that many bytes off
    (a file an earlier tool moved the maker note in without them, its Canon footer still giving the old place)."""
    make = b"Panasonic\x00"
    ifd0, exif_at = 8, 8 + 2 + 12 * 3 + 4 + len(make)
    interop_at = exif_at + 2 + 12 * 2 + 4
    note_at = interop_at + 2 + 12 + 4
    header = {"panasonic": b"Panasonic\x00\x00\x00", "canon": b"", "fuji": b"FUJIFILM\x0c\x00\x00\x00"}[kind]
    base = note_at if kind == "fuji" else 0  # what the maker note's offsets count from
    ifd_at = note_at + len(header)
    value_at = ifd_at + 2 + 12 * 2 + 4 - base + off
    note = header + struct.pack("<H", 2) + struct.pack("<HHIHH", 0x0001, 3, 1, 2, 0)
    note += struct.pack("<HHII", 0x0025, 7, len(PAYLOAD), value_at) + struct.pack("<I", 0) + PAYLOAD
    if kind == "canon":
        note += b"II*\x00" + struct.pack("<I", note_at + off)
    tiff = b"II*\x00" + struct.pack("<I", ifd0) + struct.pack("<H", 3)
    tiff += struct.pack("<HHII", 0x010F, 2, len(make), 8 + 2 + 36 + 4) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff += struct.pack("<HHII", 0x8769, 4, 1, exif_at) + struct.pack("<I", 0) + make
    tiff += struct.pack("<H", 2) + struct.pack("<HHII", 0x927C, 7, len(note), note_at)
    tiff += struct.pack("<HHII", 0xA005, 4, 1, interop_at) + struct.pack("<I", 0)
    tiff += struct.pack("<H", 1) + struct.pack("<HHI4s", 0x0001, 2, 4, b"R98\x00") + struct.pack("<I", 0)
    assert len(tiff) == note_at
    return b"Exif\x00\x00" + tiff + note


def _read_payload(exif: bytes, kind: str) -> tuple[bytes, int]:
    """The maker note's out-of-line value as a reader finds it in ``exif`` (counting as the maker's format says), and
    the maker note entry's TIFF type."""
    tiff = exif[6:] if exif[:6] == b"Exif\x00\x00" else exif
    order = "<" if tiff[:2] == b"II" else ">"

    def entries(at: int, o: str = order) -> dict[int, tuple[int, int, int]]:
        (n,) = struct.unpack(o + "H", tiff[at : at + 2])
        return {t: (k, c, v) for t, k, c, v in (struct.unpack(o + "HHII", tiff[at + 2 + 12 * i : at + 14 + 12 * i])
                                                for i in range(n))}  # fmt: skip

    exif_ifd = entries(struct.unpack(order + "I", tiff[4:8])[0])[0x8769][2]
    kind_of, _, at = entries(exif_ifd)[0x927C]
    header = {"panasonic": 12, "canon": 0, "fuji": 12}[kind]
    _, n, value = entries(at + header, "<")[0x0025]  # (the maker's own byte order)
    start = value + (at if kind == "fuji" else 0)
    return tiff[start : start + n], kind_of


@pytest.mark.parametrize("kind", ["panasonic", "canon", "fuji"])
def test_a_maker_note_moved_by_a_new_layout_still_finds_its_values(kind: str) -> None:
    """Pillow lays the EXIF out anew (here: the orientation taken out, so the maker note lands 12 bytes earlier): the
    offsets of a maker note that counts from the TIFF header are shifted with it (and a Canon's footer set to its new
    place), one that counts from itself is left as it is, and the entry is typed UNDEFINED again (Pillow: BYTE)."""
    raw = _exif(kind)
    assert _read_payload(raw, kind) == (PAYLOAD, 7)
    ex = Image.Exif()
    ex.load(raw)
    del ex[0x0112]
    laid = ex.tobytes()
    was, now = exif.find(raw), exif.find(laid)
    assert was is not None and now is not None and was[0] != now[0]  # it moved
    if kind != "fuji":
        assert _read_payload(laid, kind)[0] != PAYLOAD  # (what a reader found before)
    fixed = exif.relaid(raw, laid)
    assert _read_payload(fixed, kind) == (PAYLOAD, 7)
    if kind == "canon":
        assert struct.unpack("<I", fixed[6 + now[0] + now[1] - 4 : 6 + now[0] + now[1]]) == (now[0],)
    assert exif.relaid(raw, raw) == raw  # nothing moved: nothing changed
    assert exif.relaid(b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00", laid) == laid  # no maker note to follow


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".heic", ".avif"])
def test_a_camera_photos_maker_note_is_read_in_every_output(tmp_path: Path, suffix: str) -> None:
    """A camera JPEG's maker note (Panasonic's layout: values by offsets from the TIFF header), upscaled into JPEG,
    PNG, WebP, TIFF, HEIC or AVIF: its values are still where its offsets point, the EXIF keeps the camera's byte order (Pillow
    wrote big-endian, where a maker note in the parent's order reads wrong), and the Interoperability IFD reads (a
    TIFF output pointed at its old place)."""
    coded = io.BytesIO()
    Image.fromarray(np.full((16, 24, 3), 128, np.uint8)).save(coded, format="JPEG", exif=_exif("panasonic"))
    src = tmp_path / "P1000001.JPG"
    src.write_bytes(coded.getvalue())
    pic = read_image(src)
    assert pic.exif is not None and _read_payload(pic.exif, "panasonic") == (PAYLOAD, 7)
    out = tmp_path / f"out{suffix}"
    write_image(out, pic)
    with Image.open(out) as im:
        exif = im.getexif()
        raw = im.info.get("exif") if suffix != ".tif" else out.read_bytes()
        assert exif.get_ifd(0xA005) == ({} if suffix == ".tif" else {1: "R98"})  # (InteropIndex: a JPEG's alone)
    assert isinstance(raw, bytes) and raw[6 if raw[:4] == b"Exif" else 0 :][:2] == b"II"
    assert _read_payload(raw, "panasonic") == (PAYLOAD, 7)


def test_a_maker_note_an_earlier_tool_moved_keeps_its_offsets_as_they_were_to_it() -> None:
    """A Canon maker note whose offsets (and footer) are 40 bytes off, as an earlier tool left them (exiftool: "Adjusted
    MakerNotes base by 40", which it reads by): moved again, its offsets and footer move with it, so that they are
    as far off as before and a reader that allowed for that still finds the values."""
    raw = _exif("canon", off=40)
    ex = Image.Exif()
    ex.load(raw)
    del ex[0x0112]
    fixed = exif.relaid(raw, ex.tobytes())
    spots = []
    for data in (raw, fixed):
        at, length, _ = exif.find(data) or (0, 0, 0)
        tiff = data[6:]
        value = struct.unpack("<I", tiff[at + 2 + 12 + 8 : at + 2 + 12 + 12])[0]  # entry 0x0025's offset
        footer = struct.unpack("<I", tiff[at + length - 4 : at + length])[0]
        spots.append((value - at, footer - at))
    assert spots[0] == spots[1] == (2 + 24 + 4 + 40, 40)


def _typed_exif() -> bytes:
    """Little-endian EXIF with Exif IFD tags of the types Pillow writes otherwise: ExifVersion (UNDEFINED),
    ShutterSpeedValue (SRATIONAL, positive) and ExposureCompensation (SRATIONAL, -1/3)."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, 26)
    tiff += struct.pack("<I", 0) + struct.pack("<H", 3) + struct.pack("<HHI4s", 0x9000, 7, 4, b"0232")
    tiff += struct.pack("<HHII", 0x9201, 10, 1, 68) + struct.pack("<HHII", 0x9204, 10, 1, 76) + struct.pack("<I", 0)
    tiff += struct.pack("<ii", 7, 1) + struct.pack("<ii", -1, 3)
    assert len(tiff) == 84
    return b"Exif\x00\x00" + tiff


def _typed_tiff() -> bytes:
    """A 4x4 gray TIFF whose Exif IFD holds :func:`_typed_exif`'s tags, as a scanner or editor writes one."""
    entries = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (262, 3, 1, 1), (273, 4, 1, 180), (277, 3, 1, 1),
               (278, 3, 1, 4), (279, 4, 1, 16), (0x8769, 4, 1, 122)]  # fmt: skip
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    tiff += b"".join(struct.pack("<HHI", t, k, n) + (struct.pack("<HH", v, 0) if k == 3 else struct.pack("<I", v))
                     for t, k, n, v in entries) + struct.pack("<I", 0)  # fmt: skip
    tiff += struct.pack("<H", 3) + struct.pack("<HHI4s", 0x9000, 7, 4, b"0232")
    tiff += struct.pack("<HHII", 0x9201, 10, 1, 164) + struct.pack("<HHII", 0x9204, 10, 1, 172) + struct.pack("<I", 0)
    tiff += struct.pack("<ii", 7, 1) + struct.pack("<ii", -1, 3)
    assert len(tiff) == 180
    return tiff + bytes(range(0, 256, 16))


@pytest.mark.parametrize("source", ["jpeg", "png raw profile", "tiff"])
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".heic"])
def test_exif_tags_keep_their_types(tmp_path: Path, suffix: str, source: str) -> None:
    """Pillow types each EXIF value by its Python type: UNDEFINED tags came out as BYTE and a positive SRATIONAL one as
    RATIONAL (exiftool -validate: "Non-standard format"); each keeps its source's type and value in every output,
    from a PNG's ImageMagick raw profile too (libavif's paris_icc_exif_xmp.png: tiffinfo warned "Wrong data type 5
    for BrightnessValue") and from a TIFF's own Exif IFD (OpenImageIO's libtiffpic_pc260001.tif: "Wrong data type 1
    for FileSource")."""
    from PIL import PngImagePlugin

    coded = io.BytesIO()
    if source == "jpeg":
        Image.fromarray(np.full((16, 24, 3), 128, np.uint8)).save(coded, format="JPEG", exif=_typed_exif())
    elif source == "tiff":
        coded.write(_typed_tiff())
    else:
        raw = _typed_exif()[6:]
        info = PngImagePlugin.PngInfo()
        info.add_text("Raw profile type exif", f"\nexif\n{len(raw):8d}\n{raw.hex()}\n", zip=True)
        Image.fromarray(np.full((16, 24, 3), 128, np.uint8)).save(coded, format="PNG", pnginfo=info)
    src = tmp_path / {"jpeg": "a.jpg", "tiff": "a.tif"}.get(source, "a.png")
    src.write_bytes(coded.getvalue())
    out = tmp_path / f"out{suffix}"
    write_image(out, read_image(src))
    with Image.open(out) as im:
        raw = im.info.get("exif") if suffix != ".tif" else out.read_bytes()
    assert isinstance(raw, bytes)
    tiff = raw[6:] if raw[:4] == b"Exif" else raw
    order = "<" if tiff[:2] == b"II" else ">"

    def entries(at: int) -> dict[int, tuple[int, int, int]]:
        (n,) = struct.unpack(order + "H", tiff[at : at + 2])
        return {t: (k, c, v) for t, k, c, v in (struct.unpack(order + "HHII", tiff[at + 2 + 12 * i : at + 14 + 12 * i])
                                                for i in range(n))}  # fmt: skip

    tags = entries(entries(struct.unpack(order + "I", tiff[4:8])[0])[0x8769][2])
    assert {t: tags[t][0] for t in (0x9000, 0x9201, 0x9204)} == {0x9000: 7, 0x9201: 10, 0x9204: 10}
    assert struct.unpack(order + "ii", tiff[tags[0x9201][2] : tags[0x9201][2] + 8]) == (7, 1)
    assert struct.unpack(order + "ii", tiff[tags[0x9204][2] : tags[0x9204][2] + 8]) == (-1, 3)
