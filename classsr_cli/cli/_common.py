"""Shared CLI plumbing: consoles, the error boundary, exit codes and shared option types."""

from __future__ import annotations

import functools
import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, TypeVar

import typer
from rich.console import Console

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Command",
    "Group",
    "Precision",
    "Terminated",
    "chain_note",
    "chain_text",
    "device_option",
    "err",
    "fail",
    "guarded",
    "out",
    "sigterm_interrupts",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
#: Exit code of a command ended by SIGTERM (128 + 15, as a shell reports it).
EXIT_TERMINATED = 143

#: Results go to stdout; progress, tables and diagnostics to stderr.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # a note is one line, whatever the width: logs and pipes keep it whole

F = TypeVar("F", bound=Callable[..., Any])
#: click's own exceptions (usage errors: exit 2 with the usage line), from the click typer runs on (its vendored
#: copy in recent typer, the click package in older ones).
_CLICK_ERRORS: tuple[type[Exception], ...] = tuple(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException" and issubclass(c, Exception)
)
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, *_CLICK_ERRORS)


def device_option(value: str) -> str:
    """``--device``'s value checked: auto, cpu, cuda, cuda:N (the GPU of that index) or mps."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
        raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N (a GPU's index), mps")
    return value


#: The help's panels: each option's by its name, the same in every command that has it (an option declared with its
#: own panel keeps it); the others (what most runs set: the output, size, model, format) stay in Typer's first panel,
#: "Options".
ROUTING, RUNS, ENCODING, SPEED = "Routing", "Runs", "Encoding", "Device and speed"
PANELS = {
    "--tolerance": ROUTING, "--force-branch": ROUTING, "--tta": ROUTING, "--step": ROUTING, "--classmap": ROUTING,
    "--classes": ROUTING, "--reuse": ROUTING, "--reuse-threshold": ROUTING, "--hysteresis": ROUTING,
    "--recursive": RUNS, "--skip-existing": RUNS, "--keep-going": RUNS, "--max-pixels": RUNS, "--dry-run": RUNS,
    "--json": RUNS, "--resume": RUNS,
    "--codec": ENCODING, "--crf": ENCODING, "--preset": ENCODING, "--pix-fmt": ENCODING, "--encoder-opt": ENCODING,
    "--fps": ENCODING, "--no-deinterlace": ENCODING, "--ivtc": ENCODING, "--no-audio": ENCODING, "--no-subtitles": ENCODING,
    "--device": SPEED, "--precision": SPEED, "--threads": SPEED, "--batch-size": SPEED, "--repeat": SPEED,
    "--warmup": SPEED,
}  # fmt: skip
#: The panels' order in a command's help, after "Options".
_PANEL_ORDER = (ENCODING, ROUTING, RUNS, SPEED)


def _panel(param: Any) -> str | None:
    """``param``'s help panel: its own, else :data:`PANELS`' (``None``: "Options")."""
    own = getattr(param, "rich_help_panel", None)
    return own or next((PANELS[o] for o in getattr(param, "opts", ()) if o in PANELS), None)


def _panel_rank(param: Any) -> int:
    panel = _panel(param)
    return 1 + _PANEL_ORDER.index(panel) if panel in _PANEL_ORDER else 0


def _untyped_flags(params: list[Any]) -> list[Any]:
    """``params`` with every flag's metavar blanked, so that help shows ``--json``, not ``--json <bool>`` (Typer 0.29
    on prints a type beside every option): Typer's own ``--help``, ``--version`` and completion flags too; and each
    option in its help panel (:data:`PANELS`)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        param.rich_help_panel = _panel(param)
    return params


class Command(typer.core.TyperCommand):
    """Every ``classsr`` command's class (``app.command(..., cls=Command)``): flags shown without a type, options in
    their help panels."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The help with its panels in :data:`_PANEL_ORDER` (Typer shows them as their first options come)."""
        params = self.params
        self.params = sorted(params, key=_panel_rank)  # stable: each panel's options as declared
        try:
            super().format_help(ctx, formatter)
        finally:
            self.params = params


class Group(typer.core.TyperGroup):
    """``classsr``'s and ``classsr train``'s class (``typer.Typer(cls=Group)``): flags shown without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def debug() -> bool:
    return os.environ.get("CLASSSR_DEBUG", "") not in ("", "0")


def resample_note(upscaler: Any, asked: str | None = None) -> None:
    """Say that ``upscaler`` runs at a scale its model does not have (``-x3``, or the factor a ``--width`` gives):
    the model's own scale, then an antialiased bicubic downscale. ``asked`` says what asked for it."""
    if upscaler.resampled:
        what = asked or f"x{upscaler.scale:g}"
        how = ("a bicubic enlargement to the exact size (as good by PSNR-Y as a second pass of a model)"
               if upscaler.scale > upscaler.model_scale else "an antialiased bicubic downscale to the exact size")
        err.print(f"note: {what} is not a native scale: running the x{upscaler.model_scale} model, then {how}",
                  soft_wrap=True, markup=False)


