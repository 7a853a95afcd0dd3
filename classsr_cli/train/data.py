"""Training data: prepared once from HR folders into packed uint8 arrays, cropped on the fly on the device.

``prepare`` writes to a folder:

* ``lr.npy`` / ``hr.npy``: every LR / HR image, flattened HWC uint8, concatenated (memory-mapped on read);
* ``images.npy``: int64 ``(n_images, 6)``: LR offset, HR offset, LR height, LR width, split (0 train, 1 val),
  multi-scale index;
* ``patches.npy``: int32 ``(n_patches, 3)``: image, y, x of every LR sub-image origin (dense grid, ``step``);
* ``meta.json``: scale, patch, step, factors, the source files and a content hash of the arrays.

:class:`PatchData` puts the arrays on a device and gathers batches of LR/HR sub-images with one indexing
operation per batch; flips and 90° rotations are folded into the gather indices, so augmentation costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from classsr_cli.degrade import bicubic_resize, degrade_lr, load_rgb, make_pair
from classsr_cli.errors import ConfigError, InputError
from classsr_cli.io.files import (
    files_in,
    is_image_name,
    make_folder,
    no_images,
    url_refusal,
    without_own_outputs,
)
from classsr_cli.train.config import check_data_settings, check_jpeg, check_noise

__all__ = ["PatchData", "check_degradation_of", "find_images", "prepare"]

FORMAT = "classsr-train-data/1"


def find_images(folders: Sequence[str | Path], left_out: list[Path] | None = None,
                unread: list[Path] | None = None) -> list[Path]:
    """Every image under ``folders`` (recursive), sorted for determinism, but for classsr's own earlier outputs beside
    their inputs (``photo_x4.png`` by ``photo.png``: an upscaled picture is no HR photo, and a 16000x12000 one stopped
    the preparation at the pixel limit), which are added to ``left_out``; the folders' files that are no pictures
    classsr reads (camera RAW among them) are added to ``unread``."""
    files: list[Path] = []
    others: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            files.append(folder)
            continue
        if not folder.is_dir():
            raise InputError(url_refusal(folder) or f"{folder}: no such folder")
        every = files_in(folder, recursive=True)
        found, own = without_own_outputs([f for f in every if is_image_name(f)])
        files.extend(found)
        others.extend(f for f in every if not is_image_name(f))
        if left_out is not None:
            left_out.extend(own)
    if unread is not None:
        unread.extend(others)
    if not files:
        place = "these folders (or those under them)" if len(folders) > 1 else "this folder (or those under it)"
        raise InputError(no_images(", ".join(map(str, folders)), others, place=place))
    return sorted(files)


def check_data_folder(out: str | Path, hr_folders: Sequence[str | Path]) -> None:
    """A :class:`ConfigError` where the folder for prepared data is one of ``hr_folders``: its arrays would go in
    among the photos."""
    if any(Path(out).resolve() == Path(f).resolve() for f in hr_folders):
        raise ConfigError(f"{out}: is a folder of the HR photos (--hr); the prepared arrays go into a folder of their "
                          "own (--data, or -o of `train prepare`)")


def check_sources(data_dir: str | Path, hr_folders: Sequence[str | Path]) -> None:
    """A :class:`ConfigError` unless the photos of ``hr_folders`` are those ``data_dir`` was prepared from (by file
    name, as ``meta.json`` records them): a run given other ``--hr`` photos than its prepared data's would train on
    the old data without a word."""
    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    have = sorted(str(s.get("file")) for s in meta.get("sources", []))
    given = sorted(p.name for p in find_images(hr_folders))
    if have and given != have:
        new, gone = len(set(given) - set(have)), len(set(have) - set(given))
        raise ConfigError(
            f"{data_dir} was prepared from other photos than --hr gives ({len(have)} there, {len(given)} given: "
            f"{new} new, {gone} missing); use another --out (or --data) to prepare them, or leave out --hr to go on "
            "with the prepared data"
        )


def check_degradation_of(data_dir: str | Path, jpeg_quality: Sequence[int] = (), jpeg_clean: float = 0.0,
                         noise_sigma: Sequence[float] = (), noise_clean: float = 0.0) -> None:
    """A :class:`ConfigError` unless ``data_dir`` was prepared with the recipe's JPEG and noise settings (data prepared
    before a setting existed is clean): a recipe for degraded LR would otherwise train on clean data, or the reverse."""
    meta = json.loads((Path(data_dir) / "meta.json").read_text())
    have = _degradation(meta.get("jpeg_quality", []), meta.get("jpeg_clean", 0.0), meta.get("noise_sigma", []),
                        meta.get("noise_clean", 0.0))
    want = _degradation(jpeg_quality, jpeg_clean, noise_sigma, noise_clean)
    if have != want:
        def said(q: list[float], c: float, n: list[float], nc: float) -> str:
            parts = [f"noise of {n[0]:g}-{n[1]:g} levels, {nc:g} kept free of it"] if n else []
            parts += [f"JPEG quality {q[0]:g}-{q[1]:g}, {c:g} kept clean"] if q else []
            return " and ".join(parts) or "clean LR"

        raise ConfigError(f"{data_dir} was prepared with {said(*have)}, the recipe asks for {said(*want)}; use "
                          "another --out (or --data)")


def _degradation(q: Sequence[float], c: float, n: Sequence[float], nc: float) -> tuple[list[float], float, list[float], float]:
    return [float(v) for v in q], float(c), [float(v) for v in n], float(nc)


def _is_val(name: str, val_fraction: float) -> bool:
    if val_fraction <= 0:
        return False
    h = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < val_fraction


def _origins(length: int, patch: int, step: int) -> list[int]:
    if length < patch:
        return []
    pos = list(range(0, length - patch + 1, step))
    if pos[-1] != length - patch:
        pos.append(length - patch)  # cover the remainder with one patch flush with the border
    return pos


def factor_pair(
    img: np.ndarray, factor: float, scale: int, jpeg_quality: Sequence[int] = (), jpeg_clean: float = 0.0,
    noise_sigma: Sequence[float] = (), noise_clean: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(hr, lr)`` of ``img`` downscaled by a training ``factor`` (antialiased bicubic; 1.0: as it is), mod-cropped,
    LR by :func:`~classsr_cli.degrade.make_pair`, then degraded as a recipe's ``noise_sigma`` and ``jpeg_quality``
    ask (:func:`~classsr_cli.degrade.degrade_lr`): how the data and the calibration make every scale."""
    if factor != 1.0:
        img = bicubic_resize(img, max(1, round(img.shape[0] * factor)), max(1, round(img.shape[1] * factor)))
    hr, lr = make_pair(img, scale)
    return hr, degrade_lr(lr, tuple(jpeg_quality), jpeg_clean, tuple(noise_sigma), noise_clean)


