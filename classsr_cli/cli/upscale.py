"""`classsr upscale`: upscale images with per-class routing, and report where the compute went."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from classsr_cli.cli._common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_TERMINATED,
    Command,
    Precision,
    Terminated,
    chain_note,
    chain_text,
    debug,
    err,
    fail,
    guarded,
    passes_clause,
    resample_note,
    tolerance_note,
)
from classsr_cli.cli._options import (
    DEFAULT_BATCH,
    DEFAULT_STEP,
    BatchOpt,
    DeviceOpt,
    ForceBranchOpt,
    HeightOpt,
    ImageModelOpt,
    ImageScaleOpt,
    OverwriteOpt,
    PrecisionOpt,
    QualityOpt,
    StepOpt,
    ThreadsOpt,
    ToleranceOpt,
    TtaOpt,
    WidthOpt,
    flag,
    output_scale,
    output_size,
)

#: Same as classsr_cli.io.image.DEFAULT_MAX_PIXELS (not imported here: it would pull in Pillow for --help).
DEFAULT_MAX_PIXELS = 100_000_000


class ImageFormat(StrEnum):
    """``--format``: the suffixes of classsr_cli.io.image.WRITE_FORMATS, the first of each format's its name
    (:data:`FORMAT_NAMES`), the others (``tiff``, ``jpeg``) written under that suffix as asked."""

    png = "png"
    jpg = "jpg"
    webp = "webp"
    avif = "avif"
    heic = "heic"
    jxl = "jxl"
    exr = "exr"
    hdr = "hdr"
    tif = "tif"
    bmp = "bmp"
    tga = "tga"
    dds = "dds"
    ppm = "ppm"
    pgm = "pgm"
    pfm = "pfm"
    jp2 = "jp2"
    qoi = "qoi"
    pam = "pam"
    tiff = "tiff"
    jpeg = "jpeg"
    jpe = "jpe"
    jfif = "jfif"
    mpo = "mpo"
    heif = "heif"
    hif = "hif"
    j2k = "j2k"
    pnm = "pnm"


#: ``--format``'s names as its help lists them: one per format (the others are other suffixes of one of these).
FORMAT_NAMES = tuple(f.value for f in ImageFormat)[: list(ImageFormat).index(ImageFormat.tiff)]

EXAMPLES = """\
Examples:

  classsr upscale photo.jpg -x4                  # writes photo_x4.jpg beside it
  classsr upscale photo.png -x3 -o big.png       # x4 model, then an exact downscale to x3
  classsr upscale icon.png -x8                    # two passes: the x4 model, then x2 on its output
  classsr upscale shots/ -o out/ --recursive     # mirror the folder tree under out/
  classsr upscale shots/ --width 3000            # each photo_w3000.jpg 3000 pixels wide
  classsr upscale 'shots/*.jpg' --json > runs.jsonl
  classsr upscale photo.png --classmap           # also photo_x4_classmap.png
  classsr upscale shots/ -f jpg --dry-run        # what would be written (all JPEG); nothing is run
  classsr upscale night.jpg --model classsr_residual_noisy_x4   # noisy (and compressed): noise left out
  classsr upscale night.jpg -x2 --model classsr_residual_noisy_x2   # the same at x2
  classsr upscale photos/ --model auto           # each photo by the model its noise or JPEG quality calls for
  curl -s URL | classsr upscale - -o - -f webp > big.webp   # through pipes
