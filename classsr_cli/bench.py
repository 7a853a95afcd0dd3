"""``classsr bench``: quality, compute, wall time and memory of ClassSR against its own branches, in one run.

On HR images: mod-crop, make the LR image with :mod:`classsr_cli.degrade` (the function training uses), then
measure every method on the same LR images:

* ``bicubic``: antialiased bicubic upsampling (Pillow, on the CPU whatever the device);
* ``light``, ``medium``, ``heavy``: one branch alone on the **whole** LR image, no tiling;
* ``heavy-tiled``: the heavy branch on ClassSR's overlapping patches (the paper's "-O" protocol);
* ``classsr``: the routed model (tile, classify, run each branch on its patches, stitch).

Per method: PSNR-Y, PSNR-RGB and SSIM-Y (:mod:`classsr_cli.metrics`, border = scale, outputs quantised to
uint8 first); ``flops``: real FLOPs of the whole run, overlap included; ``flops_paper``: mean FLOPs per 32x32
LR patch in the paper's counting (a whole-image method counts one 32x32 LR area); ``seconds``: median of the
timed passes over the whole set (the methods take turns in each round), device synchronised; ``spread``: the
slowest of those passes over the fastest (:meth:`BenchResult.noisy` names the methods whose passes spread more than
:data:`NOISY_SPREAD`); ``mp_per_s``: output megapixels per second; peak memory. The run records the machine's load
average before it starts and after its last timed pass, where the system reports one.

Knows nothing about typer or rich and never prints; progress goes through an optional callback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classsr_cli import runtime
from classsr_cli.config import CLASS_NAMES
from classsr_cli.degrade import add_noise, bicubic_resize, jpeg_roundtrip, load_rgb, make_pair
from classsr_cli.engine import (
    DEFAULT_STEP,
    band_bytes_for,
    check_tta,
    ensemble,
    model_flops,
    resize_flops,
    upscale_tensor,
)
from classsr_cli.errors import ConfigError, InputError, OutputError
from classsr_cli.io.files import files_in, images_in, is_image_name, make_folder, no_images, url_refusal
from classsr_cli.metrics import psnr, quantize, ssim
from classsr_cli.models.classsr import ClassSR

__all__ = [
    "METHODS",
    "BenchResult",
    "MethodResult",
    "Pair",
    "default_data_root",
    "examples_dir",
    "find_images",
    "find_inputs",
    "load_pairs",
    "parse_methods",
    "plot_available",
    "plot_target",
    "run_bench",
    "write_plot",
]

METHODS = ("bicubic", "light", "medium", "heavy", "heavy-tiled", "classsr")
#: A method's timed passes whose slowest takes more than this many times the fastest: the machine's speed moved
#: during the run (a shared, throttled or busy CPU), and a time ratio between methods may be off by as much.
NOISY_SPREAD = 1.25
_BRANCH = {"light": 0, "medium": 1, "heavy": 2}
_SSIM_WINDOW = 11

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------- results
@dataclass
class MethodResult:
    """One method over the whole set.

    Attributes:
        psnr_y, psnr_rgb, ssim_y: means over the images of the per-image values (BasicSR convention).
        flops: real FLOPs of one pass over the set, overlap and classifier included.
        flops_paper: mean FLOPs per 32x32 LR patch in the paper's counting (``0`` for bicubic: not counted).
        seconds: median wall time of the timed passes over the whole set.
        seconds_all: every timed pass.
        mp_per_s: output megapixels per second (at ``seconds``).
        peak_mem_mb: peak memory of one pass above what was resident before it (see :attr:`BenchResult.peak_mem`);
            ``None`` where it cannot be measured.
        patches: ClassSR only: patches per class (``light``, ``medium``, ``heavy``).
        per_image: each image's ``psnr_y``, ``psnr_rgb``, ``ssim_y`` (``null`` when native), real ``flops`` where
            counted per image, and for ClassSR its ``patches``, in the order of :attr:`BenchResult.inputs`.
    """

    psnr_y: float
    psnr_rgb: float
    ssim_y: float
    flops: int
    flops_paper: float
    seconds: float
    seconds_all: list[float]
    mp_per_s: float
    peak_mem_mb: float | None
    patches: dict[str, int] | None = None
    per_image: list[dict[str, Any]] = field(default_factory=list)

    @property
    def spread(self) -> float | None:
        """The slowest timed pass over the fastest (1.0: every pass took the same time); ``None`` without two
        timed passes or with a pass of no measurable time."""
        if len(self.seconds_all) < 2 or min(self.seconds_all) <= 0:
            return None
        return max(self.seconds_all) / min(self.seconds_all)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "psnr_y": _finite(self.psnr_y),
            "psnr_rgb": _finite(self.psnr_rgb),
            "ssim_y": _finite(self.ssim_y),
            "flops": self.flops,
            "flops_paper": self.flops_paper,
            "seconds": self.seconds,
            "seconds_all": list(self.seconds_all),
            "spread": self.spread,
            "mp_per_s": self.mp_per_s,
            "peak_mem_mb": self.peak_mem_mb,
        }
        if self.patches is not None:
            d["patches"] = dict(self.patches)
        d["per_image"] = [dict(row) for row in self.per_image]
        return d


@dataclass
class BenchResult:
    """A whole bench run. ``methods`` maps each name of :data:`METHODS` that was run to its result."""

    device: str
    device_name: str
    threads: int
    precision: str
    scale: int
    images: int
    megapixels: float
    model: str
    step: int
    repeat: int
    warmup: int
    peak_mem: str
    torch: str
    methods: dict[str, MethodResult] = field(default_factory=dict)
    #: The HR images benched, as given (paths, or names for pairs made in memory).
    inputs: list[str] = field(default_factory=list)
    #: The model's own scale; above :attr:`scale` its outputs are downscaled to the HR size (``-x 3``).
    model_scale: int = 0
    native: bool = False
    #: The machine's 1-minute load average before the run started and after its last timed pass
    #: (:func:`os.getloadavg`); ``None`` where the system has none. On an idle machine the second is about the
    #: run's own threads.
    load_average: tuple[float, float] | None = None
    #: ``--tolerance`` as given (dB for the default models); ``None``: the model's own default rule.
    tolerance: float | None = None
    #: ``--jpeg``: the quality every LR was saved at; ``None``: the clean bicubic downscale.
    jpeg: int | None = None
    #: ``--noise``: the standard deviation (levels) of the luminance noise added to every LR; ``None``: none.
    noise: float | None = None
    #: ``--tta``: the self-ensemble's passes every method but bicubic ran (1: none).
    tta: int = 1

    def noisy(self, limit: float = NOISY_SPREAD) -> list[str]:
        """The methods whose timed passes spread more than ``limit`` (:attr:`MethodResult.spread`)."""
        return [name for name, m in self.methods.items() if m.spread is not None and m.spread > limit]

    def ratio(self, method: str, key: str, base: str = "heavy") -> float | None:
        """``methods[method].key / methods[base].key``, or ``None`` when either is missing or zero."""
        if method not in self.methods or base not in self.methods:
            return None
        a = getattr(self.methods[method], key)
        b = getattr(self.methods[base], key)
        return a / b if a is not None and b else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_name": self.device_name,
            "threads": self.threads,
            "precision": self.precision,
            "scale": self.scale,
            "model_scale": self.model_scale or self.scale,
            "images": self.images,
            "native": self.native,
            "inputs": list(self.inputs),
            "megapixels": self.megapixels,
            "model": self.model,
            "step": self.step,
            "tolerance": self.tolerance,
            "jpeg": self.jpeg,
            "noise": self.noise,
            "tta": self.tta,
            "repeat": self.repeat,
            "warmup": self.warmup,
            "peak_mem": self.peak_mem,
            "torch": self.torch,
            "load_average": None if self.load_average is None else list(self.load_average),
            "methods": {name: m.to_dict() for name, m in self.methods.items()},
        }


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None


def _load_average() -> float | None:
    """The system's 1-minute load average, or ``None`` where it has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------------------------- inputs
