"""Check pictures classsr wrote with each format's reference tools: validators, and decoders whose pixels are compared
with classsr's own reading of the same file.

For each file, by its suffix, the tools installed (Debian's ``pngcheck``, ``pngcrush`` (libpng's warnings),
``jpeginfo``, ``libjpeg-turbo-progs``, ``webp``, ``libheif-examples``, ``libavif-bin``, ``libjxl-tools``,
``libtiff-tools``; none is a dependency of classsr, and a tool not installed is skipped) are run: a validator that
fails or warns is a problem, and a decoder's picture that differs from ``read_image``'s by more than ``--tolerance``
8-bit levels on average is one (each shown in sRGB through its ICC profile or colour description where the tool's
output carries a profile, as levels where it carries none: djpeg's, dwebp's; RGBA, colour where both are clear not
compared; on average, as decoders upsample chroma differently, which shows at the edges of colours). A JSON line on
stdout for each problem; on stderr, how many files were checked, by how many tools, and the problems.
``scripts/read_sweep.py --check`` runs it on every picture it writes.

    python scripts/output_check.py FILE_OR_FOLDER... [--tolerance 2]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: Validators by suffix: the command (the file's path appended), and what in its output (a regular expression) is a
#: problem besides a failing exit status (``None``: nothing). Not problems: tiffinfo's "Unknown field" warnings, of
#: tags libtiff does not list (Exif 3.0's ImageTitle, the Exif IFD's pointer to its Interoperability IFD), and its
#: "Wrong data type 3 for GainControl": the Exif standard's table says RATIONAL, its text and every camera SHORT.
VALIDATORS: dict[str, list[tuple[list[str], str | None]]] = {
    # (libpng's warnings; but not that its cache of unknown chunks, which pngcrush keeps, is full: an APNG's frames)
    ".png": [(["pngcheck", "-q"], None), (["pngcrush", "-n", "-q"], r"(?m)^pngcrush: (?!fdAT: no space in chunk cache)")],
    ".jpg": [(["jpeginfo", "-c"], r"WARNING")],
    ".webp": [(["webpinfo", "-quiet"], None)],
    ".heic": [(["heif-info"], None)],
    ".avif": [(["avifdec", "--info"], None)],
    ".jxl": [(["jxlinfo"], None)],
    ".tif": [(["tiffinfo", "-D"], r"Warning(?!, Unknown field|, Wrong data type 3 for \"GainControl\")")],
    ".mkv": [(["mkvinfo"], r"(?m)^\((MKVInfo|mkvinfo)\) (Error|Warning)")],  # (mkvtoolnix's: every element parsed)
    ".webm": [(["mkvinfo"], r"(?m)^\((MKVInfo|mkvinfo)\) (Error|Warning)")],
}
#: Decoders by suffix: the command, where ``{in}`` and ``{out}`` (a PNG or PPM) are put.
DECODERS: dict[str, list[list[str]]] = {
    ".jpg": [["djpeg", "-outfile", "{out}.ppm", "{in}"]],
    ".webp": [["dwebp", "{in}", "-o", "{out}.png"]],
    ".heic": [["heif-convert", "{in}", "{out}.png"]],
    ".avif": [["avifdec", "--ignore-icc", "{in}", "{out}.png"]],  # (0.11 puts a gray profile on 10-bit gray as RGB)
    ".jxl": [["djxl", "{in}", "{out}.png"]],
}


#: What a validator fails on that is no problem: chunks pngcheck 3.0.3 does not know, PNG's third edition's (an HDR or
#: wide-gamut picture's colour code points and light levels), each such line and its closing "ERROR: FILE".
EXCUSED = re.compile(r"unknown, public chunk (cICP|cLLi|mDCv)$|^ERROR: ")
#: A line of a validator's that says something is wrong.
_TROUBLE = re.compile(r"(?i)error|illegal|invalid|warning|corrupt")


def check(path: Path, tolerance: float = 2.0, *, decode: bool = True) -> tuple[int, list[dict[str, object]]]:
    """The tools of ``path``'s suffix that are installed, run on it (its decoders only where ``decode``; they decode a
    still's picture): how many ran, and the problems."""
    suffix = path.suffix.lower().replace(".jpeg", ".jpg").replace(".tiff", ".tif").replace(".heif", ".heic")
    ran, said = 0, []
    for cmd, bad in VALIDATORS.get(suffix, []):
        if shutil.which(cmd[0]) is None:
            continue
        ran += 1
        done = subprocess.run([*cmd, str(path)], capture_output=True, check=False, timeout=120)
        text = (done.stdout + done.stderr).decode(errors="replace")
        troubles = [line for line in text.splitlines() if _TROUBLE.search(line)]
        excused = done.returncode and troubles and all(EXCUSED.search(line) for line in troubles)
        if (done.returncode and not excused) or (bad and re.search(bad, text)):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            said.append({"file": str(path), "tool": cmd[0], "exit": done.returncode, "said": lines[-3:]})
    for cmd in DECODERS.get(suffix, []) if decode else []:
        if shutil.which(cmd[0]) is None:
            continue
        ran += 1
        said.extend(_decoded(path, cmd, tolerance))
    return ran, said


