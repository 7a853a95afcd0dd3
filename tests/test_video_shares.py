"""`classsr video` under torchrun (`classsr_cli.video.upscale_video(world=...)`): each rank upscales a share of the
frames into chunks of its own and rank 0 joins them; the output is the one process's.

The in-process tests run the ranks one after the other (their barrier a no-op): the later rank to run is rank 0, which
joins. One test runs torchrun itself, two CPU ranks over gloo.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from classsr_cli.distributed import World
from classsr_cli.errors import ConfigError
from classsr_cli.io.video import EncodeOptions, VideoReader, ffmpeg_exe, probe
from classsr_cli.video import TemporalOptions, resume_folder, upscale_video

EXACT = EncodeOptions(codec="ffv1", pix_fmt="yuv444p")
STEADY = TemporalOptions(hysteresis=0.0)


def picture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (6, 8, 3))
    smooth = np.kron(coarse, np.ones((8, 8, 1)))[:40, :56]
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def clip(path: Path, scenes: list[tuple[int, int]], audio: bool = True) -> Path:
    """A clip of 56x40 frames at 10 frames/s: for each ``(seed, frames)`` a picture panned a pixel a frame (a cut
    between them), with a tone."""
    frames = [np.roll(picture(seed), k, axis=1) for seed, n in scenes for k in range(n)]
    sound = ["-f", "lavfi", "-i", f"sine=duration={len(frames) / 10}"] if audio else []
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "56x40", "-r", "10",
                    "-i", "-", *sound, "-c:v", "ffv1", "-shortest", str(path)],
                   input=b"".join(f.tobytes() for f in frames), check=True, timeout=60)  # fmt: skip
    return path


def same_video(a: Path, b: Path) -> bool:
    with VideoReader(probe(a)) as x, VideoReader(probe(b)) as y:
        pairs = list(zip(x, y, strict=True))
    return all(np.array_equal(p.rgb, q.rgb) and p.pts == q.pts for p, q in pairs)


@pytest.fixture
def ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranks run one after the other in this process: their barrier waits for nobody."""
    from classsr_cli import distributed

    monkeypatch.setattr(distributed, "barrier", lambda w: None)


@pytest.mark.slow
@pytest.mark.parametrize("cut", [4, 6, 9])
def test_shares_joined_are_the_one_process_video(tmp_path: Path, tiny_model: torch.nn.Module, ranks: None,
                                                 cut: int) -> None:
    """Two shares of 12 frames (0-5, 6-11), with a cut before, at or after the boundary: the joined video and class map
    have the one process's frames, times, audio, counts and FLOPs, and its scenes (a scene across the boundary is
    one)."""
    src = clip(tmp_path / "in.mkv", [(1, cut), (2, 12 - cut)])
    one = upscale_video(tiny_model, src, tmp_path / "one.mkv", options=EXACT, temporal=STEADY, classmap=True)
    out = tmp_path / "two.mkv"
    kw: dict[str, Any] = {"options": EXACT, "temporal": STEADY, "classmap": True}
    mine = upscale_video(tiny_model, src, out, world=World(1, 2), **kw)
    assert (mine.frames, not out.exists()) == (6, True)  # rank 1: its share, nothing joined
    assert sorted(p.name for p in resume_folder(out).iterdir()) == ["rank1-of-2"]
    joined = upscale_video(tiny_model, src, out, world=World(0, 2), **kw)
    assert same_video(out, tmp_path / "one.mkv") and not resume_folder(out).exists()
    assert same_video(tmp_path / "two_classmap.mkv", tmp_path / "one_classmap.mkv")
    assert (joined.frames, joined.counts, joined.flops) == (12, one.counts, one.flops)
    assert [s.to_dict() for s in joined.scenes] == [s.to_dict() for s in one.scenes]
    assert len(joined.scenes) == 2
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert "Audio:" in text


@pytest.mark.slow
def test_telecined_film_shares_are_film_frames(tmp_path: Path, tiny_model: torch.nn.Module, ranks: None) -> None:
    """--ivtc under torchrun: the 90 interlaced frames of a telecined film are 72 film frames, shared 36 and 36 (not
    45 and 27, as its packets would share them), and the joined video is the one process's."""
    from classsr_cli.io.video import IVTC

    src = tmp_path / "film.mpg"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24000/1001:"
                    "duration=3", "-vf", "setfield=tff,telecine=first_field=top:pattern=23", "-c:v", "mpeg2video",
                    "-flags", "+ilme+ildct", "-q:v", "2", str(src)], check=True, timeout=60)  # fmt: skip
    kw: dict[str, Any] = {"options": EXACT, "temporal": STEADY, "deinterlace": IVTC}
    one = upscale_video(tiny_model, src, tmp_path / "one.mkv", **kw)
    out = tmp_path / "two.mkv"
    mine = upscale_video(tiny_model, src, out, world=World(1, 2), **kw)
    joined = upscale_video(tiny_model, src, out, world=World(0, 2), **kw)
    assert (one.frames, mine.frames, joined.frames) == (72, 36, 72)
    assert same_video(out, tmp_path / "one.mkv") and (joined.counts, joined.flops) == (one.counts, one.flops)


