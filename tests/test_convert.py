"""`classsr convert`: original ClassSR key layouts -> our checkpoints, checked against independent functional
forwards written here from the original code's structure (docs/original_checkpoints.md)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import requires_data

from classsr_cli.checkpoint import load_checkpoint, read_metadata
from classsr_cli.convert import convert, load_original
from classsr_cli.errors import CheckpointError, OutputExistsError

Sd = dict[str, torch.Tensor]
MEAN = torch.tensor([0.4488, 0.4371, 0.4040])

# ---- original-layout state dicts with seeded random values ----------------------------------------------------


def _t(*shape: int, std: float = 0.1) -> torch.Tensor:
    return torch.randn(*shape) * std


def _conv(sd: Sd, name: str, cout: int, cin: int, k: int, bias: bool = True) -> None:
    sd[f"{name}.weight"] = _t(cout, cin, k, k, std=(2.0 / (cin * k * k)) ** 0.5)
    if bias:
        sd[f"{name}.bias"] = _t(cout, std=0.05)


def _mean_shift(sd: Sd, name: str, sign: int, rgb_range: float) -> None:
    sd[f"{name}.weight"] = (torch.eye(3) + _t(3, 3, std=0.02)).view(3, 3, 1, 1)
    sd[f"{name}.bias"] = sign * rgb_range * MEAN + _t(3, std=0.01 * rgb_range)


def _bn(sd: Sd, name: str, c: int) -> None:
    sd[f"{name}.weight"] = 1 + _t(c)
    sd[f"{name}.bias"] = _t(c)
    sd[f"{name}.running_mean"] = _t(c)
    sd[f"{name}.running_var"] = torch.rand(c) + 0.5
    sd[f"{name}.num_batches_tracked"] = torch.tensor(1234)


def _up_convs(scale: int) -> list[int]:
    return [2, 2] if scale == 4 else [scale]


def orig_fsrcnn(d: int, s: int = 5, m: int = 2) -> Sd:
    sd: Sd = {}
    _conv(sd, "head_conv.0", d, 3, 5)
    sd["head_conv.1.weight"] = torch.rand(1) * 0.3
    _conv(sd, "body_conv.0.0", s, d, 1)
    sd["body_conv.0.1.weight"] = torch.rand(1) * 0.3
    for i in range(1, m + 1):
        _conv(sd, f"body_conv.{i}", s, s, 3)
    sd[f"body_conv.{m + 1}.weight"] = torch.rand(1) * 0.3
    _conv(sd, f"body_conv.{m + 2}.0", d, s, 1)
    sd[f"body_conv.{m + 2}.1.weight"] = torch.rand(1) * 0.3
    sd["tail_conv.weight"] = _t(d, 3, 9, 9, std=0.05)  # ConvTranspose2d: (in, out, k, k)
    sd["tail_conv.bias"] = _t(3, std=0.05)
    return sd


def ref_fsrcnn(sd: Sd, x: torch.Tensor) -> torch.Tensor:
    m = len({k.split(".")[1] for k in sd if k.startswith("body_conv.") and k.count(".") == 2}) - 1

    def c(name: str, y: torch.Tensor) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        return F.conv2d(y, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    y = F.prelu(c("head_conv.0", x), sd["head_conv.1.weight"])
    y = F.prelu(c("body_conv.0.0", y), sd["body_conv.0.1.weight"])
    for i in range(1, m + 1):
        y = c(f"body_conv.{i}", y)
    y = F.prelu(y, sd[f"body_conv.{m + 1}.weight"])
    y = F.prelu(c(f"body_conv.{m + 2}.0", y), sd[f"body_conv.{m + 2}.1.weight"])
    return F.conv_transpose2d(
        y, sd["tail_conv.weight"], sd["tail_conv.bias"], stride=4, padding=3, output_padding=1
    )


def orig_srresnet(nf: int, nb: int = 2, scale: int = 4) -> Sd:
    sd: Sd = {}
    _conv(sd, "conv_first", nf, 3, 3)
    for i in range(nb):
        _conv(sd, f"recon_trunk.{i}.conv1", nf, nf, 3)
        _conv(sd, f"recon_trunk.{i}.conv2", nf, nf, 3)
    for j, f in enumerate(_up_convs(scale), start=1):
        _conv(sd, f"upconv{j}", nf * f * f, nf, 3)
    _conv(sd, "HRconv", nf, nf, 3)
    _conv(sd, "conv_last", 3, nf, 3)
    return sd


def _c(sd: Sd, name: str, y: torch.Tensor, groups: int = 1) -> torch.Tensor:
    w = sd[f"{name}.weight"]
    return F.conv2d(y, w, sd.get(f"{name}.bias"), padding=w.shape[-1] // 2, groups=groups)


def ref_srresnet(sd: Sd, x: torch.Tensor) -> torch.Tensor:
    nf = sd["conv_first.weight"].shape[0]
    scale = 4 if "upconv2.weight" in sd else int((sd["upconv1.weight"].shape[0] // nf) ** 0.5)
    lrelu = lambda y: F.leaky_relu(y, 0.1)  # noqa: E731
    y = lrelu(_c(sd, "conv_first", x))
    i = 0
    while f"recon_trunk.{i}.conv1.weight" in sd:
        y = y + _c(sd, f"recon_trunk.{i}.conv2", F.relu(_c(sd, f"recon_trunk.{i}.conv1", y)))
        i += 1
    for j, f in enumerate(_up_convs(scale), start=1):
        y = lrelu(F.pixel_shuffle(_c(sd, f"upconv{j}", y), f))
    y = _c(sd, "conv_last", lrelu(_c(sd, "HRconv", y)))
    return y + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def orig_carn(nf: int, group: int = 4, scale: int = 4) -> Sd:
    sd: Sd = {}
    _mean_shift(sd, "sub_mean", -1, 1.0)
    _mean_shift(sd, "add_mean", 1, 1.0)
    _conv(sd, "entry", nf, 3, 3)
    for b in (1, 2, 3):
        _conv(sd, f"b{b}.b1.body.0", nf, nf // group, 3)
        _conv(sd, f"b{b}.b1.body.2", nf, nf // group, 3)
        _conv(sd, f"b{b}.b1.body.4", nf, nf, 1)
        for k in (1, 2, 3):
            _conv(sd, f"b{b}.c{k}.0", nf, nf * (k + 1), 1, bias=False)
            _bn(sd, f"b{b}.c{k}.1", nf)
    for k in (1, 2, 3):
        _conv(sd, f"c{k}.0", nf, nf * (k + 1), 1, bias=False)
        _bn(sd, f"c{k}.1", nf)
    for j, f in enumerate(_up_convs(scale)):
        _conv(sd, f"upsample.up.body.{3 * j}", nf * f * f, nf // group, 3)
    _conv(sd, "exit", 3, nf, 3)
    return sd


def ref_carn(sd: Sd, x: torch.Tensor) -> torch.Tensor:
    nf = sd["entry.weight"].shape[0]
    group = nf // sd["b1.b1.body.0.weight"].shape[1]

    def basic(name: str, y: torch.Tensor) -> torch.Tensor:  # conv1x1 no bias + BN (eval) + ReLU
        y = F.conv2d(y, sd[f"{name}.0.weight"])
        bn = {k: sd[f"{name}.1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        y = F.batch_norm(y, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], False, 0.1, 1e-5)
        return F.relu(y)

    def eres(prefix: str, y: torch.Tensor) -> torch.Tensor:
        out = F.relu(_c(sd, f"{prefix}.body.0", y, group))
        out = F.relu(_c(sd, f"{prefix}.body.2", out, group))
        return F.relu(_c(sd, f"{prefix}.body.4", out) + y)

    def cascade(
        y: torch.Tensor, stage: Callable[[int, torch.Tensor], torch.Tensor], fuse: str
    ) -> torch.Tensor:
        cat, o = y, y
        for k in (1, 2, 3):
            cat = torch.cat([cat, stage(k, o)], 1)
            o = basic(f"{fuse}c{k}", cat)
        return o

    y = _c(sd, "entry", _c(sd, "sub_mean", x))
    y = cascade(y, lambda k, o: cascade(o, lambda _k, oo: eres(f"b{k}.b1", oo), f"b{k}."), "")
    j = 0
    while f"upsample.up.body.{3 * j}.weight" in sd:
        w = sd[f"upsample.up.body.{3 * j}.weight"]
        f = int((w.shape[0] // nf) ** 0.5)
        y = F.pixel_shuffle(F.relu(_c(sd, f"upsample.up.body.{3 * j}", y, group)), f)
        j += 1
    return _c(sd, "add_mean", _c(sd, "exit", y))


def orig_rcan(nf: int, ng: int = 2, nb: int = 2, reduction: int = 4, scale: int = 4) -> Sd:
    sd: Sd = {}
    _mean_shift(sd, "sub_mean", -1, 255.0)
    _mean_shift(sd, "add_mean", 1, 255.0)
    _conv(sd, "head.0", nf, 3, 3)
    for g in range(ng):
        for b in range(nb):
            p = f"body.{g}.body.{b}.body"
            _conv(sd, f"{p}.0", nf, nf, 3)
            _conv(sd, f"{p}.2", nf, nf, 3)
            _conv(sd, f"{p}.3.conv_du.0", nf // reduction, nf, 1)
            _conv(sd, f"{p}.3.conv_du.2", nf, nf // reduction, 1)
        _conv(sd, f"body.{g}.body.{nb}", nf, nf, 3)
    _conv(sd, f"body.{ng}", nf, nf, 3)
    for j, f in enumerate(_up_convs(scale)):
        _conv(sd, f"tail.0.{2 * j}", nf * f * f, nf, 3)
    _conv(sd, "tail.1", 3, nf, 3)
    return sd


def ref_rcan(sd: Sd, x255: torch.Tensor) -> torch.Tensor:
    """The original forward on [0, 255] input."""
    nf = sd["head.0.weight"].shape[0]
    y = _c(sd, "head.0", _c(sd, "sub_mean", x255))
    res = y
    g = 0
    while f"body.{g}.body.0.body.0.weight" in sd:
        gin = res
        b = 0
        while f"body.{g}.body.{b}.body.0.weight" in sd:
            p = f"body.{g}.body.{b}.body"
            r = _c(sd, f"{p}.2", F.relu(_c(sd, f"{p}.0", res)))
            a = F.adaptive_avg_pool2d(r, 1)
            a = torch.sigmoid(_c(sd, f"{p}.3.conv_du.2", F.relu(_c(sd, f"{p}.3.conv_du.0", a))))
            res = res + r * a
            b += 1
        res = _c(sd, f"body.{g}.body.{b}", res) + gin
        g += 1
    res = _c(sd, f"body.{g}", res) + y
    j = 0
    while f"tail.0.{2 * j}.weight" in sd:
        f = int((sd[f"tail.0.{2 * j}.weight"].shape[0] // nf) ** 0.5)
        res = F.pixel_shuffle(_c(sd, f"tail.0.{2 * j}", res), f)
        j += 1
    return _c(sd, "add_mean", _c(sd, "tail.1", res))


def orig_classifier(width: int = 16) -> Sd:
    sd: Sd = {}
    _conv(sd, "CondNet.0", width, 3, 4)
    for i in (2, 4, 6):
        _conv(sd, f"CondNet.{i}", width, width, 1)
    _conv(sd, "CondNet.8", 32, width, 1)
    sd["lastOut.weight"] = _t(3, 32, std=0.3)
    sd["lastOut.bias"] = _t(3)
    return sd


def ref_classifier(sd: Sd, x01: torch.Tensor) -> torch.Tensor:
    y = F.leaky_relu(F.conv2d(x01, sd["CondNet.0.weight"], sd["CondNet.0.bias"], stride=4), 0.1)
    for i in (2, 4, 6):
        y = F.leaky_relu(F.conv2d(y, sd[f"CondNet.{i}.weight"], sd[f"CondNet.{i}.bias"]), 0.1)
    y = F.conv2d(y, sd["CondNet.8.weight"], sd["CondNet.8.bias"])
    return F.linear(F.avg_pool2d(y, y.shape[2]).flatten(1), sd["lastOut.weight"], sd["lastOut.bias"])


# (builder at a width, reference forward on [0,1] input, widths light/medium/heavy)
FAMILIES: dict[str, tuple[Callable[..., Sd], Callable[[Sd, torch.Tensor], torch.Tensor], tuple[int, ...]]] = {
    "fsrcnn": (orig_fsrcnn, ref_fsrcnn, (4, 6, 8)),
    "srresnet": (orig_srresnet, ref_srresnet, (4, 6, 8)),
    "carn": (orig_carn, ref_carn, (4, 8, 12)),
    "rcan": (orig_rcan, lambda sd, x: ref_rcan(sd, x * 255.0) / 255.0, (4, 8, 12)),
}


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # RCAN computes in [0, 255] float32


# ---- tests --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_whole_classsr_matches_reference(family: str, tmp_path: Path) -> None:
    build, ref, widths = FAMILIES[family]
    nets = {f"net{k + 1}": build(w) for k, w in enumerate(widths)}
    clf = orig_classifier()
    flat = {f"classifier.{k}": v for k, v in clf.items()}
    flat.update({f"{n}.{k}": v for n, sd in nets.items() for k, v in sd.items()})
    # as DataParallel + a training container would save it
    src = _save(
        {"state_dict": {f"module.{k}": v for k, v in flat.items()}, "iter": 5}, tmp_path / "ClassSR.pth"
    )
    result = convert([src], tmp_path / "out.safetensors")
    assert (result.kind, result.family, result.scale, result.widths) == ("classsr", family, 4, widths)
    model = load_checkpoint(result.output, expect_kind="classsr").module
    x = torch.rand(4, 3, 8, 8)
    with torch.no_grad():
        _close(model.classifier(x), ref_classifier(clf, x))
        for k in range(3):
            _close(model.forward_routed(x, force_branch=k)[0], ref(nets[f"net{k + 1}"], x))
        sr, classes = model.forward_routed(x, batch_size=4)
        expect_cls = ref_classifier(clf, x).argmax(1)
        assert torch.equal(classes, expect_cls)
        expected = torch.cat([ref(nets[f"net{int(c) + 1}"], x[i : i + 1]) for i, c in enumerate(expect_cls)])
        _close(sr, expected)


@pytest.mark.parametrize("family", ["srresnet", "carn", "rcan"])
@pytest.mark.parametrize("scale", [2, 3])
def test_single_branch_other_scales(family: str, scale: int, tmp_path: Path) -> None:
    build, ref, widths = FAMILIES[family]
    sd = build(widths[1], scale=scale)
    src = _save({"params_ema": sd, "params": {}}, tmp_path / f"{family}_branch2.pth")
    result = convert([src], tmp_path / "b.safetensors", family=family)
    assert (result.kind, result.scale, result.widths) == ("branch", scale, (widths[1],))
    x = torch.rand(2, 3, 7, 9)
    with torch.no_grad():
        _close(result.loaded.module(x), ref(sd, x))


def test_branch_files_plus_classifier_sorted_by_width(tmp_path: Path) -> None:
    build, ref, widths = FAMILIES["carn"]
    nets = [build(w) for w in widths]
    files = [_save(nets[k], tmp_path / f"CARN_branch{k + 1}.pth") for k in (2, 0, 1)]
    files.append(_save({"classifier." + k: v for k, v in orig_classifier(8).items()}, tmp_path / "clf.pth"))
    result = convert(files, tmp_path / "carn.safetensors", scale=4)
    assert result.widths == widths
    model = result.loaded.module
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        for k in range(3):
            _close(model.forward_routed(x, force_branch=k)[0], ref(nets[k], x))
    provenance = json.loads(read_metadata(result.output)["provenance"])
    names = {s["file"] for s in provenance["converted_from"]}
    assert names == {"CARN_branch1.pth", "CARN_branch2.pth", "CARN_branch3.pth", "clf.pth"}
    assert all(len(s["sha256"]) == 64 for s in provenance["converted_from"])


def test_three_branches_without_classifier_refused(tmp_path: Path) -> None:
    files = [_save(orig_srresnet(w), tmp_path / f"b{w}.pth") for w in (4, 6, 8)]
    with pytest.raises(CheckpointError, match="no classifier"):
        convert(files, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    src = _save({"conv_first.weight": torch.zeros(1), "payload": _Evil(marker)}, tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        convert([src], tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="refused"):
        load_original(src)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_garbage_refused(content: bytes, tmp_path: Path) -> None:
    src = tmp_path / "bad.pth"
    src.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.pth"):
        convert([src], tmp_path / "x.safetensors")


@pytest.mark.parametrize("content", [b"\xff" * 64, b"\x03\x00\x00\x00\x00\x00\x00\x00{1}"])
def test_a_damaged_safetensors_input_is_named_as_one(content: bytes, tmp_path: Path) -> None:
    # torch.load reads a *.safetensors name with safetensors: its failure is not a pickle's
    src = tmp_path / "bad.safetensors"
    src.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: refused: not a readable safetensors file \(") as e:
        convert([src], tmp_path / "x.safetensors")
    assert "PyTorch" not in str(e.value) and "weights-only" not in str(e.value)
    src.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")  # readable, and empty
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: holds no tensors"):
        convert([src], tmp_path / "x.safetensors")


def test_what_is_not_the_authors_checkpoint_is_named(tmp_path: Path) -> None:
    """classsr's own checkpoint said "not a ClassSR ... branch (keys: branches.0...)", naming no file; a photo
    "refused: not a readable PyTorch checkpoint (UnpicklingError: Weights only load failed)", as an unsafe pickle
    would; an empty file "refused: ... (EOFError)"."""
    from PIL import Image

    from classsr_cli.checkpoint import save_checkpoint
    from classsr_cli.config import ClassSRConfig
    from classsr_cli.models import build_model

    own = tmp_path / "mine.safetensors"
    save_checkpoint(build_model(ClassSRConfig(widths=(4, 6, 8))), own)
    with pytest.raises(CheckpointError) as e:
        convert([own], tmp_path / "x.safetensors")
    assert str(e.value) == (f"{own}: is a classsr model already; give it to --model as it is (`classsr convert` "
                            "reads the ClassSR authors' .pth files)")
    photo = tmp_path / "photo.pth"
    Image.new("RGB", (4, 4)).save(photo, format="PNG")
    with pytest.raises(CheckpointError) as e:
        convert([photo], tmp_path / "x.safetensors")
    assert str(e.value) == (f"{photo}: not a PyTorch checkpoint (its first bytes are neither a zip archive's, as "
                            "torch.save writes, nor a pickle's)")
    for name in ("empty.pth", "empty.safetensors"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(tmp_path / name))}: empty file$"):
            convert([tmp_path / name], tmp_path / "x.safetensors")
    legacy = _save(orig_srresnet(4), tmp_path / "legacy.pth")  # the old pickle format still reads
    torch.save(orig_srresnet(4), legacy, _use_new_zipfile_serialization=False)
    assert legacy.read_bytes()[:1] == b"\x80" and convert([legacy], tmp_path / "l.safetensors").kind == "branch"
    sd = {"foo.weight": torch.zeros(2)}
    with pytest.raises(CheckpointError, match=r"^\S*d\.pth: not a ClassSR FSRCNN/CARN-M/SRResNet/RCAN branch"):
        convert([_save(sd, tmp_path / "d.pth")], tmp_path / "x.safetensors")


@pytest.mark.parametrize(("keys", "said"), [
    (["conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up1.weight"], "an ESRGAN/Real-ESRGAN network (RRDBNet)"),
    (["model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"], "an ESRGAN network (RRDBNet, the old layout)"),
    (["conv_first.weight", "layers.0.residual_group.blocks.0.norm1.weight"], "a SwinIR-style transformer"),
    (["conv_first.weight", "relative_position_index_SA", "layers.0.residual_group.blocks.0.conv_block.cab.0.weight"],
     "a HAT transformer"),
    (["relative_position_index_SA", "layers.0.residual_group.td", "layers.0.residual_group.layers.0.norm1.weight"],
     "an ATD transformer"),
    (["layers.0.residual_group.blocks.0.attn.cpb_mlp.0.weight", "layers.0.residual_group.blocks.0.norm1.weight"],
     "a Swin2SR transformer"),
    (["conv_first.weight", "before_RG.1.weight", "layers.0.blocks.0.ffn.sg.conv.weight"], "a DAT transformer"),
    (["before_RG.1.weight", "layers.0.blocks.0.attn.attns.0.rpe_biases"], "an RGT transformer"),
    (["conv_first.weight", "layers.0.swin1.norm1.weight"], "a DRCT transformer"),
    (["input.weight", "residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "up.0.weight"], "an OmniSR network"),
    (["conv_1.sk.weight", "block_1.c1_r.sk.weight", "conv_cat.weight"], "a SPAN network"),
    (["unet1.conv1.conv.0.weight", "unet2.conv1.conv.0.weight"], "a Real-CUGAN network"),
    (["to_feat.weight", "feats.0.safm.mfr.0.weight"], "a SAFMN network"),
    (["feats.0.weight", "feats.1.lk.conv.weight", "feats.1.refine.weight"], "a PLKSR network"),
    (["stylegan_decoder.style_mlp.1.weight", "toRGB.0.weight"], "a GFPGAN face-restoration network"),
    (["sub_mean.weight", "head.0.weight", "body.0.body.0.weight", "tail.0.0.weight"], "an EDSR network"),
    (["conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight", "conv_last.weight"],
     "an MSRResNet (SRResNet in BasicSR's layout; ClassSR's branch has the older one)"),
    (["body.0.weight", "body.0.bias", "body.1.weight", "body.2.weight", "body.2.bias"],
     "a Real-ESRGAN compact network (SRVGGNetCompact: realesr-general, realesr-animevideo)"),
])
def test_another_networks_weights_are_named(keys: list[str], said: str, tmp_path: Path) -> None:
    """Real-ESRGAN's or SwinIR's weights, which a user coming from those tools may hand to convert, said "not a ClassSR
    FSRCNN/CARN-M/SRResNet/RCAN branch (keys: ...)"; they are named as what they are."""
    src = _save({"params_ema": {k: torch.zeros(2) for k in keys}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError) as e:
        convert([src], tmp_path / "x.safetensors")
    assert str(e.value) == (f"{src}: {said}, not a ClassSR one: classsr runs ClassSR's branches (FSRCNN, CARN-M, "
                            "SRResNet, RCAN) behind its classifier; run this one with its own tool")


def test_a_cut_checkpoint_is_said_as_one(tmp_path: Path) -> None:
    """A download cut short, in torch.save's zip or the older pickle layout, said "refused: not a readable PyTorch
    checkpoint (RuntimeError: ...); classsr only reads weights-only checkpoints", which is not what is wrong."""
    for zipped in (True, False):
        whole = tmp_path / f"whole{zipped}.pth"
        torch.save(orig_srresnet(4), whole, _use_new_zipfile_serialization=zipped)
        cut = tmp_path / f"cut{zipped}.pth"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        with pytest.raises(CheckpointError) as e:
            convert([cut], tmp_path / "x.safetensors")
        assert str(e.value).startswith(f"{cut}: refused: a damaged or cut PyTorch checkpoint (")
        assert str(e.value).endswith("); download it again") and "weights-only" not in str(e.value)


def test_mismatches_refused(tmp_path: Path) -> None:
    src = _save(orig_srresnet(8), tmp_path / "b.pth")
    with pytest.raises(CheckpointError, match=r"b\.pth: holds a branch of the srresnet family, not rcan \(--family\)$"):
        convert([src], tmp_path / "x.safetensors", family="rcan")
    with pytest.raises(CheckpointError, match=r"b\.pth: is an x4 srresnet branch, not x2 \(--scale\)$"):  # "a x4"
        convert([src], tmp_path / "x.safetensors", scale=2)
    bad = orig_srresnet(8)
    bad["extra_layer.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="extra_layer"):
        convert([_save(bad, tmp_path / "c.pth")], tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="not a ClassSR"):
        convert([_save({"foo.weight": torch.zeros(2)}, tmp_path / "d.pth")], tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="x4"):
        convert([_save(orig_fsrcnn(4), tmp_path / "e.pth")], tmp_path / "x.safetensors", scale=3)
    assert not (tmp_path / "x.safetensors").exists()


def test_existing_output_refused(tmp_path: Path) -> None:
    src = _save(orig_srresnet(4), tmp_path / "b.pth")
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        convert([src], out)
    assert out.read_bytes() == b"keep"
    convert([src], out, overwrite=True)
    assert read_metadata(out)["kind"] == "branch"


@requires_data("val", "Set5", "baby.png")
@pytest.mark.data
def test_fsrcnn_force_branch_on_real_photo_patch(tmp_path: Path) -> None:
    import numpy as np
    from conftest import DATA
    from PIL import Image

    img = np.asarray(Image.open(DATA / "val" / "Set5" / "baby.png").convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(img[100:132, 200:232]).permute(2, 0, 1)[None].contiguous()
    nets = {f"net{k + 1}": orig_fsrcnn(d, s=12, m=4) for k, d in enumerate((16, 36, 56))}
    flat = {f"classifier.{k}": v for k, v in orig_classifier(128).items()}
    flat.update({f"{n}.{k}": v for n, sd in nets.items() for k, v in sd.items()})
    result = convert([_save(flat, tmp_path / "ClassSR_FSRCNN.pth")], tmp_path / "f.safetensors")
    assert result.loaded.config == result.loaded.config.paper("fsrcnn")
    with torch.no_grad():
        for k in range(3):
            _close(
                result.loaded.module.forward_routed(x, force_branch=k)[0], ref_fsrcnn(nets[f"net{k + 1}"], x)
            )


def test_cli_convert(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from classsr_cli.cli import app

    src = _save(orig_rcan(8, ng=1, nb=1), tmp_path / "RCAN_branch1.pth")
    out = tmp_path / "rcan.safetensors"
    runner = CliRunner()
    ok = runner.invoke(app, ["convert", str(src), "-o", str(out), "--family", "rcan"])
    assert ok.exit_code == 0, ok.output
    assert "rcan" in ok.output and out.exists()
    from classsr_cli.zoo import list_models

    # someone else's weights, converted: not trained here (`classsr models` said yes: it has a provenance)
    assert [m.trained for m in list_models([out]) if m.path == out] == [False]
    again = runner.invoke(app, ["convert", str(src), "-o", str(out)])
    assert again.exit_code != 0
    assert "exists" in again.output and "Traceback" not in again.output


def test_cli_convert_paths_are_one_line_errors(tmp_path: Path) -> None:
    """A missing or folder input, and an output that is a folder or not a .safetensors name, are one line each
    (they were Typer's boxed usage errors, or a safetensors file written as ``x.pth`` that `classsr models` skips)."""
    from typer.testing import CliRunner

    from classsr_cli.cli import app

    src = _save(orig_srresnet(4), tmp_path / "b.pth")
    (tmp_path / "dir.safetensors").mkdir()
    runner = CliRunner()
    cases = [
        (["missing.pth", "-o", tmp_path / "a.safetensors"], 1, "missing.pth: no such file"),
        ([tmp_path, "-o", tmp_path / "a.safetensors"], 1, "is a folder, not a checkpoint file"),
        ([src, "-o", tmp_path / "a.pth"], 2, "a.pth: the output is a .safetensors file (e.g. -o "),
        ([src, "-o", tmp_path / "dir.safetensors"], 2, "is a folder; -o names the .safetensors file to write"),
    ]
    for args, code, message in cases:
        r = runner.invoke(app, ["convert", *map(str, args)])
        assert r.exit_code == code and message in r.stderr, r.output
        assert len(r.stderr.strip().splitlines()) == 1 and "Usage" not in r.output
    assert not (tmp_path / "a.pth").exists() and not (tmp_path / "a.safetensors").exists()
