"""classsr_cli.checkpoint: untrusted safetensors files (corrupt headers, offsets, dtypes, shapes, metadata) are
refused with one line naming the file before any tensor is read (issue 7)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from classsr_cli.cli import app
from classsr_cli.errors import CheckpointError

runner = CliRunner()


def cli(*args: str | Path) -> Result:
    return runner.invoke(app, [str(a) for a in args])


# ---------------------------------------------------------------------------------- untrusted checkpoints


def _tensors_file(path: Path, header: dict | bytes, data: bytes = b"", declared: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + data)
    return path


def _header_of(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _edited(src: Path, dst: Path, edit: object) -> Path:
    header, data = _header_of(src)
    edit(header)  # type: ignore[operator]
    return _tensors_file(dst, header, data)


def _first_key(h: dict) -> str:
    return sorted(k for k in h if k != "__metadata__")[0]


CORRUPT = {
    "header length beyond the file": (lambda p, d: _tensors_file(d, {"a": 1}, declared=1 << 40), "header length"),
    "header length above 16 MiB": (lambda p, d: _tensors_file(d, b" " * 10, b"\0" * 64, declared=1 << 25),
                                   "header length"),
    "not JSON": (lambda p, d: _tensors_file(d, b"{not json at all"), "not JSON"),
    "not an object": (lambda p, d: _tensors_file(d, b"[1, 2]"), "not an object"),
    "metadata not an object": (lambda p, d: _tensors_file(d, {"__metadata__": [1]}), "metadata"),
    "offsets beyond the file": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(data_offsets=[0, 1 << 40])), "outside the file"),
    "negative offsets": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(data_offsets=[-8, 4])), "outside the file"),
    "unknown dtype": (lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(dtype="Q128")), "unknown dtype"),
    "shape disagrees with the bytes": (
        lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(shape=[1 << 20, 1 << 20])), "needs"),
    "int dtype": (lambda p, d: _edited(p, d, lambda h: h[_first_key(h)].update(dtype="I32")), "not a float type"),
    "wrong shape for the config": (
        lambda p, d: _edited(p, d, lambda h: h.__setitem__("__metadata__", {
            **h["__metadata__"], "config": h["__metadata__"]["config"].replace('"widths": [4, 6, 8]',
                                                                               '"widths": [4, 6, 9]')})),
        "shape"),
    "wrong format": (
        lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(format="other")), "format is 'other'"),
    "wrong kind": (lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(kind="branch")), "config"),
    "no metadata": (lambda p, d: _edited(p, d, lambda h: h.pop("__metadata__")),
                    "not a classsr model (a safetensors file without classsr's metadata; keys: branches."),
    "bad config JSON": (lambda p, d: _edited(p, d, lambda h: h["__metadata__"].update(config="{")), "bad config"),
    "missing tensor": (lambda p, d: _edited(p, d, lambda h: h.pop(_first_key(h))), "missing key"),
    "truncated": (lambda p, d: d.write_bytes(p.read_bytes()[:-100]) and d, "outside the file"),
    "too short": (lambda p, d: d.write_bytes(b"\x01\x02") and d, "only 2 bytes"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_checkpoints_are_refused_before_reading_tensors(
    tiny_model_path: Path, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classsr_cli.checkpoint import load_checkpoint

    make, message = CORRUPT[kind]
    bad = make(tiny_model_path, tmp_path / "bad [1].safetensors")

    def no_tensor_read(*a: object, **k: object) -> None:
        raise AssertionError("tensors were read before the header was validated")

    monkeypatch.setattr("safetensors.torch.load_file", no_tensor_read)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert str(bad) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_corrupt_checkpoint_through_the_cli(tiny_model_path: Path, photo: Path, tmp_path: Path) -> None:
    bad = CORRUPT["int dtype"][0](tiny_model_path, tmp_path / "bad.safetensors")
    r = cli("upscale", photo, "--model", bad)
    assert r.exit_code == 1 and r.stderr.startswith("error: ") and str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not photo.with_name("photo_x4.png").exists()


@pytest.mark.parametrize(("keys", "said"), [
    (["conv_first.weight", "body.0.rdb1.conv1.weight"], "an ESRGAN/Real-ESRGAN network (RRDBNet), not a classsr model; "
     "run it with its own tool (`classsr models` lists the classsr ones)"),
    (["conv_first.weight", "layers.0.residual_group.blocks.0.conv_block.cab.0.weight"], "a HAT transformer, not a "
     "classsr model; run it with its own tool (`classsr models` lists the classsr ones)"),
    (["net1.conv_first.weight", "net1.recon_trunk.0.conv1.weight", "net1.HRconv.weight", "classifier.x.weight"],
     "the ClassSR authors' weights, without classsr's metadata; `classsr convert` turns them into a classsr checkpoint"),
    (["conv.weight"], "not a classsr model (a safetensors file without classsr's metadata; keys: conv.weight …)"),
])
def test_another_tools_safetensors_is_said_as_what_it_holds(keys: list[str], said: str, photo: Path,
                                                             tmp_path: Path) -> None:
    """A model from another tool in safetensors (OpenModelDB's, chaiNNer's) handed to ``--model`` said "format is
    None, expected 'classsr' (convert foreign weights first); format_version is None ...", and without ``-x`` "its
    header records no scale", of weights convert refuses too; it is named by its key names, through every door."""
    import torch
    from safetensors.torch import save_file

    other = tmp_path / "4x-other.safetensors"
    save_file({k: torch.zeros(2) for k in keys}, str(other))
    for args in (("upscale", photo, "--model", other), ("upscale", photo, "-x", "4", "--model", other),
                 ("video", photo, tmp_path / "v.mp4", "--model", other), ("models", other)):
        r = cli(*args)
        assert (r.exit_code, r.stderr) == (1, f"error: {other}: {said}\n"), args


