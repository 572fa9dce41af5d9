"""Query (key) encoder and value (memory) encoder.

Shapes legend: B batch, K objects, Ck/Cv key/value channels, H×W image, h×w stride-16 features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mobilevos.model.backbone import build_trunk
from mobilevos.model.blocks import (
    ASPP,
    FeatureFusionBlock,
    SeparableResBlock,
    cat_objects,
    plus_objects,
    strided_separable,
)


class QueryFeatures(NamedTuple):
    """Everything the network derives from one frame, computed once and shared by all objects.

    Shapes:
        key: (B, Ck, h, w) memory/query key
        value: (B, Cq, h, w) the frame's own stride-16 feature for the decoder
        f16: (B, C16, h, w) stride-16 trunk features (after ASPP), reused by the value encoder
        f8: (B, C8, H/8, W/8), f4: (B, C4, H/4, W/4) skip features for the decoder
    """

    key: Tensor
    value: Tensor
    f16: Tensor
    f8: Tensor
    f4: Tensor


class QueryEncoder(nn.Module):
    """Trunk, optional ASPP, and the key / query-value projections (STCN's key_proj, key_comp)."""

    def __init__(
        self,
        backbone: str,
        key_dim: int,
        query_value_dim: int,
        aspp_dim: int | None = None,
        aspp_rates: tuple[int, ...] = (),
        trunk_entry: str = "full",
        trunk_dropped: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.trunk = build_trunk(backbone, 3, trunk_entry, trunk_dropped)
        c4, c8, c16 = self.trunk.channels
        self.aspp = ASPP(c16, aspp_dim, aspp_rates) if aspp_dim else None
        if aspp_dim:
            c16 = aspp_dim
        self.key_proj = nn.Conv2d(c16, key_dim, 3, padding=1)
        self.key_comp = nn.Conv2d(c16, query_value_dim, 3, padding=1)
        # An orthogonal key projection starts with well-spread keys (as STCN initialises it).
        nn.init.orthogonal_(self.key_proj.weight)
        nn.init.zeros_(self.key_proj.bias)
        self.channels = (c4, c8, c16)

    def forward(self, image: Tensor) -> QueryFeatures:
        """Shapes: image (B, 3, H, W), normalised; H and W multiples of 16."""
        f4, f8, f16 = self.trunk(image)
        if self.aspp is not None:
            f16 = self.aspp(f16)
        return QueryFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)


def object_masks(masks: Tensor) -> Tensor:
    """Each object's mask beside the sum of every other object's mask, objects in the batch.

    Shapes: masks (B, K, H, W) -> (B*K, 2, H, W).
    """
    total = masks[:, :1] if masks.shape[1] > 1 else masks
    for i in range(1, masks.shape[1]):  # a chain of sums: XNNPACK runs it, not a reduction
        total = total + masks[:, i : i + 1]
    others = total - masks
    b, k, h, w = masks.shape
    return torch.cat([masks.view(b, k, 1, h, w), others.view(b, k, 1, h, w)], dim=2).flatten(0, 1)


class ValueEncoder(nn.Module):
    """Encodes a frame with one object's mask (and the others' masks) into that object's value.

    Objects are folded into the batch, so a second trunk runs once per object over the frame and
    the masks (the paper's design); the query frame's stride-16 features are fused in rather
    than recomputed.
    """

    reads = ("image", "f16")
    """What it takes of the frame: the image and these :class:`QueryFeatures` fields (the
    exported graph's inputs, beside the masks)."""

    def __init__(
        self, backbone: str, query_f16_dim: int, value_dim: int, attention: bool = True
    ) -> None:
        super().__init__()
        self.trunk = build_trunk(backbone, in_channels=5)
        self.fuser = FeatureFusionBlock(
            self.trunk.channels[2] + query_f16_dim, value_dim, attention
        )

    def forward(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        """Shapes: image (B, 3, H, W), masks (B, K, H, W) in [0, 1]; returns (B, K, Cv, h, w)."""
        b, k = masks.shape[:2]
        x = cat_objects([image, object_masks(masks)])
        value = self.fuser(self.trunk(x).f16, query.f16)
        return value.view(b, k, *value.shape[1:])


class MaskValueEncoder(nn.Module):
    """An object's value from the query trunk's features and its mask: no second trunk.

    The query trunk has already seen the frame, so only the mask is new. A light branch embeds
    the object's mask and the other objects' masks at stride 4 (area-downsampled), adds the
    query's stride-4 features, and halves the resolution twice with strided separable
    convolutions, adding the query's stride-8 and stride-16 features on the way; two separable
    residual blocks and a 1x1 projection give ``value_dim - 2`` channels. The last two channels
    are the two masks themselves, area-downsampled to stride 16, so the readout carries the
    memory's mask as the affinity spreads it (label propagation) from the first step of
    training: with a randomly initialised branch alone the fast student learned far more slowly
    than the lite model (docs/models.md). The query features are projected once per frame; per
    object, the branch costs a few percent of a trunk.

    ``dims`` are the branch's widths at strides 4, 8 and 16.
    """

    reads = ("f4", "f8", "f16")
    """What it takes of the frame (see :attr:`ValueEncoder.reads`): not the image."""

    def __init__(
        self, trunk_channels: tuple[int, int, int], value_dim: int, dims: tuple[int, int, int]
    ) -> None:
        super().__init__()
        c4, c8, c16 = trunk_channels
        d4, d8, d16 = dims
        self.mask_embed = nn.Conv2d(2, d4, 3, padding=1)
        self.skip4 = nn.Conv2d(c4, d4, 1)
        self.down8 = strided_separable(d4, d8)
        self.skip8 = nn.Conv2d(c8, d8, 1)
        self.down16 = strided_separable(d8, d16)
        self.skip16 = nn.Conv2d(c16, d16, 1)
        self.refine = nn.Sequential(SeparableResBlock(d16), SeparableResBlock(d16))
        self.project = nn.Conv2d(d16, value_dim - 2, 1)

    def forward(self, image: Tensor | None, query: QueryFeatures, masks: Tensor) -> Tensor:
        """Shapes: image (B, 3, H, W) or None (unused: the query features stand for it), masks
        (B, K, H, W) in [0, 1]; returns (B, K, Cv, h, w)."""
        b, k = masks.shape[:2]
        # Pooled first, then paired with the others' sum: both are linear, so this is the pair's
        # pooling, with the per-object work on a sixteenth of the pixels.
        pooled = object_masks(F.avg_pool2d(masks, 4))  # B*K, 2, H/4, W/4
        x = plus_objects(self.mask_embed(pooled), self.skip4(query.f4))
        x = plus_objects(self.down8(F.relu(x)), self.skip8(query.f8))
        x = plus_objects(self.down16(F.relu(x)), self.skip16(query.f16))
        learned = self.project(F.relu(self.refine(x)))
        value = torch.cat([learned, F.avg_pool2d(pooled, 4).to(learned.dtype)], dim=1)
        return value.view(b, k, *value.shape[1:])
