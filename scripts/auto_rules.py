"""Rules for ``--model auto`` on noisy LR: each shipped model's routed PSNR-Y on every picture of a set at each noise
level (``classsr bench SET --noise S``), a few noise features of each LR (:func:`classsr_cli.metrics.noise_level` at
shares of the flattest blocks), and what a rule on them gives against the default: the notes' rule (the noisy model
from 4 levels at share 0.02), the best pick per picture (an oracle), and a rule given by its parameters, or the best
of a grid of them with ``--search`` (on training photos only: never tune on the validation sets). A rule is five
numbers: the noisy model from NOISY_FROM levels at the share NOISY_SHARE, else the JPEG model from JPEG_FROM levels
at JPEG_SHARE where the estimate at share 0.1 is at most TEXTURE times it (texture, not noise, raises that one),
else the default. Prints one JSON line per rule: its mean gain over the default at each noise level, and their mean
(each level weighted alike). ``--rows`` keeps the measured rows in a file and reads them back on the next run.

    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --search
    PYTHONPATH=scripts python scripts/auto_rules.py SunHays80 --rule 0.02 4 0.005 2.5 1.5
    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --crf 23 --sigmas 0 2 4 6 8 \
        --notes-from 1 --rows rows_crf23.jsonl   # and 18, 28; then, on the three together:
    PYTHONPATH=scripts python scripts/auto_rules.py ../shared/data/train/BSD200 --notes-from 1 --search \
        --noisy-grid 1 1.5 2 2.5 3 3.5 4 5 99 --jpeg-grid 0 0.5 1 1.5 2 99 --rows rows_crf18.jsonl rows_crf23.jsonl ...

Other codecs, and frames the codec predicts from the ones before (a slow pan; the first frame of a clip is coded on
its own, at a higher quality than most of a clip's): ``--codec hevc --crf 25 --pan 8`` (H.264, HEVC, VP9, AV1 at the
encoders' own constant-quality scales). At a bit rate instead of a quality, as cameras and streams code (the QP
then follows the picture): ``--bpp 0.5 --pan 24``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

Row = dict[str, Any]
#: The shares of the flattest blocks the noise features are read at (:func:`classsr_cli.metrics.noise_levels`).
SHARES = (0.005, 0.02, 0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", help="a set name under ../shared/data/val, or a folder")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0, 2, 3, 4, 5, 6])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rule", type=float, nargs=5, action="append", default=[],
                    metavar=("NOISY_SHARE", "NOISY_FROM", "JPEG_SHARE", "JPEG_FROM", "TEXTURE"),
                    help="a rule to score (repeatable): the noisy model from NOISY_FROM levels at NOISY_SHARE, else the "
                    "JPEG model from JPEG_FROM at JPEG_SHARE where the estimate at share 0.1 is at most TEXTURE times it")
    ap.add_argument("--h264-qp", type=float, metavar="QP", help="also score each --rule with an H.264 part: the JPEG "
                    "model where it picks the default on a clip H.264 coded at a mean QP of at least QP (rows of --codec "
                    "h264; classsr_cli.pipeline.H264_JPEG_FROM_QP)")
    ap.add_argument("--per-file", action="store_true", help="with several --rows files, each rule's gains on each too")
    ap.add_argument("--features", type=float, nargs="*", metavar="SIGMA", help="instead of rules: on each --rows "
                    "file, the correlation of each feature with the JPEG model's gain over the default (at these noise "
                    "levels; none given: all)")
    ap.add_argument("--search", action="store_true", help="the best rule of a grid (training photos only; with "
                    "--h264-qp, each with that H.264 part)")
    ap.add_argument("--keep-noisy", action="store_true", help="search only the JPEG model's part; the noisy model's "
                    "as the notes' (from 4 levels at share 0.02)")
    ap.add_argument("--rows", nargs="+", default=[], help="a JSON Lines file of the measured rows: read if it exists, "
                    "else written; several existing ones are read together (each noise level then averages over them)")
    ap.add_argument("--crf", type=int, help="each LR (after the noise) as the first frame of an H.264 clip at this CRF, "
                    "decoded as classsr video decodes it (scripts/noise_level.py's coded_frames)")
    ap.add_argument("--bpp", type=float, help="as --crf, the clip at this average bit rate instead, in bits a pixel "
                    "(-b:v, one pass: how cameras and streams code; their QP then varies with the picture)")
    ap.add_argument("--codec", choices=["h264", "hevc", "vp9", "av1"], default="h264",
                    help="the codec of --crf's clip (scripts/noise_level.py's ENCODERS)")
    ap.add_argument("--pan", type=int, default=0, metavar="N",
                    help="with --crf: each picture as a pan of N+1 frames (the HR window moves --pan-step px right and "
                    "a third of that down a frame, each frame's LR made from it, noise drawn anew each frame), scored "
                    "on frames N/2 and N, which the codec predicts from the frames before (0: the first frame alone)")
    ap.add_argument("--pan-step", type=int, default=3, help="--pan's step to the right, in HR pixels a frame")
    ap.add_argument("--feature-frames", type=int, nargs="+", default=[0], metavar="K",
                    help="with --pan: the noise features also read on these decoded frames of each clip (rows' "
                    "nlSHARE@K; frame 0's are nlSHARE), as classsr video could read a frame the codec predicted")
    ap.add_argument("--read-at", type=int, nargs="+", metavar="K",
                    help="score the rules on the noise features read on frame K of each clip (the median over several "
                    "K), from rows measured with --feature-frames; default: the first frame, as classsr video reads")
    ap.add_argument("--notes-from", type=float, default=4.0, help="the notes' noisy-model threshold (share 0.02): 4 "
                    "for pictures and (since the sixty-ninth pass) video, 1 for video coded lossily before it")
    ap.add_argument("--noisy-grid", type=float, nargs="+", default=[3.0, 3.5, 4.0, 4.5, 5.0],
                    help="the noisy model's thresholds --search tries")
    ap.add_argument("--jpeg-grid", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0, 3.5, 99.0],
                    help="the JPEG model's thresholds --search tries (99: never)")
    args = ap.parse_args()
    if args.crf is not None and args.bpp is not None:
        ap.error("--crf or --bpp, not both")
    torch.set_num_threads(args.threads)
    if args.rows and all(os.path.exists(path) for path in args.rows):
        rows = []
        for path in args.rows:
            with open(path) as f:
                rows += [{**json.loads(line), "file": os.path.basename(path)} for line in f]
    else:
        if len(args.rows) > 1:
            raise SystemExit("--rows: several files are read only when they all exist")
        rows = _measure(args)
        if args.rows:
            with open(args.rows[0], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
    if args.features is not None:
        for file in sorted({r.get("file", "") for r in rows}):
            part = [r for r in rows if r.get("file", "") == file and (not args.features or r["sigma"] in args.features)]
            gain = np.array([r["jpeg"] - r["default"] for r in part])
            keys = [k for k in ("nl0.005", "nl0.02", "nl0.1", "bpp", "qp") if part[0].get(k) is not None]
            sys.stdout.write(json.dumps({"rows": file, "n": len(part), "jpeg_wins": round(float((gain > 0).mean()), 3),
                                         "correlation": {k: round(float(np.corrcoef([r[k] for r in part], gain)[0, 1]), 3)
                                                         if np.std([r[k] for r in part]) > 0 else None for k in keys}}) + "\n")
        return 0
    if args.read_at:
        rows = [_read_at(r, args.read_at) for r in rows]
    models = [k for k in ("default", "jpeg", "noisy") if k in rows[0]]
    rules: dict[str, Callable[[Row], str]] = {
        "notes": _rule(0.02, args.notes_from, 0.02, 99.0, 0.0),
        "oracle": lambda r: max(models, key=lambda k: r[k]),
    }
    for rule in args.rule:
        rules[f"rule {rule}"] = _rule(*rule)
        if args.h264_qp is not None:
            rules[f"rule {rule} and H.264 from QP {args.h264_qp:g}"] = _with_h264(_rule(*rule), args.h264_qp)
    if args.search:
        noisy = [(0.02, args.notes_from)] if args.keep_noisy else itertools.product((0.005, 0.02), args.noisy_grid)
        grid = itertools.product(noisy, (0.005, 0.02), args.jpeg_grid, (1.2, 1.5, 2.0, 99.0))
        qp = args.h264_qp

        def scored(p: list[float]) -> Callable[[Row], str]:
            return _rule(*p) if qp is None else _with_h264(_rule(*p), qp)

        found = max(([*n, *rest] for n, *rest in grid), key=lambda p: _mean(_gains(rows, scored(p))))
        rules[f"best of the grid {found}" + ("" if qp is None else f" and H.264 from QP {qp:g}")] = scored(found)
    files = sorted({r["file"] for r in rows}) if args.per_file and len(args.rows) > 1 else []
    for label, rule in rules.items():
        for file in [None, *files]:
            part = [r for r in rows if file is None or r["file"] == file]
            images = sum(1 for r in part if r["sigma"] == part[0]["sigma"])
            gains = _gains(part, rule)
            sys.stdout.write(json.dumps({"set": args.set, "scale": args.scale, "images": images, "rule": label,
                                         **({"rows": file} if file else {}),
                                         "gain_db": {f"{s:g}": round(g, 3) for s, g in gains.items()},
                                         "picked": _picked(part, rule),
                                         "mean_db": round(_mean(gains), 3)}) + "\n")
    return 0


def _measure(args: argparse.Namespace) -> list[Row]:
    """Each model's routed PSNR-Y and the noise features of every picture at each noise level."""
    from classsr_cli import bench, zoo
    from classsr_cli.metrics import noise_levels

    names = {"default": zoo.default_model_name(args.scale), "jpeg": zoo.jpeg_model_name(args.scale),
             "noisy": zoo.noisy_model_name(args.scale)}  # fmt: skip
    nets = {k: zoo.load(n, args.scale).net.eval() for k, n in names.items() if n}
    paths = bench.find_images([args.set])
    rows: list[Row] = []
    for sigma in args.sigmas:
        pairs = bench.load_pairs(paths, args.scale, noise=sigma or None)
        # the pictures scored (with --pan, two frames of each), and the frames the features are read on: the first,
        # with --pan also --feature-frames
        scored: list[list[bench.Pair]] = [[p] for p in pairs]
        first: list[dict[int, np.ndarray]] = [{0: p.lr} for p in pairs]
        coded: list[dict] = [{} for _ in pairs]  # with --crf: the clip's bits a pixel, its frames' QP
        if args.crf is not None or args.bpp is not None:
            scored, first, coded = zip(*(_coded(p, sigma, args) for p in pairs), strict=True)  # type: ignore[assignment]
        flat = [p for group in scored for p in group]
        scores = {k: [row["psnr_y"] for row in bench.run_bench(
            net, flat, repeat=1, warmup=0, methods=("classsr",), threads=args.threads, model_name=names[k],
            scale=args.scale).methods["classsr"].per_image] for k, net in nets.items()}  # fmt: skip
        at = 0
        for group, read, clip in zip(scored, first, coded, strict=True):
            features = {f"nl{share}{f'@{k}' if k else ''}": level for k, frame in read.items()
                        for share, level in zip(SHARES, noise_levels(frame, SHARES), strict=True)}
            rows.append({"sigma": sigma, **clip, **features,
                         **{k: float(np.mean(v[at : at + len(group)])) for k, v in scores.items()}})  # fmt: skip
            at += len(group)
    return rows


