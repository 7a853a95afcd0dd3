"""PSNR/SSIM against values worked out by hand and against independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from classsr_cli.metrics import gaussian_window, noise_level, noise_levels, psnr, quantize, rgb_to_y, ssim

# scikit-image 0.26.0's structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
# data_range=255) on `_pair()`, Y channel, border 4 (the pair comes from a seeded PCG64, stable across numpy).
SKIMAGE_SSIM_Y_BORDER4 = 0.8372821470951418
SKIMAGE_SSIM_RGB_BORDER4 = 0.8262129159803981


def _pair() -> tuple[np.ndarray, np.ndarray]:
    """A fixed (distorted, reference) pair of 36x40 RGB uint8 images: smooth ramps plus noise."""
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:40, 0:36]
    ref = np.stack([x * 6, y * 5, (x + y) * 3], -1) + rng.normal(0, 25, (40, 36, 3))
    ref = np.clip(np.rint(ref), 0, 255).astype(np.uint8)
    img = np.clip(ref.astype(np.int64) + rng.integers(-30, 31, ref.shape), 0, 255).astype(np.uint8)
    return img, ref


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM written from Wang et al.'s formula with scipy's Gaussian filter (radius 5 = truncate 5/1.5),
    keeping only the pixels where the 11x11 window lies inside the image."""
    ndimage = pytest.importorskip("scipy.ndimage")
    a = a.astype(np.float64)
    b = b.astype(np.float64)

    def blur(x: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(x, sigma=1.5, truncate=5 / 1.5)[5:-5, 5:-5]

    mu_a, mu_b = blur(a), blur(b)
    s_aa = blur(a * a) - mu_a**2
    s_bb = blur(b * b) - mu_b**2
    s_ab = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
    return float(m.mean())


def test_psnr_of_a_constant_offset() -> None:
    ref = np.full((16, 16, 3), 100, np.uint8)
    img = ref + 10
    # MSE = 100 on every channel.
    assert psnr(img, ref) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    # On Y a grey step of 10 is 10 * (65.481 + 128.553 + 24.966) / 255 = 2190 / 255.
    assert psnr(img, ref, y_channel=True) == pytest.approx(20 * math.log10(255 / (2190 / 255)), abs=1e-12)


def test_psnr_of_one_wrong_pixel() -> None:
    ref = np.zeros((8, 8, 3), np.uint8)
    img = ref.copy()
    img[3, 5] = 255
    # MSE = 255^2 / 64, so PSNR = 10 log10(64).
    assert psnr(img, ref) == pytest.approx(10 * math.log10(64), abs=1e-12)


def test_border_is_cropped_before_comparison() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    img = ref.copy()
    img[:4] = 0
    img[:, -4:] = 255
    assert psnr(img, ref, 4) == math.inf
    assert psnr(img, ref, 4, y_channel=True) == math.inf
    assert ssim(img, ref, 4, y_channel=True) == pytest.approx(1.0, abs=1e-12)
    assert psnr(img, ref, 3) < 40
    # The crop is exactly `border` pixels: one wrong pixel just inside the border counts.
    img2 = ref.copy()
    img2[4, 4] = 255 - ref[4, 4]
    assert math.isfinite(psnr(img2, ref, 4))


def test_y_is_matlab_bt601() -> None:
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(px)[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-12)


def test_gaussian_window_matches_the_formula() -> None:
    g = gaussian_window()
    assert g.shape == (11,)
    assert g.sum() == pytest.approx(1.0, abs=1e-15)
    expected = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(g, expected / expected.sum(), rtol=1e-14)


def test_ssim_of_identical_images_is_one() -> None:
    img, _ = _pair()
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, 4, y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_an_independent_formula() -> None:
    img, ref = _pair()
    expected_y = _ssim_reference(rgb_to_y(img)[4:-4, 4:-4], rgb_to_y(ref)[4:-4, 4:-4])
    assert ssim(img, ref, 4, y_channel=True) == pytest.approx(expected_y, abs=1e-10)
    expected_rgb = np.mean([_ssim_reference(img[4:-4, 4:-4, c], ref[4:-4, 4:-4, c]) for c in range(3)])
    assert ssim(img, ref, 4) == pytest.approx(expected_rgb, abs=1e-10)


def test_ssim_matches_scikit_image_recorded_value() -> None:
    img, ref = _pair()
    assert ssim(img, ref, 4, y_channel=True) == pytest.approx(SKIMAGE_SSIM_Y_BORDER4, abs=1e-9)
    assert ssim(img, ref, 4) == pytest.approx(SKIMAGE_SSIM_RGB_BORDER4, abs=1e-9)


def test_ssim_matches_scikit_image_live() -> None:
    skm = pytest.importorskip("skimage.metrics")
    img, ref = _pair()
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    ya, yb = rgb_to_y(img)[4:-4, 4:-4], rgb_to_y(ref)[4:-4, 4:-4]
    assert ssim(img, ref, 4, y_channel=True) == pytest.approx(skm.structural_similarity(ya, yb, **kw), abs=1e-9)
    assert psnr(img, ref, 4) == pytest.approx(
        skm.peak_signal_noise_ratio(ref[4:-4, 4:-4], img[4:-4, 4:-4], data_range=255), abs=1e-9
    )


def test_quantize_clamps_and_rounds() -> None:
    t = torch.tensor([-0.1, 0.5, 1.2, 0.4 / 255, 0.6 / 255, 1.0]).reshape(1, 1, 1, 6).expand(1, 3, 1, 6)
    q = quantize(t)
    assert q.dtype == np.uint8
    assert q.shape == (1, 6, 3)
    assert q[0, :, 0].tolist() == [0, 128, 255, 0, 1, 255]
    rgb = torch.rand(1, 3, 5, 7)  # channels land where they belong, in an array the image writers take as it is
    q = quantize(rgb)
    assert q.flags["C_CONTIGUOUS"] and q.shape == (5, 7, 3)
    assert np.array_equal(q, (rgb[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_bad_inputs_raise() -> None:
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="nothing left"):
        psnr(a, a, 10)
    with pytest.raises(ValueError, match="SSIM needs"):
        ssim(a, a, 5)
    with pytest.raises(ValueError, match="RGB"):
        psnr(a[..., 0], a[..., 0])


def test_noise_level_reads_the_noise_of_flat_regions_and_not_their_ramps() -> None:
    """On a smooth picture (ramps and a soft blob) with luminance noise of σ levels the estimate follows σ (the
    flattest blocks' low quantile reads a little under it), the ramps alone read about nothing, clipped blocks are
    left out, 16-bit pictures read in 8-bit levels, gray as colour, and a picture too small for a block reads 0."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:320].astype(np.float32)
    smooth = 60 + 0.3 * xx + 0.2 * yy + 30 * np.exp(-((xx - 160) ** 2 + (yy - 128) ** 2) / 4000)
    img = np.repeat(smooth[..., None], 3, axis=2)
    as_uint8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    assert noise_level(as_uint8) < 0.5
    levels = []
    for sigma in (2, 4, 8, 12):
        noisy = np.clip(np.rint(img + rng.normal(0, sigma, img.shape[:2])[..., None]), 0, 255).astype(np.uint8)
        levels.append(noise_level(noisy))
        assert 0.6 * sigma < levels[-1] < 1.1 * sigma
        wide = np.clip(np.rint(img * 257 + 257 * rng.normal(0, sigma, img.shape[:2])[..., None]), 0, 65535)
        assert noise_level(wide.astype(np.uint16)) == pytest.approx(levels[-1], rel=0.25)
        assert noise_level(noisy[..., :1]) == pytest.approx(levels[-1], rel=0.25)
    assert levels == sorted(levels)
    half_white = as_uint8.copy()
    half_white[:, 160:] = 255  # clipped: no noise to see there, left out rather than read as clean
    noisy = np.clip(np.rint(half_white + rng.normal(0, 6, img.shape[:2])[..., None]), 0, 255).astype(np.uint8)
    assert noise_level(noisy) > 3
    assert noise_level(noisy[:8, :8]) == 0.0


def test_noise_levels_reads_each_share_as_noise_level_does_and_texture_raises_the_larger_shares() -> None:
    """:func:`noise_levels` gives :func:`noise_level` at each share (the blocks measured once), rising with the share;
    noise reads about alike at the flattest 0.5 % and tenth of blocks, texture of growing amplitude far apart."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    noisy = np.clip(np.rint(100 + 0.2 * xx + rng.normal(0, 4, xx.shape)), 0, 255).astype(np.uint8)[..., None]
    shares = (0.005, 0.02, 0.1, 0.5)
    levels = noise_levels(noisy, shares)
    assert levels == [noise_level(noisy, share=share) for share in shares] and levels == sorted(levels)
    assert levels[2] < 1.3 * levels[0]
    texture = np.rint(128 + 8 * 2 ** (xx / 16) * np.sin(xx * 1.3) * np.sin(yy * 1.1))
    flattest, tenth = noise_levels(np.clip(texture, 0, 255).astype(np.uint8)[..., None], (0.005, 0.1))
    assert tenth > 1.5 * flattest
    assert noise_levels(noisy[:8, :8], shares) == [0.0] * 4
