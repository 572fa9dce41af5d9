"""Static-image pseudo-videos: still images with masks as training clips (STCN's stage 0).

Image/mask pairs are found recursively under a folder (:func:`find_image_mask_pairs`); masks are
read with :func:`read_static_mask` (a 0/255 mask is one object). :class:`StaticImageDataset`
repeats one image ``clip_length`` times with per-frame random motion, and shares seeding, epoch,
augmentation and object sampling with the video datasets through
:class:`~mobilevos.data.clips.ClipDatasetBase` (see :mod:`mobilevos.data.clips` for those rules).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mobilevos.data.augment import AugmentConfig, MotionConfig
from mobilevos.data.clips import ClipDatasetBase
from mobilevos.data.davis import read_rgb
from mobilevos.errors import DatasetError
from mobilevos.io import VOID_LABEL

STATIC_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SKIPPED_DIRS = ("images", "masks")


def find_image_mask_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """Every (image, mask) pair under ``root``, searched recursively, in sorted order.

    Two layouts are recognised in any folder: ``name.jpg`` (or ``.jpeg``) beside ``name.png``
    (the PNG is the mask), and ``images/name.{jpg,jpeg,png}`` with ``masks/name.png``.
    Files without a partner are ignored.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: static image folder not found")
    pairs: list[tuple[Path, Path]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        if here.name in _SKIPPED_DIRS and here != root:
            continue
        if "images" in dirs and "masks" in dirs:
            pairs.extend(_paired_folders(here / "images", here / "masks"))
        names = set(files)
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            jpeg = suffix.lower() in (".jpg", ".jpeg") and not name.startswith(".")
            if jpeg and f"{stem}.png" in names:
                pairs.append((here / name, here / f"{stem}.png"))
    if not pairs:
        raise DatasetError(
            f"{root}: no image + mask pairs (name.jpg beside name.png, or images/ + masks/)"
        )
    return pairs


def _paired_folders(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    mask_files = {p.stem: p for p in masks.iterdir() if p.suffix.lower() == ".png"}
    return [
        (image, mask_files[image.stem])
        for image in sorted(images.iterdir())
        if image.suffix.lower() in STATIC_IMAGE_SUFFIXES
        and not image.name.startswith(".")
        and image.stem in mask_files
    ]


def read_static_mask(path: Path) -> np.ndarray:
    """A mask of a static-image dataset as (H, W) uint8 ids.

    A palette PNG gives its indices (several objects, 255 void), except that one holding only
    0 and 255 is a binary mask saved with a palette (object 1). Anything else is converted to
    grayscale and thresholded at 128 into one object with id 1: saliency datasets store 0/255
    masks whose anti-aliased edges hold intermediate values, which are not object ids.
    """
    try:
        with Image.open(path) as image:
            if image.mode == "P":
                labels = np.array(image, dtype=np.uint8)
                binary = set(np.unique(labels).tolist()) == {0, VOID_LABEL}
                return (labels == VOID_LABEL).astype(np.uint8) if binary else labels
            gray = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{path}: cannot read mask ({exc.__class__.__name__})") from None
    return (gray >= 128).astype(np.uint8)


class StaticImageDataset(ClipDatasetBase):
    """Pseudo-videos from still images with masks (STCN's static pre-training stage).

    Each sample repeats one image ``clip_length`` times and gives every frame its own random
    affine and smooth elastic deformation (``motion``, on top of ``augment``'s), so the model
    must track the object through plausible motion. See :func:`find_image_mask_pairs` for the
    layouts and :func:`read_static_mask` for how masks are read (a 0/255 mask is one object).
    """

    def __init__(
        self,
        root: str | Path,
        clip_length: int = 3,
        crop: int = 384,
        max_objects: int = 1,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        *,
        motion: MotionConfig | None = None,
        min_object_area: int = 100,
        repeat: int = 1,
        stream: int = 0,
    ) -> None:
        super().__init__(
            clip_length=clip_length, max_skip=1, crop=crop, max_objects=max_objects,
            min_object_area=min_object_area, augment=augment, seed=seed, stream=stream,
            repeat=repeat, skip_divisor=1,
        )  # fmt: skip
        self.root = Path(root)
        self.pairs = find_image_mask_pairs(self.root)
        self.motion = MotionConfig.pseudo_video() if motion is None else motion

    def _num_sources(self) -> int:
        return len(self.pairs)

    def _describe(self, source: int) -> str:
        return f"image {self.pairs[source][0]}"

    def _draw(self, source: int, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.pairs[source]
        image, mask = read_rgb(image_path), read_static_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise DatasetError(
                f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but "
                f"{image_path.name} is {image.shape[0]}x{image.shape[1]}"
            )
        frames = np.broadcast_to(image, (self.clip_length, *image.shape))
        labels = np.broadcast_to(mask, (self.clip_length, *mask.shape))
        return self._augment(frames, labels, rng, extra_motion=self.motion)
