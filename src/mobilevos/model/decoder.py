"""Decoder from memory readout to per-object logits, and soft aggregation over objects."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mobilevos.model.blocks import ResBlock, UpsampleBlock


class DecoderOutput(NamedTuple):
    """Shapes: logits (B, K, H, W) per-object logits at image size; hidden (B, K, D4, H/4, W/4)
    the last hidden feature map (the representation distilled by the training loss)."""

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
        q = query_value[:, None].expand(b, k, *query_value.shape[1:])
        x = torch.cat([readout.to(q.dtype), q], dim=2).flatten(0, 1)
        x = self.compress(x)
        x = self.up_16_8(_repeat(f8, k), x)
        hidden = self.up_8_4(_repeat(f4, k), x)
        logits = self.pred(F.relu(hidden))
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        return DecoderOutput(
            logits.view(b, k, *logits.shape[-2:]), hidden.view(b, k, *hidden.shape[1:])
        )


def _repeat(x: Tensor, k: int) -> Tensor:
    """(B, C, H, W) -> (B*K, C, H, W), each item repeated for its K objects."""
    return x[:, None].expand(x.shape[0], k, *x.shape[1:]).flatten(0, 1)


def aggregate(object_logits: Tensor, present: Tensor | None = None) -> Tensor:
    """Soft aggregation (STM/STCN) of independent per-object predictions into K+1 classes.

    Each object's sigmoid probability is kept as is, the background gets the probability that no
    object is present, and the K+1 values are turned back into logits, so that a softmax over
    them is a proper distribution over background and objects.

    Shapes:
        object_logits: (B, K, H, W)
        present: (B, K) bool, False for padding objects (their probability is forced to 0)
        returns: (B, K+1, H, W) logits; softmax over dim 1 gives background + objects.
    """
    with torch.autocast(device_type=object_logits.device.type, enabled=False):
        prob = torch.sigmoid(object_logits.float())
        if present is not None:
            prob = prob * present[:, :, None, None].to(prob.dtype)
        background = torch.prod(1 - prob, dim=1, keepdim=True)
        prob = torch.cat([background, prob], dim=1).clamp(1e-7, 1 - 1e-7)
        return torch.log(prob / (1 - prob))
