"""Video upscaling: decode -> tile -> classify (with temporal hysteresis) -> routed branches -> stitch -> encode.

One stream from the decoder's pipe to the encoder's pipe (:mod:`classsr_cli.io.video`); memory is bounded by a
few frames whatever the length. Patches of several frames go through the model together when a frame alone
would not fill ``batch_size``.

Two temporal features, both counted in :class:`VideoResult`:

* **Hysteresis** (always on unless ``hysteresis=0``): a patch keeps the class it had in the previous frame unless
  the classifier's probability for the new class beats the kept class's by at least ``hysteresis``. Static
  content then stops flickering between branches on encoder noise, while real content changes, which move the
  probabilities by far more, still switch.
* **Reuse** (``reuse=True``): a patch whose LR pixels differ from those it was last computed from by at most
  ``reuse_threshold`` 8-bit levels (max absolute difference; 0 = exactly unchanged) keeps its previous HR output:
  neither the classifier nor a branch runs on it. Comparing against the pixels the output was computed from,
  not the previous frame, keeps slow drifts from accumulating.

Knows nothing about the CLI; progress is reported through an optional callback.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classsr_cli.engine import DEFAULT_BLEND, DEFAULT_STEP
from classsr_cli.errors import InputError, OutputExistsError, VideoError
from classsr_cli.flops import FlopsReport, model_flops
from classsr_cli.io.video import (
    EncodeOptions,
    Frame,
    VideoInfo,
    VideoReader,
    VideoWriter,
    container_of,
    plan_streams,
    probe,
)
from classsr_cli.models.classsr import ClassSR
from classsr_cli.stitching import stitch
from classsr_cli.tiling import TileGrid, extract_patches, plan_grid

__all__ = ["CLASS_COLORS", "TemporalOptions", "VideoResult", "classmap_path", "upscale_video"]

#: Tint of each class in ``--classmap`` videos: light green, medium yellow, heavy red.
CLASS_COLORS = ((0, 200, 0), (255, 210, 0), (230, 0, 0))
_TINT = 0.45

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class TemporalOptions:
    """Temporal routing.

    Attributes:
        hysteresis: probability margin a new class needs over the patch's current class to take over (0: plain
            argmax every frame).
        reuse: reuse the HR output of patches that did not change.
        reuse_threshold: largest per-pixel difference (8-bit levels) that still counts as unchanged.
    """

    hysteresis: float = 0.1
    reuse: bool = False
    reuse_threshold: int = 0


@dataclass
class VideoResult:
    """What one video run did.

    Attributes:
        frames: frames decoded, upscaled and written.
        seconds: wall time of the whole run.
        counts: patches per class over all frames (a reused patch counts in the class it keeps).
        computed: patches that went through the classifier and a branch (the others were reused).
        reused: patches whose previous output was reused.
        held: patches that hysteresis kept in their class against the classifier's argmax.
        switches: patches whose class differs from the same patch's in the previous frame.
        switches_argmax: the same count for the raw argmax (what the routing would do without hysteresis).
        compared: patches that had a previous frame (the denominator of the switch shares).
        flops, flops_paper: FLOPs spent against heavy-only on every patch (real and paper convention).
        lost: set when the source could not be decoded to its end; says what was lost.
        notes: streams re-encoded or dropped on the way.
    """

    input: Path
    output: Path
    frames: int
    seconds: float
    width: int
    height: int
    scale: int
    source_fps: float | None
    counts: tuple[int, int, int]
    computed: int
    reused: int
    held: int
    switches: int
    switches_argmax: int
    compared: int
    flops: FlopsReport
    flops_paper: FlopsReport
    temporal: TemporalOptions
    frames_per_batch: int
    classmap: Path | None = None
    lost: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def patches(self) -> int:
        return sum(self.counts)

    @property
    def fps(self) -> float:
        """Throughput: frames per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def _share(self, n: int, of: int) -> float:
        return round(n / of, 6) if of else 0.0

    def to_dict(self) -> dict[str, Any]:
        names = ("light", "medium", "heavy")
        return {
            "input": str(self.input),
            "output": str(self.output),
            "classmap": str(self.classmap) if self.classmap else None,
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "seconds": round(self.seconds, 3),
            "size": [self.width, self.height],
            "output_size": [self.width * self.scale, self.height * self.scale],
            "source_fps": self.source_fps,
            "patches": {**dict(zip(names, self.counts, strict=True)), "total": self.patches},
            "flops": {"real": self.flops.to_dict(), "paper": self.flops_paper.to_dict()},
            "temporal": {
                "hysteresis": self.temporal.hysteresis,
                "held": self.held,
                "held_share": self._share(self.held, self.patches),
                "switches": self.switches,
                "switch_share": self._share(self.switches, self.compared),
                "switches_argmax": self.switches_argmax,
                "switch_share_argmax": self._share(self.switches_argmax, self.compared),
                "reuse": self.temporal.reuse,
                "reuse_threshold": self.temporal.reuse_threshold,
                "reused": self.reused,
                "reused_share": self._share(self.reused, self.patches),
                "computed": self.computed,
            },
            "frames_per_batch": self.frames_per_batch,
            "lost": self.lost,
            "notes": list(self.notes),
        }


