"""``mobilevos bench``: end-to-end per-frame latency of the streaming predictor, side by side.

What is timed is :meth:`~mobilevos.predictor.VOSPredictor.step`, the whole frame as a user
pays for it (resize, normalisation, the three network verbs, memory write, upsampling and
argmax), stage by stage, for every (model, backend, object count) configuration:

* **One clip for all.** A generated clip (:func:`~mobilevos.data.synth.render_video`) is
  written to an mp4 and read back one frame at a time with the project's PyAV reader, so the
  "with decode" numbers include what a real video costs to decode.
* **Interleaved.** Every configuration is built first; then frame t runs for each
  configuration in turn (round robin), so drifts of a shared machine (another job, thermal
  throttling) hit them all alike. The first ``warmup`` frames of each are not counted; frame 0
  (the given mask, no memory to read yet) is always one of them.
* **A yardstick in the same run.** Before each round, torch's own fp32 matmul rate is measured;
  its median turns FLOPs per frame into an *efficiency*: the fraction of that rate the model's
  frame achieves. Two machines (or one machine on two days) then compare on that ratio.
* **FLOPs** are counted with :class:`torch.utils.flop_counter.FlopCounterMode` on the PyTorch
  engine, per network stage, for a frame that is written to memory.
* **Long streams** (``long`` > 0) check that the finite memory really stays finite: bank bytes,
  resident memory and latency early and late in a stream of thousands of frames.

The teacher (``teacher-r50``) is several seconds per frame on a CPU at 480p, so it runs only
``teacher_frames`` timed frames; the students' ``speedup_vs_teacher`` compares medians.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from mobilevos import __version__
from mobilevos.config import get_preset
from mobilevos.data.synth import SynthConfig, SynthVideo, render_video
from mobilevos.device import resolve_device, synchronize
from mobilevos.engine import FrameEngine, TorchEngine
from mobilevos.errors import ConfigError
from mobilevos.info import count_parameters
from mobilevos.io import Frame, atomic_path, open_frames, write_video
from mobilevos.memory import MemoryBank
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.predictor import FrameGeometry, VOSPredictor

BACKENDS = ("torch", "torch-contiguous", "onnx", "onnx-int8")
"""torch: the PyTorch engine as the predictor sets it up (channels-last on the CPU);
torch-contiguous: the same without channels-last; onnx / onnx-int8: the exported graphs under
ONNX Runtime (fp32 / int8-quantised)."""
STAGES = ("preprocess", "encode_query", "segment", "encode_value", "postprocess")
"""The predictor's timed stages (:attr:`VOSPredictor.stage_seconds`), in the order they run."""
FLOP_STAGES = ("encode_query", "segment", "encode_value")
"""The stages that run the network, whose FLOPs are counted."""
TEACHER = "teacher-r50"
DEFAULT_MODELS = ("mobilevos-mbv2-lite", "mobilevos-mbv2", "mobilevos-r18", TEACHER)
LONG_EARLY = (100, 200)
"""Frames of a long stream whose latency is the "early" reference (after the warm-up)."""
MIN_LONG = 120
LONG_CLIP_FRAMES = 48
"""Frames of the long stream's clip, which it loops."""
CALIBRATION_FRAMES = 8
"""Frames of the clip that calibrate the int8 export."""
SCHEMA = 1


