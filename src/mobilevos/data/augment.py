"""Clip-consistent augmentation of training clips: one geometry per clip, small per-frame changes.

A clip is a few frames of one video with their label maps. Augmentation must keep every label
on the pixel it describes, so all geometry is expressed as one 3x3 matrix per frame (resize,
crop, flip, affine) plus an optional smooth displacement field, and frames and labels are
resampled through the *same* sampling grid: frames bilinearly, labels by nearest neighbour (so
void, 255, stays 255 and no id is ever blended into another). Building the grid once costs far
less than resizing a 480p frame and then cropping it, and it cannot misalign frames and masks.

Decisions (each a field of :class:`AugmentConfig`):

* **Scale and crop.** The short side is resized to ``crop * s`` with ``s`` uniform in
  ``scale`` (``s >= 1``, so a crop never needs padding before the affine jitter), then a
  ``crop x crop`` window is placed uniformly. Up to ``crop_tries`` placements (each with its
  own affine draw) are tried until the first frame keeps an object of at least
  ``min_object_area`` pixels; if none does, the placement showing most object pixels is kept.
  Sources more than 2x larger than needed are first downscaled with antialiasing, so the
  bilinear grid never aliases.
* **Flip.** Horizontal, for the whole clip, with probability ``flip``.
* **Affine motion.** ``clip_motion`` is drawn once per clip and ``frame_motion`` once per frame
  (rotation, zoom, shear about the crop centre, translation, and for pseudo-videos a smooth
  elastic field); the defaults give a clip-level jitter plus small frame-to-frame variation.
  Pixels brought in from outside the image are filled with ``fill`` (the ImageNet mean colour,
  which becomes 0 after normalisation) and labelled background.
* **Colour.** ``clip_color`` per clip times ``frame_color`` per frame (brightness, contrast,
  saturation multiply; hue adds), then grayscale for the whole clip with probability
  ``grayscale``. Defaults follow STCN's strengths (0.1/0.03/0.03 per clip, 0.01 per frame).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from mobilevos.errors import ConfigError
from mobilevos.io import VOID_LABEL

IMAGENET_MEAN = (0.485, 0.456, 0.406)
_ANTIALIAS_BELOW = 0.5  # pre-downscale the source when the warp would shrink it more than 2x


def _pair(name: str, value: Any, low: float, high: float) -> tuple[float, float]:
    """Validate a ``(min, max)`` range given as a list or tuple."""
    try:
        pair = (float(value[0]), float(value[1]))
        if len(value) != 2:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise ConfigError(f"augment: {name} must be a (min, max) pair, got {value!r}") from None
    if not low <= pair[0] <= pair[1] <= high:
        raise ConfigError(f"augment: {name} must satisfy {low} <= min <= max <= {high}")
    return pair


def _non_negative(owner: Any, *names: str) -> None:
    for name in names:
        if getattr(owner, name) < 0:
            raise ConfigError(f"augment: {name} must be >= 0, got {getattr(owner, name)}")


def _from_dict(cls: type, data: dict[str, Any], base: Any) -> Any:
    """``cls`` with the fields of ``data`` replaced on ``base``; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"augment: {cls.__name__} must be a mapping, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        listed = ", ".join(sorted(known))
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)} (known: {listed})")
    return dataclasses.replace(base, **data)


@dataclass(frozen=True)
class MotionConfig:
    """Random geometric motion; all zero (the default) is the identity.

    Attributes:
        rotation: largest rotation, degrees (uniform in ``±rotation``).
        zoom: range of the zoom factor (content appears this many times larger).
        shear: largest horizontal shear angle, degrees.
        translate: largest shift, as a fraction of the crop side, in x and y independently.
        elastic: largest displacement of the elastic field's control points, as a fraction of
            the crop side; 0 disables it.
        elastic_grid: control points per side; the field is their bicubic interpolation, so
            a small grid gives a smooth, thin-plate-like bend.
    """

    rotation: float = 0.0
    zoom: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0
    translate: float = 0.0
    elastic: float = 0.0
    elastic_grid: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "zoom", _pair("zoom", self.zoom, 0.1, 10.0))
        _non_negative(self, "rotation", "shear", "translate", "elastic")
        if self.shear >= 80:
            raise ConfigError(f"augment: shear must be < 80 degrees, got {self.shear}")
        if self.elastic_grid < 2:
            raise ConfigError(f"augment: elastic_grid must be >= 2, got {self.elastic_grid}")

    @classmethod
    def pseudo_video(cls) -> MotionConfig:
        """Per-frame motion that turns a still image into a plausible 3-frame video.

        Strengths follow STCN's static stage (rotation 20°, zoom 0.9-1.1, shear 10°) plus a
        translation and a gentle elastic bend of our choosing.
        """
        return cls(rotation=20.0, zoom=(0.9, 1.1), shear=10.0, translate=0.05, elastic=0.03)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: MotionConfig | None = None) -> MotionConfig:
        """Override the fields of ``base`` (default: identity) with ``data``."""
        return _from_dict(cls, data, base or cls())


