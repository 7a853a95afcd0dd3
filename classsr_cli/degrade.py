"""How LR images are made from HR ones: the same function in training, bench and tests.

``mod_crop`` crops an HR image to a multiple of the scale; ``bicubic_downscale`` makes the LR image by
antialiased bicubic (Pillow's BICUBIC, a = -0.5 with the kernel widened by the scale factor, which is what
MATLAB's ``imresize`` does in the interior; at the outer one or two LR pixels the two differ, Pillow renormalising
the kernel where MATLAB mirrors the image), computed in float per channel and rounded once to uint8.

``jpeg_roundtrip`` and ``compress_lr`` add what everyday photos and frames carry on top: JPEG compression of the LR,
which a training recipe may ask for (``jpeg_quality``) so that a model learns to leave its blocks out; ``add_noise``
and ``noise_lr`` add sensor noise (``noise_sigma``), and ``degrade_lr`` applies a recipe's whole setting, noise first,
as a camera does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["add_noise", "bicubic_downscale", "bicubic_resize", "compress_lr", "degrade_lr", "jpeg_roundtrip", "load_rgb",
           "make_pair", "mod_crop", "noise_lr"]


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB through the reader ``classsr upscale`` uses
    (:func:`~classsr_cli.io.image.read_image`: every format it reads, EXIF orientation applied, 16-bit, CMYK and
    linear pictures as it reads them), its 16-bit levels rounded to 8 bits, gray made RGB, alpha left out: what
    ``bench`` measures and ``train`` learns from is what an upscale would see. Pillow alone had read a 16-bit PNG
    clipped to white and refused what it does not open (JPEG XL, OpenEXR, ...).

    Raises :class:`~classsr_cli.errors.InputError` naming the file where it is missing, empty, not an image classsr
    reads, truncated or corrupt, or over :data:`~classsr_cli.io.image.DEFAULT_MAX_PIXELS`."""
    import numpy as np

    from classsr_cli.errors import PixelLimitError
    from classsr_cli.io.image import read_image, to_8bit

    try:
        pixels = read_image(path).pixels
    except PixelLimitError as e:  # (upscale's advice names its --max-pixels, which bench and train do not have)
        raise e.advised("bench and train read none larger: downscale it first") from None
    if pixels.dtype == np.uint16:  # the nearest 8-bit levels, as an 8-bit output of the same picture is written
        pixels = to_8bit(pixels)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.array(pixels[..., :3], dtype=np.uint8, order="C")  # a writable copy (the reader's may be read-only)


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop ``(H, W, ...)`` to the largest multiple of ``scale`` in each dimension (top-left kept)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bicubic resize of ``(H, W, C)`` uint8 to ``(height, width, C)`` uint8."""
    import numpy as np
    from PIL import Image

    chans = [
        np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize((width, height), Image.Resampling.BICUBIC))
        for c in range(img.shape[2])
    ]
    return np.clip(np.rint(np.stack(chans, axis=-1)), 0, 255).astype(np.uint8)


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR of a mod-cropped HR image: bicubic ÷``scale``."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"HR image {w}x{h} is not mod-cropped to scale {scale}")
    return bicubic_resize(hr, h // scale, w // scale)


def make_pair(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hr_mod_cropped, lr)`` for ``scale``."""
    hr = mod_crop(hr, scale)
    return hr, bicubic_downscale(hr, scale)


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` (``(H, W, 3)`` uint8 RGB) saved as JPEG at ``quality`` (1-100; Pillow's baseline encoder with 4:2:0
    chroma, as cameras and most software save photos) and decoded again."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def compress_lr(lr: np.ndarray, quality: tuple[int, ...] | list[int], clean: float = 0.0) -> np.ndarray:
    """A training LR image under a recipe's JPEG setting: ``quality`` empty keeps it as it is; ``(lo, hi)`` saves it
    as JPEG (:func:`jpeg_roundtrip`) at a quality in ``lo..hi``, except a share ``clean`` of the images, kept as they
    are. Which images, and at what quality, follows from a hash of the pixels: the same image gets the same LR in
    data preparation and in calibration, on every machine, whatever order they come in."""
    if not quality:
        return lr
    lo, hi = (int(q) for q in quality)
    h = _pixel_hash(lr)
    if (h & 0xFFFFFFFF) / 0xFFFFFFFF < clean:
        return lr
    return jpeg_roundtrip(lr, lo + (h >> 32) % (hi - lo + 1))


def add_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``img`` (``(H, W, C)`` uint8) plus Gaussian noise of standard deviation ``sigma`` levels, the same in every
    channel (luminance noise: what a camera's processing leaves, its chroma denoising and 4:2:0 JPEG removing most of
    the colour noise), drawn from ``seed``, rounded and clipped once."""
    import numpy as np

    noise = np.random.default_rng(seed).standard_normal(img.shape[:2], dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(img.astype(np.float32) + noise[..., None]), 0, 255).astype(np.uint8)


def noise_lr(lr: np.ndarray, sigma: tuple[float, ...] | list[float], clean: float = 0.0) -> np.ndarray:
    """A training LR image under a recipe's noise setting: ``sigma`` empty keeps it as it is; ``(lo, hi)`` adds noise
    (:func:`add_noise`) of a standard deviation in ``lo..hi`` levels, except to a share ``clean`` of the images. As in
    :func:`compress_lr`, a hash of the pixels picks which images, the level and the noise itself."""
    if not sigma:
        return lr
    lo, hi = (float(v) for v in sigma)
    h = _pixel_hash(lr, b"noise")
    if (h & 0xFFFFFFFF) / 0xFFFFFFFF < clean:
        return lr
    return add_noise(lr, lo + (hi - lo) * ((h >> 32) & 0xFFFFFFFF) / 0xFFFFFFFF, h)


def degrade_lr(lr: np.ndarray, jpeg_quality: tuple[int, ...] | list[int] = (), jpeg_clean: float = 0.0,
               noise_sigma: tuple[float, ...] | list[float] = (), noise_clean: float = 0.0) -> np.ndarray:
    """A training LR image under a recipe's whole setting: noise (:func:`noise_lr`), then JPEG (:func:`compress_lr`)."""
    return compress_lr(noise_lr(lr, noise_sigma, noise_clean), jpeg_quality, jpeg_clean)


def _pixel_hash(img: np.ndarray, salt: bytes = b"") -> int:
    """64 bits of the SHA-256 of ``salt`` and the pixels: the same image, the same choices, on every machine."""
    import hashlib

    return int(hashlib.sha256(salt + img.tobytes()).hexdigest()[:16], 16)
