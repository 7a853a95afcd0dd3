"""Device and precision selection, and device synchronisation for honest timings."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from classsr_cli.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["keep_freed_memory", "resolve_device", "resolve_dtype", "set_threads", "synchronize"]

#: glibc's ``mallopt`` parameters (M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD) and the values
#: :func:`keep_freed_memory` gives them: 1 GiB, 256 MiB, 256 MiB.
_MALLOPT = ((-1, 1 << 30), (-2, 256 << 20), (-3, 256 << 20))
#: The environment variables through which a user tunes glibc's malloc; where any is set, theirs win.
_MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu. Asking for an absent device is a :class:`ConfigError`."""
    import torch

    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but this torch sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but MPS is not available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` is fp32 everywhere (fp16/bf16 only when asked). Half precision on the CPU is refused."""
    import torch

    precision = str(precision)
    table = {"auto": torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in table:
        raise ConfigError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    dtype = table[precision]
    if device.type == "cpu" and dtype == torch.float16:
        raise ConfigError("fp16 is not supported on the CPU; use fp32 (or bf16 on CPUs that support it)")
    return dtype


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (no-op on the CPU), so that timings are real."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` (CPU threads of each operator); ``None`` keeps torch's default (the
    CPU's cores, or ``OMP_NUM_THREADS``, which ``torchrun`` sets to 1 in each process). Below 1: a
    :class:`ConfigError`."""
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep the memory a process frees for its next allocations, instead of handing each
    large block back to the kernel (``munmap``, heap trimming) and faulting its pages in again: frame after frame
    of one size allocates the same buffers. What the CLI calls once at start (a process-wide setting: the library
    never calls it); in the environment: ``MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824
    MALLOC_TOP_PAD_=268435456``. Measured on this project's CPU, a 320x240 clip through ``classsr video -x 4``: 1-16 %
    more frames a second in four rounds, 3.6-4.3x fewer page faults, the same peak memory and output bytes; a
    3000x2000 photo x4 (banded, ``scripts/peak_rss.py``'s small model) 30 % faster for 40-160 MiB more peak memory (docs/experiments.md, "Changed: the
    CLI keeps freed memory mapped (thirty-fifth pass)").

    Returns whether it was set: not off Linux, not where the C library has no ``mallopt`` or ignores it (musl),
    and not where the user set any of glibc's malloc variables, even to nothing (theirs win)."""
    if sys.platform != "linux" or any(name in os.environ for name in _MALLOC_ENV):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    results = [mallopt(param, value) for param, value in _MALLOPT]  # every one set, none skipped
    return all(r == 1 for r in results)