@pytest.mark.slow
def test_a_stopped_share_continues(tmp_path: Path, tiny_model: torch.nn.Module, ranks: None) -> None:
    """A rank stopped mid-share keeps its chunks; run again, it goes on from them; pictures out too."""
    src = clip(tmp_path / "in.mkv", [(1, 5), (2, 7)], audio=False)
    one = upscale_video(tiny_model, src, tmp_path / "one" / "%03d.png", temporal=STEADY)
    out = tmp_path / "two" / "%03d.png"

    def stop(done: int, total: int | None) -> None:
        assert total == 6  # this share's frames
        if done == 4:
            raise KeyboardInterrupt

    kw: dict[str, Any] = {"temporal": STEADY, "chunk_frames": 2}
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, src, out, progress=stop, world=World(1, 2), **kw)
    state = json.loads((resume_folder(out) / "rank1-of-2" / "state.json").read_text())
    assert state["totals"]["frames"] == 10 and state["recipe"]["share"] == {"rank": 1, "ranks": 2, "frames": [6, None]}
    from classsr_cli.video import kept_frames

    assert kept_frames(out, World(1, 2)) == 4 and kept_frames(out, World(0, 2)) == 0 == kept_frames(out)
    seen: list[int] = []
    again = upscale_video(tiny_model, src, out, progress=lambda d, t: seen.append(d), world=World(1, 2), **kw)
    assert seen == [1, 2] and again.resumed == 10
    joined = upscale_video(tiny_model, src, out, world=World(0, 2), **kw)
    assert joined.counts == one.counts
    from PIL import Image

    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"{k:03d}.png" for k in range(1, 13)] == sorted(p.name for p in out.parent.iterdir())
    for name in names:
        assert np.array_equal(np.asarray(Image.open(out.parent / name)), np.asarray(Image.open(tmp_path / "one" / name)))


def test_shares_refuse_class_hysteresis_and_what_chunks_cannot_carry(tmp_path: Path, tiny_model: torch.nn.Module,
                                                          tiny_cfg: Any) -> None:
    """The paper models' class hysteresis carries classes from frame to frame: refused under torchrun, before any frame
    (the tiny model is a paper-preset model: its margin applies unless it is 0)."""
    src = tmp_path / "none.mkv"
    with pytest.raises(ConfigError, match=r"--hysteresis carries classes from frame to frame: under torchrun give "
                                          r"--hysteresis 0"):
        upscale_video(tiny_model, src, tmp_path / "o.mkv", temporal=TemporalOptions(0.1), world=World(0, 2))
    # What the chunks cannot carry, refused as --resume refuses it (a GIF's one palette, a retiming, no timestamps).
    for out, kw, said in ((tmp_path / "o.gif", {}, r"torchrun writes \.mp4, \.mov, \.mkv or \.webm; a \.gif is written in one go"),
                          (tmp_path / "o.avi", {}, r"torchrun writes \.mp4, .*; \.avi keeps no frame timestamps"),
                          (tmp_path / "o.mkv", {"options": EncodeOptions(fps=Fraction(30))},
                           r"--fps retimes the video as a whole: it does not combine with torchrun")):
        with pytest.raises(ConfigError, match=said):
            upscale_video(tiny_model, src, out, temporal=STEADY, world=World(0, 2), **kw)


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_write_the_one_process_video(tmp_path: Path, tiny_model_path: Path) -> None:
    src = clip(tmp_path / "in.mkv", [(3, 7), (4, 8)])
    common = ["--model", str(tiny_model_path), "--hysteresis", "0", "--codec", "ffv1", "--pix-fmt", "yuv444p",
              "--json", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "classsr_cli", "video", str(src), str(tmp_path / "one.mkv"), *common,
                        "--start", "0.2", "--duration", "1.1"], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    # --from: torchrun's own options take --start (an abbreviation of its --start-method)
    p2 = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                         "classsr_cli", "video", str(src), str(tmp_path / "two.mkv"), *common, "--from", "0.2",
                         "--duration", "1.1"], capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert p2.returncode == 0, p2.stderr[-3000:]
    one, two = json.loads(p.stdout), [json.loads(line) for line in p2.stdout.splitlines() if line.startswith("{")]
    assert len(two) == 1 and two[0]["ranks"] == 2  # rank 0 alone reports
    for key in ("frames", "patches", "flops", "scenes", "start", "length"):
        assert two[0][key] == one[key], key
    assert one["frames"] == 11
    assert same_video(tmp_path / "one.mkv", tmp_path / "two.mkv")


