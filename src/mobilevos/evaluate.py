"""Run a model over a benchmark and write predictions in the official layouts, then score them.

* DAVIS 2016/2017: ``OUT/<seq>/<frame>.png`` (palette PNGs with the dataset's ids at the frames'
  size), then :func:`~mobilevos.scoring.score_davis` and the two official CSVs in ``OUT``.
* YouTube-VOS 2018/2019: ``OUT/Annotations/<video>/<frame>.png`` for exactly the frames that the
  split's ``meta.json`` lists (the model runs on every frame when ``valid_all_frames`` exists),
  objects added on the frame where each first appears, and ``OUT/submission.zip`` to upload.

Each sequence's folder is written to a temporary name and renamed when complete, and the CSVs and
the zip are written last, so an interrupted run never looks complete. Under ``torchrun`` each rank
predicts its share of the sequences and rank 0 scores.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mobilevos.config import MemoryConfig
from mobilevos.data.davis import DavisDataset
from mobilevos.data.ytvos import YouTubeVOSDataset
from mobilevos.device import resolve_device
from mobilevos.distributed import DistributedContext, init_distributed, shutdown_distributed
from mobilevos.engine import FrameEngine
from mobilevos.errors import ConfigError
from mobilevos.io import atomic_dir, atomic_path, write_palette_png
from mobilevos.model.network import MobileVOS
from mobilevos.predictor import VOSPredictor
from mobilevos.runtime import open_engine
from mobilevos.scoring import DATASETS, DavisResult, score_davis, write_results

log = logging.getLogger(__name__)


def predict_davis(
    predictor: VOSPredictor,
    dataset: DavisDataset,
    out_dir: str | Path,
    sequences: Sequence[str] | None = None,
    progress: bool = True,
) -> list[str]:
    """Segment each sequence from its first annotation; returns the sequences written."""
    out_dir = Path(out_dir)
    names = list(sequences) if sequences is not None else dataset.sequences
    for name in tqdm(names, desc="sequences", unit="seq", disable=not progress):
        seq = dataset[name]
        first = seq.annotated_frames[0]
        predictor.reset()
        with atomic_dir(out_dir / name) as tmp:
            for index in range(first, len(seq)):
                mask = seq.read_annotation(index) if index == first else None
                labels = predictor.step(seq.read_frame(index), mask=mask)
                write_palette_png(tmp / f"{seq.frame_names[index]}.png", labels)
    return names


def predict_ytvos(
    predictor: VOSPredictor,
    dataset: YouTubeVOSDataset,
    out_dir: str | Path,
    videos: Sequence[str] | None = None,
    progress: bool = True,
) -> list[str]:
    """Segment each video, adding objects where they first appear; write the listed frames."""
    annotations = Path(out_dir) / "Annotations"
    names = list(videos) if videos is not None else dataset.videos
    for name in tqdm(names, desc="videos", unit="video", disable=not progress):
        video = dataset[name]
        wanted = set(video.output_frames)
        starts = set(video.object_first_frame.values())
        predictor.reset()
        with atomic_dir(annotations / name) as tmp:
            started = False
            for index, frame_name in enumerate(video.frame_names):
                mask = video.initial_annotation(frame_name) if frame_name in starts else None
                started = started or mask is not None
                if not started:  # frames before the first object: nothing to segment
                    labels = np.zeros(video.read_frame(index).shape[:2], dtype=np.uint8)
                else:
                    labels = predictor.step(video.read_frame(index), mask=mask)
                if frame_name in wanted:
                    write_palette_png(tmp / f"{frame_name}.png", labels)
    return names


def write_submission_zip(out_dir: str | Path) -> Path:
    """Zip ``OUT/Annotations`` as ``OUT/submission.zip`` (the layout the server accepts)."""
    out_dir = Path(out_dir)
    zip_path = out_dir / "submission.zip"
    files = sorted((out_dir / "Annotations").rglob("*.png"))
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in files:
            zf.write(file, file.relative_to(out_dir).as_posix())
    return zip_path


def run_eval(
    model: MobileVOS | FrameEngine,
    dataset: str,
    root: str | Path,
    split: str,
    out_dir: str | Path,
    device: str = "cpu",
    size: int | None = 480,
    sequences: Sequence[str] | None = None,
    memory: MemoryConfig | None = None,
    workers: int | None = None,
    context: DistributedContext | None = None,
    progress: bool = True,
):
    """Predict (this rank's share of) a benchmark split, then score or package on rank 0.

    ``model`` is a network (run by PyTorch on ``device``, this rank's under torchrun) or an
    engine (:func:`~mobilevos.runtime.open_engine`).

    Returns the DAVIS result (rank 0), the submission zip path (YouTube-VOS, rank 0), or None.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    context = context or DistributedContext()
    out_dir = Path(out_dir)
    if isinstance(model, MobileVOS):
        model = open_engine(model, "torch", device=context.device(resolve_device(device)))
    predictor = VOSPredictor(model, size=size, memory=memory)
    if dataset.startswith("davis"):
        data = DavisDataset(root, int(dataset[-4:]), split)
        names = list(sequences) if sequences is not None else data.sequences
        predict_davis(predictor, data, out_dir, context.shard(names), progress and context.is_main)
        context.barrier()
        if not context.is_main:
            return None
        return score_davis(root, out_dir, int(dataset[-4:]), split, names, workers)
    data = YouTubeVOSDataset(root, split)
    names = list(sequences) if sequences is not None else data.videos
    predict_ytvos(predictor, data, out_dir, context.shard(names), progress and context.is_main)
    context.barrier()
    return write_submission_zip(out_dir) if context.is_main else None


def evaluate(
    source: MobileVOS | str | Path,
    dataset: str,
    root: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    backend: str = "auto",
    device: str = "cpu",
    size: int | None = 480,
    sequences: Sequence[str] | None = None,
    pinned: int | None = None,
    workers: int | None = None,
    report: bool = False,
) -> DavisResult | Path | None:
    """``mobilevos eval``: run ``source`` (a model, or an exported folder) under ``backend``
    over a benchmark split, alone or as one rank of a torchrun, and score it.

    ``split``: default ``val`` (DAVIS) or ``valid`` (YouTube-VOS); ``pinned``: the memory's
    pinned slots (e.g. 2 for YouTube-VOS, whose objects enter late); ``report``: DAVIS charts
    and strips beside the CSVs. Returns what :func:`run_eval` returns, after rank 0 has
    written the DAVIS CSVs (and report).
    """
    split = split or ("val" if dataset.startswith("davis") else "valid")
    context = init_distributed(resolve_device(device))
    try:
        engine = open_engine(source, backend, device=context.device(resolve_device(device)))
        memory = None
        if pinned is not None:
            memory = MemoryConfig(pinned, engine.memory.recent, engine.memory.write_every)
        result = run_eval(
            engine, dataset, root, split, out_dir, size=size, sequences=sequences,
            memory=memory, workers=workers, context=context,
        )  # fmt: skip
    finally:
        shutdown_distributed()
    if isinstance(result, DavisResult):
        for path in write_results(result, out_dir, report):
            log.info("wrote %s", path)
    return result
