"""Training data configuration and the combined training dataset.

A training recipe lists its data sources in YAML; :meth:`DataConfig.from_dict` turns that into
frozen dataclasses and :func:`build_training_dataset` into one ``ConcatDataset`` of clip
datasets. Example (STCN's main stage)::

    data:
      crop: 384
      max_objects: 2
      sources:
        - {kind: davis, root: data/DAVIS, repeat: 5}
        - {kind: ytvos, root: data/YouTubeVOS}      # skip_divisor 5 by default
      augment: {grayscale: 0.05, clip_motion: {rotation: 15}}

Source kinds:

* ``davis``: a DAVIS 2017 split (``year``, ``resolution`` options), every frame annotated.
* ``ytvos``: YouTube-VOS ``train`` (every 5th frame, all annotated), ``skip_divisor`` 5.
* ``synth``: a synthetic dataset written by ``mobilevos synth`` (DAVIS layout).
* ``synth-online``: synthetic videos rendered while training: ``videos`` distinct videos of
  ``frames`` frames, ``video_seed``, and ``synth`` (:class:`SynthConfig` overrides; by default
  frames are ``crop`` pixels high and 16:9).
* ``static``: images with masks turned into pseudo-videos (``motion``: overrides of
  :meth:`MotionConfig.pseudo_video`).

The epoch and the max skip are set on the combined dataset and forwarded to every source;
each source divides the max skip by its ``skip_divisor``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import ConcatDataset

from mobilevos.data.augment import AugmentConfig, MotionConfig
from mobilevos.data.clips import ClipDatasetBase, SynthClipDataset, VideoClipDataset
from mobilevos.data.davis import DavisDataset
from mobilevos.data.sampling import (
    STCN_INITIAL_MAX_SKIP,
    STCN_MAX_SKIPS,
    STCN_SKIP_SWITCHES,
    check_curriculum,
    max_skip_schedule,
)
from mobilevos.data.static import StaticImageDataset
from mobilevos.data.synth import SynthConfig
from mobilevos.data.videos import davis_videos, ytvos_videos
from mobilevos.data.ytvos import YouTubeVOSDataset
from mobilevos.errors import ConfigError

logger = logging.getLogger(__name__)

SOURCE_KINDS = ("davis", "ytvos", "synth", "synth-online", "static")
_OPTION_KINDS: dict[str, tuple[str, ...]] = {
    "year": ("davis", "synth"),
    "resolution": ("davis", "synth"),
    "videos": ("synth-online",),
    "frames": ("synth-online",),
    "video_seed": ("synth-online",),
    "synth": ("synth-online",),
    "motion": ("static",),
}
_DEFAULT_SKIP_DIVISOR = {"ytvos": 5}
DEFAULT_SYNTH_VIDEOS = 1000


def _check_keys(cls: type, data: Any, where: str) -> dict[str, Any]:
    """``data`` as a dict whose keys are all fields of ``cls``; else a ConfigError naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(known)})")
    return dict(data)


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so a dict dumps to YAML with ``yaml.safe_dump``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class DataSourceConfig:
    """One training data source (see the module docstring for the kinds and their options).

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        root: dataset folder (every kind but ``synth-online``).
        split: split to read (``ytvos`` must use ``train``).
        repeat: how many times the source's videos appear per epoch (DAVIS: 5 in STCN).
        skip_divisor: divides the max skip for this source; None: 5 for ``ytvos``, else 1.
        year, resolution: DAVIS layout options (default 2017, 480p).
        videos, frames, video_seed, synth: ``synth-online`` options.
        motion: ``static`` per-frame motion overrides (a mapping of :class:`MotionConfig`).
    """

    kind: str
    root: str | None = None
    split: str = "train"
    repeat: int = 1
    skip_divisor: int | None = None
    year: int | None = None
    resolution: str | None = None
    videos: int | None = None
    frames: int | None = None
    video_seed: int | None = None
    synth: dict[str, Any] | None = None
    motion: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        where = f"data source {self.kind!r}"
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(SOURCE_KINDS)}")
        if self.root is not None:
            object.__setattr__(self, "root", str(self.root))
        if (self.root is None) != (self.kind == "synth-online"):
            need = "takes no root" if self.kind == "synth-online" else "needs a root folder"
            raise ConfigError(f"{where} {need}")
        for name, kinds in _OPTION_KINDS.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ConfigError(f"{where}: option {name!r} applies only to {', '.join(kinds)}")
        if self.repeat < 1 or (self.skip_divisor is not None and self.skip_divisor < 1):
            raise ConfigError(f"{where}: repeat and skip_divisor must be >= 1")
        if self.kind == "ytvos" and self.split != "train":
            raise ConfigError(f"{where}: only the train split has dense training annotations")
        if self.videos is not None and self.videos < 1:
            raise ConfigError(f"{where}: videos must be >= 1, got {self.videos}")
        if self.motion is not None:
            MotionConfig.from_dict(self.motion)  # fail early on bad keys or values

    @property
    def effective_skip_divisor(self) -> int:
        """The skip divisor, with the kind's default filled in."""
        if self.skip_divisor is not None:
            return self.skip_divisor
        return _DEFAULT_SKIP_DIVISOR.get(self.kind, 1)

    def synth_config(self, crop: int) -> SynthConfig:
        """The ``synth-online`` generator config: ``crop`` high, 16:9, then the overrides."""
        values: dict[str, Any] = {"height": crop, "width": round(crop * 16 / 9)}
        values.update(self.synth or {})
        if self.frames is not None:
            values["num_frames"] = self.frames
        try:
            return SynthConfig(**values)
        except TypeError as exc:
            raise ConfigError(f"data source 'synth-online': synth options: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict without the unset (None) options."""
        return _plain({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSourceConfig:
        values = _check_keys(cls, data, "data source")
        if "kind" not in values:
            raise ConfigError("data source: missing 'kind'")
        return cls(**values)


@dataclass(frozen=True)
class DataConfig:
    """Everything that decides the training clips.

    Attributes:
        sources: the data sources, concatenated; by default synthetic videos rendered on the
            fly, so a run needs no dataset on disk.
        clip_length: frames T per clip (3: the 2-slot student's first + latest memory).
        crop: side of the square training crop.
        max_objects: objects K per clip at most (collation pads to this).
        min_object_area: pixels an object needs in the first frame of the augmented crop to be
            chosen (100 = STCN's 10x10 at crop 384; lower it with the crop).
        augment: augmentation strengths.
        max_skip_values, max_skip_switches, initial_max_skip: the max-skip curriculum (see
            :func:`max_skip_schedule`); STCN's by default.
    """

    sources: tuple[DataSourceConfig, ...] = (DataSourceConfig(kind="synth-online"),)
    clip_length: int = 3
    crop: int = 384
    max_objects: int = 2
    min_object_area: int = 100
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    max_skip_values: tuple[int, ...] = STCN_MAX_SKIPS
    max_skip_switches: tuple[float, ...] = STCN_SKIP_SWITCHES
    initial_max_skip: int = STCN_INITIAL_MAX_SKIP

    def __post_init__(self) -> None:
        for name in ("sources", "max_skip_values", "max_skip_switches"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.sources:
            raise ConfigError("data: at least one source is needed")
        if self.clip_length < 1 or self.crop < 16 or self.max_objects < 1:
            raise ConfigError("data: need clip_length >= 1, crop >= 16, max_objects >= 1")
        if self.min_object_area < 1:
            raise ConfigError(f"data: min_object_area must be >= 1, got {self.min_object_area}")
        check_curriculum(self)

    def max_skip(self, progress: float) -> int:
        """The max skip at ``progress`` (fraction of training done)."""
        return max_skip_schedule(progress, self)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, no tuples) that :meth:`from_dict` reads back."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["sources"] = [s.to_dict() for s in self.sources]
        values["augment"] = self.augment.to_dict()
        return _plain(values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        """Build from a YAML mapping; unknown keys anywhere are a :class:`ConfigError`."""
        values = _check_keys(cls, data, "data config")
        if "sources" in values:
            sources = values["sources"]
            if not isinstance(sources, list) or not sources:
                raise ConfigError("data config: 'sources' must be a non-empty list of mappings")
            parsed = []
            for i, source in enumerate(sources):
                try:
                    parsed.append(DataSourceConfig.from_dict(source))
                except ConfigError as exc:
                    raise ConfigError(f"data config: sources[{i}]: {exc}") from None
            values["sources"] = tuple(parsed)
        if "augment" in values:
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


class TrainingDataset(ConcatDataset):
    """The sources' clip datasets end to end; epoch and max skip are forwarded to all."""

    datasets: list[ClipDatasetBase]

    def __init__(self, datasets: Sequence[ClipDatasetBase]) -> None:
        super().__init__(list(datasets))

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)

    def set_max_skip(self, max_skip: int) -> None:
        for dataset in self.datasets:
            dataset.set_max_skip(max_skip)


def build_source(
    source: DataSourceConfig, config: DataConfig, seed: int, stream: int
) -> ClipDatasetBase:
    """The clip dataset of one source; ``stream`` keeps the sources' random draws apart."""
    common: dict[str, Any] = {
        "clip_length": config.clip_length,
        "crop": config.crop,
        "max_objects": config.max_objects,
        "augment": config.augment,
        "seed": seed,
        "min_object_area": config.min_object_area,
        "repeat": source.repeat,
        "stream": stream,
    }
    max_skip = config.max_skip(0.0)
    if source.kind == "static":
        motion = MotionConfig.from_dict(source.motion or {}, MotionConfig.pseudo_video())
        return StaticImageDataset(source.root, motion=motion, **common)
    if source.kind == "synth-online":
        return SynthClipDataset(
            source.synth_config(config.crop),
            source.videos or DEFAULT_SYNTH_VIDEOS,
            max_skip=max_skip,
            video_seed=source.video_seed,
            **common,
        )
    if source.kind == "ytvos":
        videos = ytvos_videos(YouTubeVOSDataset(source.root, source.split, all_frames=False))
    else:
        year, resolution = source.year or 2017, source.resolution or "480p"
        videos = davis_videos(DavisDataset(source.root, year, source.split, resolution))
    return VideoClipDataset(
        videos, max_skip=max_skip, skip_divisor=source.effective_skip_divisor, **common
    )


def build_training_dataset(config: DataConfig, seed: int) -> TrainingDataset:
    """All sources of ``config`` as one dataset, at the curriculum's initial max skip.

    Samples depend only on ``(seed, source position, epoch, index)``. Call ``set_epoch`` and
    ``set_max_skip`` on the result, then rebuild the DataLoader iterator.
    """
    datasets = []
    for stream, source in enumerate(config.sources):
        dataset = build_source(source, config, seed, stream)
        logger.info(
            "data source %d (%s %s): %d clips per epoch",
            stream, source.kind, source.root or "", len(dataset),
        )  # fmt: skip
        datasets.append(dataset)
    return TrainingDataset(datasets)
