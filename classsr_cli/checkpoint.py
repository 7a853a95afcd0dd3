"""safetensors checkpoints with a strict string-metadata contract.

One file holds a whole ClassSR model (``kind=classsr``: classifier + three branches), one branch
(``kind=branch``) or the classifier alone (``kind=classifier``). Metadata keys (all strings):

``format`` = ``classsr``, ``format_version`` = ``1``, ``kind``, ``config`` (JSON of the config dataclass),
``classsr_version``, and optionally ``provenance`` (JSON: training recipe, data hash, metrics, source).

Loading reads the header only, checks metadata, keys, shapes and dtypes against the architecture the config
describes (built on the ``meta`` device, so nothing is allocated), reports every problem in one
:class:`CheckpointError`, and only then reads the tensors. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classsr_cli import __version__
from classsr_cli.config import BranchConfig, ClassSRConfig, from_json_dict
from classsr_cli.errors import CheckpointError, ConfigError, OutputError
from classsr_cli.io.files import is_image_name, make_folder

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "TORCH_STARTS",
    "Loaded",
    "classsr_metadata",
    "file_sha256",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
    "state_mismatches",
    "what_is",
]

FORMAT = "classsr"
FORMAT_VERSION = "1"
#: How a PyTorch checkpoint starts: torch.save's zip archive, or a bare pickle (protocols 2-5: older torch, or
#: ``_use_new_zipfile_serialization=False``).
TORCH_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """A file's SHA-256 (hex), read in pieces of 1 MiB; an :class:`OSError` where it cannot be read."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()
KINDS = ("classsr", "branch", "classifier")
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_MAX_HEADER = 16 * 1024 * 1024
#: Bytes per element of every safetensors dtype, to check each tensor's extent before anything is allocated.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass
class Loaded:
    """A loaded checkpoint: the module, its config and its metadata."""

    path: Path
    kind: str
    module: nn.Module
    config: ClassSRConfig | BranchConfig
    metadata: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)


def _kind_of(module: nn.Module) -> tuple[str, ClassSRConfig | BranchConfig]:
    from classsr_cli.models.classsr import ClassSR

    if isinstance(module, ClassSR):
        return "classsr", module.cfg
    cfg = getattr(module, "classsr_config", None)
    if isinstance(cfg, BranchConfig):
        return "branch", cfg
    if isinstance(cfg, ClassSRConfig):
        return "classifier", cfg
    raise TypeError("save_checkpoint needs a ClassSR model, or a branch/classifier tagged with classsr_config")


