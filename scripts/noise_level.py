"""How well does ``metrics.noise_level`` tell a noisy picture from a clean one? Where should ``upscale``'s note fire?

Calibration (the threshold is chosen here, on training photos only): every training photo as given and its ÷scale
LR (bicubic, as in training), with luminance noise of each ``--levels`` σ (``degrade.add_noise``, seeded by the
photo's name) and then, for each ``--qualities`` entry, saved as JPEG at that quality (0: not saved). For each
(picture, σ, quality) the estimate's quantiles over the photos and the share at or above each ``--thresholds`` value.

Report only (nothing is chosen from them): the same for the validation sets' LR at σ 0 (``--val``; saved as JPEG
at each ``--val-qualities`` entry too), and the estimate on scikit-image's fourteen sample photos as given
(scripts/routing_eval.py's two lists).

    PYTHONPATH=scripts python scripts/noise_level.py --json docs/results/fiftysixth/noise_level.json

For compressed pictures (the JPEG threshold, fifty-seventh pass):

    PYTHONPATH=scripts python scripts/noise_level.py --levels 0 2 4 6 8 12 --qualities 85 75 60 50 \
        --thresholds 0.5 0.75 1 1.25 1.5 2 --val-qualities 85 75 50 --json docs/results/fiftyseventh/noise_level_jpeg.json

For video (the threshold of ``classsr video``'s note, fifty-eighth pass): ``--crfs`` encodes each picture as the
first frame of an H.264 clip at each CRF (libx264, ``yuv420p``, preset medium, an even size), decoded as ``classsr
video`` decodes it, in place of the JPEG (``--qualities 0``):

    PYTHONPATH=scripts python scripts/noise_level.py --kinds as_given --levels 0 2 4 6 8 --qualities 0 \
        --crfs 18 23 28 --thresholds 1 1.5 2 2.5 3 4 --val-qualities 0 --json docs/results/fiftyeighth/noise_level_video.json
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
from report import emit  # scripts/
from routing_eval import SKIMAGE_PHOTOS, TEN_PHOTOS, photos  # scripts/

from classsr_cli.degrade import add_noise, jpeg_roundtrip, load_rgb, make_pair
from classsr_cli.io.files import images_in
from classsr_cli.metrics import noise_level

#: Each codec's encoder (ffmpeg's name, options) and container, for :func:`coded_frames`: the encoders' own presets,
#: each at a constant quality (CRF; VP9's with ``-b:v 0``).
ENCODERS = {
    "h264": (["-c:v", "libx264", "-preset", "medium"], "mp4"),
    "hevc": (["-c:v", "libx265", "-preset", "medium", "-x265-params", "log-level=error"], "mp4"),
    "vp9": (["-c:v", "libvpx-vp9", "-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1"], "webm"),
    "av1": (["-c:v", "libsvtav1", "-preset", "8", "-svtav1-params", "verbosity=0"], "mp4"),
}


#: Seconds a clip of :func:`coded_frames` may take to code (a few at most) before it is coded again.
ENCODE_TIMEOUT = 120


def coded_frames(frames: list[np.ndarray], crf: int | None, codec: str = "h264",
                 stats: dict | None = None, bpp: float | None = None) -> list[np.ndarray]:
    """``frames`` (``(H, W, 3)`` uint8 RGB of one size, cropped to an even size) as a clip of ``codec``
    (:data:`ENCODERS`) at ``crf``, 25 frames a second (``yuv420p``, BT.709), decoded as ``classsr video`` decodes it.
    ``bpp`` instead of ``crf``: at an average bit rate of ``bpp`` bits a pixel (``-b:v``, one pass, as cameras and
    streams code at a rate rather than a quality).
    ``stats``, where given, gets the clip's ``bytes`` and each frame's ``qp``: H.264's blocks' mean QP
    (:func:`classsr_cli.io.video.h264_frame_qps`; ``None`` for the other codecs; until the seventieth pass the
    slices' initial QP, which reads libx264's CRF, and VP9's base quantizer index)."""
    import subprocess
    import tempfile

    from classsr_cli.io.video import VideoReader, ffmpeg_exe, h264_frame_qps, probe

    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    raw = b"".join(np.ascontiguousarray(f[:h, :w]).tobytes() for f in frames)
    options, container = ENCODERS[codec]
    if (crf is None) == (bpp is None):
        raise ValueError("coded_frames: give crf or bpp, one of them")
    if bpp is not None:  # drop a constant-quality mode's "-b:v 0" (VP9's): the rate is the mode
        options = [o for i, o in enumerate(options) if o != "-b:v" and (i == 0 or options[i - 1] != "-b:v")]
    rate = ["-crf", str(crf)] if bpp is None else ["-b:v", str(round(bpp * w * h * 25))]
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp, f"clip.{container}")
        cmd = [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25",
               "-i", "-", "-vf", "scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd",
               *options, *rate, "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_range", "tv", str(clip)]
        for attempt in range(3):  # x265 now and then deadlocks on a small clip (seventy-second pass): coded again
            try:
                subprocess.run(cmd, input=raw, check=True, env={**os.environ, "SVT_LOG": "1"}, timeout=ENCODE_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                if attempt == 2:
                    raise
        with VideoReader(probe(clip)) as reader:
            out = [frame.rgb for frame in reader]
        if stats is not None:  # H.264's blocks' mean QP per frame, as classsr video reads it (io.video.h264_qp)
            qps = h264_frame_qps(clip) if codec == "h264" else []
            stats.update(bytes=clip.stat().st_size, qp=qps if len(qps) == len(out) else [None] * len(out))
    if len(out) != len(frames):
        raise RuntimeError(f"{codec}: {len(out)} frames decoded of {len(frames)}")
    return out


def h264_roundtrip(img: np.ndarray, crf: int) -> np.ndarray:
    """``img`` (``(H, W, 3)`` uint8 RGB, cropped to an even size) as the one frame of an H.264 clip at ``crf``
    (libx264, ``yuv420p``, BT.709, preset medium), decoded as ``classsr video`` decodes it."""
    return coded_frames([img], crf)[0]


def _seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:16], 16)


