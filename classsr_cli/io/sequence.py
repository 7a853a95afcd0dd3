"""Numbered image sequences (an editor's or a renderer's frames: ``shot_0001.png``, ``shot_0002.png``, ...) read as a
video by ffmpeg's ``image2`` demuxer. Paths only: no Pillow, no torch.

A sequence is named by a folder that holds one (``frames/``), by a printf pattern (``frames/shot_%04d.png``, as
ffmpeg and editors name them), or by a quoted glob of its frames (``'frames/*.png'``). Its numbers must run without a gap: ffmpeg stops at the first missing one, so a gap
is an error here rather than a video that ends early.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from classsr_cli.errors import InputError

__all__ = ["DEFAULT_RATE", "FRAME_SUFFIXES", "Sequence", "find_sequence", "is_pattern", "is_sequence", "numbered",
           "sequence_of", "sequence_stem"]

#: Suffixes of the frames ffmpeg's image2 demuxer decodes and classsr reads as a sequence.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jxl", ".dpx", ".exr", ".hdr", ".tga", ".ppm",
                  ".pgm", ".pnm", ".pfm")
#: Frames a second where ``--fps`` gives none: ffmpeg's own default for an image sequence.
DEFAULT_RATE = Fraction(25)
#: Frames classsr does not read, and why (a folder of them is told so, not that it holds no sequence).
_REFUSED = {".avif": "AVIF frames are not read as a sequence (an animated AVIF is: give the file); `classsr upscale` takes them one by one",
            ".heic": "HEIC frames are not read as a sequence (ffmpeg decodes none); `classsr upscale` takes them "
                     "one by one",
            ".heif": "HEIF frames are not read as a sequence (ffmpeg decodes none); `classsr upscale` takes them "
                     "one by one"}  # fmt: skip
_PRINTF = re.compile(r"%(?:0(\d+))?d")  # %d, %04d: the names ffmpeg writes and reads


@dataclass(frozen=True)
class Sequence:
    """A numbered sequence of frames: ``pattern`` (printf, ``%`` in the names doubled), the first number ``start``,
    ``count`` frames numbered ``start`` to ``start + count - 1``, the first frame's file ``first``."""

    pattern: Path
    start: int
    count: int
    first: Path

    def frame(self, number: int) -> Path:
        """The file of frame ``number``."""
        return self.pattern.with_name(self.pattern.name % number)

    def demux(self, rate: Fraction) -> tuple[str, ...]:
        """ffmpeg's input options that read it at ``rate`` frames a second, from its first number."""
        return ("-f", "image2", "-pattern_type", "sequence", "-start_number", str(self.start),
                "-framerate", str(rate))  # fmt: skip


