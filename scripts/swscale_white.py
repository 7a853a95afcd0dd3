"""Where the bundled ffmpeg's swscale puts a YUV picture's white in 16-bit and float RGB, and which 16-bit RGB level it
encodes as white: a found-not-fixed scale error of ``classsr video``'s 16-bit path (docs/results/eightyeighth).

For each YUV format and range, a frame whose luma runs from black to white (chroma neutral) is converted with the
reader's flags (``DECODE_FLAGS``, BT.709) into rgb48le and gbrpf32le: the level white lands on (65535 would be
right; 1.0 in float) and the largest distance of any level from the ideal straight line. Then the encoder's way
back (``rgb48le`` -> the format, the writer's flags): which 16-bit level becomes white.

    python scripts/swscale_white.py
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from classsr_cli.io.video import _ENCODE_FLAGS, DECODE_FLAGS, ffmpeg_exe

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
           "-vf", f"scale=out_color_matrix=bt709:out_range={rng}:flags={_ENCODE_FLAGS},format={fmt}", "-f",
           "rawvideo", "-"]  # fmt: skip
    got = subprocess.run(cmd, input=raw, capture_output=True, check=True, timeout=60).stdout
    luma = np.frombuffer(got, "<u2" if bits > 8 else "u1")[: len(levels)]
    return int(levels[np.argmax(luma >= white)])


def main() -> int:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
