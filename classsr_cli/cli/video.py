"""`classsr video`: upscale a video as one stream, keeping every frame, the timing, the audio and subtitles."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any

import typer

from classsr_cli.cli._common import (
    EXIT_PARTIAL,
    SAID_AS,
    Command,
    Precision,
    Terminated,
    err,
    guarded,
    out,
    passes_clause,
    resample_note,
    said,
    tolerance_note,
)
from classsr_cli.cli._options import (
    DEFAULT_BATCH,
    DEFAULT_STEP,
    BatchOpt,
    DeviceOpt,
    ForceBranchOpt,
    FrameQualityOpt,
    HeightOpt,
    OverwriteOpt,
    PrecisionOpt,
    ScaleOpt,
    StepOpt,
    ThreadsOpt,
    ToleranceOpt,
    TtaOpt,
    VideoModelOpt,
    WidthOpt,
    flag,
    output_scale,
    output_size,
)

EXAMPLES = """\
Examples:

  classsr video clip.mp4                                  # clip_x4.mp4 beside it
  classsr video clip.mp4 clip_x4.mp4                      # audio and subtitles copied
  classsr video clip.mp4 out/                             # out/clip_x4.mp4
  classsr video clip.mp4 clip_4k.mp4 --height 2160        # 1080p (x2) or 720p (x3) to 2160 high
  classsr video clip.mp4 try.mp4 --start 1:30 --duration 5  # five seconds first, audio and subtitles too
  classsr video clip.mkv big.mkv -x2 --codec libx265 --crf 20 --preset slow
  classsr video clip.mp4 out.mp4 --reuse --classmap       # also out_classmap.mp4
  classsr video clip.webm out.webm --json > run.json
  classsr video film.mkv film_x4.mkv --resume             # stopped? the same command continues
  classsr video film.mkv film_x4.mkv --dry-run            # how long, how large: a 2 s sample timed
  classsr video sticker.gif sticker_x4.gif                # every frame, its timing and transparency
  classsr video VTS_01_1.VOB film_x2.mkv -x2 --ivtc       # an NTSC DVD's film frames put back, not deinterlaced
  classsr video phone.mp4 edit.mov --fps 30 --codec prores_ks   # a constant rate for an editor
  classsr video renders/ shot.mov --fps 24 --codec prores_ks     # a numbered image sequence (or renders/%04d.png)
  classsr video clip.mp4 frames/%05d.png                  # a PNG a frame (.tif and .dpx 16-bit where deep, .jpg, .exr, .hdr, .pfm)
