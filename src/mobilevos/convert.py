"""Convert an official STCN checkpoint (Cheng et al., NeurIPS 2021, MIT licence) to ``teacher-r50``.

STCN's network has the same modules as our ``teacher-r50`` preset; only the names differ, plus one
detail: STCN's value encoder is a ResNet-18 whose convolutions carry biases, while our trunks are
plain torchvision ResNets. Every such convolution is followed by a BatchNorm, which STCN keeps
frozen (eval statistics) in training and inference, so the bias folds exactly into that BatchNorm's
running mean: ``BN(conv(x) + b) = BN'(conv(x))`` with ``running_mean' = running_mean - b``.

The conversion is an explicit key map with shape checks (no ``strict=False``): every STCN key must
be consumed and every teacher key produced, or the conversion fails naming the keys.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from mobilevos.checkpoint import save_checkpoint
from mobilevos.config import get_preset
from mobilevos.errors import CheckpointError
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.model.weights import load_state_dict_strict

# (STCN prefix, our prefix), first match wins.
_PREFIXES = (
    ("key_encoder.res2.", "query_encoder.trunk.layer1."),
    ("key_encoder.", "query_encoder.trunk."),
    ("key_proj.key_proj.", "query_encoder.key_proj."),
    ("key_comp.", "query_encoder.key_comp."),
    ("value_encoder.fuser.", "value_encoder.fuser."),
    ("value_encoder.", "value_encoder.trunk."),
    ("decoder.", "decoder."),
)

# A biased convolution in STCN's value ResNet and the BatchNorm that follows it.
_CONV_TO_BN = (
    (re.compile(r"^(value_encoder\.)conv1\.bias$"), r"\1bn1."),
    (re.compile(r"^(value_encoder\.layer\d\.\d\.)conv(\d)\.bias$"), r"\1bn\2."),
    (re.compile(r"^(value_encoder\.layer\d\.\d\.downsample\.)0\.bias$"), r"\g<1>1."),
)


def stcn_key(key: str) -> str:
    """Map one STCN state-dict key to the ``teacher-r50`` key."""
    for old, new in _PREFIXES:
        if key.startswith(old):
            return new + key[len(old) :]
    raise CheckpointError(f"unexpected STCN key {key!r}")


def _fold_conv_biases(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Fold value-encoder conv biases into the following BatchNorm's running mean."""
    state = dict(state)
    for key in [k for k in state if k.startswith("value_encoder.") and k.endswith(".bias")]:
        for pattern, bn_prefix in _CONV_TO_BN:
            if pattern.match(key):
                bn_mean = pattern.sub(bn_prefix, key) + "running_mean"
                if bn_mean not in state:
                    raise CheckpointError(f"STCN key {key} has no BatchNorm {bn_mean}")
                state[bn_mean] = state[bn_mean] - state.pop(key)
                break
    return state


def _single_to_multi_object(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """STCN's static-image stage has one mask channel; add the "other objects" channel (zeros)."""
    weight = state.get("value_encoder.conv1.weight")
    if weight is not None and weight.shape[1] == 4:
        state = dict(state)
        state["value_encoder.conv1.weight"] = torch.cat([weight, weight.new_zeros(64, 1, 7, 7)], 1)
    return state


def convert_stcn_state_dict(stcn: dict[str, Tensor]) -> dict[str, Tensor]:
    """Return a ``teacher-r50`` state dict equivalent (in eval mode) to an STCN state dict."""
    state = _fold_conv_biases(_single_to_multi_object(stcn))
    return {stcn_key(k): v for k, v in state.items()}


def _read_stcn(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable torch file ({type(exc).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("network"), dict):
        data = data["network"]  # STCN's training checkpoints wrap the weights
    if not isinstance(data, dict) or not any(str(k).startswith("key_encoder.") for k in data):
        raise CheckpointError(f"{path}: not an STCN state dict (no key_encoder.* weights)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def convert_stcn(in_path: str | Path, out_path: str | Path) -> MobileVOS:
    """Convert STCN weights at ``in_path`` to a ``teacher-r50`` checkpoint at ``out_path``."""
    in_path = Path(in_path)
    model = build_model(get_preset("teacher-r50"), pretrained=False)
    state = convert_stcn_state_dict(_read_stcn(in_path))
    # STCN's files may lack BatchNorm batch counters; they carry no weights, take ours.
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, value)
    load_state_dict_strict(model, state, str(in_path))
    save_checkpoint(model, out_path, meta={"converted_from": "stcn", "source": in_path.name})
    return model.eval()
