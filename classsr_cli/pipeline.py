"""The per-image pipeline: pixels -> tensor -> the engine's bands -> resize -> quantise -> rows -> file.

For ``upscale``, ``video`` and ``bench`` alike; imports neither typer nor rich and never prints.

* :class:`Upscaler` holds a loaded model (:func:`classsr_cli.zoo.load`) and its run settings.
  :meth:`Upscaler.run` turns ``(H, W, C)`` uint8/uint16 pixels into quantised output rows, band by band
  (:class:`classsr_cli.engine.FrameRun`; a whole frame is one band), for images and video frames alike.
  A non-native scale (3 or 2.5 with an x4 model) runs whole, then an antialiased bicubic downscale.
* :func:`upscale_file` is one whole file: read, upscale, write (atomically), optional class map. Outputs of
  :data:`STREAM_PIXELS` or more are computed in bands and written as the bands finish
  (:func:`io.image.write_image_rows`), so memory does not grow with the output.

Colour is computed in float from the file's own bit depth and quantised once, on the model's device.
Grayscale runs as RGB (replicated) and comes back to gray by ITU-R 601 luma. Alpha does not go through the
model: it is resized on its own with antialiased bicubic (a constant alpha is just repeated); the colour under
transparency is first replaced by the visible colour around it (:func:`fill_hidden`), so none bleeds into edges.
"""

from __future__ import annotations

import errno
import functools
import math
import operator
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from classsr_cli.config import CLASS_NAMES
from classsr_cli.engine import (
    BAND_BYTES,
    BAND_PATCHES,
    DEFAULT_STEP,
    Argmax,
    Band,
    FlopsReport,
    Forced,
    FrameRun,
    Router,
    RouteResult,
    band_bytes_for,
    check_step,
    check_tta,
    resize_flops,
    upscale_tensor,
)
from classsr_cli.errors import ConfigError, InputError, OutputError, PrecisionError
from classsr_cli.io import dds
from classsr_cli.io.image import (
    DEFAULT_MAX_PIXELS,
    Picture,
    full_circle,
    read_image,
    write_image,
    write_image_rows,
)
from classsr_cli.runtime import bound_freed_memory, synchronize
from classsr_cli.zoo import check_scale, check_tolerance

if TYPE_CHECKING:
    from classsr_cli.models.classsr import ClassSR
    from classsr_cli.zoo import Model, TrainedLR

__all__ = [
    "STREAM_PIXELS",
    "AutoModel",
    "ImageResult",
    "PixelRun",
    "Upscaled",
    "Upscaler",
    "branch_index",
    "suited_model",
    "suited_video_model",
    "upscale_file",
]

#: Outputs with at least this many pixels are computed in bands (native scale, no alpha, no image class
#: map); smaller ones whole, in one band.
STREAM_PIXELS = 16_000_000
#: A JPEG saved below this quality, upscaled by a model trained on clean LR, gets a note naming the installed model
#: trained on compressed LR (:func:`compression_note`).
JPEG_NOTE_BELOW = 90
#: A picture whose noise estimate (:func:`~classsr_cli.metrics.noise_level`, levels) is at least this, upscaled by a
#: model not trained on noisy LR, gets a note naming the installed model that is (:func:`noise_note`). Chosen on the
#: training photos (``scripts/noise_level.py``): as given, 1.4 % of them reach it clean and 94 % with noise of σ 6.
NOISE_NOTE_FROM = 4.0
#: The same for a JPEG saved below :data:`JPEG_NOTE_BELOW`, whose compression smooths the noise in the flat blocks the
#: estimate reads. Chosen on the training photos as given, saved as JPEG (``scripts/noise_level.py``): at quality
#: 50-85, 3-8 % of them reach it clean; at 75-85, 97-100 % with noise of σ 8.
NOISE_NOTE_JPEG_FROM = 1.0
#: The first frame of a video a lossy codec coded (H.264, HEVC, VP9, AV1, ...: ``video.SMOOTHING_CODECS``) looks noisy
#: from this estimate (at the noise note's share, 2 %), and lightly noisy from :data:`LIGHT_NOISE_VIDEO_FROM` (there,
#: the texture is not told apart): the codec smooths the noise a picture would show. Chosen on the training photos as
#: slow pans coded by H.264, HEVC, VP9 and AV1 at x4 and x2 (``scripts/auto_rules.py --codec C --pan 8``;
#: docs/results.md, "`--model auto`"): x4's best noisy threshold, a JPEG one between the two factors' best; at x2, on
#: seven clip sets, the grid's best gains 0.005 dB more, so both factors share them.
NOISE_NOTE_VIDEO_FROM = 3.0
LIGHT_NOISE_VIDEO_FROM = 1.5
#: Codecs whose footage takes the model trained on noisy input from another estimate than
#: :data:`NOISE_NOTE_VIDEO_FROM` (the JPEG model below it, from :data:`LIGHT_NOISE_VIDEO_FROM`): HEVC from 5, VP9
#: from 4. x265 and libvpx smooth the noise of the frames they predict more than the first frame shows, and that
#: model then smooths their detail away. HEVC's chosen on the training photos as 25-frame pans coded by x265 at CRF
#: 20, 25 and 30 (x4) and 25 and 30 (x2) (``scripts/auto_rules.py --codec hevc --pan 24``; docs/results.md,
#: "`--model auto`", seventy-second pass), still the best over 49 frames (seventy-third pass: over 9, 3 is, the first
#: frame's noise counting more there); VP9's as 25-frame pans at CRF 25, 33 and 41 (x4) and 33 (x2) (seventy-third);
#: AV1's as 25-frame pans by SVT-AV1 at CRF 25, 35 and 45 (x4) and 35 (x2) (seventy-fourth), x4's best.
NOISE_VIDEO_FROM_BY_CODEC = {"hevc": 5.0, "vp9": 4.0, "av1": 4.0}
#: Codecs whose footage takes the JPEG model from another estimate than :data:`LIGHT_NOISE_VIDEO_FROM`: AV1 from 2
#: (SVT-AV1 smooths light noise away, and the JPEG model then smooths detail), between x4's best (2.5) and x2's
#: (1.5-2) on the AV1 pans above (seventy-fourth pass).
LIGHT_NOISE_VIDEO_FROM_BY_CODEC = {"av1": 2.0}
#: An H.264 video whose blocks are quantized at a mean QP (:func:`~classsr_cli.io.video.h264_qp`) of at least this,
#: upscaled by a model trained on clean LR, which sharpens the codec's blocks as detail, gets a note naming the
#: installed model trained on JPEG LR (:func:`codec_note`). Chosen on the training photos as slow pans of 25 frames
#: coded by libx264 at CRF 18, 23, 26 and 28 (``scripts/auto_rules.py --codec h264 --pan 24``; docs/results.md,
#: "`--model auto`", seventieth pass), where the blocks read 16-27, 21-31, 25-35 and 25-37: within 0.001 dB (x4) and
#: 0.015 (x2) of the best threshold's mean gain over noise levels (26), and the least lost on clean footage (0.022 and
#: 0.020 dB on average over the clip sets); the same on clips coded at a bit rate of 0.25, 0.5 and 1 bit a pixel
#: (``--bpp``, seventy-first pass), where 26 gains 0.017 dB more over the noise levels and 30 least loses clean.
#: HEVC, VP9 and AV1 footage gains nothing clean at any quality measured.
H264_JPEG_FROM_QP = 30.0
#: A picture (not a JPEG below :data:`JPEG_NOTE_BELOW`) whose noise estimate is below this, upscaled by a model trained
#: on noisy LR, which smooths clean detail away, gets a note saying so (:func:`clean_note`). Chosen on the training
#: photos as given (``scripts/noise_level.py``): 75 % of them read below it clean, 53 % with noise of σ 1, none from σ 2.
CLEAN_NOTE_BELOW = 1.0
#: A picture that does not look noisy (:data:`NOISE_NOTE_FROM`; not a JPEG below :data:`JPEG_NOTE_BELOW`, nor a
#: palette picture) looks lightly noisy where the noise estimate of its flattest :data:`LIGHT_NOISE_SHARE` of blocks
#: is at least this and that of its flattest tenth at most :data:`LIGHT_NOISE_TEXTURE` times it (texture, not noise,
#: raises the tenth's): upscaled by a model trained on clean LR it gets a note naming the installed model trained on
#: JPEG LR, which leaves light noise out (:func:`light_noise_note`). Chosen on the training photos
#: (``scripts/auto_rules.py ../shared/data/train/BSD200 --search --keep-noisy``; docs/results.md, "`--model auto`").
LIGHT_NOISE_FROM = 2.0
LIGHT_NOISE_SHARE = 0.005
LIGHT_NOISE_TEXTURE = 1.5
_LUMA = (0.299, 0.587, 0.114)