def prepare(
    hr_folders: Sequence[str | Path],
    out: str | Path,
    *,
    scale: int,
    patch: int = 32,
    step: int = 16,
    factors: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6),
    val_fraction: float = 0.05,
    jpeg_quality: Sequence[int] = (),
    jpeg_clean: float = 0.0,
    noise_sigma: Sequence[float] = (),
    noise_clean: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Prepare training data from ``hr_folders`` into ``out``. Returns the metadata written to meta.json.

    Each image is (optionally) downscaled by every factor in ``factors`` (antialiased bicubic, as in the paper's
    multi-scale augmentation), mod-cropped, and its LR made with :func:`classsr_cli.degrade.bicubic_downscale`,
    exactly as ``bench`` makes it, then, with ``noise_sigma`` ``(lo, hi)``, given noise of a level in that range but
    for a share ``noise_clean``, and with ``jpeg_quality`` ``(lo, hi)`` saved as JPEG at a quality in that range but
    for a share ``jpeg_clean`` (:func:`factor_pair`). Images whose name hashes below ``val_fraction`` are held
    out for validation (at the first factor only).

    A :class:`ConfigError` before anything is read unless ``scale`` is at least 1, ``patch`` a positive multiple of
    4 (the classifier's blocks), ``step`` at least 1, ``factors`` in (0, 1] and ``val_fraction`` in [0, 1)
    (:func:`~classsr_cli.train.config.check_data_settings`).
    """
    check_data_settings(patch=patch, step=step, factors=factors, val_fraction=val_fraction, scale=scale,
                        step_name="step")
    check_jpeg(list(jpeg_quality), jpeg_clean)
    check_noise(list(noise_sigma), noise_clean)
    files = find_images(hr_folders)
    check_data_folder(out, hr_folders)
    out = make_folder(out)
    (out / "meta.json").unlink(missing_ok=True)  # incomplete until the new one is written
    lr_parts: list[np.ndarray] = []
    hr_parts: list[np.ndarray] = []
    images: list[list[int]] = []
    patches: list[np.ndarray] = []
    lr_off = hr_off = 0
    sources = []
    for i, path in enumerate(files):
        base = load_rgb(path)  # a bad file in a training folder is fatal (one line naming it): the recipe must be exact
        split = 1 if _is_val(path.name, val_fraction) else 0
        sources.append({"file": path.name, "split": "val" if split else "train"})
        for fi, f in enumerate(factors if not split else factors[:1]):
            if min(round(n * f) for n in base.shape[:2]) < patch * scale:
                continue  # no sub-image at this size (below the scale itself, no LR at all: "internal error" it was)
            hr, lr = factor_pair(base, f, scale, jpeg_quality, jpeg_clean, noise_sigma, noise_clean)
            h, w = lr.shape[:2]
            ys, xs = _origins(h, patch, step), _origins(w, patch, step)
            if not ys or not xs:
                continue
            idx = len(images)
            images.append([lr_off, hr_off, h, w, split, fi])
            grid = np.array([(idx, y, x) for y in ys for x in xs], dtype=np.int32)
            patches.append(grid)
            lr_parts.append(lr.reshape(-1))
            hr_parts.append(hr.reshape(-1))
            lr_off += lr.size
            hr_off += hr.size
        if progress is not None:
            progress(i + 1, len(files))
    if not images:
        raise InputError(f"no image is at least {patch * scale}px on each side")
    if not any(row[4] == 0 for row in images):
        raise InputError(f"every image is held out for validation (val_fraction {val_fraction}); lower it")
    arrays = {
        "lr": np.concatenate(lr_parts),
        "hr": np.concatenate(hr_parts),
        "images": np.asarray(images, dtype=np.int64),
        "patches": np.concatenate(patches),
    }
    digest = hashlib.sha256()
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", arr)
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    split_of = arrays["images"][arrays["patches"][:, 0], 4]
    meta = {
        "format": FORMAT,
        "scale": scale,
        "patch": patch,
        "step": step,
        "factors": list(factors),
        "val_fraction": val_fraction,
        "jpeg_quality": list(jpeg_quality),
        "jpeg_clean": jpeg_clean,
        "noise_sigma": list(noise_sigma),
        "noise_clean": noise_clean,
        "images": len(files),
        "train_patches": int((split_of == 0).sum()),
        "val_patches": int((split_of == 1).sum()),
        "hash": "sha256:" + digest.hexdigest(),
        "sources": sources,
    }
    # meta.json marks the folder complete: written last, through a rename, so a killed run leaves none.
    tmp = out / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(out / "meta.json")
    return meta


class PatchData:
    """Prepared data on a device, with batched gathering of (LR, HR) sub-images in ``[0, 1]``."""

    def __init__(self, folder: str | Path, device: torch.device | str = "cpu") -> None:
        folder = Path(folder)
        try:
            self.meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            raise ConfigError(f"{folder}: no prepared data (run `classsr train prepare` first)") from None
        if self.meta.get("format") != FORMAT:
            raise ConfigError(f"{folder}: prepared with an incompatible format {self.meta.get('format')!r}")
        self.device = torch.device(device)
        self.scale = int(self.meta["scale"])
        self.patch = int(self.meta["patch"])

        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r").copy() for name in ("lr", "hr", "images", "patches")}
        digest = hashlib.sha256()  # as prepare() hashed them: an array changed or damaged since trains nothing
        for name, arr in arrays.items():
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arr).data)  # the buffer itself: no second copy of the data
        if "sha256:" + digest.hexdigest() != self.meta.get("hash"):
            raise ConfigError(f"{folder}: its arrays do not match the hash its meta.json records (changed or damaged "
                              "since `classsr train prepare`); prepare the data again into a new folder")

        def load(name: str) -> torch.Tensor:
            return torch.from_numpy(arrays.pop(name)).to(self.device)

        self.lr, self.hr = load("lr"), load("hr")
        self.images, self.patches = load("images"), load("patches").long()
        split = self.images[self.patches[:, 0], 4]
        self.train_index = (split == 0).nonzero(as_tuple=True)[0]
        self.val_index = (split == 1).nonzero(as_tuple=True)[0]
        p, s = self.patch, self.scale
        self._grid_lr = self._grid(p)
        self._grid_hr = self._grid(p * s)

    def image(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Prepared image ``i`` whole: ``(lr, hr)`` uint8 ``(h, w, 3)`` and ``(s*h, s*w, 3)`` on the CPU."""
        lr_off, hr_off, h, w = (int(v) for v in self.images[i, :4].tolist())
        s = self.scale
        lr = self.lr[lr_off : lr_off + h * w * 3].view(h, w, 3).cpu().numpy()
        hr = self.hr[hr_off : hr_off + h * w * s * s * 3].view(h * s, w * s, 3).cpu().numpy()
        return lr, hr

    @property
    def hash(self) -> str:
        return str(self.meta["hash"])

    def _grid(self, size: int) -> torch.Tensor:
        i = torch.arange(size, device=self.device)
        return torch.stack(torch.meshgrid(i, i, indexing="ij"))  # (2, size, size): row, col

    def _gather(
        self, buf: torch.Tensor, offset: torch.Tensor, width: torch.Tensor, y: torch.Tensor, x: torch.Tensor,
        grid: torch.Tensor, aug: torch.Tensor | None,
    ) -> torch.Tensor:
        rows, cols = self._augmented(grid, len(y), aug)
        pix = offset.view(-1, 1, 1) + ((y.view(-1, 1, 1) + rows) * width.view(-1, 1, 1) + x.view(-1, 1, 1) + cols) * 3
        idx = pix.unsqueeze(1) + torch.arange(3, device=self.device).view(1, 3, 1, 1)
        return buf[idx].float().div_(255.0)

    @staticmethod
    def _augmented(grid: torch.Tensor, n: int, aug: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, cols)`` ``(n, size, size)`` of each sample's crop, transposed and flipped by ``aug``."""
        size = grid.shape[-1]
        rows, cols = grid[0].expand(n, size, size), grid[1].expand(n, size, size)
        if aug is not None:
            t = aug[:, 0].view(-1, 1, 1).bool()
            rows, cols = torch.where(t, cols, rows), torch.where(t, rows, cols)
            rows = torch.where(aug[:, 1].view(-1, 1, 1).bool(), size - 1 - rows, rows)
            cols = torch.where(aug[:, 2].view(-1, 1, 1).bool(), size - 1 - cols, cols)
        return rows, cols

    def _records(
        self, index: torch.Tensor, generator: torch.Generator | None, augment: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(patch rows, their images' rows, augmentation draws or None)`` for patch rows ``index``."""
        index = index.to(self.device)
        rec = self.patches[index]
        aug = None
        if augment:
            aug = torch.randint(0, 2, (len(index), 3), generator=generator, device="cpu").to(self.device)
        return rec, self.images[rec[:, 0]], aug

    def lr_context(
        self, index: torch.Tensor, margin: int, generator: torch.Generator | None = None, augment: bool = False,
    ) -> torch.Tensor:
        """LR sub-images for patch rows ``index`` with ``margin`` pixels of their image around them,
        ``(B, 3, p + 2*margin, p + 2*margin)``: past the image's edge its edge pixels repeat, as the engine
        replicate-pads a frame. ``augment`` transposes and flips the whole crop (the sub-image stays in its
        centre), drawn as :meth:`batch` draws them. What a ``frame`` context classifier trains on."""
        rec, img, aug = self._records(index, generator, augment)
        rows, cols = self._augmented(self._grid(self.patch + 2 * margin), len(rec), aug)
        h, w = img[:, 2].view(-1, 1, 1), img[:, 3].view(-1, 1, 1)
        rows = torch.minimum(torch.clamp(rec[:, 1].view(-1, 1, 1) + rows - margin, min=0), h - 1)
        cols = torch.minimum(torch.clamp(rec[:, 2].view(-1, 1, 1) + cols - margin, min=0), w - 1)
        pix = img[:, 0].view(-1, 1, 1) + (rows * w + cols) * 3
        idx = pix.unsqueeze(1) + torch.arange(3, device=self.device).view(1, 3, 1, 1)
        return self.lr[idx].float().div_(255.0)

    def batch(
        self, index: torch.Tensor, generator: torch.Generator | None = None, augment: bool = False,
        jitter: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)`` sub-images for patch rows ``index``: ``(B, 3, p, p)`` and ``(B, 3, s*p, s*p)``.

        ``jitter`` moves each origin by a random offset in ``0 .. step-1`` on each axis (kept inside the image),
        so that, over the grid, every position of the image can start a sub-image (random crops).
        """
        rec, img, aug = self._records(index, generator, augment)
        y, x = rec[:, 1], rec[:, 2]
        if jitter:
            step = int(self.meta["step"])
            dy, dx = torch.randint(0, step, (2, len(index)), generator=generator, device="cpu").to(self.device)
            y = torch.minimum(y + dy, img[:, 2] - self.patch)
            x = torch.minimum(x + dx, img[:, 3] - self.patch)
        s = self.scale
        lr = self._gather(self.lr, img[:, 0], img[:, 3], y, x, self._grid_lr, aug)
        hr = self._gather(self.hr, img[:, 1], img[:, 3] * s, y * s, x * s, self._grid_hr, aug)
        return lr, hr

    def sample(
        self, pool: torch.Tensor, batch_size: int, generator: torch.Generator, jitter: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A random augmented batch drawn (with replacement) from the patch rows in ``pool``."""
        pick = torch.randint(0, len(pool), (batch_size,), generator=generator)
        return self.batch(pool[pick.to(pool.device)], generator, augment=True, jitter=jitter)
