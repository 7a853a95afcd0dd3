"""classsr_cli.io.motion: a Motion Photo's video (Pixel's and other Android phones' photos) carried behind a JPEG output,
found where the format's readers find it; other outputs, and a video that is not there, said not to be a Motion
Photo."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classsr_cli.io import gainmap
from classsr_cli.io.image import Picture, read_image, write_image, write_image_rows

_Y, _X = np.mgrid[0:48, 0:64]
PICTURE = np.stack([_X * 4, _Y * 5, (_X + _Y) * 2], -1).astype(np.uint8)

#: A Motion Photo's XMP as a Pixel writes it: the Camera flags and the Container directory (the picture with some
#: padding after it, then the video, whose length the caller gives).
XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       '<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
       'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
       'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" GCamera:MotionPhoto="1" '
       'GCamera:MotionPhotoVersion="1" GCamera:MotionPhotoPresentationTimestampUs="500000"><Container:Directory>'
       '<rdf:Seq><rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary" '
       'Item:Length="0" Item:Padding="{padding}"/></rdf:li>{gain}<rdf:li rdf:parseType="Resource"><Container:Item '
       'Item:Mime="video/mp4" Item:Semantic="MotionPhoto" Item:Length="{length}" Item:Padding="0"/></rdf:li></rdf:Seq>'
       "</Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>")  # fmt: skip
GAIN_ITEM = ('<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="GainMap" '
             'Item:Length="{length}"/></rdf:li>')  # fmt: skip


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real MP4 of a few frames, by the bundled ffmpeg."""
    from classsr_cli.io.video import ffmpeg_exe

    out = tmp_path_factory.mktemp("motion") / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5",
                    "-c:v", "mpeg4", "-y", str(out)], check=True)  # fmt: skip
    return out.read_bytes()


def motion_photo(path: Path, clip: bytes, *, padding: int = 7, gain: bool = False) -> Path:
    """A Motion Photo JPEG: the picture (with an Ultra HDR gain map behind it where ``gain``), ``padding`` bytes, the
    clip, the XMP saying so."""
    second = b""
    if gain:
        buf = io.BytesIO()
        Image.fromarray(PICTURE[::4, ::4, 0].copy()).save(buf, format="JPEG")
        second = buf.getvalue()
    items = GAIN_ITEM.format(length=len(second)) if gain else ""
    xmp = XMP.format(padding=padding, gain=items, length=len(clip)).encode()
    first = io.BytesIO()
    Image.fromarray(PICTURE).save(first, format="JPEG", quality=95, xmp=gainmap.primary_xmp(xmp, len(second)) if gain else xmp)
    picture = gainmap.jpeg_with(first.getvalue(), second) if gain else first.getvalue()
    path.write_bytes(picture + bytes(padding) + clip)
    return path


def _found(data: bytes, xmp: bytes) -> bytes:
    """The video where a reader finds it (media3's way): the directory's last item, from the end of the file."""
    length = int(re.findall(rb'Item:Semantic="MotionPhoto" Item:Length="(\d+)"', xmp)[0])
    return data[len(data) - length :]