def save_checkpoint(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    config: ClassSRConfig | BranchConfig | None = None,
) -> Path:
    """Write ``module`` to ``path`` atomically (temporary file in the same folder, then rename).

    ``config`` is needed for a bare branch or classifier (``kind`` is inferred from its type).
    """
    from safetensors.torch import save_file

    if config is None:
        kind, config = _kind_of(module)
    elif isinstance(config, BranchConfig):
        kind = "branch"
    else:
        from classsr_cli.models.classsr import ClassSR

        kind = "classsr" if isinstance(module, ClassSR) else "classifier"
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "classsr_version": __version__,
    }
    if provenance:
        meta["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
    tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError.of(path, e) from None
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        shareable(tmp)  # after: save_file makes its own file
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError.of(path, e) from None
        raise
    return path


def shareable(path: str | os.PathLike[str]) -> None:
    """Give a file made by :func:`tempfile.mkstemp` (mode 0600) the mode a plain ``open`` would: 0666 less the
    umask, so that a deployed model or a run's files are readable by whom the user's other files are."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _run_model(path: Path) -> str:
    """Where the model of the training run whose file ``path`` is goes (its folder's ``classsr.safetensors``)."""
    return f"the model a run exports is {path.parent / 'classsr.safetensors'}"


class _PyTorchFile(CheckpointError):
    """A PyTorch checkpoint where a safetensors file was read (:func:`_read_header`): the doors a user names a model at
    (:func:`_user_header`) say whose network it holds; listings (``classsr models``, ``doctor``) do not load it."""


def _user_header(path: Path) -> dict[str, Any]:
    """:func:`_read_header` for a file the user named as a model: a PyTorch checkpoint is read weights-only, as convert
    reads it, and another network's is named by its keys ("run it with its own tool", where it said to convert it and
    convert then refused it); the ClassSR authors' keep the advice to convert them."""
    try:
        return _read_header(path)
    except _PyTorchFile as e:
        from classsr_cli.convert import load_original, other_network

        try:
            other = other_network(load_original(path))
        except CheckpointError:
            other = None
        if other is None:
            raise CheckpointError(str(e)) from None
        raise CheckpointError(f"{path}: {other} (a PyTorch checkpoint), not a classsr model; run it with its own "
                              "tool") from None


#: Other tools' model files by suffix: what a ``--model`` of one says it is (a Real-ESRGAN-ncnn-vulkan user's
#: ``realesrgan-x4plus.bin`` said "not a safetensors file (header length 4294967297 exceeds the file)").
_OTHER_MODELS = {
    ".onnx": "an ONNX model", ".param": "an ncnn model's layers (ncnn-vulkan upscalers)",
    ".bin": "a binary file (ncnn-vulkan upscalers keep their weights in one)", ".engine": "a TensorRT engine",
    ".trt": "a TensorRT engine", ".tflite": "a TensorFlow Lite model", ".pb": "a TensorFlow model",
    ".mlmodel": "a Core ML model", ".npy": "a NumPy array", ".npz": "NumPy arrays",
}


def _other_format(path: Path) -> str | None:
    """What a file that is no safetensors is by its name (a picture, another tool's model), or None."""
    if is_image_name(path):  # (`-m photo.png`: arguments swapped)
        return (f"{path}: not a safetensors file, but a picture by its name; a model is a classsr .safetensors file "
                "(`classsr models` lists them)")
    what = _OTHER_MODELS.get(path.suffix.lower())
    if what is None:
        return None
    return (f"{path}: not a classsr model but, by its name, {what}; a model is a classsr .safetensors file "
            "(`classsr models` lists them)")


def _read_header(path: Path) -> dict[str, Any]:
    """Parse the safetensors JSON header with size checks before any allocation."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
            if head.startswith(TORCH_STARTS):
                if path.name.endswith(".state.pt"):  # a training stage's resume state, which convert does not read
                    raise CheckpointError(f"{path}: a training run's resume state (`classsr train` goes on from it), "
                                          f"not a model; {_run_model(path)}")
                raise _PyTorchFile(f"{path}: a PyTorch checkpoint (.pth, pickled), not safetensors; turn it into one "
                                   "with `classsr convert`")  # a zip (torch.save) or a bare pickle
            (n,) = struct.unpack("<Q", head)
            if n > min(_MAX_HEADER, size - 8):
                raise CheckpointError(_other_format(path) or f"{path}: not a safetensors file (header length {n} "
                                      "exceeds the file)")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(_other_format(path) or f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is not an object)")
    if not isinstance(header.get("__metadata__", {}), dict):
        raise CheckpointError(f"{path}: corrupt (metadata is not an object)")
    data_len = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            begin, end = info["data_offsets"]
            ok = 0 <= begin <= end <= data_len
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}: truncated or corrupt (tensor {key!r} lies outside the file)")
        dtype, shape = info.get("dtype"), info.get("shape")
        if dtype not in _ITEMSIZE:
            raise CheckpointError(f"{path}: corrupt (tensor {key!r} has unknown dtype {dtype!r})")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise CheckpointError(f"{path}: corrupt (tensor {key!r} has shape {shape!r})")
        numel = 1
        for d in shape:
            numel *= d
        if numel * _ITEMSIZE[dtype] != end - begin:
            raise CheckpointError(
                f"{path}: corrupt (tensor {key!r}: shape {shape} of {dtype} needs {numel * _ITEMSIZE[dtype]} bytes, "
                f"the file gives it {end - begin})"
            )
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The checkpoint's string metadata (header only; no tensor is read)."""
    path = Path(path)
    meta = _read_header(path).get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: metadata is not an object")
    return {str(k): str(v) for k, v in meta.items()}


def _foreign(path: Path, keys: list[str]) -> tuple[str, str] | None:
    """What a safetensors file without classsr's metadata holds, where its key names say, and what to do: a run's
    fitted base, another network (:func:`~classsr_cli.convert.other_network`), the ClassSR authors' layout."""
    from classsr_cli.convert import authors_layout, other_network

    if keys == ["fitted_base"]:  # a residual run's RUN/base.safetensors
        return "a training run's fitted base", f"not a model (its branches' upsampler); {_run_model(path)}"
    other = other_network(keys)
    if other is not None:
        return other, "not a classsr model; run it with its own tool (`classsr models` lists the classsr ones)"
    if authors_layout(keys):
        return "the ClassSR authors' weights", ("without classsr's metadata; `classsr convert` turns them into a "
                                                "classsr checkpoint")
    return None


def what_is(path: str | os.PathLike[str]) -> str | None:
    """What a ``.safetensors`` file that is no classsr checkpoint holds, in a few words ("a HAT transformer"), where
    its key names say; ``None`` otherwise (a classsr checkpoint, a damaged file, keys that say nothing)."""
    try:
        header = _read_header(Path(path))
    except CheckpointError:
        return None
    if "format" in (header.get("__metadata__") or {}):
        return None
    found = _foreign(Path(path), [k for k in header if k != "__metadata__"])
    return found[0] if found else None


def classsr_metadata(path: str | os.PathLike[str], header: dict[str, Any] | None = None) -> dict[str, str]:
    """The checkpoint's string metadata, where it has classsr's (a ``format`` entry); a safetensors file without it
    (another tool's model) raises :class:`CheckpointError` saying what it holds where its key names tell: it said
    "format is None, expected 'classsr' (convert foreign weights first)" of weights convert does not read either."""
    path = Path(path)
    header = _user_header(path) if header is None else header
    meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    if "format" in meta:
        return meta
    keys = [k for k in header if k != "__metadata__"]
    found = _foreign(path, keys)
    if found is not None:
        raise CheckpointError(f"{path}: {found[0]}, {found[1]}")
    sample = ", ".join(sorted(keys)[:4])
    raise CheckpointError(f"{path}: not a classsr model (a safetensors file without classsr's metadata"
                          f"{'; keys: ' + sample + ' …' if sample else ''})")


def _config_from_meta(path: Path, meta: dict[str, str]) -> tuple[str, ClassSRConfig | BranchConfig]:
    problems = []
    if meta.get("format") != FORMAT:
        problems.append(f"format is {meta.get('format')!r}, expected {FORMAT!r} (convert foreign weights first)")
    if meta.get("format_version") != FORMAT_VERSION:
        problems.append(f"format_version is {meta.get('format_version')!r}, this classsr reads {FORMAT_VERSION!r}")
    kind = meta.get("kind", "")
    if kind not in KINDS:
        problems.append(f"kind is {kind!r}, expected one of {', '.join(KINDS)}")
    if problems:
        raise CheckpointError(f"{path}: " + "; ".join(problems))
    try:
        raw = json.loads(meta["config"])
        cls = BranchConfig if kind == "branch" else ClassSRConfig
        cfg = from_json_dict(cls, raw)
    except KeyError:
        raise CheckpointError(f"{path}: metadata has no 'config'") from None
    except (json.JSONDecodeError, ConfigError) as e:
        raise CheckpointError(f"{path}: bad config in metadata: {e}") from None
    return kind, cfg


def state_mismatches(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[tuple[int, ...], bool, str]]
) -> list[str]:
    """Every difference between an architecture's keys/shapes and a file's ``(shape, is_float, dtype)`` entries."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing key(s): {', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected key(s): {', '.join(unexpected[:8])}{' …' if len(unexpected) > 8 else ''}")
    for k in sorted(set(expected) & set(found)):
        shape, is_float, dtype = found[k]
        if shape != expected[k]:
            problems.append(f"{k}: shape {list(shape)} != expected {list(expected[k])}")
        if not is_float:
            problems.append(f"{k}: dtype {dtype} is not a float type classsr loads")
    return problems


def _build(kind: str, cfg: ClassSRConfig | BranchConfig) -> nn.Module:
    from classsr_cli.models import build_branch, build_model
    from classsr_cli.models.classifier import Classifier

    if kind == "classsr":
        assert isinstance(cfg, ClassSRConfig)
        return build_model(cfg)
    if kind == "branch":
        assert isinstance(cfg, BranchConfig)
        module = build_branch(cfg)
    else:
        assert isinstance(cfg, ClassSRConfig)
        module = Classifier(
            width=cfg.classifier_width, kernel=cfg.classifier_kernel, hidden=cfg.classifier_hidden,
            zero_mean=cfg.classifier_zero_mean, context=cfg.classifier_context,
        )
    module.classsr_config = cfg  # type: ignore[assignment]
    return module


class _NoInitOnMeta(torch.overrides.TorchFunctionMode):
    """In-place operations on meta tensors (the initialisers: ``normal_``, ``uniform_``, ``zero_``...) left out.
    A skeleton has shapes, no values, and torch runs those operations on meta tensors through its reference
    implementations, which import torch._dynamo: about a second of every command's start-up."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__") and args and isinstance(args[0], torch.Tensor) \
                and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def _skeleton(kind: str, cfg: ClassSRConfig | BranchConfig) -> nn.Module:
    """The module a checkpoint's config describes, on the meta device: its shapes validate the header before
    anything is allocated (a config asking for huge widths is refused, not allocated)."""
    with torch.device("meta"), _NoInitOnMeta():
        return _build(kind, cfg)


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    expect_kind: str | None = None,
) -> Loaded:
    """Validate and load a checkpoint. Raises :class:`CheckpointError` listing every mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header = _user_header(path)
    meta = classsr_metadata(path, header)
    kind, cfg = _config_from_meta(path, meta)
    if expect_kind is not None and kind != expect_kind:
        if expect_kind == "classsr" and kind == "branch":  # `--model run/baseline.safetensors`: one network alone
            run = f"; {_run_model(path)}" if (path.parent / "classsr.safetensors").is_file() else ""
            raise CheckpointError(f"{path}: one {cfg.family} branch, not a whole ClassSR model (a classifier and three "
                                  f"branches){run}")
        raise CheckpointError(f"{path}: holds a {kind} checkpoint, expected {expect_kind}")
    expected = {k: tuple(v.shape) for k, v in _skeleton(kind, cfg).state_dict().items()}
    found = {
        k: (tuple(v.get("shape", ())), v.get("dtype") in _DTYPES, str(v.get("dtype")))
        for k, v in header.items()
        if k != "__metadata__"
    }
    problems = state_mismatches(expected, found)
    if problems:
        raise CheckpointError(f"{path}: does not match its {cfg.family} {kind} config: " + "; ".join(problems))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: unreadable safetensors data: {e}") from None
    broken = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if broken:  # NaN or infinite weights compute a black (or NaN) picture without a word
        raise CheckpointError(f"{path}: non-finite weights (NaN or infinity) in {', '.join(broken[:3])}"
                              f"{', ...' if len(broken) > 3 else ''}: the file is damaged or its training diverged")
    module = _build(kind, cfg)
    module.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    module = module.to(device=device, dtype=dtype or torch.float32).eval()
    try:
        provenance = json.loads(meta.get("provenance", "{}"))
    except json.JSONDecodeError:
        provenance = {}
    return Loaded(path=path, kind=kind, module=module, config=cfg, metadata=meta, provenance=provenance)
