"""Dense routing labels: what each branch costs in quality on every cell of every training photo.

The per-sub-image deficits (``deficits.npy``) come from each branch run on a 32x32 sub-image alone: the heavy
branch's zero padding then spoils the sub-image's border, and there is one label per sub-image of the grid.
Here each branch runs once on every prepared image **whole**, its squared error on Y (BT.601, 8-bit levels²,
output clamped to [0, 1], as PSNR-Y is measured) is kept per LR pixel (the mean over its ``s x s`` HR block),
and the label of a classifier window anywhere in the image is the mean over the cell the window is centred on
(the ``step`` x ``step`` LR pixels the engine routes): windows at every pixel position, labels as the engine
routes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from classsr_cli.metrics import Y_WEIGHTS
from classsr_cli.models.classsr import DEFICIT_EPS
from classsr_cli.train.data import PatchData

__all__ = ["CellTargets", "error_maps"]

@torch.no_grad()
def error_maps(branches: Sequence[nn.Module], data: PatchData, device: torch.device) -> np.ndarray:
    """``(len(branches), pixels)`` float16: each branch's squared Y error per LR pixel of every prepared image,
    image ``i``'s pixels at ``images[i, 0] // 3`` on, row-major (the layout of ``data.lr`` without channels)."""
    total = int(data.lr.numel()) // 3
    out = np.zeros((len(branches), total), dtype=np.float16)
    w = torch.tensor(Y_WEIGHTS, device=device).view(1, 3, 1, 1)  # the +16 of Y cancels in errors
    s = data.scale
    for i in range(len(data.images)):
        lr, hr = data.image(i)
        x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float().div(255).to(device)
        y_hr = (torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].float().div(255).to(device) * w).sum(1)
        start = int(data.images[i, 0]) // 3
        for k, net in enumerate(branches):
            y_sr = (net(x).clamp(0, 1) * w).sum(1)
            err = F.avg_pool2d((y_sr - y_hr).square()[None], s)[0, 0]
            out[k, start : start + err.numel()] = err.flatten().cpu().numpy().astype(np.float16)
    return out


class CellTargets:
    """Classifier windows anywhere in the prepared images with their labels (see the module docstring).

    The label of the ``patch`` x ``patch`` window at LR ``(y, x)`` is ``log10(DEFICIT_EPS + max(0, d_k))`` for
    the light and medium branch, ``d_k`` the mean over its centred ``step`` x ``step`` cell of the branch's error
    minus the heavy branch's; the third column is ``log10(DEFICIT_EPS)`` (heavy loses nothing to itself), or
    with ``budget`` ``log10(DEFICIT_EPS + e_heavy)``, the heavy branch's own mean error on the cell.

    Args:
        data: prepared data (its images and LR pixels).
        errors: :func:`error_maps` of the light, medium and heavy branch.
        step: the engine's cell side (the classifier's window is centred on its cell).
        split: 0 for the training images, 1 for the held-out ones.
        budget: the third column as ``budget`` routing regresses it.
    """

    def __init__(self, data: PatchData, errors: np.ndarray, step: int, split: int, *, budget: bool = False) -> None:
        p = data.patch
        if step > p or (p - step) % 2:
            raise ValueError(f"the cell ({step}) must fit the window ({p}) centred")
        self.data, self.patch, self.device = data, p, data.device
        m = (p - step) // 2
        maps, rows = [], []
        offset = 0
        imgs = data.images.cpu()
        for i in range(len(imgs)):
            lr_off, _, h, w, sp, _ = (int(v) for v in imgs[i].tolist())
            if sp != split or h < p or w < p:
                continue
            start = lr_off // 3
            e = torch.from_numpy(errors[:, start : start + h * w].astype(np.float32)).view(3, h, w)
            th, tw = h - p + 1, w - p + 1
            d = torch.stack([e[0] - e[2], e[1] - e[2], e[2]])
            cell = F.avg_pool2d(d[None], step, stride=1)[0, :, m : m + th, m : m + tw]
            t = torch.log10(DEFICIT_EPS + cell.clamp_min(0))
            if not budget:
                t[2] = float(np.log10(DEFICIT_EPS))
            maps.append(t.reshape(3, -1))
            rows.append((lr_off, w, th, tw, offset))
            offset += th * tw
        if not rows:
            raise ValueError(f"no prepared image of split {split} holds a {p}x{p} window")
        self.targets = torch.cat(maps, 1).t().contiguous().to(self.device)  # (windows, 3)
        self.rows = torch.tensor(rows, dtype=torch.long, device=self.device)  # lr_off, width, th, tw, offset
        self.weights = self.rows[:, 2].double().cpu() * self.rows[:, 3].double().cpu()

    @property
    def windows(self) -> int:
        return int(self.targets.shape[0])

    def gather(self, img: torch.Tensor, y: torch.Tensor, x: torch.Tensor, aug: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """LR windows ``(B, 3, p, p)`` at ``(y, x)`` of the images ``img`` (rows of this set) and their labels."""
        r = self.rows[img]
        lr = self.data._gather(self.data.lr, r[:, 0], r[:, 1], y, x, self.data._grid_lr, aug)
        return lr, self.targets[r[:, 4] + y * r[:, 3] + x]

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows drawn uniformly over every window position of the set, randomly flipped/transposed (the
        labels are means over the window's centre: the same for every flip)."""
        img = torch.multinomial(self.weights, n, replacement=True, generator=generator).to(self.device)
        u = torch.rand((2, n), generator=generator, dtype=torch.float64).to(self.device)
        r = self.rows[img]
        y = (u[0] * r[:, 2]).long().clamp_max(r[:, 2] - 1)
        x = (u[1] * r[:, 3]).long().clamp_max(r[:, 3] - 1)
        aug = torch.randint(0, 2, (n, 3), generator=generator).to(self.device)
        return self.gather(img, y, x, aug)

    def grid(self, stride: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every window at ``stride`` on every image, as ``(img, y, x)`` chunks of at most 256 (validation)."""
        img, ys, xs = [], [], []
        for j, (_, _, th, tw, _) in enumerate(self.rows.tolist()):
            yy, xx = torch.meshgrid(torch.arange(0, th, stride), torch.arange(0, tw, stride), indexing="ij")
            img.append(torch.full((yy.numel(),), j))
            ys.append(yy.flatten())
            xs.append(xx.flatten())
        cat = [torch.cat(v).to(self.device) for v in (img, ys, xs)]
        return list(zip(*(v.split(256) for v in cat), strict=True))
