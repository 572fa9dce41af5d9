"""Check ``mobilevos score`` against the official DAVIS toolkit, side by side.

Usage (in an environment that has the toolkit's requirements: opencv, scikit-image, pandas)::

    python scripts/compare_davis_toolkit.py /path/to/davis2017-evaluation [--work DIR] [--time]

The toolkit (https://github.com/davisvideochallenge/davis2017-evaluation, a folder containing
its ``davis2017`` package and ``evaluation_method.py``) is imported from that path and run as a
subprocess; no code of it lives here. On generated DAVIS 2017 val layouts (several sequences,
1-4 objects, an id gap, void pixels, 480p and odd sizes) and six kinds of predictions (perfect,
noisy, missing an object, ids swapped, empty, extra objects) the script compares:

* every per-object J/F mean, recall and decay, before rounding (largest absolute difference);
* both CSV files, byte for byte;
* the printed tables, character for character.

It also checks DAVIS 2016 (our union mode against the toolkit run on union-merged copies of the
masks), and with ``--time`` times :func:`mobilevos.scoring.score_davis` on a DAVIS-2017-val-sized
generated set (30 sequences x 70 frames x 1-5 objects at 480x854). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from scipy import ndimage  # noqa: E402

from dataset_factory import make_davis, random_frames, write_predictions  # noqa: E402
from mobilevos.errors import DatasetError  # noqa: E402
from mobilevos.scoring import format_davis_table, score_davis, write_davis_csvs  # noqa: E402

SIZES = [(480, 854), (480, 854), (481, 853), (250, 377), (97, 131), (360, 641)]
VARIANTS = ("perfect", "noisy", "missing", "swapped", "empty", "extra")


def ellipse_labels(rng: np.random.Generator, n_frames: int, shape: tuple[int, int], ids: list[int]):
    """Moving, overlapping ellipses; later ids are drawn on top. Shapes: -> (T, H, W) uint8."""
    height, width = shape
    yy, xx = np.mgrid[:height, :width]
    labels = np.zeros((n_frames, height, width), dtype=np.uint8)
    for obj in ids:
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.05, 0.25) * height, rng.uniform(0.05, 0.25) * width
        vy, vx = rng.uniform(-0.01, 0.01, size=2) * np.array([height, width])
        for t in range(n_frames):
            inside = ((yy - cy - vy * t) / ry) ** 2 + ((xx - cx - vx * t) / rx) ** 2 <= 1
            labels[t][inside] = obj
    return labels


def make_dataset(root: Path, rng: np.random.Generator, sizes, frames_range, objects_range):
    """A DAVIS 2017 val layout; returns {name: ground-truth labels (T, H, W)}."""
    sequences = {}
    for i, shape in enumerate(sizes):
        n_frames = int(rng.integers(*frames_range))
        n_objects = int(rng.integers(*objects_range))
        ids = list(range(1, n_objects + 1))
        if i == 2:  # an id gap: K is the largest id, so object 2 is absent everywhere
            ids = [1, 3]
        labels = ellipse_labels(rng, n_frames, shape, ids)
        if i % 2 == 1:  # void pixels: a band along object boundaries, and a corner patch
            edges = ndimage.morphological_gradient(labels, size=(1, 3, 3)) > 0
            labels[edges] = 255
            labels[:, :5, :7] = 255
        if i == 3:  # an object that appears only later, with an id above K
            labels[n_frames // 2 :, -20:, -20:] = max(ids) + 1
        sequences[f"seq{i:02d}"] = (random_frames(n_frames, *shape, seed=i), labels)
    make_davis(root, sequences, year=2017, split="val")
    return {name: labels for name, (_, labels) in sequences.items()}


def make_prediction(variant: str, gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One kind of prediction for one sequence. Shapes: gt (T, H, W) -> (T, H, W) uint8."""
    clean = np.where(gt == 255, 0, gt).astype(np.uint8)
    n_objects = int(clean[0].max())
    clean[clean > n_objects] = 0
    if variant == "perfect":
        return clean
    if variant == "empty":
        return np.zeros_like(clean)
    if variant == "missing":
        return np.where(clean == n_objects, 0, clean).astype(np.uint8)
    if variant == "swapped":
        order = rng.permutation(np.arange(1, n_objects + 1))
        lut = np.arange(256, dtype=np.uint8)
        lut[1 : n_objects + 1] = order
        return lut[clean]
    if variant == "extra":
        out = clean.copy()
        out[:, -10:, :10] = n_objects + 1
        return out
    out = np.zeros_like(clean)  # noisy: grow or shrink each object, then flip random pixels
    for obj in range(1, n_objects + 1):
        mask = clean == obj
        radius = int(rng.integers(1, 4))
        op = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
        mask = op(mask, structure=np.ones((1, 3, 3), bool), iterations=radius)
        out[mask] = obj
    flips = rng.random(out.shape) < 0.002
    out[flips] = rng.integers(0, n_objects + 1, size=int(flips.sum()))
    return out


