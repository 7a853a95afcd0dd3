"""OpenRaster (``.ora``: MyPaint's, GIMP's and Krita's exchange format) and Krita documents (``.kra``): the flattened
picture they hold beside their layers.

Both are ZIP files whose first entry is ``mimetype`` (``image/openraster``,
``application/x-krita``: told by a file's first bytes, as ODF's are), with the layers and ``mergedimage.png``, the
picture as the painter sees it, all layers composited, which OpenRaster requires and Krita writes. classsr reads that
PNG (:mod:`classsr_cli.io.image` reads it as a PNG of its own); the layers are not read.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

__all__ = ["KINDS", "LIMIT", "kind", "merged_png"]

#: Each format's ``mimetype`` and its name.
KINDS = {b"image/openraster": "OpenRaster", b"application/x-krita": "Krita"}
#: The largest merged PNG read, in bytes (its pixels are checked against the pixel limit once it is opened: a
#: 100-megapixel picture's PNG, at 16 bits with alpha, is at most about 800 MB).
LIMIT = 1 << 30
_MERGED = "mergedimage.png"


def kind(head: bytes) -> str | None:
    """``OpenRaster`` or ``Krita`` for a file starting with ``head`` (its first 64 bytes); ``None`` otherwise. The
    ``mimetype`` entry is stored, or (Krita 5.2's) deflated as a stored block, which reads the same a few bytes on."""
    if head[:4] != b"PK\x03\x04" or head[30:38] != b"mimetype":
        return None
    start = 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
    content = head[start:]
    if head[8:10] == b"\x08\x00":  # deflated
        try:
            content = zlib.decompressobj(-15).decompress(content)
        except zlib.error:
            return None
    return next((name for mime, name in KINDS.items() if content.startswith(mime)), None)


def merged_png(path: Path) -> bytes:
    """The document's merged picture, a PNG's bytes. ``ValueError`` where it holds none, it is larger than
    :data:`LIMIT`, or the ZIP does not read."""
    try:
        with zipfile.ZipFile(path) as z:
            try:
                info = z.getinfo(_MERGED)
            except KeyError:
                raise ValueError(f"no merged picture ({_MERGED}), only its layers") from None
            if info.file_size > LIMIT:
                raise ValueError(f"its merged picture is {info.file_size:,} bytes, more than the {LIMIT:,} read")
            return z.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as e:
        raise ValueError(f"its ZIP does not read: {e}") from None  # (RuntimeError: encrypted)
