"""How fast a luma residual (``s²`` channels) is added to a channels-last ``3·s²``-channel LR-grid frame, per
dtype: three adds of a channel slice (``ResidualSR.add_residual``), the copy to R, G and B and one add (what
16-bit floats keep, ``expand_luma``), and one broadcast add. ``--shuffle``: each way followed by the pixel shuffle,
against the shuffle first and the shuffled residual added to the three colours on the HR grid (``after_shuffle``:
tried in the forty-fifth pass, docs/results/fortyfifth/luma_after_shuffle.patch).

    python scripts/luma_add_speed.py [--size 192 256] [-x 4] [--threads 2] [--repeat 50] [--shuffle]

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
from timing import as_the_cli_runs  # scripts/

from classsr_cli.models.residual import ResidualSR, pixel_shuffle


def _ways(y: torch.Tensor, res: torch.Tensor, scale: int, shuffle: bool) -> dict[str, Callable[[], object]]:
    ways: dict[str, Callable[[], torch.Tensor]] = {
        "slice_adds": lambda: ResidualSR.add_residual(y, res),
        "copy_and_add": lambda: y.add_(torch.cat([res, res, res], 1)),
        "broadcast_add": lambda: y.unflatten(1, (3, -1)).add_(res.unsqueeze(1)),
    }
    if not shuffle:
        return dict(ways)
    then = {k: (lambda fn=fn: pixel_shuffle(fn(), scale)) for k, fn in ways.items()}
    return {**then, "after_shuffle": lambda: pixel_shuffle(y, scale).add_(pixel_shuffle(res, scale))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, nargs=2, default=(192, 256))
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--shuffle", action="store_true", help="time each way with the pixel shuffle after it")
    args = ap.parse_args()
    as_the_cli_runs()  # glibc keeps freed memory, as in every classsr command: no page faults per call
    torch.set_num_threads(args.threads)
    h, w = args.size
    n = args.scale * args.scale
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        y = torch.rand(1, 3 * n, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
        res = torch.rand(1, n, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
        ways = _ways(y, res, args.scale, args.shuffle)
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
                                     "threads": args.threads, "shuffle": args.shuffle,
                                     "ms": {k: round(statistics.median(v) * 1e3, 3) for k, v in times.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
