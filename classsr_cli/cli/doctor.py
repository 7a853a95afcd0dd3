"""`classsr doctor`: what this installation can do, and a self-test of the model on each device and precision."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from classsr_cli.cli._common import EXIT_FAILURE, Command, device_option, err, guarded, out
from classsr_cli.cli._options import JsonOpt, flag

EXAMPLES = """\
Examples:

  classsr doctor                                 # versions, formats, devices, models; the self-test on each device
  classsr doctor --device cuda:1                 # the self-test on that GPU alone (and the CPU to compare)
  classsr doctor --json > doctor.jsonl           # one JSON object a check, to attach to a bug report
"""


def register(app: typer.Typer) -> None:
    app.command("doctor", cls=Command, epilog=EXAMPLES)(doctor)


@guarded
def doctor(
    device: Annotated[
        str,
        typer.Option(callback=device_option, metavar="auto|cpu|cuda[:N]|mps",
                     help="The device to self-test, with the CPU to compare; auto: every one torch sees."),
    ] = "auto",
    no_self_test: Annotated[bool, flag("--no-self-test", help="Skip the self-test (versions, formats, devices only).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Check this installation: versions, the formats it reads and writes, the devices torch sees, the models; then upscale a small picture on each device and precision and compare it with the CPU's (--device: on that device alone; auto: on every one torch sees).

    Exits 1 when a check fails (a missing package, a model that does not load, a device whose output differs).
    """
    from classsr_cli import doctor as checks

    found = [*checks.environment(), *checks.formats(), *checks.hardware(), *checks.models()]
    if not no_self_test:
        if not json_out:
            err.print("[dim]self-test: the default x4 model on a 64x48 picture, each device and precision[/]")
        found += checks.self_test(checks.self_test_plan(device))
    if json_out:
        for c in found:
            typer.echo(json.dumps(c.to_dict()))
    else:
        from rich.markup import escape
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_header=False)
        for _ in range(3):
            table.add_column(no_wrap=True)
        table.add_column(overflow="fold")  # paths whole, wrapped: what a bug report needs
        for c in found:
            mark = "[green]ok[/]" if c.ok else "[red]FAIL[/]" if c.ok is False else "[dim]--[/]"
            table.add_row(mark, c.area, escape(c.name), escape(c.detail))
        out.print(table, soft_wrap=True)
    failed = [c for c in found if c.ok is False]
    if failed:
        err.print(f"{len(failed)} check(s) failed: {', '.join(f'{c.area} {c.name}' for c in failed)}", soft_wrap=True,
                  markup=False)
        raise typer.Exit(EXIT_FAILURE)