"""


def register(app: typer.Typer) -> None:
    app.command("video", cls=Command, epilog=EXAMPLES)(video)


def _encoder_opts(values: list[str]) -> tuple[tuple[str, str], ...]:
    from classsr_cli.errors import ConfigError

    pairs = []
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--encoder-opt takes KEY=VALUE (e.g. tune=film), got {v!r}")
        pairs.append((key.strip(), value))
    return tuple(pairs)


def _frame_rate(text: str) -> Fraction:
    """``--fps``: a rate as a number (29.97: NTSC's 30000/1001) or a fraction; a usage error otherwise."""
    from classsr_cli.errors import ConfigError

    try:
        rate = Fraction(text.strip()).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    for base in (24, 30, 48, 60, 120):  # 23.976, 29.97, 59.94...: the NTSC rates, N·1000/1001
        if abs(rate - Fraction(base * 1000, 1001)) < Fraction(1, 200):
            rate = Fraction(base * 1000, 1001)
    if not 0 < rate <= 1000:
        raise ConfigError(f"--fps takes a frame rate above 0 and up to 1000 (30, 29.97, 30000/1001), got {text!r}")
    return rate


@guarded
def video(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT", help="Video or animation to upscale (mp4, mkv, webm, mov, avi, gif, ...), or a numbered image sequence: "
            "its folder, or a pattern (frames/shot_%04d.png).", show_default=False
        ),
    ],
    output: Annotated[
        str | None,  # str, not Path: a trailing "/" means "a folder" and Path would drop it
        typer.Argument(
            metavar="[OUTPUT]",
            help="Output file (its extension picks the container), or a folder (existing, or ending with /) "
            "that gets INPUT_STEM_x{scale}.EXT, or a numbered picture pattern (frames/%05d.png, .tif, .jpg, .dpx, .jxl, .exr, .hdr, .pfm). "
            "Default: INPUT_STEM_x{scale}.EXT beside the input.",
            show_default=False,
        ),
    ] = None,
    output_opt: Annotated[
        str | None,
        typer.Option("-o", "--output", metavar="PATH", help="OUTPUT as an option, as `upscale` takes it.",
                     show_default=False),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", "--from", metavar="TIME", help="Upscale from this time (seconds, or "
                                 "[HH:]MM:SS[.ms]); --from under torchrun, whose own options take --start.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", metavar="TIME", help="Upscale this long (seconds, or [HH:]MM:SS[.ms]): "
                                 "try a few seconds before the whole video.")
    ] = None,
    scale: ScaleOpt = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    model: VideoModelOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = DEFAULT_BATCH,
    step: StepOpt = DEFAULT_STEP,
    tolerance: ToleranceOpt = None,
    force_branch: ForceBranchOpt = None,
    tta: TtaOpt = 1,
    codec: Annotated[
        str | None,
        typer.Option(help="ffmpeg video encoder. Default: libx264; libx265 (HEVC) for an output above 8 bits in "
                     ".mp4, .mov, .mkv; libvpx-vp9 for .webm."),
    ] = None,
    crf: Annotated[int, typer.Option(min=0, max=63, help="Constant quality (lower is better).")] = 18,
    preset: Annotated[str, typer.Option(help="Encoder speed preset (x264/x265).")] = "medium",
    pix_fmt: Annotated[
        str | None,
        typer.Option("--pix-fmt", metavar="FMT", help="Output pixel format. Default: yuv420p; yuv420p10le for a "
                     "10- or 12-bit source (where the codec takes it). A 10-bit one (e.g. yuv420p10le) keeps finer "
                     "levels of an 8-bit source's upscale too."),
    ] = None,
    quality: FrameQualityOpt = None,
    encoder_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--encoder-opt", "-e", help="Extra encoder option KEY=VALUE (repeatable), e.g. tune=film."
        ),
    ] = None,
    fps: Annotated[
        str | None,
        typer.Option("--fps", metavar="RATE", show_default=False,
                     help="Write at this constant frame rate (30, 29.97, 30000/1001), frames repeated or dropped to "
                     "keep time: for editors that want a constant rate. Default: each frame at its source time. An image "
                     "sequence is read at this rate (default 25)."),
    ] = None,
    no_deinterlace: Annotated[
        bool, flag("--no-deinterlace", help="Upscale an interlaced source's fields together as frames (by default "
                   "they are deinterlaced first, bwdif, a frame for each frame).")
    ] = False,
    ivtc: Annotated[
        bool, flag("--ivtc", help="Telecined film (an NTSC DVD of a film or anime: 23.976 frames/s carried at 29.97 "
                   "interlaced): put its film frames back (fieldmatch, decimate; 4 frames in 5) instead of "
                   "deinterlacing every frame. A note suggests it where the source looks telecined.")
    ] = False,
    no_audio: Annotated[bool, flag("--no-audio", help="Drop the audio (it is copied by default).")] = False,
    no_subtitles: Annotated[bool, flag("--no-subtitles", help="Drop the subtitle streams.")] = False,
    strip_metadata: Annotated[
        bool, flag("--strip-metadata", help="Write none of the source's metadata (a phone's place and camera, dates, "
                   "title) and no record of the upscale in a sequence's frames; chapters, timecode, languages and "
                   "colour tags are kept.")
    ] = False,
    overwrite: OverwriteOpt = False,
    json_out: Annotated[bool, flag("--json", help="Print one JSON summary on stdout.")] = False,
    classmap: Annotated[
        bool, flag("--classmap", help="Also write OUTPUT_STEM_classmap.EXT, patches tinted by class.")
    ] = False,
    reuse: Annotated[
        bool, flag("--reuse", help="Reuse the output of patches unchanged since they were last computed.")
    ] = False,
    reuse_threshold: Annotated[
        int,
        typer.Option(
            min=0, max=255, help="Largest pixel difference (8-bit levels) that counts as unchanged."
        ),
    ] = 0,
    dry_run: Annotated[
        bool,
        flag("--dry-run", help="Say what would be written, and how long the run would take and how large the output "
             "would be, from 2 s of video upscaled from the middle into a temporary file; nothing else is written."),
    ] = False,
    resume: Annotated[
        bool,
        flag("--resume", help="Write the video in chunks (a hidden folder beside OUTPUT) so that a run stopped by "
             "Ctrl-C, a crash or a power cut continues where it stopped when the same command is run again."),
    ] = False,
    hysteresis: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Probability margin a patch needs to change class (0: off); the "
                     "paper-preset models only (the default models decide by predicted error)."),
    ] = 0.1,
) -> None:
    """Upscale a video with ClassSR, frame by frame through ffmpeg pipes (nothing dumped to disk)."""
    from classsr_cli import distributed, runtime, zoo
    from classsr_cli.errors import ClassSRError, ConfigError
    from classsr_cli.io.video import IVTC, EncodeOptions
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.video import (
        TemporalOptions,
        auto_model,
        estimate_video,
        kept_frames,
        output_path,
        resume_folder,
        upscale_video,
    )

    if ivtc and no_deinterlace:
        raise ConfigError("--ivtc and --no-deinterlace ask for opposite things; give one")
    fields = IVTC if ivtc else not no_deinterlace  # how an interlaced source's fields become frames
    world = distributed.world()  # under torchrun each rank upscales a share of the frames, rank 0 joins them
    if world.active and dry_run:
        raise ConfigError("--dry-run times a sample in one process: run it without torchrun")
    auto = model == zoo.AUTO and not Path(model).is_file()  # a file named auto is a model file
    model = None if auto else model  # auto's models are the default's family's kin: its scale
    start_s = seconds_of(start, "--start") if start is not None else 0.0  # before the model loads
    length_s = seconds_of(duration, "--duration") if duration is not None else None
    if output is not None and output_opt is not None:
        raise ConfigError(f"OUTPUT is given twice ({output} and -o {output_opt}); give one")
    if "" in (output, output_opt):  # an unset shell variable: not "beside the input"
        raise ConfigError("OUTPUT is empty; name a file or a folder, or leave it out to write beside the input")
    output = output or output_opt or f"{source.parent}{os.sep}"  # beside the input, named as upscale names it
    media = _motion_video(source, world.is_main)  # a Motion Photo's video, taken out; else the input itself
    media = _jxl_codestream(media, world.is_main)  # a JPEG XL animation's codestream, where ffmpeg needs it alone
    size = output_size(width, height, scale)
    if size is None:
        scale = output_scale(scale, model, chain=True)
        target = output_path(media, output, scale)  # a folder gets INPUT_STEM_x4.EXT; a bare name is refused here
    else:
        target = output_path(media, output, 0, tag=size.tag)  # INPUT_STEM_h2160.EXT for --height 2160
        try:
            scale = _size_scale(size, media, model)
        except ClassSRError as e:
            _failure_record(json_out, source, target, e)
            raise
    options = EncodeOptions(
        codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, extra=_encoder_opts(encoder_opt or []),
        audio=not no_audio, subtitles=not no_subtitles, fps=_frame_rate(fps) if fps is not None else None,
        quality=quality, strip_metadata=strip_metadata,
    )  # fmt: skip
    try:
        runtime.set_threads(threads)
        dev = runtime.resolve_device(distributed.device_name(world, device))
        distributed.start(world, dev)
        dtype = runtime.resolve_dtype(precision.value, dev)
        if auto:  # from the first frame, as its noise note reads it
            try:
                model, why = auto_model(media, scale, start_s)
            except ClassSRError as e:
                _failure_record(json_out, source, target, e)
                raise
            if world.is_main:
                err.print(f"note: --model auto: {model or 'the default model'} ({why})", soft_wrap=True, markup=False)
        loaded = zoo.load(model, min(scale, zoo.MAX_SCALE), device=dev, dtype=dtype)
        upscaler = Upscaler.of(loaded, scale=scale, step=step, batch_size=batch_size, tolerance=tolerance,
                               force_branch=force_branch.value if force_branch else None, tta=tta,
                               enlarge=scale > zoo.MAX_SCALE)  # above x4: the x4 model, then a bicubic enlargement
    except KeyboardInterrupt as e:  # before any frame: a stopped run's chunks are still there, as after any stop
        if resume and not dry_run and (kept := kept_frames(target)):
            said = _kept_line(e, kept, target)
            _failure_record(json_out, source, target, said)
            raise type(e)(said) from None
        raise
    if world.is_main:
        resample_note(upscaler, None if size is None else f"{zoo.factor_text(scale)} ({size.describe()})")
        tolerance_note(tolerance)
    temporal = TemporalOptions(hysteresis=hysteresis, reuse=reuse, reuse_threshold=reuse_threshold)
    if dry_run:
        try:
            guess = estimate_video(upscaler, media, target, options=options, temporal=temporal, classmap=classmap,
                                   overwrite=overwrite, start=start_s, length=length_s, resume=resume,
                                   deinterlace=fields)  # fmt: skip
        except ClassSRError as e:
            _failure_record(json_out, source, target, e)
            raise
        _dry_summary({**guess.to_dict(), "input": str(source)}, json_out)
        return
    progress = _Progress(show=world.is_main)
    try:
        with progress as on_frame:
            result = upscale_video(
                upscaler,
                media,
                target,
                options=options,
                temporal=temporal,
                classmap=classmap,
                overwrite=overwrite,
                progress=on_frame,
                start=start_s,
                length=length_s,
                resume=resume,
                deinterlace=fields,
                world=world,
            )
    except ClassSRError as e:
        _failure_record(json_out, source, target, e)
        if resume and (kept := kept_frames(target)) and str(resume_folder(target)) not in str(e):
            err.print(f"note: {kept} frame(s) are kept in {resume_folder(target)}: once this is fixed, run the same "
                      "command to continue", soft_wrap=True, markup=False, highlight=False)
        raise
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: a script reading --json learns it, and how far it got
        why = _stopped_by(e)
        kept = kept_frames(target) if resume else 0
        if world.active:  # each share's finished chunks are kept in a folder of their own
            mine = kept_frames(target, world)
            said = f"{why} after {progress.done} frame(s) of rank {world.rank}'s share; " + (
                f"{mine} are kept in {resume_folder(target)}: run the same command to continue" if mine
                else "none was in a finished chunk: nothing of it was kept")
        elif kept:
            said = _kept_line(e, kept, target)
        elif resume:
            said = f"{why} after {progress.done} frame(s), before a chunk was finished: nothing was kept"
        else:
            said = f"{why} after {progress.done} frame(s); the output was removed"
            if progress.elapsed() >= LONG_RUN_S:  # what would have kept this run's work
                err.print(f"note: {progress.done} frame(s) upscaled in {_clock(progress.elapsed())} were lost; add "
                          "--resume to a long run so that a stop can be continued", soft_wrap=True, markup=False)
        _failure_record(json_out, source, target, said)
        if resume or world.active:  # one line: what was kept, or that nothing was
            raise type(e)(said) from None
        raise
    distributed.finish(world)
    if not world.is_main:  # its share is in the output rank 0 wrote and reports
        return
    record = result.to_dict()
    record["input"] = str(source)  # (a Motion Photo's, not its video's taken out)
    record["model"] = str(loaded.path)
    record["device"] = str(dev)
    if world.active:
        record["ranks"] = world.size
    if json_out:
        out.print(json.dumps(record), soft_wrap=True, markup=False, highlight=False)
    else:
        _summary(record)
        for path in (record["output"], record.get("classmap")):  # like upscale: what was written, on stdout
            if path:
                typer.echo(path)
    if result.lost:
        err.print(f"[bold red]error:[/] {source}: {result.lost}", soft_wrap=True)
        raise typer.Exit(EXIT_PARTIAL)


