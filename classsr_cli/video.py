"""Video upscaling: decode -> the image pipeline, frame by frame, with temporal routing -> encode.

Every frame goes through the same path as an image (:meth:`classsr_cli.pipeline.Upscaler.run`: the engine's
bands, crop canvas, FLOPs and quantiser), with one :class:`~classsr_cli.engine.Router` across the frames. One
stream from the decoder's pipe to the encoder's pipe (:mod:`classsr_cli.io.video`); large frames are computed
and sent to the encoder in bands of rows, so memory is bounded like an image's whatever the length or size.

Two temporal features (:mod:`classsr_cli.engine.router`), both counted in :class:`VideoResult`:

* **Hysteresis** (the paper-preset models, unless ``hysteresis=0``): a patch keeps the class it had in the previous
  frame unless the classifier's probability for the new class beats the kept class's by at least ``hysteresis``.
* **Reuse** (``reuse=True``): a patch (the default models: a cell, with the ring its classifier and branches see)
  whose LR pixels differ from those it was last computed from by at most ``reuse_threshold`` 8-bit levels keeps its
  previous HR output: no branch runs on it.

**Resume** (``resume=True``): the video is encoded in chunks in a hidden folder beside the output
(:func:`resume_folder`), each one finished and recorded before the next begins; a run stopped at any moment (Ctrl-C,
a crash, a power cut) and started again with the same settings decodes past the frames its chunks hold and goes on.
The finished chunks are copied into the output, not encoded again (:func:`~classsr_cli.io.video.join_chunks`).

Knows nothing about the CLI; progress is reported through an optional callback.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from classsr_cli.config import CLASS_NAMES
from classsr_cli.distributed import World, from_main
from classsr_cli.engine import DEFAULT_STEP, Argmax, FlopsReport, Forced, Hysteresis, Reuse, Router
from classsr_cli.engine.router import Policy, RouteStats
from classsr_cli.errors import (
    ALREADY_EXISTS,
    ClassSRError,
    ConfigError,
    InputError,
    OutputError,
    OutputExistsError,
    VideoError,
)
from classsr_cli.io.exr import Linear
from classsr_cli.io.frames import FrameFiles
from classsr_cli.io.icc import srgb16_transform
from classsr_cli.io.sequence import find_sequence, is_sequence, numbered
from classsr_cli.io.video import (
    ANIMATION_MUXERS,
    CHUNK_FORMAT,
    CONTAINERS,
    EXR_CODEC,
    IVTC,
    LINEAR_CODECS,
    LINEAR_SUFFIXES,
    QUALITY_CODECS,
    SEQUENCE_CODECS,
    SEQUENCE_MUXER,
    VFR_MUXERS,
    Chunk,
    EncodeOptions,
    VideoInfo,
    VideoReader,
    VideoWriter,
    bit_depth,
    check_frame_size,
    check_pix_fmt,
    color_tags,
    container_of,
    count_frames,
    even_size,
    evens,
    full_size_hint,
    h264_qp,
    hdr_peak,
    is_pictures,
    join_chunks,
    keeps_alpha,
    level_note,
    plan_streams,
    probe,
    source_notes,
)
from classsr_cli.models.classsr import ClassSR
from classsr_cli.pipeline import (
    STREAM_PIXELS,
    WRAP_PAD,
    PixelRun,
    Upscaler,
    apart,
    apart_cut,
    clean_note,
    codec_note,
    fill_hidden,
    kept,
    light_noise_note,
    noise_note,
    unwrapped_columns,
    with_alpha,
    wrap_cut,
    wrapped,
)
from classsr_cli.runtime import bound_freed_memory
from classsr_cli.scenes import Scene, SceneLog

__all__ = ["TemporalOptions", "VideoEstimate", "VideoResult", "classmap_path", "estimate_video", "kept_frames",
           "output_path", "resume_folder", "upscale_video"]

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
        compared: patches that had a previous frame in their scene (the denominator of the switch shares).
        flops, flops_paper: FLOPs spent against heavy-only on every patch (real and paper convention).
        lost: set when the source could not be decoded to its end; says what was lost.
        notes: streams re-encoded or dropped on the way.
        pix_fmt: the output's pixel format.
        bits: bits per channel of the frames between the decoder, the model and the encoder (8, or 16 where the
            source or the output holds more than 8).
        start, length: the part of the source upscaled (seconds; ``length`` ``None``: to its end; else what was
            left of it, where the source is shorter).
        shown: the output's size as players show it, where that is not its stored size (a rotation by 90
            degrees, non-square pixels); ``None`` where it is.
        resumed: frames taken from the chunks of a stopped run (``resume=True``; ``seconds`` includes its time).
        alpha: whether the output keeps the source's transparency (:attr:`VideoInfo.alpha`, in a pixel format that
            holds it).
        tta: the self-ensemble's passes a frame took (``--tta``; 1: none); ``counts`` and the temporal counts are
            the first pass's, the FLOPs every pass's.
        scenes: the scenes found by cuts (:class:`~classsr_cli.scenes.SceneLog`), each with its frames' patches
            per class and FLOPs.
    """

    input: Path
    output: Path
    frames: int
    seconds: float
    width: int
    height: int
    out_width: int
    out_height: int
    scale: float
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
    classmap: Path | None = None
    lost: str | None = None
    notes: list[str] = field(default_factory=list)
    pix_fmt: str = "yuv420p"
    bits: int = 8
    start: float = 0.0
    length: float | None = None
    shown: tuple[int, int] | None = None
    resumed: int = 0
    alpha: bool = False
    tta: int = 1
    scenes: list[Scene] = field(default_factory=list)

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
        return {
            "input": str(self.input),
            "output": str(self.output),
            "classmap": str(self.classmap) if self.classmap else None,
            "frames": self.frames,
            "fps": round(self.fps, 3),
            "seconds": round(self.seconds, 3),
            "size": [self.width, self.height],
            "output_size": [self.out_width, self.out_height],
            "output_shown": list(self.shown) if self.shown else None,
            "pix_fmt": self.pix_fmt,
            "bits": self.bits,
            "alpha": self.alpha,
            "tta": self.tta,
            "start": self.start,
            "length": self.length,
            "scale": int(self.scale) if float(self.scale).is_integer() else self.scale,
            "source_fps": self.source_fps,
            "patches": {**dict(zip(CLASS_NAMES, self.counts, strict=True)), "total": self.patches},
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
            "scenes": [s.to_dict() for s in self.scenes],
            "lost": self.lost,
            "resumed": self.resumed,
            "notes": list(self.notes),
        }


def classmap_path(output: str | os.PathLike[str]) -> Path:
    """Where ``--classmap`` writes its video: ``out_classmap.mp4`` beside ``out.mp4`` (as images: ``_classmap``; an
    OpenEXR or Radiance HDR sequence's map in PNG: the tints are colours to see, not light)."""
    output = Path(output)
    light = output.suffix.lower() in LINEAR_SUFFIXES  # the tints are colours to see, not light
    return output.with_name(f"{output.stem}_classmap{'.png' if light else output.suffix}")


def output_path(
    src: str | os.PathLike[str], output: str | os.PathLike[str], scale: float, *, tag: str | None = None
) -> Path:
    """Where a video goes: ``output``, or ``output/{stem}_x{scale}{suffix}`` (as ``upscale`` names its outputs;
    ``tag`` in place of ``x{scale}``, e.g. ``h2160``) when ``output`` is a folder, an existing one or a path
    ending with a separator. The suffix is the input's
    when classsr writes it, else ``.mp4`` (``.mov``) for an MP4 (QuickTime) file under a camera's own suffix (an
    Insta360's ``.insv``, a GoPro's ``.lrv``: so that a 360° video's projection is kept), else ``.mkv`` (Matroska
    holds any audio and subtitles). A new path without a suffix is a usage error (:class:`ConfigError`) that says how
    to name the file or the folder."""
    from classsr_cli.io.files import url_refusal
    from classsr_cli.io.sequence import sequence_stem
    from classsr_cli.plan import scale_tag

    src, text = Path(src), os.fspath(output)
    if (url := url_refusal(text, output=True)) is not None:  # (ffmpeg's protocols are not given a path's name)
        raise ConfigError(url)
    out = Path(text)
    stem = sequence_stem(src) if is_sequence(src) else src.stem  # frames/shot_%04d.png: shot_x4.mkv
    suffix = src.suffix if src.suffix.lower() in CONTAINERS else _suffix_of(src)
    name = f"{stem}_{tag or scale_tag(scale)}{suffix}"
    if out.is_dir() or text.endswith(("/", os.sep)):
        return out / name
    if is_pictures(out):  # out/%05d.png: an image sequence
        return out
    if not out.suffix:
        from classsr_cli.zoo import is_scale_text

        if is_scale_text(text):  # `classsr video in.mp4 4`: a scale where the output goes
            raise ConfigError(f"{out}: OUTPUT must be a file path (e.g. {stem}_x{text}{suffix}); the scale is an "
                              f"option: -x {text}")
        raise ConfigError(
            f"{out}: OUTPUT must be a file path with a container suffix ({' '.join(CONTAINERS)}), e.g. {out / name}; "
            f"to write into a new folder, end it with {os.sep} ({out}{os.sep})"
        )
    if out.suffix.lower() in LINEAR_SUFFIXES:  # pictures of linear light, one a frame
        raise ConfigError(f"{out}: {LINEAR_CODECS[SEQUENCE_CODECS[out.suffix.lower()]]} frames are written as a "
                          f"numbered sequence: give a pattern of their names ({out.with_name(out.stem + '_%05d' + out.suffix)})")
    if out.suffix.lower() not in CONTAINERS:  # a usage error, as upscale's output suffixes (exit 2)
        picture = out.suffix if out.suffix.lower() in SEQUENCE_CODECS else ".png"  # out.png: its pictures
        raise ConfigError(f"{out}: unknown video container {out.suffix!r}; use one of {', '.join(CONTAINERS)}, or a "
                          f"numbered pattern of {', '.join(SEQUENCE_CODECS)} pictures ({out.with_name('%05d' + picture)})")
    return out


def _suffix_of(src: Path) -> str:
    """The container suffix a video file under a suffix classsr does not write gets: ``.mov`` or ``.mp4`` where it is
    a QuickTime or MP4 file (its first box ``ftyp``), else ``.mkv``."""
    try:
        with src.open("rb") as f:
            head = f.read(12)
    except OSError:  # a sequence's pattern, a folder
        return ".mkv"
    return ".mkv" if head[4:8] != b"ftyp" else ".mov" if head[8:12] == b"qt  " else ".mp4"


