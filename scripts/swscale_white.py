"""Where the bundled ffmpeg's swscale puts a YUV picture's white in 16-bit and float RGB, and which 16-bit RGB level it
encodes as white (docs/results/eightyeighth), and what classsr's 16-bit reader and writer, which correct for it, give
(docs/results/eightyninth).

1. For each YUV format and range, a frame whose luma runs from black to white (chroma neutral) is converted with the
   reader's flags (``DECODE_FLAGS``, BT.709) into rgb48le and gbrpf32le: the level white lands on (65535 would be
   right; 1.0 in float) and the largest distance of any level from the ideal straight line. Then the encoder's way
   back (``rgb48le`` -> the format, the writer's flags): which 16-bit level becomes white.
2. Through classsr: a lossless FFV1 clip holding every luma code of a 10- or 12-bit 4:4:4 format, limited or full
   range, read by ``VideoReader`` at 16 bits (the largest distance from the ideal levels, and white), written back
   by ``VideoWriter`` into the same format, limited range (how many codes differ from the ideal ones); and a 16-bit
   ramp of every level written so (how many codes differ from the ideal rounding, and the most).
3. The writer's conversion of 4,096 seeded 16-bit colours, by BT.709 and BT.601, each depth and range, with and
   without ``squeeze_filters`` before it: how far Y', Cb and Cr land from the ideal codes, on average and at most
   (those inside the range); and flat 16-bit grays into 8-bit RGB (GIF's way) and 10-bit planar RGB.

4. ``--speed``: what the squeeze costs: the writer's conversion of ten 3840x2160 16-bit frames into yuv420p10le
   (ffmpeg, its output discarded), with and without the squeeze, in turns, three rounds; and the reader's stretch
   of a 1920x1080 16-bit frame in NumPy.

5. ``--avif`` (libavif's avifenc and avifdec on the PATH): a 16-bit gray ramp and white encoded losslessly by avifenc
   at 10 bits, full and limited range, read by classsr and decoded by avifdec (the largest difference); and the same
   picture written by classsr as a 10-bit AVIF (quality 100), decoded by avifdec: its white, and how far gray's red
   and blue are from its green (a tint). ``--avif FOLDER...``: also every AVIF of more than 8 bits in the folders (and
   below), read by classsr and decoded by avifdec at 16 bits: how far apart on average (16-bit levels; the median and
   largest over the files).

With ``PYTHONPATH`` at a checkout of the code before the correction (90d8a45), sections 1 and 2 give its figures.

    python scripts/swscale_white.py [--speed | --avif [FOLDER ...]]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from classsr_cli.io.video import DECODE_FLAGS, EncodeOptions, VideoReader, VideoWriter, ffmpeg_exe, probe

try:
    from classsr_cli.io.video import ENCODE_FLAGS, squeeze_filters, stretched
except ImportError:  # the code before the eighty-ninth pass (PYTHONPATH=its checkout): sections 1 and 2 alone
    from classsr_cli.io.video import _ENCODE_FLAGS as ENCODE_FLAGS  # type: ignore[attr-defined,no-redef]

    squeeze_filters = stretched = None  # type: ignore[assignment]

FORMATS = (("yuv420p", 8), ("yuv420p10le", 10), ("yuv444p10le", 10), ("yuv420p12le", 12))


def _decoded(fmt: str, bits: int, rng: str, levels: np.ndarray, out: str) -> np.ndarray:
    width, height = len(levels), 2
    chroma_w = width // 2 if "420" in fmt else width
    chroma_h = height // 2 if "420" in fmt else height
    planes = [np.tile(levels, (height, 1)), *[np.full((chroma_h, chroma_w), 1 << (bits - 1))] * 2]
    raw = b"".join(p.astype("<u2" if bits > 8 else "u1").tobytes() for p in planes)
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{width}x{height}", "-i", "-",
           "-vf", f"setparams=range={rng}:colorspace=bt709,scale=in_color_matrix=bt709:flags={DECODE_FLAGS},"
                  f"format={out}", "-f", "rawvideo", "-"]  # fmt: skip
    got = subprocess.run(cmd, input=raw, capture_output=True, check=True, timeout=60).stdout
    if out == "gbrpf32le":
        return np.frombuffer(got, "<f4").reshape(3, height, width)[0, 0].astype(float) * 65535
    return np.frombuffer(got, "<u2").reshape(height, width, 3)[0, :, 0].astype(float)


def _white_from(fmt: str, bits: int, rng: str) -> int:
    """The least 16-bit gray level the writer's conversion codes as white (or above) in ``fmt``."""
    white = (235 << (bits - 8)) if rng == "tv" else (1 << bits) - 1
    levels = np.arange(64512, 65536, dtype=np.uint16)
    raw = np.repeat(levels[None, :, None], 3, axis=2).repeat(2, axis=0).astype("<u2").tobytes()
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{len(levels)}x2", "-i", "-",
           "-vf", f"scale=out_color_matrix=bt709:out_range={rng}:flags={ENCODE_FLAGS},format={fmt}", "-f",
           "rawvideo", "-"]  # fmt: skip
    got = subprocess.run(cmd, input=raw, capture_output=True, check=True, timeout=60).stdout
    luma = np.frombuffer(got, "<u2" if bits > 8 else "u1")[: len(levels)]
    return int(levels[np.argmax(luma >= white)])


