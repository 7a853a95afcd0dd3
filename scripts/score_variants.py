"""Run another script with the classifier's cell scores altered, to ask whether less noisy predictions route better
without training anything. An experiment, not an engine option.

``--smooth A``: each cell's scores (log10 deficits) moved by ``A`` towards the mean of its 3x3 neighbourhood (the
frame replicate-padded): difficulty is spatially correlated, so neighbours may average out a cell's error.
``--with M``: the mean of the scores of this model's classifier and of model ``M``'s (a second classifier trained on
the same branches, e.g. another seed: an ensemble). ``--flip``: the mean of the scores of the frame and of its
mirror image (test-time augmentation). The options combine. The scores are altered where the engine takes them
(:meth:`Classifier.grid_scores`), so the decision, its frame cap and the planner follow as they would.

    python scripts/score_variants.py --smooth 0.3 -- scripts/heldout_curve.py MODEL --factors 1.0 0.9 0.8 0.7 0.6
    python scripts/score_variants.py --with runs/ctx16s1_x4/classsr.safetensors -- scripts/routing_eval.py --held-out
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from run_script import run_script  # scripts/

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.errors import ClassSRError
from classsr_cli.models.classifier import Classifier


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smooth", type=float, default=0.0, help="move each cell's scores this far to its 3x3 mean")
    ap.add_argument("--with", dest="other", default=None, help="average with this model's classifier")
    ap.add_argument("--flip", action="store_true", help="average with the scores of the mirrored frame")
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...]")
    args = ap.parse_args()
    argv = args.script[1:] if args.script[:1] == ["--"] else args.script
    if not argv:
        ap.error("give the script to run after --")
    if not 0.0 <= args.smooth <= 1.0:
        ap.error("--smooth must be between 0 and 1")
    other = None
    if args.other is not None:
        try:
            other = load_checkpoint(args.other, device="cpu", dtype=torch.float32, expect_kind="classsr").module.classifier
        except ClassSRError as e:
            raise SystemExit(f"error: {e}") from None
    own = Classifier.grid_scores

    def grid_scores(self: Classifier, frame: torch.Tensor, patch: int, step: int,
                    batch_size: int = 1024) -> torch.Tensor:
        s = own(self, frame, patch, step, batch_size)  # (N, rows, cols, 3)
        parts = [s]
        if args.flip:
            parts.append(own(self, frame.flip(3), patch, step, batch_size).flip(2))
        if other is not None and other is not self:
            parts.append(own(other, frame, patch, step, batch_size))
        s = torch.stack(parts).mean(0)
        if args.smooth and s.shape[1] * s.shape[2]:
            x = s.permute(0, 3, 1, 2)
            mean = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
            s = (x + args.smooth * (mean - x)).permute(0, 2, 3, 1).contiguous()
        return s

    Classifier.grid_scores = grid_scores  # type: ignore[method-assign]
    run_script(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
