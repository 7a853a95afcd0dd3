"""Run ``classsr video`` on every file in a folder, a fraction of a second of each: list what ends otherwise than in an
output that decodes or in one of classsr's one-line errors.

Each file is upscaled x2 (``--duration``, default 0.2 s, from its start) into its own container where classsr writes
it, else ``.mkv``, and into each of ``--containers``. A run that exits 0 must leave an output whose first video stream
ffmpeg decodes without an error; one that fails must say so in one line (``error: ...``, not an "internal error"
nor a traceback), exit 1 or 2 and leave no output; or exit 3 (frames after a decode error lost) with one such line and
an output that decodes (``partial``). A JSON line on stdout for each problem (the file, the output's
container, what was wrong and the last lines of stderr); on stderr, one line a run and the totals. Meant for
collections of odd media files (androidx/media's test assets: ``python scripts/video_sweep.py
media/libraries/test_data/src/test/assets/media``), which are not shipped.

    python scripts/video_sweep.py FOLDER [--containers mkv mp4] [--duration 0.2] [--timeout 300] [--only mkv ts] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg

from classsr_cli.io.video import CONTAINERS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--containers", nargs="*", default=["mkv", "mp4"])
    parser.add_argument("--duration", default="0.2")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", nargs="*", help="file suffixes to take (default: every file)")
    parser.add_argument("--check", action="store_true",
                        help="each output written also checked by its format's reference tools (output_check.py: "
                             "mkvtoolnix's mkvinfo for Matroska and WebM, webpinfo, pngcheck for APNG)")
    args = parser.parse_args()
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    files = sorted(p for p in args.folder.rglob("*") if p.is_file())
    if args.only:
        files = [p for p in files if p.suffix.lower().lstrip(".") in args.only]
    counts = {"written": 0, "partial": 0, "refused": 0, "problems": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for src in files:
            own = src.suffix.lower().lstrip(".")
            for ext in dict.fromkeys([own if f".{own}" in CONTAINERS else "mkv", *args.containers]):
                out = Path(tmp) / f"out.{ext}"
                out.unlink(missing_ok=True)
                verdict, detail, tail, took = _run(src, out, args, ffmpeg)
                counts[verdict] += 1
                sys.stderr.write(f"{verdict:8s} {took:6.1f} s  {src.relative_to(args.folder)} -> .{ext}  {detail}\n")
                if verdict == "problems":
                    sys.stdout.write(json.dumps({"file": str(src.relative_to(args.folder)), "into": ext,
                                                 "problem": detail, "stderr": tail}) + "\n")  # fmt: skip
                    sys.stdout.flush()
    sys.stderr.write(", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    return 1 if counts["problems"] else 0


def _run(src: Path, out: Path, args: argparse.Namespace, ffmpeg: str) -> tuple[str, str, list[str], float]:
    cmd = [sys.executable, "-m", "classsr_cli", "video", str(src), str(out), "-x", "2",
           "--duration", args.duration, "--overwrite"]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    t0 = time.perf_counter()
    # A session of its own: a run stopped at the timeout takes its ffmpeg along (one that spins on a file ignores the
    # SIGTERM timeout sends, and would outlive it)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                            text=True, errors="replace", start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "problems", f"no end within {args.timeout:.0f} s", [], time.perf_counter() - t0
    run = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    took = time.perf_counter() - t0
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    tail = lines[-6:]
    if "Traceback" in run.stderr:
        return "problems", "a traceback", tail, took
    errors = [ln for ln in lines if ln.startswith("error:")]
    if run.returncode == 0:
        if not out.exists() or out.stat().st_size == 0:
            return "problems", "exit 0 without an output", tail, took
        bad = _decode_errors(ffmpeg, out)
        if bad:
            return "problems", f"the output does not decode: {bad}", tail, took
        if args.check and (said := _checked(out)):
            return "problems", f"{said[0].get('tool')}: {' / '.join(map(str, said[0].get('said', [])))[:300]}", tail, took
        return "written", _size(ffmpeg, out), [], took
    if any("internal error" in ln for ln in errors):
        return "problems", errors[0][:300], tail, took
    if run.returncode == 3 and len(errors) == 1 and out.exists():  # frames after a decode error lost, said
        bad = _decode_errors(ffmpeg, out)
        return ("problems", f"a partial output that does not decode: {bad}", tail, took) if bad else \
            ("partial", errors[0][:300], [], took)
    if run.returncode not in (1, 2) or len(errors) != 1:
        return "problems", f"exit {run.returncode} with {len(errors)} error lines", tail, took
    if out.exists():
        return "problems", f"{errors[0][:200]} (and an output left)", tail, took
    return "refused", errors[0][:300], [], took


def _checked(out: Path) -> list[dict[str, object]]:
    """What the reference tools of ``out``'s format say is wrong with it (:func:`output_check.check`)."""
    from output_check import check

    target = out.with_suffix(".png") if out.suffix == ".apng" else out  # (pngcheck reads APNG by its chunks)
    if target != out:
        os.link(out, target)
    try:
        return check(target, decode=False)[1]  # (the stills' decoders: the output is decoded above)
    finally:
        if target != out:
            target.unlink()


def _decode_errors(ffmpeg: str, out: Path) -> str:
    run = subprocess.run([ffmpeg, "-v", "error", "-i", str(out), "-map", "0:v:0", "-f", "null", "-"],
                         capture_output=True, text=True, errors="replace", timeout=300)  # fmt: skip
    text = run.stderr.strip()
    return (text.splitlines()[0][:200] if text else "") or ("" if run.returncode == 0 else f"ffmpeg exit {run.returncode}")


def _size(ffmpeg: str, out: Path) -> str:
    text = subprocess.run([ffmpeg, "-hide_banner", "-i", str(out)], capture_output=True, text=True, errors="replace").stderr
    m = re.search(r"Video: .*?, (\d+)x(\d+)", text)
    return f"{m.group(1)}x{m.group(2)}" if m else "?"


if __name__ == "__main__":
    sys.exit(main())
