"""Lazy reader for YouTube-VOS 2018 / 2019 in the official folder layout.

Layout::

    ROOT/<split>/meta.json
    ROOT/<split>/JPEGImages/<video>/00000.jpg 00005.jpg ...     (every 5th frame, 6 fps)
    ROOT/<split>/Annotations/<video>/00000.png ...             (palette PNGs)
    ROOT/<split>_all_frames/JPEGImages/<video>/00000.jpg 00001.jpg ...   (optional, 30 fps)

``meta.json`` is ``{"videos": {video: {"objects": {"1": {"category": ..., "frames": [...]}}}}}``
(``valid`` and ``test`` have no categories). The annotations differ by split:

* ``train``: every listed frame has a PNG holding every object visible in it;
* ``valid`` / ``test``: an object's mask is given once, on the first frame where it appears,
  and that frame's PNG holds only the objects that start there; objects may enter mid-video.

A model runs on :attr:`YouTubeVOSVideo.frame_names` (all frames when the ``_all_frames`` folder
exists and ``all_frames=True``, which scores several points higher) and must write a PNG for
every name in :attr:`YouTubeVOSVideo.output_frames`. :meth:`YouTubeVOSVideo.initial_annotation`
gives, for any split, just the objects that start on a frame, which is how a held-out part of
``train`` is run as if it were ``valid`` (see :mod:`mobilevos.scoring.ytvos`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobilevos.data.davis import read_rgb, read_split_file
from mobilevos.errors import ConfigError, DatasetError, InputError
from mobilevos.io import atomic_path, read_label_image

YTVOS_SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class YouTubeVOSVideo:
    """One YouTube-VOS video; file names are listed on creation, pixels read on demand.

    ``object_first_frame`` maps each object id to the first frame where it is annotated (its
    mask is given there in valid/test); ``categories`` maps ids to category names (train only).
    """

    name: str
    split: str
    frame_dir: Path
    annotation_dir: Path
    frame_names: list[str]
    output_frames: list[str]
    object_first_frame: dict[int, str]
    categories: dict[int, str]

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def frame_paths(self) -> list[Path]:
        """JPEG paths of :attr:`frame_names`, in order."""
        return [self.frame_dir / f"{stem}.jpg" for stem in self.frame_names]

    @property
    def annotation_names(self) -> list[str]:
        """Stems of the PNGs present in the split's annotation folder, sorted."""
        return sorted(p.stem for p in self.annotation_dir.glob("*.png"))

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of :attr:`frame_names` as ``(H, W, 3)`` uint8 RGB."""
        return read_rgb(self.frame_dir / f"{self.frame_names[index]}.jpg")

    def read_annotation(self, name: str) -> np.ndarray | None:
        """The ``(H, W)`` uint8 label PNG of frame ``name``, or None when it has none."""
        path = self.annotation_dir / f"{name}.png"
        if not path.is_file():
            return None
        try:
            return read_label_image(path)
        except InputError as exc:
            raise DatasetError(f"video {self.name} frame {name}: {exc}") from None

    def objects_starting_at(self, name: str) -> list[int]:
        """Ids of the objects whose first annotated frame is ``name``, sorted."""
        return sorted(i for i, first in self.object_first_frame.items() if first == name)

    def initial_annotation(self, name: str) -> np.ndarray | None:
        """The masks a semi-supervised model is given on frame ``name``, or None if none.

        Only objects that start on this frame are kept (others set to 0), so a ``train`` video
        is fed exactly as a ``valid`` one would be.

        Shapes:
            returns: (H, W) uint8 or None.
        """
        starting = self.objects_starting_at(name)
        if not starting:
            return None
        labels = self.read_annotation(name)
        if labels is None:
            raise DatasetError(
                f"video {self.name} frame {name}: objects {starting} start here per meta.json "
                f"but {self.annotation_dir / (name + '.png')} is missing"
            )
        return np.where(np.isin(labels, starting), labels, 0).astype(np.uint8)


def _load_meta(path: Path) -> dict[str, dict]:
    """``meta.json``'s ``videos`` mapping, with clear errors for a missing or malformed file."""
    if not path.is_file():
        raise DatasetError(f"{path}: meta.json not found")
    try:
        meta = json.loads(path.read_text())
        videos = meta["videos"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a YouTube-VOS meta.json ({exc})") from None
    if not isinstance(videos, dict):
        raise DatasetError(f"{path}: 'videos' is not a mapping")
    return videos


class YouTubeVOSDataset:
    """A YouTube-VOS split: ``YouTubeVOSDataset(root, "valid")[video]`` is a video.

    ``videos`` lists meta.json's videos, sorted (optionally restricted to ``videos=``, e.g. the
    names of a held-out split file). ``all_frames`` selects ``ROOT/<split>_all_frames`` for the
    frames to run on when that folder has the video.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        all_frames: bool = True,
        videos: list[str] | None = None,
    ) -> None:
        if split not in YTVOS_SPLITS:
            raise ConfigError(f"YouTube-VOS split must be one of {YTVOS_SPLITS}, got {split!r}")
        self.root = Path(root)
        self.split = split
        self.all_frames = all_frames
        self.meta_path = self.root / split / "meta.json"
        self.meta = _load_meta(self.meta_path)
        if videos is None:
            self.videos = sorted(self.meta)
        else:
            unknown = [v for v in videos if v not in self.meta]
            if unknown:
                raise DatasetError(f"{self.meta_path}: videos not listed: {', '.join(unknown)}")
            self.videos = list(videos)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[YouTubeVOSVideo]:
        for name in self.videos:
            yield self[name]

    def __contains__(self, name: object) -> bool:
        return name in self.meta

    def categories(self) -> set[str]:
        """Every category named in meta.json for this split (empty for valid/test)."""
        found: set[str] = set()
        for entry in self.meta.values():
            for obj in entry.get("objects", {}).values():
                if obj.get("category"):
                    found.add(obj["category"])
        return found

    def __getitem__(self, name: str) -> YouTubeVOSVideo:
        if name not in self.meta:
            raise DatasetError(f"video {name}: not listed in {self.meta_path}")
        objects = self.meta[name].get("objects", {})
        first: dict[int, str] = {}
        categories: dict[int, str] = {}
        listed: set[str] = set()
        for key, obj in objects.items():
            try:
                obj_id = int(key)
            except ValueError:
                raise DatasetError(f"{self.meta_path}: video {name}: object id {key!r}") from None
            frames = sorted(obj.get("frames", []))
            listed.update(frames)
            if frames:
                first[obj_id] = frames[0]
            if obj.get("category"):
                categories[obj_id] = obj["category"]
        split_dir = self.root / self.split / "JPEGImages" / name
        dense_dir = self.root / f"{self.split}_all_frames" / "JPEGImages" / name
        frame_dir = dense_dir if self.all_frames and dense_dir.is_dir() else split_dir
        if not frame_dir.is_dir():
            raise DatasetError(f"video {name}: frame folder {frame_dir} not found")
        frames = sorted(p.stem for p in frame_dir.glob("*.jpg"))
        if not frames:
            raise DatasetError(f"video {name}: no .jpg frames in {frame_dir}")
        return YouTubeVOSVideo(
            name=name,
            split=self.split,
            frame_dir=frame_dir,
            annotation_dir=self.root / self.split / "Annotations" / name,
            frame_names=frames,
            output_frames=sorted(listed),
            object_first_frame=dict(sorted(first.items())),
            categories=dict(sorted(categories.items())),
        )


def resolve_gt_split(root: str | Path, gt_split: str | Path) -> tuple[str, list[str]]:
    """Names of the ``train`` videos held out for local scoring, and a label for the split.

    A "gt split" is a text file with one ``train`` video name per line (blank lines and ``#``
    comments ignored). ``gt_split`` is either a path to such a file, or a bare name NAME that
    resolves to ``ROOT/splits/NAME.txt``. Returns ``(label, names)`` where label is the stem.
    """
    path = Path(gt_split)
    if not path.is_file():
        candidate = Path(root) / "splits" / f"{gt_split}.txt"
        if not candidate.is_file():
            raise DatasetError(
                f"gt split {gt_split}: neither a file nor {candidate} (one video name per line)"
            )
        path = candidate
    names = read_split_file(path)
    if not names:
        raise DatasetError(f"{path}: gt split lists no videos")
    return path.stem, names


def write_gt_split(root: str | Path, path: str | Path, count: int, seed: int = 0) -> list[str]:
    """Hold out ``count`` random ``train`` videos by writing their names to ``path``, atomically.

    ``ROOT/splits/<name>.txt`` makes the split usable by name. The draw depends only on ``seed``
    and the sorted video list, so it is reproducible. Returns the names written.
    """
    dataset = YouTubeVOSDataset(root, "train", all_frames=False)
    if not 0 < count <= len(dataset):
        raise ConfigError(f"count must be in 1..{len(dataset)}, got {count}")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(dataset.videos, size=count, replace=False).tolist())
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{v}\n" for v in picked))
    return picked