@dataclass(frozen=True)
class ColorConfig:
    """Photometric jitter strengths; 0 disables each (the default).

    Brightness, contrast and saturation factors are uniform in ``1 ± strength``; the hue
    shift is uniform in ``± hue`` (fraction of the colour wheel, at most 0.5).
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0

    def __post_init__(self) -> None:
        _non_negative(self, "brightness", "contrast", "saturation", "hue")
        if self.hue > 0.5:
            raise ConfigError(f"augment: hue must be <= 0.5, got {self.hue}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: ColorConfig | None = None) -> ColorConfig:
        """Override the fields of ``base`` (default: no jitter) with ``data``."""
        return _from_dict(cls, data, base or cls())


_NESTED: dict[str, Any] = {
    "clip_motion": MotionConfig,
    "frame_motion": MotionConfig,
    "clip_color": ColorConfig,
    "frame_color": ColorConfig,
}


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of every training augmentation (see the module docstring for the order).

    Attributes:
        scale: range of (short side after resizing) / crop; both ends >= 1.
        random_crop: place the crop uniformly; False centres it (evaluation-style).
        crop_tries: crop placements tried to keep an object visible in the first frame.
        flip: probability of flipping the whole clip horizontally.
        clip_motion: affine motion drawn once per clip.
        frame_motion: extra motion drawn for every frame.
        clip_color: colour jitter drawn once per clip.
        frame_color: extra colour jitter drawn for every frame.
        grayscale: probability of turning the whole clip grayscale.
        fill: RGB colour in [0, 1] of pixels brought in from outside the image.
    """

    scale: tuple[float, float] = (1.0, 1.5)
    random_crop: bool = True
    crop_tries: int = 5
    flip: float = 0.5
    clip_motion: MotionConfig = MotionConfig(rotation=15.0, zoom=(0.9, 1.1), shear=10.0)
    frame_motion: MotionConfig = MotionConfig(rotation=3.0, zoom=(0.97, 1.03), shear=3.0)
    clip_color: ColorConfig = ColorConfig(brightness=0.1, contrast=0.03, saturation=0.03)
    frame_color: ColorConfig = ColorConfig(brightness=0.01, contrast=0.01, saturation=0.01)
    grayscale: float = 0.05
    fill: tuple[float, float, float] = IMAGENET_MEAN

    def __post_init__(self) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name, sub in _NESTED.items():
            value = getattr(self, name)
            if isinstance(value, dict):  # nested mappings from YAML override field-wise
                object.__setattr__(self, name, sub.from_dict(value, defaults[name]))
            elif not isinstance(value, sub):
                raise ConfigError(f"augment: {name} must be a mapping, got {value!r}")
        object.__setattr__(self, "scale", _pair("scale", self.scale, 1.0, 100.0))
        object.__setattr__(self, "fill", tuple(float(v) for v in self.fill))
        if len(self.fill) != 3 or not all(0.0 <= v <= 1.0 for v in self.fill):
            raise ConfigError(f"augment: fill must be 3 values in [0, 1], got {self.fill}")
        if self.crop_tries < 1:
            raise ConfigError(f"augment: crop_tries must be >= 1, got {self.crop_tries}")
        for name in ("flip", "grayscale"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment: {name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No randomness at all: resize the short side to the crop and take the centre."""
        still, plain = MotionConfig(), ColorConfig()
        return cls(
            scale=(1.0, 1.0),
            random_crop=False,
            flip=0.0,
            clip_motion=still,
            frame_motion=still,
            clip_color=plain,
            frame_color=plain,
            grayscale=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists for ranges), as YAML would hold it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        """Override the defaults with ``data``; nested motion/colour dicts override field-wise."""
        return _from_dict(cls, data, cls())


class AugmentedClip(NamedTuple):
    """Output of :func:`augment_clip`.

    Shapes:
        frames: (T, 3, crop, crop) float32 in [0, 1].
        labels: (T, crop, crop) int64; ids as in the input, 255 void, 0 outside the image.
    """

    frames: Tensor
    labels: Tensor


# ---------------------------------------------------------------------------------- geometry


def _motion_matrix(rng: np.random.Generator, motion: MotionConfig, crop: int) -> np.ndarray:
    """Random forward affine (3x3) about the crop centre: rotate · shear · zoom, then shift."""
    theta = math.radians(rng.uniform(-motion.rotation, motion.rotation))
    shear = math.radians(rng.uniform(-motion.shear, motion.shear))
    zoom = rng.uniform(*motion.zoom)
    shift = rng.uniform(-motion.translate, motion.translate, size=2) * crop
    cos, sin = math.cos(theta), math.sin(theta)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, math.tan(shear)], [0, 1]])
    linear = linear * zoom
    centre = np.full(2, crop / 2.0)
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = centre - linear @ centre + shift
    return matrix


def _elastic_field(rng: np.random.Generator, motion: MotionConfig, crop: int) -> np.ndarray | None:
    """Smooth displacement (2, crop, crop) in pixels (x, y), or None when ``elastic`` is 0."""
    if motion.elastic <= 0:
        return None
    size = motion.elastic_grid
    coarse = rng.uniform(-1.0, 1.0, size=(1, 2, size, size)) * motion.elastic * crop
    field = F.interpolate(
        torch.from_numpy(coarse), size=(crop, crop), mode="bicubic", align_corners=True
    )
    return field[0].numpy()


@functools.lru_cache(maxsize=8)
def _output_points(crop: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the crop's pixel centres. Shapes: two (crop, crop) float64, read-only."""
    centres = np.arange(crop, dtype=np.float64) + 0.5
    xs, ys = np.meshgrid(centres, centres, indexing="xy")
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _sampling_grid(
    forward: np.ndarray, crop: int, field: np.ndarray | None, source_hw: tuple[int, int]
) -> Tensor:
    """``grid_sample`` grid (crop, crop, 2) that realises ``forward`` (source px -> output px).

    Each output pixel centre is displaced by ``field`` (if any), mapped back through the inverse
    matrix, and normalised for ``align_corners=False`` (pixel i spans [i, i+1)). Computed in
    float64 numpy: exact half-pixel arithmetic, and no thread pool for a few element-wise ops.
    """
    xs, ys = _output_points(crop)
    if field is not None:
        xs, ys = xs + field[0], ys + field[1]
    inverse = np.linalg.inv(forward)
    height, width = source_hw
    x = (inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]) * (2.0 / width) - 1.0
    y = (inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]) * (2.0 / height) - 1.0
    return torch.from_numpy(np.stack([x, y], axis=-1).astype(np.float32))


