"""`classsr train …`: prepare data and run the ClassSR stages, single-process or under torchrun."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from classsr_cli.cli._common import (
    EXIT_TERMINATED,
    Command,
    Group,
    Terminated,
    debug,
    device_option,
    err,
    fail,
    guarded,
    own_outputs_note,
    sigterm_interrupts,
    unread_note,
)
from classsr_cli.cli._options import ThreadsOpt

if TYPE_CHECKING:
    from classsr_cli.train.stages import Trainer

app = typer.Typer(
    cls=Group,
    help="Train ClassSR: the paper's recipe (prepare, the -O baseline, rank, branches by class, classifier, fine-tuning) "
    "by default, or with --config classsr_residual_x4 the recipe the default model records (branches on all data, a "
    "classifier that predicts each branch's error, a calibrated price). `train all` runs every stage a recipe has.",
    no_args_is_help=True,
)

HrOpt = Annotated[
    list[Path] | None,
    typer.Option("--hr", help="HR image folder (repeatable); prepared into --data when that is missing."),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, metrics, resume state).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Prepared data folder (default: RUN/data).")]
ScaleOpt = Annotated[int | None, typer.Option("--scale", "-x", help="Upscaling factor (2, 3 or 4) (default: 4).")]
FamilyOpt = Annotated[str | None, typer.Option("--family", help="Branch family (default: fsrcnn).")]
ItersOpt = Annotated[
    int | None, typer.Option("--iterations", help="This many iterations for every stage the recipe runs (smoke runs).")
]
DeviceOpt = Annotated[
    str, typer.Option("--device", callback=device_option, metavar="auto|cpu|cuda[:N]|mps", help="auto, cpu, cuda, cuda:N or mps.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML or JSON training config, or a trained model (a name from `classsr models`, or a "
                 ".safetensors file) whose recorded recipe to train again."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default: 0).")]


def _trainer(
    out_dir: Path, hr: list[Path] | None, data: Path | None, scale: int | None, family: str | None,
    iterations: int | None, device: str, config: Path | None, seed: int | None, threads: int | None,
) -> Trainer:
    import torch

    from classsr_cli.io.files import make_folder
    from classsr_cli.runtime import resolve_device, set_threads
    from classsr_cli.train.config import load_train_config
    from classsr_cli.train.data import (
        check_data_folder,
        check_degradation_of,
        check_sources,
        find_images,
        prepare,
    )
    from classsr_cli.train.loop import init_distributed
    from classsr_cli.train.stages import Trainer

    set_threads(threads)
    cfg = load_train_config(config, scale=scale, family=family, seed=seed)
    if iterations is not None:
        cfg = cfg.with_iterations(iterations)
    dist = init_distributed(resolve_device(device))
    if dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
    data_dir = data or out_dir / "data"
    if not (data_dir / "meta.json").exists():
        if not hr:
            raise typer.BadParameter(f"{data_dir} holds no prepared data; give --hr DIR to prepare it", param_hint="--hr")
        own: list[Path] = []
        unread: list[Path] = []
        find_images(hr, own, unread)  # a folder that is not there: one line, before announcing anything
        check_data_folder(data_dir, hr)
        if dist.is_main:
            own_outputs_note(own)
            unread_note(unread)
            make_folder(out_dir if data is None else data_dir)  # a file in its way: one line, before announcing
            err.print(f"preparing x{cfg.scale} training data from {', '.join(map(str, hr))} into {data_dir} …")
            meta = prepare(hr, data_dir, scale=cfg.scale, patch=cfg.patch, step=cfg.data_step,
                           factors=cfg.factors, val_fraction=cfg.val_fraction, **cfg.degradation)
            err.print(f"  {meta['train_patches']} train / {meta['val_patches']} val sub-images, {meta['hash'][:19]}…")
            _no_val_note(meta)
        dist.barrier()
    else:
        if hr:
            check_sources(data_dir, hr)
        with contextlib.suppress(OSError, ValueError):  # an unreadable meta.json is PatchData's to report
            check_degradation_of(data_dir, **cfg.degradation)
        if dist.is_main:  # prepared earlier: say it here too (an unreadable meta.json is PatchData's to report)
            import json

            with contextlib.suppress(OSError, ValueError, KeyError):
                _no_val_note(json.loads((data_dir / "meta.json").read_text()))
    return Trainer(cfg, out_dir, data_dir, dist, observer=_observer() if dist.is_main else None)


#: The logged means a progress line shows, when a stage logs them.
_KEYS = ("loss", "l1", "l1_log10", "ce", "share_light", "share_medium", "share_heavy")


def _info(event: Any) -> str:
    info = " ".join(f"{k.replace('share_', '')}={event.logs[k]:.3g}" for k in _KEYS if k in event.logs)
    speed = ""  # the calibration's scan has none
    if event.it_per_s > 0:  # a slow stage (a big family on a CPU) in seconds an iteration: it said "0.0 it/s"
        speed = f" {event.it_per_s:.1f} it/s" if event.it_per_s >= 1 else f" {1 / event.it_per_s:.3g} s/it"
    return f"{info}{speed}".strip()


def _observer() -> _Observer | _Lines:
    """Rich progress bars on a terminal; elsewhere (a log file, nohup, a scheduler) plain lines as they come."""
    return _Observer() if err.is_terminal else _Lines()


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s // 60 % 60:02d}m{s % 60:02d}s"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{seconds:.1f}s"


class _Lines:
    """Progress off a terminal: one plain line, flushed at once, when a stage starts, at its first log step, then at
    the first log step ``every`` seconds after the previous line, and when it ends (rich's bars show nothing live
    there, and a killed run's log stayed empty)."""

    every = 30.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started: dict[str, float] = {}
        self.last: dict[str, float | None] = {}  # the time of a stage's latest progress line (None: none yet)

    def _line(self, text: str) -> None:
        err.print(text, markup=False, highlight=False, soft_wrap=True)
        err.file.flush()

    def __call__(self, event: Any) -> None:
        now = self.clock()
        if event.stage not in self.started:
            self.started[event.stage], self.last[event.stage] = now, None
            what = "resume" if event.kind == "start" and event.iteration else "start"
            self._line(f"{event.stage}: {what} {event.iteration if event.kind == 'start' else 0}/{event.total}")
        if event.kind == "start":
            return
        elapsed = _duration(now - self.started[event.stage])
        where = " ".join(filter(None, (f"{event.iteration}/{event.total}", _info(event))))
        if event.iteration >= event.total:
            self._line(f"{event.stage}: done {where} in {elapsed}")
            self.started.pop(event.stage)  # a later stage of that name (calibrate again) starts anew
            return
        last = self.last[event.stage]
        if last is not None and now - last < self.every:
            return
        self.last[event.stage] = now
        eta = f", ETA {_duration((event.total - event.iteration) / event.it_per_s)}" if event.it_per_s > 0 else ""
        self._line(f"{event.stage}: {where}, {elapsed} elapsed{eta}")

    def close(self) -> None:
        pass


class _Observer:
    """A rich progress bar per stage: loss, iterations/s and ETA, on stderr."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err, transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def __call__(self, event: Any) -> None:
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=event.total, info="")
        self.progress.update(self.tasks[event.stage], completed=event.iteration, info=_info(event))

    def close(self) -> None:
        self.progress.stop()


def _run(stage: str, **kw: Any) -> None:
    with sigterm_interrupts():
        try:
            result = _run_stage(stage, kw)
        except Terminated:
            if debug():
                raise
            raise fail("terminated (SIGTERM); run the same command again to resume from the last checkpoint",
                       EXIT_TERMINATED) from None
    if result is None:
        return
    if isinstance(result, list):
        for p in result:
            typer.echo(str(p))
    elif isinstance(result, dict):
        import json

        typer.echo(json.dumps(result))
    else:
        typer.echo(str(result))


def _run_stage(stage: str, kw: dict[str, Any]) -> Any:
    """The result of ``stage`` on rank 0 (None on the others)."""
    trainer = _trainer(**kw)
    try:
        result = getattr(trainer, stage)()
    finally:
        if isinstance(trainer.observer, _Observer | _Lines):
            trainer.observer.close()
    return result if trainer.dist.is_main else None


def _stage_command(stage: str, doc: str) -> None:
    @guarded
    def command(
        out_dir: OutOpt, hr: HrOpt = None, data: DataOpt = None, scale: ScaleOpt = None, family: FamilyOpt = None,
        iterations: ItersOpt = None, device: DeviceOpt = "auto", config: ConfigOpt = None,
        seed: SeedOpt = None, threads: ThreadsOpt = None,
    ) -> None:
        _run(stage, out_dir=out_dir, hr=hr, data=data, scale=scale, family=family, iterations=iterations,
             device=device, config=config, seed=seed, threads=threads)

    command.__doc__ = doc
    example = f"Example:\n\n  classsr train {stage} -o runs/x4 --hr ../shared/data/DIV2K_train_HR -x 4\n"
    if stage == "all":  # the paper's recipe by default; the shipped default model's recorded one by name
        example = ("Examples:\n\n  classsr train all -o runs/x4 --hr photos/ -x 4   # the paper's recipe\n"
                   "  # the recipe the default x4 model records:\n"
                   "  classsr train all -o runs/mine --hr photos/ --config classsr_residual_x4\n")
    app.command(stage, cls=Command, epilog=example)(command)


@app.command("prepare", cls=Command,
             epilog="Example:\n\n  classsr train prepare --hr DIV2K_train_HR/ -o runs/x4/data -x 4\n")
@guarded
def prepare_command(
    hr: Annotated[list[Path], typer.Option("--hr", help="HR image folder (repeatable).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the prepared arrays.")],
    scale: Annotated[int, typer.Option("--scale", "-x", help="Upscaling factor.")] = 4,
    patch: Annotated[int, typer.Option(help="LR sub-image size.")] = 32,
    step: Annotated[int, typer.Option(help="LR step between sub-images.")] = 16,
    factors: Annotated[str, typer.Option(help="Multi-scale HR downscales, comma-separated.")] = "1.0,0.9,0.8,0.7,0.6",
    val_fraction: Annotated[float, typer.Option(help="Share of images held out for validation.")] = 0.05,
    jpeg: Annotated[str | None, typer.Option(metavar="LO,HI", show_default=False,
                                             help="Save each LR as JPEG at a quality in LO..HI (a config's "
                                             "jpeg_quality; default: clean LR).")] = None,
    jpeg_clean: Annotated[float, typer.Option(help="With --jpeg: the share of LR images kept clean.")] = 0.0,
    noise: Annotated[str | None, typer.Option(metavar="LO,HI", show_default=False,
                                              help="Add luminance noise of LO..HI levels to each LR, before any JPEG "
                                              "(a config's noise_sigma; default: none).")] = None,
    noise_clean: Annotated[float, typer.Option(help="With --noise: the share of LR images kept free of it.")] = 0.0,
) -> None:
    """Mod-crop, multi-scale, bicubic LR and dense sub-image index, stored once as uint8 arrays."""
    from classsr_cli.train.data import find_images, prepare

    try:
        fs = tuple(float(f) for f in factors.split(","))
    except ValueError:
        raise typer.BadParameter(f"not a list of numbers: {factors!r}", param_hint="--factors") from None
    try:
        qs = tuple(int(q) for q in jpeg.split(",")) if jpeg else ()
    except ValueError:
        raise typer.BadParameter(f"not two whole numbers LO,HI: {jpeg!r}", param_hint="--jpeg") from None
    try:
        ns = tuple(float(v) for v in noise.split(",")) if noise else ()
    except ValueError:
        raise typer.BadParameter(f"not two numbers LO,HI: {noise!r}", param_hint="--noise") from None
    own: list[Path] = []
    unread: list[Path] = []
    find_images(hr, own, unread)
    own_outputs_note(own)
    unread_note(unread)
    meta = prepare(hr, out_dir, scale=scale, patch=patch, step=step, factors=fs, val_fraction=val_fraction,
                   jpeg_quality=qs, jpeg_clean=jpeg_clean, noise_sigma=ns, noise_clean=noise_clean)
    err.print(f"{meta['images']} images: {meta['train_patches']} train / {meta['val_patches']} val sub-images")
    _no_val_note(meta)
    typer.echo(meta["hash"])


def _no_val_note(meta: dict[str, Any]) -> None:
    """Say so when the held-out share of the photos held none (a few photos at the default 0.05): the stages then
    train without validation, and their validation records stay empty."""
    if not meta["val_patches"]:
        err.print(f"note: no photo was held out for validation (val_fraction {meta.get('val_fraction', '?')} of "
                  f"{meta['images']} photos, chosen by a hash of the name); the stages train without validation; "
                  "raise `val_fraction` in the config (or `classsr train prepare --val-fraction`) to hold some out", soft_wrap=True)


_stage_command("baseline", "Train the heavy-width network on all sub-images (the paper's -O; ranks the data; the "
               "default recipe's heavy branch).")
_stage_command("rank", "Score every sub-image: the paper's three equal classes by the baseline's PSNR, or the default "
               "recipe's per-branch errors.")
_stage_command("branches", "Train the branches: branch k on class k (the paper's), or every branch on all data (the "
               "default recipe).")
_stage_command("classifier", "Train the classifier with the branches frozen: the paper's soft routing and 3 losses, "
               "or the default recipe's regression of each branch's error, then its calibration.")
_stage_command("finetune", "Fine-tune classifier and branches jointly (the paper's; the default recipe skips it).")
_stage_command("all", "Run every stage (each resumes) and export RUN/classsr.safetensors.")
