"""Timing the streaming predictor: the clip, a predictor per configuration (PyTorch or an export),
the interleaved rounds that time them all alike, and the long streams that check that the
finite memory stays finite."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mobilevos.bench.machine import current_rss_mb, matmul_flops_per_s, new_model, peak_rss_mb
from mobilevos.bench.options import BenchOptions
from mobilevos.data.synth import SynthConfig, SynthVideo, render_video
from mobilevos.engine import FrameEngine
from mobilevos.errors import ConfigError
from mobilevos.formats.export import export_model
from mobilevos.formats.verify import decided_pixels
from mobilevos.io import Frame, open_frames
from mobilevos.model.network import MobileVOS
from mobilevos.predictor import FrameGeometry, VOSPredictor
from mobilevos.runtime import open_engine

STAGES = ("preprocess", "encode_query", "segment", "encode_value", "postprocess")
"""The predictor's timed stages (:attr:`VOSPredictor.stage_seconds`), in the order they run."""
LONG_WINDOW = 1000
"""Frames of a long stream's first and last windows, whose latency and memory are compared
(a tenth of the stream when that is shorter); the trace has one point per window."""
LONG_CLIP_FRAMES = 48
"""Frames of the long stream's clip, which it loops."""
CALIBRATION_FRAMES = 8
"""Frames of the clip that calibrate the int8 export."""


# ---------------------------------------------------------------------------------- the clip


def make_clip(size: tuple[int, int], frames: int, objects: int, seed: int) -> SynthVideo:
    """A generated clip whose first frame shows at least ``objects`` objects.

    The generator drops objects it cannot place visibly in frame 0, so a few seeds are tried.

    Shapes: returns frames (T, H, W, 3) uint8, labels (T, H, W) uint8.
    """
    config = SynthConfig(
        height=size[0], width=size[1], num_frames=frames, num_objects=(objects, objects)
    )
    for attempt in range(20):
        video = render_video(seed + attempt, config)
        if len(object_ids(video.labels[0])) >= objects:
            return video
    raise ConfigError(f"could not place {objects} objects in a {size[0]}x{size[1]} clip")


def object_ids(labels: np.ndarray) -> list[int]:
    """Object ids of a label map, ascending. Shapes: labels (H, W)."""
    return [int(i) for i in np.unique(labels) if i != 0]


def first_mask(labels: np.ndarray, objects: int) -> np.ndarray:
    """The label map with only its first ``objects`` objects. Shapes: (H, W) uint8."""
    keep = object_ids(labels)[:objects]
    return np.where(np.isin(labels, keep), labels, 0).astype(np.uint8)


def network_size(size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) the network sees for a frame of ``size`` at its own short side (padded)."""
    geometry = FrameGeometry.for_frame(*size, min(size))
    return geometry.padded_height, geometry.padded_width


# ------------------------------------------------------------------------------ predictors


@dataclass
class PredictorFactory:
    """Builds the timing predictors of a run.

    Torch backends share one model per (preset, backend) (the predictor sets the model's
    layout in place, so the two torch backends need their own); ONNX and ExecuTorch backends
    export programs per object count and frame size into ``workdir``.
    """

    options: BenchOptions
    workdir: Path
    models: dict[tuple[str, str], MobileVOS] = field(default_factory=dict)

    def build(self, name: str, backend: str, objects: int, clip: SynthVideo) -> VOSPredictor:
        """A predictor with ``timing`` on, for the clip's frames seen at their short side."""
        size = min(clip.frames.shape[1:3])
        if backend in ("torch", "torch-contiguous", "auto"):  # from the model, by open_engine
            engine = open_engine(
                self._model(name, backend),
                "auto" if backend == "auto" else "torch",
                device=self.options.device,
                threads=self.options.threads,
                autocast=self.options.amp,
                channels_last=False if backend == "torch-contiguous" else None,
                cache=self.workdir / "cache",
            )
        else:
            engine = self._exported_engine(name, backend, objects, clip)
        predictor = VOSPredictor(engine, size=size)
        predictor.timing = True
        return predictor

    def _model(self, name: str, backend: str) -> MobileVOS:
        key = (name, backend)
        if key not in self.models:
            self.models[key] = new_model(name, self.options.seed)
        return self.models[key]

    def _exported_engine(
        self, name: str, backend: str, objects: int, clip: SynthVideo
    ) -> FrameEngine:
        """Export ``name`` for ``objects`` objects at the clip's network size; load it.

        int8 programs are calibrated on the clip's first frames besides the built-in clips.
        """
        height, width = clip.frames.shape[1:3]
        model_dir = self.workdir / f"{name}-{backend}-k{objects}-{height}x{width}"
        fmt, _, precision = backend.partition("-")
        int8 = precision == "int8"
        export_model(
            new_model(name, self.options.seed),
            model_dir,
            network_size((height, width)),
            objects,
            format=fmt,
            int8=int8,
            calibration_frames=list(clip.frames[:CALIBRATION_FRAMES]) if int8 else None,
            verify=False,
        )
        return open_engine(model_dir, fmt, threads=self.options.threads)


# ------------------------------------------------------------------------ interleaved timing