@pytest.mark.parametrize(("out", "padding"), [("jpg", 7), ("heic", 8), ("avif", 8)])
def test_a_motion_photos_video_is_kept_behind_the_upscaled_picture(
    tmp_path: Path, video: bytes, out: str, padding: int
) -> None:
    """The video (the directory's last item, its length from the end of the file) is read with the picture's padding
    before it (the picture and the video alone: a Samsung's trailer starts there), and appended to a JPEG output as
    it came, padding too, or in an ``mpvd`` box to a HEIC or AVIF one (libheif and libavif still open it), the box's
    header the padding; the output's XMP saying so, the video where a reader finds it, the picture opening as before;
    written in bands too."""
    src = motion_photo(tmp_path / "PXL_0001.MP.jpg", video)
    pic = read_image(src)
    assert pic.motion == bytes(7) + video and pic.notes == []
    big = Picture(np.repeat(np.repeat(pic.pixels, 2, 0), 2, 1), exif=pic.exif, xmp=pic.xmp, motion=pic.motion)
    path = tmp_path / f"out.MP.{out}"
    assert write_image(path, big) == []
    data = path.read_bytes()
    assert data.endswith(video)
    back = read_image(path)
    assert back.pixels.shape == (96, 128, 3) and np.abs(back.pixels.astype(int) - big.pixels).mean() < 3
    assert back.xmp is not None and re.findall(rb'Item:Semantic="Primary"[^>]*Item:Padding="(\d+)"', back.xmp) == [
        str(padding).encode()]
    assert _found(data, back.xmp) == video and back.motion == data[len(data) - len(video) - padding :]
    lead = bytes(7) if out == "jpg" else (len(video) + 8).to_bytes(4, "big") + b"mpvd"  # (the mpvd box: the file's last)
    assert data[len(data) - len(video) - padding : len(data) - len(video)] == lead
    rows = write_image_rows(tmp_path / f"rows.MP.{out}", (96, 128), 3, np.uint8, (big.pixels[:50], big.pixels[50:]),
                            meta=big.carried())  # fmt: skip
    assert rows == [] and (tmp_path / f"rows.MP.{out}").read_bytes().endswith(video)


def test_with_an_ultra_hdr_gain_map_both_are_kept_in_their_places(tmp_path: Path, video: bytes) -> None:
    """A Motion Photo that is also Ultra HDR (Pixel's): picture, gain map (found through the MPF index, its length in
    the directory), then the video, in a JPEG output too."""
    pic = read_image(motion_photo(tmp_path / "hdr.MP.jpg", video, padding=0, gain=True))
    assert pic.gain_map is not None and pic.motion == video
    big = Picture(np.repeat(np.repeat(pic.pixels, 2, 0), 2, 1), xmp=pic.xmp, gain_map=pic.gain_map, motion=pic.motion)
    assert write_image(tmp_path / "out.jpg", big) == []
    data = (tmp_path / "out.jpg").read_bytes()
    back = read_image(tmp_path / "out.jpg")
    assert back.gain_map is not None and back.gain_map.pixels.shape[:2] == (24, 32) and back.motion == video
    gain = int(re.findall(rb'Item:Semantic="GainMap" Item:Length="(\d+)"', back.xmp or b"")[0])
    end = len(data) - len(video)
    assert data[end - gain : end].startswith(b"\xff\xd8") and _found(data, back.xmp or b"") == video


def test_outputs_without_the_video_say_they_are_no_motion_photo(tmp_path: Path, video: bytes) -> None:
    """PNG and WebP outputs, one under ``--strip-metadata`` and one whose video was not found (the XMP points at bytes that are not an MP4) keep no video; an XMP they keep says
    ``MotionPhoto`` 0, as the format asks of an editor that drops it, and a note says which output keeps it. Version
    1's ``MicroVideoOffset`` finds the video too."""
    pic = read_image(motion_photo(tmp_path / "a.MP.jpg", video))
    for fmt, ext in (("PNG", "png"), ("WEBP", "webp")):
        assert write_image(tmp_path / f"out.{ext}", pic) == [
            f"{fmt} output: the Motion Photo's video is not kept, a JPEG, HEIC or AVIF output keeps it (as it came, "
            "behind the upscaled picture)"]
        kept = read_image(tmp_path / f"out.{ext}")
        assert kept.xmp is not None and b'GCamera:MotionPhoto="0"' in kept.xmp and b'MotionPhoto="1"' not in kept.xmp
        assert not (tmp_path / f"out.{ext}").read_bytes().endswith(video)
    write_image(tmp_path / "bare.jpg", pic.stripped())
    assert not (tmp_path / "bare.jpg").read_bytes().endswith(video) and read_image(tmp_path / "bare.jpg").motion is None
    broken = tmp_path / "broken.MP.jpg"
    broken.write_bytes(motion_photo(tmp_path / "b.MP.jpg", video).read_bytes()[:-len(video)] + bytes(len(video)))
    gone = read_image(broken)
    assert gone.motion is None and write_image(tmp_path / "gone.jpg", gone) == []
    assert b'GCamera:MotionPhoto="0"' in (read_image(tmp_path / "gone.jpg").xmp or b"")
    v1 = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
          '<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MicroVideo="1" '
          f'GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="{len(video)}"/></rdf:RDF></x:xmpmeta>').encode()
    first = io.BytesIO()
    Image.fromarray(PICTURE).save(first, format="JPEG", xmp=v1)
    (tmp_path / "MVIMG_0001.jpg").write_bytes(first.getvalue() + video)
    old = read_image(tmp_path / "MVIMG_0001.jpg")
    assert old.motion == video and write_image(tmp_path / "old.jpg", old) == []
    assert (tmp_path / "old.jpg").read_bytes().endswith(video)