@pytest.mark.slow
def test_one_process_and_torchrun_runs_of_an_output_do_not_take_each_other_s_chunks(
    tmp_path: Path, tiny_model: torch.nn.Module, ranks: None
) -> None:
    """A stopped run in one process is not thrown away by a torchrun of the same output (refused, unless
    --overwrite); a stopped torchrun's shares do not stop a run in one process, and go once it is done."""
    src = clip(tmp_path / "in.mkv", [(1, 12)], audio=False)
    out = tmp_path / "o.mkv"

    def stop(done: int, total: int | None) -> None:
        if done == 3:
            raise KeyboardInterrupt

    kw: dict[str, Any] = {"temporal": STEADY, "chunk_frames": 2}
    with pytest.raises(KeyboardInterrupt):
        upscale_video(tiny_model, src, out, resume=True, progress=stop, **kw)
    with pytest.raises(ConfigError, match=r"a stopped run of this output in one process: continue it without torchrun"):
        upscale_video(tiny_model, src, out, world=World(1, 2), **kw)
    upscale_video(tiny_model, src, out, world=World(1, 2), overwrite=True, **kw)
    assert (resume_folder(out) / "rank1-of-2").is_dir()
    done = upscale_video(tiny_model, src, out, resume=True, **kw)  # one process: the share's folder left alone
    assert (done.frames, done.resumed) == (12, 2) and not resume_folder(out).exists()


@pytest.mark.slow
def test_more_ranks_than_frames_and_a_truncated_source(tmp_path: Path, tiny_model: torch.nn.Module, ranks: None) -> None:
    """A share may hold no frame (one frame, two ranks); the last share's report of a source cut short reaches the
    joined result, as the one process reports it."""
    one = clip(tmp_path / "one.mkv", [(1, 1)], audio=False)
    upscale_video(tiny_model, one, tmp_path / "o1.mkv", temporal=STEADY, world=World(1, 2))
    r = upscale_video(tiny_model, one, tmp_path / "o1.mkv", temporal=STEADY, world=World(0, 2))
    assert r.frames == 1 and (tmp_path / "o1.mkv").is_file()
    src = clip(tmp_path / "in.mp4", [(2, 12)], audio=False)
    cut = tmp_path / "cut.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-c", "copy", str(cut)], check=True, timeout=60)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 3 // 4])  # the last frames' bytes gone
    whole = upscale_video(tiny_model, cut, tmp_path / "w.mkv", temporal=STEADY)
    assert whole.lost is not None
    upscale_video(tiny_model, cut, tmp_path / "s.mkv", temporal=STEADY, world=World(1, 2))
    joined = upscale_video(tiny_model, cut, tmp_path / "s.mkv", temporal=STEADY, world=World(0, 2))
    assert joined.lost is not None and joined.frames == whole.frames


@pytest.mark.slow
def test_shares_reuse_unchanged_cells_from_their_own_first_frame(tmp_path: Path, ranks: None) -> None:
    """--reuse in a share starts from its own first frame: the pixels are the one process's (a reused cell is the
    cell computed again), and only that frame's cells are computed again."""
    from classsr_cli import zoo
    from classsr_cli.pipeline import Upscaler

    up = Upscaler.of(zoo.load("classsr_residual_x4", 4))
    src = clip(tmp_path / "in.mkv", [(5, 1), (5, 1)], audio=False)  # 2 frames of one still...
    still = tmp_path / "still.mkv"  # ... looped to 12
    subprocess.run([ffmpeg_exe(), "-v", "error", "-stream_loop", "5", "-i", str(src), "-c", "copy", str(still)],
                   check=True, timeout=60)  # fmt: skip
    kw: dict[str, Any] = {"options": EXACT, "temporal": TemporalOptions(0.0, reuse=True)}
    one = upscale_video(up, still, tmp_path / "one.mkv", **kw)
    upscale_video(up, still, tmp_path / "two.mkv", world=World(1, 2), **kw)
    two = upscale_video(up, still, tmp_path / "two.mkv", world=World(0, 2), **kw)
    assert same_video(tmp_path / "one.mkv", tmp_path / "two.mkv") and one.counts == two.counts
    assert 0 < two.reused < one.reused and one.computed < two.computed
