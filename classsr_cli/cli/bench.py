"""`classsr bench`: quality, FLOPs, wall time and memory of ClassSR against its branches and bicubic."""

# No `from __future__ import annotations`: typer reads these signatures at run time.

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from classsr_cli.cli._common import Command, Precision, err, guarded, out, own_outputs_note
from classsr_cli.cli._options import (
    DEFAULT_BATCH,
    DEFAULT_STEP,
    BatchOpt,
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    StepOpt,
    ThreadsOpt,
    ToleranceOpt,
    TtaOpt,
    flag,
)

EXAMPLES = """\
Examples:

  classsr bench                                  # the images in examples/, x4
  classsr bench Set5 Set14 -x2 --json > x2.json  # named sets under --data
  classsr bench photos/ --device cuda --plot bench.png
  classsr bench photo.jpg --native --threads 2    # time photo.jpg itself x4: seconds, MP/s, FLOPs, routing
  classsr bench Set5 --methods heavy,classsr      # only these two
  classsr bench SunHays80 --jpeg 50 --model classsr_residual_jpeg_x4   # LR saved as JPEG first
  classsr bench SunHays80 --noise 8 --jpeg 75 --model classsr_residual_noisy_x4   # noisy LR, then JPEG
"""

_METHOD_HELP = (
    "bicubic = Pillow bicubic; light/medium/heavy = one branch on the whole image; "
    "heavy-tiled = heavy branch on ClassSR's overlapping patches (the paper's -O); classsr = routed."
)


def register(app: typer.Typer) -> None:
    app.command("bench", cls=Command, epilog=EXAMPLES,
                help=f"Compare quality, FLOPs, time and memory on HR images. {_METHOD_HELP}")(bench)


@guarded
def bench(
    images: Annotated[
        list[str] | None,
        typer.Argument(
            help="HR images, folders of them, or set names under --data (e.g. Set5). Default: examples/.",
            show_default=False,
        ),
    ] = None,
    scale: Annotated[
        int | None,
        typer.Option("-x", "--scale", metavar="X", show_default=False,
                     help="Upscaling factor, a whole number (default: the --model's own scale, else 4); 3 runs the x4 "
                     "model, then downscales (as upscale)."),
    ] = None,
    model: ModelOpt = None,
    native: Annotated[
        bool,
        flag("--native", help="Time the images as given (your real job: e.g. a 1024x768 photo x4), not an LR made "
             "from them; no quality metrics, no reference needed."),
    ] = False,
    jpeg: Annotated[
        int | None,
        typer.Option("--jpeg", metavar="Q", min=1, max=100, show_default=False,
                     help="Save each LR as JPEG at quality Q (1-100) before upscaling, as everyday photos are: how "
                     "a model copes with compressed input (e.g. --model classsr_residual_jpeg_x4)."),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option("--noise", metavar="SIGMA", min=0, max=50, show_default=False,
                     help="Add luminance noise of standard deviation SIGMA levels (0-50) to each LR, before any "
                     "--jpeg, as a camera does: how a model copes with noisy input (e.g. --model "
                     "classsr_residual_noisy_x4)."),
    ] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    threads: ThreadsOpt = None,
    repeat: Annotated[int, typer.Option(min=1, metavar="N", help="Timed passes over the set; the median is reported, and a note on stderr where a method's passes spread more than 1.25x.")] = 3,
    warmup: Annotated[int, typer.Option(min=0, metavar="N", help="Untimed passes before timing.")] = 1,
    step: StepOpt = DEFAULT_STEP,
    tolerance: ToleranceOpt = None,
    tta: TtaOpt = 1,
    batch_size: BatchOpt = DEFAULT_BATCH,
    data: Annotated[
        Path | None,
        typer.Option(help="Folder holding named sets (default: $CLASSSR_DATA, else ../shared/data/val)."),
    ] = None,
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG of PSNR against time and FLOPs.")] = None,
    methods: Annotated[
        str | None,
        typer.Option(metavar="A,B,...", help="Methods to run, comma-separated (default: all): bicubic, light, "
                     "medium, heavy, heavy-tiled, classsr.", show_default=False),
    ] = None,
) -> None:
    """Benchmark the routed model against its own branches on the same images."""
    from classsr_cli import bench as lib
    from classsr_cli import distributed, runtime, zoo
    from classsr_cli.engine import check_step
    from classsr_cli.errors import ConfigError

    distributed.single_process("bench")
    scale = zoo.own_scale(model) if scale is None else scale
    if plot is not None and native:
        raise ConfigError("--plot draws PSNR against time, and --native measures no PSNR: leave one of them out")
    for given, name, does in ((jpeg, "--jpeg", "compresses"), (noise, "--noise", "adds noise to")):
        if given is not None and native:
            raise ConfigError(f"{name} {does} the LR bench makes, and --native upscales the images as given: leave "
                              "one of them out")
    if plot is not None and not lib.plot_available():
        raise ConfigError("--plot needs matplotlib: pip install matplotlib (the 'plot' extra of classsr)")
    if plot is not None:  # where it cannot be written, said before the images are timed
        lib.plot_target(plot)
    paths, left_out = lib.find_inputs(images or [], data)
    own_outputs_note(left_out)
    dev = runtime.resolve_device(device)
    dtype = runtime.resolve_dtype(precision.value, dev)
    loaded = zoo.load(model, scale, device=dev, dtype=dtype)
    if loaded.model_scale != scale:
        err.print(
            f"note: x{scale} is not the model's scale: running the x{loaded.model_scale} model, "
            "then an antialiased bicubic downscale to the HR size",
            soft_wrap=True,
        )
    check_step(step, loaded.config.patch)
    zoo.check_tolerance(loaded.net, tolerance, loaded.path)
    chosen = lib.parse_methods(methods)
    pairs = lib.load_native(paths, scale) if native else lib.load_pairs(paths, scale, jpeg, noise)
    with err.status("benchmarking…") as status:
        result = lib.run_bench(
            loaded.net,
            pairs,
            device=dev,
            dtype=dtype,
            step=step,
            batch_size=batch_size,
            tolerance=tolerance,
            repeat=repeat,
            warmup=warmup,
            threads=threads,
            methods=chosen,
            model_name=str(loaded.path),
            progress=lambda msg: status.update(msg),
            scale=scale,
            tta=tta,
        )
    if plot is not None:
        lib.write_plot(result, plot)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), allow_nan=False))
    else:
        _table(result)
    if plot is not None:
        err.print(f"plot written to {plot}")
    noisy = _noise_note(result)
    if noisy:
        err.print(noisy, soft_wrap=True, markup=False)