def test_a_motion_photos_output_keeps_the_name_its_readers_look_for(tmp_path: Path) -> None:
    """Beside its input, ``PXL_1.MP.jpg``'s output is ``PXL_1_x4.MP.jpg`` (readers may ignore a Motion Photo whose
    name does not end in ``MP``), which a folder run then knows for an earlier output; other names as they were."""
    from classsr_cli.io.files import is_own_output
    from classsr_cli.plan import default_output_name

    assert default_output_name(Path("PXL_1.MP.jpg"), 4) == "PXL_1_x4.MP.jpg"
    assert default_output_name(Path("PXL_1.MP.jpg"), 2, suffix=".png") == "PXL_1_x2.MP.png"
    assert default_output_name(Path("photo.jpg"), 4) == "photo_x4.jpg"
    assert default_output_name(Path(".MP.jpg"), 4) == ".MP_x4.jpg"
    (tmp_path / "PXL_1.MP.jpg").write_bytes(b"")
    assert is_own_output(tmp_path / "PXL_1_x4.MP.jpg") and is_own_output(tmp_path / "PXL_1_x4.MP_classmap.png")
    assert not is_own_output(tmp_path / "PXL_2_x4.MP.jpg")


def test_a_gain_map_given_to_a_motion_photo_goes_into_its_directory_before_the_video() -> None:
    """A Motion Photo whose gain map is made for a JPEG output (an iPhone's, an ISO one's: none in the directory yet)
    gets the gain map's item in its own directory, after the picture's and before the video's, where the gain map
    lies in the file; one directory, not a second beside it."""
    from classsr_cli.io import motion

    xmp = XMP.format(padding=0, gain="", length=1234).encode()
    out = gainmap.primary_xmp(gainmap.with_directory(xmp), 99)
    assert out is not None and out.count(b"<Container:Directory>") == 1 and b'hdrgm:Version="1.0"' in out
    _, items = motion._described(out)
    assert [(i["Semantic"], i["Length"]) for i in items] == [("Primary", "0"), ("GainMap", "99"), ("MotionPhoto", "1234")]


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_heic_or_avif_motion_photo_with_its_video_appended_bare_is_read(tmp_path: Path, video: bytes, fmt: str) -> None:
    """A HEIC or AVIF with the MP4 appended bare (as the format's text allows; libheif does not read past it, so the
    HEIC was refused as corrupt) is read: the picture from its own boxes, the video kept behind the output in an
    ``mpvd`` box."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    xmp = XMP.format(padding=0, gain="", length=len(video)).encode()
    picture = io.BytesIO()
    Image.fromarray(PICTURE).save(picture, format=fmt, quality=95, xmp=xmp)
    src = tmp_path / f"photo.MP.{'heic' if fmt == 'HEIF' else 'avif'}"
    src.write_bytes(picture.getvalue() + video)
    pic = read_image(src)
    assert pic.motion == video and np.abs(pic.pixels.astype(int) - PICTURE).mean() < 3 and pic.notes == []
    assert write_image(tmp_path / "out.MP.heic", pic) == [] and read_image(tmp_path / "out.MP.heic").motion is not None
    assert (tmp_path / "out.MP.heic").read_bytes().endswith(b"mpvd" + video)


def test_a_samsung_microvideo_whose_xmp_is_padded_with_zeros_is_found(tmp_path: Path, video: bytes) -> None:
    """A Samsung's version-1 Motion Photo (``MicroVideoOffset``; androidx/media's ``ss-motion-photo-shortened.jpg``)
    pads its XMP packet with zeros, which the XML parser refused: its video was not found, so not kept."""
    xmp = (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           f'<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" '
           f'GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="{len(video)}"/>'
           f"</rdf:RDF></x:xmpmeta>\n").encode() + bytes(400)  # fmt: skip
    first = io.BytesIO()
    Image.fromarray(PICTURE).save(first, format="JPEG", quality=95, xmp=xmp)
    (tmp_path / "ss.jpg").write_bytes(first.getvalue() + video)
    pic = read_image(tmp_path / "ss.jpg")
    assert pic.motion == video
    assert write_image(tmp_path / "out.jpg", pic) == [] and read_image(tmp_path / "out.jpg").motion == video


def test_classsr_video_upscales_a_motion_photos_video(tmp_path: Path, video: bytes, tiny_model_path: Path) -> None:
    """`classsr video PXL_1.MP.jpg` (it was refused with how to take the video out): its video, taken out, is upscaled
    into PXL_1.MP_x4.mp4 beside it, a note says so, the JSON names the photo; a photo that is no Motion Photo is still
    refused; `--dry-run` too."""
    import json

    from typer.testing import CliRunner

    from classsr_cli.cli import app
    from classsr_cli.io import motion
    from classsr_cli.io.video import probe

    src = motion_photo(tmp_path / "PXL_1.MP.jpg", video, padding=7)
    assert motion.video_of(src) == video and motion.video_of(tmp_path / "none.jpg") is None
    r = CliRunner().invoke(app, ["video", str(src), "--model", str(tiny_model_path), "--json"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    out = tmp_path / "PXL_1.MP_x4.mp4"
    assert record["input"] == str(src) and record["output"] == str(out) and record["frames"] == 5
    assert "note: PXL_1.MP.jpg is a Motion Photo: its video (" in r.stderr
    info = probe(out)
    assert (info.width, info.height) == (256, 192)
    dry = CliRunner().invoke(app, ["video", str(src), str(tmp_path / "d.mkv"), "--model", str(tiny_model_path),
                                   "--dry-run", "--json"])  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["input"] == str(src)
    plain = tmp_path / "plain.jpg"
    Image.fromarray(PICTURE).save(plain)
    r = CliRunner().invoke(app, ["video", str(plain), "--model", str(tiny_model_path)])
    assert r.exit_code == 1 and "plain.jpg: is a JPEG image, not a video; use `classsr upscale`" in r.stderr
    cut = motion_photo(tmp_path / "PXL_2.MP.jpg", video[: len(video) // 3])  # its video cut short: said of the photo
    r = CliRunner().invoke(app, ["video", str(cut), "--model", str(tiny_model_path)])
    assert r.exit_code == 1 and r.stderr.strip().splitlines()[-1].startswith(f"error: {cut}'s video: "), r.stderr


def test_classsr_video_given_a_motion_photo_says_how_to_take_its_video_out(tmp_path: Path, video: bytes) -> None:
    from classsr_cli.errors import InputError
    from classsr_cli.io.video import probe

    src = motion_photo(tmp_path / "PXL_1.MP.jpg", video, padding=7)
    with pytest.raises(InputError) as e:
        probe(src)
    said = str(e.value)
    assert said.startswith(f"{src}: is a JPEG image with a Motion Photo's video, not a video: `classsr upscale`")
    size = int(re.search(r"its last (\d+) bytes: `tail -c \1 PXL_1\.MP\.jpg > PXL_1\.MP\.mp4`", said).group(1))  # type: ignore[union-attr]
    assert size == len(video)  # the command takes the MP4 whole, not the padding before it
    clip = tmp_path / "PXL_1.MP.mp4"
    clip.write_bytes(src.read_bytes()[-size:])
    assert probe(clip).frames_estimate == 5
    plain = tmp_path / "plain.jpg"
    Image.fromarray(PICTURE).save(plain)
    with pytest.raises(InputError, match=r"plain\.jpg: is a JPEG image, not a video; use `classsr upscale`$"):
        probe(plain)
    Image.fromarray(PICTURE).save(plain.with_suffix(".webp"))
    with pytest.raises(InputError, match=r"plain\.webp: is a WebP image, not a video"):  # not "a WEBP image"
        probe(plain.with_suffix(".webp"))