def _codes(path: Path, pix_fmt: str, shape: tuple[int, int]) -> np.ndarray:
    got = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                          pix_fmt, "-"], capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    return np.frombuffer(got, "<u2")[: shape[0] * shape[1]].reshape(shape).astype(np.int64)


def _through_classsr(folder: Path, bits: int, rng: str) -> str:
    """Every luma code of a ``bits``-deep 4:4:4 FFV1 clip of range ``rng`` through ``VideoReader`` (16 bits) and
    ``VideoWriter`` (limited range), and a 16-bit ramp of every level through the writer."""
    black, white = (16 << (bits - 8), 235 << (bits - 8)) if rng == "tv" else (0, (1 << bits) - 1)
    width, pix_fmt = 32 if bits == 10 else 64, f"yuv444p{bits}le"  # (more than 16 rows: not a small picture)
    height = -(-(white - black + 1) // width)
    luma = np.full(width * height, white)
    luma[: white - black + 1] = np.arange(black, white + 1)
    luma = luma.reshape(height, width)
    planes = np.concatenate([luma.ravel(), np.full(2 * luma.size, 1 << (bits - 1))]).astype("<u2")
    src = folder / f"{bits}{rng}.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{width}x{height}",
                    "-r", "5", "-i", "-", "-vf", f"setparams=range={rng}:colorspace=bt709", "-c:v", "ffv1",
                    "-color_range", rng, str(src)], input=planes.tobytes(), check=True, timeout=60)  # fmt: skip
    info = probe(src)
    with VideoReader(info, bits=16) as reader:
        frame = next(iter(reader))
        time_base = reader.time_base
    ideal = (luma - black) / (white - black) * 65535
    read = np.abs(frame.rgb.astype(float) - ideal[..., None]).max()

    def written(rgb: np.ndarray, name: str) -> np.ndarray:
        out = folder / name
        writer = VideoWriter(out, rgb.shape[1], rgb.shape[0], time_base=time_base, bits=16, source=info,
                             options=EncodeOptions(codec="ffv1", pix_fmt=pix_fmt))
        writer.write(rgb, 0)
        writer.close()
        return _codes(out, pix_fmt, rgb.shape[:2])

    top, bottom = 235 << (bits - 8), 16 << (bits - 8)  # the output's limited range
    want = np.rint(bottom + ideal * (top - bottom) / 65535).astype(np.int64)
    back = written(np.ascontiguousarray(frame.rgb), f"{bits}{rng}_back.mkv")
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    coded = written(np.repeat(ramp[..., None], 3, axis=2), f"{bits}{rng}_ramp.mkv")
    ramp_want = np.rint(bottom + ramp / 65535 * (top - bottom)).astype(np.int64)
    return (f"{pix_fmt} {rng}: read at 16 bits, white {int(frame.rgb[-1, -1, 1])}, largest distance from the ideal "
            f"{read:.2f}; written back, {int((back != want).sum())} of {want.size} codes off the ideal, at most "
            f"{int(np.abs(back - want).max())}; a 16-bit ramp "
            f"written, white from {int(np.argmax(coded >= top))}, {int((coded != ramp_want).sum())} of 65536 levels "
            f"off the ideal code, at most {int(np.abs(coded - ramp_want).max())}\n")


_KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def _coded_rgb(pix_fmt: str, squeeze: bool) -> str:
    """Flat 16-bit grays (64 x 64 each, so that 8-bit dither averages out) through the writer's conversion into RGB of
    fewer bits (``squeeze``: with :func:`squeeze_filters` before it): the largest distance of a block's mean code
    from the ideal one."""
    levels = np.array([1000, 16384, 32768, 49152, 60000, 65000, 65535])
    rgb = np.repeat(np.repeat(levels.astype("<u2"), 64)[None, :, None], 64, axis=0).repeat(3, axis=2)
    chain = ",".join([*(squeeze_filters(pix_fmt, False) if squeeze else ()), f"scale=flags={ENCODE_FLAGS}"])
    got = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s",
                          f"{rgb.shape[1]}x64", "-i", "-", "-vf", f"{chain},format={pix_fmt}", "-f", "rawvideo", "-"],
                         input=rgb.tobytes(), capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    top = 255 if pix_fmt == "rgb24" else 1023
    green = (np.frombuffer(got, "u1")[1::3] if top == 255 else np.frombuffer(got, "<u2")[: rgb.shape[0] * rgb.shape[1]])
    means = green.reshape(64, len(levels), 64).mean(axis=(0, 2))
    return f"{np.abs(means - levels * top / 65535).max():.2f}"