def run_toolkit(toolkit: Path, davis_root: Path, pred_dir: Path) -> tuple[str, Path]:
    """Run ``evaluation_method.py``; returns its stdout and the folder holding its CSVs."""
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        (pred_dir / name).unlink(missing_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            "evaluation_method.py",
            "--task",
            "semi-supervised",
            "--results_path",
            str(pred_dir),
            "--davis_path",
            str(davis_root),
        ],
        cwd=toolkit,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout, pred_dir


def toolkit_numbers(toolkit: Path, davis_root: Path, pred_dir: Path) -> dict[str, np.ndarray]:
    """Per-object statistics from the toolkit's library: {"JM": (N,), "JR", "JD", "FM", ...}."""
    if str(toolkit) not in sys.path:
        sys.path.insert(0, str(toolkit))
    from davis2017.evaluation import DAVISEvaluation

    evaluation = DAVISEvaluation(davis_root=str(davis_root), task="semi-supervised", gt_set="val")
    metrics = evaluation.evaluate(str(pred_dir))
    return {f"{m}{s}": np.array(metrics[m][s], dtype=np.float64) for m in "JF" for s in "MRD"}


def our_numbers(result) -> dict[str, np.ndarray]:
    rows = result.objects
    return {
        f"{m}{s}": np.array([getattr(getattr(r, m.lower()), stat) for r in rows])
        for m in "JF"
        for s, stat in zip("MRD", ("mean", "recall", "decay"), strict=True)
    }


def compare_variant(toolkit: Path, davis_root: Path, work: Path, variant: str, gts, rng) -> str:
    """Score one prediction kind both ways; return a one-line verdict (raises on mismatch)."""
    pred_dir = work / f"pred-{variant}"
    shutil.rmtree(pred_dir, ignore_errors=True)
    write_predictions(pred_dir, {n: make_prediction(variant, gt, rng) for n, gt in gts.items()})
    if variant == "extra":
        stdout, _ = run_toolkit(toolkit, davis_root, pred_dir)
        toolkit_refuses = "index higher than the number of objects" in stdout
        try:
            score_davis(davis_root, pred_dir, workers=1)
        except DatasetError as exc:
            assert toolkit_refuses, "toolkit accepted extra objects"
            return f"{variant:8s} both refuse: toolkit stops; ours: {exc}"
        raise AssertionError("extra objects were accepted")
    result = score_davis(davis_root, pred_dir, workers=2)
    ours, theirs = our_numbers(result), toolkit_numbers(toolkit, davis_root, pred_dir)
    max_diff = max(float(np.max(np.abs(ours[k] - theirs[k]))) for k in ours)
    stdout, csv_dir = run_toolkit(toolkit, davis_root, pred_dir)
    out_dir = work / f"ours-{variant}"
    write_davis_csvs(result, out_dir)
    same_csv = all(
        (out_dir / n).read_bytes() == (csv_dir / n).read_bytes()
        for n in ("global_results-val.csv", "per-sequence_results-val.csv")
    )
    start = stdout.index("--------------------------- Global results")
    printed = stdout[start : stdout.index("\nTotal time")].rstrip("\n")
    same_table = printed == format_davis_table(result).rstrip("\n")
    assert max_diff < 1e-9 and same_csv and same_table, (variant, max_diff, same_csv, same_table)
    g = result.global_row
    return (
        f"{variant:8s} J&F {g.jf_mean:.6f}  J {g.j_mean:.6f}  F {g.f_mean:.6f}  objects "
        f"{len(result.objects)}  max |diff| {max_diff:.1e}  CSVs identical  table identical"
    )


