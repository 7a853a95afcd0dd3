"""How long Pillow takes to write an AVIF at each encoder speed, for ``classsr_cli.io.image.AVIF_SPEED``; with
``--format HEIF``, a HEIC (pillow-heif, x265) at each x265 preset, for ``HEIF_PRESET``, in :data:`HEIF_TILE` tiles as
classsr writes it; with ``--format JXL``, a JPEG XL (the bundled ffmpeg's libjxl, through classsr's own writer, its
PNG staging included) at each libjxl effort, for ``classsr_cli.io.jxl.EFFORT``; with ``--format AVIF10``, the
picture at 16 bits into AVIF through classsr's own writer (10 bits, the bundled ffmpeg's libaom, all-intra at
``-cpu-used`` 8: ``_avif_writer``), its speed fixed. With ``--gain-map`` (``--format AVIF`` or ``HEIF``), the picture
through classsr's own writer without and with an HDR gain map (ISO 21496-1, from an Ultra HDR XMP: the picture's luma
at a quarter of its size, standing for one), at the speed classsr writes: what keeping a gain map costs; with
``--apple`` too, an iPhone's (a headroom of 4, the picture with EXIF), which a HEIC holds twice: as Apple's auxiliary
image and as an ISO 21496-1 one.

The picture is ``examples/lighthouse.jpg`` resized by Pillow's bicubic to the size of its ×4 upscale (4096x3072),
standing for an output. Each speed is written ``--repeat`` times at ``--quality``; prints one JSON line a speed:
the best seconds, the file's size and the PSNR (RGB, 8-bit) of the file decoded against the picture.

    python scripts/avif_speed.py [--speeds 4 6 8 10] [--quality 95] [--repeat 2]
    python scripts/avif_speed.py --format HEIF --speeds ultrafast superfast veryfast medium
    python scripts/avif_speed.py --format JXL --speeds 1 2 3 4 5 7
    python scripts/avif_speed.py --format AVIF10
    python scripts/avif_speed.py --format HEIF --gain-map [--apple]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--format", choices=["AVIF", "HEIF", "JXL", "AVIF10"], default="AVIF")
    ap.add_argument("--speeds", nargs="+", default=None,
                    help="AVIF: 0-10 (default 4 6 8 10); HEIF: x265 presets; JXL: libjxl efforts 1-9")
    ap.add_argument("--quality", type=int, default=95)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--gain-map", action="store_true",
                    help="AVIF or HEIF through classsr's writer, without and with an ISO 21496-1 gain map")
    ap.add_argument("--apple", action="store_true", help="with --gain-map: an iPhone's gain map, the picture with EXIF")
    args = ap.parse_args()
    if args.gain_map:
        _with_gain_map(big_picture(), args.format, args.quality, args.repeat, args.apple)
        return
    heif = args.format == "HEIF"
    defaults = {"AVIF": ["4", "6", "8", "10"], "HEIF": ["ultrafast", "superfast", "veryfast", "medium"],
                "JXL": ["1", "3", "5", "7"], "AVIF10": ["8"]}  # fmt: skip
    speeds = args.speeds or defaults[args.format]
    if args.format in ("JXL", "AVIF10"):
        _written(big_picture(), args.format, speeds, args.quality, args.repeat)
        return
    if heif:
        import pillow_heif

        from classsr_cli.io.image import HEIF_TILE

        pillow_heif.register_heif_opener()
    big = big_picture()
    for speed in speeds:
        options: dict[str, object] = (
            {"enc_params": {"preset": speed}, "tile_size": HEIF_TILE} if heif else {"speed": int(speed)}
        )
        best, size = float("inf"), 0
        for _ in range(args.repeat):
            buf = io.BytesIO()
            t = time.perf_counter()
            big.save(buf, format=args.format, quality=args.quality, **options)
            best, size = min(best, time.perf_counter() - t), buf.tell()
        buf.seek(0)
        with Image.open(buf) as back:
            err = np.asarray(back.convert("RGB"), np.float64) - np.asarray(big, np.float64)
        psnr = 10 * np.log10(255**2 / float(np.mean(err**2)))
        record = {"format": args.format, "speed": speed if heif else int(speed), "quality": args.quality,
                  "seconds": round(best, 3), "bytes": size, "psnr": round(psnr, 3), "size": list(big.size)}
        sys.stdout.write(json.dumps(record) + "\n")


def big_picture() -> Image.Image:
    """``examples/lighthouse.jpg`` at the size of its ×4 upscale."""
    with Image.open(Path(__file__).parent.parent / "examples" / "lighthouse.jpg") as im:
        return im.convert("RGB").resize((im.width * 4, im.height * 4), Image.BICUBIC)


def _written(big: Image.Image, fmt: str, efforts: list[str], quality: int, repeat: int) -> None:
    """Each libjxl effort (``JXL``), or the one AVIF writer of 16-bit pictures (``AVIF10``: the picture's levels
    times 257), through :func:`classsr_cli.io.image.write_image` as ``classsr upscale`` writes."""
    from classsr_cli.io import jxl
    from classsr_cli.io.image import Picture, read_image, write_image

    eight = np.asarray(big)
    picture = Picture(eight.astype(np.uint16) * 257 if fmt == "AVIF10" else eight)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("out.avif" if fmt == "AVIF10" else "out.jxl")
        for effort in efforts:
            jxl.EFFORT = int(effort)
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                write_image(out, picture, quality=quality, overwrite=True)
                best = min(best, time.perf_counter() - t)
            back = read_image(out).pixels.astype(np.float64) / (257 if fmt == "AVIF10" else 1)
            psnr = 10 * np.log10(255**2 / float(np.mean((back - eight) ** 2)))
            record = {"format": fmt, "speed": int(effort), "quality": quality, "seconds": round(best, 3),
                      "bytes": out.stat().st_size, "psnr": round(psnr, 3), "size": list(big.size)}  # fmt: skip
            sys.stdout.write(json.dumps(record) + "\n")


#: An Ultra HDR gain map's XMP (two stops of headroom), which classsr makes ISO 21496-1 metadata in HEIC and AVIF.
_GAIN_XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
             b'<rdf:Description xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/1.0/" hdrgm:Version="1.0" '
             b'hdrgm:GainMapMax="2" hdrgm:HDRCapacityMax="2"/></rdf:RDF></x:xmpmeta>')  # fmt: skip


def _with_gain_map(big: Image.Image, fmt: str, quality: int, repeat: int, apple: bool = False) -> None:
    """``big`` into ``fmt`` (``AVIF``, ``HEIF``) through :func:`classsr_cli.io.image.write_image`, without and with a
    gain map (its luma at a quarter of its size; ``apple``: an iPhone's, the picture with EXIF), best of ``repeat``;
    one JSON line each."""
    from classsr_cli.io.gainmap import GainMap
    from classsr_cli.io.image import Picture, read_image, write_image

    if fmt not in ("AVIF", "HEIF"):
        raise SystemExit("--gain-map: --format AVIF or HEIF")
    eight = np.asarray(big)
    luma = np.asarray(big.convert("L").resize((big.width // 4, big.height // 4), Image.BICUBIC))[..., None]
    gain = GainMap(luma, _GAIN_XMP, (), (), big.size)
    exif = None
    if apple:
        gain, exif = GainMap(luma, None, (), (), big.size, apple_headroom=4.0), Image.Exif().tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("out.avif" if fmt == "AVIF" else "out.heic")
        for with_gain in (False, True):
            best = float("inf")
            for _ in range(repeat):
                t = time.perf_counter()
                write_image(out, Picture(eight, exif=exif, gain_map=gain if with_gain else None), quality=quality,
                            overwrite=True)
                best = min(best, time.perf_counter() - t)
            back = read_image(out)
            assert (back.gain_map is not None) == with_gain, "the gain map was not written"
            record = {"format": fmt, "gain_map": with_gain and ("Apple's" if apple else "ISO"), "quality": quality,
                      "seconds": round(best, 3),
                      "bytes": out.stat().st_size, "size": list(big.size)}  # fmt: skip
            sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
