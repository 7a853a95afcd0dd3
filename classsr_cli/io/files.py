"""Which files are images, and finding them in folders. Paths only: no Pillow, no torch."""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "images_in", "is_image_name"]

#: File suffixes read as images (folders, globs, bench sets, training data).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def is_image_name(path: Path) -> bool:
    """An image suffix, and not a hidden file."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def images_in(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (and below it with ``recursive``), sorted; hidden files and folders
    (a name starting with ``.``) below ``folder`` are skipped."""
    walk = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in walk
        if p.is_file() and is_image_name(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip
