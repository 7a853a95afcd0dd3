"""Two checkpoints of one recipe side by side: is a retrained file the shipped one? Compares, without running a model:

- ``config``: the configs written into the two files (the keys whose values differ);
- ``tensors``: each tensor of the state dict, bit for bit, and where they differ the largest absolute difference
  against the largest magnitude of the first file's tensor;
- ``stages``: the validation figure each training stage recorded (branch PSNRs, the classifier's L1), the iterations
  and the data hash, from the files' provenance;
- ``ranking``: the branches' mean MSE and median deficit on the training sub-images, as the files recorded them.

    python scripts/compare_weights.py weights/classsr_residual_x4.safetensors runs/x4/classsr.safetensors [--json out]

With ``--logs``, the two arguments are training logs (``RUN/metrics.jsonl``) instead: each record of one (a stage's
logged loss and learning rate every ``log_every`` iterations, its validations, its end) against the record of the
same stage, iteration and event in the other, the machine's own figures (clock, iterations a second, seconds) left
out. Two runs of a deterministic recipe agree in every record both logged, e.g. today's rebuild against the
forty-sixth pass's (``docs/results/fortysixth/metrics_repro_x4.jsonl``)::

    python scripts/compare_weights.py --logs docs/results/fortysixth/metrics_repro_x4.jsonl runs/x4/metrics.jsonl

Quality and routing are measured by the usual commands with ``--model`` (``classsr bench``,
``scripts/routing_eval.py``); this script says how far apart the files themselves are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from report import emit  # scripts/

from classsr_cli.checkpoint import load_checkpoint
from classsr_cli.errors import CheckpointError


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """The keys of either config whose values differ: ``key -> [a's, b's]`` (``None`` where one lacks the key)."""
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def tensor_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Tensors of the same name compared bit for bit; those that differ with ``max_abs_diff`` and ``max_abs`` (the
    first file's largest magnitude), names found in one file only listed apart."""
    same, differ = [], {}
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y):
            same.append(name)
            continue
        if x.shape != y.shape:
            differ[name] = {"shapes": [list(x.shape), list(y.shape)]}
            continue
        d = (x.double() - y.double()).abs()
        differ[name] = {"max_abs_diff": float(d.max()), "max_abs": float(x.double().abs().max())}
    return {"identical": len(same), "different": differ, "only_first": sorted(set(a) - set(b)),
            "only_second": sorted(set(b) - set(a))}


#: Fields of a training record (a stage's provenance, a log's line) that are the machine's, not the run's.
MACHINE_FIELDS = ("time", "it_per_s", "seconds")


def stage_figures(provenance: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: iterations and the validation figures it recorded (the machine's fields left out)."""
    out: dict[str, dict[str, Any]] = {}
    for stage, rec in sorted((provenance.get("stages") or {}).items()):
        got = {k: v for k, v in rec.items() if k not in MACHINE_FIELDS}
        if got:
            out[stage] = got
    return out


def side_by_side(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b))}


def compare(first: Path, second: Path) -> dict[str, Any]:
    loaded = [load_checkpoint(p, expect_kind="classsr") for p in (first, second)]  # validated as the CLI loads it
    cfg = [json.loads(m.metadata.get("config", "{}")) for m in loaded]
    prov = [m.provenance for m in loaded]
    return {
        "files": [str(first), str(second)],
        "config": config_diff(*cfg),
        "tensors": tensor_diff(*(m.module.state_dict() for m in loaded)),
        "data": [(p.get("data") or {}).get("hash") for p in prov],
        "stages": side_by_side(*(stage_figures(p) for p in prov)),
        "ranking": side_by_side(*((p.get("ranking") or {}) for p in prov)),
        "software": [p.get("software") for p in prov],
    }


def _records(path: Path) -> dict[tuple[Any, ...], dict[str, Any]]:
    """A training log's records by ``(stage, iteration, event)``, the machine's fields left out (the last record
    of a key wins: a resumed stage logs its iterations again from its checkpoint)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            key = (rec.get("stage"), rec.get("iteration"), rec.get("event"))
            out[key] = {k: v for k, v in rec.items() if k not in MACHINE_FIELDS}
    return out


def compare_logs(first: Path, second: Path) -> dict[str, Any]:
    """Two training logs record by record: how many records both have, how many are identical, the first few
    that differ (both sides), and how many only one has (a run stopped earlier, or a stage one of them skipped)."""
    a, b = _records(first), _records(second)
    common = [k for k in a if k in b]
    differ = [k for k in common if a[k] != b[k]]
    stages = {k[0] for k in common}
    return {
        "files": [str(first), str(second)],
        "common": len(common),
        "identical": len(common) - len(differ),
        "stages": sorted(s for s in stages if s is not None),
        "differ": [{"key": list(k), "first": a[k], "second": b[k]} for k in differ[:5]],
        "only_first": sum(k not in b for k in a),
        "only_second": sum(k not in a for k in b),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--logs", action="store_true", help="compare two training logs (metrics.jsonl)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    try:
        result = compare_logs(args.first, args.second) if args.logs else compare(args.first, args.second)
    except (CheckpointError, OSError, json.JSONDecodeError) as e:
        ap.error(str(e))  # one line, exit 2, nothing written
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
