"""A 360° or stereoscopic video's projection boxes: classsr_cli.io.spherical, and classsr video keeping them."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

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
    """``classsr video`` of a 360° camera's MP4: the output MP4 plays as 360° and 3D as its source (the frames are
    encoded anew, which dropped them, so players showed it flat); a Matroska output says it shows it flat."""
    src = _clip(tmp_path / "camera.mp4")
    _inject(src, BOXES)
    out = tmp_path / "up.mp4"
    r = runner.invoke(app, ["video", str(src), str(out), "--model", str(tiny_model_path), "--preset", "ultrafast"])
    assert r.exit_code == 0, r.output
    assert "flat" not in r.output
    got = probe(out)
    assert (got.projection, got.stereo, got.width) == ("equirectangular", "top and bottom", 256)
    r = runner.invoke(app, ["video", str(src), str(tmp_path / "up.mkv"), "--model", str(tiny_model_path),
                            "--preset", "ultrafast"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert ("the source is 360° (equirectangular) and stereoscopic (top and bottom) video: its projection is written "
            "into .mp4 and .mov outputs only, so players show this output flat") in " ".join(r.output.split())
