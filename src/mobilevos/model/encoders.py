"""Query (key) encoder and value (memory) encoder.

Shapes legend: B batch, K objects, Ck/Cv key/value channels, H×W image, h×w stride-16 features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from mobilevos.model.backbone import build_trunk
from mobilevos.model.blocks import ASPP, FeatureFusionBlock


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
    ) -> None:
        super().__init__()
        self.trunk = build_trunk(backbone, in_channels=3)
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


class ValueEncoder(nn.Module):
    """Encodes a frame with one object's mask (and the others' masks) into that object's value.

    Objects are folded into the batch, so the trunk runs once per object; the query frame's
    stride-16 features are fused in rather than recomputed.
    """

    def __init__(
        self, backbone: str, query_f16_dim: int, value_dim: int, attention: bool = True
    ) -> None:
        super().__init__()
        self.trunk = build_trunk(backbone, in_channels=5)
        self.fuser = FeatureFusionBlock(
            self.trunk.channels[2] + query_f16_dim, value_dim, attention
        )

    def forward(self, image: Tensor, query_f16: Tensor, masks: Tensor) -> Tensor:
        """Shapes: image (B, 3, H, W), query_f16 (B, C16, h, w), masks (B, K, H, W) in [0, 1];
        returns (B, K, Cv, h, w)."""
        b, k, h, w = masks.shape
        others = masks.sum(dim=1, keepdim=True) - masks  # every other object's mass
        x = torch.stack([masks, others], dim=2)  # B, K, 2, H, W
        x = torch.cat([image[:, None].expand(b, k, 3, h, w), x], dim=2).flatten(0, 1)
        f16 = self.trunk(x).f16
        q = query_f16[:, None].expand(b, k, *query_f16.shape[1:]).flatten(0, 1)
        value = self.fuser(f16, q)
        return value.view(b, k, *value.shape[1:])