@dataclass
class _Run:
    """One configuration under measurement: its predictor, its own reader of the clip, the
    first-frame mask of its objects and its samples (seconds per timed frame)."""

    model: str
    backend: str
    objects: int
    predictor: VOSPredictor
    reader: Iterator[Frame]
    mask: np.ndarray
    warmup: int
    timed: int
    total: list[float] = field(default_factory=list)
    decode: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    labels: list[np.ndarray] = field(default_factory=list)  # of the timed frames
    decided: list[np.ndarray] = field(default_factory=list)  # where labels are not near-ties
    peak_rss_mb: float = 0.0

    @property
    def length(self) -> int:
        return self.warmup + self.timed

    def step(self, t: int) -> None:
        """Decode frame ``t`` and segment it; record both if past the warm-up.

        Shapes: the decoded image (H, W, 3) uint8, cropped to the mask's (H, W).
        """
        height, width = self.mask.shape
        start = time.perf_counter()
        image = next(self.reader).image[:height, :width]  # yuv420p pads odd sides
        decoded = time.perf_counter()
        labels = self.predictor.step(image, mask=self.mask if t == 0 else None)
        done = time.perf_counter()
        if t >= self.warmup:
            self.decode.append(decoded - start)
            self.total.append(done - decoded)
            self.labels.append(labels)
            self.decided.append(decided_pixels(self.predictor.probabilities))
            for stage in STAGES:
                self.stages[stage].append(self.predictor.stage_seconds.get(stage, 0.0))
        if t == self.length - 1:
            self.peak_rss_mb = peak_rss_mb()


def build_runs(
    factory: PredictorFactory, clip: SynthVideo, clip_path: Path, stack: contextlib.ExitStack
) -> list[_Run]:
    """Every (model, backend, objects) configuration, each with its own reader of
    ``clip_path`` (the clip as an mp4), closed with ``stack``."""
    options = factory.options
    configs = [(m, b, k) for m in options.models for b in options.backends for k in options.objects]
    runs = []
    for name, backend, k in tqdm(configs, desc="build", disable=not options.progress):
        predictor = factory.build(name, backend, k, clip)
        source = stack.enter_context(open_frames(clip_path))
        mask, timed = first_mask(clip.labels[0], k), options.timed_frames(name)
        runs.append(_Run(name, backend, k, predictor, iter(source), mask, options.warmup, timed))
    return runs


def run_rounds(runs: list[_Run], options: BenchOptions, device: torch.device) -> list[float]:
    """Frame t of every configuration in turn, for each t; the matmul probe before each round.

    Returns the probe's samples (FLOP/s).
    """
    probes = []
    rounds = max(run.length for run in runs)
    for t in tqdm(range(rounds), desc="bench", unit="round", disable=not options.progress):
        probes.append(matmul_flops_per_s(device, options.probe_size))
        for run in runs:
            if t < run.length:
                run.step(t)
    return probes


# ------------------------------------------------------------------------------ long streams


def run_long(
    factory: PredictorFactory, name: str, backend: str, clip: SynthVideo
) -> dict[str, Any]:
    """Stream ``long`` frames (the clip, looped) with one object. The first and the last
    window of frames (:data:`LONG_WINDOW`) are compared: median latency, and the memory bank's
    bytes and the process's resident memory at each window's end. ``trace`` has, for every
    window, its last frame, the resident memory there and the window's median latency."""
    options = factory.options
    window = min(LONG_WINDOW, options.long // 10)
    predictor = factory.build(name, backend, 1, clip)
    predictor.timing = False
    mask = first_mask(clip.labels[0], 1)
    seconds: list[float] = []
    trace: list[dict[str, float]] = []
    bank_first = 0
    desc = f"long {name} {backend}"
    for t in tqdm(range(options.long), desc=desc, unit="frame", disable=not options.progress):
        start = time.perf_counter()
        predictor.step(clip.frames[t % len(clip.frames)], mask=mask if t == 0 else None)
        seconds.append(time.perf_counter() - start)
        if (t + 1) % window == 0:
            p50 = statistics.median(seconds[-window:]) * 1e3
            trace.append({"frame": t + 1, "rss_mb": current_rss_mb(), "p50_ms": round(p50, 3)})
            if t + 1 == window:
                bank_first = predictor.memory.nbytes
    first, last = trace[0], trace[-1]
    bank_end = predictor.memory.nbytes
    return {
        "model": name,
        "backend": backend,
        "window": window,
        "bank_bytes_first": bank_first,
        "bank_bytes_end": bank_end,
        "bank_constant": bank_first == bank_end,
        "rss_mb_first": first["rss_mb"],
        "rss_mb_end": last["rss_mb"],
        "rss_growth_mb": last["rss_mb"] - first["rss_mb"],
        "p50_ms_first": first["p50_ms"],
        "p50_ms_last": last["p50_ms"],
        "latency_ratio": last["p50_ms"] / first["p50_ms"],
        "trace": trace,
    }


def run_long_streams(factory: PredictorFactory) -> dict[str, Any]:
    """:func:`run_long` for every model and backend, on a clip at ``long_size``."""
    options = factory.options
    clip = make_clip(options.long_size, LONG_CLIP_FRAMES, 1, options.seed)
    results = [
        run_long(factory, name, backend, clip)
        for name in options.models
        for backend in options.backends
    ]
    return {"frames": options.long, "size": list(options.long_size), "results": results}
