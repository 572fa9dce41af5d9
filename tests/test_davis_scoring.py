"""``score_davis`` / ``score_ytvos``, the CSVs, the printed tables, the report and the CLI glue.

Ground-truth boxes on 30x40 frames (boundary radius 1) keep every expected number hand-made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_factory import (
    box_labels,
    make_davis,
    make_ytvos,
    random_frames,
    write_label_folder,
    write_predictions,
)
from mobilevos.cli import main
from mobilevos.errors import ConfigError, DatasetError
from mobilevos.io import blend_labels
from mobilevos.scoring import (
    DAVIS_GLOBAL_COLUMNS,
    DAVIS_SEQUENCE_COLUMNS,
    format_davis_table,
    format_table,
    score,
    score_davis,
    score_ytvos,
    write_davis_csvs,
    write_report,
)

T, H, W = 6, 30, 40
BOX_1 = (10, 10, 8, 8)
BOX_2 = (2, 25, 6, 10)


def _layout(tmp_path: Path, labels: dict[str, np.ndarray], year: int = 2017) -> Path:
    frames = random_frames(T, H, W)
    return make_davis(tmp_path / "davis", {n: (frames, lab) for n, lab in labels.items()}, year)


def _two_boxes() -> np.ndarray:
    return box_labels(T, H, W, {1: BOX_1, 2: BOX_2})


def _score(tmp_path: Path, gt: dict, pred: dict, year: int = 2017, **kwargs):
    root = _layout(tmp_path, gt, year)
    pred_dir = write_predictions(tmp_path / "pred", pred)
    return score_davis(root, pred_dir, year=year, workers=1, **kwargs)


def test_perfect_prediction(tmp_path: Path) -> None:
    gt = {"a": _two_boxes(), "b": box_labels(T, H, W, {1: BOX_1}, step=(1, 1))}
    result = _score(tmp_path, gt, gt)
    assert [r.name for r in result.objects] == ["a_1", "a_2", "b_1"]
    assert tuple(result.global_row) == (1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0)
    assert result.sequences[0].frames == ["00001", "00002", "00003", "00004"]  # not 0 and 5


def test_empty_prediction(tmp_path: Path) -> None:
    result = _score(tmp_path, {"a": _two_boxes()}, {"a": np.zeros((T, H, W), np.uint8)})
    assert tuple(result.global_row) == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_shifted_prediction(tmp_path: Path) -> None:
    gt = box_labels(T, H, W, {1: BOX_1})
    result = _score(tmp_path, {"a": gt}, {"a": np.roll(gt, 2, axis=2)})
    (row,) = result.objects
    # Overlap 8x6 over union 8x10; boundary rings match 18 of 32 pixels (see test_metrics).
    assert row.j == pytest.approx((0.6, 1.0, 0.0))
    assert row.f == pytest.approx((18 / 32, 1.0, 0.0))
    assert result.global_row.jf_mean == pytest.approx((0.6 + 18 / 32) / 2)


def test_first_and_last_frames_are_not_scored(tmp_path: Path) -> None:
    gt = _two_boxes()
    pred_dir = tmp_path / "pred" / "a"
    write_label_folder(pred_dir, gt[1:-1], names=["00001", "00002", "00003", "00004"])
    root = _layout(tmp_path, {"a": gt})
    assert score_davis(root, tmp_path / "pred", workers=1).global_row.jf_mean == 1.0


def test_objects_come_from_the_first_frame(tmp_path: Path) -> None:
    gt = box_labels(T, H, W, {1: BOX_1, 3: BOX_2})  # id gap: K = 3, object 2 never present
    gt[3:, 25:, :5] = 4  # an id above K appearing later is background
    pred = np.where(gt == 4, 0, gt).astype(np.uint8)
    result = _score(tmp_path, {"a": gt}, {"a": pred})
    assert [r.name for r in result.objects] == ["a_1", "a_2", "a_3"]
    assert all(r.j.mean == 1.0 and r.f.mean == 1.0 for r in result.objects)


def test_missing_object_scores_zero(tmp_path: Path) -> None:
    gt = _two_boxes()
    result = _score(tmp_path, {"a": gt}, {"a": np.where(gt == 2, 0, gt).astype(np.uint8)})
    assert [(r.j.mean, r.f.mean) for r in result.objects] == [(1.0, 1.0), (0.0, 0.0)]
    assert result.global_row.j_mean == 0.5


def test_void_counts_as_background(tmp_path: Path) -> None:
    gt = box_labels(T, H, W, {1: BOX_1})
    gt[:, 10:18, 18:20] = 255
    pred = np.where(gt == 255, 1, gt).astype(np.uint8)
    (row,) = _score(tmp_path, {"a": gt}, {"a": pred}).objects
    assert row.j.mean == pytest.approx(64 / 80)  # the toolkit ignores void in this task


def test_davis2016_scores_the_union(tmp_path: Path) -> None:
    gt = _two_boxes()
    swapped = np.choose(gt, [0, 2, 1]).astype(np.uint8)
    assert _score(tmp_path / "16", {"a": gt}, {"a": swapped}, year=2016).global_row.j_mean == 1.0
    assert [r.name for r in _score(tmp_path / "16b", {"a": gt}, {"a": gt}, year=2016).objects] == [
        "a_1"
    ]
    assert _score(tmp_path / "17", {"a": gt}, {"a": swapped}).global_row.j_mean == 0.0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", r"sequence a frame 00002: prediction .*00002.png not found"),
        ("size", r"sequence a frame 00002: prediction .* is 41x30 but the annotation is 40x30"),
        ("extra", r"sequence a frame 00002: prediction has object id 3 but .* only 2 object"),
        ("rgb", r"sequence a frame 00002: .*colour mask has \d+ colours"),
    ],
)
def test_bad_predictions_name_sequence_and_frame(tmp_path: Path, damage: str, message: str):
    gt = _two_boxes()
    root = _layout(tmp_path, {"a": gt})
    pred_dir = write_predictions(tmp_path / "pred", {"a": gt})
    path = pred_dir / "a" / "00002.png"
    if damage == "missing":
        path.unlink()
    elif damage == "size":
        write_label_folder(pred_dir / "a", np.zeros((1, H, W + 1), np.uint8), names=["00002"])
    elif damage == "extra":
        write_label_folder(pred_dir / "a", np.full((1, H, W), 3, np.uint8), names=["00002"])
    else:  # a photograph, not a colour mask: more colours than object ids
        noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
    with pytest.raises(DatasetError, match=message):
        score_davis(root, pred_dir, workers=1)


def test_bad_layouts(tmp_path: Path) -> None:
    gt = _two_boxes()
    root = _layout(tmp_path, {"a": gt})
    pred_dir = write_predictions(tmp_path / "pred", {"a": gt})
    with pytest.raises(DatasetError, match="split file not found"):
        score_davis(root, pred_dir, split="test-dev", workers=1)
    with pytest.raises(DatasetError, match="does not list zzz"):
        score_davis(root, pred_dir, sequences=["zzz"], workers=1)
    with pytest.raises(DatasetError, match="sequence a: prediction folder"):
        score_davis(root, tmp_path, workers=1)
    short = make_davis(tmp_path / "short", {"s": (random_frames(2, H, W), gt[:2])})
    write_predictions(tmp_path / "pred2", {"s": gt[:2]})
    with pytest.raises(DatasetError, match="sequence s: 2 annotated frame"):
        score_davis(short, tmp_path / "pred2", workers=1)


def test_csv_files_match_toolkit_format(tmp_path: Path) -> None:
    gt = box_labels(T, H, W, {1: BOX_1})
    result = _score(tmp_path, {"a": gt, "b": gt}, {"a": np.roll(gt, 2, axis=2), "b": gt})
    global_csv, sequence_csv = write_davis_csvs(result, tmp_path / "out")
    assert global_csv.name == "global_results-val.csv"
    assert global_csv.read_text() == (
        ",".join(DAVIS_GLOBAL_COLUMNS) + "\n"
        # J 0.8, F (0.5625 + 1) / 2 = 0.78125: '%.3f' rounds the exact tie to even
        "0.791,0.800,1.000,0.000,0.781,1.000,0.000\n"
    )
    assert sequence_csv.read_text() == (
        ",".join(DAVIS_SEQUENCE_COLUMNS) + "\na_1,0.600,0.562\nb_1,1.000,1.000\n"
    )


def test_tables_match_pandas_layout() -> None:
    # Expected strings are what pandas 3.1 DataFrame.to_string(index=False) printed.
    values = [0.8234567, 0.5, 1.0, -0.0012345, 0.75, 0.9, 0.123]
    assert format_table(DAVIS_GLOBAL_COLUMNS, [values]) == (
        " J&F-Mean  J-Mean  J-Recall   J-Decay  F-Mean  F-Recall  F-Decay\n"
        " 0.823457     0.5       1.0 -0.001234    0.75       0.9    0.123"
    )
    rows = [["bike_1", 0.5, 1.0], ["blackswan-long_2", 0.91234567, 0.3]]
    assert format_table(DAVIS_SEQUENCE_COLUMNS, rows) == (
        "        Sequence   J-Mean  F-Mean\n"
        "          bike_1 0.500000     1.0\n"
        "blackswan-long_2 0.912346     0.3"
    )
    assert format_table(["A"], [[1e-17], [0.5]]) == "           A\n1.000000e-17\n5.000000e-01"
    assert format_table(["A"], [[0.5], [-0.25]]) == "    A\n 0.50\n-0.25"


def test_printed_table_and_parallel_workers(tmp_path: Path) -> None:
    gt = {"a": _two_boxes(), "b": box_labels(T, H, W, {1: BOX_1})}
    pred = {n: np.roll(g, 1, axis=1) for n, g in gt.items()}
    serial = _score(tmp_path, gt, pred)
    parallel = score_davis(tmp_path / "davis", tmp_path / "pred", workers=2)
    assert parallel.objects == serial.objects
    text = format_davis_table(serial)
    assert text.startswith("-" * 27 + " Global results for val " + "-" * 27 + "\n J&F-Mean")
    assert "\n---------- Per sequence results for val ----------\nSequence" in text
    assert text.count("\n") == 2 + 1 + 2 + 1 + 3


def _ytvos_setup(tmp_path: Path) -> tuple[Path, dict]:
    """Train videos: 'a' (held out; cat from frame 0, dog entering at 10), 'b' (held out; cat),
    'c' (kept for training; cat). Dog is therefore an unseen category."""

    def video(boxes: dict, late: bool) -> tuple[np.ndarray, np.ndarray]:
        labels = box_labels(20, H, W, boxes)
        if late:
            labels[:10][labels[:10] == 2] = 0
        return random_frames(20, H, W), labels

    videos = {
        "a": video({1: BOX_1, 2: BOX_2}, late=True),
        "b": video({1: BOX_2}, late=False),
        "c": video({1: BOX_1}, late=False),
    }
    categories = {"a": {1: "cat", 2: "dog"}, "b": {1: "cat"}, "c": {1: "cat"}}
    root = make_ytvos(tmp_path / "yt", videos, categories=categories, all_frames=False)
    (root / "splits").mkdir()
    (root / "splits" / "held.txt").write_text("a\nb\n")
    return root, {n: lab[::5] for n, (_, lab) in videos.items()}


def _write_yt_predictions(folder: Path, labels: dict[str, np.ndarray]) -> None:
    for name, lab in labels.items():
        write_label_folder(folder / name, lab, names=[f"{t:05d}" for t in range(0, 20, 5)])


def test_ytvos_seen_unseen_and_first_frames(tmp_path: Path) -> None:
    root, gt = _ytvos_setup(tmp_path)
    pred = {n: gt[n].copy() for n in ("a", "b")}
    pred["a"][0] = 0  # object 1's given frame: not scored
    pred["a"][2][pred["a"][2] == 2] = 0  # object 2's given frame (00010): not scored
    pred["a"][3][pred["a"][3] == 2] = 0  # dog missed on 00015, its only scored frame
    _write_yt_predictions(tmp_path / "pred" / "Annotations", pred)  # submission layout
    result = score_ytvos(root, tmp_path / "pred", "held", workers=1)
    assert result.gt_split == "held"
    assert [(r.name, r.category, r.seen) for r in result.objects] == [
        ("a_1", "cat", True),
        ("a_2", "dog", False),
        ("b_1", "cat", True),
    ]
    assert tuple(result.summary) == (0.5, 1.0, 1.0, 0.0, 0.0)
    explicit = score_ytvos(root, tmp_path / "pred", root / "splits/held.txt", ["cat", "dog"], 1)
    assert explicit.summary.j_seen == pytest.approx(2 / 3)


def test_ytvos_missing_prediction(tmp_path: Path) -> None:
    root, gt = _ytvos_setup(tmp_path)
    _write_yt_predictions(tmp_path / "pred", {"a": gt["a"], "b": gt["b"]})
    (tmp_path / "pred" / "b" / "00010.png").unlink()
    with pytest.raises(DatasetError, match="sequence b frame 00010: prediction"):
        score_ytvos(root, tmp_path / "pred", "held", workers=1)


def test_report_files(tmp_path: Path) -> None:
    gt = {"a": _two_boxes(), "b": box_labels(T, H, W, {1: BOX_1})}
    result = _score(tmp_path, gt, {"a": gt["a"], "b": np.zeros((T, H, W), np.uint8)})
    paths = write_report(result, tmp_path / "out", worst=1, frames=2)
    assert [p.name for p in paths] == ["jf_per_sequence.png", "worst_1_b.png"]
    with Image.open(paths[1]) as strip:
        assert strip.size == (2 * W, 2 * H)  # two frames, prediction | ground truth
        pixels = np.asarray(strip.convert("RGB"))
    frame = np.asarray(Image.open(result.sequences[1].image_paths[0]).convert("RGB"))
    np.testing.assert_array_equal(pixels[:H, :W], frame)  # empty prediction: no tint
    np.testing.assert_array_equal(pixels[:H, W:], blend_labels(frame, gt["b"][1]))


def test_cli_glue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = {"a": _two_boxes()}
    root = _layout(tmp_path, gt)
    write_predictions(tmp_path / "pred", gt)
    argv = [
        "score",
        "--dataset",
        "davis2017",
        "--root",
        str(root),
        "--pred",
        str(tmp_path / "pred"),
    ]
    assert main([*argv, "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert "Global results for val" in capsys.readouterr().out
    assert (tmp_path / "out" / "per-sequence_results-val.csv").read_text().count("\n") == 3
    with pytest.raises(ConfigError, match="--gt-split"):
        score("ytvos2019", ".", ".", ".")
