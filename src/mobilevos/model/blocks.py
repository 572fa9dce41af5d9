"""Small convolutional blocks shared by the encoders and the decoder.

The residual, fusion and upsampling blocks follow STCN's design (Cheng et al., NeurIPS 2021),
with the same parameter layout, so that STCN weights map onto them one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cat_objects(parts: list[Tensor]) -> Tensor:
    """Concatenate ``parts`` along channels for each object. A part is per object, (B*K, C,
    H, W) with the K objects of each item in the batch dimension (as the per-object parts of
    the encoders and decoders carry them), or shared by the objects, (B, C, H, W); every object
    gets the shared parts. Returns (B*K, sum of C, H, W).

    Built object by object from slices and concatenations, never from a broadcast copy, so
    that an exported program runs it inside the XNNPACK delegate (model/readout.py)."""
    b = min(p.shape[0] for p in parts)
    k = max(p.shape[0] for p in parts) // b
    if k == 1:
        return torch.cat(parts, dim=1)
    grouped = [p.view(b, -1, *p.shape[1:]) for p in parts]  # (B, K or 1, C, H, W)
    objects = [
        torch.cat([g if g.shape[1] == 1 else g[:, i : i + 1] for g in grouped], dim=2)
        for i in range(k)
    ]
    return torch.cat(objects, dim=1).flatten(0, 1)


def plus_objects(per_object: Tensor, shared: Tensor) -> Tensor:
    """``per_object`` (B*K, C, H, W) plus ``shared`` (B, C, H, W), broadcast over the K objects
    (the shared map is computed once per frame, and no copy of it is made per object)."""
    b = shared.shape[0]
    grouped = per_object.view(b, -1, *per_object.shape[1:])
    return (grouped + shared.view(b, 1, *shared.shape[1:])).flatten(0, 1)


def global_pools(x: Tensor) -> tuple[Tensor, Tensor]:
    """The mean and the maximum of each channel of ``x`` (B, C, H, W) over its H x W
    locations, each (B, C, 1, 1): pooling windows as large as the map (XNNPACK runs them)."""
    window = x.shape[-2:]
    return F.avg_pool2d(x, window), F.max_pool2d(x, window)


def channel_pools(x: Tensor) -> tuple[Tensor, Tensor]:
    """The maximum and the mean over the channels of ``x`` (B, C, H, W) at each location, each
    (B, 1, H, W): the channels moved last and pooled by a window as wide as them."""
    b, c, h, w = x.shape
    columns = x.permute(0, 2, 3, 1).reshape(b, 1, h * w, c)
    pooled_max = F.max_pool2d(columns, (1, c)).view(b, 1, h, w)
    pooled_mean = F.avg_pool2d(columns, (1, c)).view(b, 1, h, w)
    return pooled_max, pooled_mean


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
        mean, peak = global_pools(x)
        pooled = self.mlp(mean) + self.mlp(peak)
        return x * torch.sigmoid(pooled).view(*pooled.shape, 1, 1)


class SpatialGate(nn.Module):
    """Spatial attention from the channel-wise max and mean maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = nn.Sequential()
        self.spatial.add_module("conv", nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2))

    def forward(self, x: Tensor) -> Tensor:
        descriptor = torch.cat(channel_pools(x), dim=1)
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
        """Shapes: x (B*K, C, h, w) per object, query_f16 (B, Cq, h, w) shared."""
        x = self.block1(cat_objects([x, query_f16]))
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
        """Shapes: skip (B, Cs, H, W) shared by the objects, up (B*K, C, H/2, W/2) per object;
        the skip is projected once for all of them."""
        up = F.interpolate(up, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_conv(plus_objects(up, self.skip_conv(skip)))


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
        pooled = self.pool(F.avg_pool2d(x, x.shape[-2:]))
        # Spread over the map: a bilinear upsampling of a 1x1 map repeats its value (XNNPACK
        # runs it; a broadcast copy it does not).
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.project(torch.cat(outs, dim=1))
