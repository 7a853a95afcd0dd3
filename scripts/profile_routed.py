"""Where the routed path's time goes against the heavy branch on the whole frame: both timed in turns over a set's
LR frames (``scripts/timing.py``), then one pass of each under ``torch.profiler``, the operators that
took the most time (self CPU), and the share of the convolutions.

    python scripts/profile_routed.py SunHays80 [--model M] [-x 4] [--threads 2] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import time

import torch
from report import emit  # scripts/
from timing import model_and_frames, timing_parser  # scripts/
from torch.profiler import ProfilerActivity, profile

from classsr_cli.engine import upscale_tensor

CONV = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d")


def main() -> int:
    ap = timing_parser(__doc__)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    model, lrs = model_and_frames(args)
    heavy_branch = model.branches[2]

    def routed() -> None:
        for x in lrs:
            upscale_tensor(model, x)

    def heavy() -> None:
        with torch.inference_mode():
            for x in lrs:
                heavy_branch(x)

    runs = {"routed": routed, "heavy": heavy}
    for fn in runs.values():  # warm-up
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    report: dict = {"set": args.set, "frames": len(lrs), "threads": args.threads,
                    "seconds": {k: [round(v, 3) for v in vs] for k, vs in seconds.items()},
                    "time_vs_heavy": round(min(seconds["routed"]) / min(seconds["heavy"]), 3), "ops": {}}
    for name, fn in runs.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in ops)
        conv = sum(e.self_cpu_time_total for e in ops if e.key in CONV)
        report["ops"][name] = {
            "self_cpu_s": round(total / 1e6, 3),
            "convolution_share": round(conv / total, 3),
            "top": [{"op": e.key, "calls": e.count, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3)}
                    for e in ops[: args.top]],
        }
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