def seconds_of(text: str, option: str) -> float:
    """``90``, ``1:30`` or ``00:01:30.5`` -> seconds; a :class:`ConfigError` naming ``option`` otherwise."""
    import re

    from classsr_cli.errors import ConfigError

    parts = text.strip().split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d*)?|\.\d+", p) for p in parts):
        raise ConfigError(f"{option} takes seconds or [HH:]MM:SS[.ms], got {text!r}")
    values = [float(p) for p in parts]
    if any(v >= 60 for v in values[1:]):
        raise ConfigError(f"{option} takes seconds or [HH:]MM:SS[.ms], got {text!r}")
    total = 0.0
    for v in values:
        total = total * 60 + v
    return total


def _dry_summary(r: dict[str, Any], json_out: bool) -> None:
    """``--dry-run``'s lines on stderr (the record on stdout with ``--json``)."""
    w, h = r["size"]
    ow, oh = r["output_size"]
    e = r["estimate"]
    length = f"{r['frames']} frames ({r['duration']:.1f} s)" if r["frames"] and r["duration"] else "length unknown"
    err.print(f"would write {r['output']}: {length}, {w}x{h} -> {ow}x{oh} {r['pix_fmt']}", soft_wrap=True, markup=False)
    size = f", about {e['bytes'] / 1e6:,.0f} MB{' in all' if r.get('kept') else ''}" if e["bytes"] else ""
    took = f"about {_clock(e['seconds'])}" if e["seconds"] is not None else "unknown (no frame count in the header)"
    if r.get("kept") and e["seconds"] is not None:
        took += f" for the {max(0, r['frames'] - r['kept'])} frame(s) not kept ({r['kept']} kept by the stopped run)"
    err.print(f"estimate: {took}{size} ({e['fps']:.2f} frames/s on {e['sample_frames']} frames from "
              f"{e['sample_start']:g} s, timed on this machine)", soft_wrap=True, markup=False)
    for note in r["notes"]:
        err.print(f"note: {note}", soft_wrap=True, markup=False)
    err.print("dry run: nothing was written", soft_wrap=True)
    if json_out:
        out.print(json.dumps(r), soft_wrap=True, markup=False, highlight=False)


