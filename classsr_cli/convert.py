"""Convert the ClassSR authors' PyTorch checkpoints (``.pth``) to classsr safetensors checkpoints.

The original key layouts (XPixelGroup/ClassSR, ``codes/models/archs/*.py``) are written down in
``docs/original_checkpoints.md``. One door in: :func:`load_original` unpickles with ``weights_only=True`` only
(no fallback), unwraps the usual containers and ``module.`` prefixes. Then the family is detected from key names,
the hyper-parameters are read from tensor shapes, every key is renamed to ours (an unknown key is an error, never
skipped), shapes are checked against the architecture, and the result is written with
:func:`~classsr_cli.checkpoint.save_checkpoint` and read back with :func:`~classsr_cli.checkpoint.load_checkpoint`.

Accepted inputs: one whole ClassSR checkpoint (``ClassSR_{FAMILY}.pth``: ``classifier.*``, ``net1.*``, ``net2.*``,
``net3.*``) -> a ``classsr`` checkpoint; three branch files plus one classifier file -> a ``classsr`` checkpoint
(branches ordered by width, narrowest = light); one branch file -> a ``branch`` checkpoint. Three branch files
without a classifier are refused: routing needs a trained classifier, and a made-up one would silently route
every patch to one branch.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classsr_cli.checkpoint import FORMAT, TORCH_STARTS, file_sha256, read_metadata, state_mismatches
from classsr_cli.config import FAMILY_DEFAULTS, BranchConfig, ClassSRConfig
from classsr_cli.errors import ALREADY_EXISTS, CheckpointError, ConfigError, OutputExistsError
from classsr_cli.io.files import url_refusal

if TYPE_CHECKING:
    import torch

    from classsr_cli.checkpoint import Loaded

__all__ = [
    "CONTAINERS", "ConvertResult", "authors_layout", "convert", "detect_family", "load_original", "other_network",
    "split_parts",
]

#: Wrapper keys unwrapped (first match wins, repeatedly): BasicSR's EMA weights are preferred over ``params``.
CONTAINERS = ("params_ema", "params", "state_dict", "model")
_PREFIXES = ("module.", "_orig_mod.")

#: Key names that identify a family in an original branch state dict.
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "fsrcnn": ("head_conv.0.weight", "tail_conv.weight"),
    "srresnet": ("conv_first.weight", "recon_trunk.0.conv1.weight", "HRconv.weight"),
    "carn": ("entry.weight", "b1.b1.body.0.weight", "exit.weight"),
    "rcan": ("head.0.weight", "body.0.body.0.body.3.conv_du.0.weight", "tail.1.weight"),
}
#: Other networks a user coming from their tools (Real-ESRGAN, chaiNNer, OpenModelDB) may hand to classsr, by a
#: pattern one of their state dict's keys matches, the more specific first: said as what they are, where their keys
#: said only "not a ClassSR ... branch" (convert) or "format is None" (``--model``).
_FOREIGN: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(rx), what) for rx, what in (
    (r"\.rdb1\.", "an ESRGAN/Real-ESRGAN network (RRDBNet)"),
    (r"^RRDB_trunk\.", "an ESRGAN network (RRDBNet, the original layout)"),
    (r"^model\.1\.sub\.0\.RDB1\.", "an ESRGAN network (RRDBNet, the old layout)"),
    (r"\.residual_group\.td$", "an ATD transformer"),
    (r"\.hf_blocks\.", "a CRAFT transformer"),
    (r"\.conv_block\.cab\.", "a HAT transformer"),
    (r"\.attn\.cpb_mlp\.", "a Swin2SR transformer"),
    (r"\.residual_group\.", "a SwinIR-style transformer"),
    (r"\.swin1\.", "a DRCT transformer"),
    (r"\.rpe_biases$", "an RGT transformer"),
    (r"^before_RG\.", "a DAT transformer"),
    (r"^norm_start\.", "a GRL transformer"),
    (r"^residual_layer\.\d+\.residual_layer\.", "an OmniSR network"),
    (r"^block_1\.c1_r\.", "a SPAN network"),
    (r"^unet1\.", "a Real-CUGAN network"),
    (r"\.safm\.", "a SAFMN network"),
    (r"^feats\.\d+\.lk\.", "a PLKSR network"),
    (r"^UFONE\.", "a DITN network"),
    (r"^stylegan_decoder\.", "a GFPGAN face-restoration network"),
    (r"^body\.\d+\.body\.\d+\.weight$", "an EDSR network"),
    (r"^conv_hr\.", "an MSRResNet (SRResNet in BasicSR's layout; ClassSR's branch has the older one)"),
))
#: Original keys that carry no information for us (BatchNorm's step counter is only used when momentum is None).
_DROPPED = re.compile(r".*\.num_batches_tracked$")

StateDict = dict[str, "torch.Tensor"]


@dataclass
class _Branch:
    family: str
    width: int
    extra: dict[str, int]
    scale: int
    tensors: StateDict  # our key names
    source: str


@dataclass
class ConvertResult:
    """What :func:`convert` wrote: the validated checkpoint and where each part came from."""

    output: Path
    kind: str
    family: str
    scale: int
    widths: tuple[int, ...]
    loaded: Loaded
    sources: list[dict[str, str]] = field(default_factory=list)


def _load_failure(e: Exception, path: Path | None = None) -> str:
    """A one-line reason from a ``torch.load`` failure of ``path`` (torch's own text suggests unsafe loading; we
    don't)."""
    import zipfile

    if path is not None and path.suffix.lower() != ".safetensors" and zipfile.is_zipfile(path) is False:
        with contextlib.suppress(OSError), path.open("rb") as f:
            if f.read(4) == TORCH_STARTS[0]:  # torch.save's zip without its end (a download cut short)
                return "a damaged or cut PyTorch checkpoint (not a whole zip archive); download it again"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it needs the Python object {found[1]}, which weights-only loading does not run"
    first = text.strip().split(". ")[0].splitlines()[0] if text.strip() else ""
    if type(e).__name__ == "SafetensorError":  # torch.load reads a *.safetensors name with safetensors
        return f"not a readable safetensors file ({first[:160] or type(e).__name__})"
    if isinstance(e, (RuntimeError, EOFError)) and re.search(r"PytorchStreamReader|unexpected EOF|Ran out of input", text):
        return f"a damaged or cut PyTorch checkpoint ({first[:160] or type(e).__name__}); download it again"
    return (f"not a readable PyTorch checkpoint ({type(e).__name__}{': ' + first[:160] if first else ''}); "
            "classsr only reads weights-only checkpoints")


def _refuse_own(path: Path) -> None:
    """A :class:`CheckpointError` where ``path`` is a classsr checkpoint already (its safetensors header says so): it
    said "not a ClassSR ... branch (keys: branches.0...)", naming no file."""
    try:
        meta = read_metadata(path)
    except (CheckpointError, OSError, ValueError):
        return  # not a safetensors file: torch.load says what it is
    if meta.get("format") == FORMAT:
        kind = meta.get("kind", "")
        what = {"classsr": "model", "branch": "branch", "classifier": "classifier"}.get(kind, "checkpoint")
        use = "; give it to --model as it is" if kind == "classsr" else ""
        raise CheckpointError(f"{path}: is a classsr {what} already{use} (`classsr convert` reads the ClassSR "
                              "authors' .pth files)")


def _refuse_other_bytes(path: Path) -> None:
    """A :class:`CheckpointError` where ``path`` cannot be a PyTorch checkpoint by its first bytes (neither a zip
    archive, as ``torch.save`` writes, nor a pickle, as older versions did, nor their tar): a photo said "refused: not
    a readable PyTorch checkpoint (UnpicklingError: Weights only load failed)", as if it were an unsafe pickle."""
    try:
        with path.open("rb") as f:
            head = f.read(262)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if not head:
        raise CheckpointError(f"{path}: empty file")
    if path.suffix.lower() != ".safetensors" and not (head.startswith(TORCH_STARTS) or head[257:262] == b"ustar"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (its first bytes are neither a zip archive's, as "
                              "torch.save writes, nor a pickle's)")


def load_original(path: str | os.PathLike[str]) -> StateDict:
    """Read a ``.pth`` with ``torch.load(weights_only=True)``; unwrap containers and ``module.`` prefixes.

    Anything weights-only unpickling refuses (custom classes, code) raises :class:`CheckpointError`; there is no
    fallback to full unpickling, so a malicious file never runs.
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(url_refusal(path) or f"{path}: no such file")
    _refuse_own(path)
    _refuse_other_bytes(path)
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for foreign data; all mean "refused"
        raise CheckpointError(f"{path}: refused: {_load_failure(e, path)}") from None
    while isinstance(obj, dict):
        inner = next((obj[k] for k in CONTAINERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), found {type(obj).__name__}")
    if not obj:
        raise CheckpointError(f"{path}: holds no tensors")
    out: StateDict = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        name = key
        while name.startswith(_PREFIXES):
            name = name.split(".", 1)[1]
        out[name] = value
    return out


def split_parts(sd: StateDict) -> dict[str, StateDict]:
    """Split an original state dict into parts: ``net1``/``net2``/``net3``/``classifier`` of a whole ClassSR,
    a lone ``classifier``, or a lone ``branch``."""
    heads = {k.split(".", 1)[0] for k in sd}
    if heads & {"net1", "net2", "net3"}:
        parts: dict[str, StateDict] = {}
        for key, value in sd.items():
            head, _, rest = key.partition(".")
            parts.setdefault(head, {})[rest] = value
        unknown = sorted(set(parts) - {"net1", "net2", "net3", "classifier"})
        if unknown:
            raise CheckpointError(
                f"unexpected top-level name(s) in a ClassSR checkpoint: {', '.join(unknown)}"
            )
        return parts
    if heads == {"classifier"}:
        return {"classifier": {k.partition(".")[2]: v for k, v in sd.items()}}
    if heads <= {"CondNet", "lastOut"}:
        return {"classifier": sd}
    return {"branch": sd}


def other_network(keys: Collection[str]) -> str | None:
    """What other network a state dict with these key names holds ("a HAT transformer"), or None: classsr does not
    run it, and says so by name. The ClassSR authors' own layouts are none (an RCAN's group tails look like EDSR's)."""
    if authors_layout(keys):
        return None
    found = next((what for rx, what in _FOREIGN if any(rx.search(k) for k in keys)), None)
    if found is None and keys and all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in keys):
        found = "a Real-ESRGAN compact network (SRVGGNetCompact: realesr-general, realesr-animevideo)"
    return found


def authors_layout(keys: Collection[str]) -> bool:
    """Whether these key names are a ClassSR authors' state dict convert reads (a whole ClassSR or one branch)."""
    names = set()
    for key in keys:
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        head, _, rest = key.partition(".")
        names.add(rest if head in ("net1", "net2", "net3") else key)
    return any(all(k in names for k in signature) for signature in _SIGNATURES.values())


def detect_family(sd: StateDict) -> str:
    """The family of an original branch state dict, from its key names."""
    found = [fam for fam, keys in _SIGNATURES.items() if all(k in sd for k in keys)]
    if len(found) != 1:
        other = other_network(sd)
        if other is not None:
            raise CheckpointError(f"{other}, not a ClassSR one: classsr runs ClassSR's branches (FSRCNN, CARN-M, "
                                  "SRResNet, RCAN) behind its classifier; run this one with its own tool")
        sample = ", ".join(sorted(sd)[:5])
        raise CheckpointError(f"not a ClassSR FSRCNN/CARN-M/SRResNet/RCAN branch (keys: {sample} …)")
    return found[0]


def _count(sd: StateDict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.fullmatch(k))})


def _scale_from(sd: StateDict, first: str, second: str, width: int) -> int:
    """x4 has a second upsampling conv; otherwise the first conv's output channels are 4w (x2) or 9w (x3)."""
    if second in sd:
        return 4
    ratio = sd[first].shape[0] // width
    if ratio not in (4, 9) or sd[first].shape[0] % width:
        raise CheckpointError(
            f"{first}: {sd[first].shape[0]} output channels is not 4x or 9x the width {width}"
        )
    return 2 if ratio == 4 else 3


# ---- per family: hyper-parameters from shapes, and key renames (original -> ours) ---------------------------

Renames = list[tuple[str, Callable[[re.Match[str]], str]]]


def _fsrcnn(sd: StateDict, scale: int | None) -> tuple[int, dict[str, int], int, Renames]:
    d = sd["head_conv.0.weight"].shape[0]
    s = sd["body_conv.0.0.weight"].shape[0]
    m = _count(sd, r"body_conv\.(\d+)\.weight") - 1  # the 3x3 mapping convs plus the lone PReLU
    if scale not in (None, 4):
        raise CheckpointError(
            f"the original FSRCNN deconvolution (stride {scale}, padding 3, output padding 1) does not give an "
            f"exact x{scale} output; only x4 FSRCNN checkpoints convert"
        )
    renames: Renames = [
        (r"head_conv\.(0|1)\.(\w+)", lambda g: f"head.{g[1]}.{g[2]}"),
        (r"body_conv\.0\.(0|1)\.(\w+)", lambda g: f"shrink.{g[1]}.{g[2]}"),
        (rf"body_conv\.{m + 2}\.(0|1)\.(\w+)", lambda g: f"expand.{g[1]}.{g[2]}"),
        (r"body_conv\.(\d+)\.(\w+)", lambda g: f"mapping.{int(g[1]) - 1}.{g[2]}"),
        (r"tail_conv\.(\w+)", lambda g: f"deconv.{g[1]}"),
    ]
    return d, {"s": s, "m": m}, 4, renames