@dataclass(frozen=True)
class BenchOptions:
    """What to measure; checked on construction (a bad value is a one-line ConfigError).

    Attributes:
        models: preset names.
        backends: names from :data:`BACKENDS`.
        size: (H, W) of the generated clip; the network sees its short side unchanged.
        objects: object counts K to measure (the first K objects of the clip's first frame).
        frames: timed frames per configuration, after ``warmup`` untimed ones.
        warmup: untimed frames at the start (at least 1: frame 0 only writes the mask).
        teacher_frames: timed frames for :data:`TEACHER` (at most ``frames``).
        long: frames of the long-stream check (0: off; else at least :data:`MIN_LONG`).
        long_size: (H, W) of the long stream's clip.
        device: "cpu", "cuda", ...
        amp: run the torch backends under fp16 autocast (CUDA only).
        threads: torch's intra-op threads for the run (None: leave as is).
        probe_size: side of the square matrices of the matmul probe.
        seed: seed of the clip and of the (untrained) weights.
        progress: show tqdm progress bars (on stderr).
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    backends: tuple[str, ...] = ("torch",)
    size: tuple[int, int] = (480, 854)
    objects: tuple[int, ...] = (1, 3)
    frames: int = 20
    warmup: int = 3
    teacher_frames: int = 5
    long: int = 0
    long_size: tuple[int, int] = (120, 216)
    device: str = "cpu"
    amp: bool = False
    threads: int | None = None
    probe_size: int = 1024
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        _check(bool(self.models), "--models needs at least one preset")
        for name in self.models:
            get_preset(name)
        _check(bool(self.backends), "--backends needs at least one backend")
        for backend in self.backends:
            _check(backend in BACKENDS, f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
        for flag, (height, width) in (("--size", self.size), ("--long-size", self.long_size)):
            _check(min(height, width) >= 16, f"{flag} sides must be >= 16, got {height}x{width}")
        _check(bool(self.objects), "--objects needs at least one count")
        counts = ",".join(map(str, self.objects))
        _check(all(1 <= k <= 254 for k in self.objects), f"--objects must be in 1..254: {counts}")
        _check(self.frames >= 1, f"--frames must be >= 1, got {self.frames}")
        _check(
            self.warmup >= 1,
            f"--warmup must be >= 1 (frame 0 only writes the mask), got {self.warmup}",
        )
        _check(
            self.teacher_frames >= 1, f"--teacher-frames must be >= 1, got {self.teacher_frames}"
        )
        _check(
            self.long == 0 or self.long >= MIN_LONG,
            f"--long must be 0 (off) or >= {MIN_LONG}, got {self.long}",
        )
        _check(
            self.threads is None or self.threads >= 1, f"--threads must be >= 1, got {self.threads}"
        )
        _check(self.probe_size >= 16, f"probe size must be >= 16, got {self.probe_size}")
        device = resolve_device(self.device)
        _check(not self.amp or device.type == "cuda", f"--amp needs a CUDA device, got {device}")

    def timed_frames(self, model: str) -> int:
        """Timed frames for ``model``: fewer for the (slow) teacher."""
        return min(self.frames, self.teacher_frames) if model == TEACHER else self.frames


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


# ------------------------------------------------------------------------- parsing (the CLI's)


def parse_names(text: str, flag: str) -> tuple[str, ...]:
    """``"a,b"`` into ``("a", "b")``; blanks are dropped, an empty list is an error."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    _check(bool(names), f"{flag} needs at least one name, got {text!r}")
    return names


def parse_counts(text: str, flag: str) -> tuple[int, ...]:
    """``"1,3"`` into ``(1, 3)``."""
    try:
        return tuple(int(part) for part in parse_names(text, flag))
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, got {text!r}") from None


def parse_hw(text: str, flag: str) -> tuple[int, int]:
    """``"480x854"`` into ``(480, 854)``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"{flag} must look like 480x854 (HxW), got {text!r}")
    return int(parts[0]), int(parts[1])


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The options of ``mobilevos bench`` (see :mod:`mobilevos.cli`)."""
    return BenchOptions(
        models=parse_names(args.models, "--models"),
        backends=parse_names(args.backends, "--backends"),
        size=parse_hw(args.size, "--size"),
        objects=parse_counts(args.objects, "--objects"),
        frames=args.frames,
        warmup=args.warmup,
        teacher_frames=args.teacher_frames,
        long=args.long,
        long_size=parse_hw(args.long_size, "--long-size"),
        device=args.device,
        amp=args.amp,
        threads=args.threads,
        progress=not args.quiet,
    )


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


# ------------------------------------------------------------------------- models and FLOPs


class ModelFacts(NamedTuple):
    """What does not depend on the backend: parameters, write policy, FLOPs per object count.

    ``flops[K]`` maps each of :data:`FLOP_STAGES` and ``"frame"`` (their sum) to FLOPs.
    """

    params: int
    write_every: int
    flops: dict[int, dict[str, int]]


def new_model(name: str, seed: int) -> MobileVOS:
    """The preset with seeded random weights (the time of a frame does not depend on them)."""
    torch.manual_seed(seed)
    return build_model(get_preset(name), pretrained=False).eval()


