"""Which palette for a GIF output? An animation is upscaled by ``classsr video`` (the library's ``upscale_video``,
default model) into a lossless APNG, the truth here; its frames are then written as a GIF three ways by ffmpeg:
one palette made from every upscaled frame (what ``classsr video`` does: ``palettegen``, which holds the frames
until it is made), the source's own palette (``palettegen`` on the source's frames: no frame held), and one palette
per frame (``stats_mode=single``, ``new=1``: none held). For each: PSNR (RGB) against the truth, and flicker, the
share of the truth's static pixels (no channel changing by more than one level from a frame to the next) whose
colour changes in the GIF.

Without sources, two made here: an 8-frame pan over ``examples/baby.png`` (96×72, saved by Pillow with an adaptive
palette) and 3 s of ffmpeg's ``testsrc2`` at 160×120, 10 fps (saved by ffmpeg's GIF encoder, whose default palette
is a fixed one).

    PYTHONPATH=scripts python scripts/gif_palettes.py --json docs/results/fiftyeighth/gif_palettes.json
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageSequence
from report import emit  # scripts/

from classsr_cli import zoo
from classsr_cli.io.video import ffmpeg_exe
from classsr_cli.pipeline import Upscaler
from classsr_cli.video import upscale_video

WAYS = {
    "every_frame": ["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse"],
    "per_frame": ["-vf", "split[a][b];[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"],
}


def frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")).astype(np.int16) for f in ImageSequence.Iterator(im)]


def measure(gif: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, float]:
    mse = float(np.mean([np.mean((g - t).astype(np.float64) ** 2) for g, t in zip(gif, truth, strict=True)]))
    flicker = []
    for i in range(len(truth) - 1):
        static = np.all(np.abs(truth[i] - truth[i + 1]) <= 1, axis=2)
        if static.any():
            flicker.append(float((np.abs(gif[i] - gif[i + 1]).sum(axis=2)[static] > 0).mean()))
    return {"psnr": 10 * np.log10(255**2 / mse), "flicker": float(np.mean(flicker)) if flicker else float("nan")}


def demo(folder: Path, ff: list[str]) -> list[Path]:
    """The two sources used without any given (the module's docstring)."""
    photo = np.asarray(Image.open(Path(__file__).parents[1] / "examples" / "baby.png").convert("RGB"))
    pan = [Image.fromarray(photo[60 + 4 * i : 132 + 4 * i, 40 + 8 * i : 136 + 8 * i]) for i in range(8)]
    pan[0].save(folder / "pan.gif", save_all=True, append_images=pan[1:], duration=100, loop=0)
    subprocess.run([*ff, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3", "-y",
                    str(folder / "pattern.gif")], check=True)  # fmt: skip
    return [folder / "pan.gif", folder / "pattern.gif"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="*", type=Path, help="animations (GIF, WebP, APNG) or short clips")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    up = Upscaler(zoo.load(None, args.scale).net)
    ff = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in args.sources or demo(Path(tmp), ff):
            truth_path = Path(tmp, f"{src.stem}.apng")
            upscale_video(up, src, truth_path, overwrite=True)
            truth = frames(truth_path)
            row: dict[str, object] = {"source": src.name, "frames": len(truth), "size": list(truth[0].shape[1::-1])}
            for way, vf in WAYS.items():
                out = Path(tmp, f"{src.stem}_{way}.gif")
                subprocess.run([*ff, "-i", str(truth_path), *vf, "-y", str(out)], check=True)
                row[way] = measure(frames(out), truth)
            palette, out = Path(tmp, f"{src.stem}_palette.png"), Path(tmp, f"{src.stem}_source.gif")
            subprocess.run([*ff, "-i", str(src), "-vf", "palettegen", "-frames:v", "1", "-update", "1", "-y", str(palette)],
                           check=True)  # fmt: skip
            subprocess.run([*ff, "-i", str(truth_path), "-i", str(palette), "-lavfi", "[0][1]paletteuse", "-y", str(out)],
                           check=True)  # fmt: skip
            row["source_palette"] = measure(frames(out), truth)
            rows.append(row)
    emit({"scale": args.scale, "threads": args.threads, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