def _base_matrix(
    rng: np.random.Generator, config: AugmentConfig, source_hw: tuple[int, int], crop: int, s: float
) -> np.ndarray:
    """Resize so the short side is ``crop * s``, then place the crop window (3x3, forward)."""
    height, width = source_hw
    ratio = crop * s / min(height, width)
    spare = np.array([width * ratio - crop, height * ratio - crop]).clip(min=0)
    offset = rng.uniform(0.0, 1.0, size=2) * spare if config.random_crop else spare / 2
    matrix = np.diag([ratio, ratio, 1.0])
    matrix[:2, 2] = -offset
    return matrix


def sample_grids(
    rng: np.random.Generator,
    config: AugmentConfig,
    source_hw: tuple[int, int],
    crop: int,
    num_frames: int,
    s: float,
    flip: bool,
    extra_motion: MotionConfig | None = None,
) -> Tensor:
    """Draw one crop placement and per-clip/per-frame motion; return every frame's grid.

    Shapes:
        returns: (T, crop, crop, 2) float32, for ``grid_sample(align_corners=False)``.
    """
    base = _base_matrix(rng, config, source_hw, crop, s)
    if flip:
        base = np.array([[-1.0, 0, crop], [0, 1, 0], [0, 0, 1]]) @ base
    clip = _motion_matrix(rng, config.clip_motion, crop) @ base
    grids = []
    for _ in range(num_frames):
        forward = _motion_matrix(rng, config.frame_motion, crop) @ clip
        field = _elastic_field(rng, config.frame_motion, crop)
        if extra_motion is not None:
            forward = _motion_matrix(rng, extra_motion, crop) @ forward
            extra = _elastic_field(rng, extra_motion, crop)
            field = extra if field is None else (field if extra is None else field + extra)
        grids.append(_sampling_grid(forward, crop, field, source_hw))
    return torch.stack(grids)


