"""HEIF pictures coded in ways the installed HEIF decoder does not decode, decoded by classsr itself.

pillow-heif's libheif decodes HEVC and AV1 pictures. A HEIF may hold its picture coded otherwise (ISO/IEC 23008-12
and its amendments): as a JPEG (``jpeg`` item), a JPEG 2000 codestream (``j2k1``: KDE's and Krita's ``.hej2``),
uncompressed samples (``unci``, ISO/IEC 23001-17, stored or deflated: libheif's ``heif-enc --uncompressed``) or H.264
(``avc1``: ``.avci``). Their data is found by :func:`classsr_cli.io.heifbox.primary_coded`; this decodes it (JPEG and
JPEG 2000 by Pillow, uncompressed samples here, H.264 by the bundled ffmpeg) into levels as stored, and applies the
picture's transforms in the order its properties list them (``clap``, ``irot``, ``imir``), as libheif does.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib

import numpy as np

from classsr_cli.io.heifbox import Coded

__all__ = ["Unsupported", "bits", "colour", "decode", "size", "transformed"]


class Unsupported(ValueError):
    """A picture of a coding or layout :func:`decode` does not decode (a Brotli-compressed one, a YCbCr one stored
    uncompressed, ...): said as such, not as a damaged file."""


def _property(coded: Coded, kind: bytes) -> bytes | None:
    """``coded``'s first property box of ``kind``, whole."""
    return next((box for box in coded.properties if box[4:8] == kind), None)


def size(coded: Coded) -> tuple[int, int] | None:
    """The (width, height) of ``coded``'s picture as coded, before its transforms (its ``ispe``)."""
    ispe = _property(coded, b"ispe")
    return None if ispe is None or len(ispe) < 20 else struct.unpack(">II", ispe[12:20])


def bits(coded: Coded) -> int:
    """The bits of ``coded``'s samples its ``pixi`` gives (the most of its channels), 8 where it gives none."""
    pixi = _property(coded, b"pixi")
    if pixi is None or len(pixi) < 14 or not pixi[12]:
        return 8
    return max(pixi[13 : 13 + pixi[12]] or b"\x08")


def colour(coded: Coded) -> tuple[bytes | None, tuple[int, int, int, bool] | None]:
    """``coded``'s colour as its ``colr`` property gives it: an ICC profile (``prof``, ``rICC``), or H.273 code
    points (primaries, transfer, matrix, full range: ``nclx``); ``(None, None)`` where it has none."""
    icc = codes = None
    for box in coded.properties:
        if box[4:8] != b"colr" or len(box) < 12:
            continue
        if box[8:12] in (b"prof", b"rICC") and icc is None:
            icc = box[12:] or None
        elif box[8:12] == b"nclx" and len(box) >= 19 and codes is None:
            primaries, transfer, matrix = struct.unpack(">3H", box[12:18])
            codes = (primaries, transfer, matrix, bool(box[18] & 0x80))
    return icc, codes


def decode(coded: Coded, ffmpeg: str | None = None) -> np.ndarray:
    """``coded``'s picture as stored, before its transforms: ``(H, W, C)`` ``uint8`` or ``uint16`` levels, ``C`` 1
    (gray), 2 (gray and alpha), 3 (RGB) or 4 (RGB and alpha), of the size its ``ispe`` gives. Raises
    :class:`Unsupported` for a coding or layout this does not decode, ``ValueError`` for damaged data."""
    shape = size(coded)
    if shape is None:
        raise ValueError("a HEIF picture without its size (ispe)")
    if coded.kind == b"jpeg":
        out = _pillow(coded.data, "JPEG", shape)
    elif coded.kind == b"j2k1":
        out = _pillow(coded.data, "JPEG2000", shape)
        codes = colour(coded)[1]
        matrix, full = (codes[2], codes[3]) if codes is not None else (6, True)  # (libheif's default: BT.601, full)
        if out.shape[2] >= 3 and matrix in _KR_KB:  # its components Y, Cb and Cr, as libheif takes them
            out = np.concatenate([_ycbcr_to_rgb(out[..., :3], matrix, full), out[..., 3:]], axis=2)
    elif coded.kind == b"unci":
        out = _uncompressed(coded, shape)
    elif coded.kind == b"avc1":
        out = _h264(coded, shape, ffmpeg)
    else:
        raise Unsupported(f"its coding, {coded.kind.decode('latin-1')!r}, is not one classsr decodes")
    if out.shape[1::-1] != shape:
        raise ValueError(f"decoded {out.shape[1]}x{out.shape[0]}, its ispe says {shape[0]}x{shape[1]}")
    return out