def _noise_note(result: Any) -> str | None:
    """One line for stderr where a method's timed passes spread more than :data:`~classsr_cli.bench.NOISY_SPREAD`
    (the machine's speed moved during the run), else ``None``."""
    noisy = {n: result.methods[n] for n in result.noisy()}
    if not noisy:
        return None
    spans = ", ".join(f"{n} {m.spread:.2f}x ({min(m.seconds_all):.3g}-{max(m.seconds_all):.3g} s)"
                      for n, m in noisy.items())
    load = "" if result.load_average is None else f"; load average {result.load_average[0]:g} before the run"
    return (f"note: timings moved during the run: the slowest pass over the fastest, {spans}{load}. "
            "Time ratios may be off by as much: bench on a quiet machine, or with a larger --repeat")


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or x != x else format(x, spec)  # None or NaN (no quality in --native runs)


def _table(result: Any) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    heavy = result.methods.get("heavy")
    t = Table(
        title=(
            f"classsr bench ×{result.scale} · {result.images} image(s), {result.megapixels:.2f} MP out · "
            f"{result.device} ({result.device_name}) · {result.threads} thread(s) · {result.precision}"
            + _degraded(result.noise, result.jpeg)
            + (f" · --tta {result.tta} (all but bicubic)" if result.tta > 1 else "")
        ),
        caption=f"× = ratio to heavy (heavy branch on the whole image) · model {result.model} · step {result.step} · "
        f"median of {result.repeat} timed pass(es) · MB = {_MEMORY.get(result.peak_mem, result.peak_mem)}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    headers = (
        "method",
        "PSNR-Y\ndB",
        "ΔPSNR-Y\nvs heavy",
        "SSIM-Y",
        "PSNR\nRGB",
        "GFLOPs\nreal",
        "FLOPs\n×",
        "paper\nFLOPs ×",
        "time\ns",
        "time\n×",
        "MP/s",
        "peak\nMB",
    )
    for col in headers:
        t.add_column(col, justify="left" if col == "method" else "right")
    for name, m in result.methods.items():
        d_y = None if heavy is None or m.psnr_y is None or heavy.psnr_y is None else m.psnr_y - heavy.psnr_y
        t.add_row(
            name,
            _fmt(m.psnr_y, ".2f"),
            _fmt(d_y, "+.2f"),
            _fmt(m.ssim_y, ".4f"),
            _fmt(m.psnr_rgb, ".2f"),
            _fmt(m.flops / 1e9, ".2f"),
            _fmt(result.ratio(name, "flops"), ".2f"),
            _fmt(result.ratio(name, "flops_paper"), ".2f"),
            _fmt(m.seconds, ".3f"),
            _fmt(result.ratio(name, "seconds"), ".2f"),
            _fmt(m.mp_per_s, ".2f"),
            _fmt(m.peak_mem_mb, ".0f"),
        )
    # Piped output is not squeezed into 80 columns: the table is the result.
    console = out if out.is_terminal else Console(highlight=False, width=max(out.width, 132))
    console.print(t)
    routed = result.methods.get("classsr")
    if routed is not None and routed.patches:
        n = sum(routed.patches.values()) or 1
        split = ", ".join(f"{k} {v} ({100 * v / n:.0f}%)" for k, v in routed.patches.items())
        console.print(f"ClassSR patches: {split}")
    console.print(_inputs_line(result.inputs), soft_wrap=True, markup=False)


def _inputs_line(inputs: list[str], most: int = 12) -> str:
    shown = ", ".join(inputs[:most])
    more = f", and {len(inputs) - most} more (--json lists them all)" if len(inputs) > most else ""
    return f"inputs ({len(inputs)}): {shown}{more}"


#: What the table's MB column measures, by :func:`classsr_cli.bench.peak_mem_kind` (its id, which the JSON keeps: the
#: caption said "peak memory: rss_sampled_delta").
_MEMORY = {
    "cuda_max_allocated_delta": "the most CUDA memory allocated above the level at the start",
    "rss_sampled_delta": "the most resident memory above the level at the start (sampled every 2 ms)",
    "ru_maxrss_delta": "the rise of the process's peak resident memory (0 after a larger pass)",
    "unavailable": "not measured on this device",
}


def _degraded(noise: float | None, jpeg: int | None) -> str:
    """The table title's words for what ``--noise`` and ``--jpeg`` did to the LR (nothing for a clean LR)."""
    if noise is not None and jpeg is not None:
        return f" · LR: noise σ{noise:g}, JPEG q{jpeg}"
    if noise is not None:
        return f" · LR with noise σ{noise:g}"
    return "" if jpeg is None else f" · LR saved as JPEG q{jpeg}"
