"""classsr_cli.scenes: cuts found from the frames' luma, and routing's counts and FLOPs per scene."""

from __future__ import annotations

import numpy as np

from classsr_cli.scenes import FLAT, SCENE_CUT, THUMB_WIDTH, Scene, SceneLog, thumbnail


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


def fade(seed: int, frames: int, into: bool, step: int = 1) -> list[np.ndarray]:
    """A picture panned ``step`` pixels a frame, fading to black (``into`` False) or from it over ``frames`` frames."""
    out = []
    for k in range(frames):
        level = (k + 1) / (frames + 1) if into else 1 - (k + 1) / (frames + 1)
        out.append(np.round(picture(seed)[:, k * step : k * step + 64] * level).astype(np.uint8))
    return out


def test_a_fade_through_black_is_a_cut_and_a_fade_in_from_black_is_not() -> None:
    """No frame of a fade jumps: the scene after a fade to black and back starts at its first frame that is not
    flat; a video that starts black and fades in is one scene; a black held between two hard cuts ends the scene before
    it; the steps of a fast fade and a change of exposure, the same picture darker or brighter, are not cuts; a dim,
    textured frame is not flat."""
    rng = np.random.default_rng(0)
    black = [np.clip(rng.normal(1, 0.5, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(3)]  # encoder noise
    frames = [*clip((1, 4, 1)), *fade(1, 8, into=False), *black, *fade(2, 8, into=True), *clip((2, 4, 1))]
    log = run(frames)
    level = [float(thumbnail(f).std()) for f in frames]
    first = next(i for i in range(15, len(frames)) if level[i] >= FLAT)  # the first frame of the fade-in not flat
    assert [s.first for s in log.scenes] == [0, first] and first >= 15
    assert len(run([*black, *fade(3, 6, into=True), *clip((3, 3, 1))]).scenes) == 1
    assert [s.first for s in run([*clip((4, 3, 1)), *black, *clip((5, 3, 1))]).scenes] == [0, 6]
    fast = [*clip((1, 3, 1)), *fade(1, 2, into=False), *black[:1], *fade(2, 2, into=True), *clip((2, 3, 1))]
    assert [s.first for s in run(fast).scenes] == [0, 6]  # steps of a third of the levels: not jumps
    darker = [np.round(f * 0.6).astype(np.uint8) for f in clip((7, 3, 0))]
    assert len(run([*clip((7, 3, 0)), *darker]).scenes) == 1  # a change of exposure
    dim = [np.round(f * 0.2).astype(np.uint8) for f in clip((6, 4, 1))]
    assert all(thumbnail(f).std() > FLAT for f in dim)
    # Stopped anywhere, in the black or in the fade, and continued: the same scenes.
    for stop in (13, 15, first, first + 1):
        again = SceneLog.restore(run(frames[:stop]).state())
        again.prime(frames[stop - 1])
        run(frames[stop:], again, first=stop)
        assert [s.first for s in again.scenes] == [0, first], stop


def film(*parts: tuple[int, int] | tuple[int, int, int], step: int = 1, width: int = 256) -> list[np.ndarray]:
    """Frames ``width`` wide of one steady pan (``step`` pixels a frame) over pictures: ``(seed, frames)`` holds a
    picture, ``(seed, seed2, frames)`` dissolves from the first to the second over that many frames."""
    out, x = [], 0
    pictures: dict[int, np.ndarray] = {}

    def view(seed: int) -> np.ndarray:
        full = pictures.setdefault(seed, picture(seed, height=96, width=width + 200 * step + 16)).astype(np.float64)
        return full[:, x : x + width]

    for part in parts:
        for k in range(part[-1]):
            if len(part) == 2:
                out.append(view(part[0]).astype(np.uint8))
            else:
                mix = (k + 1) / (part[-1] + 1)
                out.append(np.round(view(part[0]) * (1 - mix) + view(part[1]) * mix).astype(np.uint8))
            x += step
    return out


def test_a_dissolve_is_one_cut_found_within_it_and_its_frames_are_moved_to_the_new_scene() -> None:
    """A dissolve of 2 to 24 frames on stills, of 2 to 12 during a pan, starts one scene at a frame within it (before,
    none: the frames differ little one from the next); the frames of the old scene from there are moved to the new one,
    with their counts and FLOPs, so the scenes still add up to the run. A pan, the same picture brightening (a change
    of exposure) and a fade through black are not dissolves."""
    for step, n in [(0, 2), (0, 6), (0, 12), (0, 24), (1, 2), (1, 6), (1, 12)]:  # (long ones in a pan: not all)
        frames = film((1, 10), (1, 2, n), (2, 10), step=step)
        log = run(frames)
        assert log.scenes[0].first == 0 and len(log.scenes) == 2, (step, n)
        second = log.scenes[1]
        assert 10 <= second.first <= 10 + n, (step, n)
        assert second.frames == len(frames) - second.first and second.counts == [
            sum(range(second.first, len(frames))), second.frames, 0]
        assert (second.used, second.whole) == (sum(10 + i for i in range(second.first, len(frames))),
                                               100 * second.frames)  # fmt: skip
        assert sum(s.frames for s in log.scenes) == len(frames)
    assert len(run(film((3, 60), step=2)).scenes) == 1  # a pan
    panned = film((4, 24), step=1)
    ramp = [np.clip(np.round(f * (1 + 0.06 * max(0, k - 8))), 0, 255).astype(np.uint8) for k, f in enumerate(panned)]
    assert len(run(ramp).scenes) == 1  # an exposure ramp, to twice the levels


def test_a_dissolve_in_a_continued_run_is_found_after_the_stop() -> None:
    """A run stopped before a dissolve and continued finds it as a run that never stopped does."""
    frames = film((1, 10), (1, 2, 6), (2, 10), step=1)
    whole = run(frames)
    again = SceneLog.restore(run(frames[:5]).state())
    again.prime(frames[4])
    run(frames[5:], again, first=5)
    assert [s.to_dict() for s in again.scenes] == [s.to_dict() for s in whole.scenes]