"""


def register(app: typer.Typer) -> None:
    app.command("upscale", cls=Command, epilog=EXAMPLES)(upscale)


@guarded
def upscale(
    inputs: Annotated[
        list[str], typer.Argument(help="Image files, folders or glob patterns; - reads one picture from standard input.",
                                  metavar="INPUT...", show_default=False)
    ],
    output: Annotated[
        str | None,  # str, not Path: a trailing "/" means "a folder" and Path would drop it
        typer.Option(
            "-o", "--output", metavar="PATH",
            help="Output file (one input) or folder (several); - writes the picture to standard output. Default: "
            "beside the input.",
        ),
    ] = None,
    scale: ImageScaleOpt = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    model: ImageModelOpt = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    threads: ThreadsOpt = None,
    batch_size: BatchOpt = DEFAULT_BATCH,
    step: StepOpt = DEFAULT_STEP,
    tolerance: ToleranceOpt = None,
    force_branch: ForceBranchOpt = None,
    tta: TtaOpt = 1,
    classmap: Annotated[bool, flag("--classmap", help="Also write {output stem}_classmap.png.")] = False,
    classes: Annotated[
        bool, flag("--classes", help="Put every patch's class in the --json record (`routing`), without a picture.")
    ] = False,
    json_out: Annotated[bool, flag("--json", help="One JSON object per input on stdout (JSON Lines).")] = False,
    overwrite: OverwriteOpt = False,
    skip_existing: Annotated[
        bool, flag("--skip-existing", help="Leave out inputs whose outputs exist (re-runs into a folder).")
    ] = False,
    recursive: Annotated[bool, flag("--recursive", "-r", help="Walk folders and mirror their tree.")] = False,
    keep_going: Annotated[
        bool, flag("--keep-going", help="Carry on past bad inputs; list them at the end (exit 3).")
    ] = False,
    max_pixels: Annotated[
        int,
        typer.Option(min=0, metavar="N", help="Refuse inputs above this many pixels (decompression bombs); 0: no limit."),
    ] = DEFAULT_MAX_PIXELS,
    format_: Annotated[
        ImageFormat | None,
        typer.Option("--format", "-f", metavar="EXT", help="Write every output in this format: "
                     f"{', '.join(FORMAT_NAMES)}, or another suffix of one (tiff, jpeg, heif, j2k, pnm) "
                     "(default: the input's; -o FILE: its suffix).", case_sensitive=False, show_default=False),
    ] = None,
    quality: QualityOpt = None,
    strip_metadata: Annotated[
        bool, flag("--strip-metadata", help="Write no EXIF (GPS, camera), XMP, IPTC, text, comments or record of the upscale; the "
                   "ICC profile and print size are kept.")
    ] = False,
    dry_run: Annotated[
        bool, flag("--dry-run", help="Say what would be written, at what size and by which model, and what "
                   "would fail; upscale and write nothing.")
    ] = False,
) -> None:
    """Upscale images with ClassSR: a small classifier sends each patch to the light, medium or heavy branch."""
    if STDIO in inputs or output == STDIO:  # a picture through pipes: staged in files, then the one-file run
        return _piped(dict(locals()))
    from pathlib import Path

    from classsr_cli import distributed, runtime, zoo
    from classsr_cli.errors import ConfigError
    from classsr_cli.pipeline import AutoModel, Upscaler, chain
    from classsr_cli.plan import plan_jobs

    auto = model == zoo.AUTO and not Path(model).is_file()  # a file named auto is a model file
    model = None if auto else model  # auto's models are the default's family's kin: its scale and patch
    size = output_size(width, height, scale)
    scale = output_scale(scale, model, chain=True) if size is None else float(zoo.own_scale(model))
    if classes and not json_out:
        raise ConfigError("--classes puts every patch's class in the --json record: add --json (--classmap draws them)")
    if scale > zoo.MAX_SCALE and (classmap or classes):
        raise ConfigError(f"x{scale:g} runs x{zoo.MAX_SCALE} and then x{scale / zoo.MAX_SCALE:g} on its output, whose "
                          f"patches differ: {'--classmap' if classmap else '--classes'} takes one run (-x "
                          f"{zoo.MAX_SCALE} or less)")
    runtime.set_threads(threads)
    world = distributed.world()
    report = _Report(json_out, world)
    dev = runtime.resolve_device(distributed.device_name(world, device))
    dtype = runtime.resolve_dtype(precision.value, dev)
    distributed.start(world, dev)
    try:
        from classsr_cli.engine import check_step

        check_step(step, zoo.own_patch(model, min(scale, zoo.MAX_SCALE)))  # before outputs are planned: said as one
        plan = plan_jobs(
            inputs, output, scale, tag=size.tag if size else None, recursive=recursive, classmap=classmap,
            overwrite=overwrite, keep_going=True, skip_existing=skip_existing, fail_collisions=keep_going,
            suffix=f".{format_.value}" if format_ else None,
        )  # every problem collected, so that a run that stops can say how much it left undone
        if world.is_main:
            _left_out(plan)
            from classsr_cli.io.image import QUALITY_FORMATS, WRITE_FORMATS

            suffixes = {j.output.suffix.lower() for j in plan.jobs}
            lossless = sorted(s for s in suffixes if WRITE_FORMATS.get(s) not in QUALITY_FORMATS)
            if quality is not None and lossless:
                err.print(f"note: --quality is JPEG's, WebP's, AVIF's, HEIC's and JPEG XL's; the {', '.join(lossless)} outputs are lossless",
                          soft_wrap=True, markup=False)
        if plan.failed and not keep_going:
            spec, e = plan.failed[0]
            if _output_as_input(inputs, output, spec):  # `classsr upscale in.png out.png`, as cp takes it
                raise ConfigError(f"{spec}: no such file or folder; to write the output there, give it as -o {spec}")
            if zoo.is_scale_text(spec):  # `classsr upscale photo.png 4`
                raise ConfigError(f"{spec}: no such file or folder; the scale is an option: -x {spec}")
            if debug():
                raise e
            if json_out and world.is_main:
                report.failure(spec, None, str(e), e.exit_code, keep_going=False)
            raise _stopped(report.shown(str(e)), e.exit_code, len(plan.jobs) + len(plan.failed) - 1, e)
        distributed.barrier(world)  # every rank has checked the outputs before any rank writes one
        settings: dict[str, Any] = {"step": step, "batch_size": batch_size, "tolerance": tolerance,
                                    "force_branch": force_branch.value if force_branch else None, "tta": tta}

        def build(name: str | None) -> Any:  # what runs --model name (None: the default)
            if size:
                return _SizedUpscalers(size, name, dev, dtype, settings, note=world.is_main)
            if scale > zoo.MAX_SCALE:
                chained = chain(name, scale, dev, dtype, settings)
                if world.is_main:
                    chain_note(chained)
                return chained
            made = Upscaler.of(zoo.load(name, scale, device=dev, dtype=dtype), **settings)
            if world.is_main:
                resample_note(made)
            return made

        most = zoo.own_scale(None)
        upscaler: Any = AutoModel(build, (lambda h, w, name: size.scale_for(h, w, most, name, chain=True)) if size else
                                  (lambda h, w, name: scale)) if auto else build(model)  # fmt: skip
        if world.is_main:
            tolerance_note(tolerance)
        planned: list[Failure] = [(spec, None, str(e), e.exit_code) for spec, e in plan.failed]
        for failure in planned:
            report.failure(*failure, keep_going=keep_going)
        if dry_run:
            _dry_run(upscaler, world.shard(plan.jobs), report, planned, max_pixels, keep_going=keep_going)
            return
        done, failed = _run(
            upscaler, world.shard(plan.jobs), report, keep_going=keep_going, overwrite=overwrite,
            max_pixels=max_pixels, routing=classmap or classes, quality=quality, strip_metadata=strip_metadata,
        )
        gathered = distributed.all_gather(world, (done, failed))
    finally:
        distributed.finish(world)
    done = [d for rank_done, _ in gathered for d in rank_done]
    failed = planned + [f for _, rank_failed in gathered for f in rank_failed]
    if world.active:
        ranks = [rank for rank, (_, rank_failed) in enumerate(gathered) for _ in rank_failed]
        report.replay(done, failed[len(planned) :], ranks)
    _finish(report, done, failed, keep_going, total=len(plan.jobs) + len(planned))


Failure = tuple[str, "str | None", str, int]  # input, output, message, exit code

#: ``-``: as the one INPUT, the picture on standard input; as ``-o``, the picture written to standard output.
STDIO = "-"
#: A piped run's staged files -> how they are said (``-``), for the run's report (:meth:`_Report.shown`).
_PIPED: dict[str, str] = {}
#: Pillow's format -> the suffix a picture on standard input is staged under.
_STAGED = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "AVIF": ".avif", "HEIF": ".heic",
           "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "JXL": ".jxl", "EXR": ".exr", "HDR": ".hdr", "PFM": ".pfm", "PSD": ".psd", "PPM": ".pnm", "JPEG2000": ".jp2", "QOI": ".qoi", "PAM": ".pam",
           "DDS": ".dds", "TGA": ".tga", "ICO": ".ico", "CUR": ".cur", "ICNS": ".icns", "BLP": ".blp", "ORA": ".ora"}


def _piped(args: dict[str, Any]) -> None:
    """``upscale`` with ``-`` as its INPUT or ``-o``: the picture on standard input is staged in a temporary folder
    (its format sniffed), the output written there and then to standard output, by the one-file run; the report
    names them ``-``. Refused where standard output must carry something else (``--json``, class maps), holds a
    terminal, or several pictures would go there."""
    import sys
    import tempfile
    from pathlib import Path

    from classsr_cli.errors import ConfigError
    from classsr_cli.plan import GLOB_CHARS

    inputs, output = list(args["inputs"]), args["output"]
    if STDIO in inputs and inputs != [STDIO]:
        raise ConfigError("- (the picture on standard input) must be the only INPUT")
    if inputs == [STDIO] and output is None:
        raise ConfigError("- (the picture on standard input) has no place to be written beside: give -o FILE, "
                          "-o FOLDER/ (stdin.png, stdin.jpg, ... by the format read) or -o - for standard output")
    if output == STDIO:
        for option, on in (("--json", args["json_out"]), ("--classmap", args["classmap"]), ("--classes", args["classes"])):
            if on:
                raise ConfigError(f"-o - writes the picture to standard output, so {option} cannot: write to a file")
        one = inputs[0]
        if len(inputs) > 1 or (one != STDIO and (Path(one).is_dir() or any(c in one for c in GLOB_CHARS))):
            raise ConfigError("-o - writes one picture to standard output: give one image file (or -) as INPUT")
        if sys.stdout.isatty():
            raise ConfigError("-o - writes the picture's bytes to standard output: redirect them (> out.png) or "
                              "pipe them on")
    with tempfile.TemporaryDirectory(prefix="classsr-pipe-") as tmp:
        if inputs == [STDIO]:
            inputs = [str(_stage_stdin(Path(tmp)))]
            _PIPED[inputs[0]] = STDIO
        if output == STDIO:
            from classsr_cli.io.image import output_suffix

            fmt = args["format_"]
            output = str(Path(tmp) / f"stdout{f'.{fmt.value}' if fmt else output_suffix(Path(inputs[0]).suffix)}")
            _PIPED[output] = STDIO
        try:
            upscale(**{**args, "inputs": inputs, "output": output})
            if args["output"] == STDIO and not args["dry_run"]:
                sys.stdout.buffer.write(Path(output).read_bytes())
                sys.stdout.buffer.flush()
        finally:
            _PIPED.clear()


def _stage_stdin(folder: Any) -> Any:
    """The picture on standard input, written to ``folder`` under the suffix of its format."""
    import io
    import sys

    from classsr_cli.errors import ConfigError, InputError

    if sys.stdin.isatty():
        raise ConfigError("- reads the picture from standard input: pipe or redirect one in (classsr upscale - "
                          "< photo.jpg)")
    data = sys.stdin.buffer.read()
    if not data:
        raise InputError("-: empty input (nothing on standard input)")
    from PIL import Image

    from classsr_cli.io.image import READ_NAMES, open_formats, own_format, pillow_look

    suffix = _STAGED.get(own_format(data[:64]) or "")  # classsr's own readers first (Pillow opens a PFM as a PPM)
    if suffix is None:
        try:  # (its header alone: the read applies --max-pixels, and says what Pillow warns of)
            with pillow_look("-", header=True), Image.open(io.BytesIO(data), formats=open_formats(None, data)) as im:
                suffix = _STAGED.get(im.format or "")
        except Exception:  # (a JPEG of 12 bits a sample or a lossless one, which Pillow does not open, is read)
            suffix = ".jpg" if data[:3] == b"\xff\xd8\xff" else None
    if suffix is None:
        raise InputError(f"-: not an image classsr reads ({READ_NAMES}; a TGA 1.0 file, which has no signature, only "
                         "as a file named .tga)")
    path = folder / f"stdin{suffix}"
    path.write_bytes(data)
    return path


class _SizedUpscalers:
    """The upscaler for each input of an output size (``--width``/``--height``): the factor its size needs, run by
    the model ``-x`` with that factor would run (the x2 default up to x2, else the x4), loaded once."""

    def __init__(
        self, size: Any, model: str | None, device: Any, dtype: Any, settings: dict[str, Any], *, note: bool = True
    ) -> None:
        from classsr_cli import zoo

        self.size, self.model, self.device, self.dtype, self.settings = size, model, device, dtype, settings
        self.most = zoo.own_scale(model)  # a --model runs up to its own scale
        self.loaded: dict[Any, Any] = {}
        self.note = note  # the first non-native factor is said, once: a folder's factors mostly are

    def __call__(self, height: int, width: int, name: str = "") -> Any:
        from classsr_cli import zoo
        from classsr_cli.pipeline import Upscaler, chain

        scale = self.size.scale_for(height, width, self.most, name, chain=True)
        if scale > zoo.MAX_SCALE:  # two runs: the x4 model, then the rest
            chained = chain(self.model, scale, self.device, self.dtype, self.settings, self.loaded)
            if self.note:
                chain_note(chained, f"{zoo.factor_text(scale)} ({self.size.describe()} for {name or f'{width}x{height}'})")
                self.note = False
            return chained
        path = zoo.choose_model(self.model, scale)
        if path not in self.loaded:
            self.loaded[path] = Upscaler.of(zoo.load(self.model, scale, device=self.device, dtype=self.dtype),
                                            **self.settings)  # fmt: skip
        upscaler = self.loaded[path].at_scale(scale)
        if self.note and upscaler.resampled:
            resample_note(upscaler, f"{zoo.factor_text(scale)} ({self.size.describe()} for {name or f'{width}x{height}'})")
            self.note = False
        return upscaler


def _output_as_input(inputs: list[str], output: str | None, failed: str) -> bool:
    """Whether the input that failed reads as an output given where cp and most upscalers take it: the second of
    two, without -o, a new file with an image suffix (not a pattern)."""
    from pathlib import Path

    from classsr_cli.io.files import is_image_name
    from classsr_cli.plan import GLOB_CHARS

    return (output is None and len(inputs) == 2 and failed == inputs[1] and not any(c in failed for c in GLOB_CHARS)
            and not Path(failed).exists() and is_image_name(Path(failed)))  # fmt: skip


def _dry_run(upscaler: Any, jobs: list[Any], report: _Report, planned: list[Failure], max_pixels: int, *,
             keep_going: bool) -> None:
    """``--dry-run``: each job's output, sizes and model, from the inputs' headers (nothing decoded, run or
    written); what would fail before decoding, said and counted as a run says it, with the run's exit code."""
    from classsr_cli.errors import ClassSRError
    from classsr_cli.io.image import check_output_size, peek_size
    from classsr_cli.pipeline import AutoModel, Chain
    from classsr_cli.zoo import factor_text

    auto = isinstance(upscaler, AutoModel)  # the model is picked once the picture is read: said as "auto"

    done: list[dict[str, Any]] = []
    failed = list(planned)
    for job in jobs:
        try:
            h, w = peek_size(job.input, max_pixels=max_pixels or None)
            by = upscaler.model(None) if auto else upscaler  # auto's models all give the default's sizes
            up = by(h, w, str(job.input)) if isinstance(by, _SizedUpscalers) else by
            oh, ow = up.enlarged(h, w, job.input)
            check_output_size(job.output, oh, ow)
        except ClassSRError as e:
            failure = (str(job.input), None, str(e), e.exit_code)
            failed.append(failure)
            report.failure(*failure, keep_going=keep_going)
            if not keep_going:
                break
            continue
        runs = chain_text(up) if isinstance(up, Chain) else (
            f"the x{up.model_scale} model" + (", then a downscale" if up.resampled else ""))
        runs = f"{runs}, the model picked by the picture (--model auto)" if auto else runs
        how = f"{factor_text(up.scale)}, {runs}" + (f", {up.tta} passes averaged (--tta)" if up.tta > 1 else "")
        err.print(f"would write {report.shown(str(job.output))}  {w}x{h} -> {ow}x{oh}  ({how})", soft_wrap=True,
                  markup=False)
        record = {"dry_run": True, "input": str(job.input), "output": str(job.output),
                  "classmap": str(job.classmap) if job.classmap else None, "size": {"input": [w, h], "output": [ow, oh]},
                  "scale": int(up.scale) if float(up.scale).is_integer() else up.scale, "model_scale": up.model_scale,
                  "model": "auto" if auto else str(up.model_path) if up.model_path else None, "tta": up.tta}  # fmt: skip
        done.append(record)
        report._stdout(record)
    _finish(report, done, failed, keep_going, total=len(jobs) + len(planned), dry=True)
    err.print(f"dry run: {len(done)} image(s) would be written; nothing was (a file damaged past its header fails "
              "only when it is decoded)", soft_wrap=True)


