"""Measure the speed levers of issue 6 (exact reformulations, halo stitching, overlap, routing) on CPU.

Prints Markdown tables: median wall time of whole passes over the images, and for the quality sections PSNR-Y
against the HR image and the difference between tiled and whole-image output of the heavy branch.

    python scripts/speed_levers.py --model weights/classsr_fsrcnn_x4.safetensors --images SunHays80 \
        --limit 10 --threads 2 --repeat 5 --levers deconv stitch steps batch

``--model paper`` builds an untrained paper-width model (timing does not depend on weight values; quality
sections then say nothing useful).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from classsr_cli.bench import find_images, load_pairs
from classsr_cli.config import ClassSRConfig
from classsr_cli.engine import upscale_tensor
from classsr_cli.engine.stitching import stitch
from classsr_cli.engine.tiling import extract_patches, plan_grid
from classsr_cli.metrics import psnr, quantize
from classsr_cli.models import build_model


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


CPU_RATIOS: list[str] = []


def interleaved(fns: list[Callable[[], object]], repeat: int) -> tuple[list[float], list[float]]:
    """Run ``fns`` round-robin ``repeat`` times (after one warm-up each), so that load from other processes hits
    all of them alike. Returns (median wall seconds of each, median over rounds of ``wall[0] / wall[i]``).

    The CPU time of the process is measured too (less sensitive to other processes on a shared machine than
    wall time); its ratios ``cpu[0] / cpu[i]`` are kept in :data:`CPU_RATIOS` for the table's last column."""
    for fn in fns:
        fn()
    rounds, cpu_rounds = [], []
    for _ in range(repeat):
        ts, cs = [], []
        for fn in fns:
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        rounds.append(ts)
        cpu_rounds.append(cs)
    med = [statistics.median(r[i] for r in rounds) for i in range(len(fns))]
    ratio = [statistics.median(r[0] / r[i] for r in rounds) for i in range(len(fns))]
    CPU_RATIOS[:] = [f"{statistics.median(r[0] / r[i] for r in cpu_rounds):.3g}" for i in range(len(fns))]
    return med, ratio


def set_subpixel(model: torch.nn.Module, on: bool) -> None:
    for mod in model.modules():
        if hasattr(mod, "subpixel"):
            mod.subpixel = on


def set_channels_last(model: torch.nn.Module, on: bool) -> None:
    for mod in model.modules():
        if hasattr(mod, "channels_last"):
            mod.channels_last = on


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def whole_heavy(model, lrs) -> None:
    with torch.inference_mode():
        for x in lrs:
            model.branches[2](x)


def table(headers: list[str], rows: list[list[object]]) -> None:
    say("| " + " | ".join(headers) + " |")
    say("|" + "|".join("---" for _ in headers) + "|")
    for r in rows:
        say("| " + " | ".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in r) + " |")
    say()


def run_patches(branch, inputs, bs: int, ctx=torch.inference_mode) -> None:
    with ctx():
        for x in inputs:
            for c in x.split(bs):
                branch(c)


def tiles(model, lrs, step):
    grids = [plan_grid(x.shape[2], x.shape[3], model.cfg.patch, step) for x in lrs]
    return grids, [extract_patches(x, g) for x, g in zip(lrs, grids, strict=True)]


def lever_deconv(model, lrs, args) -> None:
    say("### Transposed convolution: plain vs convolution + pixel shuffle (interleaved, NCHW)\n")
    set_channels_last(model, False)
    rows = []
    _, patches = tiles(model, lrs, args.step)
    for k, name in enumerate(("light", "medium", "heavy")):
        branch = model.branches[k]
        for where, inputs in (("whole image", lrs), (f"patches step {args.step}", patches)):

            def plain(branch=branch, inputs=inputs) -> None:
                set_subpixel(model, False)
                run_patches(branch, inputs, args.batch_size)

            def fast(branch=branch, inputs=inputs) -> None:
                set_subpixel(model, True)
                run_patches(branch, inputs, args.batch_size)

            (before, after), (_, ratio) = interleaved([plain, fast], args.repeat)
            rows.append([name, where, before, after, ratio, CPU_RATIOS[1]])
    set_subpixel(model, True)
    set_channels_last(model, True)
    table(["branch", "input", "plain s", "subpixel s", "speed-up (wall)", "speed-up (CPU time)"], rows)


