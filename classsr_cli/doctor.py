"""What this installation can do, and whether the model computes right on each device and precision
(``classsr doctor``): the answer to "black or garbled output on some GPUs" (docs/cli.md, "classsr doctor").

Each check is a :class:`Check`: passed, failed, or told (something optional that is absent, or a fact). The
self-test upscales one small seeded picture with the default ×4 model on every device and precision asked for and
compares each output with the CPU's in float32, level by level: a driver or precision that gives black, NaN or
garbled pixels fails it, with the figures.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LEVELS", "Check", "environment", "formats", "hardware", "models", "self_test", "self_test_plan"]

#: Largest mean difference from the CPU's float32 output, in 8-bit levels, that passes, by precision. A GPU in
#: float32 gave 0.003 levels, fp16 0.034 and bf16 0.24 on SunHays80 (docs/results.md, "On a GPU"): bounds well above
#: rounding, far below a garbled output.
LEVELS = {"fp32": 0.5, "fp16": 1.0, "bf16": 2.0}


@dataclass(frozen=True)
class Check:
    """One line of the report: its ``area`` and ``name``, ``ok`` (True passed, False failed, None told) and what was
    found."""

    area: str
    name: str
    ok: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return None


def environment() -> list[Check]:
    """classsr, Python and the packages it runs on, with their versions."""
    import torch

    from classsr_cli import __version__

    cuda = f", CUDA {torch.version.cuda}" if torch.version.cuda else ", CPU build"
    checks = [
        Check("python", "classsr", True, __version__),
        Check("python", "python", True, f"{platform.python_version()} ({sys.executable}) on {platform.platform()}"),
        Check("python", "torch", True, f"{torch.__version__}{cuda}"),
    ]
    for name, package, why in (("numpy", "numpy", ""), ("pillow", "pillow", ""),
                               ("pillow-heif", "pillow-heif", "HEIC"), ("imageio-ffmpeg", "imageio-ffmpeg", "video"),
                               ("safetensors", "safetensors", ""), ("isal", "isal", "fast PNG"),
                               ("etcpak", "etcpak", "BC7 textures: pip install 'classsr[textures]'")):  # fmt: skip
        version = _version(package)
        ok = True if version else (None if name in ("isal", "etcpak") else False)
        checks.append(Check("python", name, ok, version or f"not installed ({why or 'needed'})"))
    return checks


def formats() -> list[Check]:
    """The image formats read and written, and the ffmpeg the video, JPEG XL and deep AVIF go through."""
    from PIL import Image

    from classsr_cli.errors import VideoError
    from classsr_cli.io.image import readable_formats
    from classsr_cli.io.video import (
        SDR_FILTERS,
        decoded_white,
        encoded_white,
        ffmpeg_codecs,
        ffmpeg_exe,
        ffmpeg_filters,
    )

    checks: list[Check] = []
    try:
        exe = ffmpeg_exe()
    except VideoError as e:
        return [Check("ffmpeg", "ffmpeg", False, str(e))]
    decoders, encoders = ffmpeg_codecs("decoders"), ffmpeg_codecs("encoders")
    checks.append(Check("ffmpeg", "ffmpeg", bool(decoders), exe if decoders else f"{exe} does not answer"))
    reads = set(readable_formats())
    Image.init()
    for fmt, label in (("PNG", "PNG"), ("JPEG", "JPEG"), ("WEBP", "WebP"), ("TIFF", "TIFF"), ("AVIF", "AVIF"),
                       ("HEIF", "HEIC"), ("TGA", "TGA"), ("JPEG2000", "JPEG 2000"),
                       ("QOI", "QOI")):  # fmt: skip
        both = fmt in reads and fmt in Image.SAVE
        checks.append(Check("formats", label, True if both else False if fmt in ("PNG", "JPEG", "TIFF") else None,
                            "read and written" if both else "read only" if fmt in reads else "not available"))
    checks.append(Check("formats", "PPM/PGM/PBM", True if "PPM" in reads else None,
                        "read (16-bit too), PPM and PGM written (classsr's)" if "PPM" in reads else "not available"))
    checks.append(Check("formats", "PAM", True, "read and written (classsr's), alpha and 16 bits kept"))
    checks.append(Check("formats", "PFM", True, "read and written (classsr's), as linear light"))
    checks.append(Check("formats", "Photoshop", True, "PSD and PSB read (classsr's: the flattened picture, 8-32 bits)"))
    checks.append(Check("formats", "DDS", True if "DDS" in reads else None,
                        "read (its largest mip level) and written (mip levels, and the source's compression where "
                        "Pillow, or etcpak for BC7, encodes it)" if "DDS" in reads else "not available"))
    jxl = ("libjxl" in decoders, "libjxl" in encoders)
    checks.append(Check("formats", "JPEG XL", True if all(jxl) else None,
                        "read and written (ffmpeg's libjxl)" if all(jxl) else "not in this ffmpeg (no libjxl)"))
    exr = "exr" in decoders
    checks.append(Check("formats", "OpenEXR", True if exr else None,
                        "read (ffmpeg's exr) and written (classsr's)" if exr else "not in this ffmpeg (no exr decoder)"))
    hdr = ("hdr" in decoders, "hdr" in encoders)
    checks.append(Check("formats", "Radiance HDR", True if all(hdr) else None,
                        "read and written (ffmpeg's hdr)" if all(hdr) else "not in this ffmpeg (no hdr)"))
    checks.append(Check("formats", "AVIF of 10-12 bits", True if "libdav1d" in decoders else None,
                        "read at 16 bits (ffmpeg's dav1d)" if "libdav1d" in decoders else "read at 8 (no dav1d)"))
    for codec, what in (("libx264", "H.264 video (the default)"), ("libx265", "HEVC video (10-bit sources)"),
                        ("libvpx-vp9", "VP9 video (.webm)"), ("libsvtav1", "AV1 video"), ("prores_ks", "ProRes")):  # fmt: skip
        ok = codec in encoders
        checks.append(Check("ffmpeg", codec, ok if codec == "libx264" else (True if ok else None),
                            what if ok else f"{what}: not in this ffmpeg"))
    tone = ffmpeg_filters() >= SDR_FILTERS
    checks.append(Check("ffmpeg", "zscale, tonemap", True if tone else None,
                        "HDR video tone-mapped into GIF, WebP and APNG" if tone
                        else "not in this ffmpeg: HDR video shows as coded in GIF, WebP and APNG"))  # fmt: skip
    read, coded = decoded_white("yuv420p10le", "tv"), encoded_white("yuv420p10le")
    checks.append(Check("ffmpeg", "16-bit levels", True, "converted right" if read >= 65535 and coded >= 65535 else
                        f"swscale reads 10-bit video's white as {read} of 65535 and codes {coded:.0f} as white: "
                        "corrected"))  # fmt: skip
    return checks


def hardware() -> list[Check]:
    """The CPU threads torch uses, and the GPUs it sees."""
    import os

    import torch

    checks = [Check("device", "cpu", True, f"{torch.get_num_threads()} threads of {os.cpu_count()} cores")]
    if torch.cuda.is_available():
        for k in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(k)
            checks.append(Check("device", f"cuda:{k}", True,
                                f"{p.name}, {p.total_memory / 2**30:.1f} GiB, compute {p.major}.{p.minor}"))
    else:
        checks.append(Check("device", "cuda", None, "none seen by this torch" + (
            "" if torch.version.cuda else " (a CPU build: install a CUDA build of torch for a GPU)")))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        checks.append(Check("device", "mps", True, "Apple GPU"))
    return checks


def models() -> list[Check]:
    """The default models, found and loaded (their files validated as every load validates them), and the files of the
    weights folders that are not classsr checkpoints (told)."""
    from classsr_cli.checkpoint import load_checkpoint
    from classsr_cli.errors import ClassSRError
    from classsr_cli.zoo import left_out_text, resolve_model, unlisted

    checks = []
    for scale in (4, 2):
        try:
            path = resolve_model(None, scale)
            load_checkpoint(path, expect_kind="classsr")
        except ClassSRError as e:
            checks.append(Check("models", f"default x{scale}", False, str(e)))
            continue
        checks.append(Check("models", f"default x{scale}", True, str(path)))
    left_out = unlisted()
    if left_out:  # told, not failed: the models beside them load
        names = left_out_text(left_out, full=True)
        checks.append(Check("models", "left out", None, f"{len(left_out)} file(s) in the weights folders that are not "
                            f"classsr checkpoints: {names}"))
    return checks


def self_test_plan(device: str | None = None) -> list[tuple[str, str]]:
    """The ``(device, precision)`` pairs the self-test runs: the CPU in float32 (and bfloat16), and each GPU torch
    sees in float32, float16 and bfloat16 (``device`` given: that one alone, with the CPU's float32 to compare)."""
    import torch

    from classsr_cli.runtime import resolve_device

    devices = ["cpu"]
    if device not in (None, "auto"):
        devices = ["cpu", str(resolve_device(str(device)))] if str(device) != "cpu" else ["cpu"]
    else:
        devices += [f"cuda:{k}" for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
        mps = getattr(torch.backends, "mps", None)
        devices += ["mps"] if mps is not None and mps.is_available() else []
    plan = []
    for d in dict.fromkeys(devices):
        precisions = ["fp32", "bf16"] if d == "cpu" else ["fp32", "fp16"] if d == "mps" else ["fp32", "fp16", "bf16"]
        plan += [(d, p) for p in precisions]
    return plan


def _picture() -> Any:
    """The self-test's picture: 48x64, smooth gradients, a seeded texture and hard edges (each branch has work)."""
    import numpy as np

    y, x = np.mgrid[0:48, 0:64]
    rng = np.random.default_rng(0)
    pic = np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.float64)
    pic[:, 32:] += rng.normal(0, 20, (48, 32, 3))
    pic[16:32, 8:24] = (240, 30, 30)
    return np.clip(pic, 0, 255).astype(np.uint8)


def self_test(plan: list[tuple[str, str]]) -> list[Check]:
    """Upscale the self-test picture x4 with the default model on each ``(device, precision)`` of ``plan``; each
    output against the CPU's in float32 (:data:`LEVELS`), and every value finite."""
    import numpy as np

    from classsr_cli import zoo
    from classsr_cli.errors import ClassSRError
    from classsr_cli.pipeline import Upscaler
    from classsr_cli.runtime import resolve_device, resolve_dtype, synchronize

    pic = _picture()
    checks: list[Check] = []
    reference: np.ndarray | None = None
    for device, precision in [("cpu", "fp32"), *(p for p in plan if p != ("cpu", "fp32"))]:
        name = f"{device} {precision}"
        try:
            dev = resolve_device(device)
            dtype = resolve_dtype(precision, dev)
            up = Upscaler.of(zoo.load(None, 4, dev, dtype))
            up.upscale_array(pic)  # the first call builds what later calls reuse
            synchronize(dev)
            start = time.perf_counter()
            got = up.upscale_array(pic)
            synchronize(dev)
            seconds = time.perf_counter() - start
        except (ClassSRError, RuntimeError) as e:  # a precision the device refuses; non-finite output
            checks.append(Check("self-test", name, False, str(e).splitlines()[0]))
            continue
        out = np.asarray(got.pixels, np.float64)
        if reference is None:
            reference = out
        diff = float(np.abs(out - reference).mean())
        light, medium, heavy = got.route.counts
        ok = diff <= LEVELS[precision] and bool(out.max() > 0)
        against = "the reference" if out is reference else (
            f"{diff:.3f} levels from the CPU's fp32 (at most {LEVELS[precision]:g})")
        said = f"{against}, {seconds * 1000:.0f} ms, patches light {light} / medium {medium} / heavy {heavy}"
        checks.append(Check("self-test", name, ok, said if ok else f"{said}: the output is wrong on this device"))
    return checks
