"""The network as one fixed-shape program per verb: what every format writes.

    encode_query    image (1, 3, H, W) -> key, value, f16, f8, f4
    encode_value    what the value encoder reads of the frame (image, f16 for a value
                    trunk; f4, f8, f16 for the mask branch), masks (1, K, H, W)
                    -> values (1, K, Cv, h, w)
    segment         key, value, f8, f4, memory keys/values, valid, present (0/1 float
                    masks) -> logits

Each verb is a small module over the same :class:`~mobilevos.model.network.MobileVOS` the
PyTorch engine runs, called with positional tensors in the order :func:`graph_inputs` names
them; the formats capture these modules at the export's shapes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import Tensor, nn

from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import STRIDE, MobileVOS

GRAPHS_VERSION = 2
"""Raised when the programs compute something else from the same weights and config (2: the
mask branch pools the masks before pairing them; objects combined where ``aggregate_at``
says), so that the export cache exports them again."""


class QueryGraph(nn.Module):
    """``encode_query``: the frame's key, its own value and the decoder's skips."""

    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.encode_query(image))


class ValueGraph(nn.Module):
    """``encode_value`` with the inputs the value encoder reads (its ``reads``), then masks."""

    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model
        self.reads = model.value_encoder.reads

    def forward(self, *inputs: Tensor) -> Tensor:
        named = dict(zip(self.reads, inputs, strict=False))
        # Fields the encoder does not read are not graph inputs; it never touches them.
        query = QueryFeatures(*(named.get(f) for f in QueryFeatures._fields))
        return self.model.value_encoder(named.get("image"), query, inputs[-1])


class SegmentGraph(nn.Module):
    """``segment``: the memory readout, the decoder and the soft aggregation."""

    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        key: Tensor,
        value: Tensor,
        f8: Tensor,
        f4: Tensor,
        memory_keys: Tensor,
        memory_values: Tensor,
        valid: Tensor,
        present: Tensor,
    ) -> Tensor:
        query = QueryFeatures(key, value, key, f8, f4)  # f16 is not read by the decoder
        readout = self.model.read(query, memory_keys, memory_values, valid)
        return self.model.decode(query, readout, present).logits


def verb_modules(model: MobileVOS) -> dict[str, nn.Module]:
    """The three verbs' modules, in eval mode: a module in training mode would update the
    BatchNorm statistics of the model on every call, changing the weights between programs."""
    return {
        "encode_query": QueryGraph(model).eval(),
        "encode_value": ValueGraph(model).eval(),
        "segment": SegmentGraph(model).eval(),
    }


def graph_inputs(
    model: MobileVOS, size: tuple[int, int], max_objects: int, slots: int
) -> dict[str, dict[str, Tensor]]:
    """Example inputs of each verb's program, named and in call order. Shapes follow the model
    at ``size`` (H, W), ``max_objects`` objects and ``slots`` memory slots."""
    h, w = size
    image = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        query = model.encode_query(image)
    k, s = max_objects, slots
    cv = model.config.value_dim
    frame = {"image": image, **query._asdict()}
    return {
        "encode_query": {"image": image},
        "encode_value": {
            **{name: frame[name] for name in model.value_encoder.reads},
            "masks": torch.zeros(1, k, h, w),
        },
        "segment": {
            "key": query.key,
            "value": query.value,
            "f8": query.f8,
            "f4": query.f4,
            "memory_keys": query.key[:, :, None].repeat(1, 1, s, 1, 1),
            "memory_values": torch.zeros(1, k, cv, s, h // STRIDE, w // STRIDE),
            # 0/1 masks in fp32: a program then never converts a type (nothing outside XNNPACK).
            "valid": torch.ones(1, k, s),
            "present": torch.ones(1, k),
        },
    }


def describe(tensors: dict[str, Tensor]) -> list[dict[str, Any]]:
    """Names, shapes and dtypes of named tensors, as the manifest lists a program's inputs."""
    return [
        {"name": n, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for n, t in tensors.items()
    ]


def export_digest(model: MobileVOS) -> str:
    """What ``model``'s programs are made from, as 12 hex digits of a sha256: its weights, its
    config (the same weights under another ``aggregate_at`` make other programs) and
    :data:`GRAPHS_VERSION`. The export cache names its folders with it."""
    config = json.dumps(model.config.to_dict(), sort_keys=True)
    key = f"{weights_hash(model)} {config} {GRAPHS_VERSION}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def weights_hash(model: MobileVOS) -> str:
    """sha256 over the state dict's names and fp32 bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