def lever_stitch(model, lrs, args) -> None:
    say("### Stitching: feather (fold) vs crop (halo), heavy outputs (interleaved)\n")
    grids, patches = tiles(model, lrs, args.step)
    with torch.inference_mode():
        outs = [model.forward_routed(p, force_branch=2)[0] for p in patches]
    modes = ("feather", "average", "crop")

    def stitch_all(mode: str) -> None:
        with torch.inference_mode():
            for o, g in zip(outs, grids, strict=True):
                stitch(o, g, model.cfg.scale, mode)

    def e2e(mode: str) -> None:
        for x in lrs:
            upscale_tensor(model, x, step=args.step, force_branch=2, blend=mode)

    st, st_ratio = interleaved([lambda m=m: stitch_all(m) for m in modes], args.repeat)
    st_cpu = list(CPU_RATIOS)
    fns = [lambda: whole_heavy(model, lrs)] + [lambda m=m: e2e(m) for m in modes]
    et, et_ratio = interleaved(fns, args.repeat)
    rows = [
        [
            m,
            st[i],
            1 / st_ratio[i],
            f"{1 / float(st_cpu[i]):.3g}",
            et[i + 1],
            1 / et_ratio[i + 1],
            f"{1 / float(CPU_RATIOS[i + 1]):.3g}",
        ]
        for i, m in enumerate(modes)
    ]
    table(
        ["mode", "stitch s", "stitch × feather", "(CPU)", "heavy-tiled e2e s", "e2e × whole heavy", "(CPU)"],
        rows,
    )
    say(f"(whole-image heavy: {et[0]:.4g} s)\n")


def lever_steps(model, lrs, pairs, args) -> None:
    say(
        "### Overlap: heavy-only tiled vs whole-image heavy (quantised outputs, 0..255; interleaved timing)\n"
    )
    s = model.cfg.scale
    with torch.inference_mode():
        wholes = [quantize(model.branches[2](x)) for x in lrs]
    p_whole = np.mean([psnr(w, p.hr, s, y_channel=True) for w, p in zip(wholes, pairs, strict=True)])
    configs = [(step, mode) for step in args.steps for mode in args.modes]

    def e2e(step: int, mode: str) -> None:
        for x in lrs:
            upscale_tensor(model, x, step=step, force_branch=2, blend=mode)

    t, ratio = interleaved(
        [lambda: whole_heavy(model, lrs)] + [lambda c=c: e2e(*c) for c in configs], args.repeat
    )
    rows = [["whole heavy", "-", p_whole, 0.0, 0.0, 0.0, t[0], 1.0]]
    b = 8 * s  # "inner": away from the right/bottom border, where the tiler pads by reflection
    for i, (step, mode) in enumerate(configs):
        outs = [quantize(upscale_tensor(model, x, step=step, force_branch=2, blend=mode)[0]) for x in lrs]
        diffs = [
            np.abs(o.astype(np.int16) - w.astype(np.int16))[:-b, :-b]
            for o, w in zip(outs, wholes, strict=True)
        ]
        p = np.mean([psnr(o, pr.hr, s, y_channel=True) for o, pr in zip(outs, pairs, strict=True)])
        mx = float(max(int(d.max()) for d in diffs))
        mean = float(np.mean([d.mean() for d in diffs]))
        cpu = f"{1 / float(CPU_RATIOS[i + 1]):.3g}"
        rows.append([f"step {step}", mode, p, p - p_whole, mx, mean, t[i + 1], 1 / ratio[i + 1], cpu])
    table(
        [
            "tiling",
            "stitch",
            "PSNR-Y dB",
            "Δ vs whole",
            "max |Δ| inner",
            "mean |Δ| inner",
            "s",
            "× whole",
            "(CPU)",
        ],
        rows,
    )


