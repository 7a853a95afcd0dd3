"""A video's scenes: cuts found from the frames' luma, and what routing did in each scene.

:class:`SceneLog` watches the frames of a ``classsr video`` run as they are upscaled. A frame starts a new scene
where its mean absolute luma difference from the previous frame (MAFD, 8-bit levels, on a thumbnail) is at least
:data:`SCENE_CUT` and exceeds the previous frame's own MAFD by half as much: a jump, where steady motion (a pan, a
zoom) keeps the difference high but level (ffmpeg's ``select`` scene score compares the same two differences).
A fade to black (or to any flat frame) and back is a cut too: the first frame that is not flat (luma standard
deviation below :data:`FLAT`) after a flat one starts a scene, unless the scene so far holds flat frames only (a video
that fades in from black). The steps of a fade are not: a jump into or out of a flat frame is left to that rule, and
one whose frames differ by less than :data:`MATCHED` once their mean levels are matched is the same picture darker
or brighter (a fast fade, a change of exposure). A dissolve is a cut too, found once it is seen through: frames ``2k``
apart (``k`` in :data:`HALF_WINDOWS`) that differ by at least half :data:`SCENE_CUT` (and are not flat, nor correlated
as a picture and itself in another exposure are: :data:`SAME`), whose middle frame is a mix of the two (the least-
squares blend of them, a quarter to three quarters of the way, explains it within :data:`BLEND` of their difference,
on thumbnails a quarter of the size) start a scene at that middle frame, its frames so far moved to it. A pan or a
zoom between two frames that far apart leaves a larger residue. Windows start after the last scene's start was found
(after a dissolve, a window's length later), so a long dissolve is one cut; the frames a quarter and three quarters of
the way must be blends too. Frames under 128 pixels wide (:data:`MIN_SMALL`) are not looked at.
Each scene gets the patches per class and the FLOPs its frames spent
against the heavy branch on whole frames, so a long video shows where routing saved and where it did not.

Numpy only; knows nothing about files or the CLI.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classsr_cli.config import CLASS_NAMES

__all__ = ["BLEND", "FLAT", "HALF_WINDOWS", "MATCHED", "SAME", "SCENE_CUT", "Scene", "SceneLog", "blend_residue",
           "correlation", "matched_difference", "small"]

#: A frame starts a scene where its MAFD (luma, 8-bit levels) is at least this, and at least half this more than
#: the previous frame's. Measured on 60 training photos at 320x240 (``scripts/scene_cut.py``): two different photos
#: differ by 29.1 levels at the 1st percentile, 38.0 at the 5th and 64.0 at the median; a photo from itself moved 4
#: pixels by 15.5 (median) to 29.4 (99th percentile), moved 16 pixels by 28.5 (median), which steady motion then
#: keeps level.
SCENE_CUT = 30.0
#: A frame is flat (the black of a fade, a uniform card) where its thumbnail's luma standard deviation is below this
#: (8-bit levels). Measured on the same photos (``scripts/scene_cut.py``): as they are, 17.9 at the least; darkened to
#: a fifth of their levels (a dim night shot) 3.6; to a tenth 1.8; to a twentieth, the last frames of a fade, 0.9.
FLAT = 1.5
#: A jump is a cut only where the two frames, the previous one scaled to the other's mean level, still differ by this
#: much (MAFD, 8-bit levels). Measured on the same photos (``scripts/scene_cut.py``): two different photos so matched
#: differ by 23.6 levels at the 1st percentile; a photo and itself at three quarters or half of its levels (steps of a
#: fast fade) by 0.18 and 0.24 at the 99th percentile.
MATCHED = 10.0
#: A dissolve's middle frame is the least-squares blend of the frames ``2k`` apart around it within this share of their
#: MAFD (on thumbnails a quarter of the size). Measured on 60 training photos at 320x240 (``scripts/scene_cut.py``):
#: the middle of a dissolve between two photos leaves 0.001 still, 0.11 (median; 0.19 at the 99th percentile) with both
#: panned 8 pixels across the window and 0.19 (0.33) with 16; of the pans and zooms whose ends the test weighs (MAFD at
#: least half SCENE_CUT, correlation below SAME), a pan leaves 0.43 at the least, a zoom 0.32.
BLEND = 0.25
#: A dissolve's two ends are different pictures: their levels' correlation is below this (on thumbnails a quarter of the
#: size), and they differ by at least half SCENE_CUT. Measured on 60 training photos at 320x240
#: (``scripts/scene_cut.py``): two different photos 0.48 at the 99th percentile; a photo and itself moved 4 pixels 0.90
#: at the 1st, 8 pixels 0.70 (as within a fade or a change of exposure, which the blend test alone takes for a
#: dissolve), 16 pixels 0.38.
SAME = 0.5
#: Dissolves are looked for in frames whose quarter-size thumbnail is at least this wide (frames of 128 pixels or more):
#: in a smaller one a pan of a pixel or two is the blend of its two ends.
MIN_SMALL = 32
#: Half the frames between the two ends of the windows a dissolve is looked for in: dissolves of 2 to 64 frames.
HALF_WINDOWS = (1, 2, 4, 8, 16, 32)
#: Thumbnails are sampled at most this many pixels wide (every ``k``-th pixel of every ``k``-th row).
THUMB_WIDTH = 256
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The luma of an ``(H, W, 3)`` uint8 or uint16 frame, sampled at most :data:`THUMB_WIDTH` wide, in 8-bit
    levels (float32)."""
    k = max(1, -(-rgb.shape[1] // THUMB_WIDTH))
    luma = rgb[::k, ::k, :3].astype(np.float32) @ _LUMA
    return luma / 257 if rgb.dtype == np.uint16 else luma


def small(thumb: np.ndarray) -> np.ndarray:
    """A thumbnail at a quarter of its size (means of 4x4 blocks): a dissolve's test, steadier against motion."""
    h, w = thumb.shape[0] // 4 * 4, thumb.shape[1] // 4 * 4
    if not (h and w):
        return thumb
    return thumb[:h, :w].reshape(h // 4, 4, w // 4, 4).mean(axis=(1, 3))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The correlation coefficient of two thumbnails' levels: about 1 for a picture and itself darker, brighter or a
    little moved (a fade, a change of exposure), about 0 for two different pictures."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-6))


def blend_residue(a: np.ndarray, mid: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How ``mid`` is a blend of ``a`` and ``b`` (float thumbnails): the least-squares share ``alpha`` of the way from
    ``a`` to ``b``, and the mean absolute residue of ``a + alpha (b - a)`` as a share of ``a``'s and ``b``'s MAFD."""
    d = b - a
    alpha = float(((mid - a) * d).sum() / max(float((d * d).sum()), 1e-6))
    return alpha, float(np.abs(mid - a - alpha * d).mean()) / max(float(np.abs(d).mean()), 1e-6)


def matched_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The MAFD of thumbnails ``a`` and ``b`` with ``b`` scaled to ``a``'s mean level: about 0 for a picture and itself
    darker or brighter, as within a fade."""
    return float(np.abs(a - b * (a.mean() / max(float(b.mean()), 1e-6))).mean())


@dataclass
class Scene:
    """One scene: its first frame (index in the run, 0 = the first frame upscaled), its start (seconds of the
    output), how many frames, the patches per class and the FLOPs spent (``used``) against the heavy branch on its
    whole frames (``whole``)."""

    first: int
    start: float
    frames: int = 0
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    used: int = 0
    whole: int = 0

    def add(self, counts: tuple[int, int, int] | list[int], used: int, whole: int, frames: int = 1) -> None:
        """Count ``frames`` more frames in this scene, with their patches per class and FLOPs."""
        self.frames += frames
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.used += used
        self.whole += whole

    @property
    def saved_vs_whole(self) -> float:
        return 1.0 - self.used / self.whole if self.whole else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"first_frame": self.first, "frames": self.frames, "start": round(self.start, 6),
                "patches": dict(zip(CLASS_NAMES, self.counts, strict=True)),
                "flops": {"used": self.used, "whole": self.whole, "saved_vs_whole": round(self.saved_vs_whole, 6)}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        return cls(first=int(d["first_frame"]), start=float(d["start"]), frames=int(d["frames"]),
                   counts=[int(d["patches"][k]) for k in CLASS_NAMES], used=int(d["flops"]["used"]),
                   whole=int(d["flops"]["whole"]))


class SceneLog:
    """The scenes of a run, frame by frame, in order: :meth:`look` at each frame before it is upscaled (whether it
    starts a scene), then :meth:`add` what its upscale did. ``scenes`` and ``mafd`` continue a stopped run
    (:meth:`state`); :meth:`prime` then shows it the last frame it had seen."""

    def __init__(self, scenes: list[Scene] | None = None, mafd: float = 0.0, cut: float = SCENE_CUT, *,
                 flat_scene: bool = False) -> None:
        self.scenes: list[Scene] = list(scenes or [])
        self.mafd = mafd
        self.cut = cut
        self.flat_scene = flat_scene  # the last scene holds flat frames only (so far)
        self._thumb: np.ndarray | None = None
        self._starts = False  # whether the frame looked at last starts a scene
        self._flat = False  # whether it is flat
        # The last frames looked at, for dissolves: small thumbnails, whether flat, and (once added) what add() got.
        self._recent: deque[tuple[np.ndarray, bool]] = deque(maxlen=2 * HALF_WINDOWS[-1] + 1)
        self._added: deque[tuple[int, float, tuple[int, int, int], int, int]] = deque(maxlen=2 * HALF_WINDOWS[-1])
        self._quiet = 0  # frames looked at since the last scene's start was found (windows start after it)

    def prime(self, rgb: np.ndarray) -> None:
        """The frame before the next one :meth:`add` gets (a continued run's last), compared but not counted."""
        self._thumb = thumbnail(rgb)
        self._flat = bool(self._thumb.std() < FLAT)
        self._recent.clear()
        self._added.clear()
        self._recent.append((small(self._thumb), self._flat))
        self._quiet = 0

    def look(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb``, the frame after the last one seen, starts a scene (the first frame does); it becomes the
        last one seen, and :meth:`add` counts it there."""
        thumb = thumbnail(rgb)
        previous, self._thumb = self._thumb, thumb
        was_flat, self._flat = self._flat, bool(thumb.std() < FLAT)
        if previous is None or previous.shape != thumb.shape:
            self.mafd, self._starts = 0.0, True
        else:
            mafd = float(np.abs(thumb - previous).mean())
            jump = (mafd >= self.cut and mafd - self.mafd >= self.cut / 2 and not (was_flat or self._flat)
                    and matched_difference(thumb, previous) >= MATCHED)
            self._starts = jump or (was_flat and not self._flat and not self.flat_scene)  # out of a fade
            self.mafd = mafd
        if previous is not None and previous.shape != thumb.shape:
            self._recent.clear()
            self._added.clear()
        self._recent.append((small(thumb), self._flat))
        self._quiet = 0 if self._starts else self._quiet + 1
        if not self._starts:
            self._dissolve()
        return self._starts

    def _dissolve(self) -> None:
        """Where the frames looked at show a dissolve seen through, its middle frame starts a scene: the frames of the
        last scene from it on are moved to a new one (the frame just looked at joins it in :meth:`add`)."""
        recent, t = self._recent, len(self._recent) - 1
        if recent[t][0].shape[1] < MIN_SMALL:  # a tiny frame: a pan of a pixel there is a blend of its two ends
            return
        for k in HALF_WINDOWS:
            if 2 * k > min(t, self._quiet - 1) or k > len(self._added):  # the window starts after the last start
                break
            (a, a_flat), (mid, _), (b, b_flat) = recent[t - 2 * k], recent[t - k], recent[t]
            if a_flat or b_flat or float(np.abs(a - b).mean()) < self.cut / 2 or correlation(a, b) >= SAME:
                continue
            alpha, residue = blend_residue(a, mid, b)
            if not (0.25 <= alpha <= 0.75 and residue <= BLEND):
                continue
            if k >= 2:  # the frames a quarter and three quarters of the way are blends too, in order
                (lo, r_lo), (hi, r_hi) = (blend_residue(a, recent[t - j][0], b) for j in (3 * k // 2, k // 2))
                if not (lo < alpha < hi and max(r_lo, r_hi) <= BLEND):
                    continue
            moved = list(self._added)[-k:]  # the middle frame and those after it, added to the last scene
            last = self.scenes[-1]
            scene = Scene(first=moved[0][0], start=moved[0][1])
            for _, _, counts, used, whole in moved:
                scene.add(counts, used, whole)
                last.add([-c for c in counts], -used, -whole, frames=-1)
            self.scenes.append(scene)
            self.flat_scene, self._quiet = False, -2 * k  # windows start past this one's length: a long dissolve
            return  # goes on after its middle, and its rest would be one again

    def add(self, index: int, start: float, counts: tuple[int, int, int], used: int, whole: int) -> None:
        """Frame ``index`` (shown from ``start`` seconds; the last one :meth:`look` saw), upscaled with ``counts``
        patches per class and ``used`` FLOPs against ``whole`` for the heavy branch on the whole frame."""
        if self._starts or not self.scenes:
            self.scenes.append(Scene(first=index, start=start))
            self.flat_scene = True
        self.flat_scene = self.flat_scene and self._flat
        self.scenes[-1].add(counts, used, whole)
        self._added.append((index, start, counts, used, whole))

    def state(self) -> dict[str, Any]:
        """What a stopped run keeps to continue: the scenes so far, the last frame's MAFD, whether the last scene
        holds flat frames only."""
        return {"scenes": [s.to_dict() for s in self.scenes], "mafd": self.mafd, "flat_scene": self.flat_scene}

    @classmethod
    def restore(cls, state: dict[str, Any] | None) -> SceneLog:
        if not state:
            return cls()
        return cls([Scene.from_dict(d) for d in state["scenes"]], float(state["mafd"]),
                   flat_scene=bool(state.get("flat_scene", False)))  # absent: a state from before fades were found
