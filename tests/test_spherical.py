"""A 360° or stereoscopic video's projection boxes: classsr_cli.io.spherical, and classsr video keeping them."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classsr_cli.cli import app
from classsr_cli.io import spherical
from classsr_cli.io.video import ffmpeg_exe, probe

FF = ffmpeg_exe()
runner = CliRunner()


def _box(kind: bytes, payload: bytes, version_flags: int | None = None) -> bytes:
    body = payload if version_flags is None else struct.pack(">I", version_flags) + payload
    return struct.pack(">I", 8 + len(body)) + kind + body


#: As a 360° camera writes them: top-and-bottom stereo, an equirectangular projection turned 90° (yaw).
BOXES = _box(b"st3d", b"\x01", 0) + _box(b"sv3d", _box(b"svhd", b"camera\x00", 0) + _box(
    b"proj", _box(b"prhd", struct.pack(">iii", 90 << 16, 0, 0), 0) + _box(b"equi", bytes(16), 0)))  # fmt: skip


def _inject(path: Path, boxes: bytes) -> None:
    """Put ``boxes`` at the end of the first video sample entry of ``path`` (ffmpeg's MP4: ``moov`` after ``mdat``,
    which is not moved), as a 360° camera's file has them."""
    data = bytearray(path.read_bytes())
    chain, start, end = [], 0, len(data)
    for kind, skip in ((b"moov", 8), (b"trak", 8), (b"mdia", 8), (b"minf", 8), (b"stbl", 8), (b"stsd", 16), (None, 86)):
        at = start
        while kind is not None and data[at + 4 : at + 8] != kind:
            at += struct.unpack_from(">I", data, at)[0]
        chain.append(at)
        start, end = at + skip, at + struct.unpack_from(">I", data, at)[0]
    data[end:end] = boxes
    for at in chain:
        struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] + len(boxes))
    path.write_bytes(bytes(data))