def default_data_root() -> Path:
    """``$CLASSSR_DATA``, else ``../shared/data/val`` beside the repository."""
    env = os.environ.get("CLASSSR_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "val"


def examples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "examples"


def find_images(specs: Sequence[str | Path], data_root: str | Path | None = None) -> list[Path]:
    """Image files named by ``specs``: files, folders (their images, not recursive) or names of sets under
    ``data_root`` (default :func:`default_data_root`). No specs means the images in ``examples/``.

    Folders leave out classsr's own outputs lying beside their inputs (``baby_x4.png`` next to ``baby.png``):
    they are not HR ground truth. :func:`find_inputs` also says which were left out.
    """
    return find_inputs(specs, data_root)[0]


def find_inputs(
    specs: Sequence[str | Path], data_root: str | Path | None = None
) -> tuple[list[Path], list[Path]]:
    """``(images, left_out)``: :func:`find_images`, and the earlier classsr outputs its folders held."""
    from classsr_cli.io.files import without_own_outputs

    if not specs:
        ex = examples_dir()
        found, own = without_own_outputs(images_in(ex) if ex.is_dir() else [])
        if not found:
            raise InputError(
                f"no images given and {ex} holds none; pass HR images, folders or a set name such as Set5"
            )
        return found, own
    root = Path(data_root) if data_root is not None else default_data_root()
    paths: list[Path] = []
    left_out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if not p.exists():
            p = _set_folder(root, p) or p
        if p.is_dir():
            found, own = without_own_outputs(images_in(p))
            if not found:
                raise InputError(no_images(p, [f for f in files_in(p) if not is_image_name(f)], own=len(own)))
            paths.extend(found)
            left_out.extend(own)
        elif p.is_file():
            paths.append(p)
        elif (url := url_refusal(spec)) is not None:
            raise InputError(url)
        else:
            sets = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
            known = f" (it holds {', '.join(sets[:8])}{', …' if len(sets) > 8 else ''})" if sets else ""
            raise InputError(f"{spec}: no such file or folder, and no set of that name under {root}{known}; "
                             "point --data or $CLASSSR_DATA at the folder that holds the sets")
    return paths, left_out


def _set_folder(root: Path, name: Path) -> Path | None:
    """The set ``name`` under ``root``, its case ignored where no folder matches exactly (``set5`` is Set5)."""
    if (root / name).is_dir():
        return root / name
    if len(name.parts) != 1 or not root.is_dir():
        return None
    same = [d for d in root.iterdir() if d.is_dir() and d.name.lower() == name.name.lower()]
    return same[0] if len(same) == 1 else None


@dataclass(frozen=True)
class Pair:
    """One benchmark image: ``hr`` mod-cropped ``(H, W, 3)`` uint8 and its ``lr`` ``(H/s, W/s, 3)`` uint8; or, for
    a native run (:func:`load_native`), the image as given in ``lr``, no ``hr`` and the output ``size``."""

    name: str
    hr: np.ndarray | None
    lr: np.ndarray
    path: str = ""
    size: tuple[int, int] = (0, 0)
    #: The JPEG quality the LR was saved at (``bench --jpeg``), ``None``: the clean downscale.
    jpeg: int | None = None
    #: The level of the noise added to the LR (``bench --noise``), ``None``: none.
    noise: float | None = None

    def __post_init__(self) -> None:
        if self.hr is not None:
            object.__setattr__(self, "size", (int(self.hr.shape[0]), int(self.hr.shape[1])))


def load_pairs(paths: Sequence[Path], scale: int, jpeg: int | None = None, noise: float | None = None) -> list[Pair]:
    """Read, mod-crop and degrade every image; with ``noise`` the LR then gets luminance noise of that standard
    deviation in levels (:func:`~classsr_cli.degrade.add_noise`, drawn from a hash of the file's name: the same noise
    in every run), and with ``jpeg`` it is then saved as JPEG at that quality, as everyday photos are
    (:func:`~classsr_cli.degrade.jpeg_roundtrip`). Images too small for SSIM after the border crop are refused."""
    if jpeg is not None and not 1 <= jpeg <= 100:
        raise ConfigError(f"--jpeg (the quality the LR is saved at) must lie in 1..100, got {jpeg}")
    if noise is not None and not 0 <= noise <= 50:
        raise ConfigError(f"--noise (the standard deviation of the noise, in levels) must lie in 0..50, got {noise:g}")
    pairs = []
    least = _SSIM_WINDOW + 2 * scale
    for path in paths:
        img = load_rgb(path)  # an InputError naming the file where it cannot be read
        hr, lr = make_pair(img, scale)
        if hr.shape[0] < least or hr.shape[1] < least:
            raise InputError(f"{path}: {img.shape[1]}x{img.shape[0]} is too small; bench needs {least}x{least} px")
        if noise is not None:
            lr = add_noise(lr, noise, int(hashlib.sha256(path.name.encode()).hexdigest()[:16], 16))
        if jpeg is not None:
            lr = jpeg_roundtrip(lr, jpeg)
        pairs.append(Pair(path.name, hr, lr, str(path), jpeg=jpeg, noise=noise))
    return pairs


def load_native(paths: Sequence[Path], scale: int) -> list[Pair]:
    """Every image as given, to be upscaled ``scale`` times (the user's real job): no HR, no quality metrics."""
    pairs = []
    for path in paths:
        img = load_rgb(path)  # an InputError naming the file where it cannot be read
        pairs.append(Pair(path.name, None, img, str(path), (img.shape[0] * scale, img.shape[1] * scale)))
    return pairs


# --------------------------------------------------------------------------------------------- memory
def _ru_maxrss_bytes() -> int:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def peak_mem_kind(device: torch.device) -> str:
    """What ``peak_mem_mb`` measures on ``device``."""
    if device.type == "cuda":
        return "cuda_max_allocated_delta"
    if device.type == "mps":
        return "unavailable"
    return "rss_sampled_delta" if runtime.resident_bytes() is not None else "ru_maxrss_delta"


class _MemoryProbe:
    """Peak memory of the code run inside it, above the level at entry, in bytes (``None`` if unmeasurable).

    CUDA: ``torch.cuda.max_memory_allocated`` minus the allocated memory at entry. CPU on Linux: resident set
    size sampled every 2 ms by a thread, after ``malloc_trim``, minus the RSS at entry (approximate). Other
    CPUs: the rise of ``ru_maxrss`` (a process-lifetime high-water mark, so often 0 after a bigger pass).
    """

    def __init__(self, device: torch.device, interval: float = 0.002) -> None:
        self.device = device
        self.kind = peak_mem_kind(device)
        self.interval = interval
        self.peak: int | None = None
        self._base = 0
        self._max = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = runtime.resident_bytes()
            if rss is not None and rss > self._max:
                self._max = rss

    def __enter__(self) -> _MemoryProbe:
        runtime.synchronize(self.device)
        if self.kind == "cuda_max_allocated_delta":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif self.kind == "rss_sampled_delta":
            runtime.trim_freed_memory()
            self._base = self._max = runtime.resident_bytes() or 0
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        elif self.kind == "ru_maxrss_delta":
            self._base = _ru_maxrss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        runtime.synchronize(self.device)
        if self.kind == "cuda_max_allocated_delta":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        elif self.kind == "rss_sampled_delta":
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            self._max = max(self._max, runtime.resident_bytes() or 0)
            self.peak = self._max - self._base
        elif self.kind == "ru_maxrss_delta":
            self.peak = _ru_maxrss_bytes() - self._base


# --------------------------------------------------------------------------------------------- methods
def _runner(
    method: str, model: ClassSR, lrs: list[torch.Tensor], pairs: Sequence[Pair], step: int, batch_size: int,
    tolerance: float | None = None, scale: float = 0, tta: int = 1,
) -> Callable[[int], tuple[Any, Any]]:
    """``run(i) -> (output, route)`` for image ``i``: output a tensor on the device, or uint8 HWC for bicubic.
    ``tta``: every method but bicubic as the mean of that many passes (:func:`~classsr_cli.engine.tta`)."""
    if method == "bicubic":

        def run(i: int) -> tuple[Any, Any]:
            h, w = pairs[i].size
            return bicubic_resize(pairs[i].lr, h, w), None

    elif method in _BRANCH:
        branch = model.branches[_BRANCH[method]]

        def run(i: int) -> tuple[Any, Any]:
            with torch.inference_mode():
                sr = branch(lrs[i]) if tta == 1 else ensemble(lambda x, k: [(0, branch(x))], lrs[i], tta, model.cfg.scale)
                return _to_hr_size(sr, pairs[i]), None

    elif method in ("heavy-tiled", "classsr"):
        force = 2 if method == "heavy-tiled" else None
        # As classsr upscale runs a frame (pipeline.PixelRun): in bands where it does, which the tile planner plans
        # band by band (the same classes, other tiles).
        band_bytes = band_bytes_for(lrs[0].device.type, model.cfg.scale == scale)

        def run(i: int) -> tuple[Any, Any]:
            sr, route = upscale_tensor(model, lrs[i], step=step, batch_size=batch_size, force_branch=force,
                                       tolerance=tolerance, band_bytes=band_bytes, tta=tta)
            return _to_hr_size(sr, pairs[i]), route

    else:
        raise ConfigError(f"unknown bench method {method!r}; choose from {', '.join(METHODS)}")
    return run


def _to_hr_size(sr: torch.Tensor, pair: Pair) -> torch.Tensor:
    """A model's output at the HR size: as it is at the model's scale; else (an x4 model benched at ``-x 3``)
    downscaled with antialiased bicubic, as ``classsr upscale -x 3`` does."""
    size = pair.size
    if tuple(sr.shape[-2:]) == size:
        return sr
    with torch.inference_mode():
        return torch.nn.functional.interpolate(sr.float(), size=size, mode="bicubic", antialias=True)


def _pass(run: Callable[[int], tuple[Any, Any]], n: int, device: torch.device) -> float:
    """One synchronised pass over the ``n`` images, the kept heap bounded after each as ``upscale`` bounds it
    (:func:`runtime.bound_freed_memory`); returns seconds."""
    runtime.synchronize(device)
    t0 = time.perf_counter()
    for i in range(n):
        run(i)
        runtime.bound_freed_memory()
    runtime.synchronize(device)
    return time.perf_counter() - t0


def _flops(method: str, model: ClassSR, pairs: Sequence[Pair], routes: list[Any], tta: int = 1) -> tuple[int, float]:
    """``(real FLOPs of one pass, paper FLOPs per 32x32 LR patch)``, every self-ensemble pass (``tta``) counted, and
    the resize of each output to a size the model does not make (``-x 3``), as ``classsr upscale`` counts it."""
    if method == "bicubic":
        return 0, 0.0
    s = model.cfg.scale
    resized = sum(resize_flops((s * p.lr.shape[0], s * p.lr.shape[1]), p.size) for p in pairs
                  if (s * p.lr.shape[0], s * p.lr.shape[1]) != tuple(p.size))  # fmt: skip
    if method in _BRANCH:
        k = _BRANCH[method]
        real = model_flops(model, "real")
        total = tta * sum(round(real.per_pixel(k) * p.lr.shape[0] * p.lr.shape[1]) for p in pairs)
        return int(total) + resized, float(tta * model_flops(model, "paper").branches[k])
    used = resized + sum(r.flops.used for r in routes)
    patches = sum(r.grid.count for r in routes)
    paper = sum(r.flops_paper.used for r in routes)
    return int(used), paper / patches


def _measure(
    method: str,
    model: ClassSR,
    pairs: Sequence[Pair],
    lrs: list[torch.Tensor],
    *,
    device: torch.device,
    step: int,
    batch_size: int,
    warmup: int,
    scale: int,
    progress: Progress | None,
    tolerance: float | None = None,
    tta: int = 1,
) -> tuple[MethodResult, Callable[[int], tuple[Any, Any]]]:
    """Quality, FLOPs and peak memory of ``method``, after its warm-up; returns the result (no timings yet) and
    the runner that :func:`run_bench` times."""
    run = _runner(method, model, lrs, pairs, step, batch_size, tolerance, scale, tta)
    n = len(pairs)
    # 1. Quality pass (untimed): outputs quantised to uint8 as a user would save them, then the metrics.
    py, pr, sy, routes = [], [], [], []
    per_image: list[dict[str, Any]] = []
    for i, pair in enumerate(pairs):
        out, route = run(i)
        sr = out if isinstance(out, np.ndarray) else quantize(out)
        row: dict[str, Any] = {"psnr_y": None, "psnr_rgb": None, "ssim_y": None}
        if route is not None:
            routes.append(route)
            row["flops"] = int(route.flops.used)
            if method == "classsr":
                row["patches"] = {name: int(c) for name, c in zip(CLASS_NAMES, route.counts, strict=True)}
        per_image.append(row)
        if pair.hr is None:  # native: nothing to compare with
            continue
        py.append(psnr(sr, pair.hr, scale, y_channel=True))
        pr.append(psnr(sr, pair.hr, scale))
        sy.append(ssim(sr, pair.hr, scale, y_channel=True))
        row.update(psnr_y=_finite(py[-1]), psnr_rgb=_finite(pr[-1]), ssim_y=_finite(sy[-1]))
        del out, sr
    if progress:
        progress(f"{method}: metrics done; {max(warmup, 1)} warm-up pass(es)")
    # 2. Warm-up; the first warm-up pass (or an extra one when --warmup 0) also measures peak memory.
    probe = _MemoryProbe(device)
    with probe:
        _pass(run, n, device)
    for _ in range(max(warmup - 1, 0)):
        _pass(run, n, device)
    flops, flops_paper = _flops(method, model, pairs, routes, tta)
    patches = None
    if method == "classsr":
        counts = np.sum([r.counts for r in routes], axis=0).tolist()
        patches = {name: int(c) for name, c in zip(CLASS_NAMES, counts, strict=True)}
    return MethodResult(
        psnr_y=float(np.mean(py)) if py else float("nan"),
        psnr_rgb=float(np.mean(pr)) if pr else float("nan"),
        ssim_y=float(np.mean(sy)) if sy else float("nan"),
        flops=flops,
        flops_paper=flops_paper,
        seconds=float("nan"),
        seconds_all=[],
        mp_per_s=float("nan"),
        peak_mem_mb=None if probe.peak is None else probe.peak / 2**20,
        patches=patches,
        per_image=per_image,
    ), run


def _device_name(device: torch.device) -> str:
    import platform

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]


