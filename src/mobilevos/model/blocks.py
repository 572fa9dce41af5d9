"""Small convolutional blocks shared by the encoders and the decoder.

The residual, fusion and upsampling blocks follow STCN's design (Cheng et al., NeurIPS 2021),
with the same parameter layout, so that STCN weights map onto them one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def repeat_objects(x: Tensor, k: int) -> Tensor:
    """(B, C, H, W) -> (B*K, C, H, W): each item repeated for its K objects, which the
    per-object parts of the encoders and decoders carry in the batch dimension."""
    return x[:, None].expand(x.shape[0], k, *x.shape[1:]).flatten(0, 1)


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions (a 3x3 projection if widths differ)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.downsample = None if in_dim == out_dim else nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        if self.downsample is not None:
            x = self.downsample(x)
        return x + r


class ChannelGate(nn.Module):
    """Channel attention from average- and max-pooled descriptors through a shared MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        # Indices 1 and 3 hold the weights, as in STCN's CBAM (index 0 was a Flatten).
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(pooled)[:, :, None, None]


class SpatialGate(nn.Module):
    """Spatial attention from the channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = nn.Sequential()
        self.spatial.add_module("conv", nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2))

    def forward(self, x: Tensor) -> Tensor:
        descriptor = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(descriptor))


class CBAM(nn.Module):
    """Convolutional block attention (Woo et al., ECCV 2018): channel gate then spatial gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Capitalised attribute names keep STCN's parameter names (see mobilevos.convert).
        self.ChannelGate = ChannelGate(channels)
        self.SpatialGate = SpatialGate()

    def forward(self, x: Tensor) -> Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuse the value trunk's features with the query frame's stride-16 features."""

    def __init__(self, in_dim: int, out_dim: int, attention: bool = True) -> None:
        super().__init__()
        self.block1 = ResBlock(in_dim, out_dim)
        self.attention = CBAM(out_dim) if attention else None
        self.block2 = ResBlock(out_dim, out_dim)

    def forward(self, x: Tensor, query_f16: Tensor) -> Tensor:
        x = self.block1(torch.cat([x, query_f16], dim=1))
        if self.attention is not None:
            x = x + self.attention(x)
        return self.block2(x)


class UpsampleBlock(nn.Module):
    """Upsample a coarse map x2 and add a projected skip feature, then refine."""

    def __init__(self, skip_dim: int, up_dim: int, out_dim: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_dim, up_dim, 3, padding=1)
        self.out_conv = ResBlock(up_dim, out_dim)

    def forward(self, skip: Tensor, up: Tensor) -> Tensor:
        x = self.skip_conv(skip) + F.interpolate(
            up, size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.out_conv(x)


class SeparableResBlock(nn.Module):
    """Pre-activation residual block of a depthwise 3x3 and a pointwise 1x1 convolution.

    About a ninth of a 3x3 :class:`ResBlock`'s multiply-adds per convolution at equal width: the
    building block of the light value branch and decoder, where every object pays for it.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.pointwise = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.pointwise(F.relu(self.depthwise(F.relu(x))))


def strided_separable(in_dim: int, out_dim: int) -> nn.Sequential:
    """Halve the resolution with a depthwise 3x3 of stride 2, then mix channels with a 1x1."""
    return nn.Sequential(
        nn.Conv2d(in_dim, in_dim, 3, stride=2, padding=1, groups=in_dim),
        nn.Conv2d(in_dim, out_dim, 1),
    )


def _conv_gn_relu(in_dim: int, out_dim: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    groups = 8 if out_dim % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(
            in_dim, out_dim, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False
        ),
        nn.GroupNorm(groups, out_dim),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al., DeepLab v3) on stride-16 features.

    Branches: a 1x1 convolution, one 3x3 convolution per dilation rate, and image-level pooling;
    concatenated and projected by a 1x1 convolution. Each convolution is followed by GroupNorm:
    without normalisation the block shrank its output (and so the memory keys computed from it)
    until the affinity was nearly uniform, and models with ASPP hardly learned to track (in a
    250-step pilot, J&F 0.11 for mobilevos-mbv2, 0.23 with GroupNorm, 0.36 for the lite model
    without ASPP); BatchNorm would not help, as it is frozen in training. With the reproduction
    recipe (``configs/repro/``: 5-frame clips, bootstrapped cross-entropy from the start) the gap
    closed: after 250 steps mobilevos-mbv2 scored 0.222 and the lite model 0.229 (per-object
    difference -0.007 +- 0.016), and an ASPP made residual (identity-like at initialisation)
    did not score significantly better (0.245).
    """

    def __init__(self, in_dim: int, out_dim: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_gn_relu(in_dim, out_dim)])
        for rate in rates:
            self.branches.append(_conv_gn_relu(in_dim, out_dim, 3, rate))
        self.pool = _conv_gn_relu(in_dim, out_dim)
        self.project = _conv_gn_relu(out_dim * (len(rates) + 2), out_dim)

    def forward(self, x: Tensor) -> Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pool(x.mean(dim=(2, 3), keepdim=True))
        outs.append(pooled.expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))
