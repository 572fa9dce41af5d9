"""The STCN converter, tested on a state dict laid out with STCN's key names and shapes.

The layout below was written from STCN's public model code (model/network.py, modules.py,
mod_resnet.py, cbam.py): a torchvision ResNet-50 key encoder whose layer1 is named ``res2``, a
ResNet-18 value encoder whose convolutions carry biases, a CBAM fuser, and the decoder.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18, resnet50

from mobilevos.checkpoint import load_model
from mobilevos.cli import main
from mobilevos.convert import convert_stcn, convert_stcn_state_dict
from mobilevos.errors import CheckpointError

# Non-trunk STCN keys and their shapes (weight, and a bias of the first dimension).
STCN_HEAD_SHAPES = {
    "key_proj.key_proj": (64, 1024, 3, 3),
    "key_comp": (512, 1024, 3, 3),
    "value_encoder.fuser.block1.downsample": (512, 1280, 3, 3),
    "value_encoder.fuser.block1.conv1": (512, 1280, 3, 3),
    "value_encoder.fuser.block1.conv2": (512, 512, 3, 3),
    "value_encoder.fuser.attention.ChannelGate.mlp.1": (32, 512),
    "value_encoder.fuser.attention.ChannelGate.mlp.3": (512, 32),
    "value_encoder.fuser.attention.SpatialGate.spatial.conv": (1, 2, 7, 7),
    "value_encoder.fuser.block2.conv1": (512, 512, 3, 3),
    "value_encoder.fuser.block2.conv2": (512, 512, 3, 3),
    "decoder.compress.downsample": (512, 1024, 3, 3),
    "decoder.compress.conv1": (512, 1024, 3, 3),
    "decoder.compress.conv2": (512, 512, 3, 3),
    "decoder.up_16_8.skip_conv": (512, 512, 3, 3),
    "decoder.up_16_8.out_conv.downsample": (256, 512, 3, 3),
    "decoder.up_16_8.out_conv.conv1": (256, 512, 3, 3),
    "decoder.up_16_8.out_conv.conv2": (256, 256, 3, 3),
    "decoder.up_8_4.skip_conv": (256, 256, 3, 3),
    "decoder.up_8_4.out_conv.conv1": (256, 256, 3, 3),
    "decoder.up_8_4.out_conv.conv2": (256, 256, 3, 3),
    "decoder.pred": (1, 256, 3, 3),
}


def _trunk_state(net: torch.nn.Module, prefix: str, rename_layer1: str | None = None) -> dict:
    out = {}
    for key, value in net.state_dict().items():
        if key.startswith(("layer4.", "fc.")):
            continue
        if rename_layer1 and key.startswith("layer1."):
            key = rename_layer1 + key[len("layer1") :]
        out[prefix + key] = value.clone()
    return out


def make_stcn_state_dict(seed: int = 0, single_object: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = _trunk_state(resnet50(), "key_encoder.", rename_layer1="res2")
    value = _trunk_state(resnet18(), "value_encoder.")
    value["value_encoder.conv1.weight"] = (
        torch.randn(64, 4 if single_object else 5, 7, 7, generator=g) * 0.05
    )
    for key in list(value):
        if key.endswith(("conv1.weight", "conv2.weight", "downsample.0.weight")):
            value[key[: -len("weight")] + "bias"] = torch.randn(value[key].shape[0], generator=g)
        if key.endswith(("running_mean", "running_var")):
            value[key] = torch.rand(value[key].shape, generator=g) + 0.5
    state.update(value)
    for name, shape in STCN_HEAD_SHAPES.items():
        state[name + ".weight"] = torch.randn(shape, generator=g) * 0.02
        state[name + ".bias"] = torch.randn(shape[0], generator=g) * 0.02
    return state


def biased_resnet18_trunk(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """STCN's value ResNet-18 (convolutions with biases, eval BatchNorm), written out by hand."""

    def conv_bn(x, conv, bn, stride=1, padding=1):
        x = F.conv2d(x, state[conv + ".weight"], state[conv + ".bias"], stride, padding)
        return F.batch_norm(
            x,
            state[bn + ".running_mean"],
            state[bn + ".running_var"],
            state[bn + ".weight"],
            state[bn + ".bias"],
            False,
        )

    p = "value_encoder."
    x = F.max_pool2d(F.relu(conv_bn(x, p + "conv1", p + "bn1", 2, 3)), 3, 2, 1)
    for layer in (1, 2, 3):
        for block in (0, 1):
            b = f"{p}layer{layer}.{block}."
            stride = 2 if layer > 1 and block == 0 else 1
            out = F.relu(conv_bn(x, b + "conv1", b + "bn1", stride))
            out = conv_bn(out, b + "conv2", b + "bn2")
            if b + "downsample.0.weight" in state:
                x = conv_bn(x, b + "downsample.0", b + "downsample.1", stride, 0)
            x = F.relu(out + x)
    return x


def test_every_stcn_key_maps_with_matching_shape_and_folded_biases_are_exact(tmp_path):
    stcn = make_stcn_state_dict()
    source = tmp_path / "stcn.pth"
    torch.save(stcn, source)
    teacher = convert_stcn(source, tmp_path / "teacher.ckpt")
    x = torch.randn(1, 5, 64, 64)
    with torch.no_grad():
        ours = teacher.value_encoder.trunk(x).f16
    torch.testing.assert_close(ours, biased_resnet18_trunk(stcn, x), atol=1e-4, rtol=1e-4)
    ours_state = teacher.state_dict()
    assert torch.equal(
        ours_state["query_encoder.trunk.layer1.0.conv1.weight"],
        stcn["key_encoder.res2.0.conv1.weight"],
    )
    assert torch.equal(
        ours_state["query_encoder.key_proj.weight"], stcn["key_proj.key_proj.weight"]
    )
    assert torch.equal(ours_state["decoder.pred.bias"], stcn["decoder.pred.bias"])
    assert torch.equal(
        ours_state["value_encoder.fuser.attention.ChannelGate.mlp.3.weight"],
        stcn["value_encoder.fuser.attention.ChannelGate.mlp.3.weight"],
    )
    reloaded = load_model(tmp_path / "teacher.ckpt")
    assert reloaded.config.name == "teacher-r50"


def test_single_object_checkpoint_gets_a_zero_other_objects_channel():
    converted = convert_stcn_state_dict(make_stcn_state_dict(single_object=True))
    stem = converted["value_encoder.trunk.conv1.weight"]
    assert stem.shape == (64, 5, 7, 7) and torch.all(stem[:, 4] == 0)


def test_missing_or_misshaped_keys_fail_with_names(tmp_path):
    stcn = make_stcn_state_dict()
    del stcn["decoder.pred.weight"]
    torch.save({"network": stcn}, tmp_path / "wrapped.pth")  # STCN's training checkpoint form
    with pytest.raises(CheckpointError, match=r"missing \[decoder\.pred\.weight\]"):
        convert_stcn(tmp_path / "wrapped.pth", tmp_path / "out.ckpt")
    stcn = make_stcn_state_dict()
    stcn["key_comp.weight"] = torch.zeros(256, 1024, 3, 3)
    torch.save(stcn, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"query_encoder\.key_comp\.weight"):
        convert_stcn(tmp_path / "shape.pth", tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_cli_convert_refuses_a_file_that_is_not_stcn(tmp_path, capsys):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(1)}, path)
    assert main(["convert", "stcn", str(path), str(tmp_path / "out.ckpt")]) == 2
    assert "not an STCN state dict" in capsys.readouterr().err
