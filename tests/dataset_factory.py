"""Small DAVIS and YouTube-VOS layouts written on the fly, for tests of readers and scorers.

Everything is written in the official folder layouts with the project's own writers (palette
PNGs with the DAVIS palette, JPEG frames), so the readers under test see what a real download
would give them. Helpers also make simple shapes, write prediction folders, and write the tiny
training recipe that training tests start from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mobilevos.io import write_palette_png


def frame_name(index: int) -> str:
    """DAVIS / YouTube-VOS frame stem: five zero-padded digits."""
    return f"{index:05d}"


def random_frames(n_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB frames (JPEG-friendly). Shapes: returns (T, H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n_frames, 3), dtype=np.int64)
    ramp = np.linspace(0, 60, width, dtype=np.int64)[None, None, :, None]
    frames = (base[:, None, None, :] + ramp) % 256
    return np.broadcast_to(frames, (n_frames, height, width, 3)).astype(np.uint8)


def box_labels(
    n_frames: int,
    height: int,
    width: int,
    boxes: dict[int, tuple[int, int, int, int]],
    step: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Label maps of axis-aligned boxes ``{id: (top, left, box_h, box_w)}`` moving by ``step``
    (rows, cols) pixels a frame. Shapes: returns (T, H, W) uint8."""
    labels = np.zeros((n_frames, height, width), dtype=np.uint8)
    for t in range(n_frames):
        for obj, (top, left, box_h, box_w) in boxes.items():
            y, x = top + step[0] * t, left + step[1] * t
            labels[t, max(y, 0) : max(y + box_h, 0), max(x, 0) : max(x + box_w, 0)] = obj
    return labels


def _write_jpeg(path: Path, frame: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path, quality=95)


def write_label_folder(folder: Path, labels: np.ndarray, names: list[str] | None = None) -> None:
    """One palette PNG per frame: ``folder/<name>.png``. Shapes: labels (T, H, W)."""
    names = names or [frame_name(t) for t in range(len(labels))]
    for name, label in zip(names, labels, strict=True):
        write_palette_png(folder / f"{name}.png", label)


def make_davis(
    root: str | Path,
    sequences: dict[str, tuple[np.ndarray, np.ndarray]],
    year: int = 2017,
    split: str = "val",
    resolution: str = "480p",
    annotated: dict[str, list[int]] | None = None,
) -> Path:
    """Write a DAVIS layout under ``root`` and return it.

    ``sequences`` maps a name to ``(frames (T, H, W, 3) uint8, labels (T, H, W) uint8)``; every
    frame gets a PNG unless ``annotated[name]`` lists the frame indices that do. The split file
    ``ImageSets/<year>/<split>.txt`` lists the sequences in the given order (appended to when
    called again on the same root).
    """
    root = Path(root)
    for name, (frames, labels) in sequences.items():
        keep = set(range(len(labels))) if annotated is None else set(annotated.get(name, []))
        for t, frame in enumerate(frames):
            _write_jpeg(root / "JPEGImages" / resolution / name / f"{frame_name(t)}.jpg", frame)
            if t in keep:
                write_palette_png(
                    root / "Annotations" / resolution / name / f"{frame_name(t)}.png", labels[t]
                )
    split_file = root / "ImageSets" / str(year) / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    previous = split_file.read_text() if split_file.exists() else ""
    split_file.write_text(previous + "".join(f"{name}\n" for name in sequences))
    return root


def write_predictions(pred_dir: str | Path, predictions: dict[str, np.ndarray]) -> Path:
    """Write ``pred_dir/<seq>/<00000>.png`` for each ``(T, H, W)`` label array."""
    pred_dir = Path(pred_dir)
    for name, labels in predictions.items():
        write_label_folder(pred_dir / name, labels)
    return pred_dir


def make_ytvos(
    root: str | Path,
    videos: dict[str, tuple[np.ndarray, np.ndarray]],
    split: str = "train",
    categories: dict[str, dict[int, str]] | None = None,
    every: int = 5,
    all_frames: bool = True,
) -> Path:
    """Write a YouTube-VOS split under ``root`` and return it.

    ``videos`` maps a name to dense ``(frames (T, H, W, 3), labels (T, H, W))``. The split keeps
    every ``every``-th frame (names are the dense indices, ``00000``, ``00005``, ...); with
    ``all_frames`` the dense frames go to ``ROOT/<split>_all_frames``. ``train`` gets a PNG with
    all objects on every kept frame; ``valid``/``test`` get a PNG only on frames where some
    object first appears, holding just those objects. meta.json lists, per object, the kept
    frames where it is visible (train) or every kept frame from its first one (valid/test), and
    its category (train only, from ``categories[video][id]``).
    """
    root = Path(root)
    meta: dict[str, dict] = {"videos": {}}
    for name, (frames, labels) in videos.items():
        kept = list(range(0, len(frames), every))
        objects: dict[str, dict] = {}
        first_seen: dict[int, int] = {}
        for t in kept:
            _write_jpeg(root / split / "JPEGImages" / name / f"{frame_name(t)}.jpg", frames[t])
            for obj in np.unique(labels[t]):
                if obj not in (0, 255):
                    first_seen.setdefault(int(obj), t)
        for obj, first in sorted(first_seen.items()):
            if split == "train":
                present = [t for t in kept if (labels[t] == obj).any()]
            else:
                present = [t for t in kept if t >= first]
            entry: dict[str, object] = {"frames": [frame_name(t) for t in present]}
            if split == "train":
                entry["category"] = (categories or {}).get(name, {}).get(obj, "thing")
            objects[str(obj)] = entry
        meta["videos"][name] = {"objects": objects}
        annotation_dir = root / split / "Annotations" / name
        for t in kept:
            starting = [obj for obj, first in first_seen.items() if first == t]
            if split == "train":
                write_palette_png(annotation_dir / f"{frame_name(t)}.png", labels[t])
            elif starting:
                given = np.where(np.isin(labels[t], starting), labels[t], 0).astype(np.uint8)
                write_palette_png(annotation_dir / f"{frame_name(t)}.png", given)
        if all_frames:
            for t, frame in enumerate(frames):
                path = root / f"{split}_all_frames" / "JPEGImages" / name / f"{frame_name(t)}.jpg"
                _write_jpeg(path, frame)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / split / "meta.json").write_text(json.dumps(meta, indent=1))
    return root


TINY_RECIPE = """
model: mobilevos-tiny
steps: 6
batch_size: 2
num_workers: 0
checkpoint_every: 2
log_every: 1
loss: {omega: 0.0, repr_weight: 64.0, logit_weight: 0.0, num_samples: 64}
data:
  crop: 48
  max_objects: 2
  sources:
    - {kind: synth-online, videos: 16, frames: 10}
"""


def recipe(tmp_path: Path, text: str = TINY_RECIPE, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
