"""Decoder from memory readout to per-object logits, and soft aggregation over objects."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mobilevos.device import autocast_off
from mobilevos.model.blocks import (
    ResBlock,
    SeparableResBlock,
    UpsampleBlock,
    cat_objects,
    plus_objects,
)


class DecoderOutput(NamedTuple):
    """Shapes: logits (B, K, H/4, W/4) per-object logits at the decoder's stride 4; hidden
    (B, K, D4, H/4, W/4) the last hidden feature map (the representation distilled by the
    training loss)."""

    logits: Tensor
    hidden: Tensor


class Decoder(nn.Module):
    """STCN's decoder: compress readout + query feature, upsample with skips to stride 4."""

    def __init__(self, in_dim: int, skip_dims: tuple[int, int], dims: tuple[int, int, int]) -> None:
        super().__init__()
        c4, c8 = skip_dims
        d16, d8, d4 = dims
        self.compress = ResBlock(in_dim, d16)
        self.up_16_8 = UpsampleBlock(c8, d16, d8)
        self.up_8_4 = UpsampleBlock(c4, d8, d4)
        self.pred = nn.Conv2d(d4, 1, 3, padding=1)

    def forward(
        self, readout: Tensor, query_value: Tensor, f8: Tensor, f4: Tensor
    ) -> DecoderOutput:
        """Shapes: readout (B, K, Cv, h, w), query_value (B, Cq, h, w), f8/f4 the query's skips."""
        b, k = readout.shape[:2]
        x = cat_objects([readout.flatten(0, 1).to(query_value.dtype), query_value])
        x = self.compress(x)
        x = self.up_16_8(f8, x)
        hidden = self.up_8_4(f4, x)
        logits = self.pred(F.relu(hidden))
        return DecoderOutput(
            logits.view(b, k, *logits.shape[-2:]), hidden.view(b, k, *hidden.shape[1:])
        )


class LightDecoder(nn.Module):
    """A decoder whose per-object work is a few separable convolutions.

    Everything that does not depend on the object is computed once per frame: the projections
    of the query's own stride-16 feature and of the stride-8 and stride-4 skips. Per object, the
    readout is projected and added to the query's projection, refined by separable residual
    blocks at strides 16, 8 and 4, and narrowed by a 1x1 convolution *before* each upsampling
    (the two are linear and commute, and the narrower map is cheaper to upsample). Same inputs
    and outputs as :class:`Decoder`.
    """

    def __init__(
        self,
        value_dim: int,
        query_value_dim: int,
        skip_dims: tuple[int, int],
        dims: tuple[int, int, int],
    ) -> None:
        super().__init__()
        c4, c8 = skip_dims
        d16, d8, d4 = dims
        self.readout_proj = nn.Conv2d(value_dim, d16, 1)
        self.query_proj = nn.Conv2d(query_value_dim, d16, 1)
        self.block16 = nn.Sequential(SeparableResBlock(d16), SeparableResBlock(d16))
        self.narrow8 = nn.Conv2d(d16, d8, 1)
        self.skip8 = nn.Conv2d(c8, d8, 1)
        self.block8 = SeparableResBlock(d8)
        self.narrow4 = nn.Conv2d(d8, d4, 1)
        self.skip4 = nn.Conv2d(c4, d4, 1)
        self.block4 = SeparableResBlock(d4)
        self.pred = nn.Conv2d(d4, 1, 3, padding=1)

    def forward(
        self, readout: Tensor, query_value: Tensor, f8: Tensor, f4: Tensor
    ) -> DecoderOutput:
        """Shapes: readout (B, K, Cv, h, w), query_value (B, Cq, h, w), f8/f4 the query's skips."""
        b, k = readout.shape[:2]
        q = self.query_proj(query_value)
        x = plus_objects(self.readout_proj(readout.flatten(0, 1).to(q.dtype)), q)
        x = self.block16(x)
        x = plus_objects(_upsample(self.narrow8(F.relu(x)), f8), self.skip8(f8))
        x = self.block8(x)
        hidden = plus_objects(_upsample(self.narrow4(F.relu(x)), f4), self.skip4(f4))
        hidden = self.block4(hidden)
        logits = self.pred(F.relu(hidden))
        return DecoderOutput(
            logits.view(b, k, *logits.shape[-2:]), hidden.view(b, k, *hidden.shape[1:])
        )


def _upsample(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def to_image(logits: Tensor) -> Tensor:
    """Stride-4 maps (B, C, H/4, W/4) to image size (B, C, H, W), bilinearly (as STCN)."""
    return F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)


def aggregate(object_logits: Tensor, present: Tensor | None = None) -> Tensor:
    """Soft aggregation (STM/STCN) of independent per-object predictions into K+1 classes.

    Each object's sigmoid probability is kept as is, the background gets the probability that no
    object is present, and the K+1 values are turned back into logits, so that a softmax over
    them is a proper distribution over background and objects.

    Shapes:
        object_logits: (B, K, H, W)
        present: (B, K) bool (or 0/1 float), False for padding objects (their probability is
            forced to 0)
        returns: (B, K+1, H, W) logits; softmax over dim 1 gives background + objects.
    """
    with autocast_off(object_logits):
        prob = torch.sigmoid(object_logits.float())
        b, k = prob.shape[:2]
        if present is not None:
            prob = prob * present.to(prob.dtype).view(b, k, 1, 1)
        # The product over the objects as a chain of products (XNNPACK has no product).
        background = 1 - (prob[:, :1] if k > 1 else prob)
        for i in range(1, k):
            background = background * (1 - prob[:, i : i + 1])
        prob = torch.cat([background, prob], dim=1).clamp(1e-7, 1 - 1e-7)
        return torch.log(prob / (1 - prob))