def _clip(path: Path, *extra: str) -> Path:
    subprocess.run([FF, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x32:rate=10:duration=0.3",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, str(path)], check=True, timeout=60)  # fmt: skip
    return path


def _frames(path: Path) -> list[str]:
    out = subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
    return [line for line in out.splitlines() if not line.startswith("#")]


def test_the_boxes_are_read_and_copied_into_a_file_whose_moov_comes_last_or_first(tmp_path: Path) -> None:
    """The source's ``st3d`` and ``sv3d`` read as they are; copied into an output whose ``moov`` is its last box
    (rewritten in place) and into a faststart one (``moov`` before ``mdat``: every chunk offset shifted), ffmpeg reads
    the projection and stereo layout from both and decodes the same frames; copying again replaces, not adds."""
    src = _clip(tmp_path / "camera.mp4")
    _inject(src, BOXES)
    assert spherical.read(src) == BOXES
    info = probe(src)
    assert (info.projection, info.stereo) == ("equirectangular", "top and bottom")
    for name, extra in (("last.mp4", ()), ("first.mov", ("-movflags", "+faststart"))):
        out = _clip(tmp_path / name, *extra)
        frames = _frames(out)
        assert spherical.read(out) == b"" and probe(out).projection is None
        assert spherical.copy(src, out) and spherical.copy(src, out)
        assert spherical.read(out) == BOXES
        got = probe(out)
        assert (got.projection, got.stereo) == ("equirectangular", "top and bottom"), name
        assert _frames(out) == frames, name
    plain = _clip(tmp_path / "plain.mp4")
    assert not spherical.copy(plain, tmp_path / "last.mp4") and spherical.read(tmp_path / "text.mp4") == b""


def test_classsr_video_keeps_a_360_videos_projection_in_mp4_and_says_where_it_cannot(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    """``classsr video`` of a 360° camera's MP4: the output MP4, Matroska or WebM plays as 360° and 3D as its source
    (the frames are encoded anew, which dropped them, so players showed it flat); an AVI says it shows flat; an MP4 from
    a Matroska source (a YouTube 360° WebM's projection elements) gets boxes made for a whole equirectangular sphere."""
    src = _clip(tmp_path / "camera.mp4")
    _inject(src, BOXES)
    out = tmp_path / "up.mp4"
    r = runner.invoke(app, ["video", str(src), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast"])
    assert r.exit_code == 0, r.output
    assert "flat" not in r.output
    got = probe(out)
    assert (got.projection, got.stereo, got.width) == ("equirectangular", "top and bottom", 256)
    for name in ("up.mkv", "up.webm"):  # Matroska's projection elements (they played flat)
        r = runner.invoke(app, ["video", str(src), str(tmp_path / name), "--model", str(tiny_model_path),
                                "--preset", "ultrafast"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert "flat" not in r.output
        got = probe(tmp_path / name)
        assert (got.projection, got.stereo, got.width) == ("equirectangular", "top and bottom", 256)
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "up.avi"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert ("the source is 360° (equirectangular) and stereoscopic (top and bottom) video: its projection is written "
            "into .mp4, .mov, .mkv and .webm outputs only, so players show this output flat") in " ".join(r.output.split())
    mkv = tmp_path / "camera.mkv"  # Matroska's own projection elements, which ffmpeg writes from the MP4's
    subprocess.run([FF, "-v", "error", "-i", str(src), "-c", "copy", str(mkv)], check=True, timeout=60)
    assert probe(mkv).projection == "equirectangular"
    r = runner.invoke(app, ["video", str(mkv), str(tmp_path / "from_mkv.mp4"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "flat" not in r.output  # made for it: a whole equirectangular sphere, top and bottom
    got = probe(tmp_path / "from_mkv.mp4")
    assert (got.projection, got.stereo) == ("equirectangular", "top and bottom")
    assert spherical.read(tmp_path / "from_mkv.mp4") == spherical.made("equirectangular", "top and bottom")


@pytest.mark.parametrize("stereo", [None, "side by side"])
def test_a_360_video_shows_no_seam_where_its_edges_meet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         stereo: str | None) -> None:  # fmt: skip
    """Each frame of a 360° video (equirectangular) is upscaled with columns of its other side grown on each side, as
    a 360° photo is: where its right edge meets its left (two halves of one photo strip, swapped), the output's
    columns at the seam are as close to the strip upscaled whole (the shipped model) as its columns away from it;
    upscaled alone, its edges see only their own pixels and stray. A side-by-side stereo video's eyes (two strips of
    the photo) each alike: neither sees the other's columns at its seams."""
    import numpy as np
    from PIL import Image

    from classsr_cli import video, zoo
    from classsr_cli.pipeline import Upscaler

    photo = np.asarray(Image.open(Path(__file__).parent.parent / "examples" / "baby.png").convert("RGB"))
    n = 64
    strips = [np.ascontiguousarray(photo[200 + 90 * k : 200 + 90 * k + n, 160 : 160 + 2 * n])
              for k in range(2 if stereo else 1)]  # fmt: skip
    frame = np.concatenate([np.roll(strip, -n, axis=1) for strip in strips], axis=1)
    src = tmp_path / "camera.mp4"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{frame.shape[1]}x{n}", "-r",
                    "10", "-i", "-", "-c:v", "libx264rgb", "-qp", "0", str(src)], input=frame.tobytes() * 2,
                   check=True, timeout=60)  # fmt: skip (lossless RGB: the frames decode as they were)
    _inject(src, BOXES[13:] if stereo is None else _box(b"st3d", b"\x02", 0) + BOXES[13:])  # (2: side by side)
    assert (probe(src).projection, probe(src).stereo) == ("equirectangular", stereo)
    up = Upscaler.of(zoo.load(None, 4))
    wholes = [np.roll(up.upscale_array(strip).pixels.astype(int), -4 * n, axis=1) for strip in strips]

    def strays(name: str) -> list[tuple[float, float]]:
        """How far each eye's columns at its seams, and those 20-40 away from them, are from its strip whole."""
        out = tmp_path / name
        out.mkdir()
        r = runner.invoke(app, ["video", str(src), str(out / "%03d.png"), "-x", "4"])
        assert r.exit_code == 0, r.output
        got = np.asarray(Image.open(out / "001.png").convert("RGB")).astype(int)
        eyes = np.split(got, len(wholes), axis=1)
        offs = [np.abs(eye - whole).mean(axis=(0, 2)) for eye, whole in zip(eyes, wholes, strict=True)]
        return [(float(np.r_[off[:2], off[-2:]].mean()), float(off[4 * n - 40 : 4 * n - 20].mean())) for off in offs]

    monkeypatch.setattr(video, "wrap_cut", lambda *a: None)  # as each frame was upscaled alone
    alone = strays("alone")
    monkeypatch.undo()
    for (at_seam, away), (alone_at_seam, alone_away) in zip(strays("round"), alone, strict=True):
        assert at_seam <= away + 0.1 and alone_at_seam >= alone_away + 0.3, (at_seam, away, alone_at_seam, alone_away)


@pytest.mark.parametrize(("stereo", "sphere"), [("top and bottom", False), ("top and bottom", True),
                                                ("side by side", False)])  # fmt: skip
def test_a_stereo_videos_eyes_do_not_see_each_other_where_they_meet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   stereo: str, sphere: bool) -> None:  # fmt: skip
    """A stereo video's two eyes (one photo strip each, as a pair's views are nearly the same) are kept apart where
    they meet: the top eye's last rows (its ground) next to the bottom eye's first (its sky) come out within half a
    level of the strip upscaled alone (the shipped model; each eye sees its own rows mirrored there, where alone the
    engine copies its edge row); upscaled as one frame, each saw the other's opposite side and strayed by 8 levels. Side by side (flat) alike, by columns; a 360° top-and-bottom one is grown round too."""
    import numpy as np
    from PIL import Image

    from classsr_cli import pipeline, video, zoo
    from classsr_cli.pipeline import Upscaler

    photo = np.asarray(Image.open(Path(__file__).parent.parent / "examples" / "baby.png").convert("RGB"))
    n = 48
    strip = np.ascontiguousarray(photo[200 : 200 + n, 160 : 160 + 2 * n])
    axis = 0 if stereo == "top and bottom" else 1
    frame = np.concatenate([strip, strip], axis=axis)
    src = tmp_path / "camera.mp4"
    subprocess.run([FF, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{frame.shape[1]}x{frame.shape[0]}",
                    "-r", "10", "-i", "-", "-c:v", "libx264rgb", "-qp", "0", str(src)], input=frame.tobytes() * 2,
                   check=True, timeout=60)  # fmt: skip (lossless RGB: the frames decode as they were)
    st3d = _box(b"st3d", b"\x01" if axis == 0 else b"\x02", 0)
    _inject(src, st3d + (BOXES[13:] if sphere else b""))
    assert (probe(src).projection, probe(src).stereo) == ("equirectangular" if sphere else None, stereo)
    up = Upscaler.of(zoo.load(None, 4))
    if sphere:  # the eye upscaled round (its columns grown by its other side's), as the video is
        cut = pipeline.wrap_cut(up, n, 2 * n)
        assert cut is not None
        eye = up.upscale_array(pipeline.wrapped(strip)).pixels[:, pipeline.unwrapped_columns(cut, 8 * n)].astype(int)
    else:
        eye = up.upscale_array(strip).pixels.astype(int)
    want = np.concatenate([eye, eye], axis=axis)

    def strays(name: str) -> tuple[float, float]:
        """How far the output is from each eye alone on the 2 rows (columns) each side of where they meet, and 20-40
        rows (columns) away."""
        out = tmp_path / name
        out.mkdir()
        r = runner.invoke(app, ["video", str(src), str(out / "%03d.png"), "-x", "4"])
        assert r.exit_code == 0, r.output
        got = np.asarray(Image.open(out / "001.png").convert("RGB")).astype(int)
        assert got.shape == want.shape
        off = np.abs(got - want).mean(axis=(1, 2) if axis == 0 else (0, 2))
        meet = 4 * n if axis == 0 else 8 * n
        return float(off[meet - 2 : meet + 2].mean()), float(off[meet - 40 : meet - 20].mean())

    monkeypatch.setattr(video, "apart_cut", lambda *a: None)  # as the frame was upscaled whole
    whole, whole_away = strays("whole")
    monkeypatch.undo()
    at, away = strays("apart")
    assert at <= away + 0.5 and whole >= whole_away + 3, (at, away, whole, whole_away)


def test_a_cameras_own_suffix_on_an_mp4_gives_an_mp4_output(tmp_path: Path) -> None:
    """An Insta360's ``.insv`` (a GoPro's ``.lrv``) is an MP4 under the camera's own suffix: the output named for it is
    ``.mp4`` (``.mov`` for a QuickTime file), where a 360° video's projection is kept, not ``.mkv``, where it was lost;
    another file under an unknown suffix still gets ``.mkv``."""
    from classsr_cli.video import output_path

    insv = _clip(tmp_path / "VID_001.insv", "-f", "mp4")
    lrv = _clip(tmp_path / "GL010001.lrv", "-f", "mov")
    other = _clip(tmp_path / "clip.bin", "-f", "matroska")
    assert output_path(insv, f"{tmp_path}/out/", 2) == tmp_path / "out" / "VID_001_x2.mp4"
    assert output_path(lrv, f"{tmp_path}/out/", 2) == tmp_path / "out" / "GL010001_x2.mov"
    assert output_path(other, f"{tmp_path}/out/", 2) == tmp_path / "out" / "clip_x2.mkv"
    assert output_path(tmp_path / "missing.insv", f"{tmp_path}/out/", 2).suffix == ".mkv"


def test_boxes_are_made_for_a_whole_equirectangular_sphere_and_a_stereo_layout_alone() -> None:
    """What another container's projection is made into: ``sv3d`` for a whole equirectangular sphere (no bounds, no
    turn) with ``st3d`` for its layout, ``st3d`` alone for a flat 3D video; nothing for a cube map, whose layout and
    padding ffmpeg's listing does not give, nor for no projection and no layout."""
    both = spherical.made("equirectangular", "top and bottom")
    assert both[4:8] == b"st3d" and both[12] == 1 and both[17:21] == b"sv3d" and b"equi" in both and b"prhd" in both
    assert spherical.made("equirectangular", None)[4:8] == b"sv3d"
    assert spherical.made(None, "side by side") == _box(b"st3d", b"\x02", 0)
    assert spherical.made("cubemap", None) == b"" and spherical.made("cubemap", "top and bottom") == b""
    assert spherical.made(None, None) == b""


def test_a_matroska_output_gets_its_projection_with_every_stream_and_packet_as_it_was(tmp_path: Path) -> None:
    """:func:`classsr_cli.io.video._matroska_projection` on a finished Matroska file (video, audio, a subtitle, two
    chapters, a title): its projection and stereo layout as the boxes say, yaw included, and every packet, chapter
    and tag as before; a file with VP9 transparency is left as it was (an MP4 would drop its alpha)."""
    from classsr_cli.io import video as iov

    def packets(path: Path) -> list[str]:
        out = subprocess.run([FF, "-v", "error", "-i", str(path), "-map", "0", "-c", "copy", "-f", "framecrc", "-"],
                             capture_output=True, text=True, check=True, timeout=60).stdout  # fmt: skip
        return [line for line in out.splitlines() if not line.startswith("#")]

    (tmp_path / "t.srt").write_text("1\n00:00:00,000 --> 00:00:00,200\nHi\n", encoding="utf-8")
    (tmp_path / "ch.txt").write_text(";FFMETADATA1\ntitle=Trip\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=100\n"
                                     "title=A\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=100\nEND=300\ntitle=B\n")  # fmt: skip
    out = tmp_path / "out.mkv"
    subprocess.run([FF, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x32:rate=10:duration=0.3", "-f", "lavfi",
                    "-i", "sine=duration=0.3", "-i", str(tmp_path / "t.srt"), "-i", str(tmp_path / "ch.txt"),
                    "-map", "0", "-map", "1", "-map", "2", "-map_metadata", "3", "-map_chapters", "3",
                    "-c:v", "libx264", "-c:a", "flac", str(out)], check=True, timeout=60)  # fmt: skip
    before, listing = packets(out), iov._run_probe(out)
    assert iov._matroska_projection(out, BOXES, "matroska")
    got = iov.probe(out)
    assert (got.projection, got.stereo) == ("equirectangular", "top and bottom")
    assert "Spherical Mapping: equirectangular (90.000000/" in iov._run_probe(out)
    assert packets(out) == before and [s.kind for s in got.streams] == ["video", "audio", "subtitle"]
    assert got.chapters == 2 and "title           : Trip" in iov._run_probe(out) and "title           : Trip" in listing
    alpha = tmp_path / "alpha.webm"
    subprocess.run([FF, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x32:rate=10:duration=0.2,format=yuva420p",
                    "-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", str(alpha)], check=True, timeout=60)  # fmt: skip
    data = alpha.read_bytes()
    assert not iov._matroska_projection(alpha, BOXES, "webm") and alpha.read_bytes() == data
    # what the run then says (its plan had said the projection kept): not written, and why
    assert iov.finish(got, alpha, "webm") == [
        "the 360° or 3D projection was not written after all (a WebM with transparency: its VP9 alpha cannot pass "
        "through the MP4 the projection is made in), so players show this output flat"]
    assert alpha.read_bytes() == data and iov.finish(got, out, "matroska") == []