def model_facts(
    name: str, objects: tuple[int, ...], size: tuple[int, int], device: torch.device, seed: int
) -> ModelFacts:
    """Parameters and per-stage FLOPs of ``name`` at network input ``size``."""
    model = new_model(name, seed).to(device)
    flops = {k: count_flops(model, k, size, device) for k in objects}
    return ModelFacts(count_parameters(model), model.config.memory.write_every, flops)


@torch.inference_mode()
def count_flops(
    model: MobileVOS, objects: int, size: tuple[int, int], device: torch.device
) -> dict[str, int]:
    """FLOPs of each network stage of a streaming frame that is written to memory.

    Frame 0 fills the bank, then frame 1 is counted: its query encoding, the readout of the
    full-capacity bank and the decoder (``segment``; shapes are fixed by the capacity, so this
    is every later frame's count), and the value encoding of its predicted masks.

    Shapes: image (1, 3, H, W) with (H, W) = ``size``; masks (1, K, H, W).
    """
    engine = TorchEngine(model)  # fp32 and contiguous: FLOPs do not depend on either
    image = torch.rand(1, 3, *size, device=device)
    masks = torch.rand(1, objects, *size, device=device)
    bank = MemoryBank(model.config.memory)
    bank.add_objects(objects)
    query = engine.encode_query(image)
    bank.write(bank.slot_for(0, True), 0, query.key, engine.encode_value(image, query, masks))
    flops: dict[str, int] = {}
    with _counting(flops, "encode_query"):
        query = engine.encode_query(image)
    with _counting(flops, "segment"):
        seg = engine.segment(query, bank.keys, bank.values, bank.batch_valid(1, device))
    with _counting(flops, "encode_value"):
        engine.encode_value(image, query, seg.probabilities[:, 1:])
    flops["frame"] = sum(flops[stage] for stage in FLOP_STAGES)
    return flops


@contextlib.contextmanager
def _counting(flops: dict[str, int], stage: str) -> Iterator[None]:
    with FlopCounterMode(display=False) as counter:
        yield
    flops[stage] = int(counter.get_total_flops())


def matmul_flops_per_s(device: torch.device, size: int = 1024, repeats: int = 3) -> float:
    """torch's fp32 matmul rate on ``device`` right now (median of ``repeats``), in FLOP/s.

    The machine-speed yardstick: it runs on the same threads and libraries as the models.

    Shapes: a, b (size, size) float32.
    """
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.mm(a, b)  # warm the kernel and its workspace
    seconds = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(seconds)


# ------------------------------------------------------------------------------ predictors


@dataclass
class PredictorFactory:
    """Builds the timing predictors of a run.

    Torch backends share one model per (preset, backend) (the predictor sets the model's
    layout in place, so the two torch backends need their own); ONNX backends export a graph
    per object count and frame size into ``workdir``.
    """

    options: BenchOptions
    workdir: Path
    models: dict[tuple[str, str], MobileVOS] = field(default_factory=dict)

    def build(self, name: str, backend: str, objects: int, clip: SynthVideo) -> VOSPredictor:
        """A predictor with ``timing`` on, for the clip's frames seen at their short side."""
        size = min(clip.frames.shape[1:3])
        if backend in ("torch", "torch-contiguous"):
            predictor = VOSPredictor(
                self._model(name, backend),
                device=self.options.device,
                size=size,
                autocast=self.options.amp,
                channels_last=False if backend == "torch-contiguous" else None,
            )
        else:
            predictor = VOSPredictor(self._onnx_engine(name, backend, objects, clip), size=size)
        predictor.timing = True
        return predictor

    def _model(self, name: str, backend: str) -> MobileVOS:
        key = (name, backend)
        if key not in self.models:
            self.models[key] = new_model(name, self.options.seed)
        return self.models[key]

    def _onnx_engine(self, name: str, backend: str, objects: int, clip: SynthVideo) -> FrameEngine:
        """Export ``name`` for ``objects`` objects at the clip's network size; load it.

        The int8 graphs are calibrated on the clip's first frames.
        """
        export_onnx, ort_engine = _onnx_api(backend)
        height, width = clip.frames.shape[1:3]
        model_dir = self.workdir / f"{name}-{backend}-k{objects}-{height}x{width}"
        int8 = backend == "onnx-int8"
        export_onnx(
            new_model(name, self.options.seed),
            model_dir,
            size=network_size((height, width)),
            max_objects=objects,
            int8=int8,
            calibration_frames=list(clip.frames[:CALIBRATION_FRAMES]) if int8 else None,
            verify=False,
        )
        threads = self.options.threads
        return ort_engine(model_dir) if threads is None else ort_engine(model_dir, threads=threads)


