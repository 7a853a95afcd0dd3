"""Upscale an image sequence with a damaged frame many times: count the runs that leave the frame out unsaid.

ffmpeg logs a line in pieces from its threads at once, so a decoder's error can land inside a line showinfo is
writing, without its level (the reader then counted no error and the lost frame went unsaid: the flaky
``tests/test_sequence.py::test_a_frame_that_does_not_decode_is_named``). Each run upscales six 64x48 PNG frames, the
fourth cut to 100 bytes, with a tiny untrained model (the model does not matter here), and checks that the result
says the frame was left out. Run it beside other work (a read sweep) to see the race; on a quiet machine it seldom
shows. It prints the runs, those unsaid, and the showinfo lines that held an error (before the fix they were the
unsaid runs' only trace).

    python scripts/damaged_frame_repeat.py [--runs 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from classsr_cli.config import ClassSRConfig
from classsr_cli.io import video as io_video
from classsr_cli.io.video import EncodeOptions, ffmpeg_exe
from classsr_cli.models import build_model
from classsr_cli.video import upscale_video


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    glued: list[str] = []
    showinfo = io_video._StderrPump._showinfo

    def watched(self: io_video._StderrPump, line: str) -> None:
        if "rror" in line:  # ("Error submitting packet to decoder", inside showinfo's line)
            glued.append(line)
        showinfo(self, line)

    io_video._StderrPump._showinfo = watched  # type: ignore[method-assign]
    model = build_model(ClassSRConfig(family="fsrcnn", scale=4, widths=(4, 6, 8), extra={"s": 4, "m": 1},
                                      classifier_width=8)).eval()  # fmt: skip
    unsaid = 0
    with tempfile.TemporaryDirectory() as tmp:
        seq = Path(tmp, "frames")
        seq.mkdir()
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10",
                        "-frames:v", "6", str(seq / "f_%03d.png")], check=True, timeout=60)  # fmt: skip
        (seq / "f_004.png").write_bytes((seq / "f_004.png").read_bytes()[:100])
        for k in range(args.runs):
            out = Path(tmp, f"o{k}.mkv")
            r = upscale_video(model, seq / "f_%03d.png", out, options=EncodeOptions(preset="ultrafast"))
            out.unlink()
            if r.frames != 5:
                raise SystemExit(f"run {k}: {r.frames} frames, not 5")
            if r.lost is None:
                unsaid += 1
                sys.stderr.write(f"run {k}: the damaged frame left out unsaid\n")
    sys.stdout.write(f"runs {args.runs}, damaged frame unsaid {unsaid}, showinfo lines holding an error {len(glued)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
