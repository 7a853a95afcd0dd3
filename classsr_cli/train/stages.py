"""The three-stage ClassSR pipeline (plus the "-O" baseline that ranks the data), each stage resumable.

A run folder holds::

    RUN/data/                  prepared sub-images (default --data)
    RUN/config.json            the recipe (TrainConfig) of the latest invocation
    RUN/run.json               the data the run trains on (its hash and folder) and its number of processes
    RUN/metrics.jsonl          losses, class shares, it/s and validation PSNR as JSON lines
    RUN/baseline.safetensors   heavy-width net trained on all sub-images ("-O")
    RUN/ranking.json, classes.npy   PSNR thresholds (1/3, 2/3 quantiles), class sizes, class per sub-image
    RUN/branch{0,1,2}.safetensors   branch k trained on class k
    RUN/deficits.npy, errors.npy    deficit/budget routing: each branch's error per sub-image / per LR pixel
    RUN/classifier.safetensors      ClassSR after stage 2 (branches frozen)
    RUN/finetune.safetensors        ClassSR after stage 3 (joint fine-tuning)
    RUN/classsr.safetensors         the exported fine-tuned model, with the full provenance
    RUN/*.state.pt             resume state of each stage (classifier_warmup.state.pt too), kept when it ends

A stage whose output exists is skipped; a stage whose ``.state.pt`` exists resumes from it.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from torch import nn

from classsr_cli import __version__
from classsr_cli.checkpoint import load_checkpoint, save_checkpoint, shareable
from classsr_cli.config import CLASS_NAMES, BranchConfig
from classsr_cli.distributed import all_gather
from classsr_cli.errors import ConfigError, OutputError, TrainingDivergedError
from classsr_cli.io.files import make_folder
from classsr_cli.metrics import luma_levels
from classsr_cli.models import build_branch, build_model
from classsr_cli.models.classsr import DEFICIT_EPS, ClassSR
from classsr_cli.models.residual import ResidualSR, fit_base
from classsr_cli.train.config import STAGES, TrainConfig
from classsr_cli.train.data import PatchData, factor_pair
from classsr_cli.train.loop import Dist, Event, MetricsLog, all_reduce_sum, fit
from classsr_cli.train.losses import average_loss, class_loss, mean_loss, quantile_loss

__all__ = ["Trainer", "branch_l1", "collapse_guard", "global_prob_sum", "psnr_per_patch"]

#: The run's record of the data it trains on and its number of processes (:meth:`Trainer._check_record`).
RUN_RECORD = "run.json"


def _write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a stage's output is whole or absent."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    shareable(tmp)
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    os.replace(tmp, path)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    shareable(tmp)
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def _trained_on(metrics: Path) -> list[dict[str, Any]]:
    """The distinct machines (device, GPU, CPU, cores) and numbers of processes the stages of a run finished on,
    from their "done" records (the export's own ``world_size`` is the exporting run's)."""
    keys = ("device", "gpu", "cpu", "cpus", "world_size")
    seen = {json.dumps({k: v for k, v in rec.items() if k in keys}, sort_keys=True)
            for rec in map(json.loads, metrics.read_text().splitlines())
            if rec.get("event") == "done" and "device" in rec}
    return [json.loads(x) for x in sorted(seen)]


def psnr_per_patch(sr: torch.Tensor, hr: torch.Tensor, border: int) -> torch.Tensor:
    """RGB PSNR of every patch in ``(B, 3, H, W)`` tensors in [0, 1] (quantised to 8 bits), border removed."""
    if border:
        sr, hr = sr[..., border:-border, border:-border], hr[..., border:-border, border:-border]
    sr = (sr.clamp(0, 1) * 255).round()
    mse = ((sr - hr * 255) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(255.0**2 / mse)


def branch_l1(sr: torch.Tensor, hr: torch.Tensor, *, luma: bool = False) -> torch.Tensor:
    """A branch's training loss on ``(B, 3, H, W)`` in [0, 1]: L1 over R, G and B, or (``luma``) of BT.601 luma
    (without its offset; 219/255 of the units of R, G and B)."""
    if luma:
        return nn.functional.l1_loss(luma_levels(sr), luma_levels(hr)) / 255
    return nn.functional.l1_loss(sr, hr)


def global_prob_sum(probs: torch.Tensor, dist: Dist) -> tuple[torch.Tensor, int]:
    """Per-class sum of ``probs`` ``(B, M)`` over the whole batch of every rank, and that batch's size.

    The Average-Loss needs the whole batch (the original computes it on the DataParallel-gathered batch); the
    sum is differentiable, so each rank's classifier gets the gradient of the global term.
    """
    return all_reduce_sum(probs.sum(0), dist), probs.shape[0] * dist.size


def collapse_guard(shares: dict[str, float], extras: dict[str, Any], cfg: TrainConfig) -> bool:
    """One log window of the collapse guard; returns True when it raised ``extras["average_weight"]``.

    A window whose largest class share exceeds ``cfg.collapse_share`` counts as collapsed; after
    ``cfg.collapse_patience`` collapsed windows in a row the Average-Loss weight is multiplied by
    ``cfg.collapse_boost`` and the count starts again (the author's advice: raise w3 on collapse).
    """
    top = max(shares.values(), default=0.0)
    extras["collapsed_windows"] = extras.get("collapsed_windows", 0) + 1 if top > cfg.collapse_share else 0
    if extras["collapsed_windows"] < cfg.collapse_patience:
        return False
    extras["average_weight"] *= cfg.collapse_boost
    extras["collapsed_windows"] = 0
    return True


class _ContextScores(nn.Module):
    """A ``frame`` context classifier as it trains: ``forward`` scores sub-images that carry their context
    (:meth:`~classsr_cli.models.classifier.Classifier.forward_context`), so that DDP wraps one module call."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.forward_context(x)


class _Soft(nn.Module):
    """DDP needs one forward: class probabilities ``(B, 3)`` and every branch's output ``(3, B, C, H, W)``."""

    def __init__(self, model: ClassSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_all(x)


def _recipe(d: dict[str, Any]) -> dict[str, Any]:
    free = ("iterations", "val_every", "ckpt_every")
    return {k: {kk: vv for kk, vv in v.items() if kk not in free} if k in STAGES and isinstance(v, dict) else v
            for k, v in d.items()}


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    """A recipe dict with each stage's keys as ``stage.key``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in STAGES and isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _differences(old: dict[str, Any], new: dict[str, Any], most: int = 4) -> str:
    """``key: old → new`` for each key whose value differs (a stage's as ``stage.key``; ``(none)`` where a side has
    no such key), in the new recipe's order, the first ``most`` of them."""
    a, b = _flat(old), _flat(new)
    keys = [*b, *(k for k in a if k not in b)]
    diff = [f"{k}: {json.dumps(a[k]) if k in a else '(none)'} → {json.dumps(b[k]) if k in b else '(none)'}"
            for k in keys if (k in a) != (k in b) or a.get(k) != b.get(k)]
    more = f", and {len(diff) - most} more" if len(diff) > most else ""
    return ", ".join(diff[:most]) + more


def _stage_of(name: str) -> str | None:
    """The stage table whose ``iterations`` an output ``RUN/NAME.safetensors`` trained (``None``: not a stage's)."""
    if name in ("baseline", "classifier", "finetune"):
        return name
    if name.startswith("branch") and name.removeprefix("branch").removesuffix("_bicubic") in ("0", "1", "2"):
        return "branches"
    return None


def _trained_iterations(metrics: Path) -> dict[str, int]:
    """The iterations each stage (``baseline``, ``branch1_bicubic``, …) trained, from its last training record in
    ``metrics.jsonl`` (what the export's provenance reports)."""
    done: dict[str, int] = {}
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return done
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "event" not in rec and isinstance(rec.get("iteration"), int) and "stage" in rec:
            done[str(rec["stage"])] = rec["iteration"]
    return done


def squared_error(diff: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean squared error per sub-image of ``(B, 3, H, W)`` differences in [0, 1] units, in 8-bit levels²: over
    R, G and B (``kind`` ``rgb``), or of their BT.601 luma (``y``; a recipe's ``classifier_error``)."""
    if kind == "y":
        return luma_levels(diff).square().mean(dim=(1, 2))
    return (diff * 255).square().mean(dim=(1, 2, 3))


@torch.no_grad()
def sub_image_errors(data: PatchData, idx: torch.Tensor, nets: list[nn.Module], kind: str) -> torch.Tensor:
    """Each network's :func:`squared_error` (``kind``) on each sub-image of ``idx``, border = scale, unquantised:
    ``(len(idx), len(nets))`` on the CPU, in batches of 256."""
    b = data.scale
    rows = [torch.zeros(0, len(nets))]
    for lr, hr in (data.batch(c) for c in idx.split(256)):
        hr = hr[..., b:-b, b:-b]
        rows.append(torch.stack([squared_error(net(lr)[..., b:-b, b:-b] - hr, kind) for net in nets], 1).cpu())
    return torch.cat(rows)


def bicubic_gains(data: PatchData, idx: torch.Tensor, heavy: nn.Module, kind: str) -> torch.Tensor:
    """How much ``heavy`` gains over bicubic (the residual family's fixed upsampler, what a width-0 branch
    computes) on each sub-image of ``idx``: the decrease of :func:`squared_error` (``kind``), border = scale,
    ``(len(idx),)`` on the CPU. A sub-image's difficulty as issue 11 measures it."""
    bicubic = build_branch(BranchConfig(family="residual", width=0, scale=data.scale)).to(idx.device)
    e = sub_image_errors(data, idx, [bicubic, heavy], kind)
    return e[:, 0] - e[:, 1]


@dataclass
class Trainer:
    """Runs the stages of one training run in ``run`` on prepared data in ``data``."""

    cfg: TrainConfig
    run: Path
    data_dir: Path
    dist: Dist
    observer: Callable[[Event], None] | None = None
    _data: PatchData | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.run = Path(self.run)
        refused: ConfigError | OutputError | None = None
        if self.dist.is_main:
            try:
                make_folder(self.run)
                self._check_config()
            except (ConfigError, OutputError) as e:
                refused = e
        # every rank learns rank 0's verdict (and waits for its records): a refusal ends them all with its one line,
        # where the other ranks died on their lost peer ("Connection closed by peer")
        refused = all_gather(self.dist, refused)[0]
        if refused is not None:
            raise refused
        self.log = MetricsLog(self.run / "metrics.jsonl", self.dist.is_main)
        self.model_cfg = self.cfg.model_config()

    def _check_config(self) -> None:
        """Refuse, before anything is written, an invocation that does not fit the run in ``RUN``: another recipe (the
        keys that differ named), other prepared data than the run trains on (``RUN/run.json``), a resume under another
        number of processes, or iteration counts other than those its finished stages ran; then record this
        invocation's recipe (``config.json``), data and number of processes (``run.json``)."""
        path = self.run / "config.json"
        current = self.cfg.to_dict()
        old: dict[str, Any] | None = None
        if path.exists():
            old = json.loads(path.read_text())
            defaults = TrainConfig().to_dict()  # as a run writes them (a tuple default is a list there)
            for name, value in defaults.items():  # keys added since the run began hold their defaults there
                old.setdefault(name, value)
            # Iteration counts (and the val/ckpt intervals --iterations caps) may change, e.g. to extend a stage whose
            # output was deleted (_check_iterations); everything else, stage batch sizes and learning rates included,
            # fixes the recipe.
            diff = _differences(_recipe(old), _recipe(current))
            if diff:
                raise ConfigError(f"{self.run}: holds a run with a different recipe ({diff}); use another --out, or go "
                                  f"on with the run's own: --config {path}")
        record, changed = self._check_record()
        self._check_iterations(old)
        self._check_extension()
        _write_atomic(path, json.dumps(current, indent=1))
        if changed:
            _write_atomic(self.run / RUN_RECORD, json.dumps(record, indent=1))

    def _check_record(self) -> tuple[dict[str, Any], bool]:
        """``RUN/run.json`` as this invocation leaves it, and whether that differs from the file. Refuses data other
        than the run trained on (by the hash of the prepared arrays) and a stage interrupted under another number of
        processes than this invocation's."""
        path = self.run / RUN_RECORD
        try:
            record = json.loads(path.read_text()) if path.exists() else {}
        except json.JSONDecodeError:
            record = {}
        record = record if isinstance(record, dict) else {}
        before = dict(record)
        try:  # the data's own record of its hash; read alone (no array is loaded for a refusal)
            given = json.loads((self.data_dir / "meta.json").read_text()).get("hash")
        except (OSError, json.JSONDecodeError, AttributeError):
            given = None  # no prepared data: PatchData says so where it is needed
        had = record.get("data")
        if isinstance(had, str) and isinstance(given, str) and had != given:
            raise ConfigError(
                f"{self.run}: trained on other data ({record.get('data_dir', 'a data folder')}, {had[:19]}…) than "
                f"{self.data_dir} ({given[:19]}…); use another --out to train on it"
            )
        if isinstance(given, str):
            record.update(data=given, data_dir=str(Path(self.data_dir).resolve()))
        size = record.get("world_size")
        if isinstance(size, int) and size != self.dist.size:
            stopped = self._interrupted()
            if stopped:
                again = "without torchrun" if size == 1 else f"under torchrun --nproc-per-node {size}"
                raise ConfigError(
                    f"{self.run}: {stopped[0]} was interrupted with {size} process{'es' if size > 1 else ''} and "
                    f"resumes only with as many (not {self.dist.size}: each draws its own batches); run it again "
                    f"{again}, or use another --out"
                )
        record["world_size"] = self.dist.size
        return record, record != before

    def _interrupted(self) -> list[str]:
        """The stages of the run a rerun would resume: a ``NAME.state.pt`` without its ``NAME.safetensors`` (the
        classifier's warm-up: neither the classifier's state nor its output yet)."""
        stopped = []
        for state in sorted(self.run.glob("*.state.pt")):
            name = state.name.removesuffix(".state.pt")
            ends = ("classifier.state.pt", "classifier.safetensors") if name == "classifier_warmup" else (
                f"{name}.safetensors",)
            if not any((self.run / end).exists() for end in ends):
                stopped.append(name)
        return stopped

    def _check_extension(self) -> None:
        """Refuse to extend a stage (its output deleted, its ``.state.pt`` kept) while outputs built from it exist:
        they would be kept as they are and the export would pair them with the extended stage (extending the
        baseline left the heavy branch, the deficits and the classifier of the old one under a record of the new)."""
        paper = self.cfg.routing == "paper"
        chain: list[tuple[str, ...]] = [
            ("baseline.safetensors",),
            ("ranking.json", "classes.npy") if paper else (),
            tuple(f"branch{k}.safetensors" for k in range(3)),
            () if paper else ("deficits.npy", "errors.npy", "ranking.json"),
            ("classifier.safetensors",),
            ("finetune.safetensors",),
        ]
        for i, group in enumerate(chain):
            extended = [n for n in group if n.endswith(".safetensors") and not (self.run / n).exists()
                        and (self.run / n.replace(".safetensors", ".state.pt")).exists()]  # fmt: skip
            later = [n for g in chain[i + 1 :] for n in g if (self.run / n).exists()]
            if extended and later:
                stage = extended[0].removesuffix(".safetensors")
                raise ConfigError(
                    f"{self.run}: extending {stage} leaves what was built from it as it is ({', '.join(later)}); "
                    f"delete those too (and their .state.pt) to build them again from the extended {stage}, or use "
                    "another --out"
                )

    def _check_iterations(self, old: dict[str, Any] | None) -> None:
        """Refuse iteration counts other than those the run's finished stages trained (``metrics.jsonl``; a stage
        the recipe skipped, 0, leaves no record): they are not trained again, and the export would record counts they
        never ran. A stage whose output was deleted (to extend it from its ``.state.pt``) is not finished."""
        trained = _trained_iterations(self.run / "metrics.jsonl")
        found: dict[str, str] = {}
        for out in sorted(self.run.glob("*.safetensors")):
            key = _stage_of(out.stem)
            if key is None or key in found:
                continue
            want = self.cfg.stage(key).iterations
            ran = trained.get(out.stem)
            if ran is None:  # nothing trained: a stage the recipe skipped, or nothing to train (a width-0 branch, the
                was = ((old or {}).get(key) or {}).get("iterations")  # heavy branch copied from the baseline)
                if was != 0:
                    continue
                ran = 0
            if ran != want:
                found[key] = f"{key}.iterations: {ran} → {want}"
        if found:
            raise ConfigError(
                f"{self.run}: its finished stages ran other iteration counts ({', '.join(found.values())}) and are not "
                "trained again; to extend a stage delete its output (keep its .state.pt), or use another --out"
            )

    @property
    def data(self) -> PatchData:
        if self._data is None:
            self._data = PatchData(self.data_dir, self.dist.device)
            if self._data.scale != self.cfg.scale or self._data.patch != self.cfg.patch:
                raise ConfigError(
                    f"{self.data_dir}: prepared for x{self._data.scale} patch {self._data.patch}, "
                    f"the run wants x{self.cfg.scale} patch {self.cfg.patch}"
                )
        return self._data

    # -- helpers -----------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.run / name

    def _val_batches(self, pool: torch.Tensor, size: int = 128) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [self.data.batch(chunk) for chunk in pool.split(size)] if len(pool) else []

    @torch.no_grad()
    def _val_psnr(self, fn: Callable[[torch.Tensor], torch.Tensor], pool: torch.Tensor) -> float:
        values = [psnr_per_patch(fn(lr), hr, self.cfg.scale) for lr, hr in self._val_batches(pool)]
        return float(torch.cat(values).mean()) if values else float("nan")

    def _timed(self, name: str, fn: Callable[[], None]) -> None:
        t = time.perf_counter()
        try:
            fn()
        except BaseException as e:  # interrupted (Ctrl-C, SIGTERM), diverged or failed: its time was spent all the same
            reason = ("interrupted" if isinstance(e, KeyboardInterrupt)
                      else "diverged" if isinstance(e, TrainingDivergedError) else "failed")
            self.log.write(stage=name, event="stopped", reason=reason, seconds=round(time.perf_counter() - t, 1))
            raise
        self.log.write(stage=name, event="done", seconds=round(time.perf_counter() - t, 1), **self._where())

    def _where(self) -> dict[str, Any]:
        """Where this process trains: device, CPU, cores, torch threads, world size."""
        where: dict[str, Any] = {"device": str(self.dist.device), "world_size": self.dist.size,
                                 "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                                 "threads": torch.get_num_threads()}
        if self.dist.device.type == "cuda":
            where["gpu"] = torch.cuda.get_device_name(self.dist.device)
        return where

    def _train_branch(self, name: str, net: nn.Module, pool: torch.Tensor, val_pool: torch.Tensor,
                      draws: str | None = None) -> dict[str, Any]:
        """L1 training of one SR network on the sub-images in ``pool`` (baseline and branch stages); a network with
        nothing to train (a residual branch of width 0: plain bicubic) is returned as it is. A branch that
        corrects luma alone (``luma``) is trained on the L1 of BT.601 luma, the error it can correct (on R, G
        and B its one step per pixel would settle at their median, not at what PSNR-Y measures). ``draws``: the
        stage whose sample sequence it trains on (default: its own, ``name``)."""
        if not any(p.requires_grad for p in net.parameters()):
            return {}
        stage = self.cfg.stage("baseline" if name == "baseline" else "branches")
        data = self.data
        luma = bool(getattr(net, "luma", False))

        def step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
            lr, hr = data.sample(pool, stage.batch_size, g, jitter=self.cfg.random_crops)
            loss = branch_l1(extras["train_module"](lr), hr, luma=luma)
            return loss, {"l1": loss.detach()}

        return fit(name, net, step, stage, self._path(f"{name}.state.pt"), dist=self.dist, seed=self.cfg.seed,
                   log=self.log, log_every=self.cfg.log_every, observer=self.observer, draws=draws,
                   validate=(lambda: {"psnr": self._val_psnr(net, val_pool)}) if len(val_pool) else None)

    def _build(self, bcfg: BranchConfig) -> nn.Module:
        """A new branch of ``bcfg`` on the device; a residual branch with a fitted base gets the run's
        (:meth:`base`)."""
        net = build_branch(bcfg).to(self.dist.device)
        if isinstance(net, ResidualSR) and net.fitted_base is not None:
            net.fitted_base = load_file(str(self.base()))["fitted_base"].to(self.dist.device)
        return net

    def base(self) -> Path:
        """``RUN/base.safetensors``: the residual family's fitted base (:func:`fit_base`), by least squares on
        every training sub-image (deterministic: no jitter, no augmentation), computed once."""
        out = self._path("base.safetensors")
        if not out.exists():
            if self.dist.is_main:  # the other ranks wait for it at the barrier
                t = time.perf_counter()
                index = self.data.train_index
                w = fit_base((self.data.batch(chunk) for chunk in index.split(256)), self.cfg.scale)
                _write_atomic(out, save_tensors({"fitted_base": w.contiguous()}))
                self.log.write(stage="base", event="done", seconds=round(time.perf_counter() - t, 1),
                               sub_images=len(index), **self._where())
            self.dist.barrier()
        return out

    # -- stage 0: the "-O" baseline ------------------------------------------------------------------------
    def baseline(self) -> Path:
        out = self._path("baseline.safetensors")
        if out.exists():
            return out
        torch.manual_seed(self.cfg.seed)
        bcfg = self.model_cfg.branch(2)
        net = self._build(bcfg)
        extras = self._train_branch("baseline", net, self.data.train_index, self.data.val_index)
        if self.dist.is_main:
            save_checkpoint(net, out, config=bcfg, provenance={"stage": "baseline", "val": extras.get("val", {})})
        self.dist.barrier()
        return out

    # -- ranking: PSNR of the baseline on every sub-image, split into thirds ---------------------------------
    def rank(self) -> dict[str, Any]:
        out = self._path("ranking.json")
        # ranking.json is written after its array: a run folder holding it alone (stages copied from another
        # run) ranks again rather than fail where the array is read
        done = out.exists() and self._path("classes.npy" if self.cfg.routing == "paper" else "deficits.npy").exists()
        self.dist.barrier()  # every rank decided before rank 0 may write it
        if done:
            return json.loads(out.read_text())
        if self.cfg.routing != "paper":
            branches = self.branches()  # every rank: they train (under DDP) when missing
            with torch.no_grad():
                self._rank_deficits(branches, out)
        else:
            baseline = self.baseline()  # every rank, with gradients: it trains (under DDP) when it is missing
            with torch.no_grad():
                self._rank(baseline, out)
        self.dist.barrier()
        return json.loads(out.read_text())

    def _rank_deficits(self, branches: list[Path], out: Path) -> None:
        """``deficit`` routing: every branch's mean squared error on every sub-image (8-bit levels², border =
        scale, unquantised; over R, G and B, or of BT.601 luma with ``classifier_error = "y"``) into
        ``deficits.npy`` ``(N, 3)``; ranking.json summarises them."""
        if not self.dist.is_main:
            return
        nets = [load_checkpoint(p, device=self.dist.device, expect_kind="branch").module.eval() for p in branches]
        all_idx = torch.arange(len(self.data.patches), device=self.dist.device)
        mse = sub_image_errors(self.data, all_idx, nets, self.cfg.classifier_error).numpy().astype(np.float32)
        _save_npy_atomic(self._path("deficits.npy"), mse)
        train = self.data.train_index.cpu().numpy()
        d = np.maximum(mse[train] - mse[train, 2:3], 0)
        info = {"rule": "deficit: cheapest branch whose predicted MSE increase over heavy is within the tolerance",
                "mean_mse": [float(v) for v in mse[train].mean(0)],
                "median_deficit": [float(v) for v in np.median(d, 0)]}
        _write_atomic(out, json.dumps(info, indent=1))
        self.log.write(stage="rank", event="done", **info)

    def _rank(self, baseline: Path, out: Path) -> None:
        if self.dist.is_main:
            net = load_checkpoint(baseline, device=self.dist.device, expect_kind="branch").module
            all_idx = torch.arange(len(self.data.patches), device=self.dist.device)
            psnr = torch.cat([psnr_per_patch(net(lr), hr, self.cfg.scale)
                              for lr, hr in (self.data.batch(c) for c in all_idx.split(256))]).cpu()
            train = psnr[self.data.train_index.cpu()]
            t1, t2 = (float(v) for v in torch.quantile(train.double(), torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)))
            classes = torch.full_like(psnr, 1, dtype=torch.long)
            classes[psnr >= t2] = 0  # easy: the light branch
            classes[psnr < t1] = 2  # hard: the heavy branch
            _save_npy_atomic(self._path("classes.npy"), classes.numpy().astype(np.int8))
            sizes = torch.bincount(classes[self.data.train_index.cpu()], minlength=3).tolist()
            info = {"thresholds_psnr_rgb": [t1, t2], "train_class_sizes": sizes,
                    "rule": "psnr >= t2: light; t1 <= psnr < t2: medium; psnr < t1: heavy"}
            _write_atomic(out, json.dumps(info, indent=1))
            self.log.write(stage="rank", event="done", **info)

    def _classes(self) -> torch.Tensor:
        self.rank()
        return torch.from_numpy(np.load(self._path("classes.npy")).astype(np.int64)).to(self.dist.device)

    # -- stage 1: branch k on class k ------------------------------------------------------------------------
    def branches(self) -> list[Path]:
        if self.cfg.routing != "paper":
            return self._branches_all_data()
        classes = self._classes()
        paths = []
        for k in range(3):
            out = self._path(f"branch{k}.safetensors")
            paths.append(out)
            if out.exists():
                continue
            torch.manual_seed(self.cfg.seed + 1 + k)
            bcfg = self.model_cfg.branch(k)
            net = self._build(bcfg)
            if k == 2 and self.cfg.heavy_from_baseline and not self._path("branch2.state.pt").exists():
                net.load_state_dict(load_checkpoint(self.baseline(), device=self.dist.device).module.state_dict())
            data = self.data
            pool = data.train_index[classes[data.train_index] == k]
            val_pool = data.val_index[classes[data.val_index] == k]
            extras = self._train_branch(f"branch{k}", net, pool, val_pool)
            if self.dist.is_main:
                save_checkpoint(net, out, config=bcfg,
                                provenance={"stage": f"branch{k}", "val": extras.get("val", {})})
            self.dist.barrier()
        return paths

    def _branches_all_data(self) -> list[Path]:
        """``deficit`` routing: the heavy branch is the baseline, a width-0 branch needs no training, the others
        train on every sub-image (not on a class: the classifier decides later which branch is enough)."""
        paths = [self._path(f"branch{k}.safetensors") for k in range(3)]
        for k, out in enumerate(paths):
            if out.exists():
                continue
            bcfg = self.model_cfg.branch(k)
            if k == 2:
                src = load_checkpoint(self.baseline(), device=self.dist.device).module
                if self.dist.is_main:
                    save_checkpoint(src, out, config=bcfg, provenance={"stage": "branch2", "from": "baseline"})
                self.dist.barrier()
                continue
            pool, val_pool, prov = self.data.train_index, self.data.val_index, {}
            if k == 0 and self.cfg.light_share < 1 and bcfg.width > 0:  # a width-0 branch has nothing to train
                pool, val_pool = self._easiest(pool, val_pool)
                prov = {"light_share": self.cfg.light_share}
            first = None
            if self.cfg.bicubic_first and bcfg.width > 0:  # bicubic_first: on bicubic, the same samples, then on
                # the fitted base from those weights
                bicubic = replace(bcfg, extra={**bcfg.extra, "fitted_base": 0})
                first = self._branch_stage(k, f"branch{k}_bicubic", bicubic, pool, val_pool)
                prov["from_bicubic"] = first.name
            self._branch_stage(k, f"branch{k}", bcfg, pool, val_pool, start=first, **prov)
        return paths

    def _branch_stage(self, k: int, name: str, bcfg: BranchConfig, pool: torch.Tensor, val_pool: torch.Tensor, *,
                      start: Path | None = None, **provenance: Any) -> Path:
        """Branch ``k`` of ``bcfg`` trained on ``pool`` (``[branches]``, branch ``k``'s samples) into
        ``RUN/NAME.safetensors`` unless it exists, from the weights of the branch file ``start`` when given (a branch on
        bicubic: a fitted base stays the run's); resumable like any stage."""
        out = self._path(f"{name}.safetensors")
        if out.exists():
            return out
        torch.manual_seed(self.cfg.seed + 1 + k)
        net = self._build(bcfg)
        if start is not None and not self._path(f"{name}.state.pt").exists():
            net.load_state_dict({**net.state_dict(),
                                 **load_checkpoint(start, device=self.dist.device).module.state_dict()})
        extras = self._train_branch(name, net, pool, val_pool, draws=f"branch{k}")
        if self.dist.is_main:
            save_checkpoint(net, out, config=bcfg, provenance={"stage": name, "val": extras.get("val", {}), **provenance})
        self.dist.barrier()
        return out

    def _easiest(self, pool: torch.Tensor, val_pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sub-images of ``pool`` (and of ``val_pool``, by ``pool``'s threshold) where the heavy branch (the
        baseline) gains least over bicubic (:func:`bicubic_gains`): ``light_share`` of ``pool``, the light
        branch's training data."""
        heavy = load_checkpoint(self.baseline(), device=self.dist.device, expect_kind="branch").module.eval()
        g = bicubic_gains(self.data, torch.cat([pool, val_pool]), heavy, self.cfg.classifier_error)
        cut = torch.quantile(g[: len(pool)].double(), self.cfg.light_share).item()
        keep = (g <= cut).to(pool.device)
        return pool[keep[: len(pool)]], val_pool[keep[len(pool) :]]

    def _deficit_targets(self) -> torch.Tensor:
        """``log10(DEFICIT_EPS + max(0, mse_k - mse_heavy))`` per sub-image, ``(N, 3)``, on the device; for
        ``budget`` routing the third column is ``log10(DEFICIT_EPS + mse_heavy)``."""
        self.rank()
        mse = torch.from_numpy(np.load(self._path("deficits.npy"))).to(self.dist.device)
        d = (mse - mse[:, 2:3]).clamp_min(0)
        if self.cfg.routing == "budget":
            d[:, 2] = mse[:, 2]
        return torch.log10(DEFICIT_EPS + d)

    def _calibrate(self, model: ClassSR) -> dict[str, Any]:
        """The default tolerance: the largest whose routing, through the engine, of the held-out training photos
        (with ``calibrate_photos = "all"`` every training photo; whole images, at their first scale factor, and
        with ``calibrate_factors = "all"`` also downscaled by the other factors; never the validation sets)
        loses at most ``tolerance_db`` of mean PSNR-Y (border = scale) against the heavy branch on the whole
        image. The scans route without ``frame_cap_db``: the cap is a guard on top of the calibrated per-patch
        rule, which only adds compute (``capped_loss_db`` reports the loss with it); were the price calibrated
        under it, the quality the cap buys on clean frames would be spent again on textured ones
        (docs/experiments.md, twenty-sixth pass). For ``budget`` routing, whose tolerance is itself a predicted
        loss in dB, the scan ends at ``tolerance_db``: the default never promises more than the recipe asks, even where these photos would
        allow it (they are more textured than everyday photos); with ``budget_default = "patch"`` the per-patch
        default (``cell_tolerance``) is calibrated as a deficit model's is, with ``"price"`` its price
        (``cell_price``) likewise. Also the shares of each class under
        the default and the figures it was chosen on."""
        from classsr_cli.engine.bands import upscale_tensor
        from classsr_cli.metrics import psnr, quantize

        data, s = self.data, self.cfg.scale
        imgs = data.images.cpu()
        first = [i for i in range(len(imgs)) if int(imgs[i, 5]) == 0]  # each photo once, at its first factor
        photos = [i for i in first if int(imgs[i, 4]) == 1]  # the held-out ones
        if self.cfg.calibrate_photos == "all":
            photos = first
        elif not photos:  # no held-out photos: the training photos at their first factor, 16 at most
            photos = first[:16]
        pairs = [data.image(i) for i in photos]
        if self.cfg.calibrate_factors == "all":  # each photo also at the other factors, as prepared
            for _, hr in list(pairs):
                for f in self.cfg.factors[1:]:
                    hr_f, lr_f = factor_pair(hr, f, s, **self.cfg.degradation)
                    if min(lr_f.shape[:2]) >= self.cfg.patch:
                        pairs.append((lr_f, hr_f))

        with torch.no_grad():
            lrs = [torch.from_numpy(lr).permute(2, 0, 1)[None].float().div(255).to(self.dist.device) for lr, _ in pairs]
            heavy = [psnr(quantize(model.branches[2](x)), hr, s, y_channel=True) for x, (_, hr) in zip(lrs, pairs, strict=True)]

            base = model.cfg
            cells = np.geomspace(0.01, 1000, 61)
            budgets = np.geomspace(0.001, self.cfg.tolerance_db, 41)
            # Progress as routings of the whole set, against the most the scans can take (they usually stop early).
            budget_routing, per_patch = self.cfg.routing == "budget", self.cfg.budget_default != "frame"
            # the per-patch default's field: a tolerance, or a price (each loses more as it grows)
            cell_field = "cell_price" if self.cfg.budget_default == "price" else "cell_tolerance"
            # a scan routes tolerance 0 and each of its tolerances; the capped (budget) scan its end first too
            most = (len(budgets) + 2 if budget_routing else 0) + (len(cells) + 1 if per_patch or not budget_routing else 0)
            most += int(budget_routing and per_patch and base.frame_cap_db > 0)  # the default with its cap
            progress = {"done": 0, "start": time.perf_counter()}

            def route(tol: float | None, cell: float = 0.0, cap: float = 0.0) -> tuple[float, tuple[int, int, int]]:
                # cell > 0 with tol None: a budget model per patch; the scans route without the frame cap
                model.cfg = replace(base, frame_cap_db=cap, **{cell_field: cell})
                loss, counts = 0.0, [0, 0, 0]
                for x, (_, hr), ref in zip(lrs, pairs, heavy, strict=True):
                    sr, res = upscale_tensor(model, x, tolerance=tol)
                    loss += ref - psnr(quantize(sr), hr, s, y_channel=True)
                    counts = [a + b for a, b in zip(counts, res.counts, strict=True)]
                progress["done"] += 1
                if self.observer is not None and self.dist.is_main:
                    rate = progress["done"] / max(1e-9, time.perf_counter() - progress["start"])
                    self.observer(Event("calibrate", int(progress["done"]), most, {"loss": loss / len(lrs)}, rate))
                return loss / len(lrs), (counts[0], counts[1], counts[2])

            def scan(tols: np.ndarray, per_patch: bool, capped: bool = False) -> tuple[float, float, tuple[int, int, int]]:
                """The largest tolerance within ``tolerance_db``. The loss grows with it, coarsely: scanned upwards
                until it passes twice ``tolerance_db`` (then no larger tolerance comes back within it). A
                ``capped`` scan (the budget's, up to the recipe's dB) tries its end first, which usually passes;
                the levels² scans' end, every cell light, never does."""
                if capped:
                    top = route(float(tols[-1]))
                    if top[0] <= self.cfg.tolerance_db:
                        return float(tols[-1]), *top
                best, best_loss, best_counts = 0.0, *route(0.0)
                for tol in tols:
                    loss, counts = route(None, float(tol)) if per_patch else route(float(tol))
                    if loss <= self.cfg.tolerance_db:
                        best, best_loss, best_counts = float(tol), loss, counts
                    elif loss > 2 * self.cfg.tolerance_db:
                        break
                return best, best_loss, best_counts

            try:
                if budget_routing:  # the tolerance is a frame's predicted loss in dB: at most the recipe's
                    best, best_loss, best_counts = scan(budgets, False, capped=True)
                    budget: dict[str, Any] = {"budget_loss_db": round(best_loss, 4)}
                    if per_patch:
                        cell, best_loss, best_counts = scan(cells, True)
                        budget[cell_field] = cell
                        if base.frame_cap_db > 0 and cell > 0:  # the default as shipped: with its cap on top
                            capped, capped_counts = route(None, cell, base.frame_cap_db)
                            budget.update(capped_loss_db=round(capped, 4), capped_shares=[
                                round(c / max(1, sum(capped_counts)), 4) for c in capped_counts])
                else:
                    best, best_loss, best_counts = scan(cells, False)
                    budget = {}
            finally:
                model.cfg = base
        if self.observer is not None and self.dist.is_main:  # the scans stopped early: the bar ends full
            self.observer(Event("calibrate", most, most, {"loss": best_loss}, 0.0))
        n = max(1, sum(best_counts))
        return {"tolerance": best, "loss_db": round(best_loss, 4), "images": len(pairs), **budget,
                **{f"share_{name}": round(c / n, 4) for name, c in zip(CLASS_NAMES, best_counts, strict=True)}}

    def _calibrated(self, model: ClassSR) -> dict[str, Any]:
        """:meth:`_calibrate` ``model`` and make what it found the model's default decision; returns its record."""
        calib = self._calibrate(model)
        model.cfg = replace(model.cfg, tolerance=calib["tolerance"], cell_tolerance=calib.get("cell_tolerance", 0.0),
                            cell_price=calib.get("cell_price", 0.0))
        return calib

    def _errors(self) -> np.ndarray:
        """:func:`~classsr_cli.train.dense.error_maps` of the branches, cached in ``errors.npy``."""
        path = self._path("errors.npy")
        branches = self.branches()
        self.dist.barrier()
        if self.dist.is_main and not path.exists():
            from classsr_cli.train.dense import error_maps

            nets = [load_checkpoint(p, device=self.dist.device, expect_kind="branch").module.eval() for p in branches]
            t = time.perf_counter()
            _save_npy_atomic(path, error_maps(nets, self.data, self.dist.device))
            self.log.write(stage="classifier", event="error_maps", seconds=round(time.perf_counter() - t, 1))
        self.dist.barrier()
        return np.load(path)

    def _regress_classifier(self, model: ClassSR) -> dict[str, Any]:
        """``deficit``/``budget`` routing: the classifier regresses every branch's error increase over heavy (the
        pinball loss on log10 at ``classifier_quantile``, L1 at the median, or with ``classifier_loss = "mean"``
        the Poisson deviance), per sub-image or, with ``classifier_labels = "dense"``, per cell of windows anywhere."""
        stage, quantile = self.cfg.classifier, self.cfg.classifier_quantile

        def label_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return mean_loss(pred, target) if self.cfg.classifier_loss == "mean" else quantile_loss(pred, target, quantile)

        for p in model.branches.parameters():
            p.requires_grad_(False)
        if self.cfg.classifier_labels == "dense":
            from classsr_cli.engine.defaults import DEFAULT_STEP
            from classsr_cli.train.dense import CellTargets

            errors = self._errors()
            budget = self.cfg.routing == "budget"
            train = CellTargets(self.data, errors, DEFAULT_STEP, 0, budget=budget)
            try:
                held = CellTargets(self.data, errors, DEFAULT_STEP, 1, budget=budget)
            except ValueError:
                held = None
            del errors

            def dense_step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
                lr, target = train.sample(stage.batch_size, g)
                pred = extras["train_module"](lr)
                loss = label_loss(pred, target)
                return loss, {"l1_log10": nn.functional.l1_loss(pred.detach(), target)}

            def dense_validate() -> dict[str, float]:
                if held is None:
                    return {}
                total, n = 0.0, 0
                with torch.no_grad():
                    for img, y, x in held.grid(8):
                        lr, target = held.gather(img, y, x)
                        total += float((model.classifier(lr) - target).abs().sum())
                        n += target.numel()
                return {"l1_log10": total / max(1, n)}

            return fit("classifier", model.classifier, dense_step, stage, self._path("classifier.state.pt"),
                       dist=self.dist, seed=self.cfg.seed, log=self.log, log_every=self.cfg.log_every,
                       observer=self.observer, validate=dense_validate)

        targets = self._deficit_targets()
        data = self.data
        pool = data.train_index
        margin = model.classifier.margin  # frame context: each sub-image with its photo's pixels around it
        scorer: nn.Module = _ContextScores(model.classifier) if margin else model.classifier

        def inputs(pick: torch.Tensor, g: torch.Generator | None = None, augment: bool = False) -> torch.Tensor:
            return data.lr_context(pick, margin, g, augment) if margin else data.batch(pick, g, augment=augment)[0]

        def step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
            pick = pool[torch.randint(0, len(pool), (stage.batch_size,), generator=g).to(pool.device)]
            pred = extras["train_module"](inputs(pick, g, augment=True))
            loss = label_loss(pred, targets[pick])
            return loss, {"l1_log10": nn.functional.l1_loss(pred.detach(), targets[pick])}

        def validate() -> dict[str, float]:
            val = data.val_index
            if not len(val):
                return {}
            with torch.no_grad():
                pred = torch.cat([scorer(inputs(chunk)) for chunk in val.split(128)])
            return {"l1_log10": float((pred - targets[val]).abs().mean())}

        return fit("classifier", scorer, step, stage, self._path("classifier.state.pt"), dist=self.dist,
                   seed=self.cfg.seed, log=self.log, log_every=self.cfg.log_every, observer=self.observer,
                   validate=validate)

    # -- stages 2 and 3: classifier with frozen branches, then joint fine-tuning ------------------------------
    def _assemble(self) -> ClassSR:
        torch.manual_seed(self.cfg.seed + 10)
        model = build_model(self.model_cfg)
        if self.cfg.classifier_init != "paper":
            model.classifier.init_weights(self.cfg.classifier_init)
        for k, path in enumerate(self.branches()):
            model.branches[k].load_state_dict(load_checkpoint(path, expect_kind="branch").module.state_dict())
        assert isinstance(model, ClassSR)
        return model.to(self.dist.device)

    def _routed_val(self, model: ClassSR) -> dict[str, float]:
        pool = self.data.val_index
        counts = torch.zeros(3, dtype=torch.long)
        values = []
        heavy = []
        with torch.no_grad():
            for lr, hr in self._val_batches(pool):
                sr, cls = model.forward_routed(lr)
                counts += torch.bincount(cls.cpu(), minlength=3)
                values.append(psnr_per_patch(sr, hr, self.cfg.scale))
                heavy.append(psnr_per_patch(model.branches[2](lr), hr, self.cfg.scale))
        if not values:  # no validation sub-images (val_fraction 0, or too few images to hold one out)
            return {}
        n = max(1, int(counts.sum()))
        return {"psnr": float(torch.cat(values).mean()), "psnr_heavy": float(torch.cat(heavy).mean()),
                **{f"share_{name}": int(c) / n for name, c in zip(self.model_cfg.classes, counts.tolist(), strict=True)}}

    def _joint(self, name: str, model: ClassSR, train_branches: bool) -> dict[str, Any]:
        stage = self.cfg.stage(name)
        for p in model.branches.parameters():
            p.requires_grad_(train_branches)
        soft = _Soft(model)
        data = self.data
        dist = self.dist
        w1, wc = self.cfg.l1_weight, self.cfg.class_weight

        def step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
            if not train_branches:
                model.branches.eval()  # frozen branches keep eval-mode normalisation (CARN's BatchNorm)
            lr, hr = data.sample(data.train_index, stage.batch_size, g)
            probs, outs = extras["train_module"](lr)
            # The classifier learns from the probability-weighted sum (the paper's soft routing). The branches
            # are not trained through that blend: with undecided probabilities they would co-adapt to blends that
            # hard routing never produces (our first x4 run lost 1.9 dB that way). Each branch is trained on the
            # patches the classifier routes to it, as at inference.
            sr = (probs.t()[:, :, None, None, None] * outs.detach()).sum(0)
            prob_sum, batch = global_prob_sum(probs, dist)
            l_1 = nn.functional.l1_loss(sr, hr)
            l_c = class_loss(probs)
            l_a = average_loss(prob_sum, batch)
            loss = w1 * l_1 + wc * l_c + extras["average_weight"] * l_a
            if train_branches:
                routed = outs[probs.argmax(1).detach(), torch.arange(len(lr), device=lr.device)]
                loss = loss + w1 * nn.functional.l1_loss(routed, hr)
            shares = torch.bincount(probs.argmax(1), minlength=3).float() / probs.shape[0]
            logs = {"loss": loss.detach(), "l1": l_1.detach(), "class_loss": l_c.detach(), "average_loss": l_a.detach()}
            logs.update({f"share_{n}": shares[i] for i, n in enumerate(self.model_cfg.classes)})
            return loss, logs

        def guard(it: int, means: dict[str, float], extras: dict[str, Any]) -> None:
            """Collapse guard: one class taking nearly all patches for several windows raises the average weight."""
            shares = {n: means.get(f"share_{n}", 0.0) for n in self.model_cfg.classes}
            if collapse_guard(shares, extras, self.cfg):
                self.log.write(stage=name, iteration=it, event="collapse_guard", average_weight=extras["average_weight"])

        return fit(name, soft, step, stage, self._path(f"{name}.state.pt"), dist=dist, seed=self.cfg.seed,
                   log=self.log, log_every=self.cfg.log_every, observer=self.observer, on_log=guard,
                   extras={"average_weight": self.cfg.average_weight},
                   validate=lambda: self._routed_val(model))

    def _warmup_classifier(self, model: ClassSR) -> None:
        """Optional warm start: cross-entropy on the ranking classes, classifier only (``classifier_warmup``).

        The paper trains the classifier from scratch on the SR loss alone; with short budgets a warm start from
        the PSNR ranking keeps the first iterations from routing every patch to one branch.
        """
        n = self.cfg.classifier_warmup
        if n <= 0:
            return
        stage = replace(self.cfg.classifier, iterations=n, val_every=n, ckpt_every=max(1, min(500, n)))
        classes = self._classes()
        data = self.data
        pool = data.train_index

        def step(it: int, g: torch.Generator, extras: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
            pick = pool[torch.randint(0, len(pool), (stage.batch_size,), generator=g).to(pool.device)]
            lr, _ = data.batch(pick, g, augment=True)
            loss = nn.functional.cross_entropy(extras["train_module"](lr), classes[pick])
            return loss, {"ce": loss.detach()}

        fit("classifier_warmup", model.classifier, step, stage, self._path("classifier_warmup.state.pt"),
            dist=self.dist, seed=self.cfg.seed, log=self.log, log_every=self.cfg.log_every, observer=self.observer)

    def classifier(self) -> Path:
        out = self._path("classifier.safetensors")
        if out.exists():
            return out
        model = self._assemble()
        if self.cfg.routing != "paper":
            extras = self._regress_classifier(model)
            model.eval()
            calib = self._calibrated(model)
            self.log.write(stage="classifier", event="calibrate", **calib)
            if self.dist.is_main:
                save_checkpoint(model, out, provenance={"stage": "classifier", "val": extras.get("val", {}),
                                                        "calibration": calib})
            self.dist.barrier()
            return out
        if not self._path("classifier.state.pt").exists():
            self._warmup_classifier(model)
        extras = self._joint("classifier", model, train_branches=False)
        if self.dist.is_main:
            save_checkpoint(model, out, provenance={"stage": "classifier", "val": extras.get("val", {}),
                                                    "average_weight": extras["average_weight"]})
        self.dist.barrier()
        return out

    def finetune(self) -> Path:
        out = self._path("finetune.safetensors")
        if out.exists():
            return out
        if self.cfg.routing != "paper" and self.cfg.finetune.iterations == 0:
            return self.classifier()
        loaded = load_checkpoint(self.classifier(), device=self.dist.device, expect_kind="classsr").module
        assert isinstance(loaded, ClassSR)
        extras = self._joint("finetune", loaded, train_branches=True)
        if self.dist.is_main:
            save_checkpoint(loaded, out, provenance={"stage": "finetune", "val": extras.get("val", {}),
                                                     "average_weight": extras["average_weight"]})
        self.dist.barrier()
        return out

    # -- export ---------------------------------------------------------------------------------------------
    def export(self, out: Path | None = None) -> Path:
        out = out or self._path("classsr.safetensors")
        src = self.finetune()
        ranking = self.rank()  # on every rank: it synchronises
        if self.dist.is_main:
            loaded = load_checkpoint(src, expect_kind="classsr")
            stages: dict[str, Any] = {}
            for line in (self.run / "metrics.jsonl").read_text().splitlines():
                rec = json.loads(line)
                if rec.get("event") in ("done", "stopped") and "seconds" in rec:
                    # summed over the invocations of a resumed run, the interrupted ones ("stopped") included
                    entry = stages.setdefault(rec["stage"], {})
                    entry["seconds"] = round(entry.get("seconds", 0.0) + rec["seconds"], 1)
                if "event" not in rec and "iteration" in rec:  # what was trained, whatever the latest config says
                    stages.setdefault(rec["stage"], {})["iterations"] = rec["iteration"]
                if rec.get("event") == "val":
                    stages.setdefault(rec["stage"], {})["val"] = {k: v for k, v in rec.items()
                                                                   if k not in ("stage", "event", "time")}
            provenance = {
                "recipe": self.cfg.to_dict(),
                "data": {k: v for k, v in self.data.meta.items() if k != "sources"},
                "ranking": ranking,
                "stages": stages,
                "world_size": self.dist.size,
                "device": str(self.dist.device),
                # where each stage trained (its "done" record), and where this export ran
                "trained_on": _trained_on(self.run / "metrics.jsonl"),
                "exported_on": self._where(),
                "software": {"classsr": __version__, "torch": torch.__version__, "python": platform.python_version()},
            }
            save_checkpoint(loaded.module, out, provenance=provenance)
        self.dist.barrier()
        return out

    def all(self, out: Path | None = None) -> Path:
        self._timed("baseline", self.baseline)
        if self.cfg.routing == "paper":
            self.rank()
        self._timed("branches", self.branches)
        self.rank()
        self._timed("classifier", self.classifier)
        self._timed("finetune", self.finetune)
        return self.export(out)