def _coded_colours(bits: int, full: bool, matrix: str, squeeze: bool) -> str:
    """Seeded colours through the writer's conversion (``squeeze``: with :func:`squeeze_filters` before it) against
    the ideal Y'CbCr codes."""
    rgb = np.random.default_rng(1).integers(0, 65536, (64, 64, 3)).astype("<u2")
    out = "yuv444p" if bits == 8 else f"yuv444p{bits}le"
    filters = [*(squeeze_filters(out, False, full, matrix) if squeeze else ()),
               f"scale=out_color_matrix={matrix}:out_range={'pc' if full else 'tv'}:flags={ENCODE_FLAGS},format={out}"]
    got = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "64x64", "-i", "-",
                          "-vf", ",".join(filters), "-f", "rawvideo", "-"], input=rgb.tobytes(), capture_output=True,
                         check=True, timeout=60).stdout  # fmt: skip
    codes = np.frombuffer(got, "u1" if bits == 8 else "<u2").reshape(3, -1).astype(float)
    x = rgb.reshape(-1, 3).astype(float) / 65535
    kr, kb = _KR_KB[matrix]
    y = x @ np.array([kr, 1 - kr - kb, kb])
    cb, cr = (x[:, 2] - y) / (2 * (1 - kb)), (x[:, 0] - y) / (2 * (1 - kr))
    top, mid, step = (1 << bits) - 1, 1 << (bits - 1), 1 << (bits - 8)
    ideal = (np.stack([y * top, cb * top + mid, cr * top + mid]) if full else
             np.stack([16 * step + 219 * step * y, mid + 224 * step * cb, mid + 224 * step * cr]))  # fmt: skip
    inside = ((ideal >= 0) & (ideal <= top)).all(0)
    off = (codes - ideal)[:, inside]
    return "  ".join(f"{n} {off[k].mean():+.2f}/{np.abs(off[k]).max():.2f}" for k, n in enumerate(("Y'", "Cb", "Cr")))


def _speed() -> None:
    frames = np.random.default_rng(2).integers(0, 65536, (2160, 3840, 3)).astype("<u2").tobytes() * 10
    convert = f"scale=out_color_matrix=bt709:out_range=tv:flags={ENCODE_FLAGS},format=yuv420p10le"
    chains = {"without": convert, "with": ",".join([*squeeze_filters("yuv420p10le", False), convert])}
    times: dict[str, list[float]] = {name: [] for name in chains}
    for _ in range(3):
        for name, chain in chains.items():
            start = time.perf_counter()
            subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "3840x2160",
                            "-i", "-", "-vf", chain, "-f", "null", "-"], input=frames, check=True, timeout=600)  # fmt: skip
            times[name].append((time.perf_counter() - start) / 10)
    for name, got in times.items():
        sys.stdout.write(f"writer's conversion of a 3840x2160 frame {name} the squeeze: "
                         f"{', '.join(f'{t * 1000:.0f}' for t in got)} ms\n")
    frame = np.random.default_rng(3).integers(0, 65283, (1080, 1920, 3)).astype(np.uint16)
    stretched(frame, 65283)
    start = time.perf_counter()
    for _ in range(20):
        stretched(frame, 65283)
    sys.stdout.write(f"reader's stretch of a 1920x1080 frame: {(time.perf_counter() - start) / 20 * 1000:.1f} ms\n")


