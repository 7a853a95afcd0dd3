"""The engine's ``pixel_shuffle`` against the permuted copy it replaced and torch's own, on channels-last LR-grid
tensors of the residual family (``3*s*s`` channels, float32) at a few frame sizes: each timed in turns, 20 calls a
round, 5 rounds; prints the median milliseconds per call as JSON lines. The output of each is a fresh tensor, as
in the engine (but the same few buffers come back from the allocator, so a frame's page faults are not counted).

    python scripts/shuffle_speed.py [-x 4] [--threads 2] [--sizes 192x256 800x1024]
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

from classsr_cli.models.residual import pixel_shuffle


def six_dim_copy(y: torch.Tensor, s: int) -> torch.Tensor:
    """The shuffle before the nineteenth pass: one permuted copy of the NHWC memory as six dimensions."""
    n, c, h, w = y.shape
    cells = y.permute(0, 2, 3, 1).reshape(n, h, w, c // (s * s), s, s)
    return cells.permute(0, 3, 1, 4, 2, 5).reshape(n, c // (s * s), h * s, w * s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", nargs="+", default=["192x256", "800x1024"], help="LR frames, HxW")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s = args.scale
    for size in args.sizes:
        h, w = (int(v) for v in size.split("x"))
        y = torch.randn(1, 3 * s * s, h, w).contiguous(memory_format=torch.channels_last)
        nchw = y.contiguous()
        want = F.pixel_shuffle(nchw, s)
        ways: dict[str, Callable[[], torch.Tensor]] = {
            "engine": lambda y=y: pixel_shuffle(y, s),
            "six_dim_copy": lambda y=y: six_dim_copy(y, s),
            "torch_channels_last": lambda y=y: F.pixel_shuffle(y, s),
            "torch_nchw_input": lambda x=nchw: F.pixel_shuffle(x, s),
        }
        for name, fn in ways.items():
            if not torch.equal(fn(), want):
                raise SystemExit(f"{name} differs from F.pixel_shuffle")
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(5):
            for name, fn in ways.items():
                t0 = time.perf_counter()
                for _ in range(20):
                    fn()
                times[name].append((time.perf_counter() - t0) / 20 * 1e3)
        sys.stdout.write(json.dumps({"lr": [h, w], "scale": s, "threads": args.threads,
                                     "ms": {k: round(statistics.median(v), 3) for k, v in times.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
