"""Training clips: frame and object sampling, the clip datasets, determinism, data configs."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dataset_factory import make_davis, make_ytvos
from mobilevos.data.augment import AugmentConfig, MotionConfig
from mobilevos.data.clips import ClipSample, SynthClipDataset, VideoClipDataset, collate_clips
from mobilevos.data.davis import DavisDataset
from mobilevos.data.sampling import (
    SkipSchedule,
    choose_objects,
    max_skip_schedule,
    relabel,
    sample_clip_indices,
)
from mobilevos.data.static import StaticImageDataset, find_image_mask_pairs, read_static_mask
from mobilevos.data.synth import SynthConfig, jpeg_roundtrip, render_video
from mobilevos.data.training import DataConfig, DataSourceConfig, build_training_dataset
from mobilevos.data.videos import ArrayVideo, davis_videos, ytvos_videos
from mobilevos.data.ytvos import YouTubeVOSDataset
from mobilevos.errors import ConfigError, DatasetError
from mobilevos.io import write_palette_png

PLAIN = AugmentConfig.none()
NO_GRAY = dataclasses.replace(AugmentConfig(), grayscale=0.0, fill=(0.0, 0.0, 1.0))


def disc_video(num_frames: int, height: int = 40, width: int = 56, objects: int = 1,
               start: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Objects 1..objects are discs (red) on blue, visible from frame ``start`` on.

    Shapes: returns frames (T, H, W, 3) uint8, labels (T, H, W) uint8.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    labels = np.zeros((num_frames, height, width), np.uint8)
    for t in range(start, num_frames):
        for k in range(objects):
            cx, cy = 8 + 12 * k + (t % 5), 12 + 8 * (k % 3)
            labels[t][(ys - cy) ** 2 + (xs - cx) ** 2 < 36] = k + 1
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    frames[..., 2] = 255
    frames[labels > 0] = (255, 0, 0)
    return frames, labels


def index_coded_video(num_frames: int, height: int = 24, width: int = 32):
    """Frame t is uniformly grey level 4t, so a sample's frames reveal their indices."""
    frames = np.repeat(np.arange(num_frames, dtype=np.uint8)[:, None, None, None] * 4, 3, -1)
    frames = np.ascontiguousarray(np.broadcast_to(frames, (num_frames, height, width, 3)))
    labels = np.zeros((num_frames, height, width), np.uint8)
    labels[:, 4:20, 4:20] = 1
    return frames, labels


def decoded_indices(sample: ClipSample) -> list[int]:
    return [round(float(f.mean()) * 255 / 4) for f in sample.frames]


# ------------------------------------------------------------------------- frame sampling