def parse_methods(spec: str | None) -> tuple[str, ...]:
    """``"heavy,classsr"`` -> ``("heavy", "classsr")`` in :data:`METHODS` order; ``None``: all of them."""
    if spec is None:
        return METHODS
    names = {m.strip() for m in spec.split(",") if m.strip()}
    unknown = sorted(names - set(METHODS))
    if unknown or not names:
        raise ConfigError(f"unknown bench method(s) {', '.join(unknown) or repr(spec)}; choose from {', '.join(METHODS)}")
    return tuple(m for m in METHODS if m in names)


def run_bench(
    model: ClassSR,
    pairs: Sequence[Pair],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    tolerance: float | None = None,
    repeat: int = 3,
    warmup: int = 1,
    threads: int | None = None,
    methods: Sequence[str] = METHODS,
    model_name: str = "",
    progress: Progress | None = None,
    scale: int | None = None,
    tta: int = 1,
) -> BenchResult:
    """Measure ``methods`` on ``pairs`` with ``model`` (moved to ``device``/``dtype`` here).

    Args:
        model: a :class:`ClassSR` model whose scale matches the pairs.
        pairs: from :func:`load_pairs`.
        step: patch step of the tiled methods (``patch - step`` is the overlap).
        batch_size: most patches one branch call sees (tiled methods).
        tolerance: ``deficit`` routing's tolerance (``None``: the model's calibrated one).
        repeat: timed passes over the whole set (the median is reported), the methods in turn; at least 1.
        warmup: untimed passes before them (at least one pass always runs; it also measures memory).
        threads: ``torch.set_num_threads`` for the run (``None`` keeps the current setting).
        scale: of the pairs (``None``: the model's); below the model's scale its outputs are downscaled to
            the HR size (antialiased bicubic), as ``classsr upscale`` does for a non-native scale.
        tta: every method but bicubic as a self-ensemble of that many passes (``--tta``), each timed and counted.
    """
    if not pairs:
        raise InputError("no images to benchmark")
    if repeat < 1:
        raise ConfigError(f"--repeat must be at least 1, got {repeat}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be at least 0, got {warmup}")
    check_tta(tta)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown bench method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    load_before = _load_average()
    runtime.set_threads(threads)
    device = torch.device(device)
    model_scale = model.cfg.scale
    scale = model_scale if scale is None else scale
    if not 1 < scale <= model_scale:
        raise ConfigError(f"an x{model_scale} model cannot be benched at x{scale}; use -x {model_scale} or less")
    if not 1 <= step <= model.cfg.patch:
        raise ConfigError(f"--step must be in 1..{model.cfg.patch} (the patch size), got {step}")
    for p in pairs:
        if p.size[0] != p.lr.shape[0] * scale or p.size[1] != p.lr.shape[1] * scale:
            raise ConfigError(f"{p.name}: LR/HR sizes do not match the scale x{scale}")
    model = model.to(device=device, dtype=dtype).eval()
    lrs = [
        torch.from_numpy(p.lr).permute(2, 0, 1).unsqueeze(0).to(device=device, dtype=dtype).div_(255).contiguous()
        for p in pairs
    ]
    result = BenchResult(
        device=device.type,
        device_name=_device_name(device),
        threads=torch.get_num_threads(),
        precision=_precision_name(dtype),
        scale=scale,
        images=len(pairs),
        megapixels=sum(p.size[0] * p.size[1] for p in pairs) / 1e6,
        model=model_name,
        step=step,
        repeat=repeat,
        warmup=warmup,
        peak_mem=peak_mem_kind(device),
        torch=torch.__version__,
        inputs=[p.path or p.name for p in pairs],
        model_scale=model_scale,
        native=any(p.hr is None for p in pairs),
        tolerance=tolerance,
        jpeg=pairs[0].jpeg,
        noise=pairs[0].noise,
        tta=tta,
    )
    runs = {}
    for method in methods:
        if progress:
            progress(f"{method}: quality pass over {len(pairs)} image(s)")
        result.methods[method], runs[method] = _measure(
            method,
            model,
            pairs,
            lrs,
            device=device,
            step=step,
            batch_size=batch_size,
            warmup=warmup,
            scale=scale,
            progress=progress,
            tolerance=tolerance,
            tta=tta,
        )
    # Timed passes, the methods in turn within each round, so that a machine whose speed drifts (a shared or
    # throttled CPU) slows every method alike and the ratios to heavy stay fair.
    times: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(repeat):
        for method in methods:
            times[method].append(_pass(runs[method], len(pairs), device))
            if progress:
                progress(f"{method}: pass {r + 1}/{repeat} {times[method][-1]:.3f} s")
    load_after = _load_average()
    if load_before is not None and load_after is not None:
        result.load_average = (load_before, load_after)
    out_mp = sum(p.size[0] * p.size[1] for p in pairs) / 1e6
    for method in methods:
        seconds = statistics.median(times[method])
        result.methods[method] = dataclasses.replace(
            result.methods[method], seconds=seconds, seconds_all=times[method],
            mp_per_s=out_mp / seconds if seconds > 0 else float("inf"))
    return result


