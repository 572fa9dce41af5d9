"""What ``mobilevos bench`` measures: :class:`BenchOptions`, checked on construction."""

from __future__ import annotations

from dataclasses import dataclass

from mobilevos.config import get_preset
from mobilevos.device import resolve_device
from mobilevos.errors import ConfigError
from mobilevos.formats.registry import FORMATS

BACKENDS = (
    "torch",
    "torch-contiguous",
    "auto",
    *FORMATS,
    *(f"{name}-int8" for name in FORMATS),
)
"""torch: the PyTorch engine as the predictor sets it up (channels-last on the CPU);
torch-contiguous: the same without channels-last; auto: what ``segment`` runs by default
(:func:`~mobilevos.runtime.open_engine`'s ``auto``: on the CPU, ONNX Runtime through the export
cache, here a cache of the run's own); FORMAT / FORMAT-int8 for each runtime format
(:data:`~mobilevos.formats.registry.FORMATS`): the model exported in that format (fp32 /
int8-quantised) under its runtime (ONNX Runtime; ExecuTorch with XNNPACK, the ``phone``
extra)."""
TEACHER = "teacher-r50"
DEFAULT_MODELS = ("mobilevos-mbv2-lite", "mobilevos-mbv2", "mobilevos-r18", TEACHER)
MIN_LONG = 120
"""Fewest frames of a long stream (its "early" latency starts at frame 100)."""


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
        threads: torch's intra-op threads for the run, and ONNX Runtime's (None: leave as is).
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
