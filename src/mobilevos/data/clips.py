"""Training clips: the clip datasets, their samples and batches.

A training sample is a short clip (default 3 frames: the annotated frame, then two later ones)
with label maps. The model memorises frame 0 with its mask, segments frame 1 from memory {0},
then frame 2 from memory {0, 1}, exactly the 2-slot student of MobileVOS.

Which frames and which objects a clip takes (frame gaps, the max-skip curriculum, object
choice) is decided in :mod:`mobilevos.data.sampling`; the videos clips are drawn from are
:class:`~mobilevos.data.videos.ClipVideo` objects (:mod:`mobilevos.data.videos`). Still images
made into pseudo-video clips live in :mod:`mobilevos.data.static`, which builds on
:class:`ClipDatasetBase` here.

Decisions:

* **Objects.** Up to ``max_objects`` objects visible in the (augmented) first frame with at
  least ``min_object_area`` pixels are chosen at random and renumbered ``1..K`` in a random
  order; the other objects become background, void stays 255. A clip without such an object is
  redrawn (other frames, other crop) ``clip_tries`` times; then the best clip with any object
  pixel in frame 0 is used; a video with none at all is replaced by another video drawn from
  the sample's generator. The first frame is never empty.
* **Determinism.** A sample depends only on ``(seed, stream, epoch, index)`` and the current
  max skip: its generator is ``numpy.random.default_rng([seed, stream, epoch, index])``. No
  global RNG is read, so DataLoader workers and DDP ranks reproduce samples exactly. ``index``
  runs over ``repeat * num_videos``; video ``index % num_videos`` is used, so repeats of a video
  within one epoch still differ. ``set_epoch`` / ``set_max_skip`` are plain attribute writes:
  call them in the worker (e.g. per request) or rebuild the DataLoader iterator afterwards
  (workers hold copies of the dataset; persistent workers would keep stale values).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mobilevos.data.augment import (
    AugmentConfig,
    MotionConfig,
    augment_clip,
    largest_object_area,
)
from mobilevos.data.sampling import (
    STCN_INITIAL_MAX_SKIP,
    choose_objects,
    relabel,
    sample_clip_indices,
)
from mobilevos.data.synth import (
    ObjectTrack,
    SynthConfig,
    VideoPlan,
    jpeg_roundtrip,
    plan_video,
    render_plan,
)
from mobilevos.data.videos import ClipVideo
from mobilevos.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)


class ClipSample(NamedTuple):
    """One training clip.

    Shapes:
        frames: (T, 3, H, W) float32 in [0, 1] (not normalised).
        labels: (T, H, W) int64; 0 background, 1..K objects, 255 void.
    """

    frames: Tensor
    labels: Tensor
    num_objects: int


class ClipBatch(NamedTuple):
    """A batch of clips with first-frame masks padded to ``max_objects``.

    Shapes:
        frames: (B, T, 3, H, W) float32.
        labels: (B, T, H, W) int64.
        first_masks: (B, K, H, W) float32 one-hot of frame 0's objects 1..K (padding all zero).
        present: (B, K) bool, True for the objects a clip really has.
    """

    frames: Tensor
    labels: Tensor
    first_masks: Tensor
    present: Tensor


def collate_clips(samples: Sequence[ClipSample], max_objects: int) -> ClipBatch:
    """Stack clips (use ``functools.partial(collate_clips, max_objects=K)`` as ``collate_fn``)."""
    if not samples:
        raise ValueError("collate_clips needs at least one sample")
    if any(s.num_objects > max_objects for s in samples):
        raise ValueError(f"a clip has more than max_objects={max_objects} objects")
    frames = torch.stack([s.frames for s in samples])
    labels = torch.stack([s.labels for s in samples])
    ids = torch.arange(1, max_objects + 1).view(1, max_objects, 1, 1)
    first_masks = (labels[:, 0, None] == ids).float()
    counts = torch.tensor([s.num_objects for s in samples])
    present = torch.arange(max_objects)[None] < counts[:, None]
    return ClipBatch(frames, labels, first_masks, present)


# ------------------------------------------------------------------------------- datasets


def to_tensors(frames: np.ndarray, labels: np.ndarray) -> tuple[Tensor, Tensor]:
    """Shapes: (T, H, W, 3) uint8, (T, H, W) uint8 -> (T, 3, H, W) uint8, (T, H, W) int64."""
    frames_t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return frames_t, torch.from_numpy(np.ascontiguousarray(labels)).long()


class ClipDatasetBase(Dataset):
    """Seeding, epoch, max skip, augmentation and object sampling shared by the clip datasets.

    Subclasses implement :meth:`_num_sources` and :meth:`_draw` (read and augment one candidate
    clip of a source); this class turns candidates into a :class:`ClipSample`.
    """

    def __init__(
        self,
        *,
        clip_length: int,
        max_skip: int,
        crop: int,
        max_objects: int,
        min_object_area: int,
        augment: AugmentConfig | None,
        seed: int,
        stream: int,
        repeat: int,
        skip_divisor: int,
        clip_tries: int = 5,
        source_tries: int = 10,
    ) -> None:
        if clip_length < 1 or crop < 16 or max_objects < 1 or repeat < 1 or skip_divisor < 1:
            raise ConfigError(
                "clip datasets need clip_length >= 1, crop >= 16, max_objects >= 1, "
                f"repeat >= 1, skip_divisor >= 1 (got {clip_length}, {crop}, {max_objects}, "
                f"{repeat}, {skip_divisor})"
            )
        self.clip_length, self.crop, self.max_objects = clip_length, crop, max_objects
        self.min_object_area = min_object_area
        self.augment = augment or AugmentConfig()
        self.seed, self.stream, self.repeat = seed, stream, repeat
        self.skip_divisor = skip_divisor
        self.clip_tries, self.source_tries = clip_tries, source_tries
        self.epoch = 0
        self.max_skip = 1
        self.set_max_skip(max_skip)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; samples of different epochs differ."""
        self.epoch = int(epoch)

    def set_max_skip(self, max_skip: int) -> None:
        """Set the largest gap in original frames; this source uses ``max_skip // divisor``."""
        if max_skip < 1:
            raise ConfigError(f"max_skip must be >= 1, got {max_skip}")
        self.max_skip = int(max_skip)

    @property
    def effective_max_skip(self) -> int:
        """Largest gap in this source's annotated frames."""
        return max(1, self.max_skip // self.skip_divisor)

    def __len__(self) -> int:
        return self._num_sources() * self.repeat

    def generator(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.stream, self.epoch, index])

    def _num_sources(self) -> int:
        raise NotImplementedError

    def _draw(self, source: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """One augmented candidate: frames (T, 3, c, c) float, labels (T, c, c) int64."""
        raise NotImplementedError

    def _describe(self, source: int) -> str:
        return f"item {source}"

    def _augment(
        self,
        frames: np.ndarray,
        labels: np.ndarray,
        rng: np.random.Generator,
        extra_motion: MotionConfig | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Augment numpy frames (T, H, W, 3) uint8 and labels (T, H, W) into crop tensors."""
        frames_t, labels_t = to_tensors(frames, labels)
        return augment_clip(
            frames_t, labels_t, self.crop, self.augment, rng,
            min_object_area=self.min_object_area, extra_motion=extra_motion,
        )  # fmt: skip

    def __getitem__(self, index: int) -> ClipSample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        rng = self.generator(index)
        source = index % self._num_sources()
        for _ in range(self.source_tries):
            fallback: tuple[Tensor, Tensor] | None = None
            for _ in range(self.clip_tries):
                frames, labels = self._draw(source, rng)
                chosen = choose_objects(labels[0], self.max_objects, self.min_object_area, rng)
                if chosen:
                    return ClipSample(frames, relabel(labels, chosen), len(chosen))
                if fallback is None and largest_object_area(labels[0]) > 0:
                    fallback = (frames, labels)
            if fallback is not None:
                chosen = choose_objects(fallback[1][0], self.max_objects, 1, rng)
                return ClipSample(fallback[0], relabel(fallback[1], chosen), len(chosen))
            logger.debug(
                "%s: no object in any first frame; drawing another", self._describe(source)
            )
            source = int(rng.integers(self._num_sources()))
        raise DatasetError(
            f"{type(self).__name__}: no clip with a visible object after trying "
            f"{self.source_tries} sources from sample {index}"
        )


class VideoClipDataset(ClipDatasetBase):
    """Clips from annotated videos (DAVIS, YouTube-VOS, pre-rendered synthetic).

    Videos with fewer annotated frames than ``clip_length`` are skipped (logged).
    """

    def __init__(
        self,
        videos: Sequence[ClipVideo],
        clip_length: int = 3,
        max_skip: int = STCN_INITIAL_MAX_SKIP,
        crop: int = 384,
        max_objects: int = 2,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        *,
        min_object_area: int = 100,
        skip_divisor: int = 1,
        repeat: int = 1,
        stream: int = 0,
    ) -> None:
        super().__init__(
            clip_length=clip_length, max_skip=max_skip, crop=crop, max_objects=max_objects,
            min_object_area=min_object_area, augment=augment, seed=seed, stream=stream,
            repeat=repeat, skip_divisor=skip_divisor,
        )  # fmt: skip
        self.videos = [v for v in videos if len(v.annotated_frames) >= clip_length]
        if len(self.videos) < len(videos):
            logger.info(
                "skipped %d videos with < %d annotated frames",
                len(videos) - len(self.videos),
                clip_length,
            )
        if not self.videos:
            raise DatasetError(f"no video has {clip_length} or more annotated frames")

    def _num_sources(self) -> int:
        return len(self.videos)

    def _describe(self, source: int) -> str:
        return f"video {self.videos[source].name}"

    def _draw(self, source: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        video = self.videos[source]
        positions = sample_clip_indices(
            len(video.annotated_frames), self.clip_length, self.effective_max_skip, rng
        )
        indices = [video.annotated_frames[p] for p in positions]
        frames = [video.read_frame(i) for i in indices]
        labels = [video.read_annotation(i) for i in indices]
        size = frames[0].shape[:2]
        for i, frame, label in zip(indices, frames, labels, strict=True):
            if frame.shape[:2] != size or label.shape != size:
                raise DatasetError(
                    f"video {video.name} frame {video.frame_names[i]}: frame "
                    f"{frame.shape[0]}x{frame.shape[1]} and annotation "
                    f"{label.shape[0]}x{label.shape[1]} differ from {size[0]}x{size[1]}"
                )
        return self._augment(np.stack(frames), np.stack(labels), rng)


SYNTH_SEEDS_PER_DATASET = 1_000_000
"""Video ``i`` of synthetic dataset ``s`` is ``render_video(s * 1_000_000 + i)``, as written by
``mobilevos synth --seed s`` (see :func:`mobilevos.data.synth.sequence_name`)."""


class SynthClipDataset(ClipDatasetBase):
    """Clips of procedural synthetic videos rendered on the fly (no files).

    Video ``i`` is the one ``mobilevos synth --seed video_seed`` writes as its ``i``-th
    sequence (``video_seed`` defaults to ``seed``); its layout (textures, tracks) is planned
    from that seed, but only the clip's frames are rendered, then JPEG-compressed at
    ``config.jpeg_quality`` (``jpeg=True``) so they look like frames read from disk. Render at
    about the training resolution (e.g. short side = crop) to keep a sample well under 0.5 s.
    """

    def __init__(
        self,
        config: SynthConfig,
        num_videos: int,
        seed: int = 0,
        clip_length: int = 3,
        max_skip: int = STCN_INITIAL_MAX_SKIP,
        crop: int = 384,
        max_objects: int = 2,
        augment: AugmentConfig | None = None,
        *,
        min_object_area: int = 100,
        video_seed: int | None = None,
        jpeg: bool = True,
        repeat: int = 1,
        stream: int = 0,
    ) -> None:
        super().__init__(
            clip_length=clip_length, max_skip=max_skip, crop=crop, max_objects=max_objects,
            min_object_area=min_object_area, augment=augment, seed=seed, stream=stream,
            repeat=repeat, skip_divisor=1,
        )  # fmt: skip
        if not 1 <= num_videos <= SYNTH_SEEDS_PER_DATASET:
            raise ConfigError(f"synth-online: videos must be in 1..{SYNTH_SEEDS_PER_DATASET}")
        if config.num_frames < clip_length:
            raise ConfigError(
                f"synth-online: {config.num_frames} frames per video < clip length {clip_length}"
            )
        self.config, self.num_videos, self.jpeg = config, num_videos, jpeg
        self.video_seed = seed if video_seed is None else video_seed
        self._plan_cache: tuple[int, VideoPlan] | None = None

    def _num_sources(self) -> int:
        return self.num_videos

    def _describe(self, source: int) -> str:
        return f"synthetic video {self.render_seed(source)}"

    def render_seed(self, source: int) -> int:
        """The :func:`~mobilevos.data.synth.render_video` seed of video ``source``."""
        return self.video_seed * SYNTH_SEEDS_PER_DATASET + source

    def render_frames(self, source: int, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``indices`` of video ``source``: (T, H, W, 3) uint8 and (T, H, W) uint8."""
        seed = self.render_seed(source)
        if self._plan_cache is None or self._plan_cache[0] != seed:
            self._plan_cache = (seed, plan_video(seed, self.config))
        plan = self._plan_cache[1]
        pick = np.asarray(indices)
        tracks = tuple(ObjectTrack(*(field[pick] for field in t)) for t in plan.tracks)
        video = render_plan(plan._replace(camera=plan.camera[pick], tracks=tracks))
        frames = (
            jpeg_roundtrip(video.frames, self.config.jpeg_quality) if self.jpeg else video.frames
        )
        return frames, video.labels

    def _draw(self, source: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        indices = sample_clip_indices(
            self.config.num_frames, self.clip_length, self.effective_max_skip, rng
        )
        frames, labels = self.render_frames(source, indices)
        return self._augment(frames, labels, rng)
