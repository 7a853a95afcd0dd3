"""Run ``classsr upscale``, ``video``, ``bench``, ``train``, ``convert``, ``models`` and ``doctor`` with random
combinations of their options on small made-up inputs: list each run that ends otherwise than as the CLI promises
(an "internal error", a Python traceback on stderr, or an exit code other than 0, 1, 2 and 3).

The inputs (an RGB and an RGBA PNG, a gray JPEG, a three-frame GIF, a half-second H.264 clip with AAC audio, a folder
of four HR pictures with a training config, and the paper authors' checkpoint layouts with seeded random weights, as
tests/test_convert.py writes them) are made in a temporary folder, where the runs write; runs share it, so a `train`
stage may find another's run folder, and `upscale -m c.safetensors` the model a `convert` wrote. ``train`` runs one
iteration a stage. ``--seed`` picks the combinations: the same seed runs the same commands. A JSON line on stdout for
each problem (the command, its exit code, the end of its stderr), and with ``--log FILE`` one for every run there;
on stderr, how many runs ended in 0, in 1-3 and how many were problems.

    python scripts/option_sweep.py [--runs 200] [--seed 1] [--commands upscale,video,bench,train,convert,models,doctor]
        [--log runs.jsonl] [--classsr classsr]
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

#: Options of `classsr upscale` drawn from, each with its values.
UPSCALE = (
    ["-x", "2"], ["-x", "3"], ["-x", "4"], ["-x", "1.5"], ["-x", "8"], ["--width", "100"], ["--height", "77"],
    ["--width", "100", "--height", "50"], ["--tolerance", "0"], ["--tolerance", "5"], ["--force-branch", "light"],
    ["--tta", "2"], ["--tta", "8"], ["--classmap"], ["--classes", "--json"], ["--json"], ["--dry-run"],
    ["--step", "24"], ["--step", "32"], ["--step", "7"], ["--batch-size", "1"], ["--threads", "1"],
    ["--precision", "bf16"], ["--precision", "fp16"], ["-f", "webp"], ["-f", "jpg", "--quality", "10"], ["-f", "tga"],
    ["-f", "exr"], ["-f", "qoi"], ["--strip-metadata"], ["--model", "auto"], ["--model", "classsr_fsrcnn_x2"],
    ["--model", "classsr_residual_x2"], ["--max-pixels", "100"], ["--keep-going"], ["--skip-existing"],
    ["-m", "classsr_residual64_x4"], ["--device", "cpu"], ["--recursive"], ["-m", "c.safetensors"],
    ["-m", "run1/classsr.safetensors"], ["-m", "hat.safetensors"], ["-m", "esrgan.pth"],
)  # fmt: skip
#: Options of `classsr video` drawn from.
VIDEO = (
    ["-x", "2"], ["--width", "96"], ["--start", "0.2"], ["--duration", "0.2"], ["--fps", "5"], ["--fps", "60"],
    ["--codec", "libx265"], ["--crf", "40"], ["--preset", "ultrafast"], ["--pix-fmt", "yuv444p"], ["--pix-fmt", "gray"],
    ["--no-audio"], ["--no-subtitles"], ["--reuse"], ["--reuse", "--reuse-threshold", "0"], ["--hysteresis", "0.5"],
    ["--tta", "2"], ["--classmap"], ["--json"], ["--dry-run"], ["--resume"], ["--ivtc"], ["--no-deinterlace"],
    ["-e", "tune=film"], ["--tolerance", "1"], ["--force-branch", "heavy"], ["--quality", "50"], ["--model", "auto"],
    ["--precision", "bf16"], ["--model", "hat.safetensors"],
)  # fmt: skip
#: Options of `classsr bench` drawn from (each run times one pass, none untimed).
BENCH = (
    ["-x", "2"], ["-x", "3"], ["--native"], ["--jpeg", "30"], ["--noise", "10"], ["--plot", "plot.png"],
    ["--methods", "classsr,heavy"], ["--methods", "bicubic"], ["--methods", "nope"], ["--step", "24"], ["--step", "7"],
    ["--tolerance", "3"], ["--tta", "2"], ["--json"], ["--precision", "bf16"], ["--threads", "1"], ["--batch-size", "1"],
    ["-m", "classsr_fsrcnn_x2"], ["-m", "classsr_residual64_x4"], ["--noise", "0", "--jpeg", "95"],
)  # fmt: skip
BENCH_INPUTS = (["a.png"], ["g.jpg"], ["rgba.png"], ["anim.gif"], ["a.png", "g.jpg"], ["Set5"])
IMAGE_INPUTS = (["a.png"], ["rgba.png"], ["g.jpg"], ["anim.gif"], ["a.png", "g.jpg"], ["."])
IMAGE_OUTPUTS = ("o.png", "o.jpg", "o.webp", "o.avif", "o.tif", "outdir/", "o.gif", "o.heic", "o.jxl", None)
VIDEO_INPUTS = ("clip.mp4", "anim.gif")
#: `classsr train` stages, and the options every stage takes (each run gives `--hr hr --iterations 1` before them).
TRAIN_STAGES = ("prepare", "baseline", "rank", "branches", "classifier", "finetune", "all")
TRAIN = (
    ["-x", "2"], ["-x", "3"], ["-x", "8"], ["--family", "carn"], ["--family", "srresnet"], ["--family", "rcan"],
    ["--family", "residual"], ["--family", "nope"], ["--config", "classsr_residual_x4"],
    ["--config", "classsr_fsrcnn_x2"], ["--config", "tiny.toml"], ["--config", "tiny_carn.toml"],
    ["--config", "tiny_srresnet.toml"], ["--config", "tiny_rcan.toml"], ["--config", "tiny_residual.toml"],
    ["--config", "bad.toml"],
    ["--config", "c.safetensors"], ["--config", "a.png"], ["--seed", "3"], ["--threads", "1"], ["--device", "cpu"],
    ["--device", "cuda"], ["--data", "data"], ["--data", "hr"], ["--hr", "hr2"], ["--hr", "a.png"], ["--hr", "nothing"],
    ["--iterations", "0"], ["--iterations", "2"],
)  # fmt: skip
#: Options of `classsr train prepare` (with `--hr` and `-o`).
PREPARE = (
    ["-x", "2"], ["-x", "3"], ["--patch", "16"], ["--patch", "48"], ["--patch", "7"], ["--factors", "1.0,0.5"],
    ["--factors", "abc"], ["--factors", "2"], ["--val-fraction", "0"], ["--val-fraction", "1"], ["--jpeg", "30,90"],
    ["--jpeg", "90,30"], ["--jpeg-clean", "0.5"], ["--noise", "1,5"], ["--noise", "0,0"], ["--noise-clean", "2"],
    ["--step", "8"], ["--step", "100"], ["--step", "0"],
)  # fmt: skip
TRAIN_RUNS = ("run1", "run2", "a.png", "", "")
#: Inputs, options and outputs of `classsr convert`.
CONVERT_INPUTS = (
    ["ClassSR_FSRCNN.pth"], ["ClassSR_CARN.pth"], ["ClassSR_SRResNet.pth"], ["ClassSR_RCAN.pth"], ["carn_x2.pth"],
    ["rcan_x3.pth"], ["b1.pth", "b2.pth", "b3.pth", "clf.pth"], ["b3.pth", "b1.pth", "b2.pth"], ["clf.pth"],
    ["ClassSR_FSRCNN.pth", "carn_x2.pth"], ["garbage.pth"], ["empty.pth"], ["a.png"], ["c.safetensors"], ["hr"],
    ["esrgan.pth"], ["hat.safetensors"],
)  # fmt: skip
CONVERT = (
    ["--family", "fsrcnn"], ["--family", "carn"], ["--family", "srresnet"], ["--family", "rcan"], ["-x", "2"],
    ["-x", "3"], ["-x", "4"], ["-x", "8"], ["--overwrite"],
)  # fmt: skip
CONVERT_OUTPUTS = ("c.safetensors", "c.safetensors", "c2.safetensors", "nothing/c.safetensors", "a.png/c.safetensors",
                   "c.pth", "hr")
#: Arguments and options of `classsr models` and `classsr doctor`.
MODELS = (["--json"], ["run1"], ["run1/classsr.safetensors"], ["c.safetensors"], ["hr"], ["a.png"], ["nothing"],
          ["hat.safetensors"], ["esrgan.pth"])
DOCTOR = (["--no-self-test"], ["--json"], ["--device", "cpu"], ["--device", "cuda"], ["--device", "mps"])
COMMANDS = ("upscale", "video", "bench", "train", "convert", "models", "doctor")
VIDEO_OUTPUTS = ("o.mp4", "o.mkv", "o.webm", "o.gif", "o.webp", "o.apng", "o.mov", "frames/%03d.png", "o.avi", None)


def make_inputs(folder: Path, commands: tuple[str, ...] = COMMANDS) -> None:
    """The pictures, the clip, the training photos and (where ``commands`` has ``convert``) the checkpoints the runs
    read, in ``folder``."""
    import numpy as np
    from PIL import Image

    from classsr_cli.io.video import ffmpeg_exe

    rng = np.random.default_rng(1)

    def noise(*shape: int) -> Image.Image:
        return Image.fromarray((rng.random(shape) * 255).astype("uint8"))

    noise(40, 56, 3).save(folder / "a.png")
    noise(40, 56, 4).save(folder / "rgba.png")
    noise(33, 47).save(folder / "g.jpg")
    frames = [noise(24, 32, 3) for _ in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10:duration=0.5",
                    "-f", "lavfi", "-i", "sine=duration=0.5", "-c:v", "libx264", "-c:a", "aac", str(folder / "clip.mp4")],
                   check=True)  # fmt: skip
    (folder / "hr").mkdir()
    for i in range(4):
        noise(160, 200, 3).save(folder / "hr" / f"p{i}.png")
    (folder / "hr2").mkdir()
    noise(150, 140).save(folder / "hr2" / "gray.png")  # another folder, a gray photo
    stages = "".join(f"[{name}]\niterations = 2\nbatch_size = 4\nlr = 1e-3\nval_every = 1\nckpt_every = 1\n"
                     for name in ("baseline", "branches", "classifier", "finetune"))  # fmt: skip
    tiny = {  # each family at a few channels and blocks: the big ones take minutes a run at their own widths
        "tiny": 'family = "fsrcnn"\nwidths = [4, 6, 8]',
        "tiny_carn": 'family = "carn"\nwidths = [4, 8, 12]\nextra = {num_blocks = 1}',
        "tiny_srresnet": 'family = "srresnet"\nwidths = [4, 6, 8]\nextra = {num_blocks = 1}',
        "tiny_rcan": 'family = "rcan"\nwidths = [4, 6, 8]\nextra = {num_groups = 1, num_blocks = 1, reduction = 2}',
        "tiny_residual": 'family = "residual"\nwidths = [0, 4, 8]\nextra = {fitted_base = 1, depth = 2}\n'
                         'routing = "budget"\nbudget_default = "price"\nframe_cap_db = 0.1',
    }
    for name, head in tiny.items():
        (folder / f"{name}.toml").write_text(f"{head}\nscale = 4\npatch = 32\ndata_step = 16\nfactors = [1.0]\n{stages}")
    (folder / "bad.toml").write_text("family = [\n")
    import torch
    from safetensors.torch import save_file

    # other tools' models (a HAT in safetensors, an ESRGAN .pth): key names alone say what they are
    save_file({"conv_first.weight": torch.zeros(2), "layers.0.residual_group.blocks.0.conv_block.cab.0.weight":
               torch.zeros(2)}, str(folder / "hat.safetensors"))  # fmt: skip
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(2), "body.0.rdb1.conv1.weight": torch.zeros(2)}},
               folder / "esrgan.pth")
    if "convert" in commands:
        make_checkpoints(folder)


def make_checkpoints(folder: Path) -> None:
    """The paper authors' layouts, with tests/test_convert.py's seeded random weights."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_convert import FAMILIES, orig_classifier

    torch.manual_seed(1)
    for family, name in (("fsrcnn", "FSRCNN"), ("carn", "CARN"), ("srresnet", "SRResNet"), ("rcan", "RCAN")):
        build, _, widths = FAMILIES[family]
        flat = {f"classifier.{k}": v for k, v in orig_classifier().items()}
        for n, width in enumerate(widths, 1):
            flat.update({f"net{n}.{k}": v for k, v in build(width).items()})
        torch.save({"state_dict": {f"module.{k}": v for k, v in flat.items()}}, folder / f"ClassSR_{name}.pth")
    torch.save({"params_ema": FAMILIES["carn"][0](8, scale=2)}, folder / "carn_x2.pth")
    torch.save(FAMILIES["rcan"][0](8, scale=3), folder / "rcan_x3.pth")
    for n, width in enumerate(FAMILIES["srresnet"][2], 1):
        torch.save(FAMILIES["srresnet"][0](width), folder / f"b{n}.pth")
    torch.save({f"classifier.{k}": v for k, v in orig_classifier(8).items()}, folder / "clf.pth")
    (folder / "garbage.pth").write_bytes(b"PK\x03\x04 not a checkpoint")
    (folder / "empty.pth").write_bytes(b"")