def branch_index(name: str | int | None) -> int | None:
    """``light``/``medium``/``heavy`` (or 0/1/2) -> branch index; ``None`` stays ``None``."""
    if name is None:
        return None
    if isinstance(name, int) and not isinstance(name, bool):
        if 0 <= name < len(CLASS_NAMES):
            return name
        raise ConfigError(f"unknown branch {name}; use 0 to {len(CLASS_NAMES) - 1} or {', '.join(CLASS_NAMES)}")
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ConfigError(f"unknown branch {name!r}; use {', '.join(CLASS_NAMES)}") from None


def spill_buffer(shape: tuple[int, ...], folder: str | os.PathLike[str] | None = None) -> torch.Tensor:
    """Zeros, float32, of ``shape`` in a temporary file in ``folder`` (default: the system's temporary folder),
    memory-mapped: a frame-sized buffer the system pages out rather than holds. The file has no name (it is gone
    when the buffer is); its space is taken up front, so a full disk is an :class:`OutputError` here, not a crash
    on a page written later."""
    size = 4 * math.prod(shape)
    where = folder if folder is not None else tempfile.gettempdir()
    try:
        with tempfile.TemporaryFile(dir=where, prefix=".classsr-") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except (AttributeError, OSError) as e:  # no posix_fallocate here (macOS), or not on this file system
                if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                    raise
                f.truncate(size)
            mapped = np.memmap(f, dtype=np.float32, mode="r+", shape=shape)  # its own mapping outlives the file
    except OSError as e:
        raise OutputError(f"{where}: cannot hold the {size / 2**30:.1f} GiB temporary file of a self-ensemble's mean "
                          f"({e.strerror or e})") from None
    return torch.from_numpy(mapped)