#: The luma weights of red and blue (Kr, Kb) of H.273's YCbCr matrices: BT.709, BT.601 (5 and 6), BT.2020.
_KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}


def _ycbcr_to_rgb(levels: np.ndarray, matrix: int, full: bool) -> np.ndarray:
    """YCbCr ``levels`` (``(H, W, 3)``, ``uint8`` or ``uint16``) as RGB of the same type by H.273's ``matrix``
    (:data:`_KR_KB`), of full range or limited (16-235 and 16-240 at 8 bits)."""
    top = float(np.iinfo(levels.dtype).max)
    kr, kb = _KR_KB[matrix]
    kg = 1 - kr - kb
    v = levels.astype(np.float32) / top
    if full:
        y, cb, cr = v[..., 0], v[..., 1] - 0.5, v[..., 2] - 0.5
    else:
        y, cb, cr = (v[..., 0] - 16 / 255) * 255 / 219, (v[..., 1] - 0.5) * 255 / 224, (v[..., 2] - 0.5) * 255 / 224
    rgb = np.stack([y + 2 * (1 - kr) * cr, y - (2 * kb * (1 - kb) * cb + 2 * kr * (1 - kr) * cr) / kg,
                    y + 2 * (1 - kb) * cb], axis=-1)  # fmt: skip
    return np.clip(np.rint(rgb * top), 0, top).astype(levels.dtype)


def _pillow(data: bytes, fmt: str, shape: tuple[int, int]) -> np.ndarray:
    """A JPEG or JPEG 2000 codestream decoded by Pillow, checked against ``shape`` (width, height) before its
    pixels are decoded (a bomb's header cannot say otherwise than its ``ispe``)."""
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=[fmt]) as opened:
        if opened.size != shape:
            raise ValueError(f"its {fmt} says {opened.size[0]}x{opened.size[1]}, its ispe {shape[0]}x{shape[1]}")
        opened.load()
        if opened.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(opened).astype(np.uint16)[..., None]
        im = opened if opened.mode in ("L", "LA", "RGB", "RGBA") else opened.convert("RGBA" if "A" in opened.mode else "RGB")
        levels = np.asarray(im)
    return levels[..., None] if levels.ndim == 2 else levels


#: ISO/IEC 23001-17's profiles of a version 1 ``uncC`` (8-bit samples, pixels interleaved), by their components.
_PROFILES = {b"rgb3": "RGB", b"rgba": "RGBA", b"abgr": "ABGR"}
#: ISO/IEC 23001-17's component types (``cmpd``) this reads: monochrome, luma (alone: gray), red, green, blue, alpha.
_COMPONENTS = {0: "Y", 1: "Y", 4: "R", 5: "G", 6: "B", 7: "A"}


def _uncompressed(coded: Coded, shape: tuple[int, int]) -> np.ndarray:
    """An uncompressed (``unci``) picture's samples: a version 1 ``uncC``'s profile (``rgb3``, ``rgba``, ``abgr``),
    or a version 0 one of monochrome or RGB components, with or without alpha, of 8 or 16 bits each, pixels or
    components interleaved, in one tile without padding; stored, or deflated whole (``cmpC``: ``defl``, ``zlib``)."""
    uncc = _property(coded, b"uncC")
    if uncc is None or len(uncc) < 16:
        raise ValueError("an uncompressed HEIF picture without its uncC")
    width, height = shape
    data = _inflated(coded, width * height * 8)  # (at most four 16-bit samples a pixel: no more is inflated)
    if uncc[8] == 1:
        order = _PROFILES.get(uncc[12:16])
        if order is None:
            raise Unsupported(f"its profile {uncc[12:16].decode('latin-1')!r} is not one classsr reads")
        return _arranged(_samples(data, (height, width, len(order)), np.dtype(np.uint8)), order)
    if uncc[8] != 0 or len(uncc) < 20:
        raise Unsupported(f"its uncC is of version {uncc[8]}")
    count = struct.unpack(">I", uncc[16:20])[0]
    at = 20 + 5 * count
    if len(uncc) < at + 24:
        raise ValueError("a damaged uncC")
    fields = [struct.unpack(">HBBB", uncc[20 + 5 * k : 25 + 5 * k]) for k in range(count)]
    sampling, interleave, block, flags = uncc[at : at + 4]
    pixel, row, tile, cols, rows = struct.unpack(">5I", uncc[at + 4 : at + 24])
    types = _component_types(coded)
    bits = {depth + 1 for _, depth, _, _ in fields}
    if (sampling or interleave > 1 or block or pixel or row or tile or cols or rows or len(bits) != 1
            or bits - {8, 16} or any(fmt or align for _, _, fmt, align in fields)):  # fmt: skip
        raise Unsupported("its layout (subsampled, tiled, padded, or of samples other than 8 or 16-bit integers) is "
                          "not one classsr reads")
    try:
        order = "".join(_COMPONENTS[types[index]] for index, _, _, _ in fields)
    except (KeyError, IndexError):
        raise Unsupported("its components are other than gray, RGB and alpha") from None
    dtype = np.dtype(np.uint8) if bits == {8} else np.dtype("<u2" if flags & 0x80 else ">u2")
    layout = (height, width, count) if interleave == 1 else (count, height, width)
    samples = _samples(data, layout, dtype)
    return _arranged(samples if interleave == 1 else np.moveaxis(samples, 0, -1), order)


