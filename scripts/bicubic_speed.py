"""Is the residual family's bicubic path cheaper as two separable passes? Both ways timed interleaved in one
process (never one after the other: this machine's speed drifts between runs) on channels-last LR frames, as
inference feeds them: the shipped 5x5 depthwise convolution to ``3*s*s`` phases (:meth:`ResidualSR.upsample`),
and a 5x1 pass to ``3*s`` row phases followed by a 1x5 pass to ``3*s*s`` (a quarter of the multiply-adds; the
same values up to float rounding). Median and best, in ms.

    python scripts/bicubic_speed.py --sizes 80x120 192x256 321x481 [-x 4] [--threads 2] [--rounds 80]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from classsr_cli.models.residual import BICUBIC_TAPS, ResidualSR


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["80x120", "192x256", "321x481"], help="LR HEIGHTxWIDTH")
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=80)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s, pad = args.scale, BICUBIC_TAPS // 2
    net = ResidualSR(width=0, scale=s).eval()
    # phase (ry, rx) is the outer product of its row and column taps, each normalised: a row of the 5x5 kernel
    # summed over its columns is the row taps
    taps = net.bicubic.view(3, s, s, BICUBIC_TAPS, BICUBIC_TAPS)[0, :, 0].sum(-1)  # (s, 5)
    rows = taps.reshape(s, 1, BICUBIC_TAPS, 1).repeat(3, 1, 1, 1)
    cols = taps.reshape(s, 1, 1, BICUBIC_TAPS).repeat(3 * s, 1, 1, 1)
    out: dict = {"scale": s, "threads": args.threads, "rounds": args.rounds, "rows": []}
    with torch.inference_mode():
        for size in args.sizes:
            h, w = (int(v) for v in size.split("x"))
            x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)

            def separable(x: torch.Tensor = x) -> torch.Tensor:
                p = F.pad(x, (pad, pad, pad, pad), mode="replicate")
                return F.conv2d(F.conv2d(p, rows, groups=3), cols, groups=3 * s)

            ways: dict[str, Callable[[], torch.Tensor]] = {"conv5x5": lambda x=x: net.upsample(x),
                                                           "separable": separable}
            diff = float((ways["conv5x5"]() - ways["separable"]()).abs().max())
            times: dict[str, list[float]] = {k: [] for k in ways}
            for i in range(args.rounds + 3):
                for name in (list(ways) if i % 2 else list(ways)[::-1]):
                    t = time.perf_counter()
                    ways[name]()
                    if i >= 3:  # warm-up
                        times[name].append((time.perf_counter() - t) * 1000)
            row = {"lr": size, "max_abs_diff": diff}
            for name, ts in times.items():
                row[f"{name}_median_ms"] = round(statistics.median(ts), 3)
                row[f"{name}_best_ms"] = round(min(ts), 3)
            out["rows"].append(row)
            sys.stderr.write(f"{row}\n")
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