def classmap_path(output: str | os.PathLike[str]) -> Path:
    """Where ``--classmap`` writes its video: ``out.classmap.mp4`` beside ``out.mp4``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.classmap{output.suffix}")


class _Router:
    """Per-patch temporal state: classes, the LR pixels each output was computed from, and those outputs."""

    def __init__(self, model: ClassSR, grid: TileGrid, temporal: TemporalOptions, batch_size: int) -> None:
        self.model, self.grid, self.opts, self.batch_size = model, grid, temporal, batch_size
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        n = grid.count
        self.cls = torch.full((n,), -1, dtype=torch.long, device=self.device)
        self.argmax = torch.full((n,), -1, dtype=torch.long, device=self.device)
        self.ref_lr: torch.Tensor | None = None
        self.ref_out: torch.Tensor | None = None
        mf, mp = model_flops(model, "real"), model_flops(model, "paper")
        self._flops = (mf, mp)
        self.counts = [0, 0, 0]
        self.computed_per_class = [0, 0, 0]
        self.reused = self.held = self.switches = self.switches_argmax = self.compared = 0
        self.frames = 0

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            return x.new_zeros((0, 3))
        chunks = [torch.softmax(self.model.classifier(c), dim=1) for c in x.split(max(self.batch_size, 1024))]
        return torch.cat(chunks).float()

    def run(self, patches: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Route ``(K, n, 3, p, p)`` LR patches (0..255 floats) of K consecutive frames.

        Returns, per frame, ``(hr_patches (n, 3, sp, sp), classes (n,))``.
        """
        k, n = patches.shape[:2]
        todo: list[torch.Tensor] = []
        for t in range(k):
            if self.opts.reuse and self.ref_lr is not None:
                diff = (patches[t] - self.ref_lr).abs().amax(dim=(1, 2, 3))
                idx = (diff > self.opts.reuse_threshold).nonzero(as_tuple=True)[0]
            else:
                idx = torch.arange(n, device=patches.device)
            if self.opts.reuse:
                if self.ref_lr is None:
                    self.ref_lr = patches[t].clone()
                else:
                    self.ref_lr[idx] = patches[t][idx]
            todo.append(idx)
        x = torch.cat([patches[t][idx] for t, idx in enumerate(todo)]).to(self.dtype).div_(255)
        probs = self._probs(x)
        classes_all = torch.empty(x.shape[0], dtype=torch.long, device=self.device)
        per_frame_classes = []
        start = 0
        for idx in todo:
            m = idx.numel()
            classes_all[start : start + m] = self._hysteresis(idx, probs[start : start + m], n)
            per_frame_classes.append(self.cls.clone())
            start += m
        out, _ = self.model.forward_routed(x, batch_size=self.batch_size, classes=classes_all)
        results = []
        start = 0
        for idx, classes in zip(todo, per_frame_classes, strict=True):
            m = idx.numel()
            if m == n and not self.opts.reuse:
                hr = out[start : start + m]
            else:
                if self.ref_out is None:
                    self.ref_out = out.new_empty((n, *out.shape[1:]))
                self.ref_out[idx] = out[start : start + m]
                hr = self.ref_out.clone() if self.opts.reuse else self.ref_out
            results.append((hr, classes))
            self._count(classes, classes_all[start : start + m], n - m)
            start += m
        return results

    def _hysteresis(self, idx: torch.Tensor, probs: torch.Tensor, n: int) -> torch.Tensor:
        arg = probs.argmax(1)
        prev = self.cls[idx]
        new = arg
        seen = prev >= 0
        margin = self.opts.hysteresis
        if margin > 0 and bool(seen.any()):
            gain = probs.gather(1, arg[:, None])[:, 0] - probs.gather(1, prev.clamp(min=0)[:, None])[:, 0]
            new = torch.where(seen & (gain < margin), prev, arg)
            self.held += int((new != arg).sum())
        if self.frames > 0:
            self.compared += n
            self.switches += int((new != prev)[seen].sum())
            prev_arg = self.argmax[idx]
            self.switches_argmax += int((arg != prev_arg)[prev_arg >= 0].sum())
        self.cls[idx] = new
        self.argmax[idx] = arg
        self.frames += 1
        return new

    def _count(self, classes: torch.Tensor, computed: torch.Tensor, reused: int) -> None:
        for c, v in enumerate(torch.bincount(classes, minlength=3).tolist()):
            self.counts[c] += int(v)
        for c, v in enumerate(torch.bincount(computed, minlength=3).tolist()):
            self.computed_per_class[c] += int(v)
        self.reused += reused

    def flops(self, convention: int) -> FlopsReport:
        mf = self._flops[convention]
        computed = sum(self.computed_per_class)
        used = (
            sum(c * f for c, f in zip(self.computed_per_class, mf.branches, strict=True))
            + computed * mf.classifier
        )
        total = sum(self.counts)
        pixels = self.grid.height * self.grid.width * self.frames
        return FlopsReport(used=used, heavy=total * mf.branches[2], whole=round(mf.per_pixel(2) * pixels))


