"""`classsr video --resume` and `--dry-run` end to end, as a user meets them: the estimate before the run, a run
stopped by Ctrl-C part-way, the same command run again, and the same video upscaled in one run without
``--resume`` for comparison.

    PYTHONPATH=scripts python scripts/video_resume.py ../shared/data/val/SunHays80/abbey_sun_asztnlqhlrvirneh.jpg \
        --stop-after 100 --json docs/results/fiftyfourth/video_resume.json

The clip: a 12 s slow zoom into the photo at 960x540, 24 frames/s, with a tone (libx264, made by the bundled
ffmpeg), upscaled x4 by the default model to 3840x2160 with ``--threads 2``. The stop is SIGINT (Ctrl-C) after
``--stop-after`` seconds. Reported: each run's wall time and ``--json`` record, what the stopped run kept, and the
two outputs against each other (size, streams, PSNR-Y of every frame from ffmpeg's psnr filter).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from report import emit

from classsr_cli.io.video import ffmpeg_exe


def _run(cmd: list[str], stop_after: float | None = None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        out, _ = proc.communicate(timeout=stop_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate()
    return time.perf_counter() - t0, proc.returncode, out


def _streams(path: Path) -> list[str]:
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return [re.sub(r", \d+ kb/s", "", ln.strip()) for ln in text.splitlines() if "Stream #" in ln]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--stop-after", type=float, default=100.0, help="seconds before the first run gets SIGINT")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ff = ffmpeg_exe()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = d / "clip.mp4"
        subprocess.run([ff, "-v", "error", "-y", "-loop", "1", "-i", str(args.photo), "-f", "lavfi", "-i",
                        "sine=frequency=330:duration=12", "-filter_complex",
                        "[0:v]scale=2880:-2,zoompan=z='1+0.002*on':d=288:s=960x540:fps=24[v]", "-map", "[v]",
                        "-map", "1:a", "-t", "12", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)],
                       check=True)  # fmt: skip
        video = ["classsr", "video", str(clip), "--threads", "2", "--json"]
        resumed, straight = d / "resumed.mp4", d / "straight.mp4"
        dry_s, dry_rc, dry_out = _run([*video, str(straight), "--dry-run"])
        stop_s, stop_rc, stop_out = _run([*video, str(resumed), "--resume"], args.stop_after)
        kept = json.loads((d / ".resumed.mp4.resume" / "state.json").read_text())["totals"]["frames"]
        cont_s, cont_rc, cont_out = _run([*video, str(resumed), "--resume"])
        one_s, one_rc, one_out = _run([*video, str(straight)])
        psnr = subprocess.run([ff, "-hide_banner", "-nostats", "-i", str(resumed), "-i", str(straight), "-lavfi",
                               "[0:v][1:v]psnr", "-f", "null", "-"], capture_output=True, text=True).stderr  # fmt: skip
        y = re.search(r"PSNR y:(\S+) .* min:(\S+)", psnr)
        result = {
            "photo": str(args.photo),
            "dry_run": {"seconds": round(dry_s, 2), "exit": dry_rc, "record": json.loads(dry_out)},
            "stopped": {"seconds": round(stop_s, 2), "exit": stop_rc, "record": json.loads(stop_out),
                        "frames_kept": kept},
            "continued": {"seconds": round(cont_s, 2), "exit": cont_rc, "record": json.loads(cont_out)},
            "straight": {"seconds": round(one_s, 2), "exit": one_rc, "record": json.loads(one_out)},
            "bytes": {"resumed": resumed.stat().st_size, "straight": straight.stat().st_size},
            "same_streams": _streams(resumed) == _streams(straight),
            "psnr_y_resumed_vs_straight": {"mean": y.group(1), "min_frame": y.group(2)} if y else None,
        }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
