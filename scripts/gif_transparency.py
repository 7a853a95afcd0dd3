"""Does `classsr video` keep an animation's transparency frame by frame (docs/results/ninetieth/gif.txt)? Sources made
here, each upscaled x4 by the default model into .gif, .webp and .apng, every output frame's alpha read back by
Pillow and by ffmpeg (``VideoReader``) and set against the source frame's, upscaled (nearest): the share of pixels
on the other side of half opacity, the most over a file's frames (0 where every frame shows as its source's; the
shape's upscaled edge may fall either side, a few tenths of a percent), and each output's size.

- ``sticker``: a photo's disc (examples/baby.png), turning and moving on a clear ground, 20 frames of 128x128, as a
  GIF (Pillow's, disposal 2) and an APNG.
- ``turns``: an APNG and a lossless WebP whose first frame is opaque, the second a shape on a clear ground, and so on
  (4 frames of 48x40); ``clears``: an APNG of the same frames, the clear one first.
- ``inside``: a GIF without a transparent colour whose picture is smaller than its screen (the canvas it leaves
  uncovered is clear, as browsers show it).
- ``rgbclears``: an APNG in RGB (no alpha) whose first frame is cleared after it shows (dispose op background), its
  second a 16x16 box: the rest of the canvas is clear there, as the APNG specification and browsers have it
  (ninety-first pass; docs/results/ninetyfirst/).

``--speed``: what looking at every frame costs the probe: ``probe`` of an opaque GIF of 200 frames of 480x360
seeded noise (47 MB, the worst case: every frame decoded), the least of three.

With ``PYTHONPATH`` at a checkout of the code before the change (1522685; f91e1b4~1 for ``rgbclears``), it gives
that code's figures.

    python scripts/gif_transparency.py [--speed]
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageSequence

import classsr_cli
from classsr_cli.errors import InputError
from classsr_cli.io.video import VideoReader, probe

ROOT = Path(__file__).resolve().parents[1]


def sticker_frames() -> list[np.ndarray]:
    face = Image.open(ROOT / "examples" / "baby.png").convert("RGB").resize((96, 96), Image.Resampling.LANCZOS)
    disc = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(disc).ellipse((4, 4, 92, 92), fill=255)
    frames = []
    for k in range(20):
        frame = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
        frame.paste(face.rotate(k * 18), (16 + round(8 * np.sin(k / 3)), 16), disc)
        frames.append(np.asarray(frame))
    return frames


def turns_frames() -> list[np.ndarray]:
    opaque = np.zeros((40, 48, 4), np.uint8)
    opaque[...] = (40, 60, 200, 255)
    opaque[8:24, 6:22] = (230, 40, 40, 255)
    clear = np.zeros_like(opaque)
    clear[8:24, 6:22] = (230, 40, 40, 255)
    return [opaque, clear, opaque, clear]


def save(path: Path, frames: list[np.ndarray], **kw: object) -> Path:
    pictures = [Image.fromarray(f, "RGBA") for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=100, loop=0, **kw)
    return path


def inside(path: Path) -> tuple[Path, list[np.ndarray]]:
    """A one-frame GIF whose 16x8 red picture sits at (8, 6) on a 32x20 screen; its frame as browsers show it."""
    Image.new("RGB", (16, 8), (255, 0, 0)).save(path)
    data = bytearray(path.read_bytes())
    data[6:10] = struct.pack("<2H", 32, 20)
    at = data.index(b"\x2c", 13)
    data[at + 1 : at + 5] = struct.pack("<2H", 8, 6)
    path.write_bytes(bytes(data))
    shown = np.zeros((20, 32, 4), np.uint8)
    shown[6:14, 8:24] = (255, 0, 0, 255)
    return path, [shown]


def rgb_clears(path: Path) -> tuple[Path, list[np.ndarray]]:
    """A 48x40 RGB APNG of three frames: the canvas blue, cleared after it shows; a 16x16 red box at (6, 8); the
    canvas blue again. Its frames as browsers show them."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">2I5B", 48, 40, 8, 2, 0, 0, 0))
    png += chunk(b"acTL", struct.pack(">2I", 3, 0))
    frames = [((0, 0, 48, 40), 1, (40, 60, 200)), ((6, 8, 16, 16), 0, (230, 40, 40)), ((0, 0, 48, 40), 0, (40, 60, 200))]
    shown, sequence = [], 0
    for n, ((x, y, w, h), dispose, colour) in enumerate(frames):
        png += chunk(b"fcTL", struct.pack(">5I2H2B", sequence, w, h, x, y, 1, 10, dispose, 0))
        pixels = zlib.compress((b"\x00" + bytes(colour) * w) * h)
        png += chunk(b"IDAT", pixels) if n == 0 else chunk(b"fdAT", struct.pack(">I", sequence + 1) + pixels)
        sequence += 1 if n == 0 else 2
        frame = np.zeros((40, 48, 4), np.uint8)
        frame[y : y + h, x : x + w] = (*colour, 255)
        shown.append(frame)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path, shown


