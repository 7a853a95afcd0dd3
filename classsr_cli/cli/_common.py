"""Shared CLI plumbing: consoles, the error boundary, exit codes and shared option types."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

import typer
from rich.console import Console

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "Device",
    "Precision",
    "err",
    "fail",
    "guarded",
    "out",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

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


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def debug() -> bool:
    return os.environ.get("CLASSSR_DEBUG", "") not in ("", "0")


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise.

    ``message`` is plain text, not rich markup: brackets in file names (``photo[1].png``) print as they are.
    """
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def guarded(fn: F) -> F:
    """Error boundary for a command: library errors become one line on stderr and an exit code.

    Tracebacks are shown only with ``CLASSSR_DEBUG=1``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from classsr_cli.errors import ClassSRError

        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise  # click prints usage errors (BadParameter, ...) itself and exits 2
        except ClassSRError as e:
            if debug():
                raise
            raise fail(str(e), e.exit_code) from None
        except KeyboardInterrupt:
            if debug():
                raise
            raise fail("interrupted", EXIT_INTERRUPTED) from None
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
