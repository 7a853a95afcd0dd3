"""Read every file in a folder with classsr's image I/O and write each picture back in several formats: list what ends
otherwise than in a picture or in one of classsr's own errors (an exception a run would report as "internal error").

Each file is read by ``read_image``; a picture is written by ``write_image`` into each of ``--formats`` (and the
format of its default output, :func:`~classsr_cli.io.image.output_suffix`'s, as a run writes it) and read back. A
JSON line on stdout for each problem: the file, the stage (``read``, ``write FMT``; ``(typed)`` where it is one of
classsr's errors on writing, which a run says in one line) and the error; on stderr, how many files were read,
refused in one line, and the problems. Meant for collections of odd and damaged files (Pillow's
``Tests/images``: ``python scripts/read_sweep.py Pillow/Tests/images``), which are not shipped.

    python scripts/read_sweep.py FOLDER [--formats png jpg tif webp heic avif bmp tga qoi ppm exr jp2 dds jxl]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

from classsr_cli.errors import ClassSRError
from classsr_cli.io.image import output_suffix, read_image, write_image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--formats", nargs="+", default=["png", "jpg", "tif"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # (what a run says of them is its notes: read_image makes Pillow's warnings notes)
    problems = read = refused = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(p for p in args.folder.rglob("*") if p.is_file()):
            try:
                pic = read_image(src)
            except ClassSRError:
                refused += 1
                continue
            except Exception as e:
                problems += _say(src, "read", e)
                continue
            read += 1
            own = output_suffix(src.suffix).lower().lstrip(".")  # (what a run writes beside it)
            for fmt in dict.fromkeys([*args.formats, own]):
                try:
                    write_image(Path(tmp) / f"out.{fmt}", pic, overwrite=True)
                    read_image(Path(tmp) / f"out.{fmt}")
                except ClassSRError as e:
                    problems += _say(src, f"write {fmt} (typed)", e)
                except Exception as e:
                    problems += _say(src, f"write {fmt}", e)
    sys.stderr.write(f"read {read}, refused in one line {refused}, problems {problems}\n")
    return 1 if problems else 0


def _say(src: Path, stage: str, e: Exception) -> int:
    frames = traceback.extract_tb(e.__traceback__)
    sys.stdout.write(json.dumps({"file": str(src), "stage": stage, "error": f"{type(e).__name__}: {e}"[:300],
                                 "where": frames[-1].name if frames else None}) + "\n")  # fmt: skip
    return 1


if __name__ == "__main__":
    sys.exit(main())