def worst(got: list[np.ndarray], want: list[np.ndarray]) -> str:
    """The most over the frames of the share of pixels on the other side of half opacity (``got``: alpha planes)."""
    if len(got) != len(want):
        return f"{len(got)} frames, not {len(want)}"
    up = [np.kron(w[:, :, 3], np.ones((4, 4), np.uint8)) for w in want]  # nearest, x4
    shares = [np.mean((g >= 128) != (u >= 128)) for g, u in zip(got, up, strict=True)]
    return f"{100 * max(shares):5.2f} %"


def speed(folder: Path) -> None:
    base = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    pictures = [Image.fromarray(np.roll(base, 3 * k, axis=1)) for k in range(200)]
    pictures[0].save(folder / "noise.gif", save_all=True, append_images=pictures[1:], duration=40, loop=0)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        info = probe(folder / "noise.gif")
        times.append(time.perf_counter() - start)
    sys.stdout.write(f"probe of a 200-frame 480x360 GIF ({(folder / 'noise.gif').stat().st_size:,} bytes; alpha "
                     f"{info.alpha}): {min(times):.3f} s\n")


def main() -> int:
    sys.stdout.write(f"classsr_cli from {Path(classsr_cli.__file__).parent}\n")
    if "--speed" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            speed(Path(tmp))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = {
            "sticker.gif": (save(folder / "sticker.gif", sticker_frames(), disposal=2), sticker_frames()),
            "sticker.apng": (save(folder / "sticker.png", sticker_frames()), sticker_frames()),
            "turns.apng": (save(folder / "turns.png", turns_frames()), turns_frames()),
            "turns.webp": (save(folder / "turns.webp", turns_frames(), lossless=True), turns_frames()),
            "clears.apng": (save(folder / "clears.png", turns_frames()[1:] + turns_frames()[:1]),
                            turns_frames()[1:] + turns_frames()[:1]),
            "inside.gif": inside(folder / "inside.gif"),
            "rgbclears.apng": rgb_clears(folder / "rgbclears.png"),
        }
        sys.stdout.write(f"{'source':14} {'output':7} {'Pillow':>9} {'ffmpeg':>9} {'bytes':>9}\n")
        for name, (src, want) in sources.items():
            for suffix in (".gif", ".webp", ".apng"):
                out = folder / f"{src.stem}_{src.suffix[1:]}_x4{suffix}"
                run = subprocess.run([sys.executable, "-c", "from classsr_cli.cli import main; main()", "video",
                                      str(src), str(out), "-x", "4"], capture_output=True, text=True,
                                     cwd=folder)  # (not this checkout's folder: PYTHONPATH's classsr_cli)  # fmt: skip
                if run.returncode != 0:
                    sys.stdout.write(f"{name:14} {suffix:7} failed: {run.stderr.strip().splitlines()[-1]}\n")
                    continue
                with Image.open(out) as im:
                    pillow = [np.asarray(f.convert("RGBA"))[:, :, 3] for f in ImageSequence.Iterator(im)]
                try:
                    with VideoReader(info := probe(out), alpha=True) as reader:
                        full = np.full((info.height, info.width), 255, np.uint8)
                        decoded = worst([f.alpha if f.alpha is not None else full for f in reader], want)
                except InputError:  # one frame written as a still (an APNG of one frame is a PNG)
                    decoded = "a still"
                sys.stdout.write(f"{name:14} {suffix:7} {worst(pillow, want):>9} {decoded:>9} {out.stat().st_size:9d}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