def test_loading_a_model_does_not_import_the_compiler() -> None:
    """The meta-device skeleton a checkpoint is validated against skips its initialisers, which on meta tensors
    pull in torch._dynamo (about a second of every command's start-up on the CPU)."""
    import subprocess
    import sys

    code = ("import sys; from classsr_cli import zoo; zoo.load(None, 4); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_a_config_asking_for_huge_branches_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    """The header is checked against a skeleton on the meta device: a config whose heavy branch would take
    hundreds of GB is refused with the tensors it lacks, one clear error, not a failed allocation."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    torch.manual_seed(0)
    cfg = ClassSRConfig("residual", 2, (0, 4, 6), {"depth": 1}, classifier_width=8)
    path = save_checkpoint(build_model(cfg), tmp_path / "small.safetensors")
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    huge = json.loads(meta["config"])
    huge["widths"] = [0, 4, 200_000]  # 200,000² x 9 weights a layer: 1.4 TB of float32
    meta["config"] = json.dumps(huge)
    bad = tmp_path / "huge.safetensors"
    save_file(load_file(str(path)), str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match=r"branches\.2\..*shape"):
        load_checkpoint(bad)


def test_non_finite_weights_and_pytorch_files_are_refused_and_files_are_shareable(tiny_model_path: Path,
                                                                                  photo: Path, tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A model with NaN weights wrote a black picture with exit 0; a .pth given as --model read as a safetensors
    header "of 578712552184433488 bytes"; a saved checkpoint was mode 0600 whatever the umask."""
    import os

    import torch

    from classsr_cli.checkpoint import load_checkpoint, save_checkpoint

    header, data = _header_of(tiny_model_path)
    name = sorted(k for k in header if k != "__metadata__")[0]
    begin, _ = header[name]["data_offsets"]
    poisoned = bytearray(data)
    poisoned[begin : begin + 4] = struct.pack("<f", float("nan"))
    raw = json.dumps(header).encode()
    nan = tmp_path / "nan.safetensors"
    nan.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(poisoned))
    with pytest.raises(CheckpointError, match=rf"non-finite weights \(NaN or infinity\) in {name}"):
        load_checkpoint(nan)
    r = cli("upscale", photo, "--model", nan, "-o", tmp_path / "black.png")
    assert r.exit_code != 0 and "non-finite weights" in r.stderr and not (tmp_path / "black.png").exists()
    pth = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(2)}, pth)
    with pytest.raises(CheckpointError, match=r"a PyTorch checkpoint \(\.pth, pickled\), not safetensors; .*`classsr convert`"):
        load_checkpoint(pth)
    from test_convert import FAMILIES

    for family, (build, _, widths) in FAMILIES.items():  # the authors' branches are sent to convert, not misnamed
        branch = tmp_path / f"{family}.pth"
        torch.save(build(widths[0]), branch)
        with pytest.raises(CheckpointError, match=r"^\S+: a PyTorch checkpoint \(\.pth, pickled\), not safetensors"):
            load_checkpoint(branch)
    esrgan = tmp_path / "4x-esrgan.pth"  # another network's: convert refuses it too, so it is named at once
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(2), "body.0.rdb1.conv1.weight": torch.zeros(2)}}, esrgan)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(esrgan)
    assert str(e.value) == (f"{esrgan}: an ESRGAN/Real-ESRGAN network (RRDBNet) (a PyTorch checkpoint), not a classsr "
                            "model; run it with its own tool")
    r = cli("models", esrgan)  # named on its own: said alike
    assert (r.exit_code, r.stderr) == (1, f"error: {e.value!s}\n")
    from classsr_cli.zoo import is_checkpoint

    monkeypatch.setattr("classsr_cli.convert.load_original", lambda p: pytest.fail("a listing loaded a .pth"))
    assert not is_checkpoint(esrgan)  # a listing (models, doctor) asks only whether it is one: nothing is loaded
    for name, what in (("realesrgan-x4plus.param", "an ncnn model's layers (ncnn-vulkan upscalers)"),
                       ("realesrgan-x4plus.bin", "a binary file (ncnn-vulkan upscalers keep their weights in one)"),
                       ("model.onnx", "an ONNX model"), ("hr.npy", "a NumPy array")):
        other = tmp_path / name  # another tool's model: said by its name, where it said "header length ... exceeds"
        other.write_bytes(b"7767517\n3 3\n" if name.endswith(".param") else bytes(range(200)))
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(other)
        assert str(e.value) == (f"{other}: not a classsr model but, by its name, {what}; a model is a classsr "
                                ".safetensors file (`classsr models` lists them)")
    photo_as_model = tmp_path / "photo.png"  # `-m photo.png`, arguments swapped
    photo_as_model.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(photo_as_model)
    assert str(e.value) == (f"{photo_as_model}: not a safetensors file, but a picture by its name; a model is a classsr "
                            ".safetensors file (`classsr models` lists them)")
    state = tmp_path / "run" / "baseline.state.pt"  # a run's resume state: `classsr convert` does not read it
    state.parent.mkdir()
    torch.save({"w": torch.zeros(2)}, state)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(state)
    assert str(e.value) == (f"{state}: a training run's resume state (`classsr train` goes on from it), not a model; "
                            f"the model a run exports is {tmp_path / 'run' / 'classsr.safetensors'}")
    old = os.umask(0o022)
    try:
        saved = save_checkpoint(load_checkpoint(tiny_model_path).module, tmp_path / "shared.safetensors")
    finally:
        os.umask(old)
    assert saved.stat().st_mode & 0o777 == 0o644
