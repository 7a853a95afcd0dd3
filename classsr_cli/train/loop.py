"""A small resumable training loop, single-process or under torchrun (DistributedDataParallel).

Resume state (model, optimiser, iteration, extras) is written with ``torch.save`` by rank 0 every
``ckpt_every`` iterations and read back with ``torch.load(weights_only=True)``: plain tensors and numbers only.
Sampling is a pure function of (seed, stage, rank, iteration), so a resumed run draws the same batches.
A loss that becomes NaN or infinite stops the stage with :class:`~classsr_cli.errors.TrainingDivergedError` at the
next log step or checkpoint, before anything non-finite is saved.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classsr_cli.distributed import World
from classsr_cli.errors import TrainingDivergedError
from classsr_cli.train.config import StageConfig

__all__ = ["Dist", "Event", "MetricsLog", "all_reduce_sum", "cosine_lr", "fit", "init_distributed", "stage_generator"]


#: This process's place in a (possibly one-process) job: the same identity as inference's.
Dist = World


def init_distributed(device: torch.device) -> Dist:
    """Join the torchrun job described by the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), if any.

    gloo on the CPU, NCCL on CUDA; with CUDA each rank takes ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return World(device=device)
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local, device=device)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of the output gradients of all ranks."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        torch.distributed.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


