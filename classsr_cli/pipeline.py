"""The per-image pipeline: read -> tensor -> :func:`engine.upscale_tensor` -> resize -> quantise -> write.

For the CLI, video and bench alike; imports neither typer nor rich and never prints.

* :func:`load_upscaler` picks and loads the model for a scale (a non-native scale such as 3 or 2.5 runs the
  nearest larger native model, then an antialiased bicubic downscale to the exact size).
* :meth:`Upscaler.upscale_array` upscales ``(H, W, C)`` uint8/uint16 pixels (+ alpha) in memory;
  :meth:`Upscaler.upscale_picture` does the same for a :class:`~classsr_cli.io.image.Picture`.
* :func:`upscale_file` is one whole file: read, upscale, write (atomically), optional class map. Outputs of
  :data:`STREAM_PIXELS` or more are computed in bands of patch rows and written as the bands finish
  (:func:`engine.upscale_banded`, :func:`io.image.write_image_rows`), so memory does not grow with the output.

Colour is computed in float from the file's own bit depth and quantised once, on the model's device.
Grayscale runs as RGB (replicated) and comes back to gray by ITU-R 601 luma. Alpha does not go through the
model: it is resized on its own with antialiased bicubic (a constant alpha is just repeated).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from classsr_cli.config import CLASS_NAMES
from classsr_cli.engine import DEFAULT_STEP, Progress, RouteResult, upscale_banded, upscale_tensor
from classsr_cli.errors import ConfigError, ModelNotFoundError
from classsr_cli.io.image import DEFAULT_MAX_PIXELS, Emit, Picture, read_image, write_image, write_image_rows
from classsr_cli.runtime import synchronize

if TYPE_CHECKING:
    from classsr_cli.models.classsr import ClassSR

__all__ = [
    "MAX_SCALE",
    "NATIVE_SCALES",
    "STREAM_PIXELS",
    "ImageResult",
    "Upscaled",
    "Upscaler",
    "branch_index",
    "choose_model",
    "load_upscaler",
    "upscale_file",
]

#: Scales a ClassSR model can be built for; a requested scale runs the smallest of these that is >= it.
NATIVE_SCALES = (2, 3, 4)
MAX_SCALE = max(NATIVE_SCALES)
#: Outputs with at least this many pixels are computed and written in bands (native scale, no alpha, no
#: class map); smaller ones whole, in one pass.
STREAM_PIXELS = 16_000_000
_LUMA = (0.299, 0.587, 0.114)


def branch_index(name: str | int | None) -> int | None:
    """``light``/``medium``/``heavy`` (or 0/1/2) -> branch index; ``None`` stays ``None``."""
    if name is None or isinstance(name, int):
        return name
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ConfigError(f"unknown branch {name!r}; use {', '.join(CLASS_NAMES)}") from None


def _check_scale(scale: float) -> None:
    if not (1 < scale <= MAX_SCALE) or not math.isfinite(scale):
        raise ConfigError(f"scale must be above 1 and at most {MAX_SCALE}, got {scale:g}")


def choose_model(spec: str | None, scale: float) -> Path:
    """Path of the model to run for ``scale``: ``spec`` (name or path), else the default model of the
    smallest native scale >= ``scale`` that is installed."""
    from classsr_cli.zoo import resolve_model

    _check_scale(scale)
    candidates = [s for s in NATIVE_SCALES if s >= scale]
    if spec is not None:
        return resolve_model(spec, candidates[0])
    first: ModelNotFoundError | None = None
    for s in candidates:
        try:
            return resolve_model(None, s)
        except ModelNotFoundError as e:
            first = first or e
    assert first is not None
    if float(scale) in NATIVE_SCALES:
        raise first
    names = " or ".join(f"classsr_fsrcnn_x{s}" for s in candidates)
    raise ModelNotFoundError(
        f"no installed model for x{scale:g}, which runs the nearest larger native model ({names}); "
        "pass --model PATH, or train one with `classsr train all`"
    )


@dataclass
class Upscaled:
    """What :meth:`Upscaler.upscale_array` returns: output pixels (same dtype and channels as the input),
    the upscaled alpha (or ``None``), what routing did, and the model's share of the time."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    route: RouteResult
    model_seconds: float


