"""``mobilevos eval`` end to end with the tiny preset on each official layout."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_factory import box_labels, make_davis, make_ytvos, random_frames
from launch import torchrun
from mobilevos.checkpoint import save_checkpoint
from mobilevos.cli import main
from mobilevos.config import get_preset
from mobilevos.data.davis import read_rgb
from mobilevos.io import read_label_image
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor

H, W = 40, 56


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    save_checkpoint(build_model(get_preset("mobilevos-tiny")), path)
    return path


def two_objects(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = box_labels(n, H, W, boxes={1: (4, 4, 16, 20), 2: (20, 24, 34, 50)})
    return random_frames(n, H, W, seed=seed), labels


def reference(checkpoint: Path, folder: Path, masks: dict[int, np.ndarray]) -> list:
    """The predictor run directly over the JPEG frames in ``folder``, with the engine that
    ``eval`` runs by default (cached ONNX exports)."""
    from mobilevos.checkpoint import load_model
    from mobilevos.runtime import CachedExportEngine

    predictor = VOSPredictor(CachedExportEngine(load_model(checkpoint)), size=32)
    frames = [read_rgb(path) for path in sorted(folder.glob("*.jpg"))]
    return [predictor.step(f, mask=masks.get(t)) for t, f in enumerate(frames)]


def run(*argv) -> int:
    return main(["eval", *map(str, argv), "--size", "32", "--workers", "1"])


def test_davis2017_eval_writes_official_layout_and_scores(tmp_path, checkpoint, capsys):
    seqs = {"bear": two_objects(6, 1), "dog": two_objects(5, 2)}
    root = make_davis(tmp_path / "DAVIS", seqs, year=2017, split="val")
    out = tmp_path / "out"
    assert (
        run(
            "--dataset",
            "davis2017",
            "--root",
            root,
            "--split",
            "val",
            "--out",
            out,
            "--checkpoint",
            checkpoint,
            "--report",
        )
        == 0
    )
    assert "J&F-Mean" in capsys.readouterr().out
    for name, (frames, labels) in seqs.items():
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == [f"{t:05d}.png" for t in range(len(frames))]
        expected = reference(checkpoint, root / "JPEGImages" / "480p" / name, {0: labels[0]})
        for t, ref in enumerate(expected):
            np.testing.assert_array_equal(read_label_image(out / name / f"{t:05d}.png"), ref)
    header = (out / "global_results-val.csv").read_text().splitlines()[0]
    assert header == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    rows = (out / "per-sequence_results-val.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["bear_1", "bear_2", "dog_1", "dog_2"]
    assert (out / "report" / "jf_per_sequence.png").is_file()


def test_davis2016_eval_merges_objects(tmp_path, checkpoint, capsys):
    root = make_davis(tmp_path / "DAVIS", {"cows": two_objects(5, 3)}, year=2016, split="val")
    out = tmp_path / "out"
    assert (
        run("--dataset", "davis2016", "--root", root, "--out", out, "--checkpoint", checkpoint) == 0
    )
    first = read_label_image(out / "cows" / "00000.png")
    assert set(np.unique(first)) == {0, 1}  # the union of the two boxes is object 1
    rows = (out / "per-sequence_results-val.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["cows_1"]


def test_ytvos_eval_adds_late_objects_and_writes_the_submission(tmp_path, checkpoint):
    frames, labels = two_objects(11, 4)
    labels[:5][labels[:5] == 2] = 0  # object 2 enters on frame 5
    root = make_ytvos(tmp_path / "YTVOS", {"vid": (frames, labels)}, split="valid", every=5)
    out = tmp_path / "out"
    assert (
        run("--dataset", "ytvos2019", "--root", root, "--out", out, "--checkpoint", checkpoint) == 0
    )
    meta = json.loads((root / "valid" / "meta.json").read_text())["videos"]["vid"]
    listed = sorted({f for obj in meta["objects"].values() for f in obj["frames"]})
    written = sorted(p.stem for p in (out / "Annotations" / "vid").iterdir())
    assert written == listed == ["00000", "00005", "00010"]
    # Run on every frame (valid_all_frames), object 2 given on frame 5 only.
    given = {
        0: np.where(labels[0] == 1, 1, 0).astype(np.uint8),
        5: np.where(labels[5] == 2, 2, 0).astype(np.uint8),
    }
    expected = reference(checkpoint, root / "valid_all_frames" / "JPEGImages" / "vid", given)
    for name in listed:
        np.testing.assert_array_equal(
            read_label_image(out / "Annotations" / "vid" / f"{name}.png"), expected[int(name)]
        )
    assert 2 not in read_label_image(out / "Annotations" / "vid" / "00000.png")
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert sorted(zf.namelist()) == [f"Annotations/vid/{n}.png" for n in listed]


def test_torchrun_sharded_eval_equals_one_process(tmp_path, checkpoint):
    seqs = {f"s{i}": two_objects(4, 10 + i) for i in range(3)}
    root = make_davis(tmp_path / "DAVIS", seqs, year=2017, split="val")
    args = [
        "eval",
        "--dataset",
        "davis2017",
        "--root",
        str(root),
        "--checkpoint",
        str(checkpoint),
        "--size",
        "32",
        "--workers",
        "1",
    ]
    # Both runs under torchrun, one thread per process: sharding must not change a pixel, but a
    # run in this process with other thread counts may pick other kernels, which can flip
    # near-tied pixels of this untrained model (seen on an AVX-512 machine).
    torchrun("-m", "mobilevos.cli", *args, "--out", str(tmp_path / "sharded"))
    torchrun("-m", "mobilevos.cli", *args, "--out", str(tmp_path / "single"), nproc=1)
    for name in seqs:
        for png in sorted((tmp_path / "single" / name).iterdir()):
            sharded = tmp_path / "sharded" / name / png.name
            np.testing.assert_array_equal(read_label_image(sharded), read_label_image(png))
    assert (tmp_path / "sharded" / "global_results-val.csv").read_text() == (
        tmp_path / "single" / "global_results-val.csv"
    ).read_text()
