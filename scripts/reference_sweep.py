"""Read every picture in a folder that has a reference beside it and compare the two: list the files whose pixels
differ from their reference's by more than a tolerance, and the ones classsr refuses or fails on.

A collection of test pictures with a reference decoding of each (KDE's kimageformats ``autotests/read``: ``x.psd``
beside ``x.png``; image-rs's BMP suite) checks what classsr *reads*, not only that it reads. The reference is
``STEM.png`` (or ``STEM.tif``) beside ``STEM.EXT``, or ``STEM.EXT.png``; both are read by ``read_image``, brought to 8-bit RGBA (gray
repeated, no alpha as opaque) and compared where both have a pixel: a JSON line on stdout for each file over
``--tolerance`` levels (the largest difference and where), each size mismatch, each refusal (with its one line) and each
internal error (colour where both are transparent is not compared); on stderr, how many were compared, close, off,
refused and failed. Colour management is not applied on either side: a file whose ICC profile differs from its
reference's is off by that. A float picture (OpenEXR, Radiance, PFM, a 32-bit Photoshop document), which classsr reads
as sRGB-encoded levels of its light, is compared as linear levels with ``--linear`` (references that hold linear
light as levels, as KDE's do).

    python scripts/reference_sweep.py FOLDER [--tolerance 2] [--skip json txt] [--linear] [--variant _qt6_8]
    python scripts/reference_sweep.py FOLDER --ffmpeg tga dds qoi   # those files against the bundled ffmpeg's decoding

With ``--ffmpeg SUFFIX ...`` the reference of each file of those suffixes is the bundled ffmpeg's decoding of it
(its first frame in 8-bit RGBA), an independent decoder where a collection has no reference pictures: where the two
differ, one of them misreads the file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np

from classsr_cli.errors import ClassSRError
from classsr_cli.io.image import Picture, read_image, to_8bit

REFERENCES = (".png", ".tif", ".tiff")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--tolerance", type=int, default=2, help="largest difference counted as close, 8-bit levels")
    parser.add_argument("--skip", nargs="*", default=["json", "txt", "md"], help="suffixes that are not pictures")
    parser.add_argument("--linear", action="store_true", help="float pictures' references hold linear light as levels")
    parser.add_argument("--variant", default="", help="a reference named STEM+VARIANT first (KDE's _qt6_8: CMYK kept)")
    parser.add_argument("--ffmpeg", nargs="*", default=None, metavar="SUFFIX",
                        help="files of these suffixes compared with the bundled ffmpeg's decoding of them")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    counts = dict.fromkeys(["compared", "close", "off", "refused", "failed"], 0)
    for src in sorted(p for p in args.folder.rglob("*") if p.is_file()):
        if src.suffix.lower().lstrip(".") in args.skip or src.suffix.lower() in REFERENCES:
            continue
        ref: Path | str | None = _reference(src, args.variant) if args.ffmpeg is None else (
            "ffmpeg" if src.suffix.lower().lstrip(".") in args.ffmpeg else None)  # fmt: skip
        if ref is None:
            continue
        counts["compared"] += 1
        verdict, said = _compare(src, ref, args.tolerance, args.linear)
        counts[verdict] += 1
        if said:
            name = ref if isinstance(ref, str) else ref.name
            sys.stdout.write(json.dumps({"file": str(src), "reference": name, "verdict": verdict, **said}) + "\n")
    sys.stderr.write(", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    return 1 if counts["failed"] else 0


def _reference(src: Path, variant: str = "") -> Path | None:
    """``STEM.png`` or ``STEM.tif`` beside ``src`` (KDE's naming; ``STEM{variant}.png`` first where ``variant`` is
    given), or ``NAME.png`` (``x.tga.png``: image-rs's); not ``src`` itself."""
    named = [src.with_name(f"{src.stem}{variant}{s}") for s in REFERENCES] if variant else []
    for ref in (*named, *(src.with_suffix(s) for s in REFERENCES), *(src.with_name(src.name + s) for s in REFERENCES)):
        if ref != src and ref.is_file():
            return ref
    return None


def _compare(src: Path, ref: Path | str, tolerance: int, linear: bool) -> tuple[str, dict[str, object]]:
    """``src`` read and compared with ``ref``, a reference picture or ``"ffmpeg"`` (its decoding of ``src``)."""
    if isinstance(ref, Path):
        try:
            want = rgba8(read_image(ref, max_pixels=None))
        except Exception as e:  # (the reference is not what is being checked)
            return "refused", {"error": f"reference: {type(e).__name__}: {e}"[:300]}
    try:
        pic = read_image(src, max_pixels=None)
        got = rgba8(_as_linear(pic) if linear and pic.linear is not None else pic)
    except ClassSRError as e:
        return "refused", {"error": str(e)[:300]}
    except Exception as e:
        frames = traceback.extract_tb(e.__traceback__)
        return "failed", {"error": f"{type(e).__name__}: {e}"[:300], "where": frames[-1].name if frames else None}
    if isinstance(ref, str):
        decoded = _by_ffmpeg(src, got.shape[1], got.shape[0])
        if decoded is None:
            return "refused", {"error": "reference: ffmpeg decodes no picture of that size"}
        want = decoded
    if got.shape != want.shape:
        return "off", {"size": [got.shape[1], got.shape[0]], "reference size": [want.shape[1], want.shape[0]]}
    diff, where = difference(got, want)
    if diff.max() <= tolerance:
        return "close", {}
    got_px, want_px = where.pop("a px"), where.pop("b px")
    return "off", {**where, "got": got_px, "reference px": want_px}


def difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
    """How two 8-bit RGBA pictures of one size differ: each level's difference (none in colour where both are
    transparent), and its largest, mean, where the largest is and the two pixels there (``a px``, ``b px``)."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    diff[(a[..., 3] == 0) & (b[..., 3] == 0), :3] = 0  # (no colour where both are transparent)
    y, x, c = np.unravel_index(int(diff.argmax()), diff.shape)
    return diff, {"max": int(diff.max()), "mean": round(float(diff.mean()), 3), "at": [int(x), int(y), "RGBA"[c]],
                  "a px": a[y, x].tolist(), "b px": b[y, x].tolist()}  # fmt: skip


def _by_ffmpeg(src: Path, width: int, height: int) -> np.ndarray | None:
    """The bundled ffmpeg's decoding of ``src``'s first frame as ``(H, W, 4)`` 8-bit RGBA; ``None`` where it gives
    none of that size."""
    from classsr_cli.io.video import ffmpeg_exe

    got = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                          "rgba", "-"], capture_output=True, check=False)  # fmt: skip
    if got.returncode or len(got.stdout) != width * height * 4:
        return None
    return np.frombuffer(got.stdout, np.uint8).reshape(height, width, 4)


def _as_linear(pic: Picture) -> Picture:
    """A float picture's pixels as 16-bit levels of its linear light (within 0-1: what a reference of levels holds)."""
    from dataclasses import replace

    from classsr_cli.io.icc import srgb_decode

    assert pic.linear is not None
    light = srgb_decode(pic.pixels.astype(np.float32) / 65535) * 2.0**pic.linear.stops
    return replace(pic, pixels=np.round(np.clip(light, 0, 1) * 65535).astype(np.uint16))


def rgba8(pic: Picture) -> np.ndarray:
    """The picture as ``(H, W, 4)`` 8-bit RGBA."""
    px = to_8bit(pic.pixels) if pic.pixels.dtype == np.uint16 else pic.pixels
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    alpha = pic.alpha
    if alpha is None:
        alpha = np.full(px.shape[:2], 255, np.uint8)
    elif alpha.dtype == np.uint16:
        alpha = to_8bit(alpha)
    return np.dstack([px, alpha])


if __name__ == "__main__":
    sys.exit(main())