# --------------------------------------------------------------------------------------------- plot
def plot_available() -> bool:
    """Whether :func:`write_plot` can run (matplotlib is installed)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def write_plot(result: BenchResult, path: str | Path) -> Path:
    """PNG of PSNR-Y against seconds and against real FLOPs, one labelled point per method.

    Needs matplotlib (the ``plot`` extra); without it a :class:`ConfigError` says how to install it.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib (the 'plot' extra of classsr)") from None
    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    panels = (("seconds", "wall time per pass over the set (s)", 1.0), ("flops", "real FLOPs per pass (G)", 1e-9))
    for ax, (key, label, mul) in zip(axes, panels, strict=True):
        for (name, m), marker in zip(result.methods.items(), "osD^vP*X", strict=False):
            if m.psnr_y is None or not np.isfinite(m.psnr_y):
                continue
            ax.scatter([getattr(m, key) * mul], [m.psnr_y], s=48, marker=marker, label=name, alpha=0.85)
        ax.set_xlabel(label)
        ax.set_ylabel("PSNR-Y (dB)")
        ax.grid(True, alpha=0.3)
    axes[1].legend(loc="best", fontsize=9)
    fig.suptitle(
        f"classsr bench x{result.scale}: {result.images} image(s), {result.device} ({result.device_name}), "
        f"{result.threads} thread(s), {result.precision}",
        fontsize=10,
    )
    plot_target(path)
    try:
        fig.savefig(path, dpi=120)
    except OSError as e:
        raise OutputError.of(path, e) from None
    finally:
        plt.close(fig)
    return path


def plot_target(path: str | Path) -> Path:
    """Where ``--plot`` writes, its folder made: an :class:`OutputError` in one line where it cannot be (a folder of
    that name, a file in its folder's place, no permission)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; --plot names the PNG file to write")
    make_folder(path.parent)
    return path
