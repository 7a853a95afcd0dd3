"""Check that camera photos' maker notes read the same after classsr writes their metadata.

Each JPEG in a folder is read and written again by classsr's image I/O (``read_image``, ``write_image``: the path an
upscale takes, without the model, whose pixels do not matter here) into each of the given formats, and its maker note
is read from the source and the output by exiftool (``-MakerNotes:all``, with its warnings) and by exiv2 (``-pa``,
where installed; what digiKam, darktable and GIMP read). A JSON line per file and format on stdout:
the tags each tool reads from either file, how many differ, and exiftool's warnings; on stderr, how many outputs
each tool reads as it reads the source (exiftool: with no warning the source has not). Files without an EXIF maker
note (a Canon CIFF, say) are left out.

    python scripts/makernote_check.py CAMERA_JPEGS/ --formats jpg png tif heic

Neither tool is a dependency of classsr: this is a manual check (Debian: ``libimage-exiftool-perl``, ``exiv2``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from classsr_cli.io import exif
from classsr_cli.io.image import read_image, write_image


def _exiftool(path: Path) -> tuple[set[str], list[str]]:
    got = subprocess.run(["exiftool", "-a", "-u", "-s", "-G1", "-MakerNotes:all", "-Warning", str(path)],
                         capture_output=True, text=True, errors="replace", check=False)  # fmt: skip
    tags, warnings = set(), []
    for line in got.stdout.splitlines():
        name, _, value = line.partition(":")
        if name.split() == ["[ExifTool]", "Warning"]:
            warnings.append(value.strip())
        else:
            tags.add(" ".join(line.split()))
    return tags, warnings


def _exiv2(path: Path) -> set[str]:
    if shutil.which("exiv2") is None:
        return set()
    got = subprocess.run(["exiv2", "-pa", str(path)], capture_output=True, text=True, errors="replace", check=False)
    makers = ("Canon", "Nikon", "Panasonic", "Sony", "Olympus", "Fujifilm", "Pentax", "Minolta", "Samsung", "Sigma",
              "Casio", "Apple")  # fmt: skip
    return {" ".join(line.split()) for line in got.stdout.splitlines()
            if line.startswith("Exif.") and line.split(".")[1].startswith(makers)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--formats", nargs="+", default=["jpg", "png", "tif", "heic"])
    args = parser.parse_args()
    if shutil.which("exiftool") is None:
        sys.stderr.write("exiftool is not installed\n")
        return 2
    outputs = alike = alike_exiv2 = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(args.folder.glob("*.[jJ][pP][gG]")):
            pic = read_image(src)
            tags, warnings = _exiftool(src)
            lines = _exiv2(src)
            if not tags or pic.exif is None or exif.find(pic.exif) is None:
                continue  # no EXIF maker note
            for fmt in args.formats:
                out = Path(tmp) / f"{src.stem}.{fmt}"
                write_image(out, pic, overwrite=True)
                got, said = _exiftool(out)
                seen = _exiv2(out)
                outputs += 1
                alike += not (tags ^ got or set(said) - set(warnings))
                alike_exiv2 += not lines ^ seen
                sys.stdout.write(json.dumps({"file": src.name, "format": fmt, "exiftool_tags": len(tags),
                                  "exiftool_differ": len(tags ^ got), "exiftool_warnings": said,
                                  "source_warnings": warnings, "exiv2_tags": len(lines), "exiv2_out": len(seen),
                                  "exiv2_differ": len(lines ^ seen)}) + "\n")  # fmt: skip
    sys.stderr.write(f"{outputs} outputs: exiftool reads {alike} maker notes as the source's, exiv2 {alike_exiv2}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