def lever_batch(model, lrs, args) -> None:
    say("### Batch size per branch call (patches, subpixel on, interleaved)\n")
    _, patches = tiles(model, lrs, args.step)
    rows = []
    for k, name in enumerate(("light", "medium", "heavy")):
        fns = [lambda bs=bs, b=model.branches[k]: run_patches(b, patches, bs) for bs in args.batches]
        t, _ = interleaved(fns, args.repeat)
        rows.append([name, *t])
        rows.append([f"{name} CPU × bs {args.batches[0]}", *(f"{1 / float(c):.3g}" for c in CPU_RATIOS)])
    table(["branch"] + [f"bs {b} s" for b in args.batches], rows)


def lever_layout(model, lrs, args) -> None:
    say(
        "### channels_last (FSRCNN.channels_last), and no_grad vs inference_mode (interleaved, subpixel on)\n"
    )
    _, patches = tiles(model, lrs, args.step)
    rows = []
    for k, name in enumerate(("light", "medium", "heavy")):
        branch = model.branches[k]
        for where, inputs in (("whole image", lrs), (f"patches step {args.step}", patches)):

            def nchw(branch=branch, inputs=inputs, ctx=torch.inference_mode) -> None:
                set_channels_last(model, False)
                run_patches(branch, inputs, args.batch_size, ctx)

            def cl(branch=branch, inputs=inputs) -> None:
                set_channels_last(model, True)
                run_patches(branch, inputs, args.batch_size)

            t, ratio = interleaved([nchw, cl, lambda n=nchw: n(ctx=torch.no_grad)], args.repeat)
            rows.append([name, where, t[0], t[1], ratio[1], CPU_RATIOS[1], 1 / ratio[2]])
    set_channels_last(model, True)
    table(
        [
            "branch",
            "input",
            "NCHW s",
            "channels_last s",
            "speed-up (wall)",
            "(CPU)",
            "no_grad × inference_mode",
        ],
        rows,
    )


def lever_strips(model, lrs, args) -> None:
    say("### Tile shape: heavy branch on patches vs on row strips of the same rows (interleaved)\n")
    import torch.nn.functional as F

    from classsr_cli.engine.tiling import pad_to_grid

    grids, patches = tiles(model, lrs, args.step)
    p = model.cfg.patch
    strips = [
        F.unfold(pad_to_grid(x, g), kernel_size=(p, g.padded_width), stride=(args.step, 1))
        .transpose(1, 2)
        .reshape(g.rows, 3, p, g.padded_width)
        for x, g in zip(lrs, grids, strict=True)
    ]
    branch = model.branches[2]
    names = ["whole image", f"patches {p}x{p}, step {args.step}", f"row strips {p} x W, step {args.step}"]
    t, ratio = interleaved(
        [
            lambda: run_patches(branch, lrs, args.batch_size),
            lambda: run_patches(branch, patches, args.batch_size),
            lambda: run_patches(branch, strips, args.batch_size),
        ],
        args.repeat,
    )
    rows = [[n, t[i], 1 / ratio[i], f"{1 / float(CPU_RATIOS[i]):.3g}"] for i, n in enumerate(names)]
    table(["heavy branch on", "s", "× whole (wall)", "(CPU)"], rows)


