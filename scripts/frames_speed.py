"""How fast ``classsr video`` writes picture sequences: OpenEXR, 16-bit TIFF and PNG frames, from an OpenEXR sequence
(16 bits through the model) or from an 8-bit video (8-bit PNG, TIFF and JPEG frames).

The source is ``--frames`` frames of ``examples/lighthouse.jpg`` (1024x768), each shifted 8 pixels from the one
before: ``--source exr``, in linear light one stop brighter (a third of it above 1.0, as a render's), written as
half-float EXRs; ``--source video``, an 8-bit 4:4:4 H.264 file at CRF 12 (a camera's or an edit's export; with
``--sar``, of pixels of that shape, as a DVD's). Each
output runs the default ×4 model (``classsr video SOURCE OUT --threads THREADS --json``), in turns, ``--repeat``
rounds; ``--before PATH`` also runs each with ``PATH`` first on ``PYTHONPATH`` (a checkout of the code before a
change), in turns with this one. Prints one JSON line a run: the code, the output, the frames per second the run
reports, the wall time of the command, and the bytes of the frames written; for JPEG frames also their PSNR (RGB, 8-bit
levels, the frames together) against the same code's PNG frames of that round, which are lossless.

    python scripts/frames_speed.py [--source exr|video] [--frames 4] [--repeat 2] [--threads 2] [--before PATH]
                                   [--outputs .png .jpg] [--sar 32/27]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from classsr_cli.io import exr
from classsr_cli.io.icc import srgb_decode
from classsr_cli.io.video import ffmpeg_exe


def source(kind: str, frames: int, folder: Path, sar: str | None = None) -> Path:
    """The sequence or the video the runs read."""
    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "examples" / "lighthouse.jpg") as im:
        photo = np.asarray(im.convert("RGB"))
    shots = folder / "frames"
    shots.mkdir()
    for k in range(frames):
        shifted = np.roll(photo, 8 * k, axis=1)
        if kind == "exr":
            light = (srgb_decode(shifted / 255.0) * 2.0).astype(np.float32)
            with (shots / f"shot_{1001 + k}.exr").open("wb") as f:
                exr.write(f, [light], width=photo.shape[1], height=photo.shape[0], channels=3, half=True)
        else:
            Image.fromarray(shifted).save(shots / f"shot_{1001 + k}.png")
    if kind == "exr":
        return shots
    clip = folder / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-framerate", "24", "-start_number", "1001", "-i",
                    str(shots / "shot_%04d.png"), *(["-vf", f"setsar={sar}"] if sar else []), "-c:v", "libx264",
                    "-crf", "12", "-pix_fmt", "yuv444p", str(clip)],
                   check=True)  # fmt: skip
    return clip


def psnr_against(frames: Path, reference: Path) -> float:
    """PSNR (RGB, 8-bit levels) of the JPEG frames in ``frames`` against the PNG frames of the same numbers in
    ``reference``, their squared errors pooled."""
    total, count = 0.0, 0
    for path in sorted(p for p in frames.iterdir() if p.suffix == ".jpg"):
        with Image.open(path) as a, Image.open(reference / path.with_suffix(".png").name) as b:
            diff = np.asarray(a.convert("RGB"), dtype=np.float64) - np.asarray(b.convert("RGB"), dtype=np.float64)
        total, count = total + float(np.square(diff).sum()), count + diff.size
    return round(10 * float(np.log10(255.0**2 / (total / count))), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", choices=["exr", "video"], default="exr")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--before", type=Path, help="a checkout of the code before a change, run in turns with this one")
    ap.add_argument("--quality", type=int, nargs="+", help="also write the JPEG frames at each of these `classsr video "
                    "--quality` settings (this code only; output .jpg)")
    ap.add_argument("--sar", help="the video's pixel shape (width/height: 32/27, a widescreen DVD's); default square")
    ap.add_argument("--outputs", nargs="+", help="the suffixes written (default: .exr .tif .png from EXR, .png .tif .jpg "
                    "from video; JPEG's PSNR needs .png before it)")
    args = ap.parse_args()
    outputs = args.outputs or ((".exr", ".tif", ".png") if args.source == "exr" else (".png", ".tif", ".jpg"))
    codes = [("this", None)] + ([("before", args.before.resolve())] if args.before else [])
    runs = [(suffix, code, path, None) for suffix in outputs for code, path in codes]
    runs += [(".jpg", "this", None, q) for q in args.quality or ()]
    with tempfile.TemporaryDirectory() as tmp:
        if args.sar and args.source != "video":
            ap.error("--sar applies to --source video")
        src = source(args.source, args.frames, Path(tmp), args.sar)
        for round_ in range(args.repeat):
            for suffix, code, path, quality in runs:
                out = Path(tmp) / f"{code}{suffix[1:]}{quality or ''}{round_}" / f"%04d{suffix}"
                env = dict(os.environ, PYTHONPATH=str(path)) if path else None
                cmd = [sys.executable, "-m", "classsr_cli", "video", str(src), str(out), "--threads",
                       str(args.threads), "--json", *(["--quality", str(quality)] if quality else [])]  # fmt: skip
                start = time.perf_counter()
                # From the temporary folder: `python -m` puts the working folder first on the path, before PYTHONPATH
                got = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=tmp)
                wall = time.perf_counter() - start
                record = json.loads(got.stdout)
                if suffix == ".jpg":  # what the encoding lost: against the lossless PNG frames of this round
                    png = Path(tmp) / f"{code}png{round_}"
                    line_psnr = {"psnr_vs_png": psnr_against(out.parent, png)}
                else:
                    line_psnr = {}
                line = {"round": round_, "code": code, "source": args.source, "sar": args.sar, "output": suffix,
                        "quality": quality,
                        "frames": record["frames"], "size": record["output_size"], "pix_fmt": record["pix_fmt"],
                        "fps": round(record["fps"], 3), "seconds": round(record["seconds"], 3),
                        "wall_s": round(wall, 3), "bytes": sum(f.stat().st_size for f in out.parent.iterdir()),
                        **line_psnr, "load_average": os.getloadavg()[0]}  # fmt: skip
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
