"""Run ``classsr upscale``, ``classsr video`` and ``classsr bench`` with random combinations of their options on small
made-up inputs: list each run that ends otherwise than as the CLI promises (an "internal error", a Python traceback on
stderr, or an exit code other than 0, 1, 2 and 3).

The inputs (an RGB and an RGBA PNG, a gray JPEG, a three-frame GIF, a half-second H.264 clip with AAC audio) are
made in a temporary folder, where the runs write. ``--seed`` picks the combinations: the same seed runs the same
commands. A JSON line on stdout for each problem (the command, its exit code, the end of its stderr); on stderr, how
many runs ended in 0, in 1-3 and how many were problems.

    python scripts/option_sweep.py [--runs 200] [--seed 1] [--classsr classsr]
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
    ["-m", "classsr_residual64_x4"], ["--device", "cpu"], ["--recursive"],
)  # fmt: skip
#: Options of `classsr video` drawn from.
VIDEO = (
    ["-x", "2"], ["--width", "96"], ["--start", "0.2"], ["--duration", "0.2"], ["--fps", "5"], ["--fps", "60"],
    ["--codec", "libx265"], ["--crf", "40"], ["--preset", "ultrafast"], ["--pix-fmt", "yuv444p"], ["--pix-fmt", "gray"],
    ["--no-audio"], ["--no-subtitles"], ["--reuse"], ["--reuse", "--reuse-threshold", "0"], ["--hysteresis", "0.5"],
    ["--tta", "2"], ["--classmap"], ["--json"], ["--dry-run"], ["--resume"], ["--ivtc"], ["--no-deinterlace"],
    ["-e", "tune=film"], ["--tolerance", "1"], ["--force-branch", "heavy"], ["--quality", "50"], ["--model", "auto"],
    ["--precision", "bf16"],
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
VIDEO_OUTPUTS = ("o.mp4", "o.mkv", "o.webm", "o.gif", "o.webp", "o.apng", "o.mov", "frames/%03d.png", "o.avi", None)


def make_inputs(folder: Path) -> None:
    """The pictures and the clip the runs read, in ``folder``."""
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


def command(rng: random.Random) -> list[str]:
    """One random command line, without the program's name."""
    draw = rng.random()
    if draw < 0.5:
        args, options, output = ["upscale", *rng.choice(IMAGE_INPUTS)], UPSCALE, rng.choice(IMAGE_OUTPUTS)
        args += ["-o", output] if output else []
    elif draw < 0.8:
        args, options, output = ["video", rng.choice(VIDEO_INPUTS)], VIDEO, rng.choice(VIDEO_OUTPUTS)
        args += [output] if output else []
    else:
        args, options = ["bench", *rng.choice(BENCH_INPUTS)], BENCH
    for _ in range(rng.randint(0, 3)):
        args += rng.choice(options)
    if args[0] == "bench":
        return [*args, "--repeat", "1", "--warmup", "0"]
    return args if "--skip-existing" in args else [*args, "--overwrite"]


def problem(code: int, stderr: str) -> bool:
    """Whether a run ended otherwise than the CLI promises: exit 0, 1 (an error), 2 (usage) or 3 (some inputs
    failed), each error one line, never a traceback."""
    return code not in (0, 1, 2, 3) or "internal error" in stderr or "Traceback (most recent call last)" in stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--classsr", default="classsr", help="the command that runs classsr")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ends: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="classsr-options-") as tmp:
        folder = Path(tmp)
        make_inputs(folder)
        for _ in range(args.runs):
            argv = [*shlex.split(args.classsr), *command(rng)]
            try:
                run = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=args.timeout)
                code, stderr = run.returncode, run.stderr
            except subprocess.TimeoutExpired:
                code, stderr = -1, f"timed out after {args.timeout:g} s"
            if problem(code, stderr):
                ends["problems"] += 1
                sys.stdout.write(json.dumps({"command": shlex.join(argv), "exit": code, "stderr": stderr[-800:]}) + "\n")
                sys.stdout.flush()
            else:
                ends["ok" if code == 0 else "refused"] += 1
    sys.stderr.write(f"runs {args.runs}: exit 0 {ends['ok']}, exit 1-3 (said in one line) {ends['refused']}, "
                     f"problems {ends['problems']}\n")
    return 1 if ends["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