def _srresnet(sd: StateDict, scale: int | None) -> tuple[int, dict[str, int], int, Renames]:
    nf = sd["conv_first.weight"].shape[0]
    extra = {"num_blocks": _count(sd, r"recon_trunk\.(\d+)\.conv1\.weight")}
    renames: Renames = [
        (r"conv_first\.(\w+)", lambda g: f"head.{g[1]}"),
        (r"recon_trunk\.(\d+)\.(conv[12])\.(\w+)", lambda g: f"blocks.{g[1]}.{g[2]}.{g[3]}"),
        (r"upconv([12])\.(\w+)", lambda g: f"upsample.{int(g[1]) - 1}.{g[2]}"),
        (r"HRconv\.(\w+)", lambda g: f"hr_conv.{g[1]}"),
        (r"conv_last\.(\w+)", lambda g: f"tail.{g[1]}"),
    ]
    return nf, extra, _scale_from(sd, "upconv1.weight", "upconv2.weight", nf), renames


def _carn(sd: StateDict, scale: int | None) -> tuple[int, dict[str, int], int, Renames]:
    if any(k.startswith(("upsample.up2.", "upsample.up3.")) for k in sd):
        raise CheckpointError("a multi-scale CARN-M checkpoint; ClassSR's branches are single-scale")
    nf = sd["entry.weight"].shape[0]
    extra = {
        "groups": nf // sd["b1.b1.body.0.weight"].shape[1],
        "num_blocks": _count(sd, r"b(\d+)\.b1\.body\.0\.weight"),
    }
    unit = {"0": "conv1", "2": "conv2", "4": "conv3"}
    fuse = {"0": "conv", "1": "bn"}
    renames: Renames = [
        (r"(sub_mean|add_mean|entry|exit)\.(\w+)", lambda g: f"{g[1]}.{g[2]}"),
        (r"b(\d+)\.b1\.body\.([024])\.(\w+)", lambda g: f"blocks.{int(g[1]) - 1}.unit.{unit[g[2]]}.{g[3]}"),
        (
            r"b(\d+)\.c([123])\.([01])\.(\w+)",
            lambda g: f"blocks.{int(g[1]) - 1}.fuse.{int(g[2]) - 1}.{fuse[g[3]]}.{g[4]}",
        ),
        (r"c(\d+)\.([01])\.(\w+)", lambda g: f"fuse.{int(g[1]) - 1}.{fuse[g[2]]}.{g[3]}"),
        (r"upsample\.up\.body\.([03])\.(\w+)", lambda g: f"upsample.{int(g[1]) // 3}.{g[2]}"),
    ]
    scale_found = _scale_from(sd, "upsample.up.body.0.weight", "upsample.up.body.3.weight", nf)
    return nf, extra, scale_found, renames


