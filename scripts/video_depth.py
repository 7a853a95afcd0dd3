"""Banding of a deep source through ``classsr video``: a shallow 10-bit gradient (a clear sky's range of levels)
upscaled at the default pixel format (``yuv420p10le`` for this source) and at ``--pix-fmt yuv420p`` (8 bits, what
every output was before the fifty-second pass), then the distinct 10-bit luma levels and the longest run of one
level along the middle row of the first frame.

    PYTHONPATH=scripts python scripts/video_depth.py [--model M] [-x 4] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from report import emit  # scripts/

from classsr_cli.io.video import ffmpeg_exe


def make_ramp(path: Path, width: int = 320, height: int = 240, frames: int = 10) -> None:
    """A 10-bit H.264 clip of a shallow colour gradient: about 256 10-bit levels of luma across ``width`` (64 at
    8 bits), brightening slightly downwards."""
    x = np.linspace(0.2, 0.45, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    rgb = np.stack([x * 0.8 + 0 * y, x * 0.9 + 0.02 * y, x + 0.05 * y], -1)
    frame = (rgb * 65535).round().astype("<u2")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s",
                    f"{width}x{height}", "-r", "25", "-i", "-", "-c:v", "libx264", "-crf", "12", "-pix_fmt",
                    "yuv420p10le", str(path)], input=np.concatenate([frame] * frames).tobytes(), check=True)  # fmt: skip


def banding(path: Path) -> dict[str, int]:
    """Distinct 10-bit luma levels and the longest run of one level (pixels) on the first frame's middle row."""
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    height = int(next(ln for ln in info.splitlines() if "Video:" in ln).split("x")[-1].split()[0].rstrip(","))
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray16le", "-"], capture_output=True, check=True).stdout  # fmt: skip
    row = np.frombuffer(raw, "<u2").reshape(height, -1)[height // 2] >> 6
    runs = np.split(row, np.nonzero(np.diff(row))[0] + 1)
    return {"levels": len(np.unique(row)), "longest_run": max(len(r) for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", default="4")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_ramp(d / "ramp10.mp4")
        report: dict[str, object] = {"source": banding(d / "ramp10.mp4")}
        for name, extra in (("default", []), ("yuv420p", ["--pix-fmt", "yuv420p"])):
            cmd = [sys.executable, "-m", "classsr_cli", "video", str(d / "ramp10.mp4"), str(d / f"{name}.mp4"),
                   "-x", args.scale, "--threads", args.threads, "--json", *extra]
            cmd += ["--model", args.model] if args.model else []
            rec = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            report[name] = {"pix_fmt": rec["pix_fmt"], "bits": rec["bits"], **banding(d / f"{name}.mp4")}
    emit(report, args.json)


if __name__ == "__main__":
    main()
