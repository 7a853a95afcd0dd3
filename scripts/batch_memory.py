"""Resident memory and time of ``classsr upscale`` over a long folder of photos: does the process grow with the
number of photos?

Photos: the first ``--count`` training photos (never the validation sets), each as its LR (bicubic ÷``--scale`` of
the mod-cropped photo, as ``bench`` makes it; ``--divisor 1``: the photo as it is, what ``upscale`` is given) and, with ``--crops K``, K seeded random crops of that LR (half to all
of each side), for photos of many sizes; the folder is then repeated ``--repeat`` times under other names. Each
variant runs ``python -m classsr_cli upscale FOLDER -o OUT -x SCALE --threads T --json`` in a process of its own,
from a checkout (``--source``: this one by default; e.g. a ``git worktree`` of an earlier commit) with an environment
(``--env``: as it is, or ``NAME=VALUE[,NAME=VALUE]``, e.g. ``MALLOC_MMAP_THRESHOLD_=131072`` for glibc's own
malloc settings, ``ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024`` for oneDNN's default cache) and, with ``--kept-mib``,
each bound on the memory the CLI keeps (``runtime.KEPT_FREE_BYTES``). It reports, per variant:
the photos done, the wall seconds, the model seconds (the records' ``model_seconds`` summed), the peak resident
memory (``wait4``) and the resident memory sampled at each tenth of the run.

    python scripts/batch_memory.py --count 80 --crops 2 --repeat 3 -x 2 --env - --env MALLOC_MMAP_THRESHOLD_=131072
        [--source /tmp/old --source .] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from report import emit  # scripts/
from routing_eval import training_photos  # scripts/

from classsr_cli.degrade import load_rgb, make_pair


def make_folder(folder: Path, train: Path, count: int, crops: int, repeat: int, divisor: int, seed: int = 0) -> int:
    """The photos of one run in ``folder`` (PNG, level 1), each LR bicubic ÷``divisor`` (1: the photo as it is);
    returns how many."""
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    for path in training_photos("trained", train)[:count]:
        lr = make_pair(load_rgb(path), divisor)[1] if divisor > 1 else load_rgb(path)
        frames.append(lr)
        for _ in range(crops):
            h = int(rng.integers(lr.shape[0] // 2, lr.shape[0] + 1))
            w = int(rng.integers(lr.shape[1] // 2, lr.shape[1] + 1))
            y, x = int(rng.integers(0, lr.shape[0] - h + 1)), int(rng.integers(0, lr.shape[1] - w + 1))
            frames.append(np.ascontiguousarray(lr[y : y + h, x : x + w]))
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"r0_{i:05d}.png", compress_level=1)
    for r in range(1, repeat):
        for i in range(len(frames)):
            shutil.copyfile(folder / f"r0_{i:05d}.png", folder / f"r{r}_{i:05d}.png")
    return len(frames) * repeat


def parse_env(spec: str) -> dict[str, str]:
    """``-`` (as it is) or ``NAME=VALUE[,NAME=VALUE]``."""
    if spec == "-":
        return {}
    out = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: --env takes - or NAME=VALUE[,NAME=VALUE], got {spec!r}")
        out[name] = value
    return out


#: ``python -c`` with this runs the CLI with ``runtime.KEPT_FREE_BYTES`` set to ``sys.argv[1]`` MiB.
KEPT = """
import sys
from classsr_cli import runtime
runtime.KEPT_FREE_BYTES = int(sys.argv.pop(1)) << 20
from classsr_cli.cli import main
sys.argv[0] = "classsr"
main()
"""


def run(source: Path, env: dict[str, str], folder: Path, out: Path, scale: int, threads: int,
        kept_mib: int | None = None) -> dict:
    """One variant in its own process (with ``kept_mib``, the CLI's bound on kept memory set to that): its records,
    wall seconds, peak and sampled resident memory."""
    shutil.rmtree(out, ignore_errors=True)
    head = ["-m", "classsr_cli"] if kept_mib is None else ["-c", KEPT, str(kept_mib)]
    cmd = [sys.executable, *head, "upscale", str(folder), "-o", f"{out}/", "-x", str(scale),
           "--threads", str(threads), "--json"]
    full = {**os.environ, **env, "PYTHONPATH": str(source.resolve())}
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=full, cwd=source)
        samples: list[tuple[float, int]] = []
        done = threading.Event()

        def sample() -> None:
            page = os.sysconf("SC_PAGE_SIZE")
            while not done.wait(0.5):
                try:
                    with open(f"/proc/{proc.pid}/statm") as f:
                        samples.append((time.perf_counter() - start, int(f.read().split()[1]) * page))
                except (OSError, ValueError, IndexError):
                    pass

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        done.set()
        thread.join()
        stdout.seek(0)
        records = [json.loads(line) for line in stdout if line.startswith("{")]
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} exited {proc.returncode} (from {source})")
    tenths = [max((r for t, r in samples if t <= wall * k / 10), default=0) >> 20 for k in range(1, 11)]
    return {"photos": len(records), "wall_s": round(wall, 2),
            "model_s": round(sum(r["model_seconds"] for r in records), 2),
            "peak_rss_mib": usage.ru_maxrss >> 10, "rss_mib_by_tenth": tenths}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    ap.add_argument("--count", type=int, default=80, help="training photos")
    ap.add_argument("--crops", type=int, default=0, help="seeded random crops of each LR, for photos of many sizes")
    ap.add_argument("--repeat", type=int, default=1, help="the folder this many times over")
    ap.add_argument("-x", "--scale", type=int, default=2)
    ap.add_argument("--divisor", type=int, default=None,
                    help="each photo's LR is bicubic ÷ this (default: the scale; 1: the photos as they are)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--source", type=Path, action="append", default=None,
                    help="a checkout to run (repeatable; default: this one)")
    ap.add_argument("--env", action="append", default=None,
                    help="- (as it is) or NAME=VALUE[,NAME=VALUE] (repeatable: one variant each)")
    ap.add_argument("--kept-mib", type=int, nargs="+", default=None,
                    help="also each of these bounds on the CLI's kept memory (runtime.KEPT_FREE_BYTES, MiB)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sources = args.source or [Path(__file__).resolve().parents[1]]
    for source in sources:
        if not (source / "classsr_cli" / "__init__.py").is_file():
            raise SystemExit(f"error: --source {source} is not a classsr checkout (no classsr_cli/ in it)")
    if any(k < 0 for k in args.kept_mib or []):
        raise SystemExit("error: --kept-mib takes bounds of 0 MiB or more")
    envs = [(spec, parse_env(spec)) for spec in (args.env or ["-"])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        divisor = args.scale if args.divisor is None else args.divisor
        n = make_folder(folder, args.train, args.count, args.crops, args.repeat, divisor)
        rows = []
        for source in sources:
            for spec, env in envs:
                for kept in args.kept_mib or [None]:
                    row = {"source": str(source), "env": spec, "kept_mib": kept,
                           **run(source, env, folder, Path(tmp) / "out", args.scale, args.threads, kept)}
                    sys.stderr.write(f"{row}\n")
                    rows.append(row)
    emit({"photos": n, "count": args.count, "crops": args.crops, "repeat": args.repeat, "scale": args.scale,
          "divisor": divisor,
          "threads": args.threads, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