def command(rng: random.Random, commands: tuple[str, ...] = COMMANDS) -> list[str]:
    """One random command line, without the program's name, of one of ``commands``."""
    name = rng.choice(commands)
    if name == "upscale":
        args, options, output = ["upscale", *rng.choice(IMAGE_INPUTS)], UPSCALE, rng.choice(IMAGE_OUTPUTS)
        args += ["-o", output] if output else []
    elif name == "video":
        args, options, output = ["video", rng.choice(VIDEO_INPUTS)], VIDEO, rng.choice(VIDEO_OUTPUTS)
        args += [output] if output else []
    elif name == "bench":
        args, options = ["bench", *rng.choice(BENCH_INPUTS)], BENCH
    elif name == "train":
        stage = rng.choice(TRAIN_STAGES)
        if stage == "prepare":
            args, options = ["train", stage, "--hr", "hr", "-o", rng.choice(("data", "data2", "a.png"))], PREPARE
        else:
            run = rng.choice(TRAIN_RUNS) or f"run{rng.randint(3, 9)}"  # (a new one, or one another run began)
            args, options = ["train", stage, "--out", run, "--hr", "hr", "--iterations", "1"], TRAIN
    elif name == "convert":
        args = ["convert", *rng.choice(CONVERT_INPUTS), "-o", rng.choice(CONVERT_OUTPUTS)]
        options = CONVERT
    else:
        args, options = [name], MODELS if name == "models" else DOCTOR
    for _ in range(rng.randint(0, 3)):
        args += rng.choice(options)
    if args[0] == "bench":
        return [*args, "--repeat", "1", "--warmup", "0"]
    if args[0] in ("train", "convert", "models", "doctor") or "--skip-existing" in args:
        return args
    return [*args, "--overwrite"]