def _rcan(sd: StateDict, scale: int | None) -> tuple[int, dict[str, int], int, Renames]:
    nf = sd["head.0.weight"].shape[0]
    squeeze = sd["body.0.body.0.body.3.conv_du.0.weight"].shape[0]
    reduction = 16 if nf // 16 == squeeze else nf // squeeze
    if nf // reduction != squeeze:
        raise CheckpointError(f"RCAN attention width {squeeze} is not n_feats // r for any r at n_feats {nf}")
    num_groups = _count(sd, r"body\.(\d+)\.body\.0\.body\.0\.weight")
    num_blocks = _count(sd, r"body\.0\.body\.(\d+)\.body\.0\.weight")
    extra = {"num_groups": num_groups, "num_blocks": num_blocks, "reduction": reduction}
    rcab = {"body.0": "conv1", "body.2": "conv2", "body.3.conv_du.0": "ca_down", "body.3.conv_du.2": "ca_up"}
    renames: Renames = [
        (r"(sub_mean|add_mean)\.(\w+)", lambda g: f"{g[1]}.{g[2]}"),
        (r"head\.0\.(\w+)", lambda g: f"head.{g[1]}"),
        (
            r"body\.(\d+)\.body\.(\d+)\.(body\.0|body\.2|body\.3\.conv_du\.0|body\.3\.conv_du\.2)\.(\w+)",
            lambda g: f"groups.{g[1]}.blocks.{g[2]}.{rcab[g[3]]}.{g[4]}",
        ),
        (rf"body\.(\d+)\.body\.{num_blocks}\.(\w+)", lambda g: f"groups.{g[1]}.conv.{g[2]}"),
        (rf"body\.{num_groups}\.(\w+)", lambda g: f"body_conv.{g[1]}"),
        (r"tail\.0\.([02])\.(\w+)", lambda g: f"upsample.{int(g[1]) // 2}.{g[2]}"),
        (r"tail\.1\.(\w+)", lambda g: f"tail.{g[1]}"),
    ]
    return nf, extra, _scale_from(sd, "tail.0.0.weight", "tail.0.2.weight", nf), renames


