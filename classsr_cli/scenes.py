"""A video's scenes: cuts found from the frames' luma, and what routing did in each scene.

:class:`SceneLog` watches the frames of a ``classsr video`` run as they are upscaled. A frame starts a new scene
where its mean absolute luma difference from the previous frame (MAFD, 8-bit levels, on a thumbnail) is at least
:data:`SCENE_CUT` and exceeds the previous frame's own MAFD by half as much: a jump, where steady motion (a pan, a
zoom) keeps the difference high but level (ffmpeg's ``select`` scene score compares the same two differences).
A fade to black (or to any flat frame) and back is a cut too: the first frame that is not flat (luma standard
deviation below :data:`FLAT`) after a flat one starts a scene, unless the scene so far holds flat frames only (a video
that fades in from black). The steps of a fade are not: a jump into or out of a flat frame is left to that rule, and
one whose frames differ by less than :data:`MATCHED` once their mean levels are matched is the same picture darker
or brighter (a fast fade, a change of exposure). A dissolve is not found.
Each scene gets the patches per class and the FLOPs its frames spent
against the heavy branch on whole frames, so a long video shows where routing saved and where it did not.

Numpy only; knows nothing about files or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from classsr_cli.config import CLASS_NAMES

__all__ = ["FLAT", "MATCHED", "SCENE_CUT", "Scene", "SceneLog", "matched_difference"]

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
#: Thumbnails are sampled at most this many pixels wide (every ``k``-th pixel of every ``k``-th row).
THUMB_WIDTH = 256
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The luma of an ``(H, W, 3)`` uint8 or uint16 frame, sampled at most :data:`THUMB_WIDTH` wide, in 8-bit
    levels (float32)."""
    k = max(1, -(-rgb.shape[1] // THUMB_WIDTH))
    luma = rgb[::k, ::k, :3].astype(np.float32) @ _LUMA
    return luma / 257 if rgb.dtype == np.uint16 else luma


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

    def prime(self, rgb: np.ndarray) -> None:
        """The frame before the next one :meth:`add` gets (a continued run's last), compared but not counted."""
        self._thumb = thumbnail(rgb)
        self._flat = bool(self._thumb.std() < FLAT)

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
        return self._starts

    def add(self, index: int, start: float, counts: tuple[int, int, int], used: int, whole: int) -> None:
        """Frame ``index`` (shown from ``start`` seconds; the last one :meth:`look` saw), upscaled with ``counts``
        patches per class and ``used`` FLOPs against ``whole`` for the heavy branch on the whole frame."""
        if self._starts or not self.scenes:
            self.scenes.append(Scene(first=index, start=start))
            self.flat_scene = True
        self.flat_scene = self.flat_scene and self._flat
        self.scenes[-1].add(counts, used, whole)

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