def _decoded(path: Path, cmd: list[str], tolerance: float) -> list[dict[str, object]]:
    """``cmd``'s decoding of ``path`` compared with classsr's (``read_image``; the tool's picture read so too), each
    shown in sRGB (through its ICC profile, or its colour description) where the tool's carries a profile, in 8-bit
    RGBA: a problem where they differ by more than ``tolerance`` levels on average (decoders' chroma upsampling
    differs at the edges of colours)."""
    from reference_sweep import difference, rgba8

    from classsr_cli.errors import ClassSRError
    from classsr_cli.io.image import read_image

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "ref")
        args = [a.replace("{in}", str(path)).replace("{out}", out) for a in cmd]
        done = subprocess.run(args, capture_output=True, check=False, timeout=300)
        made = sorted(Path(tmp).glob("ref*"))
        lines = [x.strip() for x in (done.stdout + done.stderr).decode(errors="replace").splitlines() if x.strip()]
        if done.returncode or not made:
            return [{"file": str(path), "tool": cmd[0], "exit": done.returncode, "said": lines[-3:]}]
        try:
            tool = read_image(made[0], max_pixels=None)
        except ClassSRError as e:  # (a decoder that wrote nothing it could: an empty file)
            return [{"file": str(path), "tool": cmd[0], "exit": done.returncode, "said": [*lines[-2:], str(e)]}]
    pic = read_image(path, max_pixels=None)
    ref, ours = rgba8(tool), rgba8(pic)
    hdr = pic.nclx is not None and pic.nclx.transfer in (16, 18)
    if tool.icc and not hdr:  # (the tool's levels in its profile's colours: both shown in sRGB; else both as levels;
        ref, ours = _shown(ref, tool.icc, None), _shown(ours, pic.icc, pic.nclx)  # PQ and HLG as coded)
    if ours.shape != ref.shape:
        return [{"file": str(path), "tool": cmd[0], "size": list(ref.shape[1::-1]), "classsr size": list(ours.shape[1::-1])}]
    diff, where = difference(ours, ref)
    if diff.mean() <= tolerance:
        return []
    ours_px, tool_px = where.pop("a px"), where.pop("b px")
    return [{"file": str(path), "tool": cmd[0], **where, "classsr": ours_px, "tool px": tool_px}]


def _shown(rgba: np.ndarray, icc: bytes | None, nclx: object) -> np.ndarray:
    """8-bit RGBA levels as sRGB's: through ``icc`` (LittleCMS, as Pillow converts) or ``nclx`` (an
    :class:`~classsr_cli.io.image.Nclx`: :func:`~classsr_cli.io.sdr.to_sdr`), as they are where neither says otherwise."""
    import io

    from PIL import Image, ImageCms

    from classsr_cli.io.icc import is_srgb
    from classsr_cli.io.sdr import to_sdr

    out = rgba.copy()
    if icc and not is_srgb(icc):
        try:
            gray = icc[16:20] == b"GRAY"
            im = Image.fromarray(np.ascontiguousarray(rgba[..., 0] if gray else rgba[..., :3]))
            shown = ImageCms.profileToProfile(im, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                              ImageCms.createProfile("sRGB"), outputMode="RGB")  # fmt: skip
            if shown is not None:
                out[..., :3] = np.asarray(shown)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    elif nclx is not None:
        out[..., :3] = to_sdr(np.ascontiguousarray(rgba[..., :3]), nclx.primaries, nclx.transfer)  # type: ignore[attr-defined]
    return out


def files(paths: Iterable[Path]) -> list[Path]:
    """The files of ``paths`` (a folder's, recursively), in order."""
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--tolerance", type=float, default=2.0,
                        help="largest mean difference of a decoder's picture allowed, 8-bit levels")
    args = parser.parse_args()
    checked = tools = problems = 0
    for path in files(args.paths):
        ran, said = check(path, args.tolerance)
        checked += bool(ran)
        tools += ran
        for p in said:
            sys.stdout.write(json.dumps(p) + "\n")
        problems += len(said)
    sys.stderr.write(f"checked {checked} files, {tools} tool runs, problems {problems}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
