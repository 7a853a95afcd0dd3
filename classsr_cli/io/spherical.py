"""A 360° or stereoscopic video's projection, carried from an MP4 or MOV source into an MP4 or MOV output.

A 360° camera's video (Insta360, GoPro Max, a Ricoh Theta's) says how its frames map onto the sphere, and a stereo
one which eye each half of the frame is, in boxes of its video sample entry (Google's Spherical Video V2: ``sv3d``,
``st3d``), which YouTube, VLC and headsets read to show it as 360° or 3D. ffmpeg writes them from a stream's side data,
which frames encoded anew do not have: without them the output played as a flat, stretched picture. They are copied,
bytes as they are, from the source's first video sample entry into the output's (:func:`copy`), the sizes of the
boxes around it grown, and the chunk offsets of a file whose ``moov`` comes before its media shifted.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from classsr_cli.io import bmff

__all__ = ["BOXES", "copy", "made", "read"]

#: The sample entry's boxes carried: the projection (``sv3d``) and the stereo layout (``st3d``).
BOXES = (b"sv3d", b"st3d")
_PATH = bmff.SAMPLE_DESCRIPTIONS
#: A visual sample entry's fields before its boxes (ISO 14496-12 VisualSampleEntry; QuickTime's video sample
#: description has the same 78 bytes).
_VISUAL_FIELDS = 78


def _find_moov(path: Path) -> tuple[int, int, bool] | None:
    """Where ``path``'s ``moov`` starts, its size, and whether media (``mdat``) comes after it; read box headers only.
    ``None`` where it has none, or is fragmented (a ``moof``: its offsets may count from the file's start; left as it
    is)."""
    found = None
    after = False
    for kind, at, size in bmff.top_level(path):
        if kind == b"moof":
            return None
        if kind == b"moov":
            found = (at, size)
        elif kind == b"mdat" and found is not None:
            after = True
    return (*found, after) if found else None


def _video_entry(moov: bytes | bytearray) -> tuple[list[tuple[int, int]], int, int] | None:
    """In ``moov`` (the box whole), the first video track's first sample entry: the boxes around it (start, header
    size; ``moov`` first), where it starts and its size."""
    for kind, at, size, header in bmff.boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        chain, start, end = [(0, 8), (at, header)], at + header, at + size
        handler = None
        for step in _PATH[1:]:
            box = next(((a, s, h) for k, a, s, h in bmff.boxes(moov, start, end) if k == step), None)
            if box is None:
                break
            if step == b"mdia":
                hdlr = next(((a, h) for k, a, s, h in bmff.boxes(moov, box[0] + box[2], box[0] + box[1]) if k == b"hdlr"),
                            None)  # fmt: skip
                handler = bytes(moov[hdlr[0] + hdlr[1] + 8 : hdlr[0] + hdlr[1] + 12]) if hdlr else None
            chain.append((box[0], box[2]))
            start, end = box[0] + box[2], box[0] + box[1]
        else:
            if handler != b"vide":
                continue
            stsd_at, stsd_header = chain[-1]
            entry = next(iter(bmff.boxes(moov, stsd_at + stsd_header + 8, end)), None)  # after version, flags, count
            if entry is not None:
                return chain, entry[1], entry[2]
    return None


def _read_moov(path: Path) -> tuple[bytearray, int, int, bool] | None:
    where = _find_moov(path)
    if where is None:
        return None
    at, size, after = where
    with path.open("rb") as f:
        f.seek(at)
        moov = bytearray(f.read(size))
    return (moov, at, size, after) if len(moov) == size else None


def read(path: str | os.PathLike[str]) -> bytes:
    """The ``sv3d`` and ``st3d`` boxes of the MP4 or MOV ``path``'s first video sample entry, as they are (empty where
    it has none, or is not such a file)."""
    try:
        got = _read_moov(Path(path))
    except OSError:
        return b""
    if got is None:
        return b""
    moov = got[0]
    found = _video_entry(moov)
    if found is None:
        return b""
    _, at, size = found
    header = 16 if struct.unpack_from(">I", moov, at)[0] == 1 else 8
    return b"".join(bytes(moov[a : a + s]) for k, a, s, _ in bmff.boxes(moov, at + header + _VISUAL_FIELDS, at + size)
                    if k in BOXES)  # fmt: skip


def _grow(moov: bytearray, at: int, header: int, by: int) -> None:
    if header == 16:
        struct.pack_into(">Q", moov, at + 8, struct.unpack_from(">Q", moov, at + 8)[0] + by)
    else:
        struct.pack_into(">I", moov, at, struct.unpack_from(">I", moov, at)[0] + by)


def _shift_chunks(moov: bytearray, since: int, by: int) -> bool:
    """Add ``by`` to every chunk offset (``stco``, ``co64``) at or past ``since``; ``False`` where a 32-bit one
    would overflow."""
    def walk(start: int, end: int) -> bool:
        for kind, at, size, header in bmff.boxes(moov, start, end):
            if kind in (*_PATH[:-1], b"moov") and not walk(at + header, at + size):
                return False
            if kind in (b"stco", b"co64"):
                wide = kind == b"co64"
                fmt, step = (">Q", 8) if wide else (">I", 4)
                count = min(struct.unpack_from(">I", moov, at + header + 4)[0], (size - header - 8) // step)
                for i in range(count):
                    pos = at + header + 8 + i * step
                    value = struct.unpack_from(fmt, moov, pos)[0]
                    if value >= since:
                        if not wide and value + by >= 1 << 32:
                            return False
                        struct.pack_into(fmt, moov, pos, value + by)
        return True

    return walk(8, len(moov))


#: Stereo layouts as ffmpeg names them, by their ``st3d`` stereo mode.
_STEREO_MODES = {"top and bottom": 1, "side by side": 2}


def made(projection: str | None, stereo: str | None) -> bytes:
    """The ``sv3d`` and ``st3d`` boxes of a source that says its projection otherwise (Matroska's elements, a
    YouTube 360° WebM's; an older camera's XML, Spherical Video V1), as ffmpeg names them: a whole equirectangular
    sphere (no bounds; the view as recorded: its yaw, pitch and roll 0) and a top-and-bottom or side-by-side layout
    (a flat 3D video's alone); empty for other projections (a cube map's layout and padding are not named)."""
    out = b""
    if stereo in _STEREO_MODES:
        out += bmff.full_box(b"st3d", bytes([_STEREO_MODES[stereo]]))
    if projection == "equirectangular":
        out += bmff.box(b"sv3d", bmff.full_box(b"svhd", b"classsr\x00") + bmff.box(
            b"proj", bmff.full_box(b"prhd", bytes(12)) + bmff.full_box(b"equi", bytes(16))))
    return out if projection in (None, "equirectangular") else b""


def copy(source: str | os.PathLike[str], output: str | os.PathLike[str], boxes: bytes | None = None) -> bool:
    """Put the MP4 or MOV ``source``'s projection boxes (:func:`read`), or ``boxes``, into the MP4 or MOV ``output``'s
    first video sample entry, in place of any it has; ``True`` where it did (``False``: there are none, or the
    output is not such a file)."""
    boxes = read(source) if boxes is None else boxes
    output = Path(output)
    got = _read_moov(output) if boxes else None
    if got is None:
        return False
    moov, moov_at, moov_size, media_after = got
    found = _video_entry(moov)
    if found is None:
        return False
    chain, at, size = found
    header = 16 if struct.unpack_from(">I", moov, at)[0] == 1 else 8
    old = [(a, s) for k, a, s, _ in bmff.boxes(moov, at + header + _VISUAL_FIELDS, at + size) if k in BOXES]
    for a, s in reversed(old):  # the output's own, were ffmpeg ever to write them
        del moov[a : a + s]
    removed = sum(s for _, s in old)
    end = at + size - removed
    moov[end:end] = boxes
    by = len(boxes) - removed
    for box_at, box_header in [*chain, (at, header)]:
        _grow(moov, box_at, box_header, by)
    if media_after and not _shift_chunks(moov, moov_at + moov_size, by):
        return False
    if not media_after and moov_at + moov_size == output.stat().st_size:  # the last box: rewritten in place
        with output.open("r+b") as f:
            f.seek(moov_at)
            f.write(moov)
            f.truncate()
        return True
    tmp = output.with_name(output.name + ".sv3d")
    try:
        with output.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(_limited(src, moov_at), dst)
            dst.write(moov)
            src.seek(moov_at + moov_size)
            shutil.copyfileobj(src, dst)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return True


class _limited:
    """The first ``n`` bytes of a file, for :func:`shutil.copyfileobj`."""

    def __init__(self, f: object, n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)  # type: ignore[attr-defined]
        self.left -= len(data)
        return data