def problem(code: int, stderr: str) -> bool:
    """Whether a run ended otherwise than the CLI promises: exit 0, 1 (an error), 2 (usage) or 3 (some inputs
    failed), each error one line, never a traceback."""
    return code not in (0, 1, 2, 3) or "internal error" in stderr or "Traceback (most recent call last)" in stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commands", default=",".join(COMMANDS), help="the subcommands drawn from, comma-separated")
    parser.add_argument("--classsr", default="classsr", help="the command that runs classsr")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--log", type=Path, help="also write every run's JSON line (with its last stderr line) here")
    args = parser.parse_args()
    commands = tuple(args.commands.split(","))
    if not commands or not set(commands) <= set(COMMANDS):
        parser.error(f"--commands: a comma-separated choice of {', '.join(COMMANDS)}")
    rng = random.Random(args.seed)
    ends: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="classsr-options-") as tmp:
        folder = Path(tmp)
        make_inputs(folder, commands)
        for _ in range(args.runs):
            argv = [*shlex.split(args.classsr), *command(rng, commands)]
            try:
                run = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=args.timeout)
                code, stderr = run.returncode, run.stderr
            except subprocess.TimeoutExpired:
                code, stderr = -1, f"timed out after {args.timeout:g} s"
            record = {"command": shlex.join(argv), "exit": code, "stderr": stderr[-800:]}
            if problem(code, stderr):
                ends["problems"] += 1
                sys.stdout.write(json.dumps(record) + "\n")
                sys.stdout.flush()
            else:
                ends["ok" if code == 0 else "refused"] += 1
            if args.log is not None:
                with args.log.open("a", encoding="utf-8") as log:
                    log.write(json.dumps({**record, "stderr": (stderr.strip().splitlines() or [""])[-1]}) + "\n")
    sys.stderr.write(f"runs {args.runs}: exit 0 {ends['ok']}, exit 1-3 (said in one line) {ends['refused']}, "
                     f"problems {ends['problems']}\n")
    return 1 if ends["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