class Upscaler:
    """A loaded ClassSR model with its run settings.

    Args:
        model: a :class:`ClassSR` on its device and dtype, in eval mode.
        scale: output / input size; ``None`` is the model's own scale. Below the model's scale the model's
            output is downscaled (antialiased bicubic) to ``round(scale * size)``.
        step: distance between patch origins (LR pixels), ``1..patch``.
        batch_size: most patches per branch call.
        force_branch: run every patch through this branch (``light``/``medium``/``heavy`` or 0..2).
        model_path: where the model came from (reported).
    """

    def __init__(
        self,
        model: ClassSR,
        *,
        scale: float | None = None,
        step: int = DEFAULT_STEP,
        batch_size: int = 256,
        force_branch: str | int | None = None,
        model_path: Path | None = None,
    ) -> None:
        self.model = model
        self.model_scale = int(model.cfg.scale)
        self.scale = float(scale if scale is not None else self.model_scale)
        _check_scale(self.scale)
        if self.scale > self.model_scale:
            where = f"{model_path}: " if model_path else ""
            raise ConfigError(
                f"{where}an x{self.model_scale} model cannot upscale x{self.scale:g}; "
                f"use -x {self.model_scale} or less, or another --model"
            )
        if not 1 <= step <= model.cfg.patch:
            raise ConfigError(f"--step must be in 1..{model.cfg.patch} (the patch size), got {step}")
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        self.step = step
        self.batch_size = batch_size
        self.force_branch = branch_index(force_branch)
        self.model_path = model_path
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

    @property
    def resampled(self) -> bool:
        """Whether the output is the model's output downscaled to a non-native scale."""
        return self.scale != self.model_scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if not self.resampled:
            return height * self.model_scale, width * self.model_scale
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def upscale_array(
        self, pixels: np.ndarray, alpha: np.ndarray | None = None, *, progress: Progress | None = None
    ) -> Upscaled:
        """Upscale ``(H, W, C)`` uint8/uint16 pixels (``C`` = 1 or 3) and an optional ``(H, W)`` alpha."""
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected (H, W, 1|3) uint8/uint16 pixels, got {pixels.shape} {pixels.dtype}")
        h, w, c = pixels.shape
        top = float(np.iinfo(pixels.dtype).max)
        x = _to_tensor(pixels, self.device, top).permute(2, 0, 1).unsqueeze(0).to(self.dtype)
        if c == 1:
            x = x.expand(1, 3, h, w)
        start = time.perf_counter()
        sr, route = upscale_tensor(
            self.model, x, step=self.step, batch_size=self.batch_size, force_branch=self.force_branch,
            progress=progress,
        )
        synchronize(self.device)
        model_seconds = time.perf_counter() - start
        size = self.output_size(h, w)
        sr = sr.float()
        if tuple(sr.shape[-2:]) != size:
            sr = _resize(sr, size)
        if c == 1:
            sr = sum(wt * sr[:, k : k + 1] for k, wt in enumerate(_LUMA))
            assert isinstance(sr, torch.Tensor)
        out = _quantise(sr[0].permute(1, 2, 0), top, pixels.dtype)
        a = None if alpha is None else self._upscale_alpha(alpha, size)
        return Upscaled(out, a, route, model_seconds)

    def can_stream(self, picture: Picture) -> bool:
        """Whether :meth:`upscale_rows` handles ``picture`` (native scale, no alpha)."""
        return not self.resampled and picture.alpha is None

    def upscale_rows(
        self, pixels: np.ndarray, emit: Emit, *, progress: Progress | None = None
    ) -> tuple[RouteResult, float]:
        """Upscale ``(H, W, C)`` uint8/uint16 pixels at the model's scale in bands of patch rows; ``emit`` gets
        the quantised output rows ``(n, s*W, C)`` top to bottom, the same values :meth:`upscale_array` gives.

        Returns what routing did and the model's share of the time (without ``emit``'s).
        """
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected (H, W, 1|3) uint8/uint16 pixels, got {pixels.shape} {pixels.dtype}")
        if self.resampled:
            raise ValueError("upscale_rows runs at the model's own scale only")
        h, w, c = pixels.shape
        top = float(np.iinfo(pixels.dtype).max)
        x = _to_tensor(pixels, self.device, top).permute(2, 0, 1).unsqueeze(0).to(self.dtype)
        if c == 1:
            x = x.expand(1, 3, h, w)
        sink_seconds = 0.0

        def sink(_y: int, band: torch.Tensor) -> None:
            nonlocal sink_seconds
            t = time.perf_counter()
            sr = band.float()
            if c == 1:
                sr = sum(wt * sr[:, k : k + 1] for k, wt in enumerate(_LUMA))  # type: ignore[assignment]
            emit(_quantise(sr[0].permute(1, 2, 0), top, pixels.dtype))
            sink_seconds += time.perf_counter() - t

        start = time.perf_counter()
        route = upscale_banded(
            self.model, x, sink, step=self.step, batch_size=self.batch_size, force_branch=self.force_branch,
            progress=progress,
        )
        synchronize(self.device)
        return route, time.perf_counter() - start - sink_seconds

    def upscale_picture(self, picture: Picture, *, progress: Progress | None = None) -> tuple[Picture, Upscaled]:
        """Upscale a decoded :class:`Picture`; the result keeps its ICC profile and EXIF."""
        up = self.upscale_array(picture.pixels, picture.alpha, progress=progress)
        out = Picture(
            pixels=up.pixels, alpha=up.alpha, icc=picture.icc, exif=picture.exif,
            source_format=picture.source_format, source_mode=picture.source_mode,
        )
        return out, up

    def _upscale_alpha(self, alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        lo, hi = int(alpha.min()), int(alpha.max())
        if lo == hi:
            return np.full(size, lo, dtype=alpha.dtype)
        top = float(np.iinfo(alpha.dtype).max)
        a = _to_tensor(alpha, self.device, top)[None, None]
        return _quantise(_resize(a, size)[0, 0], top, alpha.dtype)


def _to_tensor(arr: np.ndarray, device: torch.device, top: float) -> torch.Tensor:
    """uint8/uint16 array -> float32 tensor in [0, 1] on ``device`` (8-bit data crosses as bytes)."""
    if arr.dtype == np.uint8:
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy()).to(device)
    else:
        t = torch.from_numpy(arr.astype(np.int32)).to(device)
    return t.float().div_(top)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of ``(N, C, H, W)`` float (on the CPU if the device lacks the kernel)."""
    try:
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    except (RuntimeError, NotImplementedError):
        y = F.interpolate(x.cpu(), size=size, mode="bicubic", align_corners=False, antialias=True)
        return y.to(x.device)


def _quantise(x: torch.Tensor, top: float, dtype: np.dtype[Any] | type) -> np.ndarray:
    """Float in [0, 1] -> rounded integers (on the device), then to numpy ``dtype``."""
    q = x.clamp(0, 1).mul(top).round_()
    q = q.to(torch.uint8) if top == 255 else q.to(torch.int32)
    return q.cpu().numpy().astype(dtype, copy=False)


def load_upscaler(
    spec: str | None,
    scale: float,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    force_branch: str | int | None = None,
) -> Upscaler:
    """Choose (see :func:`choose_model`), load and wrap the model for ``scale``."""
    from classsr_cli.checkpoint import load_checkpoint

    path = choose_model(spec, scale)
    loaded = load_checkpoint(path, device=device, dtype=dtype, expect_kind="classsr")
    return Upscaler(
        loaded.module,  # type: ignore[arg-type]
        scale=scale, step=step, batch_size=batch_size, force_branch=force_branch, model_path=path,
    )


@dataclass
class ImageResult:
    """One upscaled file, as reported per image (``to_dict`` is the ``--json`` record)."""

    input: Path
    output: Path
    classmap: Path | None
    scale: float
    model_scale: int
    model: Path | None
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    mode: str
    bits: int
    route: RouteResult
    seconds: float
    model_seconds: float
    device: str
    dtype: str
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.route.counts

    def to_dict(self) -> dict[str, Any]:
        light, medium, heavy = self.counts
        return {
            "input": str(self.input),
            "output": str(self.output),
            "classmap": str(self.classmap) if self.classmap else None,
            "scale": int(self.scale) if float(self.scale).is_integer() else self.scale,
            "model_scale": self.model_scale,
            "model": str(self.model) if self.model else None,
            "size": {"input": list(self.size_in), "output": list(self.size_out)},
            "mode": self.mode,
            "bits": self.bits,
            "patches": {"light": light, "medium": medium, "heavy": heavy, "total": light + medium + heavy},
            "flops": self.route.flops.to_dict(),
            "flops_paper": self.route.flops_paper.to_dict(),
            "seconds": round(self.seconds, 4),
            "model_seconds": round(self.model_seconds, 4),
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "notes": list(self.notes),
        }


def upscale_file(
    upscaler: Upscaler,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    classmap: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    stream_pixels: int | None = STREAM_PIXELS,
) -> ImageResult:
    """Read ``src``, upscale it, write ``dst`` (and the class map to ``classmap``); nothing partial is left.

    Outputs of ``stream_pixels`` or more (``None``: never) are computed and written in bands when
    :meth:`Upscaler.can_stream` and there is no class map: the same pixels in bounded memory.

    Raises :class:`InputError` for an unreadable input, :class:`OutputExistsError` for an existing output
    without ``overwrite``, :class:`ConfigError` for an output suffix classsr cannot write.
    """
    from classsr_cli.io.image import output_format

    src, dst = Path(src), Path(dst)
    output_format(dst)
    start = time.perf_counter()
    picture = read_image(src, max_pixels=max_pixels)
    oh, ow = upscaler.output_size(picture.height, picture.width)
    if stream_pixels is not None and oh * ow >= stream_pixels and classmap is None and upscaler.can_stream(picture):
        ran: list[tuple[RouteResult, float]] = []

        def fill(emit: Emit) -> None:
            ran.append(upscaler.upscale_rows(picture.pixels, emit, progress=progress))

        notes = list(picture.notes) + write_image_rows(
            dst, (oh, ow), picture.pixels.shape[2], picture.pixels.dtype, fill,
            icc=picture.icc, exif=picture.exif, overwrite=overwrite,
        )
        route, model_seconds = ran[0]
        return ImageResult(
            input=src, output=dst, classmap=None, scale=upscaler.scale, model_scale=upscaler.model_scale,
            model=upscaler.model_path, size_in=(picture.width, picture.height), size_out=(ow, oh),
            mode=picture.mode, bits=picture.bits, route=route, seconds=time.perf_counter() - start,
            model_seconds=model_seconds, device=str(upscaler.device), dtype=str(upscaler.dtype),
            notes=[*notes, f"{ow}x{oh} output computed and written in bands of rows"],
        )
    out, up = upscaler.upscale_picture(picture, progress=progress)
    notes = list(picture.notes) + write_image(dst, out, overwrite=overwrite)
    if classmap is not None:
        from classsr_cli.io.classmap import render_classmap

        rgb = out.pixels if out.bits == 8 else (out.pixels.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        rgb = np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb
        grid = up.route.grid
        img = render_classmap(rgb, up.route.classes.numpy(), grid.step, (grid.height, grid.width))
        write_image(Path(classmap), Picture(pixels=img), overwrite=overwrite)
    return ImageResult(
        input=src, output=dst, classmap=Path(classmap) if classmap is not None else None,
        scale=upscaler.scale, model_scale=upscaler.model_scale, model=upscaler.model_path,
        size_in=(picture.width, picture.height), size_out=(out.width, out.height),
        mode=out.mode, bits=out.bits, route=up.route, seconds=time.perf_counter() - start,
        model_seconds=up.model_seconds, device=str(upscaler.device), dtype=str(upscaler.dtype), notes=notes,
    )