def _stopped_by(e: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"


def _kept_line(e: KeyboardInterrupt, kept: int, target: Path) -> str:
    """What a stop of a ``--resume`` run says where a stopped run's chunks hold ``kept`` frames."""
    from classsr_cli.video import resume_folder

    return f"{_stopped_by(e)}; {kept} frame(s) kept in {resume_folder(target)}: run the same command to continue"


def _failure_record(json_out: bool, source: Path, target: Path, e: Exception | str) -> None:
    """As upscale's: with --json, a failure is a record on stdout too."""
    if json_out:
        out.print(json.dumps({"input": str(source), "output": str(target), "error": said(str(e))}), soft_wrap=True,
                  markup=False, highlight=False)


def _motion_video(source: Path, say: bool) -> Path:
    """``source``, or where it is a Motion Photo (a Pixel's ``PXL_....MP.jpg``, a Samsung's HEIC), its video taken out
    into a temporary folder (removed when classsr ends) as ``{stem}.mp4``, which the run then upscales (a note says
    so where ``say``)."""
    import atexit
    import shutil
    import tempfile

    from classsr_cli.io import motion

    clip = motion.video_of(source)
    if clip is None:
        return source
    folder = Path(tempfile.mkdtemp(prefix="classsr-motion-"))
    atexit.register(shutil.rmtree, folder, True)
    media = folder / f"{source.stem}.mp4"
    media.write_bytes(clip)
    SAID_AS[str(media)] = f"{source}'s video"
    if say:
        err.print(f"note: {source.name} is a Motion Photo: its video ({len(clip):,} bytes) is upscaled; "
                  "`classsr upscale` upscales its picture, its video kept as it came", soft_wrap=True, markup=False,
                  highlight=False)  # fmt: skip
    return media


def _jxl_codestream(source: Path, say: bool) -> Path:
    """``source``, or where it is a JPEG XL animation in a container in which ffmpeg's reader finds no size ("has no
    video stream": KDE's bug_496350.jxl, which `classsr upscale` reads from its codestream), its codestream alone in a
    temporary folder (removed when classsr ends) as ``{stem}.jxl``, which ffmpeg reads (a note says so where
    ``say``)."""
    import atexit
    import shutil
    import tempfile

    from classsr_cli.errors import InputError
    from classsr_cli.io import jxl
    from classsr_cli.io.video import probe

    try:
        with source.open("rb") as f:  # (a video's first bytes only)
            if not f.read(12).startswith(jxl.CONTAINER):
                return source
        probe(source)
        return source  # (it reads)
    except InputError as e:
        if "has no video stream" not in str(e):
            return source  # (said as the run says it)
    except OSError:
        return source
    try:
        codestream = jxl.read_boxes(source.read_bytes()).codestream
        if not jxl.header(codestream).animated:
            return source
    except (OSError, ValueError):
        return source
    folder = Path(tempfile.mkdtemp(prefix="classsr-jxl-"))
    atexit.register(shutil.rmtree, folder, True)
    media = folder / f"{source.stem}.jxl"
    media.write_bytes(codestream)
    SAID_AS[str(media)] = str(source)
    if say:
        err.print(f"note: {source.name}: the bundled ffmpeg does not open this JPEG XL animation's container: its "
                  "codestream is read alone (its EXIF and XMP boxes left out)", soft_wrap=True, markup=False,
                  highlight=False)  # fmt: skip
    return media


def _size_scale(size: Any, source: Path, model: str | None) -> float:
    """The factor that gives ``source`` the size asked for, in its frame as shown: the pixel aspect ratio widens
    it, a rotation by 90 degrees turns it."""
    from classsr_cli import zoo
    from classsr_cli.io.video import probe

    info = probe(source)
    shown_w, shown_h = round(info.width * float(info.sar or 1)), info.height
    if round(info.rotation) % 180 == 90 or info.transposed:
        shown_w, shown_h = shown_h, shown_w
    return float(size.scale_for(shown_h, shown_w, zoo.own_scale(model), str(source), chain=True))


#: A run stopped after this many seconds without --resume gets a note that --resume would have kept its work.
LONG_RUN_S = 300.0


class _Progress:
    """A rich progress bar on stderr (frames, fps, ETA); the callback it yields updates it. Where stderr is not a
    terminal (a log file, nohup, CI) a plain line says the same every :attr:`every` seconds instead, so a long run
    does not look hung."""

    every = 30.0

    def __init__(self, show: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("frames"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[fps]} fps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=err, transient=True, disable=not (show and err.is_terminal),
        )  # fmt: skip
        self.show = show  # only rank 0's shows under torchrun
        self.task = self.bar.add_task("frames", total=None, fps="-")
        self.done = 0  # frames upscaled so far
        self.started: float | None = None

    def __enter__(self) -> Any:
        import time

        self.bar.__enter__()
        start = self.started = time.perf_counter()

        said = start

        def on_frame(done: int, expected: int | None) -> None:
            nonlocal said
            self.done = done
            now = time.perf_counter()
            rate = done / max(now - start, 1e-9)
            total = max(expected, done) if expected else None
            self.bar.update(self.task, completed=done, total=total, fps=f"{rate:.1f}")
            if self.show and not err.is_terminal and now - said >= self.every:
                said = now
                of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
                eta = f", ETA {_clock((total - done) / rate)}" if total and rate > 0 else ""
                err.print(f"frames {done}{of}, {rate:.1f} frames/s, {_clock(now - start)} elapsed{eta}",
                          soft_wrap=True, markup=False)

        return on_frame

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def elapsed(self) -> float:
        """Seconds since the first frame was awaited (0 before)."""
        import time

        return time.perf_counter() - self.started if self.started is not None else 0.0


def _clock(seconds: float) -> str:
    """``H:MM:SS``."""
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _giga(n: float) -> str:
    return f"{n / 1e9:,.2f} G"


def _part(r: dict[str, Any]) -> str:
    """`` from 4.5 s`` / `` from 4.5 to 6.5 s`` for a part of the source (--start, --duration), else nothing."""
    start, length = r.get("start") or 0.0, r.get("length")
    if not start and length is None:
        return ""
    return f" from {start:g}" + (f" to {start + length:g} s" if length is not None else " s")


#: Up to this many scenes get a line each in the report; more, one line of their range (``--json`` lists each).
SCENE_LINES = 10


def _scenes(scenes: list[dict[str, Any]]) -> None:
    """Where routing saved, scene by scene (:mod:`classsr_cli.scenes`), when cuts split the video."""
    if len(scenes) < 2:
        return
    saved = [100 * sc["flops"]["saved_vs_whole"] for sc in scenes]
    if len(scenes) > SCENE_LINES:
        least = sorted(range(len(scenes)), key=lambda i: saved[i])[:3]  # where the compute went
        where = ", ".join(f"scene {i + 1} from {scenes[i]['start']:.2f} s ({saved[i]:.1f}%)" for i in least)
        err.print(f"scenes: {len(scenes)} (cuts found), FLOPs saved {min(saved):.1f}% to {max(saved):.1f}% "
                  f"(median {sorted(saved)[len(saved) // 2]:.1f}%); least: {where}; --json lists each", soft_wrap=True)
        return
    for n, (sc, pct) in enumerate(zip(scenes, saved, strict=True), 1):
        p = sc["patches"]
        total = max(sum(p.values()), 1)
        parts = " · ".join(f"{k} {100 * p[k] / total:.1f}%" for k in ("light", "medium", "heavy"))
        err.print(f"scene {n}: from {sc['start']:.2f} s (frame {sc['first_frame']}), {sc['frames']} frame"
                  f"{'' if sc['frames'] == 1 else 's'}: {parts} · FLOPs saved {pct:.1f}%", soft_wrap=True)


def _summary(r: dict[str, Any]) -> None:
    w, h = r["size"]
    ow, oh = r["output_size"]
    shown = f" (shown {r['output_shown'][0]}x{r['output_shown'][1]})" if r.get("output_shown") else ""
    ranks = f" on {r['ranks']} ranks" if r.get("ranks") else ""  # under torchrun
    err.print(
        f"[bold]{r['output']}[/]: {r['frames']} frame{'' if r['frames'] == 1 else 's'}{_part(r)}, {w}x{h} -> {ow}x{oh}"
        f"{shown} {r['pix_fmt']}, "
        f"{r['seconds']:.1f} s ({r['fps']:.2f} frames/s{ranks})",
        soft_wrap=True,
    )
    p = r["patches"]
    total = max(p["total"], 1)
    parts = " · ".join(f"{k} {p[k]:,} ({100 * p[k] / total:.1f}%)" for k in ("light", "medium", "heavy"))
    err.print(f"patches: {parts} · total {p['total']:,}", soft_wrap=True)
    f = r["flops"]["real"]
    err.print(
        f"FLOPs: {_giga(f['used'])} used against {_giga(f['whole'])} for heavy on whole frames, saved "
        f"{100 * f['saved_vs_whole']:.1f}% ({100 * f['saved']:.1f}% against {_giga(f['heavy'])} for heavy on every "
        f"patch; paper convention {100 * r['flops']['paper']['saved']:.1f}%){passes_clause(r)}",
        soft_wrap=True,
    )
    t = r["temporal"]
    reuse = (
        f"reused {100 * t['reused_share']:.1f}% of patches (threshold {t['reuse_threshold']})"
        if t["reuse"]
        else "reuse off"
    )
    err.print(
        f"temporal: {reuse} · "
        + (f"hysteresis {t['hysteresis']:g} kept {100 * t['held_share']:.1f}% in class · " if t["hysteresis"] else "")
        + f"class switches {100 * t['switch_share']:.2f}% of patches (argmax alone {100 * t['switch_share_argmax']:.2f}%)",
        soft_wrap=True,
    )
    _scenes(r.get("scenes") or [])
    if r.get("classmap"):
        err.print(f"class map: {r['classmap']}", soft_wrap=True)
    if r.get("resumed"):
        err.print(f"continued: {r['resumed']} frames from the stopped run (its time included)", soft_wrap=True)
    for note in r.get("notes", []):
        err.print(f"note: {note}", soft_wrap=True)