def warp_frames(frames: Tensor, grids: Tensor, fill: tuple[float, float, float]) -> Tensor:
    """Bilinear resampling; outside pixels get ``fill``. Shapes: (T, 3, H, W) -> (T, 3, c, c)."""
    fill_t = torch.tensor(fill, dtype=frames.dtype).view(1, 3, 1, 1)
    warped = F.grid_sample(
        frames - fill_t, grids, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return (warped + fill_t).clamp_(0.0, 1.0)


def warp_labels(labels: Tensor, grids: Tensor) -> Tensor:
    """Nearest-neighbour resampling; outside pixels become 0. Shapes: (T, H, W) -> (T, c, c)."""
    warped = F.grid_sample(
        labels[:, None].float(), grids, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return warped[:, 0].round().long()


def largest_object_area(labels: Tensor) -> int:
    """Pixel count of the largest object (ids 1..254) in a label map. Shapes: (H, W)."""
    counts = torch.bincount(labels.reshape(-1).long(), minlength=256)[1:VOID_LABEL]
    return int(counts.max())


# ----------------------------------------------------------------------------------- colour


def _color_factors(rng: np.random.Generator, color: ColorConfig) -> np.ndarray:
    """Brightness, contrast, saturation factors and hue shift."""
    strengths = np.array([color.brightness, color.contrast, color.saturation])
    factors = 1.0 + rng.uniform(-1.0, 1.0, size=3) * strengths
    return np.append(factors, rng.uniform(-1.0, 1.0) * color.hue)


def jitter_colors(frames: Tensor, config: AugmentConfig, rng: np.random.Generator) -> Tensor:
    """Per-clip times per-frame photometric jitter, then optional clip-wide grayscale.

    Shapes:
        frames: (T, 3, H, W) float in [0, 1]; returns the same.
    """
    clip = _color_factors(rng, config.clip_color)
    out = []
    for frame in frames:
        step = _color_factors(rng, config.frame_color)
        brightness, contrast, saturation = clip[:3] * step[:3]
        hue = float(np.clip(clip[3] + step[3], -0.5, 0.5))
        frame = TF.adjust_brightness(frame, float(brightness))
        frame = TF.adjust_contrast(frame, float(contrast))
        frame = TF.adjust_saturation(frame, float(saturation))
        if hue != 0.0:
            frame = TF.adjust_hue(frame, hue)
        out.append(frame)
    result = torch.stack(out)
    if rng.random() < config.grayscale:
        result = TF.rgb_to_grayscale(result, num_output_channels=3)
    return result


# ---------------------------------------------------------------------------------- pipeline


def _prepare(frames: Tensor, labels: Tensor, crop: int, s: float) -> tuple[Tensor, Tensor]:
    """Frames to float [0, 1]; sources far larger than needed are downscaled with antialias."""
    frames = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    height, width = frames.shape[-2:]
    ratio = crop * s / min(height, width)
    if ratio < _ANTIALIAS_BELOW:
        size = (max(crop, round(height * ratio)), max(crop, round(width * ratio)))
        frames = F.interpolate(frames, size=size, mode="bilinear", antialias=True)
        frames = frames.clamp_(0.0, 1.0)
        labels = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
    return frames, labels


def augment_clip(
    frames: Tensor,
    labels: Tensor,
    crop: int,
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    extra_motion: MotionConfig | None = None,
    min_object_area: int = 1,
) -> AugmentedClip:
    """Augment a clip consistently; every random draw comes from ``rng``.

    ``extra_motion`` adds per-frame motion on top of ``config.frame_motion`` (pseudo-videos).
    Crop placements are retried (``config.crop_tries``) until the first frame shows an object
    of at least ``min_object_area`` pixels; otherwise the placement with the largest object wins.

    Shapes:
        frames: (T, 3, H, W) uint8 or float in [0, 1].
        labels: (T, H, W) integer ids, 255 void.
        returns: frames (T, 3, crop, crop) float32 in [0, 1], labels (T, crop, crop) int64.
    """
    expected = (frames.shape[0], *frames.shape[2:])
    if frames.ndim != 4 or frames.shape[1] != 3 or tuple(labels.shape) != expected:
        raise ValueError(f"frames {tuple(frames.shape)} and labels {tuple(labels.shape)} mismatch")
    s = float(rng.uniform(*config.scale))
    flip = bool(rng.random() < config.flip)
    frames, labels = _prepare(frames, labels, crop, s)
    source_hw = (int(frames.shape[-2]), int(frames.shape[-1]))
    tries = config.crop_tries if largest_object_area(labels[0]) > 0 else 1
    best: tuple[int, Tensor, Tensor] | None = None
    for _ in range(tries):
        grids = sample_grids(rng, config, source_hw, crop, len(frames), s, flip, extra_motion)
        first = warp_labels(labels[:1], grids[:1])[0]
        area = largest_object_area(first)
        if best is None or area > best[0]:
            best = (area, grids, first)
        if area >= min_object_area:
            break
    assert best is not None
    _, grids, first = best
    out_labels = torch.cat([first[None], warp_labels(labels[1:], grids[1:])])
    out_frames = jitter_colors(warp_frames(frames, grids, config.fill), config, rng)
    return AugmentedClip(out_frames, out_labels)
