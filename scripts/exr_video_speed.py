"""How fast `classsr video` writes an OpenEXR sequence's upscale as OpenEXR frames (classsr's own writer), against
the 16-bit TIFF and PNG frames the bundled ffmpeg encodes.

The sequence is ``--frames`` frames of ``examples/lighthouse.jpg`` (1024x768) in linear light one stop brighter (a
third of it above 1.0, as a render's), each shifted 8 pixels from the one before, written as half-float EXRs into a
temporary folder; each output runs the default ×4 model (`classsr video FRAMES OUT --threads THREADS --json`), in
turns, ``--repeat`` rounds. Prints one JSON line a run: the output, the frames per second the run reports, and the
wall time of the command.

    python scripts/exr_video_speed.py [--frames 4] [--repeat 2] [--threads 2]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    with Image.open(root / "examples" / "lighthouse.jpg") as im:
        photo = np.asarray(im.convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        for k in range(args.frames):
            light = (srgb_decode(np.roll(photo, 8 * k, axis=1) / 255.0) * 2.0).astype(np.float32)
            with (frames / f"shot_{1001 + k}.exr").open("wb") as f:
                exr.write(f, [light], width=photo.shape[1], height=photo.shape[0], channels=3, half=True)
        for round_ in range(args.repeat):
            for suffix in (".exr", ".tif", ".png"):
                out = Path(tmp) / f"{suffix[1:]}{round_}" / f"%04d{suffix}"
                cmd = [sys.executable, "-m", "classsr_cli", "video", str(frames), str(out), "--threads",
                       str(args.threads), "--json"]  # fmt: skip
                start = time.perf_counter()
                got = subprocess.run(cmd, capture_output=True, text=True, check=True)
                wall = time.perf_counter() - start
                record = json.loads(got.stdout)
                line = {"round": round_, "output": suffix, "frames": record["frames"], "size": record["output_size"],
                        "pix_fmt": record["pix_fmt"], "fps": round(record["fps"], 3),
                        "seconds": round(record["seconds"], 3), "wall_s": round(wall, 3),
                        "load_average": os.getloadavg()[0]}  # fmt: skip
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
