"""Where a routed frame's time goes, stage by stage, inside the cell engine: ``FrameRun``'s steps (padding, the
classifier's scores, the decision, the planner, the branches, the FLOPs accounting) timed as they run, over a
set's LR frames (``scripts/timing.py``), against the medium and heavy branches alone on each whole frame.

    python scripts/stage_times.py SunHays80 [--model M] [-x 4] [--threads 2] [--rounds 3] [--tolerance T]
        [--json out.json]

Prints milliseconds per frame, the best round of each: ``stages`` (each a function of the engine, as called from
``FrameRun``; ``scores`` and ``decide`` run inside ``classify``), ``rest`` (the routed frame's time outside them)
and ``routed``, ``medium`` and ``heavy`` (the branch alone on the frame). ``--tolerance`` routes at that point of
the quality dial (``classsr upscale --tolerance``) instead of the model's default decision. The timers themselves
cost a few microseconds a call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch
from report import emit  # scripts/
from timing import model_and_frames, timing_parser  # scripts/

from classsr_cli.engine import bands, upscale_tensor
from classsr_cli.models.classifier import Classifier
from classsr_cli.models.classsr import ClassSR

#: ``FrameRun``'s steps on the cell path, by the name the report gives them: (owner, attribute).
STAGES = {
    "pad": (bands, "pad_frame"),
    "classify": (bands, "classify_frame_cells"),
    "scores": (Classifier, "grid_scores"),
    "decide": (ClassSR, "decide"),
    "plan": (bands, "plan_tiles"),
    "branches": (bands, "run_cells"),
    "flops": (bands, "cell_flops"),
}
#: The stages that run inside another one (not counted again in ``rest``).
NESTED = ("scores", "decide")


def timed(spent: dict[str, float]) -> Callable[[], None]:
    """Wrap every stage with a timer adding to ``spent``; returns the function that restores them."""
    saved: list[tuple[Any, str, Any]] = []
    for name, (owner, attr) in STAGES.items():
        fn = getattr(owner, attr)
        saved.append((owner, attr, fn))

        def wrapper(*args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - t0

        setattr(owner, attr, functools.wraps(fn)(wrapper))

    def restore() -> None:
        for owner, attr, fn in saved:
            setattr(owner, attr, fn)

    return restore


def measure(model: ClassSR, lrs: list[torch.Tensor], rounds: int, tolerance: float | None = None) -> dict[str, Any]:
    """Milliseconds per frame of each stage, the routed frame (at ``tolerance``, the model's default decision when
    None), and the medium and heavy branches alone (the best of ``rounds`` rounds each)."""
    medium, heavy = model.branches[1], model.branches[2]
    n = max(len(lrs), 1)
    best: dict[str, float] = {}
    spent = dict.fromkeys(STAGES, 0.0)
    restore = timed(spent)
    try:
        for x in lrs:  # warm-up
            upscale_tensor(model, x, tolerance=tolerance)
        for _ in range(rounds):
            for k in spent:
                spent[k] = 0.0
            t0 = time.perf_counter()
            for x in lrs:
                upscale_tensor(model, x, tolerance=tolerance)
            routed = time.perf_counter() - t0
            with torch.inference_mode():
                t1 = time.perf_counter()
                for x in lrs:
                    medium(x)
                t2 = time.perf_counter()
                for x in lrs:
                    heavy(x)
                t3 = time.perf_counter()
            outer = sum(v for k, v in spent.items() if k not in NESTED)
            got = {**spent, "rest": routed - outer, "routed": routed, "medium": t2 - t1, "heavy": t3 - t2}
            best = {k: min(best.get(k, float("inf")), v) for k, v in got.items()}
    finally:
        restore()
    return {k: round(1000 * v / n, 3) for k, v in best.items()}


def main() -> int:
    ap = timing_parser(__doc__)
    ap.add_argument("--tolerance", type=float, default=None, help="a point of the quality dial (default: the model's)")
    args = ap.parse_args()
    if args.tolerance is not None and args.tolerance < 0:
        ap.error(f"--tolerance must be at least 0, got {args.tolerance:g}")
    model, lrs = model_and_frames(args)
    report = {"set": args.set, "frames": len(lrs), "threads": args.threads, "rounds": args.rounds,
              "tolerance": args.tolerance, "ms_per_frame": measure(model, lrs, args.rounds, args.tolerance)}
    emit(report, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