def chain_text(chain: Any) -> str:
    """How a :class:`~classsr_cli.pipeline.Chain` runs: ``the x4 model, then x2 on its output (the x2 model)``."""
    first, *rest = chain.passes
    steps = [f"the x{first.model_scale} model"]
    steps += [f"then x{up.scale:g} on its output (the x{up.model_scale} model"
              + (", then a downscale)" if up.resampled else ")") for up in rest]  # fmt: skip
    return ", ".join(steps)


def chain_note(chain: Any, asked: str | None = None) -> None:
    """Say that ``chain`` runs in two passes (``-x`` above 4, or the factor a ``--width`` gives); ``asked`` says what
    asked for it."""
    what = asked or f"x{chain.scale:g}"
    err.print(f"note: {what} is more than one run of the x{chain.passes[0].model_scale} model gives: {chain_text(chain)}",
              soft_wrap=True, markup=False)


def tolerance_note(tolerance: float | None) -> None:
    """``--tolerance 0`` runs the heavy branch everywhere: say so, since ``-t 0`` is Real-ESRGAN's automatic tile
    size, which a user coming from it may type for that."""
    if tolerance == 0:
        err.print("note: --tolerance 0 sends every patch to the heavy branch (-t is the quality dial in dB, not a "
                  "tile size)", soft_wrap=True, markup=False)


def passes_clause(record: dict[str, Any]) -> str:
    """What a FLOPs line adds for a self-ensemble (``record["tta"]`` passes, a ``--json`` record's): the FLOPs are
    every pass's against the heavy branch's as many, the patches the first pass's; nothing without one."""
    n = record.get("tta", 1)
    return f"; --tta {n}: all {n} passes against heavy's {n}, the patches of the first" if n > 1 else ""


#: Paths of files a command made for itself, and how its messages name them (a Motion Photo's video, taken out into
#: a temporary file: "PXL_1.MP.jpg's video").
SAID_AS: dict[str, str] = {}


def own_outputs_note(left_out: list[Any]) -> None:
    """The earlier classsr outputs an HR folder held (``photo_x4.png`` by ``photo.png``), left out of bench's and
    train's photos, named on stderr."""
    if left_out:
        from rich.markup import escape

        names = ", ".join(p.name for p in left_out)
        err.print(f"left out {len(left_out)} earlier classsr output(s), not HR images: {escape(names)}", soft_wrap=True)


def unread_note(unread: list[Any]) -> None:
    """The camera RAW files of the HR folders, which bench and train do not read (the folders' other files, notes or
    sidecars, pass without a word), said with what to do: a photographer's folder of RAWs trained on its JPEGs alone."""
    from classsr_cli.io.files import RAW_DEVELOP, RAW_SUFFIXES, unread_kinds

    raw = [p for p in unread if p.suffix.lower() in RAW_SUFFIXES]
    if raw:
        err.print(f"left out {len(raw)} camera RAW file(s) ({unread_kinds(raw)}): {RAW_DEVELOP}", soft_wrap=True,
                  markup=False)


def said(message: str) -> str:
    """``message`` with the paths in :data:`SAID_AS` named as the user knows them."""
    for path, name in SAID_AS.items():
        message = message.replace(path, name)
    return message


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise.

    ``message`` is plain text, not rich markup: brackets in file names (``photo[1].png``) print as they are.
    """
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(said(message))}", soft_wrap=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, ``docker stop``, a scheduler's preemption), raised where the command is, as
    Ctrl-C's interrupt is: it ends the same way (partial outputs removed, ffmpeg children stopped, a training run's
    last checkpoint kept), with its own line and exit code."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while the block runs (on the main thread; elsewhere, an embedding
    application's own handling stands)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guarded(fn: F) -> F:
    """Error boundary for a command: library errors become one line on stderr and an exit code.

    Tracebacks are shown only with ``CLASSSR_DEBUG=1``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from classsr_cli.errors import ClassSRError

        try:
            with sigterm_interrupts():
                return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise  # click prints usage errors (BadParameter, ...) itself and exits 2
        except ClassSRError as e:
            if debug():
                raise
            raise fail(str(e), e.exit_code) from None
        except Terminated as e:  # a command may say more (what was kept): the exception's message
            if debug():
                raise
            raise fail(str(e) or "terminated (SIGTERM)", EXIT_TERMINATED) from None
        except KeyboardInterrupt as e:
            if debug():
                raise
            raise fail(str(e) or "interrupted", EXIT_INTERRUPTED) from None
        except BrokenPipeError:  # `classsr models --json | head -1`: the reader left; stop quietly, as click does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # so that flushing stdout at exit raises nothing more
            raise typer.Exit(EXIT_FAILURE) from None
        except MemoryError:
            if debug():
                raise
            raise fail("out of memory; try a smaller --batch-size or a smaller image") from None
        except Exception as e:
            if debug():
                raise
            raise fail(f"internal error: {type(e).__name__}: {e} (set CLASSSR_DEBUG=1 for the traceback)") from None

    return wrapper  # type: ignore[return-value]
