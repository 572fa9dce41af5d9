"""Lazy reader for DAVIS 2016 / 2017 in the official folder layout.

Layout (as downloaded from davischallenge.org)::

    ROOT/JPEGImages/{480p,Full-Resolution}/<seq>/00000.jpg ...
    ROOT/Annotations/{480p,Full-Resolution}/<seq>/00000.png ...   (palette PNGs)
    ROOT/ImageSets/{2016,2017}/{train,val,test-dev}.txt           (one sequence per line)

Nothing is decoded until asked for: a sequence lists its file names when opened and reads one
frame or mask per call, so a 10,000-frame sequence costs no more memory than a short one.

DAVIS 2016 is single-object: for ``year=2016`` every non-zero, non-void id of an annotation is
merged into object 1 (the DAVIS 2017 download ships the 2016 sequences with their multi-object
masks; their union is the 2016 object). Void pixels (255) are kept as 255 in both years.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mobilevos.errors import ConfigError, DatasetError, InputError
from mobilevos.io import VOID_LABEL, read_label_image

DAVIS_YEARS = (2016, 2017)
DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB; :class:`DatasetError` if it is unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, SyntaxError) as exc:
        raise DatasetError(f"{path}: cannot read image ({exc.__class__.__name__})") from None


def read_split_file(path: Path) -> list[str]:
    """Names listed one per line in an ImageSets-style file (blanks and ``#`` comments skipped).

    Duplicates are dropped, keeping the first occurrence, so the file's order is preserved.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: split file not found")
    names: list[str] = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name and name not in names:
            names.append(name)
    return names


@dataclass(frozen=True)
class DavisSequence:
    """One DAVIS sequence: file names are listed on creation, pixels are read on demand.

    ``frame_names`` are the JPEG stems, sorted; ``annotation_names`` the PNG stems, sorted (in
    DAVIS train/val every frame is annotated, in test-dev only the first). ``annotated_frames``
    are the indices into ``frame_names`` of frames that have a PNG.
    """

    name: str
    year: int
    frame_dir: Path
    annotation_dir: Path
    frame_names: list[str]
    annotation_names: list[str]
    annotated_frames: list[int] = field(init=False)

    def __post_init__(self) -> None:
        annotated = set(self.annotation_names)
        indices = [i for i, stem in enumerate(self.frame_names) if stem in annotated]
        object.__setattr__(self, "annotated_frames", indices)

    def __len__(self) -> int:
        return len(self.frame_names)

    @property
    def frame_paths(self) -> list[Path]:
        """JPEG paths, in frame order."""
        return [self.frame_dir / f"{stem}.jpg" for stem in self.frame_names]

    def annotation_path(self, frame: int | str) -> Path:
        """PNG path of a frame given by index into ``frame_names`` or by name (may not exist)."""
        stem = self.frame_names[frame] if isinstance(frame, int) else frame
        return self.annotation_dir / f"{stem}.png"

    def read_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as ``(H, W, 3)`` uint8 RGB."""
        return read_rgb(self.frame_dir / f"{self.frame_names[index]}.jpg")

    def read_annotation(self, frame: int | str) -> np.ndarray:
        """Label map ``(H, W)`` uint8 of a frame (index or name): 0 background, ids, 255 void.

        For DAVIS 2016 all object ids are merged into 1. Raises :class:`DatasetError` naming the
        sequence and frame when the frame has no annotation or its PNG is not a label image.
        """
        stem = self.frame_names[frame] if isinstance(frame, int) else frame
        path = self.annotation_dir / f"{stem}.png"
        if not path.is_file():
            raise DatasetError(f"sequence {self.name} frame {stem}: no annotation at {path}")
        try:
            labels = read_label_image(path)
        except InputError as exc:
            raise DatasetError(f"sequence {self.name} frame {stem}: {exc}") from None
        if self.year == 2016:
            labels = np.where((labels != 0) & (labels != VOID_LABEL), 1, labels).astype(np.uint8)
        return labels

    def object_ids(self, frame: int | str) -> list[int]:
        """Sorted object ids present in a frame's annotation (0 and void excluded)."""
        values = np.unique(self.read_annotation(frame))
        return [int(v) for v in values if v != 0 and v != VOID_LABEL]


class DavisDataset:
    """A DAVIS split: ``DavisDataset(root, 2017, "val")[name]`` is a :class:`DavisSequence`.

    The split file ``ROOT/ImageSets/<year>/<split>.txt`` gives the sequences and their order.
    Sequences are opened (their folders listed) on access, so constructing the dataset is cheap.
    """

    def __init__(self, root: str | Path, year: int, split: str, resolution: str = "480p") -> None:
        if year not in DAVIS_YEARS:
            raise ConfigError(f"DAVIS year must be one of {DAVIS_YEARS}, got {year!r}")
        if resolution not in DAVIS_RESOLUTIONS:
            raise ConfigError(
                f"DAVIS resolution must be one of {DAVIS_RESOLUTIONS}, got {resolution!r}"
            )
        self.root = Path(root)
        self.year = year
        self.split = split
        self.resolution = resolution
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: DAVIS root folder not found")
        self.sequences: list[str] = read_split_file(
            self.root / "ImageSets" / str(year) / f"{split}.txt"
        )

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[DavisSequence]:
        for name in self.sequences:
            yield self[name]

    def __contains__(self, name: object) -> bool:
        return name in self.sequences

    def __getitem__(self, name: str) -> DavisSequence:
        """Open a sequence; it need not be in the split file (any folder of the layout works)."""
        frame_dir = self.root / "JPEGImages" / self.resolution / name
        annotation_dir = self.root / "Annotations" / self.resolution / name
        if not frame_dir.is_dir():
            raise DatasetError(f"sequence {name}: frame folder {frame_dir} not found")
        frames = sorted(p.stem for p in frame_dir.glob("*.jpg"))
        if not frames:
            raise DatasetError(f"sequence {name}: no .jpg frames in {frame_dir}")
        annotations = sorted(p.stem for p in annotation_dir.glob("*.png"))
        if not annotations:
            raise DatasetError(f"sequence {name}: no annotation PNG in {annotation_dir}")
        return DavisSequence(
            name=name,
            year=self.year,
            frame_dir=frame_dir,
            annotation_dir=annotation_dir,
            frame_names=frames,
            annotation_names=annotations,
        )