def _onnx_api(backend: str) -> tuple[Any, Any]:
    """(export_onnx, OrtEngine), imported only when an ONNX backend is asked for."""
    try:
        from mobilevos.engine.ort_engine import OrtEngine
        from mobilevos.export import export_onnx
    except ModuleNotFoundError as exc:
        if exc.name not in ("mobilevos.export", "mobilevos.engine.ort_engine"):
            raise
        raise ConfigError(f"backend {backend} needs mobilevos.export (not available)") from None
    return export_onnx, OrtEngine


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
        self.predictor.step(image, mask=self.mask if t == 0 else None)
        done = time.perf_counter()
        if t >= self.warmup:
            self.decode.append(decoded - start)
            self.total.append(done - decoded)
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


# ---------------------------------------------------------------------------------- results


def stats_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p90 and mean of ``seconds``, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "mean": float(ms.mean()),
    }


def summarize(run: _Run, facts: ModelFacts, probe_flops: float) -> dict[str, Any]:
    """One configuration's numbers (milliseconds per frame unless named otherwise).

    ``gflops`` counts a frame written to memory; ``gflops_per_frame_average`` weighs the value
    encoding by the write policy (the teacher writes every 5th frame), and the efficiency uses
    it, since the median frame of a teacher is not written.
    """
    flops = facts.flops[run.objects]
    average = flops["encode_query"] + flops["segment"] + flops["encode_value"] / facts.write_every
    total = stats_ms(run.total)
    with_decode = [a + b for a, b in zip(run.total, run.decode, strict=True)]
    return {
        "model": run.model,
        "backend": run.backend,
        "objects": run.objects,
        "engine_device": str(run.predictor.device),
        "warmup_frames": run.warmup,
        "timed_frames": run.timed,
        "total_ms": total,
        "fps": 1e3 / total["p50"],
        "stages_ms": {stage: stats_ms(run.stages[stage]) for stage in STAGES},
        "decode_ms": stats_ms(run.decode),
        "with_decode_ms": stats_ms(with_decode),
        "params": facts.params,
        "gflops": {stage: n / 1e9 for stage, n in flops.items()},
        "write_every": facts.write_every,
        "gflops_per_frame_average": average / 1e9,
        "efficiency": average / (total["p50"] / 1e3) / probe_flops,
        "memory_bank_bytes": run.predictor.memory.nbytes,
        "peak_rss_mb": run.peak_rss_mb,
        "speedup_vs_teacher": None,
        "samples_ms": {
            "total": [round(s * 1e3, 4) for s in run.total],
            "decode": [round(s * 1e3, 4) for s in run.decode],
        },
    }


def add_speedups(rows: list[dict[str, Any]], teacher: str = TEACHER) -> list[dict[str, Any]]:
    """Set each student's ``speedup_vs_teacher``: the teacher's p50 over the student's, for
    the same backend and object count (None without a teacher row to compare with)."""
    reference = {
        (r["backend"], r["objects"]): r["total_ms"]["p50"] for r in rows if r["model"] == teacher
    }
    for row in rows:
        teacher_p50 = reference.get((row["backend"], row["objects"]))
        if row["model"] != teacher and teacher_p50 is not None:
            row["speedup_vs_teacher"] = teacher_p50 / row["total_ms"]["p50"]
    return rows


# ------------------------------------------------------------------------------ long streams