_READERS = {"fsrcnn": _fsrcnn, "srresnet": _srresnet, "carn": _carn, "rcan": _rcan}

_CLASSIFIER_RENAMES: Renames = [
    (r"CondNet\.([02468])\.(\w+)", lambda g: f"conv{int(g[1]) // 2 + 1}.{g[2]}"),
    (r"lastOut\.(\w+)", lambda g: f"fc.{g[1]}"),
]


def _rename(sd: StateDict, renames: Renames, where: str) -> StateDict:
    compiled = [(re.compile(p), f) for p, f in renames]
    out: StateDict = {}
    unknown = []
    for key, value in sd.items():
        if _DROPPED.fullmatch(key):
            continue
        match = next(((m, f) for rx, f in compiled if (m := rx.fullmatch(key))), None)
        if match is None:
            unknown.append(key)
            continue
        out[match[1](match[0])] = value
    if unknown:
        raise CheckpointError(f"{where}: unexpected key(s) {', '.join(sorted(unknown)[:8])}")
    return out


def _check_against(module: torch.nn.Module, tensors: StateDict, where: str) -> None:
    """Every key present with the right shape, nothing extra; all problems in one error."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: (tuple(v.shape), v.is_floating_point(), str(v.dtype)) for k, v in tensors.items()}
    problems = state_mismatches(expected, found)
    if problems:
        raise CheckpointError(
            f"{where}: does not match the architecture read from its shapes: " + "; ".join(problems)
        )


def _read_branch(sd: StateDict, source: str, family: str | None, scale: int | None) -> _Branch:
    if not sd:
        raise CheckpointError(f"{source}: empty branch")
    try:
        found = detect_family(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from None
    if family not in (None, "auto", found):
        raise CheckpointError(f"{source}: holds a branch of the {found} family, not {family} (--family)")
    try:
        width, extra, found_scale, renames = _READERS[found](sd, scale)
    except KeyError as e:
        raise CheckpointError(f"{source}: {found} branch without {e}") from None
    if scale is not None and scale != found_scale:
        raise CheckpointError(f"{source}: is an x{found_scale} {found} branch, not x{scale} (--scale)")
    return _Branch(found, width, extra, found_scale, _rename(sd, renames, source), source)


def _describe(path: Path) -> dict[str, str]:
    return {"file": path.name, "sha256": file_sha256(path)}


def convert(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    family: str | None = None,
    scale: int | None = None,
    overwrite: bool = False,
) -> ConvertResult:
    """Convert original ClassSR ``.pth`` file(s) to one validated classsr checkpoint at ``output``.

    Args:
        inputs: one whole ClassSR file, one branch file, or three branch files plus one classifier file.
        output: the ``.safetensors`` file to write (atomically).
        family: expected family (``None``/``"auto"``: detect); a mismatch is an error.
        scale: expected scale (``None``: read from the shapes; FSRCNN's cannot be read and must be 4).
        overwrite: replace an existing ``output``.
    """
    import torch

    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.models import build_model

    if family not in (None, "auto") and family not in FAMILY_DEFAULTS:
        raise ConfigError(f"unknown family {family!r}; choose auto or one of {', '.join(FAMILY_DEFAULTS)}")
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"{output}: is a folder; -o names the .safetensors file to write")
    if output.suffix.lower() != ".safetensors":
        raise ConfigError(f"{output}: the output is a .safetensors file (e.g. -o {output.with_suffix('.safetensors')}), "
                          "the name `classsr models` and --model look for")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output}: {ALREADY_EXISTS}")
    paths = [Path(p) for p in inputs]
    branches: list[_Branch] = []
    classifier: tuple[StateDict, str] | None = None
    sources: list[dict[str, str]] = []
    for path in paths:
        parts = split_parts(load_original(path))
        desc = _describe(path)
        for role, sd in parts.items():
            where = f"{path} [{role}]" if role != "branch" else str(path)
            sources.append({**desc, "part": role})
            if role == "classifier":
                if classifier is not None:
                    raise CheckpointError(f"{where}: a second classifier (already have {classifier[1]})")
                classifier = (_rename(sd, _CLASSIFIER_RENAMES, where), where)
            else:
                branches.append(_read_branch(sd, where, family, scale))
    if len(branches) == 1 and classifier is None:
        return _write_branch(branches[0], output, sources)
    if len(branches) != 3:
        raise CheckpointError(
            f"found {len(branches)} branch(es){' and a classifier' if classifier else ''}: give one ClassSR "
            "checkpoint, three branch files plus a classifier file, or a single branch file"
        )
    if classifier is None:
        raise CheckpointError(
            "three branch files but no classifier: routing needs the trained Class-Module, so classsr refuses "
            "to invent one; add the classifier file (ClassSR_*.pth holds all four parts), or convert one branch"
        )
    if not any(s["part"].startswith("net") for s in sources):  # separate files: narrowest = light
        branches.sort(key=lambda b: b.width)
    first = branches[0]
    for b in branches[1:]:
        if (b.family, b.scale, b.extra) != (first.family, first.scale, first.extra):
            raise CheckpointError(
                f"{b.source}: {b.family} x{b.scale} {b.extra} does not match {first.source}: "
                f"{first.family} x{first.scale} {first.extra}"
            )
    clf, clf_where = classifier
    if "conv1.weight" not in clf:
        raise CheckpointError(f"{clf_where}: classifier without CondNet.0.weight")
    cfg = ClassSRConfig(
        family=first.family,
        scale=first.scale,
        widths=tuple(b.width for b in branches),  # type: ignore[arg-type]
        extra=dict(first.extra),
        classifier_width=int(clf["conv1.weight"].shape[0]),
    )
    model = build_model(cfg)
    tensors = {f"branches.{k}.{n}": v for k, b in enumerate(branches) for n, v in b.tensors.items()}
    tensors.update({f"classifier.{n}": v for n, v in clf.items()})
    _check_against(model, tensors, "converted ClassSR")
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    provenance = {
        "converted_from": sources,
        "original": f"XPixelGroup/ClassSR {cfg.family} (ClassSR code layout)",
    }
    save_checkpoint(model, output, provenance=provenance)
    loaded = load_checkpoint(output, expect_kind="classsr")
    return ConvertResult(output, "classsr", cfg.family, cfg.scale, cfg.widths, loaded, sources)


def _write_branch(b: _Branch, output: Path, sources: list[dict[str, str]]) -> ConvertResult:
    import torch

    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.models import build_branch

    cfg = BranchConfig(family=b.family, width=b.width, scale=b.scale, extra=dict(b.extra))
    module = build_branch(cfg)
    _check_against(module, b.tensors, b.source)
    module.load_state_dict({k: v.to(torch.float32) for k, v in b.tensors.items()}, strict=True)
    provenance = {"converted_from": sources, "original": f"XPixelGroup/ClassSR {b.family} branch"}
    save_checkpoint(module, output, config=cfg, provenance=provenance)
    loaded = load_checkpoint(output, expect_kind="branch")
    return ConvertResult(output, "branch", b.family, b.scale, (b.width,), loaded, sources)
