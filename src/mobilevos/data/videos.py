"""The videos training clips are drawn from: the :class:`ClipVideo` protocol and its adapters.

:class:`~mobilevos.data.clips.VideoClipDataset` samples clips from any :class:`ClipVideo`: a
name, frame names, the indices of the annotated frames, and readers of a frame and of its label
map. A DAVIS sequence (:func:`davis_videos`, also a synthetic dataset written in the DAVIS
layout) already fits; a YouTube-VOS ``train`` video is adapted by :class:`YouTubeVOSClipVideo`
(:func:`ytvos_videos`) so that only its annotated frames count; :class:`ArrayVideo` holds a
video in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from mobilevos.data.davis import DavisDataset
from mobilevos.data.ytvos import YouTubeVOSDataset, YouTubeVOSVideo
from mobilevos.errors import DatasetError


class ClipVideo(Protocol):
    """What :class:`VideoClipDataset` needs of a video (a DAVIS sequence already fits).

    ``annotated_frames`` are the indices into ``frame_names`` of frames with a label map;
    ``read_annotation(i)`` returns frame ``i``'s ``(H, W)`` uint8 map.
    """

    name: str
    frame_names: list[str]
    annotated_frames: list[int]

    def read_frame(self, index: int) -> np.ndarray: ...

    def read_annotation(self, index: int) -> np.ndarray: ...


class YouTubeVOSClipVideo:
    """Adapter: a YouTube-VOS ``train`` video as a :class:`ClipVideo` (only PNG frames count)."""

    def __init__(self, video: YouTubeVOSVideo) -> None:
        self.video = video
        self.name = video.name
        self.frame_names = video.frame_names
        annotated = set(video.annotation_names)
        self.annotated_frames = [i for i, n in enumerate(video.frame_names) if n in annotated]

    def read_frame(self, index: int) -> np.ndarray:
        return self.video.read_frame(index)

    def read_annotation(self, index: int) -> np.ndarray:
        name = self.frame_names[index]
        labels = self.video.read_annotation(name)
        if labels is None:
            raise DatasetError(f"video {self.name} frame {name}: annotation PNG disappeared")
        return labels


class ArrayVideo:
    """A :class:`ClipVideo` held in memory. Shapes: frames (T, H, W, 3) uint8, labels (T, H, W)."""

    def __init__(
        self,
        name: str,
        frames: np.ndarray,
        labels: np.ndarray,
        annotated: Sequence[int] | None = None,
    ) -> None:
        self.name = name
        self.frames, self.labels = frames, labels
        self.frame_names = [f"{t:05d}" for t in range(len(frames))]
        self.annotated_frames = list(range(len(frames)) if annotated is None else annotated)

    def read_frame(self, index: int) -> np.ndarray:
        return self.frames[index]

    def read_annotation(self, index: int) -> np.ndarray:
        if index not in self.annotated_frames:
            raise DatasetError(f"video {self.name} frame {index}: not annotated")
        return self.labels[index]


def davis_videos(dataset: DavisDataset) -> list[ClipVideo]:
    """Every sequence of a DAVIS split (or a synthetic dataset in the DAVIS layout)."""
    return list(dataset)


def ytvos_videos(dataset: YouTubeVOSDataset) -> list[ClipVideo]:
    """Every video of a YouTube-VOS split, sampling only its annotated frames."""
    return [YouTubeVOSClipVideo(video) for video in dataset]