def run_long(
    factory: PredictorFactory, name: str, backend: str, clip: SynthVideo
) -> dict[str, Any]:
    """Stream ``long`` frames (the clip, looped) with one object; compare frame
    ``LONG_EARLY[0]`` with the end (bank bytes, resident memory) and the latency of frames
    ``LONG_EARLY`` with that of the last 10%."""
    options = factory.options
    predictor = factory.build(name, backend, 1, clip)
    predictor.timing = False
    mask = first_mask(clip.labels[0], 1)
    seconds: list[float] = []
    bank_early, rss_early = 0, 0.0
    desc = f"long {name} {backend}"
    for t in tqdm(range(options.long), desc=desc, unit="frame", disable=not options.progress):
        start = time.perf_counter()
        predictor.step(clip.frames[t % len(clip.frames)], mask=mask if t == 0 else None)
        seconds.append(time.perf_counter() - start)
        if t == LONG_EARLY[0]:
            bank_early, rss_early = predictor.memory.nbytes, current_rss_mb()
    early = statistics.median(seconds[LONG_EARLY[0] : LONG_EARLY[1]]) * 1e3
    late = statistics.median(seconds[-max(len(seconds) // 10, 1) :]) * 1e3
    bank_end, rss_end = predictor.memory.nbytes, current_rss_mb()
    return {
        "model": name,
        "backend": backend,
        "bank_bytes_at_100": bank_early,
        "bank_bytes_end": bank_end,
        "bank_constant": bank_early == bank_end,
        "rss_mb_at_100": rss_early,
        "rss_mb_end": rss_end,
        "rss_growth_mb": rss_end - rss_early,
        "p50_ms_100_200": early,
        "p50_ms_last_10pct": late,
        "latency_ratio": late / early,
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


# --------------------------------------------------------------------------- the machine


def peak_rss_mb() -> float:
    """Peak resident memory of the whole process so far (all configurations together), MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def current_rss_mb() -> float:
    """Resident memory of the process now, MiB (the peak where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_model() -> str | None:
    """The CPU's name from /proc/cpuinfo (x86 "model name", ARM "Model"), else the platform's."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    return platform.processor() or None


def versions() -> dict[str, str | None]:
    """Versions of what the timings depend on (onnxruntime: None when not installed)."""
    try:
        ort = importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        ort = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort,
        "mobilevos": __version__,
    }


def describe_run(options: BenchOptions, device: torch.device) -> dict[str, Any]:
    """The machine, software and settings of this run: the head of the report."""
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": device_name,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "amp": options.amp,
        "seed": options.seed,
        "versions": versions(),
        "resolution": list(options.size),
        "network_size": list(network_size(options.size)),
        "objects": list(options.objects),
        "frames": options.frames,
        "warmup": options.warmup,
        "teacher_frames": options.timed_frames(TEACHER),
    }


# ------------------------------------------------------------------------------- the run


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Measure every configuration of ``options``; returns the report (a JSON-ready dict).

    Torch's thread count is set to ``options.threads`` for the run and restored after.
    """
    device = resolve_device(options.device)
    for backend in options.backends:
        if backend.startswith("onnx"):
            _onnx_api(backend)  # fail before any work
    previous_threads = torch.get_num_threads()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="mobilevos-bench-") as tmp:
            return _measure(options, device, Path(tmp))
    finally:
        torch.set_num_threads(previous_threads)


def _measure(options: BenchOptions, device: torch.device, workdir: Path) -> dict[str, Any]:
    report = describe_run(options, device)
    length = options.warmup + options.frames
    clip = make_clip(options.size, length, max(options.objects), options.seed)
    clip_path = workdir / "clip.mp4"
    write_video(clip_path, clip.frames)
    net = network_size(options.size)
    facts = {m: model_facts(m, options.objects, net, device, options.seed) for m in options.models}
    factory = PredictorFactory(options, workdir)
    with contextlib.ExitStack() as stack:
        runs = build_runs(factory, clip, clip_path, stack)
        probes = run_rounds(runs, options, device)
    probe = statistics.median(probes)
    report["probe"] = {
        "kind": "torch fp32 matmul",
        "size": options.probe_size,
        "gflops_median": probe / 1e9,
        "gflops_samples": [p / 1e9 for p in probes],
    }
    report["configs"] = add_speedups([summarize(run, facts[run.model], probe) for run in runs])
    del runs  # free the configurations' memory banks before the long streams
    report["long"] = run_long_streams(factory) if options.long else None
    report["peak_rss_mb"] = peak_rss_mb()
    return report


# ------------------------------------------------------------------------------- outputs


def markdown_report(report: dict[str, Any]) -> str:
    """The report as markdown: a header line, the configurations, the long streams."""
    probe = report["probe"]
    head = (
        f"{report['device']} ({report['device_name'] or 'unknown'}), threads: "
        f"{report['threads']}, torch {report['versions']['torch']}; clip "
        f"{_hw(report['resolution'])} (network {_hw(report['network_size'])}); "
        f"{report['frames']} timed frames after {report['warmup']} warm-up"
    )
    if any(r["model"] == TEACHER for r in report["configs"]):
        head += f" ({TEACHER}: {report['teacher_frames']})"
    head += (
        f"; matmul probe {probe['gflops_median']:.1f} GFLOP/s "
        f"(median of {len(probe['gflops_samples'])})."
    )
    notes = (
        "Milliseconds per frame. Stage columns are p50s; GFLOPs count a frame written to "
        "memory; efficiency = FLOPs per frame (value encoding weighted by the write policy) / "
        "p50 / probe rate; peak RSS is the whole process's."
    )
    lines = ["# mobilevos bench", "", head, "", notes, "", *config_table(report["configs"])]
    if report["long"]:
        long = report["long"]
        lines += ["", f"## Long stream: {long['frames']} frames at {_hw(long['size'])}", ""]
        lines += long_table(long["results"])
    return "\n".join(lines) + "\n"


def config_table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per configuration."""
    header = (
        "| model | backend | K | p50 | p90 | mean | FPS | p50 +decode | pre | query | segment "
        "| value | post | params M | GFLOPs | efficiency | bank KiB | peak RSS MB | vs teacher |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for r in rows:
        total, stages = r["total_ms"], r["stages_ms"]
        speedup = r["speedup_vs_teacher"]
        cells = [
            r["model"], r["backend"], str(r["objects"]),
            *(f"{total[k]:.1f}" for k in ("p50", "p90", "mean")),
            f"{r['fps']:.1f}", f"{r['with_decode_ms']['p50']:.1f}",
            *(f"{stages[s]['p50']:.1f}" for s in STAGES),
            f"{r['params'] / 1e6:.2f}", f"{r['gflops']['frame']:.2f}",
            f"{r['efficiency']:.1%}", f"{r['memory_bank_bytes'] / 1024:.0f}",
            f"{r['peak_rss_mb']:.0f}", "-" if speedup is None else f"{speedup:.1f}x",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def long_table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per long stream."""
    lines = [
        "| model | backend | bank bytes @100 | bank bytes end | RSS @100 MB | RSS growth MB "
        "| p50 100-200 ms | p50 last 10% ms | late/early |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["model"], r["backend"], str(r["bank_bytes_at_100"]), str(r["bank_bytes_end"]),
            f"{r['rss_mb_at_100']:.0f}", f"{r['rss_growth_mb']:+.1f}",
            f"{r['p50_ms_100_200']:.1f}", f"{r['p50_ms_last_10pct']:.1f}",
            f"{r['latency_ratio']:.2f}",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _hw(size: list[int]) -> str:
    return f"{size[0]}x{size[1]}"


def plot_stages(rows: list[dict[str, Any]], path: Path) -> None:
    """A stacked horizontal bar per configuration: its p50 milliseconds per stage."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 1.6 + 0.4 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [f"{r['model']} / {r['backend']} / K={r['objects']}" for r in rows]
    left = np.zeros(len(rows))
    for stage in STAGES:
        widths = np.array([r["stages_ms"][stage]["p50"] for r in rows])
        axes.barh(labels, widths, left=left, label=stage)
        left += widths
    axes.invert_yaxis()
    axes.set_xlabel("p50 milliseconds per frame, by stage")
    figure.legend(loc="outside upper center", ncols=len(STAGES), fontsize="small")
    figure.savefig(path, dpi=120)


def write_outputs(
    report: dict[str, Any], out_dir: str | Path, json_path: str | Path | None = None
) -> str:
    """Write ``bench.md``, ``bench.png`` and the JSON report (``json_path``, default
    ``out_dir/bench.json``), each atomically; returns the markdown."""
    out_dir = Path(out_dir)
    markdown = markdown_report(report)
    with atomic_path(json_path or out_dir / "bench.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    with atomic_path(out_dir / "bench.md") as tmp:
        tmp.write_text(markdown)
    with atomic_path(out_dir / "bench.png") as tmp:
        plot_stages(report["configs"], tmp)
    return markdown
