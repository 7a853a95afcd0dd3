"""One prepared CUDA session for the routed engine: correctness, host syncs, call costs, planner call cost, speed.

Writes one JSON (``--out``) and a readable log on stdout. Needs a CUDA device; never run by tests or CI.

1. **Correctness**: routed and heavy-whole outputs on CUDA at fp32/bf16/fp16 against the CPU fp32 run planned
   with the same call cost (8-bit levels, PSNR-Y against HR, share of cells routed alike).
2. **Host syncs** per routed frame (``torch.cuda.set_sync_debug_mode``), and the bands they come from.
3. **Call cost**: each residual branch on one 36x36 tile, on 64 of them, and on a whole frame: what a batched
   call costs beyond its pixels, in pixels of the heavy branch (``engine.cells.CALL_PIXELS``).
4. **Speed**: heavy whole, medium whole and routed, seconds per pass (median, methods in turn), for several
   planner call costs, at each precision, on the benchmark LR frames and on photos at their own size.
5. ``torch.backends.cudnn.benchmark`` and ``torch.compile`` on the heavy branch for one fixed frame size.

    PYTHONPATH=. python3 scripts/gpu_check.py --data DATA --native examples/lighthouse.jpg --out gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from classsr_cli import bench, runtime, zoo
from classsr_cli.engine import cells, upscale_tensor
from classsr_cli.metrics import psnr, quantize

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
T0 = time.perf_counter()
DEV = "cuda"  # --device cpu: a dry run of the script here


def log(msg: str) -> None:
    sys.stdout.write(f"[{time.perf_counter() - T0:7.1f}s] {msg}\n")
    sys.stdout.flush()


def tensor(lr: np.ndarray, device: str, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(lr).permute(2, 0, 1)[None].to(device=device, dtype=dtype).div_(255).contiguous()


def correctness(path: str | None, pairs: list[bench.Pair]) -> dict:
    ref = zoo.load(path, 4, device="cpu").net.eval()
    out: dict = {}
    base = {}
    cpu_call = cells.CALL_PIXELS["cpu"]
    cells.CALL_PIXELS["cpu"] = cells.call_pixels(torch.device(DEV))  # the same plans on both devices
    for i, p in enumerate(pairs):
        x = tensor(p.lr, "cpu", torch.float32)
        sr, route = upscale_tensor(ref, x)
        with torch.inference_mode():
            heavy = ref.branches[2](x)
        base[i] = (quantize(sr), route.classes.clone(), quantize(heavy))
    cells.CALL_PIXELS["cpu"] = cpu_call
    for name, dtype in PRECISIONS.items():
        net = zoo.load(path, 4, device=DEV, dtype=dtype).net.eval()
        diffs, hdiffs, agree, total, py, py_ref = [], [], 0, 0, [], []
        for i, p in enumerate(pairs):
            x = tensor(p.lr, DEV, dtype)
            sr, route = upscale_tensor(net, x)
            with torch.inference_mode():
                heavy = net.branches[2](x)
            q, cls, qh = quantize(sr.float()), route.classes, quantize(heavy.float())
            r_q, r_cls, r_h = base[i]
            diffs.append(float(np.abs(q.astype(int) - r_q.astype(int)).mean()))
            hdiffs.append(float(np.abs(qh.astype(int) - r_h.astype(int)).mean()))
            agree += int((cls == r_cls).sum())
            total += cls.numel()
            assert p.hr is not None
            py.append(psnr(q, p.hr, 4, y_channel=True))
            py_ref.append(psnr(r_q, p.hr, 4, y_channel=True))
        out[name] = {"routed_mean_abs_levels": float(np.mean(diffs)), "heavy_mean_abs_levels": float(np.mean(hdiffs)),
                     "cells_routed_alike": agree / total, "psnr_y": float(np.mean(py)),
                     "psnr_y_cpu_fp32": float(np.mean(py_ref))}
        log(f"correctness {name}: {out[name]}")
    return out


def syncs(path: str | None, pair: bench.Pair) -> dict:
    if DEV != "cuda":
        return {"skipped": DEV}
    net = zoo.load(path, 4, device=DEV).net.eval()
    x = tensor(pair.lr, DEV, torch.float32)
    upscale_tensor(net, x)
    runtime.synchronize(torch.device(DEV))
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            upscale_tensor(net, x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    where = [str(w.filename).split("classsr_cli/")[-1] + f":{w.lineno}" for w in caught]
    got = {"frame": list(pair.lr.shape[:2]), "syncs": len(caught), "where": sorted(set(where))}
    log(f"syncs per routed frame: {got}")
    return got


def call_costs(path: str | None) -> dict:
    out: dict = {}
    for name, dtype in PRECISIONS.items():
        net = zoo.load(path, 4, device=DEV, dtype=dtype).net.eval()
        one = torch.rand(1, 3, 36, 36, device=DEV, dtype=dtype)
        many = torch.rand(64, 3, 36, 36, device=DEV, dtype=dtype)
        frame = torch.rand(1, 3, 192, 256, device=DEV, dtype=dtype)
        rows = {}
        for k, b in enumerate(net.branches):
            if getattr(b, "width", 0) == 0:
                continue
            t = {}
            with torch.inference_mode():
                for label, x, reps in (("one", one, 200), ("batch64", many, 50), ("frame", frame, 50)):
                    for _ in range(5):
                        b.residual(x)
                    runtime.synchronize(torch.device(DEV))
                    s = time.perf_counter()
                    for _ in range(reps):
                        b.residual(x)
                    runtime.synchronize(torch.device(DEV))
                    t[label] = (time.perf_counter() - s) / reps
            rows[k] = {"call_one_us": t["one"] * 1e6, "call_batch64_us": t["batch64"] * 1e6,
                       "frame_256x192_us": t["frame"] * 1e6,
                       "ns_per_px_batch64": t["batch64"] / (64 * 36 * 36) * 1e9,
                       "ns_per_px_frame": t["frame"] / (192 * 256) * 1e9}
        heavy = rows[max(rows)]
        per_px = heavy["ns_per_px_frame"] / 1e9
        for r in rows.values():
            r["call_overhead_heavy_px"] = (r["call_one_us"] / 1e6 - 36 * 36 * per_px) / per_px
        out[name] = rows
        log(f"call costs {name}: {json.dumps(rows)}")
    return out


def speed(path: str | None, sets: dict[str, list[bench.Pair]], call_pixels: list[int], precisions: list[str],
          repeat: int) -> list[dict]:
    rows = []
    default = dict(cells.CALL_PIXELS)
    for pname in precisions:
        dtype = PRECISIONS[pname]
        net = zoo.load(path, 4, device=DEV, dtype=dtype).net.eval()
        for set_name, pairs in sets.items():
            timed = [bench.Pair(p.name, None, p.lr, p.path, p.size) for p in pairs]  # no quality pass
            for cp in call_pixels:
                cells.CALL_PIXELS[DEV] = cp
                try:
                    res = bench.run_bench(net, timed, device=DEV, dtype=dtype, repeat=repeat, warmup=2,
                                          methods=("medium", "heavy", "classsr"))
                finally:
                    cells.CALL_PIXELS.update(default)
                m = res.methods
                row = {"set": set_name, "precision": pname, "call_pixels": cp,
                       "heavy_s": m["heavy"].seconds, "medium_s": m["medium"].seconds,
                       "classsr_s": m["classsr"].seconds, "time_x_heavy": m["classsr"].seconds / m["heavy"].seconds,
                       "flops_x_heavy": m["classsr"].flops / m["heavy"].flops, "patches": m["classsr"].patches,
                       "heavy_mp_s": m["heavy"].mp_per_s, "classsr_mp_s": m["classsr"].mp_per_s}
                rows.append(row)
                log(f"speed {row}")
    return rows


def stages(path: str | None, sets: dict[str, list[bench.Pair]], reps: int = 3) -> dict:
    """Milliseconds per frame in each step of the routed cell path (synchronised around each step, so the sum
    is a little above an unsynchronised run), fp32, the device's planner call cost."""
    from classsr_cli.engine import bands

    net = zoo.load(path, 4, device=DEV).net.eval()
    dev = torch.device(DEV)
    names = ("pad_frame", "classify_frame_cells", "plan_tiles", "run_cells", "cell_flops")
    spent: dict[str, float] = {}
    originals = {n: getattr(bands, n) for n in names}

    def timed(name: str, fn):
        def call(*a, **k):
            runtime.synchronize(dev)
            s = time.perf_counter()
            r = fn(*a, **k)
            runtime.synchronize(dev)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - s
            return r
        return call

    out: dict = {}
    for set_name, pairs in sets.items():
        xs = [tensor(p.lr, DEV, torch.float32) for p in pairs]
        for x in xs:
            upscale_tensor(net, x)
        for n in names:
            setattr(bands, n, timed(n, originals[n]))
        try:
            spent.clear()
            runtime.synchronize(dev)
            s = time.perf_counter()
            for _ in range(reps):
                for x in xs:
                    upscale_tensor(net, x)
            runtime.synchronize(dev)
            total = time.perf_counter() - s
        finally:
            for n in names:
                setattr(bands, n, originals[n])
        frames = reps * len(xs)
        row = {n: spent.get(n, 0.0) / frames * 1e3 for n in names}
        row["total"] = total / frames * 1e3
        row["other"] = row["total"] - sum(row[n] for n in names)
        with torch.inference_mode():
            runtime.synchronize(dev)
            s = time.perf_counter()
            for _ in range(reps):
                for x in xs:
                    net.branches[2](x)
            runtime.synchronize(dev)
        row["heavy_whole"] = (time.perf_counter() - s) / frames * 1e3
        out[set_name] = row
        log(f"stages {set_name} (ms per frame): {row}")
    return out


