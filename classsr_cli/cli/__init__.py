"""The ``classsr`` command line. Only this package imports typer and rich; torch is imported lazily."""

from __future__ import annotations

import typer

from classsr_cli import __version__
from classsr_cli.cli._common import Group

app = typer.Typer(
    cls=Group,
    name="classsr",
    help="Content-adaptive super-resolution (ClassSR) for images and video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"classsr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Content-adaptive super-resolution (ClassSR) for images and video."""
    from classsr_cli.runtime import cache_more_primitives, keep_freed_memory

    keep_freed_memory()  # every command runs frames or batches of one size, over and over
    cache_more_primitives()  # before torch compiles its first convolution


def _register() -> None:
    from classsr_cli.cli import upscale

    upscale.register(app)

    from classsr_cli.cli import models

    models.register(app)

    from classsr_cli.cli import video

    video.register(app)

    from classsr_cli.cli import bench

    bench.register(app)

    from classsr_cli.cli import convert

    convert.register(app)

    from classsr_cli.cli import train

    app.add_typer(train.app, name="train")

    from classsr_cli.cli import doctor

    doctor.register(app)


_register()


#: What Real-ESRGAN's (ncnn-vulkan and Python) options are here, said when one is given (docs/cli.md, "Coming from
#: Real-ESRGAN, waifu2x or video2x").
_PEER_OPTIONS = {
    "-i": "inputs are arguments: classsr upscale photo.png (a file, folder or glob)",
    "--input": "inputs are arguments: classsr upscale photo.png (a file, folder or glob)",
    "-s": "the scale is -x (-x 4, -x 2, or --width/--height)",
    "-n": "the model is --model NAME (`classsr models` lists them)",
    "--model_name": "the model is --model NAME (`classsr models` lists them)",
    "-f": "the output format is --format (png, jpg, webp, tif, bmp) or -o's suffix",
    "--ext": "the output format is --format (png, jpg, webp, tif, bmp) or -o's suffix",
    "-g": "the device is --device (cuda, cuda:1, cpu)",
    "--gpu-id": "the device is --device (cuda, cuda:1, cpu)",
    "-j": "CPU threads are --threads N",
    "--tile": "classsr tiles by itself (--batch-size bounds its memory)",
    "--tile_pad": "classsr tiles by itself and pads each tile by its networks' reach",
    "--fp32": "the precision is --precision fp32 (the default on a CPU)",
    "--half": "the precision is --precision fp16 or bf16",
    "--suffix": "outputs are named {stem}_x4 beside their inputs, or by -o",
    "--face_enhance": "classsr has no face model",
}


#: Where a command takes them otherwise (video has no --format or --width-less scale; bench only -x and -m).
_PEER_OVERRIDES: dict[str, dict[str, str | None]] = {
    "video": {"-f": "the container is the output's extension (out.mkv)", "--ext": "the container is the output's "
              "extension (out.mkv)", "-i": "the input is the first argument: classsr video in.mp4 out.mp4",
              "--input": "the input is the first argument: classsr video in.mp4 out.mp4"},
    "bench": {"-s": "the scale is -x (-x 4)", "-f": None, "--ext": None, "--suffix": None, "-i": None, "--input": None},
}


def _peer_hint(command: str | None, option: str | None) -> str | None:
    """What a peer's ``option`` is in ``command`` (upscale, video, bench), or ``None``."""
    if command not in ("upscale", "video", "bench") or option is None:
        return None
    overrides = _PEER_OVERRIDES.get(command, {})
    return overrides[option] if option in overrides else _PEER_OPTIONS.get(option)


def _command_hint(message: str) -> str:
    """``classsr photo.png`` (no command) said "No such command 'photo.png'."; a picture or a video given where the
    command goes is pointed to the command that upscales it."""
    import re
    from pathlib import Path

    from classsr_cli.io.files import VIDEO_SUFFIXES, is_image_name

    found = re.fullmatch(r"No such command '(.+)'\.", message)
    if found is None:
        return ""
    name = Path(found[1])
    if name.suffix.lower() in VIDEO_SUFFIXES:
        return f"; to upscale a video: classsr video {found[1]} OUTPUT"
    if is_image_name(name) or name.is_dir():
        return f"; to upscale it: classsr upscale {found[1]}"
    return ""


def main() -> None:
    """The ``classsr`` command. A usage error (a bad option value, a missing argument) is one line on stderr that
    names the command's ``--help``, exit 2, like every other error; Typer would draw it in a box of several lines.
    Everything else is Typer's own handling."""
    import sys

    from classsr_cli.cli._common import _CLICK_ERRORS, fail

    try:
        code = app(standalone_mode=False, prog_name="classsr")
    except _CLICK_ERRORS as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # a command given nothing: Typer has shown its help
            sys.exit(getattr(e, "exit_code", 2))
        ctx = getattr(e, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        message = message.replace(": Value error, ", ": ", 1)  # pydantic's prefix (Typer 0.29 checks values with it)
        peer = _peer_hint(getattr(ctx, "info_name", None), getattr(e, "option_name", None))
        if type(e).__name__ == "NoSuchOption" and peer:
            message = f"{message}; {peer}"
        if hint := _command_hint(message):
            message = message.rstrip(".") + hint
        if getattr(ctx, "info_name", None) == "video" and message.startswith("Got unexpected extra argument"):
            message += ("; a shell glob gives each frame as an argument: give an image sequence as its folder or "
                        "quoted (classsr video 'frames/%04d.png' out.mp4, or 'frames/*.png')")
        raise SystemExit(fail(f"{message}{where}", getattr(e, "exit_code", 2)).exit_code) from None
    except typer.Abort:  # click's own "Aborted!" case (an EOF at a prompt)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