def _summary(values: list[float], thresholds: list[float]) -> dict:
    v = np.asarray(values)
    return {"n": len(values), "p10": float(np.quantile(v, 0.1)), "median": float(np.median(v)),
            "p90": float(np.quantile(v, 0.9)), "max": float(v.max()),
            "share_at_or_above": {f"{t:g}": float((v >= t).mean()) for t in thresholds}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", type=Path,
                    default=[Path("../shared/data/train/T91"), Path("../shared/data/train/BSD200")])
    ap.add_argument("--val", nargs="*", type=Path, default=[Path("../shared/data/val") / s for s in
                                                            ("Set14", "B100", "Urban100", "SunHays80")])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--levels", nargs="+", type=float, default=[0, 1, 2, 3, 4, 6, 8, 12])
    ap.add_argument("--qualities", nargs="+", type=int, default=[0, 90, 75, 50])
    ap.add_argument("--thresholds", nargs="+", type=float, default=[3, 4, 5, 6])
    ap.add_argument("--val-qualities", nargs="+", type=int, default=[0],
                    help="also report the validation sets' clean LR saved as JPEG at these qualities (0: not saved)")
    ap.add_argument("--crfs", nargs="*", type=int, default=[],
                    help="also as the first frame of an H.264 clip at each of these CRFs (after any JPEG)")
    ap.add_argument("--kinds", nargs="+", choices=["as_given", "lr"], default=["as_given", "lr"],
                    help="the pictures: the training photos as given, their LR, or both")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    files = [f for d in args.train for f in images_in(d)]
    given = [(f.name, load_rgb(f)) for f in files]
    pictures = {"as_given": given, "lr": [(name, make_pair(img, args.scale)[1]) for name, img in given]}
    calibration = []
    for kind in args.kinds:
        imgs = pictures[kind]
        for sigma in args.levels:
            for q in args.qualities:
                for crf in args.crfs or [None]:
                    values = []
                    for name, img in imgs:
                        x = add_noise(img, sigma, _seed(name)) if sigma else img
                        x = jpeg_roundtrip(x, q) if q else x
                        values.append(noise_level(h264_roundtrip(x, crf) if crf is not None else x))
                    calibration.append({"picture": kind, "sigma": sigma, "jpeg": q or None, "crf": crf,
                                        **_summary(values, args.thresholds)})
    val_lr = {d.name: [make_pair(load_rgb(f), args.scale)[1] for f in images_in(d)] for d in args.val}
    val = {name + (f"_q{q}" if q else ""): _summary([noise_level(jpeg_roundtrip(x, q) if q else x) for x in lrs],
                                                      args.thresholds)
           for name, lrs in val_lr.items() for q in args.val_qualities}
    skimage = {name: noise_level(img) for name, img in photos([], SKIMAGE_PHOTOS + TEN_PHOTOS)}
    emit({"scale": args.scale, "train_photos": len(files), "calibration": calibration, "val_lr_clean": val,
          "skimage_as_given": skimage}, args.json)


if __name__ == "__main__":
    main()
