"""Motion Photos (Google's Motion Photo format 1.0: what Pixel and other Android phones save with a few seconds of
video, and version 1's "MicroVideo"): a picture with a short MP4 appended, which its XMP describes (the Camera
namespace's ``MotionPhoto``, the Container directory's items, each secondary one's ``Length``, the picture's
``Padding``).

The video is read as media3 (Android's own player library) finds it, from the end of the file back, and checked to
start as an MP4 does; it is carried as it came (the still is upscaled, the video is not) and appended again behind a
JPEG output, or in an ``mpvd`` box behind a HEIC or AVIF one (as Samsung's HEIC holds it: a file of boxes still,
which libheif and libavif open; the box's header is the picture's padding in the XMP). An output that does not keep
the video (another format; none found) is said not to be a Motion Photo in its XMP (``MotionPhoto`` 0, as the format
asks of an editor that drops the video), so a reader does not look for one.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from xml.parsers import expat

from classsr_cli.io import xmp as xmp_io

__all__ = ["FORMATS", "for_output", "lead", "read", "video_of"]

#: The output formats (Pillow's names) a Motion Photo's video is kept behind, and the bytes between the picture and
#: the video there (a HEIF's ``mpvd`` box's header).
FORMATS = {"JPEG": 0, "HEIF": 8, "AVIF": 8}
_CAMERA = "http://ns.google.com/photos/1.0/camera/"
_ITEM = "http://ns.google.com/photos/1.0/container/item/"
#: The containers of the video item (MP4; a QuickTime one as media3 also takes).
_VIDEO = ("video/mp4", "video/quicktime")
#: The flags that say a file is a Motion Photo (version 1's too), as attributes or elements, set.
_ON = re.compile(rb'(:(?:MotionPhoto|MicroVideo)\s*=\s*["\'])1(["\'])|(:(?:MotionPhoto|MicroVideo)>\s*)1(\s*<)')
_PRIMARY = re.compile(rb'<[\w.-]+:Item\b[^>]*?\bItem:Semantic="Primary"[^>]*>')
_PADDING = re.compile(rb'(\bItem:Padding\s*=\s*["\'])\d+(["\'])')


def _described(xmp: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The Camera namespace's properties of ``xmp`` (as attributes or elements) and its Container directory's items,
    in order (each item's attributes in the Item namespace: ``Mime``, ``Semantic``, ``Length``, ``Padding``)."""
    camera: dict[str, str] = {}
    items: list[dict[str, str]] = []
    open_: list[str | None] = []
    text: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        item: dict[str, str] = {}
        for key, value in attrs.items():
            space, _, local = key.rpartition(" ")
            if space == _CAMERA:
                camera[local] = value
            elif space == _ITEM:
                item[local] = value
        if item:
            items.append(item)
        space, _, local = name.rpartition(" ")
        open_.append(local if space == _CAMERA else None)
        text.clear()

    def end(name: str) -> None:
        prop, value = open_.pop(), "".join(text).strip()
        if prop is not None and value:
            camera[prop] = value
        text.clear()

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = text.append
    xmp_io.parse(parser, xmp)
    return camera, items


def read(path: Path, xmp: bytes | None) -> bytes | None:
    """The video of the Motion Photo ``path`` (its XMP ``xmp``): its Container directory's last item, a video, its
    ``Length`` counted back from the end of the file (as media3 counts it; an item after it would be lost, so none is
    taken), or version 1's last ``MicroVideoOffset`` bytes; with the bytes before it that :func:`lead` keeps.
    ``None`` where the XMP says none, or what it points at does not start as an MP4 (a ``ftyp`` box)."""
    if not xmp or not _ON.search(xmp):
        return None
    try:
        camera, items = _described(xmp)
        skip = _lead_of(camera, items)
        size = path.stat().st_size
        span = None
        if camera.get("MotionPhoto") == "1" and len(items) > 1 and items[-1].get("Mime") in _VIDEO:
            span = (size - int(items[-1].get("Length", "0") or 0) - skip, size)  # (the last item: nothing after it is lost)
        elif camera.get("MicroVideo") == "1":
            span = (size - int(camera.get("MicroVideoOffset", "0")), size)
        if span is None or not 0 < span[0] < span[1] - skip - 8:
            return None
        with path.open("rb") as f:
            f.seek(span[0])
            tail = f.read(span[1] - span[0])
    except (expat.ExpatError, ValueError, OSError):
        return None
    return tail if tail[skip + 4 : skip + 8] == b"ftyp" else None