def _run(
    upscaler: Any, jobs: list[Any], report: _Report, *, keep_going: bool, overwrite: bool, max_pixels: int,
    routing: bool = False, quality: int | None = None, strip_metadata: bool = False,
) -> tuple[list[dict[str, Any]], list[Failure]]:
    """Upscale this rank's jobs; returns the JSON records of those done and the failures."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from classsr_cli.errors import ClassSRError
    from classsr_cli.pipeline import upscale_file

    done: list[dict[str, Any]] = []
    failed: list[Failure] = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(), console=err, transient=True, disable=not (err.is_terminal and report.world.is_main),
    )
    with progress:
        report.live = None if progress.disable else progress
        files = progress.add_task("images", total=len(jobs), visible=len(jobs) > 1)
        patches = progress.add_task("patches", total=None, visible=False)

        def on_patches(n: int, total: int) -> None:
            progress.update(patches, completed=n, total=total, visible=total >= 2000)

        for job in jobs:
            progress.update(files, description=f"images ({job.input.name})")
            try:
                result = upscale_file(
                    upscaler, job.input, job.output, classmap=job.classmap, overwrite=overwrite,
                    max_pixels=max_pixels or None, progress=on_patches, quality=quality,
                    strip_metadata=strip_metadata,
                )
            except ClassSRError as e:
                failure = (str(job.input), None, str(e), e.exit_code)  # nothing is left of a failed output
                failed.append(failure)
                report.failure(*failure, keep_going=keep_going)
                if not keep_going:
                    break
                continue
            except KeyboardInterrupt as e:  # with --json, the image it stopped in is a record too
                why = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
                report.failure(str(job.input), None, f"{job.input}: {why}; its output was not written",
                               EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED, keep_going=False)
                raise
            finally:
                progress.update(patches, visible=False, completed=0)
                progress.advance(files)
                progress.refresh()  # drawn now, not at the next tick: small images finish several a tick
            record = result.to_dict(routing=routing)
            if report.world.active:
                record["rank"] = report.world.rank
            done.append(record)
            report.image(record)
    report.live = None
    return done, failed


class _Report:
    """Where each piece goes: records (JSON or output paths) to stdout, the report to stderr.

    Under torchrun every rank reports its own images on stderr; rank 0 prints all records to stdout once
    they are gathered, and the totals.
    """

    def __init__(self, json_out: bool, world: Any) -> None:
        self.json_out = json_out
        self.world = world
        self.live: Any = None  # the progress bar while it is drawn on the terminal
        self.names = dict(_PIPED)  # a piped run's staged files, said as "-"

    def shown(self, text: str) -> str:
        """``text`` with a piped run's staged files named as given: ``-``."""
        for path, name in self.names.items():
            text = text.replace(path, name)
        return text

    def _stdout(self, record: dict[str, Any]) -> None:
        record = {k: self.shown(v) if k in ("input", "output", "error") and isinstance(v, str) else v
                  for k, v in record.items()}
        if self.json_out:
            self._line(json.dumps(record))
        elif record.get("output") and not record.get("error") and record["output"] != STDIO:  # stdout holds the picture
            self._line(record["output"])
            if record.get("classmap"):
                self._line(record["classmap"])

    def _line(self, text: str) -> None:
        """One result line on stdout; while the progress bar is drawn on the same terminal, above it (written past
        it, the line ran into the bar's)."""
        import sys

        if self.live is not None and sys.stdout.isatty():
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            typer.echo(text)

    def image(self, rec: dict[str, Any]) -> None:
        from rich.markup import escape

        p, f = rec["patches"], rec["flops"]
        (w, h), (ow, oh) = rec["size"]["input"], rec["size"]["output"]
        who = f"[dim]\\[rank {self.world.rank}][/] " if self.world.active else ""
        err.print(
            f"{who}[bold]{escape(self.shown(rec['input']))}[/] -> {escape(self.shown(rec['output']))}  {w}x{h} -> {ow}x{oh}  "
            f"{rec['seconds']:.2f} s",
            soft_wrap=True,
        )
        err.print(
            f"  patches [green]light {p['light']}[/] · [yellow]medium {p['medium']}[/] · "
            f"[red]heavy {p['heavy']}[/]  FLOPs saved {_pct(f['saved_vs_whole'])} vs heavy on the whole image "
            f"({_pct(f['saved'])} vs heavy on every patch){passes_clause(rec)}",
            soft_wrap=True,
        )
        for note in rec["notes"]:
            err.print(f"  [dim]note: {escape(self.shown(note))}[/]", soft_wrap=True)
        if not self.world.active:
            self._stdout(rec)

    def failure(self, spec: str, output: str | None, message: str, code: int, *, keep_going: bool) -> None:
        from rich.markup import escape

        if keep_going:
            err.print(f"[red]failed:[/] {escape(self.shown(message))}", soft_wrap=True)
        if not self.world.active and self.json_out:
            self._stdout({"input": spec, "output": output, "error": message})

    def replay(self, done: list[dict[str, Any]], failed: list[Failure], ranks: list[int]) -> None:
        """Rank 0 prints every rank's records, the failures with the ``rank`` that met them, as the others have."""
        if not self.world.is_main:
            return
        for rec in done:
            self._stdout(rec)
        if self.json_out:
            for (spec, output, message, _), rank in zip(failed, ranks, strict=True):
                self._stdout({"input": spec, "output": output, "error": message, "rank": rank})


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _left_out(plan: Any) -> None:
    """Say on stderr which files a folder or glob run leaves out, and why."""
    from rich.markup import escape

    for what, paths in (
        ("earlier classsr output(s) beside their inputs, not inputs", plan.own_outputs),
        ("input(s) whose output exists (--skip-existing)", [j.input for j in plan.existing]),
    ):
        if paths:
            names = ", ".join(str(p) for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
            err.print(f"skipped {len(paths)} {what}: {escape(names)}", soft_wrap=True)
    if plan.unread:
        from classsr_cli.io.files import unread_advice, unread_kinds

        advice = unread_advice(plan.unread)
        err.print(f"skipped {len(plan.unread)} file(s) that are not images classsr reads ({unread_kinds(plan.unread)})"
                  + (f"; {advice}" if advice else ""), soft_wrap=True, markup=False)


def _stopped(message: str, code: int, left: int, e: Exception | None = None) -> typer.Exit:
    """The error that stopped a run, then how many inputs it left and how to carry on past such errors."""
    from classsr_cli.errors import OutputExistsError

    exit_ = fail(message, code)
    if left > 0:
        also = ", --skip-existing to leave out done ones" if isinstance(e, OutputExistsError) else ""
        err.print(
            f"stopped: {left} more input(s) not processed; pass --keep-going to carry on past failures{also}",
            soft_wrap=True,
        )
    return exit_


def _finish(
    report: _Report, done: list[dict[str, Any]], failed: list[Failure], keep_going: bool, *, total: int,
    dry: bool = False,
) -> None:
    """The totals, then the failures and the exit code (a ``dry`` run's: no totals, "would fail")."""
    from rich.markup import escape

    main = report.world.is_main
    if main and (len(done) > 1 or report.world.active) and done and not dry:
        _totals(done)
        _models(done)
        _exposures(done)
    if not failed:
        return
    if not keep_going:
        if not main:
            raise typer.Exit(failed[0][3])
        raise _stopped(report.shown(failed[0][2]), failed[0][3], total - len(done) - len(failed))
    if main:
        from classsr_cli.errors import ALREADY_EXISTS

        err.print(f"[bold red]{len(failed)} of {len(done) + len(failed)} inputs {'would fail' if dry else 'failed'}:[/]")
        for _, _, message, _ in failed:
            err.print(f"  {escape(message)}", soft_wrap=True)
        exist = sum(message.endswith(ALREADY_EXISTS) for _, _, message, _ in failed)
        if exist:
            err.print(f"{exist} of them because their output exists: --skip-existing leaves such inputs out, "
                      "--overwrite redoes them", soft_wrap=True)
    raise typer.Exit(EXIT_PARTIAL if done else EXIT_FAILURE)


def _models(done: list[dict[str, Any]]) -> None:
    """How many pictures each model upscaled, where they differ (``--model auto``)."""
    from pathlib import Path

    counts: dict[str, int] = {}
    for d in done:
        name = Path(d["model"]).stem if d.get("model") else "a bare model"
        counts[name] = counts.get(name, 0) + 1
    if len(counts) > 1:
        err.print("models: " + " · ".join(f"{name} {n}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])),
                  soft_wrap=True, markup=False)


def _exposures(done: list[dict[str, Any]]) -> None:
    """A note where the frames of a numbered sequence of linear light (a render's EXRs) were upscaled at different
    stops, each picture at its own (a sequence's frames may then differ where the stops change): ``classsr video``
    reads a sequence at one."""
    from classsr_cli.io.sequence import sequence_of

    stops = sorted({d["stops"] for d in done if d.get("stops") is not None})
    seq = sequence_of(done[0]["input"]) if len(stops) > 1 else None
    if seq is None:
        return
    err.print(f"note: frames of {seq.pattern} upscaled at {stops[0]} to {stops[-1]} stops darker, each picture at its "
              f"own exposure; `classsr video {seq.pattern} OUT/%04d{seq.pattern.suffix}` reads a sequence at one (its "
              "first frame's) and carries its routing from frame to frame", soft_wrap=True, markup=False)


def _totals(done: list[dict[str, Any]]) -> None:
    n = [sum(d["patches"][k] for d in done) for k in ("light", "medium", "heavy")]
    used, heavy, whole = (sum(d["flops"][k] for d in done) for k in ("used", "heavy", "whole"))
    total = max(sum(n), 1)
    seconds = sum(d["seconds"] for d in done)
    err.print(
        f"[bold]total[/]: {len(done)} images, {seconds:.2f} s  patches "
        f"[green]light {n[0]} ({_pct(n[0] / total)})[/] · [yellow]medium {n[1]} ({_pct(n[1] / total)})[/] · "
        f"[red]heavy {n[2]} ({_pct(n[2] / total)})[/]  FLOPs saved {_pct(1 - used / whole if whole else 0)} "
        f"vs heavy on whole images ({_pct(1 - used / heavy if heavy else 0)} vs heavy on every patch){passes_clause(done[0])}",
        soft_wrap=True,
    )
