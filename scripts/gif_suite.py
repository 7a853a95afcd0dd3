"""Read each GIF of a GIF test suite with reference frames (Robert Ancell's suite, as gdk-pixbuf carries it:
``tests/test-images/gif-test-suite``, a ``NAME.conf`` naming the GIF and each frame's raw RGBA reference) as
`classsr video` reads it (``probe`` and ``VideoReader``, alpha where the probe finds it) and compare every frame with
its reference: a line for each file whose frames differ (how many frames, the most pixels on the other side of half
opacity, the largest colour difference where the reference is opaque), then how many files matched.

    python scripts/gif_suite.py FOLDER
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import numpy as np

import classsr_cli
from classsr_cli.errors import ClassSRError
from classsr_cli.io.video import VideoReader, probe


def main() -> int:
    folder = Path(sys.argv[1])
    sys.stdout.write(f"classsr_cli from {Path(classsr_cli.__file__).parent}\n")
    matched = compared = 0
    for conf in sorted(folder.glob("*.conf")):
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(conf)
        names = [n.strip() for n in cfg["config"].get("frames", "").split(",") if n.strip()]
        pixels = [cfg[n].get("pixels") for n in names]
        if not names or not all(pixels) or not all((folder / str(p)).exists() for p in pixels):
            continue
        width, height = int(cfg["config"]["width"]), int(cfg["config"]["height"])
        want = [np.frombuffer((folder / str(p)).read_bytes(), np.uint8).reshape(height, width, 4) for p in pixels]
        compared += 1
        try:
            info = probe(folder / cfg["config"]["input"])
            with VideoReader(info, alpha=info.alpha) as reader:
                got = [np.dstack([f.rgb, f.alpha if f.alpha is not None else np.full(f.rgb.shape[:2], 255, np.uint8)])
                       for f in reader]  # fmt: skip
        except ClassSRError as e:
            sys.stdout.write(f"{conf.stem}: refused ({e})\n")
            continue
        if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want, strict=False)):
            sys.stdout.write(f"{conf.stem}: {len(got)} frames of {got[0].shape[1::-1] if got else '-'}, the reference "
                             f"{len(want)} of {(width, height)}\n")
            continue
        clear = max(int(np.sum((g[:, :, 3] >= 128) != (w[:, :, 3] >= 128))) for g, w in zip(got, want, strict=True))
        colour = max(int(np.abs(g[:, :, :3].astype(int) - w[:, :, :3])[w[:, :, 3] == 255].max(initial=0))
                     for g, w in zip(got, want, strict=True))  # fmt: skip
        if clear or colour > 2:
            sys.stdout.write(f"{conf.stem}: {len(got)} frames, at most {clear} pixels clear/opaque otherwise, colour "
                             f"up to {colour} levels off\n")
        else:
            matched += 1
    sys.stdout.write(f"{matched} of {compared} GIFs with reference frames read as their references\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
