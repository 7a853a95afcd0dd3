"""The scenes ``classsr video`` finds in a video, without upscaling it: its frames decoded as ``classsr video``
decodes them, looked at by ``classsr_cli.scenes.SceneLog`` in order. Prints one JSON line: the video, its frames, and
each scene's first frame; ``--expect N`` also the first frames of N equal parts (clips of ``scripts/make_clip.py``,
whose photos take ``--frames`` frames each), how many of them a scene starts at or within ``--before`` frames before
(a dissolve's frames) and ``--after`` after (a fade-in's), and how many scenes start elsewhere (``extra``).

    python scripts/scene_list.py clip.mp4 [--expect 20 --before 10 --after 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classsr_cli.io.video import VideoReader, probe
from classsr_cli.scenes import SceneLog


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--expect", type=int, default=0, help="the clip's photos, of as many frames each")
    ap.add_argument("--before", type=int, default=0, help="frames before a photo's start a scene may start")
    ap.add_argument("--after", type=int, default=0, help="frames after a photo's start a scene may start")
    args = ap.parse_args()
    log = SceneLog()
    frames = 0
    with VideoReader(probe(args.video)) as reader:
        for frame in reader:
            log.look(frame.rgb)
            log.add(frame.index, 0.0, (0, 0, 0), 0, 0)
            frames += 1
    starts = [s.first for s in log.scenes]
    record: dict[str, object] = {"video": str(args.video), "frames": frames, "scenes": len(starts), "starts": starts}
    if args.expect:
        parts = [round(i * frames / args.expect) for i in range(args.expect)]
        near = [[s for s in starts if p - args.before <= s <= p + args.after] for p in parts[1:]]
        record["found"] = sum(bool(n) for n in near)  # of the expect - 1 changes of photo
        record["extra"] = len(starts) - 1 - sum(len(n) > 0 for n in near)
        record["missed"] = [p for p, n in zip(parts[1:], near, strict=True) if not n]
    sys.stdout.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