def _temp_path(target: Path) -> Path:
    """The hidden name ``target`` is written under, with this process's id (:func:`_sweep` reads it)."""
    return target.with_name(f".{target.stem}.{os.getpid()}-{secrets.token_hex(4)}.partial{target.suffix}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _sweep(target: Path) -> int:
    """Remove the hidden files of ``target`` left by runs that were killed (``kill -9``, a crash: no clean-up ran),
    whose process no longer exists; a running one's are left. Returns the bytes freed."""
    import re

    freed = 0
    stem = re.escape(target.stem)
    if is_pictures(target):  # an image sequence's frames: .00001.<pid>-<token>.partial.png, ...
        stem = re.sub(r"%(?:0\d+)?d", lambda _: r"\d+", stem)
    pattern = re.compile(rf"\.\.?{stem}\.(\d+)-[0-9a-f]{{8}}\.partial{re.escape(target.suffix)}"
                         r"(?:\.subtitles(?:-copied)?\.(?:mkv|mp4))?")  # and the subtitles of a part, cut beside it
    try:
        found = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:
        return 0
    for p in found:
        m = pattern.fullmatch(p.name)
        assert m is not None
        if _alive(int(m.group(1))):
            continue  # its run is still going (or the id was taken again: left alone)
        with contextlib.suppress(OSError):
            size = p.stat().st_size
            p.unlink()
            freed += size
    return freed


def _claim(out: Path | None, part: Path | None) -> None:
    """Create the temporary file ``part`` of ``out`` (the encoder overwrites it), or say why it cannot be written."""
    if out is None or part is None:
        return
    try:
        if is_pictures(part):  # an image sequence's frames: its folder must take a file
            probe_file = part.with_name(part.name % 0)
            probe_file.touch(exist_ok=False)
            probe_file.unlink()
        else:
            part.touch(exist_ok=False)
    except OSError as e:
        raise OutputError.of(out, e) from None


def _files(path: Path) -> dict[int, Path]:
    """The files ``path`` is: an image sequence's numbered frames (a printf pattern), or the one file (as 0)."""
    if is_pictures(path):
        return numbered(path)
    return {0: path} if path.exists() or path.is_symlink() else {}


def _remove(path: Path) -> None:
    """Remove ``path``, or an image sequence's frames."""
    for p in _files(path).values():
        p.unlink(missing_ok=True)


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a second name of ``src`` (a copy where the file system has no hard links)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _place(part: Path, out: Path) -> None:
    """Rename the finished ``part`` to ``out``; an image sequence frame by frame, with the frames of an earlier one
    under those names that this one does not have (--overwrite) removed, so that no two runs are mixed."""
    if not is_pictures(out):
        os.replace(part, out)
        return
    made = numbered(part)
    for n, p in numbered(out).items():
        if n not in made:
            p.unlink()
    for n, p in sorted(made.items()):
        os.replace(p, out.with_name(out.name % n))


def _check_paths(src: Path, dst: Path, classmap: Path | None, overwrite: bool) -> None:
    for out in (dst, classmap):
        if out is None:
            continue
        container_of(out)
        own = [find_sequence(src).pattern.resolve()] if is_pictures(out) and is_sequence(src) else []  # pictures only
        if out.resolve() in (src.resolve(), *own):
            raise ConfigError(f"{out}: the output would replace its own input; choose another OUTPUT")  # as upscale
        if is_pictures(out) and (there := numbered(out)) and not overwrite:
            raise OutputExistsError(f"{out}: {len(there)} frame(s) named so already exist, e.g. {min(there.items())[1]} "
                                    "(pass --overwrite to replace them)")
        if out.exists() and not overwrite:
            raise OutputExistsError(f"{out}: {ALREADY_EXISTS}")
        if out.exists() and out.is_dir():
            raise OutputExistsError(f"{out}: is a folder")


def _lost_message(info: VideoInfo, reader: VideoReader, last_end: float, stamps: list[int] | None = None,
                  first_number: int = 0) -> str | None:
    """What a damaged source lost: the frames kept and where the last of them ends (seconds from the source's
    start, the clock of the header's duration), against that duration only where it is the larger: a damaged
    header can state less than the frames that decoded. An image sequence's frames that did not decode are named
    by their files (``stamps``: the timestamps of the frames read, a frame a tick; ``first_number``: the first's
    number), since ffmpeg goes on past them."""
    if reader.errors == 0 and reader.returncode in (0, None):
        return None
    expected = info.frames_estimate
    if info.sequence and stamps is not None and expected:
        missing = sorted(set(range(expected)) - set(stamps))
        if missing:
            first = info.path.name % (first_number + missing[0])
            return (f"{len(missing)} of {expected} frame(s) did not decode and are left out, {first} the first "
                    f"({reader.error_message()})")
        if info.path.suffix.lower() == ".exr" and (damaged := _damaged_exr_frames(info, expected, first_number)):
            return (f"{len(damaged)} of {expected} frame(s) have a chunk whose data does not decode and were upscaled "
                    f"with its rows black, {damaged[0]} the first ({reader.error_message()})")
    total = f" of {info.duration:.2f} s" if info.duration and round(last_end, 2) <= round(info.duration, 2) else ""
    said = reader.error_message()
    unsupported = "not yet implemented" in said.lower()  # (ffmpeg's words for what it leaves to a patch)
    cause = ("the bundled ffmpeg's APNG decoder does not blend this file's frames over the one before: 16 bits a "
             "sample, or another pixel format it does not blend"
             if unsupported and info.codec == "apng" and "decoding error" in said.lower() else
             "the bundled ffmpeg does not implement what the file uses" if unsupported else
             "truncated or damaged file")  # fmt: skip
    return (
        f"the decoder failed ({cause}): kept {reader.frames_read} frame(s), "
        f"up to {last_end:.2f} s{total}; what did not decode is lost ({said})"
    )


def _damaged_exr_frames(info: VideoInfo, count: int, first_number: int) -> list[str]:
    """The names of an OpenEXR sequence's frames whose chunks do not all decode, each decoded alone
    (:func:`classsr_cli.io.exr.decode`): ffmpeg's decoder logs such a chunk, gives its rows as zeros and goes on, and
    decodes ahead on threads, so its log does not say which frame it was. Run only once a sequence's decoder has
    logged errors."""
    from classsr_cli.io import exr
    from classsr_cli.io.video import ffmpeg_exe

    exe, damaged = ffmpeg_exe(), []
    for k in range(count):
        name = info.path.name % (first_number + k)
        try:
            exr.decode(exe, info.path.with_name(name))
        except ValueError:
            damaged.append(name)
    return damaged


@dataclass
class _Plan:
    """What a run of one source into one output is, before any frame: the part's :class:`VideoInfo`, the encoding
    settled for it, the container, the arguments that carry the other streams, the notes, the pipes' bits."""

    info: VideoInfo
    options: EncodeOptions
    muxer: str
    stream_args: list[str]
    notes: list[str]
    bits: int
    alpha: bool = False  # the source's transparency, kept by the output's pixel format
    first_number: int = 1  # an image sequence output's first file's number


def _prepare(src: Path, dst: Path, cmap_dst: Path | None, options: EncodeOptions, *, overwrite: bool, start: float,
             length: float | None, resume: bool = False, deinterlace: bool | str = True, chunker: str = "--resume") -> _Plan:
    """Check the paths and plan the run (:class:`_Plan`); raises what the run would raise before decoding. ``resume``:
    the run is written in chunks, by ``chunker`` (``--resume``, or torchrun's shares)."""
    _check_paths(src, dst, cmap_dst, overwrite)
    muxer = container_of(dst)
    if muxer == SEQUENCE_MUXER:  # each picture in its suffix's format
        codec = SEQUENCE_CODECS[dst.suffix.lower()]
        if options.codec not in (None, codec):
            raise ConfigError(f"{dst}: {dst.suffix} pictures are written with {codec}, not --codec {options.codec}")
        if codec in LINEAR_CODECS and (options.pix_fmt or options.extra):
            raise ConfigError(f"{dst}: {LINEAR_CODECS[codec]} frames are written by classsr in linear light, as "
                              "`classsr upscale` writes them: --pix-fmt and -e do not apply")
        options = replace(options, codec=codec)
    if resume and muxer not in (*VFR_MUXERS, SEQUENCE_MUXER):  # a VFR source's chunks would be retimed
        raise ConfigError(f"{dst}: {chunker} writes .mp4, .mov, .mkv or .webm; .{muxer} keeps no frame timestamps")
    if resume and muxer in ANIMATION_MUXERS:  # a GIF's one palette is made from every frame: no chunks
        raise ConfigError(f"{dst}: {chunker} writes .mp4, .mov, .mkv or .webm; a .{muxer} is written in one go")
    sequence = is_sequence(src)  # read at --fps: its frames are not retimed
    if resume and options.fps is not None and not sequence:  # each chunk would be retimed alone, from its first frame
        raise ConfigError(f"--fps retimes the video as a whole: it does not combine with {chunker}")
    info = probe(src, rate=options.fps if sequence else None)
    if info.sequence:
        notes_first = [f"{info.path}: {info.frames_estimate} frames read at {float(info.fps or 0):g} frames/s"
                       + ("" if options.fps else " (ffmpeg's default; --fps sets the rate)")
                       + (f", turned upright by the first frame's EXIF orientation ({info.orientation})"
                          if info.orientation != 1 else "")]
        options = replace(options, fps=None)
    else:
        notes_first = []
    cut_notes = []
    if start or length is not None:
        timecode, info = info.timecode, info.trimmed(start, length)
        if timecode and info.timecode is None:
            cut_notes.append(f"the start timecode ({timecode}) is not kept: a drop-frame one is not moved to --start")
    if muxer == "webp" and info.lossless and not (options.codec or options.pix_fmt or options.quality):
        # a lossless animated WebP stays lossless, as upscale keeps a lossless WebP picture (RGB, not 4:2:0)
        options = replace(options, pix_fmt="bgra", extra=(("lossless", "1"), *options.extra))
    linear = LINEAR_CODECS.get(str(options.codec))  # OpenEXR or Radiance frames, by classsr, in linear light
    if linear and options.fps is not None:  # (a sequence's --fps is its read rate, not this)
        raise ConfigError(f"{dst}: {linear} frames are written a picture a frame; --fps, which repeats or drops frames "
                          "to a constant rate, does not apply: write a video, or retime the frames in your editor")
    if linear:  # classsr's writer takes the 16-bit levels, in linear light (exr.frame_encoder, image.radiance_encoder)
        if (hdr := {"smpte2084": "PQ", "arib-std-b67": "HLG"}.get(str(color_tags(info.color)[2]))) is not None:
            notes_first.append(f"the HDR ({hdr}) video's light written as it shows, in BT.709's primaries (1.0 = 100 "
                               "cd/m², SDR's white)")  # (_own_frames: io.sdr.linear)
        options = replace(options, pix_fmt="rgba64le" if info.alpha else "rgb48le")
    options = options.for_source(muxer, info.pix_fmt, alpha=info.alpha)
    if not linear:
        check_pix_fmt(options, muxer)
    if options.quality is not None:
        _check_quality(dst, options, muxer)
    # Frames cross the pipes at 16 bits where the source or the output holds more than 8: the model computes in
    # float, so a 10-bit output of an 8-bit source also keeps the levels between its 8-bit ones.
    bits = 16 if max(bit_depth(info.pix_fmt), bit_depth(options.out_pix_fmt)) > 8 else 8
    if info.icc:  # a video holds no ICC profile (nor do the pictures ffmpeg writes from plain RGB): sRGB, converted
        converted = bits == 8 or (info.icc_profile is not None and srgb16_transform(info.icc_profile) is not None)
        notes_first.append(f"the frames' ICC profile ({info.icc}) is converted to sRGB" if converted else
                           f"the frames' ICC profile ({info.icc}) is not applied at 16 bits (a profile of lookup "
                           "tables): their colours are read as sRGB; export the frames in sRGB for the colours they show")
    if info.stops is not None:  # EXR or Radiance frames: read as upscale reads a picture of them, at one exposure
        said = [f"upscaled {info.stops} stop{'s' if info.stops > 1 else ''} darker (the first frame's light above "
                "1.0 brought within the model's range), then as bright as it was"] if info.stops else []
        said.append("written in linear light, the light outside 0-1 kept (enlarged by bicubic interpolation)"
                    if linear else "written with sRGB's curve, light above 1.0 clipped (a video holds no more; "
                    f"OpenEXR frames keep it: {dst.with_name('%05d.exr')})")  # fmt: skip
        kind = {".hdr": "Radiance HDR", ".pfm": "PFM"}.get(str(info.path.suffix).lower(), "OpenEXR")
        notes_first.append(f"{kind} frames are linear light: {'; '.join(said)}")
    if deinterlace == IVTC and info.field_order is None:
        raise ConfigError(f"{info.path}: --ivtc puts back the film frames of a telecined (interlaced) source; this one "
                          "is progressive")
    if deinterlace == IVTC and info.fps:  # the film's rate, 4 frames in 5: its frame count, the writer's rate
        info = replace(info, fps=info.fps * 4 / 5)
    stream_args, notes = plan_streams(info, muxer, options)
    notes = (notes_first + source_notes(info, options.out_pix_fmt, options.codec, deinterlace=deinterlace,
                                        rate=options.fps) + notes + cut_notes)
    if options.fps is not None:
        notes.append(f"written at a constant {float(options.fps):g} frames/s (--fps; the source's "
                     f"{f'{info.fps:g}' if info.fps else 'unknown rate'}): frames repeated or dropped to keep their time")
    alpha = info.alpha and keeps_alpha(options.out_pix_fmt)
    if resume and alpha and options.codec in ("libvpx", "libvpx-vp9"):  # its alpha is side data the chunks lose
        raise ConfigError(f"{dst}: {chunker} cannot keep the source's transparency in VP9 (it travels beside the "
                          f"frames, which the chunks lose); run without {chunker}, or write a .mov with --codec prores_ks")
    # Frames written as a sequence read from one keep its numbers (a render from 1001 stays so, --start counted).
    first = info.part_first_number if info.sequence else 1
    return _Plan(info, options, muxer, stream_args, notes, bits, alpha, first)


def _check_quality(dst: Path, options: EncodeOptions, muxer: str) -> None:
    """Refuse ``--quality`` where it sets nothing: outputs other than JPEG and JPEG XL frames and animated WebP
    (:data:`~classsr_cli.io.video.QUALITY_CODECS`), and JPEG frames that ffmpeg's encoder writes (``--fps``, ``-e``,
    another ``--pix-fmt``: :func:`_own_frames`), whose scale is its own."""
    codec = str(options.codec)
    if codec not in QUALITY_CODECS or (codec == "mjpeg" and muxer != SEQUENCE_MUXER):
        said = (" is lossless" if codec in ("png", "tiff", "dpx", "apng") else " has none (a palette of 256 colours)"
                if codec == "gif" else "'s is --crf, or -e for its own options")  # fmt: skip
        raise ConfigError(f"{dst}: --quality sets the quality of JPEG and JPEG XL frames and animated WebP; {codec}{said}")
    if codec == "mjpeg" and _ffmpeg_encodes(options, _OWN_FORMATS["mjpeg"][(8, False)]):
        raise ConfigError(f"{dst}: with --fps, -e or --pix-fmt ffmpeg's encoder writes the JPEG frames, on its own "
                          "scale: give -e q:v=2 (best) .. 31 instead of --quality")


#: Codecs whose compression smooths noise as JPEG's does, hiding it from the noise estimate: footage they coded looks
#: noisy from a lower estimate (:data:`~classsr_cli.pipeline.NOISE_NOTE_VIDEO_FROM`) and gets no note that it looks
#: clean (a noisy-input model's); lossless and mezzanine ones (FFV1, ProRes, PNG, ...) keep the noise, and a picture's
#: thresholds.
SMOOTHING_CODECS = frozenset({
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2",
    "wmv3", "vc1", "theora", "h263", "flv1", "mjpeg", "webp", "webp_anim"})  # fmt: skip

def _coding(info: VideoInfo) -> tuple[bool, bool]:
    """Whether ``info``'s codec is lossy (:data:`SMOOTHING_CODECS`) and whether its frames hold a palette (a GIF's,
    ``pal8``): what the first frame's notes and ``--model auto`` read its noise by."""
    return info.codec in SMOOTHING_CODECS, info.codec == "gif" or info.pix_fmt == "pal8"


#: Seconds of video :func:`estimate_video` upscales to time a run.
SAMPLE_SECONDS = 2.0


@dataclass
class VideoEstimate:
    """What a run would write and take, from a sample of it (:func:`estimate_video`).

    Attributes:
        output: the file the run would write.
        frames: frames the part holds, from its duration and rate (``None``: the header says neither).
        duration: seconds of video the run would upscale (``None``: unknown).
        sample: the sample's run (:class:`VideoResult`: its frames, time, sizes, routing, FLOPs).
        seconds: the run's predicted wall time (``None``: no frame count): the frames not kept where it would go on
            from a stopped run's chunks (``kept``).
        bytes: the output's predicted size, from the sample's bitrate (content changes it).
        notes: what the run would say about the streams, and about a stopped run's chunks.
        kept: frames of a stopped run's chunks that the run would continue from (0: none).
    """

    output: Path
    frames: int | None
    duration: float | None
    sample: VideoResult
    seconds: float | None
    bytes: int | None
    notes: list[str]
    kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        s = self.sample
        return {"dry_run": True, "input": str(s.input), "output": str(self.output), "frames": self.frames,
                "kept": self.kept, "duration": self.duration, "size": [s.width, s.height],
                "output_size": [s.out_width, s.out_height],
                "output_shown": list(s.shown) if s.shown else None, "pix_fmt": s.pix_fmt,
                "estimate": {"seconds": None if self.seconds is None else round(self.seconds, 3),
                             "bytes": self.bytes, "sample_frames": s.frames, "sample_seconds": round(s.seconds, 3),
                             "sample_start": s.start, "fps": round(s.fps, 3)},
                "patches": {**dict(zip(CLASS_NAMES, s.counts, strict=True)), "total": s.patches},
                "notes": list(self.notes)}  # fmt: skip


def estimate_video(
    up: Upscaler,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    options: EncodeOptions | None = None,
    temporal: TemporalOptions | None = None,
    classmap: bool = False,
    overwrite: bool = False,
    start: float = 0.0,
    length: float | None = None,
    resume: bool = False,
    chunk_frames: int | None = None,
    sample_seconds: float = SAMPLE_SECONDS,
    deinterlace: bool | str = True,
) -> VideoEstimate:
    """What ``upscale_video`` with these arguments would write and how long it would take, without writing it: the
    checks it makes before decoding (an existing output, an encoder's pixel format, a stopped run's chunks made with
    other settings, ...) raise as they would, then ``sample_seconds`` of video from the middle of the part go through
    the same decoder, model and encoder into a temporary file, and their pace and bitrate are scaled to the part's
    frame count, less the frames of a stopped run's chunks that ``resume`` would go on from (the sample then from the
    middle of the rest). A first frame's warm-up counts in the sample, so a short sample overstates the time a
    little."""
    import tempfile

    src, dst = Path(src), output_path(src, dst, up.scale)
    options = options or EncodeOptions()
    temporal = temporal or TemporalOptions()
    plan = _prepare(src, dst, classmap_path(dst) if classmap else None, options, overwrite=overwrite, start=start,
                    length=length, resume=resume, deinterlace=deinterlace)  # fmt: skip
    info, folder, kept, notes = plan.info, resume_folder(dst), 0, list(plan.notes)
    if resume:  # as the run: continued, refused, or (--overwrite) started over
        old, mismatch = _stopped_run(folder, _recipe(up, src, plan.options, temporal, start=start, length=length,
                                                     classmap=classmap, container=plan.muxer, chunk_frames=chunk_frames,
                                                     **_deinterlaced(plan.info, deinterlace), **_read_as(plan.info)))
        if mismatch is not None and not overwrite:
            raise mismatch.error(folder)
        kept = int(old["totals"]["frames"]) if old and old["totals"] else 0
        if mismatch is not None and (stopped := kept_frames(dst)):
            notes.append(f"a stopped run's chunks hold {stopped} frame(s), but it {mismatch.why}: --overwrite would "
                         "discard them and start over (the estimate is for the whole run)")
    elif stopped := kept_frames(dst):
        notes.append(f"a stopped run's chunks hold {stopped} frame(s) in {folder}: this run would leave them (add "
                     "--resume to continue them; the estimate is for the whole run)")
    whole, frames = info.duration, info.frames_estimate
    cut = min(sample_seconds, whole) if whole else sample_seconds
    done = whole * min(kept, frames) / frames if kept and whole and frames else 0.0  # the kept frames' time
    at = start + (max(0.0, min(done + (whole - done - cut) / 2, whole - cut)) if whole else 0.0)  # what is left's middle
    with tempfile.TemporaryDirectory(prefix="classsr-sample-") as tmp:
        sample_out = Path(tmp) / f"sample{'_%05d' if plan.muxer == SEQUENCE_MUXER else ''}{dst.suffix}"
        try:
            sample = upscale_video(up, src, sample_out, options=options, temporal=temporal, start=at, length=cut,
                                   deinterlace=deinterlace)
        except ClassSRError as e:  # what the run would meet: said of its output, not of the sample's
            raise type(e)(str(e).replace(str(sample_out), str(dst))) from None
        size = sum(p.stat().st_size for p in _files(sample_out).values())
    left = max(0, frames - kept) if frames else None
    if kept:
        rest = f"the other {left} frame(s)" if left is not None else "the frames after them"
        notes.append(f"a stopped run's chunks hold {kept} frame(s): this run would go on from there; the estimate "
                     f"covers {rest} (the output's size, all of it)")
    seconds = left * sample.seconds / sample.frames if left is not None and sample.frames else None
    size_all = round(size * frames / sample.frames) if frames and sample.frames else None
    return VideoEstimate(output=dst, frames=frames, duration=whole, sample=sample, seconds=seconds, bytes=size_all,
                         notes=notes, kept=kept)


def resume_folder(output: str | os.PathLike[str]) -> Path:
    """Where a resumable run keeps its chunks: ``.out.mp4.resume/`` beside ``out.mp4`` (removed once it is done);
    ``.#05d.png.resume/`` for ``%05d.png`` (ffmpeg would number a ``%`` in the folder's name too)."""
    output = Path(output)
    name = output.name.replace("%", "#") if is_pictures(output) else output.name
    return output.with_name(f".{name}.resume")


#: A resumable run's chunk closes at the first frame after it holds :data:`CHUNK_VIDEO_SECONDS` of video and took
#: :data:`CHUNK_WALL_SECONDS` to compute: a stop loses about a minute of work (more where 2 s of video takes longer),
#: and a chunk, which starts with a keyframe, is never shorter than a usual keyframe interval.
CHUNK_WALL_SECONDS, CHUNK_VIDEO_SECONDS = 60.0, 2.0
_STATE, _LOCK = "state.json", "lock"


def _whole(state: dict[str, Any], folder: Path) -> bool:
    """Whether a run's record is one this module wrote, and every chunk it lists is on disk and not empty."""
    chunks, totals = state.get("chunks"), state.get("totals")
    if not isinstance(chunks, list) or (totals is None) != (not chunks):
        return False
    for c in chunks:
        for key in ("file", "map"):
            files = list(_files(folder / c[key]).values()) if c.get(key) else []  # a file, or a chunk's frames
            if c.get(key) and not (files and all(p.is_file() and p.stat().st_size > 0 for p in files)):
                return False
            if c.get(key) and c.get(f"{key}_frames", len(files)) != len(files):  # a picture gone from a chunk
                return False
    return all(isinstance(c.get("start"), int) for c in chunks)


#: A resumable run's settings as a user knows them, for the message that refuses to continue with others: a recipe's
#: key, or ``key.field`` for a field of one that is a record (the record's own words for a field not listed).
_SETTING = {"version": "classsr's version", "input": "the input file", "model": "the model or its settings",
            "model.version": "classsr's version",
            "model.model_sha256": "the model", "model.scale": "the scale",
            "model.step": "--step", "model.tolerance": "--tolerance", "model.force_branch": "--force-branch",
            "model.tta": "--tta",
            "precision": "--precision", "temporal": "--hysteresis or --reuse", "temporal.hysteresis": "--hysteresis",
            "temporal.reuse": "--reuse", "temporal.reuse_threshold": "--reuse-threshold",
            "encode": "the encoding options", "encode.codec": "--codec", "encode.crf": "--crf",
            "encode.preset": "--preset", "encode.pix_fmt": "--pix-fmt", "encode.extra": "--encoder-opt",
            "encode.quality": "--quality",
            "start": "--start", "length": "--duration", "classmap": "--classmap", "container": "the container",
            "chunk_frames": "the chunk length", "deinterlaced": "--no-deinterlace",
            "demux": "--fps (the rate an image sequence is read at)"}  # fmt: skip


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings in which the recipes of two runs differ, in the words of :data:`_SETTING`, each once. A temporal
    setting that applies in one of the runs only follows from another, which is named instead: the margin
    (``--hysteresis``) from the model's routing or ``--force-branch``, the threshold from ``--reuse``."""
    names: list[str] = []
    for key in dict.fromkeys([*new, *old]):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if not (isinstance(a, dict) and isinstance(b, dict)):
            names.append(_SETTING.get(key, key))
            continue
        for name in dict.fromkeys([*b, *a]):
            if a.get(name) == b.get(name):
                continue
            if key == "temporal" and None in (a.get(name), b.get(name)):
                continue  # applies in one run only
            names.append(_SETTING.get(f"{key}.{name}", _SETTING.get(key, key)))
    return list(dict.fromkeys(names)) or [_SETTING["model"]]


@dataclass(frozen=True)
class _Mismatch:
    """Why the chunks of a stopped run cannot be continued: ``why`` ends the sentence "a stopped run of this output
    ...", ``again`` whether the command that made them still can."""

    why: str
    again: bool

    def error(self, folder: Path) -> ConfigError:
        again = "run the same command to continue it, or " if self.again else ""
        return ConfigError(f"{folder}: a stopped run of this output {self.why}; {again}add --overwrite to start over")


def _stopped_run(folder: Path, recipe: dict[str, Any]) -> tuple[dict[str, Any] | None, _Mismatch | None]:
    """The record of the stopped run in ``folder`` where a run with ``recipe`` continues it; else ``None`` and, where
    there is one that it cannot continue, why."""
    state = folder / _STATE
    if not (folder.is_dir() and state.is_file()):
        return None, None
    try:
        old = json.loads(state.read_text(encoding="utf-8"))
        old_recipe = old["recipe"]
        if not (_whole(old, folder) and isinstance(old_recipe, dict)):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, _Mismatch("cannot be continued (its record is unreadable, or a chunk it lists is missing or "
                               "empty)", again=False)
    if old_recipe == recipe:
        return old, None
    if old_recipe.get("record") != recipe["record"]:
        return None, _Mismatch("was recorded by an earlier classsr, which knew the input by its path and time, not its "
                               "content", again=False)
    differ = _differences(old_recipe, recipe)
    # A file changed since cannot be continued by the command that made them.
    return None, _Mismatch(f"was made with other settings ({', '.join(differ)})", again=differ != ["the input file"])


class _Resume:
    """The chunks of a resumable run and their record (``state.json``): the settings that made them (a run with
    others cannot continue them), and after each chunk the totals so far, so that a continued run reports the
    whole video."""

    def __init__(self, folder: Path, recipe: dict[str, Any], *, overwrite: bool) -> None:
        self.folder = folder
        self.recipe = json.loads(json.dumps(recipe))
        self.state: dict[str, Any] = {"recipe": self.recipe, "chunks": [], "totals": None}
        old, mismatch = _stopped_run(folder, self.recipe)
        if old is not None:  # the same settings: continued, with --overwrite too
            self.state = old
        elif mismatch is not None and not overwrite:
            raise mismatch.error(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock()
            kept = {c[k] for c in self.state["chunks"] for k in ("file", "map") if c.get(k)}
            kept = {*kept, *(p.name for name in kept for p in _files(folder / name).values()), _STATE, _LOCK}
            for p in folder.iterdir():  # a chunk begun and not recorded: encoded again
                if p.name not in kept and not p.is_dir():  # (a folder: a torchrun's share, removed once done)
                    p.unlink()
            if not self.state["chunks"]:
                self.save()
        except OSError as e:
            raise OutputError.of(folder, e) from None

    def _lock(self) -> None:
        """Claim the folder for this process: a run of the same output still going elsewhere is refused (its
        chunks would be overwritten); a claim left by a run that was killed is taken over."""
        lock = self.folder / _LOCK
        with contextlib.suppress(OSError, ValueError):
            pid = int(lock.read_text(encoding="utf-8").strip())
            if pid != os.getpid() and _alive(pid):
                raise OutputError(f"{self.folder}: another run (process {pid}) is writing this output; wait for it "
                                  "or stop it")
        tmp = self.folder / f".{_LOCK}.{os.getpid()}"
        tmp.write_text(str(os.getpid()), encoding="utf-8")
        os.replace(tmp, lock)

    @property
    def frames(self) -> int:
        return int(self.state["totals"]["frames"]) if self.state["totals"] else 0

    @property
    def totals(self) -> dict[str, Any] | None:
        return self.state["totals"]

    def chunk_paths(self, classmap: bool, pictures: str | None = None) -> tuple[Path, Path | None]:
        """The hidden paths of the next chunk: a :data:`CHUNK_FORMAT` file, or with ``pictures`` (a suffix: an image
        sequence's output) a pattern of its frames, numbered as in the output."""
        n, kind = len(self.state["chunks"]), f"_%08d{pictures}" if pictures else f".{CHUNK_FORMAT}"
        tints = kind.replace(pictures, ".png") if pictures in LINEAR_SUFFIXES else kind  # as classmap_path names it
        return (self.folder / f".{n:05d}.partial{kind}",
                self.folder / f".{n:05d}_classmap.partial{tints}" if classmap else None)  # fmt: skip

    def commit(self, parts: tuple[Path, Path | None], start: int, end: int | None, totals: dict[str, Any]) -> None:
        """Record the chunk just finished (``parts``, its first frame at ``start``, the next one at ``end``) and the
        totals after it."""
        entry: dict[str, Any] = {"start": start, "end": end}
        try:
            for key, part in zip(("file", "map"), parts, strict=True):
                if part is not None:
                    name = part.name.replace(".partial", "").lstrip(".")
                    if is_pictures(part):  # an image sequence's frames, each, and how many
                        made = numbered(part)
                        for k, p in made.items():
                            _sync(p)
                            os.replace(p, self.folder / (name % k))
                        entry[f"{key}_frames"] = len(made)
                    else:
                        _sync(part)
                        os.replace(part, self.folder / name)
                    entry[key] = name
            self.state["chunks"].append(entry)
            self.state["totals"] = totals
            self.save()
        except OSError as e:
            raise OutputError.of(self.folder, e) from None

    def save(self) -> None:
        tmp = self.folder / f".{_STATE}.partial"
        tmp.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        _sync(tmp)
        os.replace(tmp, self.folder / _STATE)

    def chunks(self, key: str) -> list[Chunk]:
        return [Chunk(self.folder / c[key], c["start"], c["end"]) for c in self.state["chunks"] if c.get(key)]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            (self.folder / _LOCK).unlink()


def kept_frames(output: str | os.PathLike[str], world: World | None = None) -> int:
    """Frames the chunks of a stopped resumable run of ``output`` hold (0: none, or no such run); with ``world``
    (under torchrun), those of its rank's share."""
    folder = resume_folder(output)
    try:
        state = json.loads(((_share_folder(folder, world) if world else folder) / _STATE).read_text(encoding="utf-8"))
        totals, first = state.get("totals"), state["recipe"]["share"]["frames"][0] if world else 0
        return int(totals["frames"]) - int(first) if totals else 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0


def _sync(path: Path) -> None:
    """On disk before it is named as finished: a power cut then leaves the chunk and its record whole, or neither."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The layout of a resumable run's recipe (``record``): 2 knows the input by its content (:func:`_identity`); 1 (no
#: ``record``) by its path, size and time. A record of another layout is refused, not compared.
_RECORD = 2
#: Bytes :func:`_identity` hashes at the start, the middle and the end of an input.
_IDENTITY_SAMPLE = 1 << 20


def _identity(src: Path) -> dict[str, Any]:
    """What a resumable run knows its input by: its size and the SHA-256 of its first, middle and last MiB (all of it
    up to 3 MiB), not its path or time: a file moved, copied or touched is the same input; one of another size, or
    with other bytes in those (a remux, a re-encode, a cut), is not. Three reads, whatever the file's size.

    An image sequence: its frames' count and bytes, and the SHA-256 of every frame's size and of the first MiB of
    its first, middle and last frames."""
    import hashlib

    h = hashlib.sha256()
    if is_sequence(src):
        seq = find_sequence(src)
        frames = [seq.frame(k) for k in range(seq.start, seq.start + seq.count)]
        try:
            sizes = [p.stat().st_size for p in frames]
            for p in dict.fromkeys((frames[0], frames[len(frames) // 2], frames[-1])):
                with open(p, "rb") as f:
                    h.update(f.read(_IDENTITY_SAMPLE))
        except OSError as e:
            raise InputError(f"{src}: {e.strerror or e}") from None
        h.update(json.dumps(sizes).encode())
        return {"frames": len(frames), "bytes": sum(sizes), "sample_sha256": h.hexdigest()}
    try:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = _IDENTITY_SAMPLE
            for at in (0,) if size <= 3 * n else (0, size // 2 - n // 2, size - n):
                f.seek(at)
                h.update(f.read(size if size <= 3 * n else n))
    except OSError as e:
        raise InputError(f"{src}: {e.strerror or e}") from None
    return {"bytes": size, "sample_sha256": h.hexdigest()}


def _routing(up: Upscaler, temporal: TemporalOptions) -> tuple[Policy, TemporalOptions]:
    """A video run's routing policy, and ``temporal`` as it applies (the summary reports the margin that applied)."""
    # Hysteresis is a margin on class probabilities: the paper's argmax models. A deficit-routing model's decision
    # is a threshold on predicted error, steady by itself, and routes as cells (the fast path), with reuse too.
    # A self-ensemble routes each pass afresh: the argmax without a margin carried from frame to frame, and no reuse.
    if up.tta > 1 and temporal.reuse:
        raise ConfigError("--tta routes every pass of a frame afresh: it does not combine with --reuse")
    policy: Policy = (Forced(up.force_branch) if up.force_branch is not None
                      else Argmax(up.tolerance) if up.model.cfg.routing != "argmax" or up.tta > 1
                      else Hysteresis(temporal.hysteresis, tolerance=up.tolerance))
    if not isinstance(policy, Hysteresis):
        temporal = replace(temporal, hysteresis=0.0)  # none applied
    return policy, temporal


def _deinterlaced(info: VideoInfo, deinterlace: bool | str) -> dict[str, bool | str]:
    """Whether a run deinterlaces (``deinterlace`` asked, the source interlaced), and how (``True``: bwdif; ``IVTC``),
    as a resumable run's record says it: only where it happens, so that a run of a progressive source, or one from
    before it was done, is recorded as it was; the run's reader reads the same record."""
    return {"deinterlaced": deinterlace} if deinterlace and info.field_order is not None else {}


def _read_as(info: VideoInfo) -> dict[str, list[str]]:
    """How an image sequence is read (its first number and rate), as a resumable run's record says it: a run read at
    another rate would be timed otherwise. Nothing for a file, so that its runs record as before."""
    return {"demux": list(info.demux)} if info.sequence else {}


def _recipe(up: Upscaler, src: Path, options: EncodeOptions, temporal: TemporalOptions, **settings: Any) -> dict[str, Any]:
    """What a resumable run's frames depend on, as its ``state.json`` records it: the source file, the model and
    its settings, the encoding. A temporal setting that does not apply is ``None`` (the margin of a model without
    one, the threshold without reuse): the frames do not depend on it."""
    import hashlib

    import torch

    from classsr_cli import __version__

    made = json.loads(up.made_by())
    made.pop("model", None)  # its file's name: a model is known by its bytes (a renamed or copied file is the same)
    if made.get("tta") == 1:  # no self-ensemble: recorded as before --tta was, so that such a run still continues
        made.pop("tta")
    if made.get("model_sha256") is None:  # a model given as an object: its weights
        h = hashlib.sha256()
        for t in up.model.state_dict().values():
            h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        made["model_sha256"] = h.hexdigest()
    margin = isinstance(_routing(up, temporal)[0], Hysteresis)
    encode = asdict(replace(options, audio=True, subtitles=True))
    if encode["quality"] is None:  # absent unless given: a run without it continues one made before it was
        encode.pop("quality")
    if not encode["strip_metadata"]:  # so too
        encode.pop("strip_metadata")
    if encode.pop("fps") is not None:  # never: --fps does not combine with --resume (absent, older runs continue)
        raise ConfigError("--fps retimes the video as a whole: it does not combine with --resume")
    recipe = {"record": _RECORD, "version": __version__, "input": _identity(src), "model": made,
              "precision": str(up.dtype).removeprefix("torch."),
              "temporal": {"hysteresis": temporal.hysteresis if margin else None, "reuse": temporal.reuse,
                           "reuse_threshold": temporal.reuse_threshold if temporal.reuse else None},
              "encode": encode, **settings}  # fmt: skip
    return json.loads(json.dumps(recipe))  # as state.json holds it: lists, not tuples


def auto_model(source: str | os.PathLike[str], scale: float, start: float = 0.0) -> tuple[str | None, str]:
    """``classsr video --model auto``: the model :func:`~classsr_cli.pipeline.suited_video_model` names from the first
    frame the run upscales (at ``start`` seconds: the one its noise note reads), and why."""
    from classsr_cli.pipeline import suited_video_model

    info = probe(source)
    info = info.trimmed(start) if start else info
    with VideoReader(info) as reader:
        first = next(iter(reader), None)
    if first is None:
        return None, "no frame read"
    lossy, palette = _coding(info)
    return suited_video_model(first.rgb, scale, lossy=lossy, palette=palette, qp=h264_qp(info), codec=info.codec)


def upscale_video(
    model: ClassSR | Upscaler,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    options: EncodeOptions | None = None,
    temporal: TemporalOptions | None = None,
    step: int = DEFAULT_STEP,
    batch_size: int = 256,
    classmap: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    stream_pixels: int | None = STREAM_PIXELS,
    start: float = 0.0,
    length: float | None = None,
    resume: bool = False,
    chunk_frames: int | None = None,
    deinterlace: bool | str = True,
    world: World | None = None,
) -> VideoResult:
    """Upscale the video ``src`` into ``dst`` (a file, or a folder: :func:`output_path`); see the module docstring.

    ``model`` is an :class:`Upscaler` (its scale, step and batch size), or a bare model run at its own scale
    with ``step`` and ``batch_size``. Frames whose output has ``stream_pixels`` or more are computed and
    encoded in bands. Output files are written under a temporary name in the target folder and renamed when
    complete, so an interrupted run leaves no file that looks finished. ``progress(frames_done,
    frames_expected_or_None)`` is called after every written frame (frames of this run: a resumed run counts
    from where it goes on). ``start`` and ``length`` (seconds) upscale
    only that part of the source (:meth:`VideoInfo.trimmed`), its audio and subtitles cut alike.

    ``resume``: write the video in chunks (:func:`resume_folder`) and continue the chunks of a stopped run made
    with the same settings (a :class:`ConfigError` where they differ, unless ``overwrite``: then it starts over).
    ``chunk_frames`` closes a chunk every that many frames (default: :data:`CHUNK_WALL_SECONDS`).
    ``deinterlace``: an interlaced source's frames are deinterlaced (:data:`~classsr_cli.io.video.DEINTERLACE`)
    before they are upscaled; ``False`` upscales its fields together as frames; :data:`~classsr_cli.io.video.IVTC`
    puts a telecined film's frames back (``--ivtc``): its frames are counted after it, so a resumed run or a share
    decodes from the start (no keyframe seek) and drops the film frames before its own.

    ``world``: the ranks of a torchrun (:func:`classsr_cli.distributed.world`). Each rank upscales its share of the
    frames (:func:`_share`: consecutive, as even as the frame count allows) into chunks of its own, as ``resume``
    writes them (a stopped run continues each share), and rank 0 joins every share's chunks into ``dst`` once all
    are done; its result covers the whole video, another rank's its share. A share starts afresh, as after a cut: no
    class hysteresis (refused: the classes would differ at a share's start), ``reuse`` from its own first frame.
    """
    t0 = time.perf_counter()
    up = model if isinstance(model, Upscaler) else Upscaler(model, step=step, batch_size=batch_size)
    src, dst = Path(src), output_path(src, dst, up.scale)
    options = options or EncodeOptions()
    temporal = temporal or TemporalOptions()
    if temporal.hysteresis < 0 or temporal.hysteresis > 1:
        raise VideoError(f"hysteresis is a probability margin in [0, 1], got {temporal.hysteresis}")
    if chunk_frames is not None and chunk_frames < 1:
        raise ConfigError(f"chunk_frames must be at least 1, got {chunk_frames}")
    policy, temporal = _routing(up, temporal)
    shared = world if world is not None and world.active else None
    if shared is not None and isinstance(policy, Hysteresis) and temporal.hysteresis > 0:
        raise ConfigError("--hysteresis carries classes from frame to frame: under torchrun give --hysteresis 0 (each "
                          "rank starts its share afresh)")
    router = Router(
        policy, reuse=Reuse(temporal.reuse_threshold) if temporal.reuse else None, batch_size=up.batch_size,
    )
    cmap_dst = classmap_path(dst) if classmap else None
    plan = _prepare(src, dst, cmap_dst, options, overwrite=overwrite, start=start, length=length,
                    resume=resume or shared is not None, chunker="--resume" if resume or shared is None else "torchrun",
                    deinterlace=deinterlace)
    info, options, muxer, stream_args, notes = plan.info, plan.options, plan.muxer, plan.stream_args, plan.notes
    pix_fmt, bits = options.out_pix_fmt, plan.bits
    deinterlaced = _deinterlaced(info, deinterlace)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError.of(dst, e) from None
    freed = sum(_sweep(p) for p in (dst, cmap_dst) if p is not None)
    if freed:
        notes.append(f"removed the unfinished file(s) of a killed run of this output ({freed / 1e6:,.1f} MB)")
    folder = resume_folder(dst)
    chunked: _Resume | None = None
    # this rank's frames: lo to hi - 1 (a telecined film's counted after its inverse telecine)
    lo, hi = _share(shared, info, deinterlaced.get("deinterlaced") == IVTC) if shared is not None else (0, None)
    if resume or shared is not None:
        writable = _temp_path(dst)
        _claim(dst, writable)  # a folder that cannot be written: one line, before anything is decoded
        writable.unlink(missing_ok=True)
        recipe = _recipe(up, src, options, temporal, start=start, length=length, classmap=classmap, container=muxer,
                         chunk_frames=chunk_frames, **deinterlaced, **_read_as(info))
        if shared is not None:  # a share's chunks in a folder of their own, which its rank alone writes
            recipe["share"] = {"rank": shared.rank, "ranks": shared.size, "frames": [lo, hi]}
            if (folder / _STATE).is_file() and not overwrite:  # one process's stopped run: not thrown away unasked
                raise ConfigError(f"{folder}: a stopped run of this output in one process: continue it without "
                                  "torchrun (--resume), or add --overwrite to start over")
        chunked = _Resume(_share_folder(folder, shared) if shared is not None else folder, recipe, overwrite=overwrite)
    elif kept_frames(dst):
        notes.append(f"a stopped run's chunks are in {folder}: add --resume to continue it; this run leaves them")
    totals = chunked.totals if chunked else None
    skip = max(chunked.frames if chunked else 0, lo)  # frames decoded, not upscaled: a stopped run's, other shares'
    first_cut = totals.get("first_cut") if totals else None  # whether this share's first frame starts a scene
    ended = False  # the share ended before the video: the decoder is stopped, not failed
    lost: str | None = None  # what a damaged source lost (the last share's chunks carry it to rank 0)
    previous = float(totals["seconds"]) if totals else 0.0
    if totals:
        restored: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in totals["stats"].items()}
        router.stats = RouteStats(**restored)
        router.frames = totals["routed"]
    scenes = SceneLog.restore(totals.get("scenes") if totals else None)
    if totals and not scenes.scenes and skip:  # a stopped run from before scenes were kept: its frames as one
        scenes.scenes.append(Scene(first=0, start=0.0, frames=skip, counts=list(router.stats.counts),
                                   used=int(totals["flops"][0]), whole=int(totals["flops"][2])))
    tmp, tmp_map = _temp_path(dst), (_temp_path(cmap_dst) if cmap_dst else None)
    writers: list[VideoWriter | FrameFiles] = []
    last_end = float(totals["last_end"]) if totals else 0.0
    last_shown = float(totals.get("last_shown") or 0.0) if totals else 0.0  # the last frame's duration, in seconds
    flops = FlopsReport(*totals["flops"]) if totals else FlopsReport(0, 0, 0)
    flops_paper = FlopsReport(*totals["flops_paper"]) if totals else FlopsReport(0, 0, 0)
    # A display matrix with a mirror cannot be carried as a plain rotation, nor any by pictures: applied to the pixels.
    turn = info.flipped or (muxer == SEQUENCE_MUXER and round(info.rotation) % 360 != 0)
    rotation = 0.0 if turn else info.rotation
    # The upscale is uniform, so the output's pixels keep the source's shape (turned with the frames if rotated).
    sar = 1 / info.sar if info.sar and turn and round(info.rotation) % 180 else info.sar
    parts: tuple[Path, Path | None] = (tmp, tmp_map)
    begun, chunk_start, chunk_t0 = 0, 0, t0  # frames in the chunk being written, its first pts, when it began
    placed = False
    every = chunk_frames or max(1, round(CHUNK_VIDEO_SECONDS * info.fps) if info.fps else 48)

    def totals_now(frames: int, time_base: Fraction) -> dict[str, Any]:
        return {"frames": frames, "routed": router.frames, "stats": asdict(router.stats),
                "flops": [flops.used, flops.heavy, flops.whole],
                "flops_paper": [flops_paper.used, flops_paper.heavy, flops_paper.whole], "last_end": last_end,
                "last_shown": last_shown,
                "seconds": previous + time.perf_counter() - t0, "size": list(size), "output": [ow, oh],
                "scenes": scenes.state(), "first_cut": first_cut, "lost": lost,
                "time_base": [time_base.numerator, time_base.denominator]}  # fmt: skip

    try:
        if not chunked:
            for out, part in ((dst, tmp), (cmap_dst, tmp_map)):
                _claim(out, part)  # a folder that cannot be written fails here, in one line, before any decoding
        # The frames before the one before the first run are dropped by ffmpeg (that one primes the scene cuts and
        # checks a resumed run's source): decoded, not converted or piped.
        brighten = None
        if info.stops:  # OpenEXR frames read darker: each output level as bright as the light was (16 bits: bits)
            from classsr_cli.io.exr import brighter

            brighten = brighter((1 << bits) - 1, info.stops)
        exr_out = options.codec in LINEAR_CODECS  # OpenEXR or Radiance frames, by classsr's writers, in linear light
        recolour = None if exr_out else _recolour(info)  # an OpenEXR sequence in other primaries: shown in sRGB's
        if recolour is not None:
            notes.append("the frames' colours are brought from their primaries (their chromaticities) into sRGB's, "
                         "which the output is shown in")
        gpu = up.device.type != "cpu"  # pictures written on a thread of their own while the GPU computes
        half = not exr_out or info.stops is None or "f32" not in str(info.pix_fmt)  # as the source's, else half
        tints = options  # the class map's: PNG or TIFF pictures' in 8 bits (an OpenEXR sequence's map is PNG)
        if cmap_dst is not None and muxer == SEQUENCE_MUXER and cmap_dst.suffix.lower() in (".png", ".tif", ".tiff"):
            tints = replace(options, codec=SEQUENCE_CODECS[cmap_dst.suffix.lower()], pix_fmt="rgb24", extra=())
        with VideoReader(info, autorotate=turn, bits=bits, alpha=plan.alpha, deinterlace=deinterlaced.get("deinterlaced", False), light=exr_out,
                         first=max(0, skip - 1)) as reader:
            size = (reader.width, reader.height)
            full = up.output_size(reader.height, reader.width)
            oh, ow = even_size(pix_fmt, *full)
            if not (oh and ow):  # a 1-pixel side: the writer refuses it in one line
                oh, ow = full
            elif (oh, ow) != full:  # an odd size cannot be encoded in 4:2:0: one pixel less
                lost_edge = " and ".join(e for e, cut in (("row", oh != full[0]), ("column", ow != full[1])) if cut)
                notes.append(f"output {ow}x{oh}: the last pixel {lost_edge} of {full[1]}x{full[0]} cropped, as "
                             f"{pix_fmt} needs {evens(pix_fmt)}{full_size_hint(pix_fmt, options.codec_for(muxer))}")
            grown = _Grown.of(up, info, reader.height, reader.width)
            check_frame_size(options.codec_for(muxer), ow, oh, dst)
            notes.extend(level_note(options.codec_for(muxer), ow, oh))
            frames = iter(reader)
            frame = next(frames, None)
            stamps = list(reader.skipped_pts) if info.sequence else None  # which frames of a sequence decoded
            while frame is not None:
                if hi is not None and frame.index >= hi:  # the next share's first frame
                    ended = True
                    break
                following = next(frames, None)  # its timestamp ends this frame
                if stamps is not None:
                    stamps.append(frame.pts)
                if frame.index < skip:  # held by the stopped run's chunks, or another rank's share
                    if frame.index == skip - 1:
                        if chunked is not None and chunked.frames:
                            _check_continues(src, chunked, following)
                        scenes.prime(frame.rgb)  # the next frame's cut is judged against it
                    frame = following
                    continue
                kw: dict[str, Any] = {"time_base": reader.time_base, "options": options, "muxer": muxer, "sar": sar,
                                      "fps": info.fps, "first_number": plan.first_number}
                if not writers:  # the output's (a chunk's where the run is chunked) and the class map's
                    main_kw: dict[str, Any] = {"source": info, "stream_args": stream_args, "rotation": rotation}
                    map_kw: dict[str, Any] = {"rotation": rotation}
                    paths: tuple[Path, Path | None] = (tmp, tmp_map)
                    if chunked is not None:  # rotated and joined with the other streams at the end
                        pictures = dst.suffix if muxer == SEQUENCE_MUXER else None  # frames under their output numbers
                        paths = parts = chunked.chunk_paths(classmap, pictures)
                        kw["container"] = None if pictures else CHUNK_FORMAT
                        kw["first_number"] = plan.first_number + frame.index
                        main_kw, map_kw = {}, {}
                        begun, chunk_start, chunk_t0 = 0, frame.pts, time.perf_counter()
                    writers.append(_own_frames(paths[0], ow, oh, options, info, plan, up.made_by(), dst,
                                               kw["first_number"], half=half, sar=sar, background=gpu)
                                   or VideoWriter(paths[0], ow, oh, bits=bits, color=info.color, hdr10=info.hdr10,
                                                  target=dst, alpha=plan.alpha, **main_kw, **kw))  # fmt: skip
                    if paths[1] is not None and cmap_dst is not None:  # tinted in 8 bits, tagged as the output
                        writers.append(_own_frames(paths[1], ow, oh, tints, info, plan, None, cmap_dst,
                                                   kw["first_number"], half=half, sar=sar, background=gpu)
                                       or VideoWriter(paths[1], ow, oh, color=info.color, target=cmap_dst,
                                                      **map_kw, **{**kw, "options": tints}))  # fmt: skip
                if frame.index == skip:  # the first frame run: the notes a picture gets, from lower estimates
                    # where a lossy codec smoothed the noise, and coarse H.264's; the clean note where the codec kept
                    # the noise for the estimate to read (lossless)
                    lossy, palette = _coding(info)
                    about = noise_note(frame.rgb, up, video=lossy, palette=palette, codec=info.codec)
                    if not about and not palette:
                        about = (codec_note(lambda: h264_qp(info), up)
                                 or light_noise_note(frame.rgb, up, lossy=lossy, codec=info.codec)
                                 or ([] if lossy else clean_note(frame.rgb, up)))
                    notes.extend(about)
                gap = following.pts - frame.pts if following is not None else 0
                span = gap if gap > 0 else frame.duration  # ticks this frame is shown (None: unknown)
                h, w = frame.rgb.shape[:2]
                rgb, alpha = frame.rgb, None
                if frame.alpha is not None:  # as upscale does: the colour under clear pixels filled, alpha resized
                    rgb, alpha = fill_hidden(rgb, frame.alpha), up.upscale_alpha(frame.alpha, full)
                cut = scenes.look(frame.rgb)
                if cut:
                    router.forget()  # a cut: the previous scene's classes say nothing of this one
                if frame.index == lo:
                    first_cut = cut
                run = up.run(grown.frame(rgb), router=router, spill=tmp.parent,
                             banded=up.should_band(*grown.size(h, w), stream_pixels))
                light = Linear(half=half, outside=frame.outside, size=(full[1], full[0]), stops=info.stops or 0)
                _encode(run, writers, frame.pts, span, grown.out_height(full[0]), alpha, brighten,
                        light if exr_out else None, grown.cols(ow), grown.rows(oh), recolour)  # fmt: skip
                bound_freed_memory()  # a no-op unless the CLI keeps freed memory; long videos stay bounded
                route = run.route if frame.alpha is None else with_alpha(run.route, frame.alpha, full)
                flops, flops_paper = flops + route.flops, flops_paper + route.flops_paper
                scenes.add(frame.index, float(frame.pts * reader.time_base), route.counts, route.flops.used,
                           route.flops.whole)
                shown = float(span * reader.time_base) if span else (1 / info.fps if info.fps else 0.0)
                last_end = max(last_end, float(frame.pts * reader.time_base) + shown)
                last_shown = shown
                begun += 1
                if chunked is not None and following is not None and begun >= every and (
                    chunk_frames or time.perf_counter() - chunk_t0 >= CHUNK_WALL_SECONDS
                ):
                    _close_chunk(writers, chunked, parts, chunk_start, following.pts,
                                 totals_now(frame.index + 1, reader.time_base))
                if hi is not None and following is not None and following.index >= hi and writers:
                    assert chunked is not None  # the share's last chunk ends where the next share starts
                    _close_chunk(writers, chunked, parts, chunk_start, following.pts,
                                 totals_now(frame.index + 1, reader.time_base))
                if progress is not None:
                    total = (hi if hi is not None else info.frames_estimate) if info.frames_estimate else None
                    progress(frame.index + 1 - skip, total - skip if total is not None else None)
                frame = following
            if not writers and not (chunked and chunked.frames) and shared is None:  # (a share may hold none)
                reader.close()
                if info.span and info.video_start is not None and info.video_start >= info.seek + info.span:
                    raise InputError(f"{src}: no frame from {info.seek:g} s to {info.seek + info.span:g} s: its video "
                                     f"starts at {info.video_start:.2f} s")
                if info.seek:
                    raise InputError(f"{src}: no frame at or after --start {info.seek:g} s")
                raise InputError(f"{src}: no frame could be decoded ({reader.error_message()})")
        if not ended:
            reader.drained()  # (the decoder's last words read before what was lost is counted)
        lost = None if ended else _lost_message(info, reader, last_end, stamps, plan.first_number)
        if resized := reader.resized_message():
            notes.append(resized)
        if late := reader.started_late_message():
            notes.append(late)
        if chunked is not None and reader.returncode is not None and reader.returncode < 0 and not ended:
            # The decoder was stopped (a signal), not the file damaged: the chunks finished are kept, to continue.
            raise VideoError(f"{src}: the decoder was stopped (signal {-reader.returncode}) after {reader.frames_read} "
                             f"frame(s); {chunked.frames} are kept in {chunked.folder}: run the same command to continue")
        joins = chunked is not None and (shared is None or shared.is_main)  # rank 0 joins every share's chunks
        if chunked is not None:
            if writers:
                _close_chunk(writers, chunked, parts, chunk_start, None, totals_now(reader.frames_read, reader.time_base))
            if shared is not None:
                shared.barrier()  # every share's chunks are finished
        if chunked is not None and joins:
            if shared is not None:
                lists, saved = _merge_shares(folder, shared.size)
                router.stats, router.frames = RouteStats(**saved["stats"]), saved["routed"]
                flops, flops_paper = FlopsReport(*saved["flops"]), FlopsReport(*saved["flops_paper"])
                scenes = SceneLog(saved["scenes"])
                lost = lost or saved.get("lost")
            else:
                assert chunked.totals is not None
                lists, saved = {key: chunked.chunks(key) for key in ("file", "map")}, chunked.totals
            size, (ow, oh) = (saved["size"][0], saved["size"][1]), saved["output"]
            time_base = Fraction(*saved["time_base"])
            for out, part in ((dst, tmp), (cmap_dst, tmp_map)):
                _claim(out, part)
            join: dict[str, Any] = {"time_base": time_base, "options": options, "muxer": muxer, "rotation": rotation,
                                    "color": info.color}
            join["frames"], join["last"] = int(saved["frames"]), saved.get("last_shown") or None
            if muxer == SEQUENCE_MUXER:  # the chunks' frames, numbered as in the output, under its hidden names:
                # linked, so that a stop here leaves the chunks whole to join again
                for key, into in (("file", tmp), ("map", tmp_map)):
                    if into is None:
                        continue
                    for chunk in lists[key]:
                        for k, picture in numbered(chunk.path).items():
                            _link(picture, into.with_name(into.name % k))
            else:
                notes += join_chunks(lists["file"], tmp, source=info, stream_args=stream_args, target=dst, **join)
                if tmp_map is not None:
                    join_chunks(lists["map"], tmp_map, target=cmap_dst, **join)
        for writer in writers:
            writer.close()
            if isinstance(writer, VideoWriter):
                notes += writer.finished_notes
        for part, out in ((tmp, dst), (tmp_map, cmap_dst)) if joins or chunked is None else ():
            if part is not None and out is not None:
                try:
                    _place(part, out)
                except OSError as e:
                    raise OutputError.of(out, e) from None
        placed = True  # the output is in place: nothing is left to continue, whatever stops the run now
        if shared is not None and chunked is not None and not shared.is_main:
            chunked.release()  # rank 0 removes every share's chunks once the output is in place
        elif shared is not None:
            shutil.rmtree(folder, ignore_errors=True)
        elif chunked is not None:
            chunked.remove()
    except BaseException:
        if chunked is not None and shared is None and (placed or not chunked.state["chunks"]):
            chunked.remove()  # finished, or nothing finished: nothing to continue
        elif chunked is not None:
            chunked.release()
        for writer in writers:
            writer.abort()
        for p in (tmp, tmp_map, *parts):
            if p is not None:  # a failed removal must not hide the error that got us here
                with contextlib.suppress(OSError):
                    _remove(p)
        raise
    stats = router.stats
    return VideoResult(
        input=src, output=dst, frames=router.frames, seconds=previous + time.perf_counter() - t0,
        width=size[0], height=size[1], out_width=ow, out_height=oh, scale=up.scale, source_fps=info.fps,
        counts=stats.counts, computed=sum(stats.computed), reused=stats.reused, held=stats.held,
        switches=stats.switches, switches_argmax=stats.switches_argmax, compared=stats.compared, flops=flops,
        flops_paper=flops_paper, temporal=temporal, classmap=cmap_dst, lost=lost, notes=notes,
        pix_fmt=pix_fmt if not exr_out else f"gbr{'a' if plan.alpha else ''}pf{16 if half else 32}le"
        if options.codec == EXR_CODEC else "gbrpf32le",  # as EXR holds it; RGBE as ffmpeg decodes it
        bits=bits, start=info.seek, length=info.duration if info.span else None, shown=_shown(ow, oh, rotation, sar),
        resumed=skip, alpha=plan.alpha, tta=up.tta, scenes=scenes.scenes,
    )


def _share(world: World, info: VideoInfo, film: bool = False) -> tuple[int, int | None]:
    """Rank ``world.rank``'s frames of ``info``: ``lo`` to ``hi - 1`` (``hi`` ``None``: to the end, the last rank's),
    consecutive shares as even as the frame count allows (counted from the packets of a whole file, by rank 0, which
    gives the count to the others; else estimated from its duration: the last share takes whatever is left).
    ``film``: a telecined source's film frames put back (``--ivtc``), 4 for its 5 packets."""
    count = info.frames_estimate
    if not (info.seek or info.span or info.sequence):  # rank 0 reads the file's packets, not every rank
        packets = from_main(world, lambda: count_frames(info.path))
        count = (round(packets * 4 / 5) if film else packets) if packets else count
    if not count:  # unknown: rank 0 takes every frame
        return (0, None) if world.is_main else (2**62, None)
    bounds = [round(r * count / world.size) for r in range(world.size + 1)]
    return bounds[world.rank], (bounds[world.rank + 1] if world.rank + 1 < world.size else None)


def _share_folder(folder: Path, world: World) -> Path:
    """Where rank ``world.rank`` keeps its share's chunks: a folder of its own in the run's resume folder."""
    return folder / f"rank{world.rank}-of-{world.size}"


def _merge_shares(folder: Path, ranks: int) -> tuple[dict[str, list[Chunk]], dict[str, Any]]:
    """Every share's chunks in order (``file``, ``map``), and the totals of the whole video: counts and FLOPs summed,
    the scenes joined (a share's first scene goes on with the one before unless its first frame starts a scene), the
    last share's frame count (frames are counted from the video's first) and last frame's duration."""
    lists: dict[str, list[Chunk]] = {"file": [], "map": []}
    shares: list[dict[str, Any]] = []
    for rank in range(ranks):
        sub = folder / f"rank{rank}-of-{ranks}"
        state = json.loads((sub / _STATE).read_text(encoding="utf-8"))
        for c in state["chunks"]:
            for key in lists:
                if c.get(key):
                    lists[key].append(Chunk(sub / c[key], c["start"], c["end"]))
        if state["totals"]:
            shares.append(state["totals"])
    if not shares:
        raise VideoError(f"{folder}: no share holds a frame")
    merged = {**shares[-1], "size": shares[0]["size"], "output": shares[0]["output"],
              "time_base": shares[0]["time_base"], "routed": sum(s["routed"] for s in shares)}  # fmt: skip
    for key in ("flops", "flops_paper"):
        merged[key] = [sum(s[key][k] for s in shares) for k in range(3)]
    stats: dict[str, Any] = {}
    for name in shares[0]["stats"]:
        values = [s["stats"][name] for s in shares]
        stats[name] = tuple(map(sum, zip(*values, strict=True))) if isinstance(values[0], list) else sum(values)
    merged["stats"] = stats
    scenes: list[Scene] = []
    for s in shares:
        mine = [Scene.from_dict(d) for d in s["scenes"]["scenes"]]
        if scenes and mine and not s.get("first_cut"):  # the scene before goes on into this share
            first = mine.pop(0)
            scenes[-1].add(first.counts, first.used, first.whole, frames=first.frames)
        scenes.extend(mine)
    merged["scenes"] = scenes
    merged["lost"] = next((s["lost"] for s in shares if s.get("lost")), None)
    return lists, merged


def _check_continues(src: Path, chunked: _Resume, following: Any) -> None:
    """The frame after the stopped run's last must be where its last chunk said the next one starts."""
    end = chunked.state["chunks"][-1]["end"]
    if (following is None) != (end is None) or (following is not None and following.pts != end):
        raise InputError(f"{src}: the frames differ from those the stopped run decoded; delete {chunked.folder} "
                         "to start over")


def _close_chunk(writers: list[VideoWriter | FrameFiles], chunked: _Resume, parts: tuple[Path, Path | None], start: int,
                 end: int | None, totals: dict[str, Any]) -> None:
    """Finish the chunk's encoders and record it; the next frame opens new ones."""
    for writer in writers:
        writer.close()
    writers.clear()
    chunked.commit(parts, start, end, totals)


def _shown(width: int, height: int, rotation: float, sar: Fraction | None) -> tuple[int, int] | None:
    """A ``width`` x ``height`` frame's size as shown with its pixel shape and display rotation, where it differs."""
    shown = (round(width * float(sar)) if sar else width, height)
    if round(rotation) % 180 == 90:
        shown = shown[::-1]
    return shown if shown != (width, height) else None


#: The pixel formats of the PNG, TIFF and JPEG frames classsr writes itself (:func:`_own_frames`), by bits and alpha
#: (JPEG's: the 4:4:4 a JPEG sequence settles on, 16-bit levels rounded to 8 bits; no alpha).
_OWN_FORMATS = {"png": {(8, False): "rgb24", (8, True): "rgba", (16, False): "rgb48be", (16, True): "rgba64be"},
                "tiff": {(8, False): "rgb24", (8, True): "rgba", (16, False): "rgb48le", (16, True): "rgba64le"},
                "mjpeg": {(8, False): "yuvj444p", (16, False): "yuvj444p"}}  # fmt: skip


def _ffmpeg_encodes(options: EncodeOptions, own_pix_fmt: str | None) -> bool:
    """Whether ffmpeg's encoder, not classsr's writer, writes a sequence's pictures: with ``-e`` options, with
    ``--fps`` (ffmpeg repeats or drops frames), or in another pixel format than the writer's ``own_pix_fmt``."""
    return bool(options.extra) or options.fps is not None or options.out_pix_fmt != own_pix_fmt


def _own_frames(path: Path, width: int, height: int, options: EncodeOptions, info: VideoInfo, plan: _Plan,
                made_by: str | None, target: Path, first_number: int, *, half: bool, sar: Fraction | None,
                background: bool = False) -> FrameFiles | None:
    """classsr's own writer of a picture sequence's frames (:class:`~classsr_cli.io.frames.FrameFiles`), where it has
    one, else ``None`` (ffmpeg's encoder): OpenEXR's (an EXR source's first frame's picture attributes kept; gray (Y)
    where its frames are), Radiance HDR's (a Radiance source's first frame's header lines kept); PNG's, TIFF's and
    JPEG's in the pixel format the run settled on (:data:`_OWN_FORMATS`; not a ``--pix-fmt`` of another, ``-e`` encoder
    options, ``--fps``, whose frames ffmpeg repeats or drops), a PNG ``cICP``-tagged where the source is HDR or
    wide-gamut and carrying the record of the upscale (``made_by``; ``None`` for the class map: RGB, 8 bits; not
    written, nor a source's EXR attributes or Radiance lines but those of how it looks, with
    :attr:`EncodeOptions.strip_metadata`), a JPEG
    at ``--quality`` (:attr:`EncodeOptions.quality`). Non-square pixels (``sar``) are written as ffmpeg's encoders write them (PNG's
    ``pHYs`` without a unit, TIFF's resolutions, JFIF's density without a unit), as OpenEXR's ``pixelAspectRatio`` and
    as Radiance's ``PIXASPECT``.
    ``background``: each frame written on a thread of its own (a GPU's run). PNG's is faster than ffmpeg's encoder,
    TIFF's compresses, JPEG's is `classsr upscale`'s (quality 95 unless asked, 4:4:4; docs/cli.md)."""
    from classsr_cli import __version__
    from classsr_cli.io.image import (
        Meta,
        Nclx,
        PngText,
        exr_attributes,
        jpeg_encoder,
        pfm_encoder,
        png_encoder,
        radiance_encoder,
        radiance_lines,
        tiff_encoder,
    )

    record = None if options.strip_metadata else made_by  # what is written; made_by also tells the class map apart
    if options.codec in LINEAR_CODECS:
        from classsr_cli.io.exr import Linear, frame_encoder

        first = info.path.with_name(info.path.name % info.first_number) if info.stops is not None else None
        source = first.suffix.lower() if first is not None else None  # .exr, .hdr, .pfm: what a like output carries
        from classsr_cli.io.image import light_decoder
        from classsr_cli.io.jxl import h273

        coded = h273(*color_tags(info.color)[1:]) if info.stops is None else None  # an HDR video's light, as it shows
        shown = Nclx(coded[0], coded[1], 0, True) if coded else None
        if options.codec == EXR_CODEC:
            gray = source == ".exr" and str(info.pix_fmt).startswith(("gray", "ya"))  # an EXR of Y (and A) stays so
            attributes = exr_attributes(first, strip=options.strip_metadata) if first and source == ".exr" else {}
            if sar is not None and sar != 1:  # the pixel shape (width over height), as OpenEXR holds it
                attributes["pixelAspectRatio"] = ("float", struct.pack("<f", float(sar)))
            encode = frame_encoder(alpha=plan.alpha, half=half, gray=gray, made_by=record, attributes=attributes,
                                   decode=light_decoder(Meta(nclx=shown)))  # fmt: skip
        elif options.codec == "pfm":  # its floats alone: no attributes, record or pixel shape
            encode = pfm_encoder(Meta(nclx=shown))
        else:
            lines = radiance_lines(first, strip=options.strip_metadata) if first and source == ".hdr" else ()
            if sar is not None and sar != 1 and not any(ln.startswith("PIXASPECT=") for ln in lines):
                lines = (*lines, f"PIXASPECT={float(1 / sar):.6f}")  # Radiance's pixel shape: height over width
            encode = radiance_encoder(Meta(made_by=record, linear=Linear(half=False, lines=lines), nclx=shown))
        return FrameFiles(path, width, height, channels=3 + plan.alpha, encode=encode, first_number=first_number,
                          target=target, linear=True, background=background)  # fmt: skip
    alpha = made_by is not None and plan.alpha  # the class map: RGB, 8 bits
    bits = 16 if made_by is not None and plan.bits == 16 else 8
    own = _OWN_FORMATS.get(str(options.codec), {})
    if _ffmpeg_encodes(options, own.get((bits, alpha))):
        return None
    from classsr_cli.io.jxl import h273

    codes = h273(*color_tags(info.color)[1:])
    tagged = codes is not None and (codes[0] in (9, 11, 12) or codes[1] in (14, 15, 16, 18))  # HDR or wide gamut
    aspect = (sar.numerator, sar.denominator) if sar is not None and sar != 1 else None  # as ffmpeg's encoders write it
    meta = Meta(nclx=Nclx(codes[0], codes[1], 0, True) if tagged and codes else None, aspect=aspect,
                text=(PngText("Software", f"classsr {__version__}"), PngText("classsr", record)) if record else ())
    if options.codec == "mjpeg":  # as upscale writes a JPEG (quality 95 or --quality, 4:4:4), the record as comment
        encoder = jpeg_encoder(Meta(made_by=record, aspect=aspect), options.quality)
    else:
        encoder = png_encoder(meta) if options.codec == "png" else tiff_encoder(replace(meta, nclx=None))  # no cICP in TIFF
    if options.codec in ("mjpeg", "tiff") and codes is not None and made_by is not None:
        encoder = _shown_sdr(encoder, codes[0], codes[1], hdr_peak(color_tags(info.color)[2], info.hdr10))
    return FrameFiles(path, width, height, channels=3 + alpha, encode=encoder, background=background,
                      dtype=np.uint16 if bits == 16 else np.uint8, first_number=first_number, target=target)


def _shown_sdr(encode: Callable[[Path, list[np.ndarray], Any], None], primaries: int, transfer: int,
               peak: float) -> Callable[[Path, list[np.ndarray], Any], None]:
    """``encode`` of frames whose rows are first brought from an HDR or wide-gamut source's colours (H.273 codes) to
    SDR sRGB (:func:`classsr_cli.io.sdr.to_sdr`, the light tone-mapped from ``peak`` cd/m²), as ffmpeg's filters
    bring a GIF's or WebP's (:func:`classsr_cli.io.video._to_sdr`): JPEG and TIFF frames hold no colour tags."""
    from classsr_cli.io.sdr import needs, to_sdr

    if not needs(primaries, transfer):
        return encode

    def shown(path: Path, rows: list[np.ndarray], light: Any) -> None:
        encode(path, [to_sdr(band, primaries, transfer, peak) for band in rows], light)

    return shown


def _recolour(info: VideoInfo) -> Callable[[np.ndarray], np.ndarray] | None:
    """How an OpenEXR or Radiance sequence's frames, in primaries other than sRGB's (its first frame's chromaticities
    or ``PRIMARIES=`` line: ACEScg's), are brought into sRGB's for an output shown in them
    (:func:`classsr_cli.io.sdr.to_srgb_primaries`); ``None`` for other sources."""
    suffix = info.path.suffix.lower()
    if info.stops is None or not info.sequence or suffix not in (".exr", ".hdr"):
        return None
    from classsr_cli.io.exr import Linear
    from classsr_cli.io.image import exr_attributes, primaries_of, radiance_lines
    from classsr_cli.io.sdr import to_srgb_primaries

    first = info.path.with_name(info.path.name % info.first_number)
    light = (Linear(half=True, attributes=exr_attributes(first)) if suffix == ".exr"
             else Linear(half=False, lines=radiance_lines(first)))  # fmt: skip
    chroma = primaries_of(light)
    if chroma is None:
        return None
    return lambda rows: to_srgb_primaries(rows, chroma) if rows.shape[2] == 3 else rows


@dataclass(frozen=True)
class _Grown:
    """How a frame is grown before it is upscaled, and which output rows and columns are then its own: a 360° frame
    (equirectangular) by :data:`~classsr_cli.pipeline.WRAP_PAD` columns of its other side on each side, so that no seam
    shows where its edges meet (a side-by-side stereo one: each eye alike, :func:`~classsr_cli.pipeline.wrapped`); a
    stereo frame's eyes apart where they meet (top and bottom; side by side where not grown round), each by its own
    rows (columns) mirrored, so that neither sees the other's opposite side (:func:`~classsr_cli.pipeline.apart`)."""

    wrap: int | None = None  # the output columns left out on each side of each eye (wrap_cut)
    eyes: int = 1
    apart: int | None = None  # the output rows (columns) left out on each side of where the eyes meet (apart_cut)
    axis: int = 0  # the eyes top and bottom (0) or side by side (1)

    @classmethod
    def of(cls, up: Upscaler, info: VideoInfo, height: int, width: int) -> _Grown:
        eyes = 2 if info.stereo == "side by side" else 1
        wrap = (wrap_cut(up, height, width, eyes)
                if info.projection == "equirectangular" and info.stereo in (None, "top and bottom", "side by side")
                else None)  # fmt: skip
        axis = 0 if info.stereo == "top and bottom" else 1
        apart = (apart_cut(up, height, width, axis)
                 if info.stereo == "top and bottom" or (info.stereo == "side by side" and wrap is None) else None)  # fmt: skip
        return cls(wrap, eyes, apart, axis)

    def frame(self, a: np.ndarray) -> np.ndarray:
        a = wrapped(a, self.eyes) if self.wrap is not None else a
        return apart(a, self.axis) if self.apart is not None else a

    def size(self, height: int, width: int) -> tuple[int, int]:
        """The grown frame's size (LR rows, columns)."""
        width += 2 * self.eyes * WRAP_PAD if self.wrap is not None else 0
        if self.apart is not None:
            height, width = (height + 2 * WRAP_PAD, width) if self.axis == 0 else (height, width + 2 * WRAP_PAD)
        return height, width

    def out_height(self, height: int) -> int:
        """The output rows of the grown frame of a frame ``height`` rows high as upscaled."""
        return height + (2 * self.apart if self.apart is not None and self.axis == 0 else 0)

    def cols(self, width: int) -> slice | np.ndarray | None:
        """The frame's own ``width`` output columns of the grown frame's (``None``: the first ``width``)."""
        if self.wrap is not None:
            return unwrapped_columns(self.wrap, width, self.eyes)
        return kept(self.apart, width) if self.apart is not None and self.axis == 1 else None

    def rows(self, height: int) -> np.ndarray | None:
        """The frame's own ``height`` output rows of the grown frame's (``None``: the first ``height``)."""
        return kept(self.apart, height) if self.apart is not None and self.axis == 0 else None


def _encode(run: PixelRun, writers: list[VideoWriter | FrameFiles], pts: int, duration: int | None, height: int,
            alpha: np.ndarray | None = None, brighten: np.ndarray | None = None, light: Linear | None = None,
            own_cols: slice | np.ndarray | None = None, own_rows: np.ndarray | None = None,
            recolour: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
    """Send the rows of one frame (``height`` rows as upscaled, grown rows counted) to the encoder (and, tinted by
    class, to the class map's) as they finish, cropped to the writers' size (an even one, :func:`even_size`); with the
    frame's upscaled ``alpha`` beside them where the encoder takes it (the class map does not); each level through
    ``brighten`` (a lookup table: linear light read darker, :attr:`~classsr_cli.io.video.VideoInfo.stops`) where
    given, except for OpenEXR frames (a :class:`~classsr_cli.io.frames.FrameFiles` of light), which take the levels as
    computed and the frame's ``light`` (its stops and the light outside 0-1) to write linear light. ``own_cols`` and
    ``own_rows``: the output columns and rows that are the frame's own, of a frame grown before it was upscaled (a 360°
    frame by its other side's columns, :func:`~classsr_cli.pipeline.wrapped`; a stereo frame's eyes apart,
    :func:`~classsr_cli.pipeline.apart`). ``recolour``: what brings the main output's levels into sRGB's primaries
    (:func:`_recolour`)."""
    from classsr_cli.io.classmap import tint

    own = isinstance(writers[0], FrameFiles) and writers[0].linear
    for k, writer in enumerate(writers):
        if k == 0 and isinstance(writer, FrameFiles):
            writer.begin_frame(pts, duration, light)
        else:
            writer.begin_frame(pts, duration)
    keep, width = writers[0].height, writers[0].width
    cols = slice(0, width) if own_cols is None else own_cols
    want = np.arange(keep) if own_rows is None else own_rows[:keep]  # the run's rows written, in order
    y = done = 0
    for computed in run:
        rows = computed if brighten is None else brighten[computed]
        main = computed if own else rows if recolour is None else recolour(rows)
        take = want[(want >= y) & (want < y + rows.shape[0])] - y
        n = take.size
        pick = slice(int(take[0]), int(take[-1]) + 1) if n and take[-1] - take[0] + 1 == n else take  # (a run of rows)
        if n and alpha is not None:  # the main writer takes RGBA (alpha=plan.alpha, as the reader)
            writers[0].write_rows(np.concatenate([main[pick][:, cols], alpha[done : done + n, :width, None]], axis=2))
        elif n:
            writers[0].write_rows(main[pick][:, cols])
        if n and len(writers) > 1:
            assert run.frame is not None
            grid = run.frame.grid
            classes = run.frame.classes.view(grid.rows, grid.cols).numpy()
            writers[1].write_rows(tint(rows, classes, grid.step, (grid.height, grid.width), height, y)[pick][:, cols])
        y, done = y + rows.shape[0], done + n
