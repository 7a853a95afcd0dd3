"""Which ISO 639-2 language codes the bundled ffmpeg's MOV muxer keeps: every code (the terminology and the
bibliographic ones, from Debian's iso-codes list: ``apt install iso-codes``) written on an audio stream of a
``.mov``, read back.

    python scripts/mov_languages.py --json docs/results/seventyseventh/mov_languages.json

Prints and writes ``kept`` (read back as written), ``lost`` (read back as ``und`` or not at all) and the count of
each; ``classsr_cli.io.video.MOV_KEPT`` is ``kept``, ``MOV_LANGUAGES`` maps lost codes to kept ones of the same language.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from classsr_cli.io.video import ffmpeg_exe

CODES = Path("/usr/share/iso-codes/json/iso_639-2.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    entries = json.loads(CODES.read_text())["639-2"]
    codes = sorted({e["alpha_3"] for e in entries} | {e["bibliographic"] for e in entries if e.get("bibliographic")})
    got: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "langs.mov"
        for at in range(0, len(codes), 200):
            chunk = codes[at : at + 200]
            cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.05"]
            for k, code in enumerate(chunk):
                cmd += ["-map", "0:a", f"-metadata:s:a:{k}", f"language={code}"]
            subprocess.run([*cmd, "-c:a", "pcm_s16le", str(out)], check=True, timeout=120)
            listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True,
                                     timeout=60).stderr  # fmt: skip
            for index, lang in re.findall(r"Stream #0:(\d+)(?:\[0x[0-9a-f]+\])?\((\w+)\)", listing):
                got[chunk[int(index)]] = lang
    kept = [c for c in codes if got.get(c) == c]
    lost = [c for c in codes if got.get(c) != c]
    record = {"ffmpeg": ffmpeg_exe().rsplit("-", 1)[-1], "codes": len(codes), "kept": kept, "lost": lost}
    text = json.dumps(record) + "\n"
    sys.stdout.write(f"{len(codes)} codes: {len(kept)} kept, {len(lost)} lost\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