@dataclass
class Upscaled:
    """What :meth:`Upscaler.upscale_array` returns: output pixels (same dtype and channels as the input),
    the upscaled alpha (or ``None``), what routing did, and the model's share of the time."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    route: RouteResult
    model_seconds: float


class PixelRun:
    """Iterate the quantised output rows ``(n, W_out, C)`` of one picture, top to bottom (see
    :meth:`Upscaler.run`); after the last, :attr:`route` says what routing did and :attr:`model_seconds` how
    long the engine took (device synchronised; without resizing, quantising or the consumer's time).

    At the model's own scale on the CPU a large frame comes in bands of about :data:`BAND_BYTES` of float output
    even when not ``banded`` (``FrameRun(band_bytes=...)``): the frame-sized float output is never allocated.
    ``into``: an ``(H_out, W_out, C)`` array the rows are quantised into (each band yielded as a view of it).
    A self-ensemble (``up.tta`` > 1) run ``banded`` makes its mean in a temporary file in ``spill`` (default: the
    system's temporary folder; :func:`spill_buffer`) and hands it on in bands of rows: memory stays bounded as
    without it."""

    def __init__(
        self, up: Upscaler, pixels: np.ndarray, router: Router, banded: bool,
        progress: Callable[[int, int], None] | None, into: np.ndarray | None = None,
        spill: str | os.PathLike[str] | None = None,
    ) -> None:
        pixels = _hwc(pixels)
        if banded and up.resampled:
            raise ValueError("banded runs are at the model's own scale only")
        if into is not None and (into.shape != (*up.output_size(*pixels.shape[:2]), pixels.shape[2])
                                 or into.dtype != pixels.dtype or not into.flags.c_contiguous):
            raise ValueError(f"into must be a C-contiguous {pixels.dtype} array of the output's shape, got "
                             f"{into.shape} {into.dtype}")
        self.up, self.pixels, self.router, self.progress, self.into = up, pixels, router, progress, into
        self.spill = spill
        self.band_patches = BAND_PATCHES if banded else None
        self.band_bytes = band_bytes_for(up.device.type, not up.resampled)
        self.model_seconds = 0.0
        self.frame: FrameRun | None = None
        self._route: RouteResult | None = None

    @property
    def route(self) -> RouteResult:
        """What routing did; where the output is resized to a size the model does not make, the resize's FLOPs
        (:func:`~classsr_cli.engine.flops.resize_flops`) added to the FLOPs used and to both baselines, which need it
        as well."""
        if self._route is None and self.frame is None:
            raise RuntimeError("iterate the PixelRun first")
        route = self._route if self._route is not None else self.frame.result  # type: ignore[union-attr]
        if not self.up.resampled:
            return route
        h, w = self.pixels.shape[:2]
        s = self.up.model_scale
        return _plus(route, resize_flops((s * h, s * w), self.up.output_size(h, w)))

    def _ensemble(self, x: torch.Tensor) -> Iterator[Band]:
        up = self.up
        n, c, h, w = x.shape
        s = up.model_scale
        out = None if self.band_patches is None else spill_buffer((n, c, s * h, s * w), self.spill)
        sr, self._route = upscale_tensor(up.model, x, router=self.router, step=up.step, band_bytes=self.band_bytes,
                                         progress=self.progress, tta=up.tta, out=out)
        if out is None:
            yield Band(0, sr)
            return
        rows = max(1, BAND_BYTES // (4 * c * s * w))  # bands of the file, each read once into the output's rows
        for y in range(0, s * h, rows):
            yield Band(y, sr[:, :, y : y + rows])

    def __iter__(self) -> Iterator[np.ndarray]:
        up, pixels = self.up, self.pixels
        h, w, c = pixels.shape
        top = float(np.iinfo(pixels.dtype).max)
        x = _to_tensor(pixels, up.device, top)
        if pixels.dtype == np.uint8:  # in a 16-bit float model's dtype, its fastest path; 16-bit pictures stay
            x = x.to(up.dtype)  # float32, and with them the bicubic base and the sum (ResidualSR._apply)
        x = x.unsqueeze(0).permute(0, 3, 1, 2)  # NHWC memory, standard strides
        if c == 1:
            x = x.expand(1, 3, h, w)
        if up.tta > 1:  # the passes' mean: one band, or a file's in bands (each pass itself in bands of band_bytes)
            bands: Iterator[Band] = self._ensemble(x)
        else:
            self.frame = FrameRun(
                up.model, x, router=self.router, step=up.step, band_patches=self.band_patches,
                band_bytes=self.band_bytes, progress=self.progress,
            )
            bands = iter(self.frame)
        size = up.output_size(h, w)
        done = 0
        while True:
            t = time.perf_counter()
            band = next(bands, None)
            synchronize(up.device)
            self.model_seconds += time.perf_counter() - t
            if band is None:
                return
            sr = band.rows.float()
            # A half-precision overflow: inf or NaN, which rounding makes black. Their sum shows them (no output of
            # levels near 0-1 overflows a float32 sum), a small part of the cost of isfinite over 16-bit floats.
            if band.rows.dtype != torch.float32 and not bool(torch.isfinite(sr.sum())):
                raise PrecisionError(f"the model in {_PRECISION.get(band.rows.dtype, band.rows.dtype)} gave values "
                                     "that are not finite (an overflow): nothing was written; run with --precision fp32")
            if up.resampled:
                sr = _resize(sr, size)
            if c == 1:
                sr = _luma(sr)
            dst = None if self.into is None else self.into[done : done + sr.shape[2]]
            rows = _quantise(sr[0].permute(1, 2, 0), top, pixels.dtype, inplace=True, out=dst)  # nothing reads sr after
            done += rows.shape[0]
            yield rows


class Upscaler:
    """A loaded ClassSR model with its run settings.

    Args:
        model: a :class:`ClassSR` on its device and dtype, in eval mode.
        scale: output / input size; ``None`` is the model's own scale. Below the model's scale the model's
            output is downscaled (antialiased bicubic) to ``round(scale * size)``; with ``enlarge``, above it (up
            to 4 times it) enlarged so (``classsr video -x 8``, ``--height 2160`` of 480p: what two model passes
            give, by PSNR-Y; docs/cli.md).
        step: distance between patch origins (LR pixels), ``1..patch``.
        batch_size: most patches per branch call.
        force_branch: run every patch through this branch (``light``/``medium``/``heavy`` or 0..2).
        tolerance: ``deficit`` routing's tolerance (``None``: the model's calibrated one; see ``--tolerance``).
        tta: self-ensemble passes (``--tta``: 1, 2, 4 or 8; :mod:`~classsr_cli.engine.tta`); above 1 a frame's
            passes are averaged in one buffer (a temporary file's for a frame run in bands, :class:`PixelRun`).
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
        tolerance: float | None = None,
        tta: int = 1,
        model_path: Path | None = None,
        enlarge: bool = False,
    ) -> None:
        from classsr_cli.zoo import MAX_SCALE

        self.model = model
        self.model_scale = int(model.cfg.scale)
        self.scale = float(scale if scale is not None else self.model_scale)
        self.enlarge = enlarge
        if not (enlarge and self.model_scale < self.scale <= self.model_scale * MAX_SCALE):
            check_scale(self.scale)
        if self.scale > self.model_scale * (MAX_SCALE if enlarge else 1):
            where = f"{model_path}: " if model_path else ""
            raise ConfigError(
                f"{where}an x{self.model_scale} model cannot upscale x{self.scale:g}; "
                f"use -x {self.model_scale} or less, or another --model"
            )
        check_step(step, model.cfg.patch)
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
        self.step = step
        self.batch_size = batch_size
        self.force_branch = branch_index(force_branch)
        check_tolerance(model, tolerance, model_path)
        self.tolerance = tolerance
        check_tta(tta)
        self.tta = tta
        self.model_path = model_path
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

    @classmethod
    def of(cls, loaded: Model, **settings: Any) -> Upscaler:
        """An upscaler for a model from :func:`classsr_cli.zoo.load` (at the scale it was loaded for unless
        ``settings`` give another)."""
        settings.setdefault("scale", loaded.scale)
        return cls(loaded.net, model_path=loaded.path, **settings)

    def at_scale(self, scale: float) -> Upscaler:
        """This upscaler (the same model and settings) at another ``scale``, checked as the constructor checks it."""
        return Upscaler(self.model, scale=scale, step=self.step, batch_size=self.batch_size,
                        force_branch=self.force_branch, tolerance=self.tolerance, tta=self.tta,
                        model_path=self.model_path, enlarge=self.enlarge)

    def enlarged(self, height: int, width: int, name: str | os.PathLike[str] = "") -> tuple[int, int]:
        """:meth:`output_size`, or an :class:`InputError` where it is the input's own (``-x 1.0001``: a copy through
        the model, at its cost)."""
        from classsr_cli.zoo import factor_text

        size = self.output_size(height, width)
        if size == (height, width):
            raise InputError(f"{name}: {factor_text(self.scale)} of {width}x{height} rounds to the size it has; ask "
                             "for a larger factor")
        return size

    def made_by(self) -> str:
        """How this upscaler makes an output, as written into it (:attr:`~classsr_cli.io.image.Picture.made_by`):
        classsr's version, the model's name and the SHA-256 of its file, the scale and the routing settings."""
        import json

        from classsr_cli import __version__

        record = {"version": __version__, "model": Path(self.model_path).stem if self.model_path else None,
                  "model_sha256": _sha256(str(self.model_path)) if self.model_path else None, "scale": self.scale, "step": self.step, "tolerance": self.tolerance,
                  "force_branch": CLASS_NAMES[self.force_branch] if self.force_branch is not None else None,
                  "tta": self.tta}  # fmt: skip
        return json.dumps(record, separators=(",", ":"))

    @functools.cached_property
    def trained_lr(self) -> TrainedLR | None:
        """What the model's training LR carried (its recorded recipe's ``jpeg_quality`` and ``noise_sigma``);
        ``None``: not known."""
        from classsr_cli.zoo import lr_trained_on

        return lr_trained_on(self.model_path) if self.model_path else None

    @property
    def trained_on_jpeg(self) -> bool:
        """Whether the model was trained on LR saved as JPEG (its recorded recipe's ``jpeg_quality``)."""
        return bool(self.trained_lr and self.trained_lr.jpeg_quality)

    @property
    def trained_on_noise(self) -> bool:
        """Whether the model was trained on noisy LR (its recorded recipe's ``noise_sigma``)."""
        return bool(self.trained_lr and self.trained_lr.noise_sigma)

    @property
    def resampled(self) -> bool:
        """Whether the output is the model's output downscaled to a non-native scale."""
        return self.scale != self.model_scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if not self.resampled:
            return height * self.model_scale, width * self.model_scale
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def router(self) -> Router:
        """A fresh router for this upscaler's settings: argmax, or the forced branch."""
        policy = Forced(self.force_branch) if self.force_branch is not None else Argmax(self.tolerance)
        return Router(policy, batch_size=self.batch_size)

    def should_band(self, height: int, width: int, stream_pixels: int | None = STREAM_PIXELS) -> bool:
        """Whether a ``height`` x ``width`` input runs in bands: outputs of ``stream_pixels`` or more at the
        model's own scale (``None``: never); under a self-ensemble its mean is then made in a temporary file
        (:class:`PixelRun`)."""
        oh, ow = self.output_size(height, width)
        return stream_pixels is not None and oh * ow >= stream_pixels and not self.resampled

    def run(
        self, pixels: np.ndarray, *, router: Router | None = None, banded: bool = False,
        progress: Callable[[int, int], None] | None = None, spill: str | os.PathLike[str] | None = None,
    ) -> PixelRun:
        """The output rows of ``(H, W, C)`` uint8/uint16 pixels (``C`` = 1 or 3), as an iterator of bands: the
        whole frame in one unless ``banded`` (native scale only; about :data:`BAND_PATCHES` patches a band) or the
        frame is large (:class:`PixelRun`). ``router`` defaults to :meth:`router`; ``spill``: the folder of a
        banded self-ensemble's temporary file."""
        return PixelRun(self, pixels, router or self.router(), banded, progress, spill=spill)

    def upscale_array(
        self, pixels: np.ndarray, alpha: np.ndarray | None = None, *, router: Router | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Upscaled:
        """Upscale ``(H, W, C)`` uint8/uint16 pixels (or gray ``(H, W)``, returned as ``(H', W')``) and an optional
        ``(H, W)`` alpha, whole. An input of another shape or type is an :class:`InputError`."""
        flat = getattr(pixels, "ndim", 0) == 2
        pixels = _hwc(pixels)
        if alpha is not None and (getattr(alpha, "shape", None) != pixels.shape[:2]
                                  or getattr(alpha, "dtype", None) != pixels.dtype):
            raise InputError(f"alpha must be (H, W) = {pixels.shape[:2]} {pixels.dtype} like the pixels, got "
                             f"{getattr(alpha, 'shape', type(alpha).__name__)} {getattr(alpha, 'dtype', '')}".rstrip())
        if alpha is not None:
            pixels = fill_hidden(pixels, alpha)
        out = np.empty((*self.output_size(*pixels.shape[:2]), pixels.shape[2]), pixels.dtype)
        run = PixelRun(self, pixels, router or self.router(), False, progress, into=out)
        for _ in run:  # the bands land in out
            pass
        size = self.output_size(*pixels.shape[:2])
        if alpha is None:
            return Upscaled(out[:, :, 0] if flat else out, None, run.route, run.model_seconds)
        return Upscaled(out[:, :, 0] if flat else out, self.upscale_alpha(alpha, size), with_alpha(run.route, alpha, size),
                        run.model_seconds)  # fmt: skip

    def upscale_picture(self, picture: Picture, *, progress: Callable[[int, int], None] | None = None) -> tuple[Picture, Upscaled]:
        """Upscale a decoded :class:`Picture`; the result keeps its ICC profile and EXIF."""
        up = self.upscale_array(picture.pixels, picture.alpha, progress=progress)
        out = replace(picture, pixels=up.pixels, alpha=up.alpha, notes=[])
        return out, up

    def upscale_alpha(self, alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """An ``(H, W)`` alpha resized to ``size`` with antialiased bicubic (a constant one repeated)."""
        lo, hi = int(alpha.min()), int(alpha.max())
        if lo == hi:
            return np.full(size, lo, dtype=alpha.dtype)
        top = float(np.iinfo(alpha.dtype).max)
        a = _to_tensor(alpha, self.device, top)[None, None]
        return _quantise(_resize(a, size)[0, 0], top, alpha.dtype, inplace=True)


class Chain:
    """Upscalers run one after another on the whole picture, for a factor above the largest native one (``-x 8``:
    the x4 model, then the x2 model on its output; ``-x 6``: x4, then x1.5, the x2 model and a downscale), as
    waifu2x and Upscayl reach them. It stands for an :class:`Upscaler` where a file is upscaled
    (:func:`upscale_file`): its scale is the whole factor, its model and what that was trained on are the first
    pass's (the notes on the input ask the first pass, :attr:`passes`), its route every pass's together (counts and
    FLOPs summed; no per-patch map, which differs by pass)."""

    def __init__(self, passes: list[Upscaler], scale: float) -> None:
        self.passes, self.scale = passes, float(scale)
        first = passes[0]
        self.model_scale, self.model_path, self.tta = first.model_scale, first.model_path, first.tta
        self.device, self.dtype = first.device, first.dtype

    @property
    def resampled(self) -> bool:
        return self.passes[-1].resampled

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        for up in self.passes:
            height, width = up.output_size(height, width)
        return height, width

    def enlarged(self, height: int, width: int, name: str | os.PathLike[str] = "") -> tuple[int, int]:
        return self.output_size(height, width)  # each pass enlarges: above x4 in all, never the input's size

    def made_by(self) -> str:
        """The record of each pass (:meth:`Upscaler.made_by`) and the whole factor."""
        import json

        passes = [json.loads(up.made_by()) for up in self.passes]
        return json.dumps({**passes[0], "scale": self.scale, "passes": passes}, separators=(",", ":"))

    def should_band(self, height: int, width: int, stream_pixels: int | None = STREAM_PIXELS) -> bool:
        """Whether the last pass runs in bands (the passes before it run whole, in memory)."""
        for up in self.passes[:-1]:
            height, width = up.output_size(height, width)
        return self.passes[-1].should_band(height, width, stream_pixels)

    def run(self, pixels: np.ndarray, *, banded: bool = False, progress: Callable[[int, int], None] | None = None,
            spill: str | os.PathLike[str] | None = None, **_: Any) -> ChainRun:
        """The last pass's output rows (:meth:`Upscaler.run`) of the passes before it, run whole."""
        ups = []
        for up in self.passes[:-1]:
            ups.append(up.upscale_array(pixels, progress=progress))
            pixels = _hwc(ups[-1].pixels)
        return ChainRun(ups, self.passes[-1].run(pixels, banded=banded, progress=progress, spill=spill))

    def upscale_picture(self, picture: Picture, *, progress: Callable[[int, int], None] | None = None) -> tuple[Picture, Upscaled]:
        """Each pass on the picture the pass before it made (its alpha too)."""
        ups = []
        for up in self.passes:
            picture, done = up.upscale_picture(picture, progress=progress)
            ups.append(done)
        return picture, Upscaled(ups[-1].pixels, ups[-1].alpha, joined_route([u.route for u in ups]),
                                 sum(u.model_seconds for u in ups))  # fmt: skip


def chain(model: str | None, scale: float, device: Any, dtype: Any, settings: dict[str, Any],
          loaded: dict[Path, Upscaler] | None = None) -> Chain:
    """The :class:`Chain` for ``scale`` above :data:`~classsr_cli.zoo.MAX_SCALE`: ``model`` (or the default) at
    its largest scale, then the rest with the model ``-x`` with that rest would run; ``loaded`` keeps the models
    loaded (by path) for the next call."""
    from classsr_cli import zoo

    loaded = {} if loaded is None else loaded
    passes = []
    for factor in (float(zoo.MAX_SCALE), scale / zoo.MAX_SCALE):
        path = zoo.choose_model(model, factor)
        if path not in loaded:
            loaded[path] = Upscaler.of(zoo.load(model, factor, device=device, dtype=dtype), **settings)
        passes.append(loaded[path].at_scale(factor))
    return Chain(passes, scale)


class ChainRun:
    """A :class:`Chain`'s last pass in bands (:class:`PixelRun`), with the passes before it: the route and the time of
    all of them once the rows are through."""

    def __init__(self, before: list[Upscaled], last: PixelRun) -> None:
        self.before, self.last = before, last

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.last)

    @property
    def route(self) -> RouteResult:
        return joined_route([u.route for u in self.before] + [self.last.route])

    @property
    def model_seconds(self) -> float:
        return sum(u.model_seconds for u in self.before) + self.last.model_seconds


def _plus(route: RouteResult, extra: int) -> RouteResult:
    """``route`` with ``extra`` FLOPs added to what was used and to both baselines (work every method does)."""
    more = FlopsReport(extra, extra, extra)
    return replace(route, flops=route.flops + more, flops_paper=route.flops_paper + more)


def with_alpha(route: RouteResult, alpha: np.ndarray, size: tuple[int, int]) -> RouteResult:
    """``route`` with the FLOPs of :meth:`Upscaler.upscale_alpha` resizing ``alpha`` to ``size`` added (every method
    resizes it; none for a constant alpha, which is repeated)."""
    if int(alpha.min()) == int(alpha.max()):
        return route
    return _plus(route, resize_flops(alpha.shape[:2], size, channels=1))


def joined_route(routes: list[RouteResult]) -> RouteResult:
    """Several passes' routes as one: every pass's patch classes (one row; no grid to draw them on), the patches
    computed and the FLOPs summed."""
    if len(routes) == 1:
        return routes[0]
    return RouteResult(
        grid=routes[-1].grid, classes=torch.cat([r.classes.flatten() for r in routes])[None],
        computed=tuple(sum(c) for c in zip(*(r.computed for r in routes), strict=True)),
        flops=functools.reduce(operator.add, (r.flops for r in routes)),
        flops_paper=functools.reduce(operator.add, (r.flops_paper for r in routes)), passes=routes[-1].passes,
    )


@functools.lru_cache(maxsize=8)
def _sha256(path: str) -> str | None:
    """A model file's SHA-256, read once a process (every upscaler of a run, the ``at_scale`` copies too)."""
    from classsr_cli.checkpoint import file_sha256

    try:
        return file_sha256(path)
    except OSError:
        return None


def compression_note(jpeg_quality: int | None, upscaler: Upscaler) -> list[str]:
    """A note for a JPEG saved below :data:`JPEG_NOTE_BELOW` upscaled by a model its recipe says was trained on clean
    LR, which sharpens compression blocks as detail, naming the installed model trained on compressed LR; else none."""
    from classsr_cli.zoo import jpeg_model_name

    if not _compressed(jpeg_quality) or upscaler.trained_lr is None or upscaler.trained_on_jpeg:
        return []  # a model whose recipe is not known (a bare module, a converted file) is not said to sharpen them
    name = jpeg_model_name(upscaler.scale)
    if name is None:
        return []
    return [f"saved as JPEG at quality {jpeg_quality}: this model sharpens compression blocks as detail; "
            f"--model {name} is trained to leave them out"]


def noise_note(pixels: np.ndarray, upscaler: Upscaler, jpeg_quality: int | None = None, *,
               video: bool = False, palette: bool = False, codec: str | None = None) -> list[str]:
    """A note for a picture that looks noisy (:func:`~classsr_cli.metrics.noise_level` at least
    :data:`NOISE_NOTE_FROM`; for a JPEG saved below :data:`JPEG_NOTE_BELOW`, whose ``jpeg_quality`` is given, at
    least :data:`NOISE_NOTE_JPEG_FROM`; for the first frame of a ``video`` a lossy codec coded, at least
    :data:`NOISE_NOTE_VIDEO_FROM`, or its ``codec``'s :data:`NOISE_VIDEO_FROM_BY_CODEC`) upscaled by a model its
    recipe says was not trained on noisy LR, which sharpens noise as detail, naming the installed model trained on it
    (and on JPEG after it); else none. None for a
    ``palette`` picture (a GIF, a PNG-8): its dithering reads as noise, and there the noisy-input model is the worst
    choice (``scripts/dithered_gif.py``: the training photos' LR dithered to 256 colours, PSNR-Y 27.78 dB for the ×4
    default, 27.46 for the JPEG model, 27.14 for the noisy one; 53 % of them read 1 or more, 7.6 % 4 or more)."""
    from classsr_cli.zoo import noisy_model_name

    if upscaler.trained_lr is None or upscaler.trained_on_noise or palette:
        return []  # a model whose recipe is not known (a bare module, a converted file) is not said to sharpen it
    name = noisy_model_name(upscaler.scale)
    least = _video_noisy_from(codec) if video else NOISE_NOTE_JPEG_FROM if _compressed(jpeg_quality) else NOISE_NOTE_FROM
    if name is None or _noise_levels(pixels)[1] < least:
        return []
    return [f"looks noisy: this model sharpens noise as detail; --model {name} is trained to leave it out"]


def light_noise_note(pixels: np.ndarray, upscaler: Upscaler, jpeg_quality: int | None = None, *,
                     palette: bool = False, lossy: bool = False, codec: str | None = None) -> list[str]:
    """A note for a picture that looks lightly noisy (:data:`LIGHT_NOISE_FROM`; not a JPEG below
    :data:`JPEG_NOTE_BELOW`, nor a ``palette`` picture) upscaled by a model its recipe says was trained on clean LR,
    which sharpens the noise as detail, naming the installed model trained on LR saved as JPEG, which leaves light
    noise out (docs/results.md, "`--model auto`"); else none (a ``lossy`` video's first frame: its own thresholds,
    :func:`_light_noise`, up to its ``codec``'s noisy one). Asked after :func:`noise_note`."""
    from classsr_cli.zoo import jpeg_model_name

    if upscaler.trained_lr is None or upscaler.trained_on_noise or upscaler.trained_on_jpeg:
        return []
    name = jpeg_model_name(upscaler.scale)
    light = _light_noise(_noise_levels(pixels), lossy, codec)
    if name is None or palette or _compressed(jpeg_quality) or light is None:
        return []
    if _how_noisy(light, lossy) == "noisy":  # HEVC's or VP9's footage (NOISE_VIDEO_FROM_BY_CODEC)
        return [f"looks noisy: this model sharpens the noise as detail; --model {name} leaves it out"]
    return [f"looks lightly noisy: this model sharpens the noise as detail; --model {name} leaves light noise out"]


def _noise_levels(pixels: np.ndarray) -> list[float]:
    """``pixels``' noise estimate at the flattest :data:`LIGHT_NOISE_SHARE` of blocks, at the share the noise note
    reads (2 %, :func:`~classsr_cli.metrics.noise_level`'s default) and at the flattest tenth, in one pass; kept for
    the last array measured while it lives, so that ``--model auto`` and the notes measure a picture once (a picture's
    pixels are not changed in place)."""
    import weakref

    from classsr_cli.metrics import noise_levels

    global _last_levels
    if _last_levels is not None and _last_levels[0]() is pixels:
        return _last_levels[1]
    levels = noise_levels(pixels, (LIGHT_NOISE_SHARE, 0.02, 0.1))
    _last_levels = (weakref.ref(pixels), levels)
    return levels


_last_levels: tuple[Callable[[], np.ndarray | None], list[float]] | None = None


def _video_noisy_from(codec: str | None) -> float:
    """The estimate a lossy video's first frame looks noisy from, coded by ``codec`` (ffmpeg's name)."""
    return NOISE_VIDEO_FROM_BY_CODEC.get(codec or "", NOISE_NOTE_VIDEO_FROM)


def _video_light_from(codec: str | None) -> float:
    """The estimate a lossy video's first frame looks lightly noisy from, coded by ``codec`` (ffmpeg's name)."""
    return LIGHT_NOISE_VIDEO_FROM_BY_CODEC.get(codec or "", LIGHT_NOISE_VIDEO_FROM)


def _how_noisy(level: float, lossy: bool) -> str:
    """How noisy a picture whose :func:`_light_noise` is ``level`` looks: lightly, or, a ``lossy`` video's frame from
    :data:`NOISE_NOTE_VIDEO_FROM` (a codec whose footage the JPEG model still takes there,
    :data:`NOISE_VIDEO_FROM_BY_CODEC`), noisy."""
    return "noisy" if lossy and level >= NOISE_NOTE_VIDEO_FROM else "lightly noisy"


def _light_noise(levels: list[float], lossy: bool = False, codec: str | None = None) -> float | None:
    """The estimate at the flattest :data:`LIGHT_NOISE_SHARE` of blocks, from :func:`_noise_levels`' ``levels``, where
    it reads as light noise (from :data:`LIGHT_NOISE_FROM`; below :data:`NOISE_NOTE_FROM` as the noise note reads
    it), else ``None``; for a ``lossy`` video's first frame coded by ``codec``, the noise note's estimate from that
    codec's light threshold (:func:`_video_light_from`) to below where it looks noisy (:func:`_video_noisy_from`)."""
    level, noisy, tenth = levels
    if lossy:  # a lossy video's first frame: its codec smoothed the noise (NOISE_NOTE_VIDEO_FROM)
        return noisy if _video_light_from(codec) <= noisy < _video_noisy_from(codec) else None
    light = level >= LIGHT_NOISE_FROM and noisy < NOISE_NOTE_FROM and tenth <= LIGHT_NOISE_TEXTURE * level
    return level if light else None


def clean_note(pixels: np.ndarray, upscaler: Upscaler, jpeg_quality: int | None = None) -> list[str]:
    """A note for a picture that looks clean (:func:`~classsr_cli.metrics.noise_level` below
    :data:`CLEAN_NOTE_BELOW`) upscaled by a model its recipe says was trained on noisy LR, which smooths clean detail
    away (docs/results.md, "Noisy input": 0.6-2.1 dB below the defaults on clean LR); none for a JPEG saved below
    :data:`JPEG_NOTE_BELOW`, whose compression hides noise from the estimate and where that model is as good as the
    one trained on JPEG alone."""
    if not upscaler.trained_on_noise or _compressed(jpeg_quality):
        return []
    if _noise_levels(pixels)[1] >= CLEAN_NOTE_BELOW:
        return []
    return ["looks clean: this model is trained on noisy input and smooths fine detail away; the default model "
            "(without --model) keeps it"]


def suited_model(picture: Picture, scale: float) -> tuple[str | None, str]:
    """The shipped model for ``picture`` at ``scale`` that the notes would name (``--model auto``), and why: the one
    trained on noisy LR where it looks noisy (:func:`noise_note`'s test: not a palette picture), else the one trained
    on LR saved as JPEG where it is a JPEG saved below :data:`JPEG_NOTE_BELOW` (:func:`compression_note`'s) or looks
    lightly noisy (:func:`light_noise_note`'s), else ``None``: the default model. A model that is not installed is not
    chosen."""
    quality = picture.jpeg_quality
    compressed = f"saved as JPEG at quality {quality}" if _compressed(quality) else None
    least = NOISE_NOTE_JPEG_FROM if compressed else NOISE_NOTE_FROM
    palette = picture.source_mode in ("P", "PA")
    return (_auto_pick(picture.pixels, scale, least, compressed=compressed, palette=palette, subject="")
            or (None, "neither noise nor compression found"))


def suited_video_model(first: np.ndarray, scale: float, *, lossy: bool, palette: bool,
                       qp: float | None = None, codec: str | None = None) -> tuple[str | None, str]:
    """``--model auto`` for a video: the model trained on noisy LR where its ``first`` frame looks noisy, as
    :func:`noise_note` tells it (from :data:`NOISE_NOTE_VIDEO_FROM` where a ``lossy`` codec smoothed it, or that
    ``codec``'s :data:`NOISE_VIDEO_FROM_BY_CODEC`; never for a ``palette`` one: a GIF's dithering), else the one
    trained on JPEG LR where H.264 coded it at a mean ``qp`` from :data:`H264_JPEG_FROM_QP` (:func:`codec_note`'s test) or the frame looks lightly noisy
    (:func:`light_noise_note`'s), else ``None``: the default model; and why."""
    compressed = f"coded as H.264 at QP {qp:.0f}" if qp is not None and qp >= H264_JPEG_FROM_QP else None
    least = _video_noisy_from(codec) if lossy else NOISE_NOTE_FROM
    return (_auto_pick(first, scale, least, compressed=compressed, palette=palette, subject="its first frame ",
                       lossy=lossy, codec=codec)
            or (None, "its first frame shows no noise"))


def _auto_pick(pixels: np.ndarray, scale: float, least: float, *, compressed: str | None, palette: bool,
               subject: str, lossy: bool = False, codec: str | None = None) -> tuple[str, str] | None:
    """The installed model ``--model auto`` runs on ``pixels`` at ``scale`` other than the default, and why: the
    noisy-input one from ``least`` levels at the noise note's share (not for a ``palette`` picture), else the JPEG
    one where the picture was ``compressed`` (the reason) or looks lightly noisy (said of ``subject``; a ``lossy``
    video's frame as its ``codec`` smoothed it); else ``None``. The noise is measured once."""
    from classsr_cli.zoo import MAX_SCALE, jpeg_model_name, noisy_model_name

    native = min(scale, MAX_SCALE)  # a factor above it: the first pass, which meets the picture
    if palette:
        return None
    levels = _noise_levels(pixels)
    if (noisy := noisy_model_name(native)) is not None and levels[1] >= least:
        return noisy, f"looks noisy: its noise estimate is {levels[1]:.1f} levels"
    if (jpeg := jpeg_model_name(native)) is None:
        return None
    if compressed is not None:
        return jpeg, compressed
    if (light := _light_noise(levels, lossy, codec)) is not None:
        return jpeg, f"{subject}looks {_how_noisy(light, lossy)}: its noise estimate is {light:.1f} levels"
    return None


def codec_note(read_qp: Callable[[], float | None], upscaler: Upscaler) -> list[str]:
    """A note for an H.264 video coded at a mean QP (``read_qp()``, :func:`~classsr_cli.io.video.h264_qp`; read only
    where the note could fire) from :data:`H264_JPEG_FROM_QP` upscaled by a model its recipe says was trained on clean
    LR, which sharpens the codec's blocks as detail, naming the installed model trained on LR saved as JPEG; else none
    (QP ``None``: another codec, on whose footage that model gained nothing clean; docs/results.md, "`--model
    auto`"). Asked after :func:`noise_note`."""
    from classsr_cli.zoo import jpeg_model_name

    if upscaler.trained_lr is None or upscaler.trained_on_noise or upscaler.trained_on_jpeg:
        return []
    name = jpeg_model_name(upscaler.scale)
    if name is None or (qp := read_qp()) is None or qp < H264_JPEG_FROM_QP:
        return []
    return [f"coded as H.264 at QP {qp:.0f}: this model sharpens the codec's blocks as detail; --model {name} is "
            "trained to leave them out"]


class AutoModel:
    """``--model auto``: for each picture, the model :func:`suited_model` names for it, made by ``make`` (a model name,
    ``None`` for the default, to what a run with that ``--model`` would use: an :class:`Upscaler`, a :class:`Chain`,
    or a function of the picture's size) once and kept; ``scale_of`` gives a picture's factor from its size and
    name (an output size's; else the run's ``-x``)."""

    def __init__(self, make: Callable[[str | None], Any], scale_of: Callable[[int, int, str], float]) -> None:
        self.make, self.scale_of = make, scale_of
        self.made: dict[str | None, Any] = {}

    def model(self, name: str | None) -> Any:
        if name not in self.made:
            self.made[name] = self.make(name)
        return self.made[name]

    def pick(self, picture: Picture, source: str) -> tuple[Any, str]:
        """The upscaler for ``picture`` (read from ``source``), and the note that says which and why."""
        name, why = suited_model(picture, self.scale_of(picture.height, picture.width, source))
        return self.model(name), f"--model auto: {name or 'the default model'} ({why})"


def _compressed(jpeg_quality: int | None) -> bool:
    """Whether a picture is a JPEG saved below :data:`JPEG_NOTE_BELOW` (``jpeg_quality`` ``None``: not a JPEG), which
    the notes on compression and noise treat as compressed."""
    return jpeg_quality is not None and jpeg_quality < JPEG_NOTE_BELOW


def fill_hidden(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` ``pixels`` with the colour under full transparency (alpha 0) replaced by the visible colour
    around it, so that upscaling them does not bleed a hidden colour into the visible edges (a grey ring round a
    white logo saved on transparent black). Every pixel with some alpha keeps its colour (a shadow at alpha 80 stays
    black); an image with nothing visible is returned as it is. The fill is push-pull: averages weighted by alpha
    over halving scales, each level composited over the bilinear upsampling of the coarser. Alpha is not touched."""
    if not alpha.any() or alpha.all():
        return pixels
    top = float(np.iinfo(pixels.dtype).max)
    a = torch.from_numpy(alpha.astype(np.float32) / float(np.iinfo(alpha.dtype).max))[None, None]
    c = torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].contiguous().float().mul_(a)  # premultiplied
    hidden = a[0, 0] == 0
    levels = [(c, a)]
    while max(c.shape[2:]) > 1:
        c, a = (F.avg_pool2d(t, 2, ceil_mode=True) for t in (c, a))
        levels.append((c, a))
    c, a = levels.pop()
    fill = c / a.clamp_min(1e-12)  # the average visible colour (zero in an image with nothing visible)
    for c, a in reversed(levels[1:]):
        fill = torch.addcmul(c, 1 - a, F.interpolate(fill, size=c.shape[2:], mode="bilinear", align_corners=False))
    fill = F.interpolate(fill, size=hidden.shape, mode="bilinear", align_corners=False)[0]
    out = np.array(pixels)  # a copy, writable whatever the caller's array was
    out[hidden.numpy()] = fill.clamp_(0, top).round_().permute(1, 2, 0)[hidden].numpy().astype(pixels.dtype)
    return out


def _hwc(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as ``(H, W, C)`` (gray ``(H, W)`` gets its channel axis), checked: C 1 or 3, uint8 or uint16, at
    least 1x1; an :class:`InputError` otherwise."""
    if not isinstance(pixels, np.ndarray):  # a PIL image, a tensor, a list: numpy's view of it is the caller's
        raise InputError(f"expected a numpy array of pixels, got {type(pixels).__name__} (np.asarray(image) gives "
                         "one for a PIL image)")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if (pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.dtype not in (np.uint8, np.uint16)
            or 0 in pixels.shape):
        raise InputError(f"expected (H, W), (H, W, 1) or (H, W, 3) uint8/uint16 pixels, at least 1x1, got "
                         f"{pixels.shape} {pixels.dtype}")
    return pixels


def _luma(sr: torch.Tensor) -> torch.Tensor:
    r, g, b = _LUMA
    return r * sr[:, 0:1] + g * sr[:, 1:2] + b * sr[:, 2:3]


def _to_tensor(arr: np.ndarray, device: torch.device, top: float) -> torch.Tensor:
    """uint8/uint16 array -> float32 tensor in [0, 1] on ``device`` (8-bit data crosses as bytes)."""
    if arr.dtype == np.uint8:
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy()).to(device)
    else:  # uint16 to float32 on the CPU in one pass (the devices' uint16 support varies), then across
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy()).to(torch.float32).to(device)
    return t.float().div_(top)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of ``(N, C, H, W)`` float (on the CPU if the device lacks the kernel)."""
    try:
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    except (RuntimeError, NotImplementedError):
        y = F.interpolate(x.cpu(), size=size, mode="bicubic", align_corners=False, antialias=True)
        return y.to(x.device)


#: Half precisions by the name --precision gives them (for :class:`PrecisionError`).
_PRECISION = {torch.float16: "fp16", torch.bfloat16: "bf16"}


def _quantise(
    x: torch.Tensor, top: float, dtype: np.dtype[Any] | type, *, inplace: bool = False, out: np.ndarray | None = None
) -> np.ndarray:
    """Float in [0, 1] -> rounded integers (on the device), then to numpy ``dtype``; C-contiguous whatever the
    strides of ``x`` (an HWC view of a CHW frame is transposed in the conversion pass, not in a copy after it).
    ``inplace``: ``x`` is scratch (nothing reads it after), so the scaling reuses its memory instead of a frame-sized
    buffer: about 40 ms less for a 4096x3200 output on this 2-core CPU (docs/experiments.md). ``out``: a
    C-contiguous array of ``x``'s shape and ``dtype`` to write into, returned. On the CPU the rounded values are
    copied into the array in one pass, 16-bit too (not through int32 and a second copy)."""
    q = (x.mul_(top) if inplace else x.mul(top)).clamp_(0, top).round_()  # = round(clamp(x, 0, 1) * top)
    if q.device.type == "cpu":
        dst = np.empty(q.shape, dtype) if out is None else out
        try:
            torch.from_numpy(dst).copy_(q)  # one pass, into the array itself
            return dst
        except (RuntimeError, TypeError):  # a torch that cannot copy into uint16 (before 2.3): through int32
            pass
    got = torch.empty(q.shape, dtype=torch.uint8 if top == 255 else torch.int32, device=q.device)
    arr = got.copy_(q).cpu().numpy().astype(dtype, copy=False)
    if out is None:
        return arr
    out[...] = arr
    return out


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
    chained: bool = False  # two passes (a Chain): their patches on no one grid
    #: A DDS cube map's or texture array's faces' routes (a stereo pair's views'), the first face's first (``route``:
    #: all of them together), and the LR texels of its neighbours each face was grown by (:data:`CUBE_PAD`; 0: none).
    face_routes: tuple[RouteResult, ...] = ()
    face_pad: int = 0
    stops: int | None = None  # linear light (OpenEXR, Radiance HDR): the stops darker it was upscaled at
    #: A 360° panorama's LR columns of its other side grown on each side (:data:`WRAP_PAD`; 0: none).
    wrap_pad: int = 0

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.route.counts

    def to_dict(self, *, routing: bool = False) -> dict[str, Any]:
        """The JSON record; ``routing`` adds the class of every patch (:meth:`RouteResult.routing`)."""
        light, medium, heavy = self.counts
        record: dict[str, Any] = {
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
            "tta": self.route.passes,
            "seconds": round(self.seconds, 4),
            "model_seconds": round(self.model_seconds, 4),
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "notes": list(self.notes),
        }
        if self.stops is not None:
            record["stops"] = self.stops
        if routing:
            record["routing"] = None if self.chained else self.route.routing()  # a grid of each pass's: not one
            if self.wrap_pad and record["routing"] is not None:  # its grid starts that far left of the picture
                record["routing"]["wrap"] = self.wrap_pad
            if self.face_routes and not self.chained:  # the first face's grid; the others' under "faces"
                pad = {"pad": self.face_pad} if self.face_pad else {}  # each face's grid starts that far before it
                record["routing"] = {**self.face_routes[0].routing(), **pad,
                                     "faces": [{**r.routing(), **pad} for r in self.face_routes[1:]]}
        return record


#: LR texels of its neighbours grown around each face of a DDS cube map before it is upscaled (then cropped): alone,
#: a face's border sees only its own pixels, and a seam shows where faces meet (the step across a cut 2.3-2.6x the
#: picture's own); from 8 the step is the picture's own (docs/experiments.md, "Added: cube map faces upscaled
#: with their neighbours' texels").
CUBE_PAD = 16


#: LR columns of its other side grown on each side of a frame whose left and right edges meet (a 360° panorama or
#: video, equirectangular) before it is upscaled (then cropped): alone, each edge sees only its own pixels, and a
#: seam shows where they meet, behind the viewer (docs/experiments.md, "Added: 360° panoramas upscaled round").
WRAP_PAD = 16


def wrap_cut(upscaler: Upscaler | Chain, height: int, width: int, eyes: int = 1) -> int | None:
    """The output columns a ``height`` x ``width`` frame grown by :data:`WRAP_PAD` columns on each side gains on each
    side, where they are whole and the frame's own output lies exactly inside (as :func:`_cube_cut`); ``None`` there,
    or for a frame too narrow to wrap. ``eyes`` (2: a side-by-side stereo frame): each eye's columns, side by side,
    grown alike (:func:`wrapped`); ``None`` for a width they do not share equally."""
    if width % eyes:
        return None
    width //= eyes
    return _grown_cut(upscaler, height, width, WRAP_PAD) if width > WRAP_PAD else None


def _grown_cut(upscaler: Upscaler | Chain, height: int, width: int, pad: int) -> int | None:
    """The output columns ``width`` columns grown by ``pad`` on each side gain on each side, where they are whole and
    the picture's own output lies exactly inside (any integer factor; not a factor such as 1.3, whose resampling would
    fall between pixels); ``None`` there."""
    out, grown = upscaler.output_size(height, width)[1], upscaler.output_size(height, width + 2 * pad)[1]
    cut, odd = divmod(grown - out, 2)
    return cut if not odd and cut * width == pad * out else None


def wrapped(a: np.ndarray, eyes: int = 1) -> np.ndarray:
    """``a`` (rows first) with :data:`WRAP_PAD` columns of its other side on each side; ``eyes`` (2: a side-by-side
    stereo frame): each eye's own columns grown alike, the grown eyes side by side (:func:`unwrapped_columns`)."""
    return np.ascontiguousarray(np.concatenate(
        [part for eye in np.split(a, eyes, axis=1) for part in (eye[:, -WRAP_PAD:], eye, eye[:, :WRAP_PAD])], axis=1))


def apart_cut(upscaler: Upscaler | Chain, height: int, width: int, axis: int) -> int | None:
    """The output rows (``axis`` 0: a top-and-bottom stereo frame) or columns (1: a side-by-side one) a ``height`` x
    ``width`` frame's two eyes gain on each side of where they meet, each grown there by :data:`WRAP_PAD` of its own
    rows (columns) mirrored (:func:`apart`), where they are whole and each eye's output lies exactly inside (as :func:`wrap_cut`);
    ``None`` there, or for an odd or too short side."""
    size, other = (height, width) if axis == 0 else (width, height)
    if size % 2 or size // 2 <= WRAP_PAD:
        return None
    return _grown_cut(upscaler, other, size // 2, WRAP_PAD)


def apart(a: np.ndarray, axis: int) -> np.ndarray:
    """A stereo frame ``a`` (rows first; its eyes top and bottom, ``axis`` 0, or side by side, 1: an even count) with
    each eye grown by :data:`WRAP_PAD` rows (columns) where they meet, its own last (first) ones mirrored: each eye's
    cells there see its own content, not the other eye's opposite side (:func:`kept`). Mirrored: against the HR
    photo, closer to an eye upscaled alone than copies of its edge (docs/experiments.md, "Fixed: a stereo video's
    eyes kept apart where they meet")."""
    first, second = np.split(a, 2, axis=axis)
    n = first.shape[axis]
    grown = [np.take(first, np.arange(n - 1, n - 1 - WRAP_PAD, -1), axis=axis),
             np.take(second, np.arange(WRAP_PAD - 1, -1, -1), axis=axis)]  # fmt: skip
    return np.ascontiguousarray(np.concatenate([first, *grown, second], axis=axis))


def kept(cut: int, size: int) -> np.ndarray:
    """Which output rows (columns) of a frame grown by :func:`apart` are the frame's own ``size`` (as upscaled, an even
    count or one less): ``cut`` (:func:`apart_cut`) left out on each side of where the eyes meet."""
    eye = -(-size // 2)
    return np.concatenate([np.arange(eye), np.arange(eye + 2 * cut, 2 * eye + 2 * cut)])[:size]


def unwrapped_columns(cut: int, width: int, eyes: int = 1) -> slice | np.ndarray:
    """Which output columns of a frame grown by :func:`wrapped` are the frame's own ``width`` (as upscaled): ``cut``
    (:func:`wrap_cut`) columns left out on each side of each eye."""
    if eyes == 1:
        return slice(cut, cut + width)
    eye = -(-width // eyes)  # (an even output, one column less than the eyes': the last eye's last left out)
    return np.concatenate([np.arange(k * (eye + 2 * cut) + cut, k * (eye + 2 * cut) + cut + eye)
                           for k in range(eyes)])[:width]  # fmt: skip


def _cube_cut(upscaler: Upscaler | Chain, size: int) -> int | None:
    """The output pixels a cube map face of ``size`` grown by :data:`CUBE_PAD` gains on each side, where they are
    whole and the face's own output lies exactly inside (any integer factor; not a factor such as 1.3, whose
    resampling would fall between pixels): ``None`` there, the faces then upscaled alone."""
    return _grown_cut(upscaler, size, size, CUBE_PAD)  # (a square face: its rows grow as its columns)


def _views(picture: Picture) -> tuple[tuple[np.ndarray, np.ndarray | None], ...]:
    """A stereo pair's other views (an MPO's, a spatial HEIC's) as faces: ``(pixels, alpha)``, no alpha."""
    return tuple((view, None) for view in picture.stereo.views) if picture.stereo is not None else ()


def _upscale_faces(upscaler: Upscaler | Chain, picture: Picture, progress: Callable[[int, int], None] | None = None,
                   ) -> tuple[Picture, Upscaled, tuple[RouteResult, ...], int, np.ndarray]:
    """``picture`` (a DDS cube map's or texture array's first face, :attr:`Picture.texture` its other faces; a stereo
    pair's first view, :attr:`Picture.stereo` its others) with every face upscaled, each a picture of its own; a cube
    map's six faces (each cube's of a cube map array) each grown by :data:`CUBE_PAD` texels of the faces it meets
    (:func:`~classsr_cli.io.dds.cube_neighbours`), then cropped, so that no seam shows where they meet. Returns the upscaled picture, what upscaling it did (every face's routes and time together), each face's
    route, the output pixels cropped from each side (0: none) and the first face's output before the crop.
    ``progress`` counts every face's work: face ``k`` of ``n`` reports ``k * total + done`` of ``n * total``."""
    texture = picture.texture
    faces = [(picture.pixels, picture.alpha), *(texture.faces if texture is not None else _views(picture))]
    size = picture.pixels.shape[0]
    square = all(px.shape[:2] == (size, size) for px, _ in faces)
    cube = texture is not None and texture.layout == "cube map" and len(faces) % 6 == 0 and square  # (or an array)
    cut = _cube_cut(upscaler, size) if cube else None
    if cut is not None:
        colour = np.stack([px for px, _ in faces])
        alphas = [a if a is not None else np.full(px.shape[:2], np.iinfo(px.dtype).max, px.dtype) for px, a in faces]
        alpha = np.stack(alphas) if any(a is not None for _, a in faces) else None
        grown = list(dds.cube_neighbours(size, CUBE_PAD))
        at = [(first + face, row, column) for first in range(0, len(faces), 6) for face, row, column in grown]
        faces = [(colour[k], None if alpha is None else alpha[k]) for k in at]
    cut = cut or 0
    done: list[tuple[Picture, Upscaled]] = []
    for k, (pixels, alpha_k) in enumerate(faces):
        counted = None if progress is None else (
            lambda d, total, k=k: progress(k * total + d, len(faces) * total))  # fmt: skip
        done.append(upscaler.upscale_picture(Picture(pixels=pixels, alpha=alpha_k), progress=counted))

    def inside(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[cut:a.shape[0] - cut, cut:a.shape[1] - cut]) if cut else a

    ups = [(inside(face.pixels), None if face.alpha is None else inside(face.alpha)) for face, _ in done]
    (first_pixels, first_alpha), others = ups[0], tuple(ups[1:])
    out = replace(picture, pixels=first_pixels, alpha=first_alpha, notes=[],
                  **({"texture": replace(texture, faces=others)} if texture is not None else
                     {"stereo": picture.stereo and picture.stereo.with_views(px for px, _ in others)}))  # fmt: skip
    routes = tuple(up.route for _, up in done)
    both = Upscaled(first_pixels, first_alpha, joined_route(list(routes)), sum(up.model_seconds for _, up in done))
    return out, both, routes, cut, done[0][0].pixels


def upscale_file(
    upscaler: Upscaler | Chain | Callable[[int, int, str], Upscaler | Chain] | AutoModel,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    classmap: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
    stream_pixels: int | None = STREAM_PIXELS,
    quality: int | None = None,
    strip_metadata: bool = False,
) -> ImageResult:
    """Read ``src``, upscale it, write ``dst`` (and the class map to ``classmap``); nothing partial is left.
    ``quality``: JPEG's, WebP's, AVIF's, HEIC's and JPEG XL's (:func:`~classsr_cli.io.image.write_image`). The output carries the input's
    metadata and a record of how it was made (:meth:`Upscaler.made_by`), or, with ``strip_metadata``, only its ICC
    profile and print size (:meth:`~classsr_cli.io.image.Picture.stripped`).

    ``upscaler`` may be a :class:`Chain` (a factor above the largest native one), a function of the input's
    ``(height, width, path)`` that gives the upscaler for it (an output size asked for,
    :class:`~classsr_cli.zoo.OutputSize`), or an :class:`AutoModel`, which picks the model by the picture. Outputs of ``stream_pixels`` or more (``None``:
    never) are computed and written in bands
    (:meth:`Upscaler.should_band`) when there is no alpha and no class map: the same pixels in bounded memory.

    Raises :class:`InputError` for an unreadable input, :class:`OutputExistsError` for an existing output
    without ``overwrite``, :class:`ConfigError` for an output suffix classsr cannot write.
    """
    from classsr_cli.io.image import check_output_size, output_format

    try:
        src, dst = Path(src), Path(dst)
        output_format(dst)
        start = time.perf_counter()
        picture = read_image(src, max_pixels=max_pixels)
        if isinstance(upscaler, AutoModel):
            picked, chosen = upscaler.pick(picture, str(src))
            picture = replace(picture, notes=[*picture.notes, chosen])
        else:
            picked = upscaler
        upscaler = picked if isinstance(picked, Upscaler | Chain) else picked(picture.height, picture.width, str(src))
        picture = picture.stripped() if strip_metadata else replace(picture, made_by=upscaler.made_by())
        oh, ow = upscaler.enlarged(picture.height, picture.width, src)
        check_output_size(dst, oh, ow)
        first = upscaler.passes[0] if isinstance(upscaler, Chain) else upscaler  # what meets the input
        if isinstance(upscaler, Chain) and classmap is not None:
            from classsr_cli.zoo import factor_text

            raise InputError(f"{src}: {factor_text(upscaler.scale)} is two passes, whose patches differ: --classmap "
                             "draws one run's (x4 or less)")
        palette = picture.source_mode in ("P", "PA")
        about = (noise_note(picture.pixels, first, picture.jpeg_quality, palette=palette)
                 or compression_note(picture.jpeg_quality, first)
                 or light_noise_note(picture.pixels, first, picture.jpeg_quality, palette=palette)
                 or clean_note(picture.pixels, first, picture.jpeg_quality))
        picture = replace(picture, notes=[*picture.notes, *about])
        # a DDS cube map's or array's other faces, a stereo pair's other views
        faces = picture.texture.faces if picture.texture is not None else _views(picture)
        # a 360° panorama: grown by the columns of its other side, so that no seam shows where its edges meet
        wrap = wrap_cut(upscaler, picture.height, picture.width) if full_circle(picture.xmp) and not faces else None
        if (upscaler.should_band(picture.height, picture.width, stream_pixels) and classmap is None
                and picture.alpha is None and not faces):
            run = upscaler.run(wrapped(picture.pixels) if wrap else picture.pixels, banded=True, progress=progress,
                               spill=dst.parent)  # fmt: skip
            rows: Iterable[np.ndarray] = (band[:, wrap : wrap + ow] for band in run) if wrap else run
            if upscaler.tta > 1:
                picture = replace(picture, notes=[*picture.notes, (
                    f"--tta {upscaler.tta}: its passes averaged in a temporary file of about "
                    f"{12 * oh * ow / 2**30:.1f} GiB beside the output")])
            notes = list(picture.notes) + write_image_rows(
                dst, (oh, ow), picture.pixels.shape[2], picture.pixels.dtype, rows,
                meta=picture.carried(), overwrite=overwrite, quality=quality,
            )
            return ImageResult(
                input=src, output=dst, classmap=None, scale=upscaler.scale, model_scale=upscaler.model_scale,
                model=upscaler.model_path, size_in=(picture.width, picture.height), size_out=(ow, oh),
                mode=picture.mode, bits=picture.bits, route=run.route, seconds=time.perf_counter() - start,
                model_seconds=run.model_seconds, device=str(upscaler.device), dtype=str(upscaler.dtype),
                notes=[*notes, f"{ow}x{oh} output computed and written in bands of rows"],
                chained=isinstance(upscaler, Chain), stops=picture.linear.stops if picture.linear else None,
                wrap_pad=WRAP_PAD if wrap else 0,
            )
        if upscaler.tta > 1 and upscaler.should_band(picture.height, picture.width, stream_pixels):
            why = "a class map" if classmap is not None else "an alpha channel"
            picture = replace(picture, notes=[*picture.notes, (
                f"--tta {upscaler.tta} holds the whole {ow}x{oh} output in memory to average its passes (about "
                f"{12 * oh * ow / 2**30:.1f} GiB): with {why} it is not written in bands of rows")])
        face_routes: tuple[RouteResult, ...] = ()
        if faces:  # a DDS cube map's or texture array's faces (a cube map's grown by its neighbours'), a pair's views
            out, up, face_routes, cut, drawn_on = _upscale_faces(upscaler, picture, progress)
        elif wrap:
            grown = replace(picture, pixels=wrapped(picture.pixels),
                            alpha=None if picture.alpha is None else wrapped(picture.alpha))  # fmt: skip
            out, up = upscaler.upscale_picture(grown, progress=progress)
            drawn_on = out.pixels
            inner = slice(wrap, out.pixels.shape[1] - wrap)
            out = replace(out, pixels=np.ascontiguousarray(out.pixels[:, inner]),
                          alpha=None if out.alpha is None else np.ascontiguousarray(out.alpha[:, inner]))  # fmt: skip
            up = replace(up, pixels=out.pixels, alpha=out.alpha)
            cut = 0
        else:
            out, up = upscaler.upscale_picture(picture, progress=progress)
            cut, drawn_on = 0, out.pixels
        notes = list(picture.notes) + write_image(dst, out, overwrite=overwrite, quality=quality)
        if classmap is not None:
            from classsr_cli.io.classmap import render_classmap

            drawn = face_routes[0] if face_routes else up.route  # the first face's patches, before its crop
            rgb = np.repeat(drawn_on, 3, axis=2) if drawn_on.shape[2] == 1 else drawn_on  # tint takes 16 bits
            grid = drawn.grid
            img = render_classmap(rgb, drawn.classes.numpy(), grid.step, (grid.height, grid.width), crop=cut)
            if wrap:
                img = np.ascontiguousarray(img[:, wrap : img.shape[1] - wrap])
            write_image(Path(classmap), Picture(pixels=img), overwrite=overwrite)
        return ImageResult(
            input=src, output=dst, classmap=Path(classmap) if classmap is not None else None,
            scale=upscaler.scale, model_scale=upscaler.model_scale, model=upscaler.model_path,
            size_in=(picture.width, picture.height), size_out=(out.width, out.height),
            mode=out.mode, bits=out.bits, route=up.route, seconds=time.perf_counter() - start,
            model_seconds=up.model_seconds, device=str(upscaler.device), dtype=str(upscaler.dtype), notes=notes,
            chained=isinstance(upscaler, Chain), stops=picture.linear.stops if picture.linear else None,
            face_routes=face_routes, face_pad=CUBE_PAD if cut else 0, wrap_pad=WRAP_PAD if wrap else 0,
        )
    finally:
        bound_freed_memory()  # a no-op unless the process keeps freed memory, as the CLI does
