"""Colour bias of video decoding: a 1080p BT.709 clip made from ``examples/lighthouse.jpg``, tagged, untagged, and
with only its header's tags (a remux that cleared the stream's), decoded by ffmpeg's default YUV -> RGB conversion
and by ``classsr video``'s reader, each against the BT.709 formula in float on the clip's own Y'CbCr planes (chroma
repeated 2x2): mean signed and absolute error per channel, and the colour properties the header lists.

    PYTHONPATH=scripts python scripts/video_colour.py [--json out.json]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from report import emit  # scripts/

from classsr_cli.io.video import VideoReader, ffmpeg_exe, probe

W, H = 1920, 1080
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lighthouse.jpg"


def bt709(path: Path) -> np.ndarray:
    """R'G'B' (8-bit levels, float) of the first frame's limited-range BT.709 4:2:0 planes."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout  # fmt: skip
    n = W * H
    y = np.frombuffer(raw[:n], np.uint8).reshape(H, W).astype(float)
    u, v = (np.frombuffer(raw[n + k * n // 4 : n + (k + 1) * n // 4], np.uint8).reshape(H // 2, W // 2)
            .astype(float).repeat(2, 0).repeat(2, 1) for k in (0, 1))  # fmt: skip
    kr, kb = 0.2126, 0.0722
    yy, pb, pr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    r, b = yy + 2 * (1 - kr) * pr, yy + 2 * (1 - kb) * pb
    return np.clip(np.stack([r, (yy - kr * r - kb * b) / (1 - kr - kb), b], -1) * 255, 0, 255)


def errors(got: np.ndarray, want: np.ndarray) -> dict[str, list[float]]:
    d = got.astype(float) - want
    return {"bias": d.reshape(-1, 3).mean(0).round(3).tolist(), "mae": np.abs(d).reshape(-1, 3).mean(0).round(3).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {k: Path(tmp) / f"{k}.mp4" for k in ("tagged", "header_only", "untagged")}
        clear = "h264_metadata=matrix_coefficients=2:colour_primaries=2:transfer_characteristics=2"
        encode = [ffmpeg_exe(), "-v", "error", "-y", "-loop", "1", "-t", "0.2", "-r", "10", "-i", str(EXAMPLE),
                  "-vf", f"scale={W}:{H}:out_color_matrix=bt709:out_range=tv,format=yuv420p,"
                  "setparams=colorspace=bt709:range=tv:color_primaries=bt709:color_trc=bt709",
                  "-c:v", "libx264", "-crf", "18"]  # fmt: skip
        subprocess.run([*encode, str(clips["tagged"])], check=True)
        bare = [a.split(",setparams")[0] if a.startswith("scale=") else a for a in encode]  # no tags for the muxer
        subprocess.run([*bare, "-bsf:v", clear, str(clips["untagged"])], check=True)  # no tags anywhere
        # The stream's tags cleared by a remux, the container's kept (what players read; ffmpeg reads the stream's).
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(clips["tagged"]), "-c", "copy", "-bsf:v", clear,
                        str(clips["header_only"])], check=True)  # fmt: skip
        want = bt709(clips["tagged"])
        for name, clip in clips.items():
            raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(clip), "-frames:v", "1", "-f", "rawvideo",
                                  "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout  # fmt: skip
            with VideoReader(probe(clip)) as reader:
                ours = next(iter(reader)).rgb
            report[name] = {"listed": probe(clip).color, "ffmpeg_default": errors(np.frombuffer(raw, np.uint8).reshape(H, W, 3), want),
                            "classsr": errors(ours, want)}  # fmt: skip
    emit(report, args.json)


if __name__ == "__main__":
    main()