def _inflated(coded: Coded, most: int) -> bytes:
    """``coded``'s data, inflated (to ``most`` bytes at most: a bomb's zeros are not) where its ``cmpC`` says it is
    deflated whole (the picture one unit)."""
    cmpc = _property(coded, b"cmpC")
    if cmpc is None:
        return coded.data
    kind = cmpc[12:16]
    if _property(coded, b"icef") is not None:
        raise Unsupported("its samples are compressed in several units")
    if kind == b"brot":
        raise Unsupported("its samples are Brotli-compressed, which Python has no decoder for")
    if kind not in (b"defl", b"zlib"):
        raise Unsupported(f"its samples are compressed as {kind.decode('latin-1')!r}")
    try:
        return zlib.decompressobj(-15 if kind == b"defl" else 15).decompress(coded.data, most)
    except zlib.error as e:
        raise ValueError(f"its deflated data does not inflate ({e})") from None


def _component_types(coded: Coded) -> list[int]:
    """The component types a ``cmpd`` property lists (a URI-named one as 0xFFFF)."""
    cmpd = _property(coded, b"cmpd")
    if cmpd is None or len(cmpd) < 12:
        raise ValueError("an uncompressed HEIF picture without its cmpd")
    count, at, out = struct.unpack(">I", cmpd[8:12])[0], 12, []
    for _ in range(count):
        if at + 2 > len(cmpd):
            raise ValueError("a damaged cmpd")
        kind = struct.unpack(">H", cmpd[at : at + 2])[0]
        at += 2
        if kind >= 0x8000:  # a type named by a URI, which follows
            end = cmpd.find(b"\x00", at)
            at = len(cmpd) if end < 0 else end + 1
            kind = 0xFFFF
        out.append(kind)
    return out


def _samples(data: bytes, layout: tuple[int, int, int], dtype: np.dtype) -> np.ndarray:
    """``layout`` samples of ``dtype`` from the start of ``data`` (in the machine's order), or ``ValueError``."""
    need = int(np.prod(layout)) * dtype.itemsize
    if len(data) < need:
        raise ValueError(f"its samples cut short ({len(data):,} of {need:,} bytes)")
    return np.frombuffer(data, dtype, int(np.prod(layout))).reshape(layout).astype(dtype.newbyteorder("="))


def _arranged(samples: np.ndarray, order: str) -> np.ndarray:
    """``samples`` (``(H, W, C)`` in ``order``: ``Y``, ``R``, ``G``, ``B``, ``A``) as gray, gray and alpha, RGB or
    RGBA."""
    if sorted(order) not in (["Y"], ["A", "Y"], ["B", "G", "R"], ["A", "B", "G", "R"]):
        raise Unsupported(f"its components ({order}) are other than gray, RGB and alpha")
    want = "YA" if "Y" in order else "RGBA"
    return np.ascontiguousarray(samples[..., [order.index(c) for c in want if c in order]])


