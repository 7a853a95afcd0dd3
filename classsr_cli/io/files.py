"""Which files are images, finding them in folders, and making output folders. Paths only: no Pillow, no torch."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from classsr_cli.errors import OutputError

__all__ = ["IMAGE_SUFFIXES", "MOTION_STEM", "RAW_ADVICE", "RAW_DEVELOP", "RAW_SUFFIXES", "VIDEO_SUFFIXES", "files_in", "images_in", "is_image_name", "is_own_output", "make_folder", "natural_key", "no_images", "unread_advice", "unread_kinds",
           "url_refusal", "without_own_outputs"]

#: File suffixes read as images (folders, globs, bench sets, training data).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".webp", ".avif", ".heic", ".heif", ".hif", ".jxl", ".exr",
                  ".hdr", ".tif", ".tiff", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pbm", ".pnm", ".dds", ".pfm",
                  ".psd", ".psb", ".jp2", ".j2k", ".j2c", ".jpc", ".jpf", ".qoi", ".pam", ".ico", ".cur", ".icns", ".blp",
                  ".ora", ".kra")
#: Suffixes of camera RAW files (sensor data, not a picture yet: read, they would give only an embedded preview).
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf", ".pef",
                ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".erf", ".mrw", ".mos", ".kdc", ".dcr", ".rwl", ".raw")
#: What to do with camera RAW files, said where one is given.
RAW_ADVICE = ("develop it first (Lightroom, Capture One, darktable, RawTherapee) and export a 16-bit TIFF or PNG; "
              "classsr upscales developed pictures")
#: What to do with several camera RAW files found in a folder.
RAW_DEVELOP = "develop them first and export 16-bit TIFF or PNG"
#: Suffixes of common video files: given to ``classsr upscale``, they are pointed to ``classsr video``.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".flv",
                  ".wmv", ".3gp", ".ogv")


#: A URL's scheme, as a name starts with it (``https://``; a path given as one has its ``//`` made ``/``).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+:)//?(?=[^/])")


def url_refusal(spec: str | os.PathLike[str], *, output: bool = False) -> str | None:
    """Why ``spec``, a name that is not a file here, is refused where it is a URL (``https://...``): classsr reads
    and writes (``output``) files on this machine, and fetches or sends nothing; ``None`` for anything else."""
    text = os.fspath(spec)
    if not _URL.match(text) or Path(text).exists():
        return None
    url = _URL.sub(r"\1//", text, count=1)
    if output:
        return f"{url}: a URL; classsr writes files on this machine and sends nothing: write here, then upload it"
    return f"{url}: a URL; classsr reads files on this machine and fetches nothing: download it first"


def make_folder(path: str | os.PathLike[str]) -> Path:
    """Make the output folder ``path`` with its parents, where it is missing: an :class:`OutputError` in one line where
    it cannot be made (a file in its place or in a parent's, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError.of(path, e) from None
    return path


def is_image_name(path: Path) -> bool:
    """An image suffix, and not a hidden file."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def images_in(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and below it with ``recursive``), sorted; hidden files and folders
    (a name starting with ``.``) below ``folder`` are skipped."""
    return [p for p in files_in(folder, recursive=recursive) if is_image_name(p)]


def files_in(folder: Path, *, recursive: bool = False) -> list[Path]:
    """Every file in ``folder`` (and below it with ``recursive``), sorted, but hidden ones and those in hidden
    folders below ``folder``."""
    walk = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in walk if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def natural_key(path: Path) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """A sort key that orders numbers by value, as file managers do: ``frame2.png`` before ``frame10.png``; a path
    by its folders' names first (``a/b`` by ``a``, then ``b``), case folded. For the order ``upscale`` runs a
    folder in; training data and bench sets keep plain sorting (their order is part of a recipe's data hash)."""
    return tuple(tuple((0, int(part)) if part.isdigit() else (1, part)
                       for part in re.split(r"(\d+)", name.casefold()) if part) for name in path.parts)


def unread_advice(paths: Sequence[Path]) -> str:
    """What to do with ``paths`` (files that are not images classsr reads) where camera RAW files are among them;
    empty otherwise."""
    raw = sum(p.suffix.lower() in RAW_SUFFIXES for p in paths)
    return f"camera RAW{'' if raw == len(paths) else f' ({raw})'}: {RAW_DEVELOP}" if raw else ""


def no_images(where: object, unread: Sequence[Path], *, own: int = 0, hint: str = "", place: str = "this folder") -> str:
    """The one line of every command for a folder (or folders, ``where`` naming them and ``place`` saying which)
    without images to read: a ``hint`` after it (`` (try --recursive)``), then the earlier classsr outputs left out
    and the files not read, by kind, with what to do with them."""
    also = "".join(f"; {what}" for what in (
        f"{own} earlier classsr output(s) left out" if own else "",
        f"{unread_kinds(unread)} not read ({unread_advice(unread) or 'convert them to PNG, JPEG or TIFF first'})"
        if unread else "",
    ) if what)  # fmt: skip
    return f"{where}: no images in {place}{hint}{also}"


def unread_kinds(paths: Sequence[Path]) -> str:
    """What ``paths`` (files that are not images classsr reads) are, by suffix, most first: ``2 .dng, 1 .xmp``."""
    kinds: dict[str, int] = {}
    for p in paths:
        kinds[p.suffix or "(no suffix)"] = kinds.get(p.suffix or "(no suffix)", 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


_CLASSMAP_TAG = "_classmap"
#: The end of a Motion Photo's stem (Pixel's ``PXL_1.MP.jpg``), kept last in its outputs' names.
MOTION_STEM = ".MP"
_SCALE_TAG = re.compile(r"(.+)_(?:x\d+(?:\.\d+)?|[wh]\d+|\d+x\d+)")


def is_own_output(path: Path) -> bool:
    """Whether ``path`` looks like an output of an earlier classsr run beside its input: its stem ends in
    ``_x{scale}`` (or an output size's ``_w3000``, ``_h2000``, ``_3000x2000``) and/or ``_classmap`` and the image
    it was made from (that stem without the tag) is beside it.

    ``photo_x4.png``, ``photo_x2.5.jpg``, ``photo_w3000.jpg``, ``photo_x4_classmap.png`` and ``out_classmap.png``
    next to ``photo.png`` (or ``out.png``) are, and ``PXL_1_x4.MP.jpg`` next to ``PXL_1.MP.jpg`` (a Motion Photo's,
    :func:`classsr_cli.plan.default_output_name`); ``photo_x4.png`` alone is not.
    """
    stem, bases = path.stem, []
    if stem.endswith(_CLASSMAP_TAG) and len(stem) > len(_CLASSMAP_TAG):
        stem = stem.removesuffix(_CLASSMAP_TAG)
        bases.append(stem)
    mp = MOTION_STEM if stem.endswith(MOTION_STEM) and stem != MOTION_STEM else ""  # (PXL_1_x4.MP.jpg: PXL_1.MP.jpg's)
    m = _SCALE_TAG.fullmatch(stem.removesuffix(mp) if mp else stem)
    if m:
        bases.append(m.group(1) + mp)
    suffixes = {*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)}
    return any(path.with_name(base + suffix).is_file() for base in bases for suffix in suffixes)


def without_own_outputs(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """``paths`` split into (inputs, classsr's own earlier outputs), see :func:`is_own_output`."""
    own = [p for p in paths if is_own_output(p)]
    return [p for p in paths if p not in own], own