@pytest.mark.parametrize(("num_frames", "length", "skip"), [(50, 3, 7), (6, 3, 25), (9, 5, 3)])
def test_clip_indices_are_ordered_with_bounded_gaps(num_frames, length, skip) -> None:
    rng = np.random.default_rng(0)
    seen_gaps = set()
    for _ in range(500):
        indices = sample_clip_indices(num_frames, length, skip, rng)
        gaps = np.diff(indices)
        assert len(indices) == length and indices[0] >= 0 and indices[-1] < num_frames
        assert (gaps >= 1).all() and (gaps <= skip).all()
        seen_gaps.update(gaps.tolist())
    assert seen_gaps == set(range(1, min(skip, (num_frames - 1) // (length - 1)) + 1))


def test_clip_indices_follow_the_documented_distribution() -> None:
    """n=5, T=3, max skip 2: gaps uniform in {1, 2}, start uniform in 0..4-sum(gaps)."""
    expected = {}
    for g1 in (1, 2):
        for g2 in (1, 2):
            for start in range(5 - g1 - g2):
                expected[(start, start + g1, start + g1 + g2)] = 0.25 / (5 - g1 - g2)
    rng = np.random.default_rng(1)
    draws = 20000
    counts = Counter(tuple(sample_clip_indices(5, 3, 2, rng)) for _ in range(draws))
    assert set(counts) == set(expected)
    for clip, p in expected.items():
        assert abs(counts[clip] / draws - p) < 4 * np.sqrt(p * (1 - p) / draws), clip


def test_clip_indices_edge_cases() -> None:
    rng = np.random.default_rng(0)
    assert sample_clip_indices(3, 3, 10, rng) == [0, 1, 2]
    assert 0 <= sample_clip_indices(4, 1, 1, rng)[0] < 4
    with pytest.raises(ValueError):
        sample_clip_indices(2, 3, 5, rng)


def test_max_skip_schedule_switch_points() -> None:
    progress = [0.0, 0.099, 0.1, 0.199, 0.2, 0.3, 0.4, 0.899, 0.9, 1.0]
    assert [max_skip_schedule(p) for p in progress] == [5, 5, 10, 10, 15, 20, 25, 25, 5, 5]
    custom = SkipSchedule(max_skip_values=(3, 7), max_skip_switches=(0.5, 0.7), initial_max_skip=1)
    assert [max_skip_schedule(p, custom) for p in (0.4, 0.6, 0.8)] == [1, 3, 7]
    data = DataConfig(max_skip_values=(2, 4), max_skip_switches=(0.0, 0.5))
    assert [max_skip_schedule(0.2, data), data.max_skip(0.5)] == [2, 4]
    with pytest.raises(ConfigError, match="2 values but 1 switch"):
        SkipSchedule(max_skip_values=(1, 2), max_skip_switches=(0.5,))
    with pytest.raises(ConfigError, match="increase"):
        DataConfig(max_skip_values=(1, 2), max_skip_switches=(0.5, 0.2))


# ------------------------------------------------------------------------ object sampling


def test_choose_objects_and_relabel() -> None:
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 0, :4] = 3  # 4 pixels
    labels[:, 1, :] = 7  # 8 pixels
    labels[:, 2, :] = 9
    labels[:, 3, :1] = 5  # 1 pixel: below the minimum
    labels[:, 7, :] = 255
    orders = set()
    for seed in range(20):
        chosen = choose_objects(labels[0], 2, 4, np.random.default_rng(seed))
        assert len(chosen) == 2 and set(chosen) <= {3, 7, 9}
        orders.add(tuple(chosen))
        out = relabel(labels, chosen)
        assert set(out.unique().tolist()) == {0, 1, 2, 255}
        for k, original in enumerate(chosen, start=1):
            assert torch.equal(out == k, labels == original)
        assert torch.equal(out == 255, labels == 255)
    assert (7, 9) in orders and (9, 7) in orders  # random order, not sorted
    assert choose_objects(labels[0], 5, 100, np.random.default_rng(0)) == []


def test_collate_pads_objects() -> None:
    labels = torch.zeros(3, 4, 4, dtype=torch.long)
    labels[:, 0, 0], labels[:, 1, 1], labels[:, 3, 3] = 1, 2, 255
    two = ClipSample(torch.rand(3, 3, 4, 4), labels, 2)
    one = ClipSample(torch.rand(3, 3, 4, 4), torch.where(labels == 1, 1, 0), 1)
    batch = collate_clips([two, one], max_objects=3)
    assert batch.frames.shape == (2, 3, 3, 4, 4) and batch.labels.shape == (2, 3, 4, 4)
    assert batch.present.tolist() == [[True, True, False], [True, False, False]]
    assert batch.first_masks.shape == (2, 3, 4, 4)
    assert batch.first_masks[0, 0, 0, 0] == 1 and batch.first_masks[0, 1, 1, 1] == 1
    assert batch.first_masks.sum().item() == 3  # void is no object; padding is all zero
    assert batch.first_masks[:, 2].abs().sum() == 0
    with pytest.raises(ValueError):
        collate_clips([two], max_objects=1)


def test_object_limit_and_consecutive_ids() -> None:
    videos = [ArrayVideo("many", *disc_video(12, objects=4))]
    dataset = VideoClipDataset(videos, crop=32, max_objects=2, augment=NO_GRAY, min_object_area=10,
                               repeat=10)  # fmt: skip
    for sample in dataset:
        k = sample.num_objects
        assert 1 <= k <= 2
        assert set(sample.labels.unique().tolist()) <= {0, *range(1, k + 1)}
        first = torch.bincount(sample.labels[0].reshape(-1), minlength=k + 1)
        assert (first[1 : k + 1] >= 10).all()  # every chosen object is visible in frame 0


def test_first_frame_never_empty() -> None:
    late = ArrayVideo("late", *disc_video(10, start=3))  # objects only in frames 3..9
    empty = ArrayVideo("empty", *disc_video(10, objects=0))
    dataset = VideoClipDataset([late, empty], crop=32, max_skip=2, augment=PLAIN,
                               min_object_area=5, repeat=8)  # fmt: skip
    for sample in dataset:
        assert sample.num_objects == 1 and (sample.labels[0] == 1).sum() >= 5
    with pytest.raises(DatasetError, match="no clip with a visible object"):
        VideoClipDataset([empty], crop=32, augment=PLAIN)[0]


def test_sparse_annotations_and_skip_divisor(tmp_path: Path) -> None:
    """YouTube-VOS train: 60 dense frames, every 5th annotated; gaps count annotated frames."""
    root = make_ytvos(tmp_path, {"v": index_coded_video(60)}, every=5, all_frames=True)
    videos = ytvos_videos(YouTubeVOSDataset(root, "train", all_frames=True))
    assert videos[0].annotated_frames == list(range(0, 60, 5))

    def gaps(divisor: int) -> set[int]:
        dataset = VideoClipDataset(videos, crop=24, max_skip=10, augment=PLAIN, min_object_area=1,
                                   skip_divisor=divisor, repeat=40)  # fmt: skip
        found = set()
        for sample in dataset:
            indices = decoded_indices(sample)
            assert all(i % 5 == 0 for i in indices), indices  # only annotated frames
            found.update(np.diff(indices).tolist())
        return found

    assert gaps(5) == {5, 10}  # max skip 10 // 5 = 2 annotated frames
    assert max(gaps(1)) > 10  # up to (12 - 1) // 2 = 5 annotated frames apart


def test_davis_layout_clips_are_aligned(tmp_path: Path) -> None:
    root = make_davis(tmp_path, {"a": disc_video(8), "b": disc_video(8, objects=2)}, split="train")
    videos = davis_videos(DavisDataset(root, 2017, "train"))
    dataset = VideoClipDataset(videos, crop=32, augment=NO_GRAY, min_object_area=5, repeat=3)
    assert len(dataset) == 6
    for sample in dataset:
        assert sample.frames.shape == (3, 3, 32, 32) and sample.labels.shape == (3, 32, 32)
        red = sample.frames[:, 0] > sample.frames[:, 2]
        objects = (sample.labels > 0) & (sample.labels != 255)
        assert (red != objects).float().mean() < 0.08  # JPEG and resampling blur only edges


# ---------------------------------------------------------------------------- determinism


def test_samples_depend_only_on_seed_epoch_and_index() -> None:
    def make(seed: int = 0) -> VideoClipDataset:
        videos = [ArrayVideo("a", *disc_video(20, objects=3))]
        return VideoClipDataset(videos, crop=32, max_skip=5, seed=seed, repeat=4)

    first, second = make(), make()
    _ = second[3]  # access order must not matter
    for index in range(4):
        a, b = first[index], second[index]
        assert torch.equal(a.frames, b.frames) and torch.equal(a.labels, b.labels)
    assert not torch.equal(first[0].frames, first[1].frames)  # repeats of a video differ
    assert not torch.equal(first[0].frames, make(seed=1)[0].frames)
    before = first[2].frames
    first.set_epoch(1)
    assert not torch.equal(before, first[2].frames)
    first.set_epoch(0)
    assert torch.equal(before, first[2].frames)


# ------------------------------------------------------------------ synthetic and static


def test_synth_online_renders_the_written_videos() -> None:
    config = SynthConfig(height=48, width=64, num_frames=12)
    dataset = SynthClipDataset(config, num_videos=3, seed=2, crop=32, max_skip=4)
    full = render_video(2 * 1_000_000 + 1, config)
    frames, labels = dataset.render_frames(1, [0, 4, 9])
    assert np.array_equal(labels, full.labels[[0, 4, 9]])
    assert np.array_equal(frames, jpeg_roundtrip(full.frames[[0, 4, 9]], config.jpeg_quality))
    sample = dataset[1]
    assert sample.frames.shape == (3, 3, 32, 32) and 1 <= sample.num_objects <= 2
    assert len(dataset) == 3


def write_static(root: Path, flat: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    frames, labels = disc_video(1, height=48, width=64)
    image = Image.fromarray(frames[0])
    mask = Image.fromarray(labels[0] * 255)  # a 0/255 grayscale mask: one object
    if flat:
        image.save(root / "x.jpg", quality=95)
        mask.save(root / "x.png")
    else:
        (root / "images").mkdir()
        (root / "masks").mkdir()
        image.save(root / "images" / "y.png")
        mask.save(root / "masks" / "y.png")


def test_static_pairs_and_pseudo_videos(tmp_path: Path) -> None:
    write_static(tmp_path / "flat", flat=True)
    write_static(tmp_path / "sub", flat=False)
    pairs = find_image_mask_pairs(tmp_path)
    assert [(p[0].name, p[1].name) for p in pairs] == [("x.jpg", "x.png"), ("y.png", "y.png")]
    dataset = StaticImageDataset(tmp_path / "sub", clip_length=4, crop=32, augment=NO_GRAY,
                                 min_object_area=10, repeat=4)  # fmt: skip
    for sample in dataset:
        assert sample.frames.shape == (4, 3, 32, 32) and sample.num_objects == 1
        assert set(sample.labels.unique().tolist()) <= {0, 1}
        red = sample.frames[:, 0] > sample.frames[:, 2]
        assert (red != (sample.labels == 1)).float().mean() < 0.05
        assert not torch.equal(sample.labels[0], sample.labels[1])  # frames move
    still = StaticImageDataset(tmp_path / "sub", crop=32, augment=PLAIN, motion=MotionConfig())
    labels = still[0].labels
    assert torch.equal(labels[0], labels[1]) and torch.equal(labels[1], labels[2])


def test_static_masks(tmp_path: Path) -> None:
    soft = np.array([[0, 100, 128, 255]], np.uint8)
    Image.fromarray(soft).save(tmp_path / "soft.png")
    assert read_static_mask(tmp_path / "soft.png").tolist() == [[0, 0, 1, 1]]
    write_palette_png(tmp_path / "multi.png", np.array([[0, 3, 7, 255]], np.uint8))
    assert read_static_mask(tmp_path / "multi.png").tolist() == [[0, 3, 7, 255]]
    write_palette_png(tmp_path / "binary.png", np.array([[0, 255, 255, 0]], np.uint8))
    assert read_static_mask(tmp_path / "binary.png").tolist() == [[0, 1, 1, 0]]


def test_static_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing: static image folder not found"):
        find_image_mask_pairs(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no image \\+ mask pairs"):
        find_image_mask_pairs(tmp_path)
    Image.new("RGB", (20, 16)).save(tmp_path / "z.jpg")
    Image.new("L", (10, 16)).save(tmp_path / "z.png")
    with pytest.raises(DatasetError, match=r"z\.png: mask is 16x10 but z\.jpg is 16x20"):
        StaticImageDataset(tmp_path, crop=16)[0]


# ---------------------------------------------------------------------------- data config


def test_data_config_round_trip_and_unknown_keys() -> None:
    raw = {
        "sources": [
            {"kind": "davis", "root": "data/DAVIS", "repeat": 5},
            {"kind": "ytvos", "root": "data/YTVOS"},
            {"kind": "synth-online", "videos": 50, "frames": 20, "synth": {"num_objects": [1, 2]}},
            {"kind": "static", "root": "data/static", "motion": {"elastic": 0.0}},
        ],
        "crop": 256,
        "augment": {"flip": 0.0, "clip_motion": {"rotation": 5}},
    }
    config = DataConfig.from_dict(raw)
    assert config.sources[1].effective_skip_divisor == 5
    assert config.sources[0].effective_skip_divisor == 1
    assert config.augment.clip_motion.rotation == 5
    dumped = yaml.safe_load(yaml.safe_dump(config.to_dict()))
    assert DataConfig.from_dict(dumped) == config
    assert config.max_skip(0.35) == 20
    with pytest.raises(ConfigError, match="unknown keys batch"):
        DataConfig.from_dict({**raw, "batch": 4})
    with pytest.raises(ConfigError, match=r"sources\[0\].*unknown keys rooot"):
        DataConfig.from_dict({"sources": [{"kind": "davis", "rooot": "x"}]})
    with pytest.raises(ConfigError, match="option 'videos' applies only to synth-online"):
        DataSourceConfig(kind="davis", root="x", videos=3)
    with pytest.raises(ConfigError, match="kind must be one of"):
        DataSourceConfig(kind="coco", root="x")
    with pytest.raises(ConfigError, match="needs a root"):
        DataSourceConfig(kind="ytvos")


def test_build_training_dataset_forwards_epoch_and_skip(tmp_path: Path) -> None:
    davis = make_davis(tmp_path / "davis", {"a": disc_video(8), "b": disc_video(8)}, split="train")
    ytvos = make_ytvos(tmp_path / "yt", {"v": index_coded_video(30)}, all_frames=False)
    write_static(tmp_path / "static", flat=True)
    config = DataConfig.from_dict({
        "sources": [
            {"kind": "davis", "root": str(davis), "repeat": 3},
            {"kind": "ytvos", "root": str(ytvos)},
            {"kind": "synth-online", "videos": 4, "frames": 8, "synth": {"height": 32}},
            {"kind": "static", "root": str(tmp_path / "static"), "repeat": 2},
        ],
        "crop": 32, "min_object_area": 5,
    })  # fmt: skip
    dataset = build_training_dataset(config, seed=0)
    assert len(dataset) == 2 * 3 + 1 + 4 + 2
    dataset.set_max_skip(15)
    assert [d.effective_max_skip for d in dataset.datasets] == [15, 3, 15, 15]
    dataset.set_epoch(4)
    assert all(d.epoch == 4 for d in dataset.datasets)
    batch = collate_clips([dataset[i] for i in (0, 6, 7, 11)], max_objects=config.max_objects)
    assert batch.frames.shape == (4, 3, 3, 32, 32) and batch.present[:, 0].all()
    with pytest.raises(DatasetError, match="nowhere"):
        build_training_dataset(
            DataConfig(sources=(DataSourceConfig(kind="davis", root=str(tmp_path / "nowhere")),)),
            seed=0,
        )