def _to_uint8(sr: torch.Tensor) -> np.ndarray:
    return sr[0].clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def _classmap_frame(hr: np.ndarray, classes: torch.Tensor, grid: TileGrid, scale: int) -> np.ndarray:
    """``hr`` with each patch's cell (``step x step`` LR pixels) tinted by its class."""
    h, w = hr.shape[:2]
    cell = grid.step * scale
    ry = (torch.arange(h) // cell).clamp(max=grid.rows - 1)
    rx = (torch.arange(w) // cell).clamp(max=grid.cols - 1)
    cmap = classes.cpu().view(grid.rows, grid.cols)[ry][:, rx]
    colors = torch.tensor(CLASS_COLORS, dtype=torch.float32)[cmap]
    tinted = torch.from_numpy(hr).float() * (1 - _TINT) + colors * _TINT
    return tinted.round().clamp(0, 255).to(torch.uint8).numpy()


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{secrets.token_hex(4)}.partial{target.suffix}")


def _check_paths(src: Path, dst: Path, classmap: Path | None, overwrite: bool) -> None:
    for out in (dst, classmap):
        if out is None:
            continue
        container_of(out)
        if out.resolve() == src.resolve():
            raise InputError(f"{out}: output and input are the same file")
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out}: exists; pass --overwrite to replace it")
        if out.exists() and out.is_dir():
            raise OutputExistsError(f"{out}: is a folder")


def _lost_message(info: VideoInfo, reader: VideoReader, last_end: float) -> str | None:
    if reader.errors == 0 and reader.returncode in (0, None):
        return None
    total = f" of {info.duration:.2f} s" if info.duration else ""
    return (
        f"the decoder failed (truncated or damaged file): kept {reader.frames_read} frame(s), "
        f"{last_end:.2f} s{total}; what did not decode is lost ({reader.error_message()})"
    )


def upscale_video(
    model: ClassSR,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    options: EncodeOptions | None = None,
    temporal: TemporalOptions | None = None,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    frames_per_batch: int | None = None,
    blend: str = DEFAULT_BLEND,
    classmap: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> VideoResult:
    """Upscale the video ``src`` into ``dst`` with ``model``; see the module docstring.

    ``frames_per_batch`` frames go through the model together (default: as many as fill ``batch_size`` patches).
    Output files are written under a temporary name in the target folder and renamed when complete, so an
    interrupted run leaves no file that looks finished. ``progress(frames_done, frames_expected_or_None)`` is
    called after every written frame.
    """
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    options = options or EncodeOptions()
    temporal = temporal or TemporalOptions()
    if temporal.hysteresis < 0 or temporal.hysteresis > 1:
        raise VideoError(f"hysteresis is a probability margin in [0, 1], got {temporal.hysteresis}")
    cmap_dst = classmap_path(dst) if classmap else None
    _check_paths(src, dst, cmap_dst, overwrite)
    muxer = container_of(dst)
    info = probe(src)
    stream_args, notes = plan_streams(info, muxer, options)
    dst.parent.mkdir(parents=True, exist_ok=True)
    s = model.cfg.scale
    grid = plan_grid(info.height, info.width, model.cfg.patch, step)
    per_batch = frames_per_batch or max(1, min(16, batch_size // grid.count))
    router = _Router(model, grid, temporal, batch_size)
    device = router.device
    tmp, tmp_map = _temp_path(dst), (_temp_path(cmap_dst) if cmap_dst else None)
    writer = map_writer = None
    last_end = 0.0
    # A display matrix with a mirror cannot be carried as a plain rotation: apply it to the pixels instead.
    rotation = 0.0 if info.flipped else info.rotation
    try:
        with VideoReader(info, autorotate=info.flipped) as reader, torch.inference_mode():
            if (reader.height, reader.width) != (grid.height, grid.width):
                grid = plan_grid(reader.height, reader.width, model.cfg.patch, step)
                router = _Router(model, grid, temporal, batch_size)
            batch: list[Frame] = []
            frames_iter = iter(reader)
            while True:
                frame = next(frames_iter, None)
                if frame is not None:
                    batch.append(frame)
                    if len(batch) < per_batch:
                        continue
                if not batch:
                    break
                if writer is None:
                    tb = reader.time_base
                    kw = {"time_base": tb, "options": options, "muxer": muxer, "rotation": rotation}
                    writer = VideoWriter(
                        tmp, grid.width * s, grid.height * s, source=info, stream_args=stream_args, **kw
                    )
                    if tmp_map is not None:
                        map_writer = VideoWriter(tmp_map, grid.width * s, grid.height * s, **kw)
                lr = torch.from_numpy(np.stack([f.rgb for f in batch])).to(device).permute(0, 3, 1, 2).float()
                patches = torch.stack([extract_patches(lr[i : i + 1], grid) for i in range(len(batch))])
                for f, (hr_patches, classes) in zip(batch, router.run(patches), strict=True):
                    rgb = _to_uint8(stitch(hr_patches, grid, s, blend))
                    writer.write(rgb, f.pts, f.duration)
                    if map_writer is not None:
                        map_writer.write(_classmap_frame(rgb, classes, grid, s), f.pts, f.duration)
                    last_end = float((f.pts + (f.duration or 0)) * reader.time_base)
                    if progress is not None:
                        progress(f.index + 1, info.frames_estimate)
                batch = []
                if frame is None:
                    break
            if writer is None:
                reader.close()
                raise InputError(f"{src}: no frame could be decoded ({reader.error_message()})")
        lost = _lost_message(info, reader, last_end)
        writer.close()
        if map_writer is not None:
            map_writer.close()
        os.replace(tmp, dst)
        if tmp_map is not None and cmap_dst is not None:
            os.replace(tmp_map, cmap_dst)
    except BaseException:
        for w in (writer, map_writer):
            if w is not None:
                w.abort()
        for p in (tmp, tmp_map):
            if p is not None:
                p.unlink(missing_ok=True)
        raise
    return VideoResult(
        input=src,
        output=dst,
        frames=router.frames,
        seconds=time.perf_counter() - t0,
        width=grid.width,
        height=grid.height,
        scale=s,
        source_fps=info.fps,
        counts=tuple(router.counts),  # type: ignore[arg-type]
        computed=sum(router.computed_per_class),
        reused=router.reused,
        held=router.held,
        switches=router.switches,
        switches_argmax=router.switches_argmax,
        compared=router.compared,
        flops=router.flops(0),
        flops_paper=router.flops(1),
        temporal=temporal,
        frames_per_batch=per_batch,
        classmap=cmap_dst,
        lost=lost,
        notes=notes,
    )
