"""Models against compressed video: a clip of LR frames (the first N images of a set, centre-cropped to one HR size,
each LR made as ``bench`` makes it) encoded with libx264 at each CRF (4:2:0, BT.709 tagged), then upscaled by
``classsr video`` (the library's ``upscale_video``, into lossless FFV1) with each model; PSNR-Y of every output frame
against its HR crop (border = scale), and of bench's bicubic of the decoded LR frame, means over the frames; and the
median over the decoded LR frames of ``metrics.noise_level`` (what ``classsr video`` reads on a clip's first frame for
its note on noisy footage).
``--noise S``: each LR frame first gets luminance noise of σ S levels (``degrade.add_noise``, a new field every frame,
as a camera's), e.g. ``--noise 6 --crf 18 23 28 --models classsr_residual_x4 classsr_residual_noisy_x4``.

    PYTHONPATH=scripts python scripts/video_compressed.py SunHays80 --frames 20 --crf 18 28 35 \
        --models classsr_residual_x4 classsr_residual_jpeg_x4 --threads 2 --json docs/results/fiftyfifth/video_compressed.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import emit

from classsr_cli import bench, zoo
from classsr_cli.degrade import add_noise, bicubic_resize, load_rgb, make_pair
from classsr_cli.io.video import EncodeOptions, VideoReader, ffmpeg_exe, probe
from classsr_cli.metrics import noise_level, psnr
from classsr_cli.pipeline import Upscaler
from classsr_cli.video import upscale_video


def frames(set_name: str, count: int, size: tuple[int, int], scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(hr, lr)`` of the first ``count`` images of the set large enough, centre-cropped to ``size`` (h, w)."""
    out = []
    for path in bench.find_images([set_name]):
        img = load_rgb(path)
        h, w = size
        if img.shape[0] < h or img.shape[1] < w:
            continue
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        out.append(make_pair(img[y : y + h, x : x + w], scale))
        if len(out) == count:
            break
    return out


def encode(lrs: list[np.ndarray], crf: int, path: Path) -> None:
    h, w = lrs[0].shape[:2]
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "10", "-i", "-",
           "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p", "-c:v", "libx264", "-crf", str(crf),
           "-preset", "medium", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
           "-color_range", "tv", "-y", str(path)]  # fmt: skip
    subprocess.run(cmd, input=b"".join(lr.tobytes() for lr in lrs), check=True)


def decoded(path: Path) -> list[np.ndarray]:
    with VideoReader(probe(path)) as reader:
        return [f.rgb for f in reader]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, nargs=2, default=[384, 512], metavar=("H", "W"), help="HR crop")
    ap.add_argument("--crf", type=int, nargs="+", default=[18, 28, 35])
    ap.add_argument("--models", nargs="+", default=["classsr_residual_x4", "classsr_residual_jpeg_x4"])
    ap.add_argument("--noise", type=float, default=0.0, help="luminance noise (σ, levels) on each LR frame; 0: none")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = args.scale
    pairs = frames(args.set, args.frames, tuple(args.size), s)
    if args.noise:
        pairs = [(hr, add_noise(lr, args.noise, i)) for i, (hr, lr) in enumerate(pairs)]
    ups = {m: Upscaler.of(zoo.load(m, s)) for m in args.models}
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="classsr-vc-") as tmp:
        for crf in args.crf:
            clip = Path(tmp) / f"crf{crf}.mp4"
            encode([lr for _, lr in pairs], crf, clip)
            lr_dec = decoded(clip)
            assert len(lr_dec) == len(pairs)
            row: dict[str, object] = {"crf": crf, "bytes": clip.stat().st_size,
                                      "noise_level": float(np.median([noise_level(f) for f in lr_dec])), "psnr_y": {}}
            scores = row["psnr_y"]
            assert isinstance(scores, dict)
            scores["bicubic"] = float(np.mean([psnr(bicubic_resize(lr, *hr.shape[:2]), hr, s, y_channel=True)
                                               for (hr, _), lr in zip(pairs, lr_dec, strict=True)]))
            for m, up in ups.items():
                out = Path(tmp) / f"{m}_crf{crf}.mkv"
                upscale_video(up, clip, out, options=EncodeOptions(codec="ffv1", crf=None, preset=None))
                sr = decoded(out)
                scores[m] = float(np.mean([psnr(f, hr, s, y_channel=True) for (hr, _), f in zip(pairs, sr, strict=True)]))
            rows.append(row)
            shown = "  ".join(f"{k} {v:.2f}" for k, v in scores.items())
            sys.stderr.write(f"crf {crf}: noise level {row['noise_level']:.2f}  {shown}\n")
    emit({"started": started, "set": args.set, "frames": len(pairs), "hr_size": args.size, "scale": s, "noise": args.noise,
          "threads": args.threads, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
