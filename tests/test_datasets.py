"""DAVIS and YouTube-VOS readers on small layouts written by ``dataset_factory``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataset_factory import box_labels, make_davis, make_ytvos, random_frames
from mobilevos.data.davis import DavisDataset
from mobilevos.data.ytvos import (
    YouTubeVOSDataset,
    resolve_gt_split,
    write_gt_split,
)
from mobilevos.errors import ConfigError, DatasetError


def _davis_sequence(n_frames: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = box_labels(n_frames, 12, 16, {1: (1, 1, 4, 4), 2: (6, 8, 4, 5)}, step=(0, 1))
    labels[:, 0, :] = 255  # a void row
    return random_frames(n_frames, 12, 16, seed), labels


@pytest.fixture
def davis_root(tmp_path: Path) -> Path:
    return make_davis(tmp_path / "davis", {"b-seq": _davis_sequence(), "a-seq": _davis_sequence()})


class TestDavis:
    def test_sequences_follow_split_file_order(self, davis_root: Path) -> None:
        dataset = DavisDataset(davis_root, 2017, "val")
        assert dataset.sequences == ["b-seq", "a-seq"]
        assert len(dataset) == 2
        assert [s.name for s in dataset] == ["b-seq", "a-seq"]
        assert "a-seq" in dataset

    def test_frames_and_annotations(self, davis_root: Path) -> None:
        frames, labels = _davis_sequence()
        seq = DavisDataset(davis_root, 2017, "val")["a-seq"]
        assert seq.frame_names == ["00000", "00001", "00002", "00003"]
        assert seq.annotated_frames == [0, 1, 2, 3]
        assert seq.frame_paths[2] == davis_root / "JPEGImages/480p/a-seq/00002.jpg"
        image = seq.read_frame(1)
        assert image.shape == (12, 16, 3) and image.dtype == np.uint8
        assert np.abs(image.astype(int) - frames[1]).max() <= 12  # JPEG is lossy
        np.testing.assert_array_equal(seq.read_annotation(2), labels[2])
        np.testing.assert_array_equal(seq.read_annotation("00002"), labels[2])
        assert seq.object_ids(0) == [1, 2]

    def test_davis2016_merges_objects_and_keeps_void(self, tmp_path: Path) -> None:
        frames, labels = _davis_sequence()
        root = make_davis(tmp_path, {"s": (frames, labels)}, year=2016)
        annotation = DavisDataset(root, 2016, "val")["s"].read_annotation(0)
        expected = np.where((labels[0] != 0) & (labels[0] != 255), 1, labels[0])
        np.testing.assert_array_equal(annotation, expected)
        assert DavisDataset(root, 2016, "val")["s"].object_ids(0) == [1]

    def test_full_resolution_and_partial_annotation(self, tmp_path: Path) -> None:
        root = make_davis(
            tmp_path,
            {"s": _davis_sequence(5)},
            split="test-dev",
            resolution="Full-Resolution",
            annotated={"s": [0]},
        )
        seq = DavisDataset(root, 2017, "test-dev", resolution="Full-Resolution")["s"]
        assert len(seq) == 5 and seq.annotated_frames == [0] and seq.annotation_names == ["00000"]
        with pytest.raises(DatasetError, match="sequence s frame 00003: no annotation"):
            seq.read_annotation(3)

    def test_missing_split_file(self, davis_root: Path) -> None:
        with pytest.raises(DatasetError, match=r"ImageSets/2017/train.txt: split file not found"):
            DavisDataset(davis_root, 2017, "train")

    def test_bad_year_and_root(self, davis_root: Path, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="year"):
            DavisDataset(davis_root, 2018, "val")
        with pytest.raises(DatasetError, match="root folder not found"):
            DavisDataset(tmp_path / "nowhere", 2017, "val")

    def test_missing_sequence_folder(self, davis_root: Path) -> None:
        with pytest.raises(DatasetError, match="sequence ghost: frame folder"):
            DavisDataset(davis_root, 2017, "val")["ghost"]

    def test_sequence_without_annotation(self, davis_root: Path) -> None:
        for png in (davis_root / "Annotations/480p/a-seq").glob("*.png"):
            png.unlink()
        with pytest.raises(DatasetError, match="sequence a-seq: no annotation PNG"):
            DavisDataset(davis_root, 2017, "val")["a-seq"]

    def test_unreadable_png_names_sequence_and_frame(self, davis_root: Path) -> None:
        (davis_root / "Annotations/480p/a-seq/00001.png").write_bytes(b"not a png")
        seq = DavisDataset(davis_root, 2017, "val")["a-seq"]
        with pytest.raises(DatasetError, match=r"sequence a-seq frame 00001: .*cannot read"):
            seq.read_annotation(1)


def _ytvos_videos() -> tuple[dict, dict]:
    """Video 'v1': object 1 from the start, object 2 entering at frame 10 (of 20)."""
    labels = box_labels(20, 16, 20, {1: (1, 1, 5, 5)})
    labels[10:, 9:14, 10:16] = 2
    videos = {"v1": (random_frames(20, 16, 20, 1), labels)}
    videos["v0"] = (random_frames(10, 16, 20, 2), box_labels(10, 16, 20, {1: (2, 2, 6, 6)}))
    categories = {"v1": {1: "cat", 2: "dog"}, "v0": {1: "cat"}}
    return videos, categories


class TestYouTubeVOS:
    def test_train_layout(self, tmp_path: Path) -> None:
        videos, categories = _ytvos_videos()
        root = make_ytvos(tmp_path, videos, split="train", categories=categories)
        dataset = YouTubeVOSDataset(root, "train", all_frames=False)
        assert dataset.videos == ["v0", "v1"] and dataset.categories() == {"cat", "dog"}
        video = dataset["v1"]
        assert video.frame_names == ["00000", "00005", "00010", "00015"]
        assert video.output_frames == ["00000", "00005", "00010", "00015"]
        assert video.object_first_frame == {1: "00000", 2: "00010"}
        assert video.categories == {1: "cat", 2: "dog"}
        np.testing.assert_array_equal(video.read_annotation("00015"), videos["v1"][1][15])
        assert video.read_annotation("00003") is None
        # On frame 00010 object 1 is annotated too, but only object 2 starts there.
        given = video.initial_annotation("00010")
        np.testing.assert_array_equal(given, np.where(videos["v1"][1][10] == 2, 2, 0))
        assert video.initial_annotation("00005") is None
        assert video.read_frame(2).shape == (16, 20, 3)

    def test_all_frames_folder(self, tmp_path: Path) -> None:
        videos, _ = _ytvos_videos()
        root = make_ytvos(tmp_path, videos, split="valid")
        dense = YouTubeVOSDataset(root, "valid", all_frames=True)["v1"]
        sparse = YouTubeVOSDataset(root, "valid", all_frames=False)["v1"]
        assert len(dense.frame_names) == 20 and dense.frame_names[:2] == ["00000", "00001"]
        assert sparse.frame_names == ["00000", "00005", "00010", "00015"]
        assert dense.output_frames == sparse.output_frames == sparse.frame_names
        assert dense.frame_dir == root / "valid_all_frames/JPEGImages/v1"

    def test_valid_gives_each_object_once(self, tmp_path: Path) -> None:
        videos, _ = _ytvos_videos()
        root = make_ytvos(tmp_path, videos, split="valid", all_frames=False)
        video = YouTubeVOSDataset(root, "valid")["v1"]
        assert video.categories == {}
        assert video.annotation_names == ["00000", "00010"]
        assert video.object_first_frame == {1: "00000", 2: "00010"}
        entering = video.read_annotation("00010")
        assert set(np.unique(entering)) == {0, 2}  # object 1 is not repeated
        assert video.read_annotation("00005") is None
        np.testing.assert_array_equal(video.initial_annotation("00010"), entering)

    def test_missing_meta_json(self, tmp_path: Path) -> None:
        with pytest.raises(DatasetError, match=r"valid/meta.json: meta.json not found"):
            YouTubeVOSDataset(tmp_path, "valid")

    def test_unknown_video_and_split(self, tmp_path: Path) -> None:
        videos, _ = _ytvos_videos()
        root = make_ytvos(tmp_path, videos, all_frames=False)
        with pytest.raises(DatasetError, match="video nope: not listed"):
            YouTubeVOSDataset(root, "train")["nope"]
        with pytest.raises(ConfigError, match="split"):
            YouTubeVOSDataset(root, "val")

    def test_gt_split_by_path_and_name(self, tmp_path: Path) -> None:
        videos, _ = _ytvos_videos()
        root = make_ytvos(tmp_path, videos, all_frames=False)
        picked = write_gt_split(root, root / "splits" / "hold.txt", count=1, seed=3)
        assert picked == write_gt_split(root, tmp_path / "again.txt", count=1, seed=3)
        assert resolve_gt_split(root, "hold") == ("hold", picked)
        assert resolve_gt_split(root, tmp_path / "again.txt") == ("again", picked)
        with pytest.raises(DatasetError, match="gt split missing"):
            resolve_gt_split(root, "missing")