def _coded(pair, sigma: float, args: argparse.Namespace) -> tuple[list, dict[int, np.ndarray], dict]:
    """``pair`` through ``args.codec`` at ``args.crf`` (or ``args.bpp``): the pairs to score (the first frame, or
    frames N/2 and N of a pan of ``args.pan`` + 1 frames, against their HR windows), the decoded frames the features
    are read on (the first; with a pan also ``args.feature_frames``), and the
    clip's bits a pixel (``bpp``), its first frame's QP (``qp0``) and the mean over its first 25 frames (``qp``), as ``classsr video``
    reads it (:func:`classsr_cli.io.video.h264_qp`: H.264's blocks' QPs; ``None`` for the other codecs; rows of the
    sixty-ninth pass: the slices' initial QP, the CRF, over the scored frames)."""
    from noise_level import _seed, coded_frames  # scripts/

    from classsr_cli.degrade import add_noise, make_pair

    s, n = args.scale, args.pan
    if n == 0:
        hrs, lrs = [pair.hr], [pair.lr]
    else:
        dx = args.pan_step
        dy = dx // 3
        h, w = pair.hr.shape[0] - dy * n, pair.hr.shape[1] - dx * n
        h, w = h // (2 * s) * 2 * s, w // (2 * s) * 2 * s
        hrs = [pair.hr[dy * k : dy * k + h, dx * k : dx * k + w] for k in range(n + 1)]
        seed = _seed(pair.name)  # the noise bench.load_pairs gave the first frame
        lrs = [make_pair(hr, s)[1] for hr in hrs]
        lrs = [add_noise(lr, sigma, seed + k) if sigma else lr for k, lr in enumerate(lrs)]
    stats: dict = {}
    frames = coded_frames(lrs, args.crf, args.codec, stats, bpp=args.bpp)
    keep = [0] if n == 0 else [n // 2, n]
    qps = stats["qp"][:25]  # classsr_cli.io.video.QP_FRAMES
    coded = {"codec": args.codec, "bpp": 8 * stats["bytes"] / (frames[0].shape[0] * frames[0].shape[1] * len(frames)),
             "qp0": stats["qp"][0], "qp": None if None in qps else float(np.mean(qps))}  # fmt: skip
    return ([replace(pair, lr=frames[k], hr=hrs[k][: frames[k].shape[0] * s, : frames[k].shape[1] * s]) for k in keep],
            {k: frames[k] for k in sorted({0, *(args.feature_frames if n else ())}) if k < len(frames)}, coded)


def _read_at(row: Row, frames: list[int]) -> Row:
    """``row`` with its noise features read on ``frames`` of its clip (the median over them; ``--read-at``)."""
    out = dict(row)
    for share in SHARES:
        levels = [row[f"nl{share}@{k}" if k else f"nl{share}"] for k in frames]
        out[f"nl{share}"] = float(np.median(levels))
    return out


def _rule(noisy_share: float, noisy_from: float, jpeg_share: float, jpeg_from: float,
          texture: float) -> Callable[[Row], str]:
    def pick(r: Row) -> str:
        if r[f"nl{noisy_share:g}"] >= noisy_from and "noisy" in r:
            return "noisy"
        level = r[f"nl{jpeg_share:g}"]
        if level >= jpeg_from and r["nl0.1"] <= texture * max(level, 1e-6) and "jpeg" in r:
            return "jpeg"
        return "default"

    return pick


def _with_h264(rule: Callable[[Row], str], qp: float) -> Callable[[Row], str]:
    def pick(r: Row) -> str:
        picked = rule(r)
        coarse = r.get("codec") == "h264" and r.get("qp") is not None and r["qp"] >= qp and "jpeg" in r
        return "jpeg" if picked == "default" and coarse else picked

    return pick


def _gains(rows: list[Row], rule: Callable[[Row], str]) -> dict[float, float]:
    out = {}
    for sigma in sorted({r["sigma"] for r in rows}):
        out[sigma] = float(np.mean([r[rule(r)] - r["default"] for r in rows if r["sigma"] == sigma]))
    return out


def _picked(rows: list[Row], rule: Callable[[Row], str]) -> dict[str, dict[str, float]]:
    """The share of pictures each model runs on, at each noise level."""
    out: dict[str, dict[str, float]] = {}
    for sigma in sorted({r["sigma"] for r in rows}):
        picks = [rule(r) for r in rows if r["sigma"] == sigma]
        out[f"{sigma:g}"] = {k: round(picks.count(k) / len(picks), 3) for k in sorted(set(picks))}
    return out


def _mean(gains: dict[float, float]) -> float:
    return float(np.mean(list(gains.values())))


if __name__ == "__main__":
    raise SystemExit(main())