def is_pattern(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s name is a printf pattern of numbered files (``%04d``, ``%d``) and no file of its own."""
    path = Path(path)
    return _PRINTF.search(path.name) is not None and not path.exists()


def _is_glob(path: Path) -> bool:
    return any(c in path.name for c in "*?[") and not path.exists()


def is_sequence(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a sequence: a folder, a pattern (:func:`is_pattern`), or a glob of its frames."""
    path = Path(path)
    return path.is_dir() or is_pattern(path) or _is_glob(path)


def numbered(pattern: str | os.PathLike[str]) -> dict[int, Path]:
    """The files the printf ``pattern`` names that exist, by number, as ffmpeg reads and writes the names: ``%04d``
    is 0001 ... 9999, 10000 ... (not 1 or 00001); ``%d`` is 1, 2, ... 10 (not 01)."""
    pattern = Path(pattern)
    m = _PRINTF.search(pattern.name)
    if m is None:
        raise ValueError(f"{pattern}: not a numbered pattern")
    head, tail = pattern.name[: m.start()].replace("%%", "%"), pattern.name[m.end() :].replace("%%", "%")
    width = int(m.group(1) or 0)
    digits = re.compile(rf"{re.escape(head)}(\d+){re.escape(tail)}")
    found: dict[int, Path] = {}
    with contextlib.suppress(OSError):
        for p in pattern.parent.iterdir():
            d = digits.fullmatch(p.name)
            if d and d.group(1) == f"{int(d.group(1)):0{width}d}" and p.is_file():
                found[int(d.group(1))] = p
    return found


def sequence_stem(path: str | os.PathLike[str]) -> str:
    """The name outputs of a sequence are named after: a pattern's text before its number, without trailing
    separators (``shot`` for ``shot_%04d.png``), else its folder's name (``frames`` for ``frames/`` or ``frames/%04d.png``)."""
    path = Path(path)
    if path.is_dir():
        return path.resolve().name or "frames"
    head = re.split(r"[*?\[]", _PRINTF.split(path.name, maxsplit=1)[0], maxsplit=1)[0]  # a glob's too
    head = head.replace("%%", "%").rstrip("_-. ")
    return head or path.parent.resolve().name or "frames"


def _contiguous(numbers: list[int], pattern: Path, width: int) -> None:
    """Raise :class:`InputError` at the first number missing between the first and the last."""
    for a, b in itertools.pairwise(numbers):
        if b != a + 1:
            missing = f"{a + 1:0{width}d}" + (f" to {b - 1:0{width}d}" if b - a > 2 else "")
            raise InputError(f"{pattern}: frame {missing} is missing (frames {numbers[0]:0{width}d}-{a:0{width}d} and "
                             f"{b:0{width}d}-{numbers[-1]:0{width}d} are there); a sequence runs without a gap")


def _of_pattern(path: Path) -> Sequence:
    m = _PRINTF.search(path.name)
    assert m is not None
    width, folder = int(m.group(1) or 0), path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: no such folder ({folder})")
    found = numbered(path)
    if not found:
        raise InputError(f"{path}: no such file (no frame in {folder} is named by this pattern)")
    numbers = sorted(found)
    _contiguous(numbers, path, width)
    return Sequence(path, numbers[0], len(numbers), found[numbers[0]])


def _of_folder(folder: Path, glob: str | None = None) -> Sequence:
    """The one sequence among the files of ``folder`` (those ``glob`` matches, where given)."""
    refused: dict[str, int] = {}
    named: list[tuple[Path, list[str]]] = []  # each frame's name split at its numbers: text, digits, ..., text
    where = folder / glob if glob else folder
    if glob and not folder.is_dir():
        raise InputError(f"{where}: no such folder ({folder})")
    for p in sorted(folder.glob(glob) if glob else folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        suffix = p.suffix.lower()
        if suffix in _REFUSED:
            refused[suffix] = refused.get(suffix, 0) + 1
        parts = re.split(r"(\d+)", p.stem)
        if suffix in FRAME_SUFFIXES and len(parts) > 1:
            named.append((p, parts))
    # The frame number is the last number in the names (shot_v2.0001.png), unless an earlier one splits them into
    # fewer sequences (shot.0001.v2.png: the last is the same in every name).
    groups: dict[tuple[str, str], dict[str, Path]] = {}
    for back in range(1, 4):
        these: dict[tuple[str, str], dict[str, Path]] = {}
        for p, parts in named:
            at = len(parts) - 2 * back
            if at >= 1:
                head, tail = "".join(parts[:at]), "".join(parts[at + 1 :]) + p.suffix
                these.setdefault((head, tail), {})[parts[at]] = p
        if not groups or (sum(map(len, these.values())) == len(named) and len(these) < len(groups)):  # every frame
            groups = these
    holds = "matches" if glob else "holds"
    if not groups:
        if refused:
            suffix = max(refused, key=lambda s: refused[s])
            raise InputError(f"{where}: {holds} {refused[suffix]} {suffix} frame(s): {_REFUSED[suffix]}")
        raise InputError(f"{where}: {holds} no numbered image sequence (frames named like shot_0001.png, of "
                         f"{', '.join(FRAME_SUFFIXES)}); to upscale the pictures, use `classsr upscale {where}`")
    if len(groups) > 1:
        listed = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        names = ", ".join(f"{_printf(h, t, files)}: {len(files)} frame{'s' if len(files) > 1 else ''}" for (h, t), files in listed[:3])
        (h, t), files = listed[0]
        raise InputError(f"{where}: {holds} {len(groups)} numbered sequences ({names}{', ...' if len(groups) > 3 else ''});"
                         f" give one as INPUT, e.g. {folder / _printf(h, t, files)}")
    (head, tail), files = next(iter(groups.items()))
    seq = _of_pattern(folder / _printf(head, tail, files))
    if glob and seq.count != len(files):  # ffmpeg reads a sequence on to its last number
        raise InputError(f"{where}: matches {len(files)} of the {seq.count} frames of {seq.pattern}, which is read "
                         "whole; --start and --duration take a part")
    return seq


def _printf(head: str, tail: str, files: dict[str, Path]) -> str:
    """The printf pattern of the frames ``head + digits + tail``: the shortest number's width, padded, where every
    number is written so (``%04d``: 0001 ... 10000); else ffmpeg's ``%d`` (1 ... 10)."""
    width = min(len(d) for d in files)
    if not all(d == f"{int(d):0{width}d}" for d in files):
        width = 0
    number = f"%0{width}d" if width > 1 else "%d"
    return f"{head.replace('%', '%%')}{number}{tail.replace('%', '%%')}"


def sequence_of(frame: str | os.PathLike[str]) -> Sequence | None:
    """The numbered sequence of more than one frame that the file ``frame`` belongs to (its name's last number
    varying), or ``None``."""
    frame = Path(frame)
    parts = re.split(r"(\d+)", frame.stem)
    if len(parts) < 2 or frame.suffix.lower() not in FRAME_SUFFIXES:
        return None
    files = {parts[-2]: frame}
    head, tail = "".join(parts[:-2]), parts[-1] + frame.suffix
    pattern = frame.with_name(_printf(head, tail, files))
    try:
        seq = _of_pattern(pattern)
    except InputError:  # a gap: not offered
        return None
    return seq if seq.count > 1 else None


def find_sequence(path: str | os.PathLike[str]) -> Sequence:
    """The sequence ``path`` names (:func:`is_sequence`); raises :class:`InputError` when there is none, several,
    or a frame is missing."""
    path = Path(path)
    if path.is_dir():
        return _of_folder(path)
    if _is_glob(path) and not is_pattern(path):
        return _of_folder(path.parent, path.name)
    return _of_pattern(path)
