"""Clip-consistent augmentation: alignment of frames and labels, flips, crops, colour, configs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mobilevos.data.augment import (
    AugmentConfig,
    ColorConfig,
    MotionConfig,
    augment_clip,
    largest_object_area,
)
from mobilevos.errors import ConfigError

# Each label's colour; an augmented pixel's strongest channel must give back its label.
COLOURS = {0: (0, 0, 255), 1: (255, 0, 0), 2: (0, 255, 0)}
STILL = MotionConfig()


def colour_coded_clip(num_frames: int = 3, height: int = 72, width: int = 112):
    """Frames whose colour encodes the label: background blue, object 1 red, object 2 green.

    Object 1 is a disc moving right, object 2 a box; a void band (255) is painted blue.

    Shapes: returns frames (T, 3, H, W) uint8, labels (T, H, W) int64.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    labels = np.zeros((num_frames, height, width), np.int64)
    for t in range(num_frames):
        labels[t][(ys - 36) ** 2 + (xs - 30 - 6 * t) ** 2 < 15**2] = 1
        labels[t, 10:40, 70:100] = 2
        labels[t, 60:64, :] = 255
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for label, colour in COLOURS.items():
        frames[labels == label] = colour
    frames[labels == 255] = COLOURS[0]
    return torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def interior(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Pixels whose whole (2r+1)^2 neighbourhood is in ``mask``. Shapes: (..., H, W) bool."""
    size = 2 * radius + 1
    eroded = -F.max_pool2d(-mask.float()[:, None], size, stride=1, padding=radius)
    return eroded[:, 0] > 0.5


def assert_aligned(frames: torch.Tensor, labels: torch.Tensor) -> None:
    """Away from borders, the colour class of a pixel and its label agree, both ways."""
    colour_class = frames.argmax(dim=1)  # 0 red, 1 green, 2 blue
    colour_of_label = {0: 2, 1: 0, 2: 1, 255: 2}
    checked = 0
    for label, channel in colour_of_label.items():
        inside = interior(labels == label)
        assert (colour_class[inside] == channel).all(), f"label {label} off its colour"
        checked += int(inside.sum())
    for label, channel in ((1, 0), (2, 1)):
        region = interior(colour_class == channel)
        assert (labels[region] == label).all(), f"colour of label {label} mislabelled"
    assert checked > 0.6 * labels.numel()  # the check is not vacuous


def test_config_defaults_none_and_round_trip() -> None:
    config = AugmentConfig()
    assert AugmentConfig.from_dict(config.to_dict()) == config
    changed = AugmentConfig.from_dict({"clip_motion": {"rotation": 3}, "scale": [1.0, 2.0]})
    assert changed.clip_motion == dataclasses.replace(config.clip_motion, rotation=3)
    assert changed.scale == (1.0, 2.0)
    none = AugmentConfig.none()
    assert none.flip == 0 and not none.random_crop and none.clip_motion == STILL
    with pytest.raises(ConfigError, match="unknown AugmentConfig fields: rotate"):
        AugmentConfig.from_dict({"rotate": 5})
    with pytest.raises(ConfigError, match="unknown MotionConfig fields: spin"):
        AugmentConfig.from_dict({"frame_motion": {"spin": 1}})
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig(scale=(0.5, 1.0))
    with pytest.raises(ConfigError, match="flip"):
        AugmentConfig(flip=2.0)


def test_none_is_exact_resize_and_centre_crop() -> None:
    """Scale 1/2 with half-pixel centres: the warp equals 2x2 average pooling, centre-cropped."""
    generator = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 64, 96, generator=generator)
    labels = torch.zeros(2, 64, 96, dtype=torch.long)
    out = augment_clip(frames, labels, 32, AugmentConfig.none(), np.random.default_rng(0))
    expected = F.avg_pool2d(frames, 2)[..., :, 8:40]
    torch.testing.assert_close(out.frames, expected, atol=1e-5, rtol=0)
    assert out.frames.dtype == torch.float32 and out.labels.dtype == torch.int64


@pytest.mark.parametrize("seed", range(6))
def test_default_augmentation_keeps_masks_on_their_pixels(seed: int) -> None:
    frames, labels = colour_coded_clip()
    config = dataclasses.replace(AugmentConfig(), grayscale=0.0, fill=(0.0, 0.0, 1.0))
    out = augment_clip(frames, labels, 64, config, np.random.default_rng(seed))
    assert out.frames.shape == (3, 3, 64, 64) and out.labels.shape == (3, 64, 64)
    assert set(out.labels.unique().tolist()) <= {0, 1, 2, 255}
    assert_aligned(out.frames, out.labels)


def test_pseudo_video_motion_keeps_masks_aligned_and_moves() -> None:
    frames, labels = colour_coded_clip()
    frames, labels = frames[:1].expand(3, -1, -1, -1), labels[:1].expand(3, -1, -1)
    config = dataclasses.replace(AugmentConfig(), grayscale=0.0, fill=(0.0, 0.0, 1.0))
    for seed in range(3):
        out = augment_clip(
            frames, labels, 64, config, np.random.default_rng(seed),
            extra_motion=MotionConfig.pseudo_video(),
        )  # fmt: skip
        assert_aligned(out.frames, out.labels)
        assert not torch.equal(out.labels[0], out.labels[1])  # each frame moved differently


def test_flip_mirrors_every_frame_of_the_clip() -> None:
    frames, labels = colour_coded_clip()
    base = dataclasses.replace(AugmentConfig(), clip_motion=STILL, frame_motion=STILL)
    plain = augment_clip(
        frames, labels, 48, dataclasses.replace(base, flip=0.0), np.random.default_rng(3)
    )
    flipped = augment_clip(
        frames, labels, 48, dataclasses.replace(base, flip=1.0), np.random.default_rng(3)
    )
    torch.testing.assert_close(flipped.frames, plain.frames.flip(-1), atol=1e-5, rtol=0)
    assert torch.equal(flipped.labels, plain.labels.flip(-1))
    assert not torch.equal(plain.labels, plain.labels.flip(-1))  # the clip is not symmetric


def test_crop_retries_keep_an_object_in_the_first_frame() -> None:
    labels = torch.zeros(2, 64, 128, dtype=torch.long)
    labels[:, 20:40, 0:16] = 1  # a small object at the left end of a wide frame
    frames = torch.zeros(2, 3, 64, 128, dtype=torch.uint8)
    still = dataclasses.replace(AugmentConfig.none(), random_crop=True)

    def visible(tries: int, seed: int) -> bool:
        config = dataclasses.replace(still, crop_tries=tries)
        out = augment_clip(
            frames, labels, 32, config, np.random.default_rng(seed), min_object_area=20
        )
        return largest_object_area(out.labels[0]) >= 20

    assert all(visible(30, seed) for seed in range(20))
    assert sum(visible(1, seed) for seed in range(20)) < 12


def test_colour_jitter_is_shared_by_the_clip_plus_small_per_frame_changes() -> None:
    frames = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)).expand(
        3, -1, -1, -1
    )
    labels = torch.zeros(3, 32, 32, dtype=torch.long)
    clip_only = dataclasses.replace(AugmentConfig.none(), clip_color=ColorConfig(0.3, 0.3, 0.3))
    out = augment_clip(frames, labels, 32, clip_only, np.random.default_rng(0))
    assert torch.equal(out.frames[0], out.frames[1]) and torch.equal(out.frames[0], out.frames[2])
    assert (out.frames[0] - frames[0]).abs().max() > 0.05  # the clip jitter did something
    per_frame = dataclasses.replace(clip_only, frame_color=ColorConfig(0.02, 0.02, 0.02))
    out = augment_clip(frames, labels, 32, per_frame, np.random.default_rng(0))
    difference = (out.frames[0] - out.frames[1]).abs().max()
    assert 0 < difference < 0.1


def test_large_sources_are_downscaled_without_aliasing() -> None:
    noise = torch.randint(0, 2, (256, 256), generator=torch.Generator().manual_seed(0))
    frames = (noise * 255).to(torch.uint8).expand(1, 3, -1, -1)
    labels = torch.zeros(1, 256, 256, dtype=torch.long)
    out = augment_clip(frames, labels, 32, AugmentConfig.none(), np.random.default_rng(0))
    # 8x smaller: an antialiased average of ~64 binary pixels varies little around 1/2, a
    # plain bilinear lookup (4 pixels) would vary by about 0.25.
    assert (out.frames - 0.5).abs().mean() < 0.06