def _avif(folder: Path) -> None:
    from classsr_cli.io.image import Picture, read_image, write_image

    ramp = np.full((64, 256, 3), 65535, np.uint16)
    ramp[:32] = np.linspace(0, 65535, 256).round().astype(np.uint16)[None, :, None]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", "256x64", "-i", "-",
                    str(folder / "ramp.png")], input=ramp.astype("<u2").tobytes(), check=True, timeout=60)  # fmt: skip

    def avifdec(path: Path) -> np.ndarray:
        subprocess.run(["avifdec", "-d", "16", str(path), str(path.with_suffix(".png"))], capture_output=True,
                       check=True, timeout=60)  # fmt: skip
        return read_image(path.with_suffix(".png")).pixels.astype(np.int64)

    for rng in ("full", "limited"):
        avif = folder / f"{rng}.avif"
        subprocess.run(["avifenc", "-d", "10", "-r", rng, "--min", "0", "--max", "0", "-y", "444",
                        str(folder / "ramp.png"), str(avif)], capture_output=True, check=True, timeout=60)  # fmt: skip
        ours = read_image(avif).pixels.astype(np.int64)
        sys.stdout.write(f"avifenc's 10-bit {rng}-range AVIF read by classsr: white {ours[40, 10].tolist()}, largest "
                         f"difference from avifdec's 16-bit decoding {np.abs(ours - avifdec(avif)).max()}\n")
    write_image(folder / "ours.avif", Picture(ramp), quality=100)
    theirs = avifdec(folder / "ours.avif")
    tint = np.abs(theirs[:32, :, [0, 2]] - theirs[:32, :, 1:2]).max()
    sys.stdout.write(f"classsr's 10-bit AVIF decoded by avifdec: white {theirs[40, 10].tolist()}, gray's red and blue "
                     f"at most {tint} from its green, largest difference from the picture written "
                     f"{np.abs(theirs - ramp).max()}\n")


def _avif_files(folders: list[Path], tmp: Path) -> None:
    """Every deep AVIF in ``folders`` read by classsr against avifdec's 16-bit decoding."""
    from classsr_cli.io.image import read_image

    means, skipped = [], 0
    for path in sorted(p for folder in folders for p in folder.rglob("*.avif")):
        png = tmp / "ref.png"
        done = subprocess.run(["avifdec", "-d", "16", str(path), str(png)], capture_output=True, timeout=120)
        try:
            ours = read_image(path)
        except Exception:  # (a file classsr refuses, or a damaged one: not compared)
            skipped += 1
            continue
        if done.returncode or ours.pixels.dtype != np.uint16:
            skipped += 1
            continue
        theirs = read_image(png).pixels
        if theirs.shape != ours.pixels.shape:
            skipped += 1
            continue
        means.append(float(np.abs(theirs.astype(np.int64) - ours.pixels).mean()))
    sys.stdout.write(f"deep AVIFs in {', '.join(map(str, folders))}: {len(means)} compared ({skipped} not: 8 bits, "
                     f"refused, or another size); classsr against avifdec, mean difference per file: median "
                     f"{np.median(means) if means else float('nan'):.1f}, largest {max(means, default=float('nan')):.1f}, "
                     f"over 64 (a 10-bit level): {sum(m > 64 for m in means)}\n")


def main() -> int:
    if "--avif" in sys.argv[1:]:
        folders = [Path(a) for a in sys.argv[sys.argv.index("--avif") + 1 :]]
        with tempfile.TemporaryDirectory() as tmp:
            _avif(Path(tmp))
            if folders:
                _avif_files(folders, Path(tmp))
        return 0
    if "--speed" in sys.argv[1:] and squeeze_filters is not None:
        _speed()
        return 0
    for fmt, bits in FORMATS:
        for rng in ("tv", "pc"):
            black, white = ((16 << (bits - 8)), (235 << (bits - 8))) if rng == "tv" else (0, (1 << bits) - 1)
            levels = np.linspace(black, white, 64).round().astype(np.uint16)
            ideal = (levels - black) / (white - black) * 65535
            deep = _decoded(fmt, bits, rng, levels, "rgb48le")
            flt = _decoded(fmt, bits, rng, levels, "gbrpf32le")
            sys.stdout.write(f"{fmt:12s} {rng}: white -> {deep[-1]:.0f} in rgb48le, {flt[-1] / 65535:.5f} in float; "
                             f"largest distance from the ideal {np.abs(deep - ideal).max():.0f} of 65535; the "
                             f"writer codes {_white_from(fmt, bits, rng)} and up as white\n")  # fmt: skip
    sys.stdout.write("through classsr's reader and writer:\n")
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (10, 12):
            for rng in ("tv", "pc"):
                sys.stdout.write(_through_classsr(Path(tmp), bits, rng))
    if squeeze_filters is None:
        return 0
    sys.stdout.write("the writer's conversion of seeded colours against the ideal codes (mean/largest distance):\n")
    for matrix in _KR_KB:
        for bits in (8, 10, 12):
            for full in (False, True):
                sys.stdout.write(f"{matrix} {bits:2d} bits {'full   ' if full else 'limited'}: as before "
                                 f"{_coded_colours(bits, full, matrix, False)};  squeezed "
                                 f"{_coded_colours(bits, full, matrix, True)}\n")
    sys.stdout.write("flat 16-bit grays into RGB of fewer bits, the largest distance of a block's mean code from the "
                     "ideal:\n")
    for pix_fmt in ("rgb24", "gbrp10le"):
        sys.stdout.write(f"{pix_fmt}: as before {_coded_rgb(pix_fmt, False)}; squeezed {_coded_rgb(pix_fmt, True)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
