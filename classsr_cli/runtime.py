"""Device and precision selection, device synchronisation for honest timings, and the process-wide memory settings
the CLI makes (glibc's malloc keeps freed memory, bounded over a folder of photos; oneDNN caches more compiled
convolutions)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from classsr_cli.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "KEPT_FREE_BYTES",
    "PRIMITIVE_CACHE",
    "bound_freed_memory",
    "cache_more_primitives",
    "keep_freed_memory",
    "resident_bytes",
    "resolve_device",
    "resolve_dtype",
    "set_threads",
    "synchronize",
    "trim_freed_memory",
]

#: glibc's ``mallopt`` parameters (M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD) and the values
#: :func:`keep_freed_memory` gives them: 1 GiB, 256 MiB, 256 MiB.
_MALLOPT = ((-1, 1 << 30), (-2, 256 << 20), (-3, 256 << 20))
#: The environment variables through which a user tunes glibc's malloc; where any is set, theirs win.
_MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
#: The most freed heap memory :func:`bound_freed_memory` lets a process keep between photos (bytes).
KEPT_FREE_BYTES = 512 << 20
#: oneDNN's primitive cache capacity that :func:`cache_more_primitives` asks for (oneDNN's default: 1,024).
PRIMITIVE_CACHE = 4096
#: The environment variables through which a user sets oneDNN's primitive cache capacity; theirs win.
_PRIMITIVE_CACHE_ENV = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")
_kept = False  # whether keep_freed_memory set glibc's thresholds in this process
_mark: int | None = None  # resident bytes at the first call since the last trim (bound_freed_memory)


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
        raise ConfigError(f"--device {name} was asked for, but this torch sees no CUDA GPU")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                          f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
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
    global _kept
    _kept = all(r == 1 for r in results)
    return _kept


def cache_more_primitives() -> bool:
    """Ask oneDNN (the CPU convolutions) to cache :data:`PRIMITIVE_CACHE` compiled convolutions instead of its
    default 1,024, through its environment variable, before torch creates the first one. The engine's canvases give
    each photo convolutions of shapes of their own; once they pass 1,024 the cache evicts and compiles again, and each
    new primitive is a long-lived allocation in the middle of the heap that :func:`keep_freed_memory` keeps: the
    heap then grows with the number of photos (720 training photos at their own size ×2: resident memory levels off
    at 0.95 GiB instead of passing 1.3 GiB, in 19 s of model time instead of 25 s; docs/experiments.md, "Fixed: a folder of
    photos no longer grows the kept heap (thirty-ninth pass)"). What the CLI calls once at start. Returns whether it
    was set: not where the user set oneDNN's variable (theirs win)."""
    if any(name in os.environ for name in _PRIMITIVE_CACHE_ENV):
        return False
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(PRIMITIVE_CACHE)
    return True


def resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc/self/statm``), or ``None`` where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def trim_freed_memory() -> None:
    """Hand the heap memory this process has freed back to the kernel (glibc's ``malloc_trim``; nothing elsewhere)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def bound_freed_memory(limit: int | None = None) -> bool:
    """Where :func:`keep_freed_memory` is in force, keep the heap from growing with the number of photos: the first
    call marks this process's resident memory (after a photo, its buffers kept); once a later call finds it more than
    ``limit`` bytes (default :data:`KEPT_FREE_BYTES`) above the mark, it trims the freed heap memory (:func:`trim_freed_memory`) and the next call marks
    the level anew. What ``pipeline.upscale_file`` calls after each photo, ``video`` after each frame and ``bench`` after each image
    (a no-op for a library user who did not call :func:`keep_freed_memory`). Photos of different sizes leave holes in the kept heap that
    later buffers do not always fit (2,400 training photos of 1,200 sizes, ×2: 2.1 GiB resident and still growing
    without it, 1.2 GiB with it, at the same speed; docs/experiments.md, "Fixed: a folder of photos
    no longer grows the kept heap (thirty-ninth pass)"). Photos or frames of one size reuse their buffers and stay
    under the limit. Returns whether it trimmed; a no-op where the thresholds were not set."""
    global _mark
    if not _kept:
        return False
    rss = resident_bytes()
    if rss is None:
        return False
    if _mark is None:
        _mark = rss
        return False
    if rss <= _mark + (KEPT_FREE_BYTES if limit is None else limit):
        return False
    trim_freed_memory()
    _mark = None  # the next call marks the level anew, once a photo has brought its buffers back
    return True