def video_of(path: Path) -> bytes | None:
    """The MP4 of the Motion Photo ``path`` (a JPEG, HEIC or AVIF one), its own bytes alone (what ``classsr video``
    upscales); ``None`` for any other file, a video among them."""
    from PIL import Image

    from classsr_cli.io.files import VIDEO_SUFFIXES
    from classsr_cli.io.image import pillow_look, readable_formats

    if path.suffix.lower() in VIDEO_SUFFIXES or not path.is_file():
        return None
    readable_formats()  # (HEIC's plugin)
    try:
        with pillow_look(path, header=True), Image.open(path) as im:
            xmp = im.info.get("xmp")
    except Exception:  # a file Pillow cannot open (its plugins raise what they like: a DDS format not implemented) is
        return None  # no Motion Photo
    tail = read(path, xmp) if isinstance(xmp, bytes) else None
    return None if tail is None or not isinstance(xmp, bytes) else tail[lead(xmp) :]


def lead(xmp: bytes) -> int:
    """The bytes between the picture and its video that :func:`read` keeps with the video: the picture's
    ``Padding`` where the directory holds the picture and the video alone (a Samsung's: the start of its trailer,
    whose own offsets then stay true), else none (what lies between is another item's, a gain map's, written anew)."""
    try:
        return _lead_of(*_described(xmp))
    except (expat.ExpatError, ValueError):
        return 0


def _lead_of(camera: dict[str, str], items: list[dict[str, str]]) -> int:
    """:func:`lead` of a parsed XMP (:func:`_described`); ``ValueError`` for a padding that is not a number."""
    return max(0, int(items[0].get("Padding", "0") or 0)) if len(items) == 2 and camera.get("MotionPhoto") == "1" else 0


def for_output(xmp: bytes | None, tail: bytes | None, fmt: str, gain_map: bool = False) -> tuple[bytes | None, bytes | None]:
    """An output's XMP and what is appended to it: a ``fmt`` output of :data:`FORMATS` keeps a Motion Photo's video
    (``tail``, :func:`read`'s: behind a JPEG as it came, with the bytes before it where the picture is alone and
    the output has no ``gain_map`` either; in an ``mpvd`` box behind a HEIC or AVIF), its XMP giving the picture the
    padding before it; any other, or where the picture's directory item cannot be given one (written without the
    ``Item:`` prefix), keeps none and its XMP says it is no Motion Photo."""
    skip = lead(xmp) if tail is not None and xmp else 0
    if fmt == "JPEG" and skip and not gain_map and tail is not None:
        return xmp, tail  # (as it came: the picture's padding and what it holds, then the video)
    video = tail[skip:] if tail is not None else None
    if video is not None and xmp and fmt in FORMATS and (padded := _padded(xmp, FORMATS[fmt])) is not None:
        return padded, video if fmt == "JPEG" else struct.pack(">I", len(video) + 8) + b"mpvd" + video
    if not xmp or not _ON.search(xmp):
        return xmp, None
    return _ON.sub(lambda m: m.group(1) + b"0" + m.group(2) if m.group(1) else m.group(3) + b"0" + m.group(4), xmp), None


def _padded(xmp: bytes, padding: int) -> bytes | None:
    """``xmp`` with its directory's picture item given ``padding`` bytes after the picture (version 1's
    ``MicroVideoOffset``, counted from the end of the file, needs none); ``None`` where its item cannot be given it."""
    found = _PRIMARY.search(xmp)
    if found is None:
        return xmp if b"MicroVideoOffset" in xmp else None
    item = found.group(0)
    if _PADDING.search(item):
        item = _PADDING.sub(rb"\g<1>%d\g<2>" % padding, item)
    elif padding:
        item = item.replace(b'Item:Semantic="Primary"', b'Item:Semantic="Primary" Item:Padding="%d"' % padding, 1)
    return xmp[: found.start()] + item + xmp[found.end() :]
