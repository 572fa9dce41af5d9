"""Synthetic datasets in the DAVIS 2017 layout, and the ``mobilevos synth`` command."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mobilevos.data.synth.config import SynthConfig
from mobilevos.data.synth.render import render_video
from mobilevos.data.synth.textures import TextureSource
from mobilevos.errors import ConfigError, InputError
from mobilevos.io import atomic_dir, write_palette_png

logger = logging.getLogger(__name__)

MARKER_FILE = "synth.json"
"""Written at the root of every generated dataset; :func:`write_davis_dataset` only ever replaces
a non-empty folder that holds it."""
_SEEDS_PER_DATASET = 1_000_000  # video seed = dataset seed * this + index


def sequence_name(dataset_seed: int, index: int) -> str:
    """Name of video ``index`` of the dataset ``dataset_seed``: ``synth-<video seed>``.

    The video seed is ``dataset_seed * 1_000_000 + index``, so ``render_video(int(name[6:]),
    config)`` reproduces a sequence, and datasets with different seeds never share a name.
    """
    return f"synth-{dataset_seed * _SEEDS_PER_DATASET + index:06d}"


def _split_counts(num_videos: int, val_fraction: float) -> int:
    """Number of validation videos: rounded, but keep one of each split when both are asked for."""
    count = math.floor(val_fraction * num_videos + 0.5)
    if num_videos >= 2 and 0 < val_fraction < 1:
        count = min(max(count, 1), num_videos - 1)
    return count


def _write_sequence(job: tuple[int, str, str, SynthConfig]) -> str:
    """Render one video and write its JPEG frames and palette PNG labels under ``root``."""
    video_seed, name, root, config = job
    video = render_video(video_seed, config)
    image_dir = Path(root) / "JPEGImages" / "480p" / name
    label_dir = Path(root) / "Annotations" / "480p" / name
    image_dir.mkdir(parents=True)
    for t, (frame, labels) in enumerate(zip(video.frames, video.labels, strict=True)):
        Image.fromarray(frame).save(
            image_dir / f"{t:05d}.jpg", format="JPEG", quality=config.jpeg_quality
        )
        write_palette_png(label_dir / f"{t:05d}.png", labels)
    return name


def _check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier synthetic dataset (and that only if asked)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / MARKER_FILE).is_file():
        raise InputError(
            out_dir, "folder is not empty and is not a synthetic dataset; not replacing it"
        )
    if not overwrite:
        raise InputError(
            out_dir, "already holds a synthetic dataset; pass --overwrite to replace it"
        )


def _run_jobs(jobs: list, workers: int, progress: bool) -> list[str]:
    """Run :func:`_write_sequence` over jobs, serially or in a spawn-started process pool."""

    def bar(items: Iterable) -> Iterable:
        return tqdm(items, total=len(jobs), desc="synth videos", unit="video", disable=not progress)

    if workers <= 1 or len(jobs) <= 1:
        return [_write_sequence(job) for job in bar(jobs)]
    # spawn, not fork: the caller may hold torch / OpenMP threads that fork would copy half-locked.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        return list(bar(pool.map(_write_sequence, jobs)))


def write_davis_dataset(
    out_dir: str | Path,
    num_videos: int,
    config: SynthConfig | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    *,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``num_videos`` synthetic videos in the DAVIS 2017 layout and return ``out_dir``.

    Layout: ``JPEGImages/480p/<seq>/00000.jpg``, ``Annotations/480p/<seq>/00000.png`` (DAVIS
    palette, every frame annotated), ``ImageSets/2017/{train,val}.txt`` and ``synth.json``
    (config and seeds). The folder is named ``480p`` whatever the frame size, as our reader
    and the DAVIS toolkit expect. The last ``round(val_fraction * num_videos)`` sequences form
    the validation split. Everything is built in a temporary folder beside ``out_dir`` and
    renamed at the end; ``workers > 1`` renders in processes with identical results (they
    are started with "spawn", so a calling script needs the usual ``if __name__ == "__main__"``
    guard).
    """
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    if not 1 <= num_videos <= _SEEDS_PER_DATASET:
        raise ConfigError(
            f"synth: number of videos must be in 1..{_SEEDS_PER_DATASET}, got {num_videos}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synth: seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"synth: val fraction must be in [0, 1], got {val_fraction}")
    if workers < 0:
        raise ConfigError(f"synth: workers must be >= 0, got {workers}")
    TextureSource(config.texture_dir)  # fail on a bad texture folder before any work
    _check_output_dir(out_dir, overwrite)
    names = [sequence_name(seed, i) for i in range(num_videos)]
    num_val = _split_counts(num_videos, val_fraction)
    with atomic_dir(out_dir) as tmp:
        jobs = [(seed * _SEEDS_PER_DATASET + i, n, str(tmp), config) for i, n in enumerate(names)]
        _run_jobs(jobs, workers, progress)
        sets = tmp / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        split = num_videos - num_val
        (sets / "train.txt").write_text("".join(f"{n}\n" for n in names[:split]))
        (sets / "val.txt").write_text("".join(f"{n}\n" for n in names[split:]))
        meta = {"seed": seed, "num_videos": num_videos, "val_fraction": val_fraction}
        meta["config"] = dataclasses.asdict(config)
        (tmp / MARKER_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("wrote %d synthetic videos to %s (%d val)", num_videos, out_dir, num_val)
    return out_dir
