"""What the timing scripts share: the process settings every ``classsr`` command runs with, their command line (a
set, a model, a scale, threads, rounds, a JSON path) and the set's ÷scale LR frames (those ``classsr bench`` makes, laid out
NHWC in memory as ``classsr upscale`` lays out a picture; ``bench`` makes them NCHW-contiguous), with the model that
runs them."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from classsr_cli import bench, runtime, zoo
from classsr_cli.models.classsr import ClassSR


def as_the_cli_runs() -> None:
    """The memory settings every ``classsr`` command starts with (``classsr_cli.cli``): glibc keeps freed memory for
    the next frame, and oneDNN caches more compiled convolutions. Without them a frame's large buffers come back
    from the kernel page by page, which costs each engine differently from what a user's run pays. Call it before
    the first convolution."""
    runtime.keep_freed_memory()
    runtime.cache_more_primitives()


def timing_parser(doc: str) -> argparse.ArgumentParser:
    """The shared options; a script adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("set", help="a validation set name or a folder (as classsr bench)")
    ap.add_argument("--model", default=None)
    ap.add_argument("-x", "--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    return ap


def model_and_frames(args: argparse.Namespace) -> tuple[ClassSR, list[torch.Tensor]]:
    """The model (CPU, float32, ``args.threads`` threads) and the set's ÷scale LR frames, ``(1, 3, h, w)`` in [0, 1],
    in a process set up :func:`as_the_cli_runs`."""
    as_the_cli_runs()
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model, args.scale, device=torch.device("cpu"), dtype=torch.float32).net
    pairs = bench.load_pairs(bench.find_images([args.set]), args.scale)
    return model, [torch.from_numpy(p.lr).permute(2, 0, 1)[None].float().div(255) for p in pairs]
