"""How fast a luma residual (``s²`` channels) is added to a channels-last ``3·s²``-channel LR-grid frame, per
dtype: three adds of a channel slice (``ResidualSR.add_residual``), the copy to R, G and B and one add (what
16-bit floats keep, ``expand_luma``), and one broadcast add.

    python scripts/luma_add_speed.py [--size 192 256] [-x 4] [--threads 2] [--repeat 50]

Prints a JSON line per dtype: the median milliseconds of each way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

from classsr_cli.models.residual import ResidualSR


def _ways(y: torch.Tensor, res: torch.Tensor) -> dict[str, Callable[[], object]]:
    return {
        "slice_adds": lambda: ResidualSR.add_residual(y, res),
        "copy_and_add": lambda: y.add_(torch.cat([res, res, res], 1)),
        "broadcast_add": lambda: y.unflatten(1, (3, -1)).add_(res.unsqueeze(1)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=(192, 256))
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = args.size
    n = args.scale * args.scale
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        y = torch.rand(1, 3 * n, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
        res = torch.rand(1, n, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
        ways = _ways(y, res)
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(3):
            for fn in ways.values():
                fn()
        for _ in range(args.repeat):
            for k, fn in ways.items():  # in turns
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        sys.stdout.write(json.dumps({"dtype": str(dtype).removeprefix("torch."), "size": [h, w], "scale": args.scale,
                                     "threads": args.threads,
                                     "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in times.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