def fixed_shape(path: str | None, pair: bench.Pair, budget_s: float) -> dict:
    out: dict = {}
    net = zoo.load(path, 4, device=DEV).net.eval()
    heavy = net.branches[2]
    x = tensor(pair.lr, DEV, torch.float32)

    def timed(fn, reps: int = 20) -> float:
        with torch.inference_mode():
            for _ in range(3):
                fn(x)
            runtime.synchronize(torch.device(DEV))
            s = time.perf_counter()
            for _ in range(reps):
                fn(x)
            runtime.synchronize(torch.device(DEV))
        return (time.perf_counter() - s) / reps

    out["eager_s"] = timed(heavy)
    torch.backends.cudnn.benchmark = True  # (no effect on the CPU)
    out["cudnn_benchmark_s"] = timed(heavy)
    out["cudnn_benchmark_routed_s"] = timed(lambda t: upscale_tensor(net, t), 5)
    torch.backends.cudnn.benchmark = False
    out["eager_routed_s"] = timed(lambda t: upscale_tensor(net, t), 5)
    log(f"fixed shape: {out}")
    if time.perf_counter() - T0 < budget_s:
        s = time.perf_counter()
        compiled = torch.compile(heavy)
        with torch.inference_mode():
            compiled(x)
        out["compile_first_call_s"] = time.perf_counter() - s
        out["compiled_s"] = timed(compiled)
        log(f"torch.compile: {out}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", required=True, help="folder holding SunHays80")
    ap.add_argument("--set", default="SunHays80")
    ap.add_argument("--native", nargs="*", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", type=int, default=10, help="images of the set for the correctness check")
    ap.add_argument("--call-pixels", type=int, nargs="*", default=[1000, 30000, 10**12])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compile-before", type=float, default=300.0, help="try torch.compile only before this second")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--skip", nargs="*", default=[], help="steps to leave out (correctness, syncs, call_costs, ...)")
    ap.add_argument("--precisions", nargs="*", default=list(PRECISIONS))
    args = ap.parse_args()
    global DEV
    DEV = args.device
    for k in set(PRECISIONS) - set(args.precisions):
        del PRECISIONS[k]
    name = torch.cuda.get_device_name() if DEV == "cuda" else DEV
    log(f"torch {torch.__version__}, {name}")
    paths, _ = bench.find_inputs([args.set], args.data)
    pairs = bench.load_pairs(paths, 4)
    native = bench.load_native([Path(p) for p in args.native], 4) if args.native else []
    report: dict = {"torch": torch.__version__, "device": name, "set": args.set,
                    "images": len(pairs), "native": args.native}
    steps = [
        ("correctness", lambda: correctness(args.model, pairs[: args.check])),
        ("syncs", lambda: syncs(args.model, pairs[0])),
        ("call_costs", lambda: call_costs(args.model)),
        ("speed", lambda: speed(args.model, {args.set: pairs, **({"native": native} if native else {})},
                                args.call_pixels, [p for p in ("fp32", "fp16") if p in PRECISIONS], args.repeat)
         + speed(args.model, {args.set: pairs, **({"native": native} if native else {})}, [cells.CALL_PIXELS[DEV]],
                 [p for p in ("bf16",) if p in PRECISIONS], args.repeat)),
        ("stages", lambda: stages(args.model, {args.set: pairs, **({"native": native} if native else {})})),
        ("fixed_shape", lambda: fixed_shape(args.model, native[0] if native else pairs[0], args.compile_before)),
    ]
    for name, step in steps:
        if name in args.skip:
            continue
        try:
            report[name] = step()
        except Exception as e:
            report[name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"{name} failed: {type(e).__name__}: {e}")
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
