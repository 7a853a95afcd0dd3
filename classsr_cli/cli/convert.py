"""`classsr convert`: the ClassSR authors' .pth checkpoints -> a classsr safetensors checkpoint."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from classsr_cli.cli._common import Command, err, guarded, out
from classsr_cli.cli._options import OverwriteOpt

EXAMPLES = """\
Examples:

  classsr convert ClassSR_FSRCNN.pth -o weights/paper_fsrcnn_x4.safetensors
  classsr convert light.pth medium.pth heavy.pth classifier.pth -o mine.safetensors --family carn
"""


class Family(str, Enum):  # noqa: UP042  (works on every supported Python)
    auto = "auto"
    fsrcnn = "fsrcnn"
    carn = "carn"
    srresnet = "srresnet"
    rcan = "rcan"


@guarded
def convert_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Original .pth file(s): one ClassSR_*.pth, one branch file, or three branch files + a classifier.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", metavar="PATH", help="The .safetensors file to write.")
    ],
    family: Annotated[
        Family, typer.Option(help="Expected family; auto detects it from the keys.")
    ] = Family.auto,
    scale: Annotated[
        int | None,
        typer.Option("-x", "--scale", help="Expected scale (default: read from the shapes; FSRCNN is x4)."),
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert the paper authors' checkpoints (weights-only loading; nothing else is unpickled)."""
    from classsr_cli.convert import convert

    result = convert(inputs, output, family=family.value, scale=scale, overwrite=overwrite)
    widths = "/".join(str(w) for w in result.widths)
    err.print(
        f"converted {len(inputs)} file(s): {result.family} x{result.scale} {result.kind}, width(s) {widths}"
    )
    if result.kind == "branch":
        err.print("a single branch: usable from Python (classsr_cli.checkpoint), not as an upscale --model")
    out.print(str(result.output))


def register(app: typer.Typer) -> None:
    app.command("convert", cls=Command, epilog=EXAMPLES)(convert_command)
