"""classsr_cli.io.jxl: the codestream's header and the container's boxes as ISO/IEC 18181 lays them out, written
here bit by bit; quality to distance; ffmpeg's colour description; the bundled ffmpeg's libjxl found."""

from __future__ import annotations

import itertools
import struct

import pytest

from classsr_cli.io import jxl


class BitWriter:
    """ISO/IEC 18181-1's bits, least significant first: what jxl._Bits reads, written independently."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, value: int, n: int) -> BitWriter:
        assert 0 <= value < 1 << n
        self.bits += [(value >> i) & 1 for i in range(n)]
        return self

    def u32(self, value: int, choices: tuple[tuple[int, int], ...]) -> BitWriter:
        for selector, (n, offset) in enumerate(choices):
            if offset <= value < offset + (1 << n):
                return self.u(selector, 2).u(value - offset, n)
        raise AssertionError(value)

    def size(self, width: int, height: int, ratio: int = 0) -> BitWriter:
        """A SizeHeader: both sides multiples of 8 up to 256 in the short form, else the long one."""
        div8 = ratio == 0 and width % 8 == 0 and height % 8 == 0 and width <= 256 and height <= 256
        self.u(div8, 1)
        self.u(height // 8 - 1, 5) if div8 else self.u32(height, jxl._SIZE)
        self.u(ratio, 3)
        if ratio == 0:
            self.u(width // 8 - 1, 5) if div8 else self.u32(width, jxl._SIZE)
        return self

    def bytes(self) -> bytes:
        padded = self.bits + [0] * (-len(self.bits) % 8 + 16)  # and some of what would follow
        return jxl.CODESTREAM + bytes(sum(b << i for i, b in enumerate(padded[k : k + 8])) for k in range(0, len(padded), 8))


@pytest.mark.parametrize(("width", "height", "ratio"), [(64, 48, 0), (4032, 3024, 0), (1, 1, 0), (1920, 1080, 5),
                                                         (312, 250, 6), (123457, 77, 0)])  # fmt: skip
def test_the_size_is_read_in_every_form_of_the_size_header(width: int, height: int, ratio: int) -> None:
    stream = BitWriter().size(width, height, ratio).u(1, 1).bytes()  # all_default metadata
    assert jxl.header(stream) == jxl.Header(width, height, 1, False)


@pytest.mark.parametrize("preview", [None, (64, 48), (200, 100)])
@pytest.mark.parametrize(("orientation", "animated"), [(1, False), (6, True), (8, False), (3, True)])
def test_orientation_and_animation_are_read_past_an_intrinsic_size_and_a_preview(
    orientation: int, animated: bool, preview: tuple[int, int] | None
) -> None:
    w = BitWriter().size(4000, 3000).u(0, 1).u(1, 1).u(orientation - 1, 3)  # not all default; extra fields
    w.u(1, 1).size(2000, 1500)  # an intrinsic size
    w.u(preview is not None, 1)
    if preview is not None:  # a PreviewHeader, in its multiple-of-8 form or its long one
        pw, ph = preview
        div8 = pw % 8 == 0 and ph % 8 == 0 and pw <= 256
        w.u(div8, 1)
        w.u32(ph // 8, jxl._PREVIEW_DIV8) if div8 else w.u32(ph, jxl._PREVIEW)
        w.u(0, 3)
        w.u32(pw // 8, jxl._PREVIEW_DIV8) if div8 else w.u32(pw, jxl._PREVIEW)
    w.u(animated, 1)
    head = jxl.header(w.bytes())
    assert head == jxl.Header(4000, 3000, orientation, animated)
    assert head.shown == ((3000, 4000) if orientation > 4 else (4000, 3000))


def test_what_is_not_a_codestream_or_stops_short_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JPEG XL codestream"):
        jxl.header(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="cut short"):
        jxl.header(jxl.CODESTREAM + b"\x00")  # a long-form height needs more than 8 bits


def _box(kind: bytes, payload: bytes, *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def test_a_container_gives_its_codestream_from_parts_its_exif_and_xmp() -> None:
    stream = BitWriter().size(64, 48).u(1, 1).bytes()
    tiff = b"MM\x00*\x00\x00\x00\x08" + b"\x00" * 6
    data = b"".join([
        jxl.CONTAINER, _box(b"ftyp", b"jxl \x00\x00\x00\x00jxl "),
        _box(b"Exif", b"\x00\x00\x00\x02ab" + tiff),  # the TIFF header 2 bytes in, as the offset says
        _box(b"xml ", b"<x:xmpmeta/>", large=True),
        _box(b"brob", b"xml " + b"\x8b\x02"),  # Brotli-compressed: named, not read
        _box(b"jxlp", b"\x00\x00\x00\x00" + stream[:5]), _box(b"jxlp", b"\x80\x00\x00\x01" + stream[5:]),
    ])  # fmt: skip
    boxes = jxl.read_boxes(data)
    assert boxes == jxl.Boxes(stream, tiff, b"<x:xmpmeta/>", ("xml",))
    assert jxl.header(boxes.codestream).width == 64


def test_boxes_that_do_not_read_are_refused() -> None:
    head = jxl.CONTAINER + _box(b"ftyp", b"jxl \x00\x00\x00\x00jxl ")
    with pytest.raises(ValueError, match="without a codestream"):
        jxl.read_boxes(head + _box(b"xml ", b"<x/>"))
    with pytest.raises(ValueError, match="cut short"):
        jxl.read_boxes(head + _box(b"jxlc", b"\xff\x0a\x00\x00")[:-2])
    with pytest.raises(ValueError, match="cut short"):
        jxl.read_boxes(head + struct.pack(">I4s", 4, b"jxlc"))  # smaller than its own header


def test_a_file_is_boxed_only_where_it_has_metadata_and_reads_back() -> None:
    stream = BitWriter().size(16, 8).u(1, 1).bytes()
    assert jxl.container(stream) == stream
    tiff = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 6
    for exif in (tiff, b"Exif\x00\x00" + tiff):  # with or without the APP1 prefix Pillow's EXIF carries
        data = jxl.container(stream, exif=exif, xmp=b"<x/>")
        assert jxl.is_jxl(data) and data.startswith(jxl.CONTAINER)
        assert jxl.read_boxes(data) == jxl.Boxes(stream, tiff, b"<x/>")
    assert jxl.read_boxes(jxl.container(stream, xmp=b"<x/>")) == jxl.Boxes(stream, None, b"<x/>")


def test_quality_maps_to_libjxl_distance_as_cjxl_maps_it() -> None:
    assert jxl.distance(100) == 0.0  # lossless
    assert jxl.distance(90) == pytest.approx(1.0)  # libjxl's "visually lossless"
    assert jxl.distance(95) == pytest.approx(0.55)
    assert jxl.distance(30) == pytest.approx(6.4)
    steps = [jxl.distance(q) for q in range(1, 101)]
    assert all(a > b for a, b in itertools.pairwise(steps))


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("Stream #0:0: Video: jpegxl (libjxl), rgb24(pc, gbr/smpte432/iec61966-2-1), 400x300, 25 fps", (12, 13)),
        ("Stream #0:0: Video: jpegxl (libjxl), rgb48le(pc, gbr/bt2020/smpte2084), 400x300", (9, 16)),
        ("Stream #0:0: Video: jpegxl (libjxl), rgb24(pc, gbr/smpte432/bt470m), 400x300", (12, 4)),
        ("Stream #0:0: Video: jpegxl (libjxl), rgb24(pc, gbr/unknown/unknown), 400x300", None),  # an ICC profile
        ("Stream #0:0: Video: jpegxl (libjxl), gray(pc, unknown/unknown/iec61966-2-1), 400x300", (1, 13)),  # sRGB's
        ("Stream #0:0: Video: jpegxl (libjxl), gray16le(pc, unknown/unknown/smpte2084), 1088x64", (9, 16)),  # PQ gray
        ("Stream #0:0: Video: jpegxl (libjxl), gray(pc, unknown/unknown/unknown), 400x300", None),
        ("Stream #0:0: Video: jpegxl (libjxl), rgb24(pc), 400x300", None),
        ("Stream #0:0: Video: png, rgb24(pc, gbr/bt709/iec61966-2-1), 400x300", None),
    ],
)
def test_the_colour_description_is_read_from_what_ffmpeg_says(line: str, want: tuple[int, int] | None) -> None:
    """The H.273 primaries and transfer ffmpeg names; a gray picture's by its transfer alone (it has no primaries: an
    HDR one's PQ was dropped, libjxl's pq_gradient.jxl read as SDR gray)."""
    assert jxl.colour_codes(f"Input #0, jpegxl_pipe, from 'a.jxl':\n  {line}\n") == want


def test_an_av1_streams_colour_description_is_read_alike() -> None:
    line = "Stream #0:0[0x1]: Video: av1 (libdav1d) (Main), yuv420p10le(tv, bt2020nc/bt2020/smpte2084), 64x48, 1 fps"
    assert jxl.colour_codes(line, "av1") == (9, 16) and jxl.colour_codes(line) is None


@pytest.mark.slow
def test_the_bundled_ffmpeg_decodes_and_encodes_jpeg_xl() -> None:
    from classsr_cli.io.video import ffmpeg_codecs

    assert "libjxl" in ffmpeg_codecs("decoders") and "libjxl" in ffmpeg_codecs("encoders")
    assert {"png", "libdav1d", "hevc"} <= ffmpeg_codecs("decoders") and "=" not in ffmpeg_codecs("decoders")
