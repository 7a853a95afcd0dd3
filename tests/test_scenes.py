"""classsr_cli.scenes: cuts found from the frames' luma, and routing's counts and FLOPs per scene."""

from __future__ import annotations

import numpy as np

from classsr_cli.scenes import SCENE_CUT, THUMB_WIDTH, Scene, SceneLog, thumbnail


def picture(seed: int, height: int = 48, width: int = 120) -> np.ndarray:
    """A seeded 'photo': smooth blobs with some texture, uint8 RGB."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 16 + 2, width // 16 + 2, 3))
    smooth = np.kron(coarse, np.ones((16, 16, 1)))[:height, :width]
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def clip(*scenes: tuple[int, int, int]) -> list[np.ndarray]:
    """Frames of 64 columns: for each ``(seed, frames, step)``, a picture panned ``step`` pixels a frame."""
    return [picture(seed)[:, k * step : k * step + 64] for seed, n, step in scenes for k in range(n)]


def run(frames: list[np.ndarray], log: SceneLog | None = None, first: int = 0) -> SceneLog:
    log = log or SceneLog()
    for i, f in enumerate(frames, first):
        log.look(f)
        log.add(i, i / 10, (i, 1, 0), used=10 + i, whole=100)
    return log


def test_a_thumbnail_is_at_most_its_width_in_8_bit_levels_whatever_the_depth() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (300, 1000, 3), dtype=np.uint8)
    small = thumbnail(rgb)
    assert small.shape == (75, 250) and small.shape[1] <= THUMB_WIDTH and small.dtype == np.float32
    assert np.allclose(thumbnail(rgb.astype(np.uint16) * 257), small, atol=1e-3)
    assert thumbnail(rgb[:10, :40]).shape == (10, 40)  # small frames whole


def test_cuts_start_scenes_and_steady_motion_does_not() -> None:
    """A cut between two pictures starts a scene, after stills or during a pan; a pan, even fast, does not, nor a
    picture that starts to move; each scene sums its frames' counts and FLOPs."""
    log = run(clip((1, 4, 0), (2, 5, 1), (3, 4, 6), (4, 3, 0)))
    assert [(s.first, s.frames) for s in log.scenes] == [(0, 4), (4, 5), (9, 4), (13, 3)]
    second = log.scenes[1]
    assert second.start == 0.4 and second.counts == [4 + 5 + 6 + 7 + 8, 5, 0]
    assert (second.used, second.whole) == (sum(10 + i for i in range(4, 9)), 500)
    assert second.saved_vs_whole == 1 - second.used / 500
    assert len(run(clip((5, 3, 0), (5, 8, 3))).scenes) == 1  # a still that starts to pan: one scene
    assert len(run(clip((6, 12, 4))).scenes) == 1


def test_the_cut_is_a_jump_in_the_difference() -> None:
    """The difference of the frame at a cut is at least SCENE_CUT; one below it, or one at a steady level, is not a
    cut."""
    frames = clip((7, 2, 0), (8, 2, 0))
    probe = SceneLog()
    probe.look(frames[1])
    probe.look(frames[2])
    assert probe.mafd >= SCENE_CUT
    assert len(run(frames, SceneLog(cut=probe.mafd + 1)).scenes) == 1
    assert len(run(frames, SceneLog(cut=probe.mafd)).scenes) == 2


def test_a_continued_run_finds_the_scenes_of_one_run() -> None:
    """A stopped run's state, restored and shown its last frame, goes on to the same scenes as a run that never
    stopped, a cut just after the stop included; a state from before scenes were kept starts afresh."""
    frames = clip((1, 3, 1), (2, 4, 2), (3, 3, 1))
    whole = run(frames)
    for stop in (1, 3, 5):
        before = run(frames[:stop])
        state = before.state()
        again = SceneLog.restore(state)
        again.prime(frames[stop - 1])
        run(frames[stop:], again, first=stop)
        assert [s.to_dict() for s in again.scenes] == [s.to_dict() for s in whole.scenes], stop
    assert SceneLog.restore(None).scenes == [] and Scene.from_dict(whole.scenes[1].to_dict()) == whole.scenes[1]
