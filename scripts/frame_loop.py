"""One LR frame upscaled again and again in a fresh process, as a video's frames of one size are: the routed
model, and its medium and heavy branches on the whole frame, median milliseconds a frame. Each ``--modes`` entry
is its own process: ``default`` (glibc's malloc as it comes) or ``keep``
(:func:`classsr_cli.runtime.keep_freed_memory`, what the CLI calls at start).

    python scripts/frame_loop.py ../shared/data/val/SunHays80/IMAGE -x 4 --threads 2 --rounds 2 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from report import emit  # scripts/

CHILD = """
import json, sys, time
import numpy as np
mode, path, scale, threads, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if mode == "keep":
    from classsr_cli.runtime import keep_freed_memory
    assert keep_freed_memory()
import torch
from classsr_cli import zoo
from classsr_cli.degrade import load_rgb, make_pair
from classsr_cli.engine import upscale_tensor
torch.set_num_threads(threads)
model = zoo.load(None, scale, device=torch.device("cpu"), dtype=torch.float32).net
_, lr = make_pair(load_rgb(path), scale)
x = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).contiguous()
out = {"mode": mode, "lr": list(x.shape[2:])}
with torch.inference_mode():
    for name, run in (("routed", lambda: upscale_tensor(model, x)), ("medium", lambda: model.branches[1](x)),
                      ("heavy", lambda: model.branches[2](x))):
        for _ in range(repeat // 5):
            run()
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        out[name + "_ms"] = round(float(np.median(times)) * 1e3, 2)
print(json.dumps(out))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=40, help="timed frames per method")
    ap.add_argument("--rounds", type=int, default=2, help="each mode this many times, in turns")
    ap.add_argument("--modes", nargs="+", default=["default", "keep"], choices=["default", "keep"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = []
    for _ in range(args.rounds):
        for mode in args.modes:
            got = subprocess.run([sys.executable, "-c", CHILD, mode, str(args.image), str(args.scale),
                                  str(args.threads), str(args.repeat)], check=True, capture_output=True, text=True)
            runs.append(json.loads(got.stdout))
    emit({"image": str(args.image), "threads": args.threads, "repeat": args.repeat, "runs": runs}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
