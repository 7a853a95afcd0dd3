"""Per-class batched routing against the same patches run one at a time through the same model.

    python examples/batched_vs_single.py                                   # installed x4 model, examples/baby.png
    python examples/batched_vs_single.py --model weights/classsr_fsrcnn_x4.safetensors --threads 2
    python examples/batched_vs_single.py --model PATH --image examples/lighthouse.jpg --repeat 5

Both runs use the patches the tiler cuts from the image and the classes the classifier gives them once, so
they do the same work; only the batching differs:

* batched: ``ClassSR.forward_routed`` - each branch runs once per chunk of ``--batch-size`` of its patches;
* one at a time: a Python loop calling the patch's branch on a batch of one (how the original ClassSR code
  infers).

``--classes random`` assigns seeded random classes instead of the classifier's, so that an untrained model
(whose classifier may send every patch to one branch) still exercises all three branches.

Prints the best of ``--repeat`` timings of each, their ratio, and the largest difference between the two
outputs (float rounding only).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_of(repeat: int, fn: Callable[[], object], sync: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name or .safetensors path, run at its own scale (default: installed x4)")
    parser.add_argument("--image", type=Path, default=ROOT / "examples" / "baby.png", help="LR input photo")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--batch-size", type=int, default=256, help="most patches per branch call when batched")
    parser.add_argument("--step", type=int, default=28)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each; the best is kept")
    parser.add_argument(
        "--classes", choices=("model", "random"), default="model",
        help="classes from the model's classifier, or uniformly random (seed 0), e.g. for an untrained model",
    )
    args = parser.parse_args(argv)

    import torch

    from classsr_cli.engine import DEFAULT_STEP
    from classsr_cli.engine.tiling import extract_patches, plan_grid
    from classsr_cli.io.image import read_image
    from classsr_cli.runtime import resolve_device, synchronize
    from classsr_cli.zoo import load, own_scale

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    loaded = load(args.model, own_scale(args.model), device=device)  # a --model at its own scale (x2 too)
    model = loaded.net
    pic = read_image(args.image)
    x = torch.from_numpy(pic.pixels.astype("float32") / float(2**pic.bits - 1)).permute(2, 0, 1)[None]
    x = x.expand(1, 3, *x.shape[2:]).to(device)
    grid = plan_grid(x.shape[2], x.shape[3], model.cfg.patch, args.step or DEFAULT_STEP)
    patches = extract_patches(x, grid)
    with torch.inference_mode():
        classes = model.classify(patches)
        if args.classes == "random":
            g = torch.Generator().manual_seed(0)
            classes = torch.randint(0, 3, (len(patches),), generator=g).to(device)
        counts = torch.bincount(classes, minlength=3).tolist()

        def batched() -> torch.Tensor:
            return model.forward_routed(patches, batch_size=args.batch_size, classes=classes)[0]

        def one_at_a_time() -> torch.Tensor:
            out = patches.new_empty((len(patches), 3, *[d * model.cfg.scale for d in patches.shape[2:]]))
            for i, k in enumerate(classes.tolist()):
                out[i : i + 1] = model.branches[k](patches[i : i + 1])
            return out

        diff = float((batched() - one_at_a_time()).abs().max())  # also warms both paths up
        sync = lambda: synchronize(device)  # noqa: E731
        t_batched = best_of(args.repeat, batched, sync)
        t_single = best_of(args.repeat, one_at_a_time, sync)
    print(f"model      {loaded.path} ({model.cfg.family} x{model.cfg.scale}, widths {model.cfg.widths})")
    print(f"image      {args.image} {pic.width}x{pic.height}: {grid.count} patches "
          f"(light {counts[0]}, medium {counts[1]}, heavy {counts[2]}; classes from {args.classes})")
    print(f"device     {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"batched    {t_batched:.3f} s  (batch size {args.batch_size})")
    print(f"one by one {t_single:.3f} s")
    print(f"ratio      {t_single / t_batched:.2f}x faster batched (best of {args.repeat}); max |diff| {diff:.2e}")
    return {"batched": t_batched, "single": t_single, "ratio": t_single / t_batched, "max_diff": diff}


if __name__ == "__main__":
    main(sys.argv[1:])