def compare_2016(toolkit: Path, davis_root: Path, work: Path, gts, rng) -> str:
    """Our DAVIS 2016 mode against the toolkit on union-merged copies of masks and predictions."""
    union_root = work / "davis-union"
    shutil.rmtree(union_root, ignore_errors=True)
    shutil.copytree(davis_root, union_root)
    (union_root / "ImageSets" / "2016").mkdir(exist_ok=True)
    names = list(gts)
    (union_root / "ImageSets" / "2016" / "val.txt").write_text("".join(n + "\n" for n in names))
    union = {n: np.where((gt != 0) & (gt != 255), 1, gt).astype(np.uint8) for n, gt in gts.items()}
    for name in union:
        shutil.rmtree(union_root / "Annotations" / "480p" / name)
    write_predictions(union_root / "Annotations" / "480p", union)
    pred = {n: make_prediction("noisy", gt, rng) for n, gt in gts.items()}
    pred_dir, pred_union = work / "pred-2016", work / "pred-2016-union"
    for folder in (pred_dir, pred_union):
        shutil.rmtree(folder, ignore_errors=True)
    write_predictions(pred_dir, pred)
    write_predictions(pred_union, {n: (p != 0).astype(np.uint8) for n, p in pred.items()})
    # Ours: year 2016 on the multi-object masks; toolkit: 2017 mode on the merged copy.
    (davis_root / "ImageSets" / "2016").mkdir(exist_ok=True)
    (davis_root / "ImageSets" / "2016" / "val.txt").write_text("".join(n + "\n" for n in names))
    result = score_davis(davis_root, pred_dir, year=2016, workers=2)
    ours, theirs = our_numbers(result), toolkit_numbers(toolkit, union_root, pred_union)
    max_diff = max(float(np.max(np.abs(ours[k] - theirs[k]))) for k in ours)
    assert max_diff < 1e-9, max_diff
    return f"2016     J&F {result.global_row.jf_mean:.6f}  max |diff| {max_diff:.1e}"


def time_scoring(work: Path, workers: int) -> str:
    """Seconds for score_davis on 30 sequences x 70 frames x 1-5 objects at 480x854."""
    rng = np.random.default_rng(1)
    root = work / "davis-timing"
    shutil.rmtree(root, ignore_errors=True)
    gts = make_dataset(root, rng, [(480, 854)] * 30, (68, 73), (1, 6))
    pred_dir = work / "pred-timing"
    shutil.rmtree(pred_dir, ignore_errors=True)
    write_predictions(pred_dir, {n: make_prediction("noisy", g, rng) for n, g in gts.items()})
    n_frames = sum(len(g) for g in gts.values())
    n_objects = sum(int(np.where(g[0] == 255, 0, g[0]).max()) for g in gts.values())
    start = time.perf_counter()
    result = score_davis(root, pred_dir, workers=workers)
    seconds = time.perf_counter() - start
    return (
        f"timing   {len(gts)} sequences, {n_frames} frames, {n_objects} objects at 480x854, "
        f"{workers} workers: {seconds:.1f} s (J&F {result.global_row.jf_mean:.4f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("toolkit", type=Path, help="davis2017-evaluation work tree")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time", action="store_true", help="also time a val-sized set")
    parser.add_argument("--workers", type=int, default=2, help="workers for --time")
    args = parser.parse_args()
    toolkit = args.toolkit.resolve()
    if not (toolkit / "davis2017" / "evaluation.py").is_file():
        parser.error(f"{toolkit} does not contain davis2017/evaluation.py")
    work = args.work or Path(tempfile.mkdtemp(prefix="davis-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    davis_root = work / "davis"
    shutil.rmtree(davis_root, ignore_errors=True)
    gts = make_dataset(davis_root, rng, SIZES, (18, 23), (1, 5))
    for variant in VARIANTS:
        print(compare_variant(toolkit, davis_root, work, variant, gts, rng), flush=True)
    print(compare_2016(toolkit, davis_root, work, gts, rng), flush=True)
    if args.time:
        print(time_scoring(work, args.workers), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