def all_reduce_sum(x: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Differentiable sum of ``x`` over the ranks (``x`` itself in a single process).

    With DDP averaging the parameter gradients over ``W`` ranks, a loss term computed on the summed tensor gets
    exactly the gradient it would have on the whole (concatenated) batch.
    """
    return _AllReduceSum.apply(x) if dist.active else x


def _mean_over_ranks(means: dict[str, float], dist: Dist) -> dict[str, float]:
    """Window means averaged over the ranks, so that logs and decisions taken on them agree on every rank."""
    if not dist.active or not means:
        return means
    keys = list(means)  # same order on every rank: the same step function made them
    t = torch.tensor([means[k] for k in keys], dtype=torch.float64, device=dist.device)
    torch.distributed.all_reduce(t)
    return {k: float(v) / dist.size for k, v in zip(keys, t.tolist(), strict=True)}


def cosine_lr(it: int, cfg: StageConfig) -> float:
    """Cosine annealing from ``cfg.lr`` at iteration 0 to ``cfg.eta_min`` at ``cfg.iterations``."""
    t = min(it, cfg.iterations) / max(1, cfg.iterations)
    return cfg.eta_min + 0.5 * (cfg.lr - cfg.eta_min) * (1 + math.cos(math.pi * t))


def stage_generator(seed: int, stage: str, rank: int, it: int) -> torch.Generator:
    """The sampling generator of one iteration: a pure function of its arguments."""
    key = f"{seed}/{stage}/{rank}/{it}".encode()
    import hashlib

    return torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(key).digest()[:8], "little"))


def _json_value(x: Any) -> Any:
    """``x`` with every NaN or infinite number replaced by ``None``: JSON has no NaN (``NaN`` and ``Infinity``, what
    :func:`json.dumps` writes by default, are refused by strict parsers: jq, JavaScript, Go, Rust)."""
    if isinstance(x, float):  # numpy's float64 too
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_value(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_value(v) for v in x]
    return x


class MetricsLog:
    """Appends JSON lines to ``RUN/metrics.jsonl`` (rank 0 only); a NaN or infinite value is written ``null``."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, **record: Any) -> None:
        if self.enabled:
            record.setdefault("time", round(time.time(), 3))
            line = json.dumps(_json_value(record), default=lambda o: _json_value(float(o)), allow_nan=False)
            with self.path.open("a") as f:
                f.write(line + "\n")


@dataclass
class Event:
    """What the loop tells its observer (the CLI's progress): ``kind`` ``"start"`` once when a stage starts (at
    ``iteration``, 0 or the iteration it resumes from), then ``"log"`` every ``log_every`` iterations; the stage has
    ended when ``iteration == total``."""

    stage: str
    iteration: int
    total: int
    logs: dict[str, float]
    it_per_s: float
    kind: str = "log"


def _table(stage: str) -> str:
    """The config table of a loop's stage name (``branch0_bicubic``: ``branches``, ``classifier_warmup``:
    ``classifier``)."""
    prefixes = {"baseline": "baseline", "branch": "branches", "classifier": "classifier", "finetune": "finetune"}
    return next((table for prefix, table in prefixes.items() if stage.startswith(prefix)), stage)


def _why(e: BaseException) -> str:
    """What is wrong with a resume state, in a few words: torch's first line, without its advice to unpickle it
    unsafely, and the state dict's first mismatch."""
    if isinstance(e, pickle.UnpicklingError):
        return "not a file torch reads without unpickling code"
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if lines and lines[0].startswith("Error(s) in loading state_dict") and len(lines) > 1:
        return lines[1].rstrip(".")  # the first mismatch, not the heading
    if lines:
        return f"{type(e).__name__}: {lines[0]}"
    return "the file ends early" if isinstance(e, EOFError) else type(e).__name__


def _first_nonfinite(first_bad: torch.Tensor | None, never: int, dist: Dist) -> int | None:
    """The first iteration (0-based) whose loss was not finite, on any rank, or None: one host sync (and one
    all-reduce under torchrun, so that every rank stops at the same step)."""
    if first_bad is None:
        return None
    if dist.active:
        first_bad = first_bad.clone()
        torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
    it = int(first_bad)
    return None if it >= never else it


StepFn = Callable[[int, torch.Generator, dict[str, Any]], tuple[torch.Tensor, dict[str, Any]]]


def fit(
    stage: str,
    module: nn.Module,
    step_fn: StepFn,
    cfg: StageConfig,
    state_path: Path,
    *,
    dist: Dist,
    seed: int,
    log: MetricsLog,
    log_every: int = 100,
    extras: dict[str, Any] | None = None,
    on_log: Callable[[int, dict[str, float], dict[str, Any]], None] | None = None,
    validate: Callable[[], dict[str, float]] | None = None,
    observer: Callable[[Event], None] | None = None,
    draws: str | None = None,
) -> dict[str, Any]:
    """Train ``module``'s trainable parameters with Adam(0.9, 0.99) and a cosine schedule; resumable.

    Each iteration's samples come from :func:`stage_generator` keyed by ``draws`` (default: ``stage``), so two
    stages may draw the same sequence.

    ``step_fn(it, generator, extras)`` returns ``(loss, logs)``; ``extras`` is mutable state saved with the
    checkpoint (e.g. a loss weight the collapse guard raised). ``on_log(it, window_means, extras)`` runs every
    ``log_every`` iterations, with the means averaged over the ranks (every rank sees the same values). Returns the final ``extras`` with ``val`` metrics.

    A loss that is not finite raises :class:`TrainingDivergedError` at the next log step, validation or checkpoint
    (and weights that are not finite at a checkpoint): the state file keeps the last finite checkpoint. The check
    costs no host sync per iteration: each iteration's test stays on the device until then.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    extras = dict(extras or {})
    start = 0
    if state_path.exists():
        try:
            state = torch.load(state_path, map_location=dist.device, weights_only=True)
            module.load_state_dict(state["model"])
            optim.load_state_dict(state["optim"])
            start = int(state["iteration"])
            extras.update(state.get("extras", {}))
        except (RuntimeError, KeyError, TypeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as e:
            from classsr_cli.errors import CheckpointError

            raise CheckpointError(
                f"{state_path}: a damaged resume state ({_why(e)}); delete it to train {stage} from its start"
            ) from None
        log.write(stage=stage, event="resume", iteration=start)
    saved = start if state_path.exists() else None
    train_module: nn.Module = module
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        train_module = DistributedDataParallel(module, device_ids=ids)
    extras["train_module"] = train_module

    def save(it: int) -> None:
        if dist.is_main:
            tmp = state_path.with_suffix(".tmp")  # torch.save opens it as open() does: the umask's mode
            keep = {k: v for k, v in extras.items() if k != "train_module"}
            torch.save({"model": module.state_dict(), "optim": optim.state_dict(), "iteration": it,
                        "extras": keep}, tmp)
            os.replace(tmp, state_path)
        dist.barrier()

    never = cfg.iterations + 1
    first_bad: torch.Tensor | None = None  # the first iteration with a non-finite loss (``never``: none), on the device

    def check(done: int, weights: bool) -> None:
        """Raise :class:`TrainingDivergedError` when a loss so far (or, with ``weights``, a parameter) is not finite."""
        bad = _first_nonfinite(first_bad, never, dist)
        what = "its loss"
        if bad is None and weights and not bool(torch.stack([p.detach().isfinite().all() for p in params]).all()):
            bad, what = done - 1, "its weights"  # a finite loss whose step overflowed them (the same on every rank)
        if bad is None:
            return
        log.write(stage=stage, event="diverged", iteration=bad + 1, lr=cosine_lr(bad, cfg))
        kept = f"; {state_path.name} keeps iteration {saved}" if saved is not None else ""
        raise TrainingDivergedError(
            f"{stage}: training diverged at iteration {bad + 1} of {cfg.iterations} ({what} became NaN or infinite); "
            f"lower [{_table(stage)}] lr (now {cfg.lr:g}) and train again into a new --out{kept}"
        )

    module.train()
    window: dict[str, Any] = {}
    count = 0
    t0, it0 = time.perf_counter(), start
    if observer is not None:
        observer(Event(stage, start, cfg.iterations, {}, 0.0, kind="start"))
    for it in range(start, cfg.iterations):
        for group in optim.param_groups:
            group["lr"] = cosine_lr(it, cfg)
        loss, logs = step_fn(it, stage_generator(seed, draws or stage, dist.rank, it), extras)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        # device-side bookkeeping, read at the next log step or checkpoint: no host sync per iteration
        if first_bad is None:
            first_bad = torch.full((), never, dtype=torch.long, device=loss.device)
        first_bad = torch.where(loss.detach().isfinite().all(), first_bad, first_bad.clamp(max=it))
        for k, v in logs.items():  # tensors stay on the device until the log step: no sync per iteration
            window[k] = window.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
        count += 1
        done = it + 1
        log_due = done % log_every == 0 or done == cfg.iterations
        val_due = validate is not None and (done % cfg.val_every == 0 or done == cfg.iterations)
        ckpt_due = done % cfg.ckpt_every == 0 or done == cfg.iterations
        if log_due or val_due or ckpt_due:
            check(done, weights=ckpt_due)
        if log_due:
            means = _mean_over_ranks({k: float(v) / count for k, v in window.items()}, dist)
            rate = (done - it0) / max(1e-9, time.perf_counter() - t0)
            if on_log is not None:
                on_log(done, means, extras)
            log.write(stage=stage, iteration=done, lr=cosine_lr(it, cfg), it_per_s=round(rate, 2), **means)
            if observer is not None:
                observer(Event(stage, done, cfg.iterations, means, rate))
            window, count = {}, 0
        if validate is not None and val_due:
            module.eval()
            val = validate()
            module.train()
            extras["val"] = val
            log.write(stage=stage, iteration=done, event="val", **val)
        if ckpt_due:
            save(done)
            saved = done
    if start >= cfg.iterations and observer is not None:
        observer(Event(stage, cfg.iterations, cfg.iterations, {}, 0.0))
    module.eval()
    extras.pop("train_module", None)
    return extras