def _h264(coded: Coded, shape: tuple[int, int], ffmpeg: str | None) -> np.ndarray:
    """An H.264 picture (``avc1``: its ``avcC``'s parameter sets before its data, as an Annex B stream) decoded by
    the bundled ffmpeg, to gray or RGB of 8 or 16 bits as its ``pixi`` gives (YCbCr converted by the matrix and
    range its ``nclx`` gives, where it gives one)."""
    avcc = _property(coded, b"avcC")
    if avcc is None or len(avcc) < 15:
        raise ValueError("an H.264 HEIF picture without its avcC")
    if ffmpeg is None:
        raise Unsupported("its H.264 picture needs the bundled ffmpeg, which is not there")
    stream = _annex_b(avcc[8:], coded.data)
    gray = (_property(coded, b"pixi") or b"\x00" * 13)[12:13] == b"\x01"
    deep = bits(coded) > 8
    channels = 1 if gray else 3
    fmt = ("gray16le" if deep else "gray") if gray else ("rgb48le" if deep else "rgb24")
    scale = []
    codes = colour(coded)[1]
    if codes is not None and not gray:
        matrix = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020"}.get(codes[2])
        scale = ["-vf", f"scale=in_range={'full' if codes[3] else 'limited'}"
                        + (f":in_color_matrix={matrix}" if matrix else "")]  # fmt: skip
    done = subprocess.run([ffmpeg, "-v", "error", "-f", "h264", "-i", "pipe:", *scale, "-frames:v", "1", "-f", "rawvideo",
                           "-pix_fmt", fmt, "pipe:"], input=stream, capture_output=True, check=False)  # fmt: skip
    width, height = shape
    dtype = np.dtype("<u2" if deep else np.uint8)
    need = width * height * channels * dtype.itemsize
    if done.returncode or len(done.stdout) != need or done.stderr.strip():  # (errors in slices: concealed, said)
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ValueError(f"its H.264 data does not decode ({said[-1] if said else f'{len(done.stdout):,} bytes'})")
    levels = np.frombuffer(done.stdout, dtype).reshape(height, width, channels)
    if deep and codes is not None and not gray:  # swscale's white below 65535, stretched as classsr video's reader does
        from classsr_cli.io.video import decoded_white, stretched

        source = f"{'gbrp' if codes[2] == 0 else 'yuv420p'}{bits(coded)}le"
        return stretched(levels.astype(np.uint16), decoded_white(source, "pc" if codes[3] else "tv"))
    return levels.astype(np.uint16) if deep else levels.copy()


def _annex_b(config: bytes, data: bytes) -> bytes:
    """An ``avcC`` (``config``) and length-prefixed NAL units (``data``) as an Annex B byte stream."""
    start, out = b"\x00\x00\x00\x01", bytearray()
    size, at = (config[4] & 3) + 1, 6
    for count_at in (5, None):  # its sequence parameter sets, then its picture parameter sets
        if count_at is None:
            count, at = config[at], at + 1
        else:
            count = config[count_at] & 31
        for _ in range(count):
            n = struct.unpack(">H", config[at : at + 2])[0]
            out += start + config[at + 2 : at + 2 + n]
            at += 2 + n
    at = 0
    while at + size <= len(data):
        n = int.from_bytes(data[at : at + size], "big")
        if at + size + n > len(data):
            raise ValueError(f"its H.264 data cut short ({len(data):,} bytes)")
        out += start + data[at + size : at + size + n]
        at += size + n
    return bytes(out)


def transformed(levels: np.ndarray, coded: Coded) -> np.ndarray:
    """``levels`` (``(H, W, ...)``) with ``coded``'s transforms applied in the order its properties list them: its
    clean aperture (``clap``: cropped about the centre and the offset it gives), rotation (``irot``: quarter turns
    anticlockwise) and mirroring (``imir``: axis 0 exchanges top and bottom, 1 left and right, as ISO/IEC
    23008-12:2022, libheif and libavif have it)."""
    for box in coded.properties:
        kind = box[4:8]
        if kind == b"clap" and len(box) >= 40:
            wn, wd, hn, hd, xn, xd, yn, yd = struct.unpack(">IIIIiIiI", box[8:40])
            if not (wd and hd and xd and yd):
                continue
            height, width = levels.shape[:2]
            w, h = wn / wd, hn / hd
            left = round(xn / xd + (width - 1) / 2 - (w - 1) / 2)
            top = round(yn / yd + (height - 1) / 2 - (h - 1) / 2)
            left, top = max(0, left), max(0, top)
            right, bottom = min(width, left + round(w)), min(height, top + round(h))
            if right > left and bottom > top:
                levels = levels[top:bottom, left:right]
        elif kind == b"irot" and len(box) >= 9:
            levels = np.rot90(levels, box[8] & 3)
        elif kind == b"imir" and len(box) >= 9:
            levels = levels[:, ::-1] if box[8] & 1 else levels[::-1]
    return np.ascontiguousarray(levels)