def merged_routed(model, x: torch.Tensor, step: int, lmax: int, force: int | None, bs: int) -> torch.Tensor:
    """Prototype of "merge neighbouring patches of the same class": each run of up to ``lmax`` same-class
    patches in a patch row is computed as one tile ``patch x ((L-1)*step + patch)``; the L patch-sized windows
    of its output (overlapping views, no copy) go to a :class:`CropCanvas` as if they were the patches."""
    from classsr_cli.engine.stitching import CropCanvas
    from classsr_cli.engine.tiling import pad_to_grid

    s, p = model.cfg.scale, model.cfg.patch
    grid = plan_grid(x.shape[2], x.shape[3], p, step)
    with torch.inference_mode():
        if force is None:
            classes = model.classify(extract_patches(x, grid)).reshape(grid.rows, grid.cols).tolist()
        else:
            classes = [[force] * grid.cols for _ in range(grid.rows)]
        padded = pad_to_grid(x, grid)
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for r in range(grid.rows):
            c = 0
            while c < grid.cols:
                k, n = classes[r][c], 1
                while c + n < grid.cols and n < lmax and classes[r][c + n] == k:
                    n += 1
                groups.setdefault((k, n), []).append((r, c))
                c += n
        canvas = CropCanvas(grid, s, x)
        for (k, n), starts in groups.items():
            width = (n - 1) * step + p
            for chunk in range(0, len(starts), max(1, bs // n)):
                part = starts[chunk : chunk + max(1, bs // n)]
                tiles = torch.cat(
                    [padded[:, :, r * step : r * step + p, c * step : c * step + width] for r, c in part]
                )
                out = model.branches[k](tiles)
                base = torch.tensor([r * grid.cols + c for r, c in part])
                for j in range(n):
                    canvas.put(base + j, out[..., j * s * step : j * s * step + s * p])
        return canvas.image()


def lever_merge(model, lrs, pairs, args) -> None:
    say(
        "### Merging same-class neighbours in a patch row into one tile (prototype, crop stitch, interleaved)\n"
    )
    s = model.cfg.scale
    with torch.inference_mode():
        wholes = [quantize(model.branches[2](x)) for x in lrs]
    variants = []
    for force in (2, None):
        name = "heavy-tiled" if force == 2 else "classsr"
        variants.append(
            (
                f"{name}, per patch",
                lambda f=force: [upscale_tensor(model, x, force_branch=f, blend="crop") for x in lrs],
            )
        )
        for lmax in args.merge:
            variants.append(
                (
                    f"{name}, runs of <= {lmax}",
                    lambda f=force, m=lmax: [
                        merged_routed(model, x, args.step, m, f, args.batch_size) for x in lrs
                    ],
                )
            )
    t, ratio = interleaved([lambda: whole_heavy(model, lrs)] + [f for _, f in variants], args.repeat)
    rows = [["whole heavy", t[0], 1.0, "1", "-", "-"]]
    for i, (name, fn) in enumerate(variants):
        outs = fn()
        outs = [quantize(o[0] if isinstance(o, tuple) else o) for o in outs]
        p = np.mean([psnr(o, pr.hr, s, y_channel=True) for o, pr in zip(outs, pairs, strict=True)])
        mean = np.mean(
            [
                np.abs(o.astype(np.int16) - w.astype(np.int16)).mean()
                for o, w in zip(outs, wholes, strict=True)
            ]
        )
        rows.append(
            [
                name,
                t[i + 1],
                1 / ratio[i + 1],
                f"{1 / float(CPU_RATIOS[i + 1]):.3g}",
                f"{p:.3f}",
                f"{mean:.3f}",
            ]
        )
    table(["variant", "s", "× whole heavy (wall)", "(CPU)", "PSNR-Y dB", "mean |Δ| vs whole heavy"], rows)


def lever_e2e(model, lrs, args) -> None:
    say(
        "### End to end: routed ClassSR and heavy-tiled before/after, against whole-image heavy (interleaved)\n"
    )
    say(
        "before = plain transposed conv, NCHW, feather, step 28; "
        f"after = subpixel, channels_last, crop, step {args.after_step}\n"
    )

    def whole(sub: bool) -> None:
        set_subpixel(model, sub)
        set_channels_last(model, sub)
        whole_heavy(model, lrs)

    def routed(sub: bool, blend: str, step: int, force: int | None) -> None:
        set_subpixel(model, sub)
        set_channels_last(model, sub)
        for x in lrs:
            upscale_tensor(model, x, step=step, force_branch=force, blend=blend, batch_size=args.batch_size)

    variants = [
        ("whole heavy, before", lambda: whole(False)),
        ("whole heavy, after", lambda: whole(True)),
        ("heavy-tiled, before", lambda: routed(False, "feather", 28, 2)),
        ("heavy-tiled, after", lambda: routed(True, "crop", args.after_step, 2)),
        ("classsr, before", lambda: routed(False, "feather", 28, None)),
        ("classsr, after", lambda: routed(True, "crop", args.after_step, None)),
    ]
    t, ratio = interleaved([f for _, f in variants], args.repeat)
    set_subpixel(model, True)
    set_channels_last(model, True)
    rows = [[n, t[i], 1 / ratio[i], f"{1 / float(CPU_RATIOS[i]):.3g}"] for i, (n, _) in enumerate(variants)]
    table(["variant", "s", "× whole heavy before (wall)", "(CPU)"], rows)
    with torch.inference_mode():
        counts = sum(
            torch.bincount(upscale_tensor(model, x, step=args.after_step)[1].classes.flatten(), minlength=3)
            for x in lrs
        )
    say(f"classes light/medium/heavy at step {args.after_step}: {counts.tolist()}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="paper", help="checkpoint path, or 'paper' (untrained paper widths)")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--images", nargs="+", default=["SunHays80"])
    ap.add_argument("--limit", type=int, default=10, help="first N images (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--step", type=int, default=28)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, nargs="+", default=[32, 30, 28, 24])
    ap.add_argument("--modes", nargs="+", default=["feather", "crop"])
    ap.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    ap.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True) (untrained weights hit denormals)",
    )
    ap.add_argument("--merge", type=int, nargs="+", default=[4, 16], help="longest merged runs (merge lever)")
    ap.add_argument("--after-step", type=int, default=28, help="step of the 'after' variants in e2e")
    ap.add_argument("--levers", nargs="+", default=["deconv", "stitch", "steps", "batch", "layout"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    if args.model == "paper":
        model = build_model(ClassSRConfig.paper("fsrcnn", args.scale)).eval()
    else:
        from classsr_cli.checkpoint import load_checkpoint

        model = load_checkpoint(Path(args.model), expect_kind="classsr").module.eval()
    paths = find_images(args.images)
    if args.limit:
        paths = paths[: args.limit]
    pairs = load_pairs(paths, args.scale)
    lrs = [torch.from_numpy(p.lr).permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous() for p in pairs]
    mp = sum(p.hr.size // 3 for p in pairs) / 1e6
    say(
        f"## speed levers: {args.model}, x{args.scale}, {len(pairs)} image(s) of {', '.join(args.images)} "
        f"({mp:.2f} MP out), {torch.get_num_threads()} thread(s), median of {args.repeat}, "
        f"flush denormal {args.flush_denormal}, torch {torch.__version__}\n"
    )
    for lever in args.levers:
        if lever == "deconv":
            lever_deconv(model, lrs, args)
        elif lever == "stitch":
            lever_stitch(model, lrs, args)
        elif lever == "steps":
            lever_steps(model, lrs, pairs, args)
        elif lever == "batch":
            lever_batch(model, lrs, args)
        elif lever == "merge":
            lever_merge(model, lrs, pairs, args)
        elif lever == "strips":
            lever_strips(model, lrs, args)
        elif lever == "e2e":
            lever_e2e(model, lrs, args)
        elif lever == "layout":
            lever_layout(model, lrs, args)
        else:
            raise SystemExit(f"unknown lever {lever}")


if __name__ == "__main__":
    main()
