"""Training configuration: frozen dataclasses read from YAML recipes plus ``key=value`` overrides.

    mobilevos train --config configs/main.yaml model=mobilevos-r18 optim.lr=2e-5

A recipe may start with ``base: other.yaml`` (relative to itself); its keys override the base's,
recursively. Unknown keys are errors, so a typo never silently falls back to a default. Defaults
follow ``method.md`` (STCN's schedule, the paper's loss with our choices where it is silent).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mobilevos.config import MemoryConfig
from mobilevos.data.training import DataConfig
from mobilevos.errors import ConfigError


@dataclass(frozen=True)
class LossConfig:
    """Weights and settings of ``L = L_seg + λ_repr L_repr + λ_logit L_logit`` (method.md §3).

    ``repr_weight`` applies to the unified representation loss (ω = ``omega``; ω = 0 is pure
    supervised contrastive and needs no teacher); ``logit_weight`` to boundary-aware logit
    distillation (needs a teacher). Without a teacher, terms that need one are skipped.

    The representation loss carries the paper's 1/N factor (N = ``num_samples``), so at weight 1
    it is inert: on a distillation batch of ``configs/repro`` (N = 256) its gradient norm was
    0.02 against 4.6 for the segmentation loss. The default weight equals the default N,
    cancelling the factor; scale it with ``num_samples``.
    """

    seg_weight: float = 1.0
    repr_weight: float = 512.0
    logit_weight: float = 1.0
    omega: float = 0.5
    num_samples: int = 512
    boundary_fraction: float = 0.75
    sample_band: int = 2
    logit_band: int = 5
    temperature: float = 1.0
    bootstrap_start: int = 20_000
    bootstrap_end: int = 70_000
    bootstrap_top_p: float = 0.15

    def __post_init__(self) -> None:
        from mobilevos.losses import BootstrappedCE

        BootstrappedCE(self.bootstrap_start, self.bootstrap_end, self.bootstrap_top_p)
        if not 0 <= self.omega <= 1:
            raise ConfigError(f"loss.omega must be in [0, 1], got {self.omega}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a step (STCN) or cosine schedule over steps ``schedule_start``..``steps``.

    ``milestones`` are fractions of that span. Before ``schedule_start`` the rate stays at
    ``lr`` (after the warm-up): a later stage that resumes a run at that step decays it from
    there, e.g. a cosine anneal over a stage's last few hundred steps.
    """

    lr: float = 1e-5
    weight_decay: float = 1e-7
    grad_clip: float = 3.0
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.8,)
    gamma: float = 0.1
    warmup_steps: int = 0
    schedule_start: int = 0

    def __post_init__(self) -> None:
        if self.schedule_start < 0:
            raise ConfigError(f"optim.schedule_start must be >= 0, got {self.schedule_start}")
        if self.schedule not in ("step", "cosine", "constant"):
            raise ConfigError(
                f"optim.schedule must be step, cosine or constant, got {self.schedule}"
            )


@dataclass(frozen=True)
class TeacherConfig:
    """A frozen teacher run in eval mode over the same clip.

    ``memory`` is the teacher's memory during distillation; the default (None) keeps every frame
    of the clip, so on clips longer than the student's two slots the teacher sees frames the
    student has forgotten.
    """

    checkpoint: str = ""
    memory: MemoryConfig | None = None


@dataclass(frozen=True)
class ValConfig:
    """Periodic validation J&F through the evaluator (DAVIS layout, e.g. held-out synthetic)."""

    root: str | None = None
    dataset: str = "davis2017"
    split: str = "val"
    every: int = 0
    size: int | None = 480
    sequences: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    ``model`` names a preset; ``model_overrides`` changes its fields, e.g.
    ``{backbone_weights: resnet18-f37072fd.pth, value_backbone_weights: ...}`` to start ResNet
    trunks from a torchvision ImageNet file. ``init`` starts from a checkpoint of the same
    architecture instead (an earlier stage). ``memory`` overrides the student's memory policy in
    the training unroll (e.g. a teacher, whose inference memory writes every 5th frame, trains
    on short clips with every frame written); None keeps the model's own. ``channels_last``
    stores the student's and teacher's convolution weights channels-last (1.4-1.5x faster
    steps on a CPU: ``scripts/bench_channels_last.py``).
    """

    model: str = "mobilevos-mbv2-lite"
    model_overrides: dict[str, Any] | None = None
    init: str | None = None
    memory: MemoryConfig | None = None
    teacher: TeacherConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    val: ValConfig = field(default_factory=ValConfig)
    steps: int = 1000
    batch_size: int = 4
    grad_accum: int = 1
    num_workers: int = 2
    seed: int = 0
    device: str = "cpu"
    amp: str = "none"
    activation_checkpointing: bool = False
    channels_last: bool = False
    checkpoint_every: int = 200
    log_every: int = 10
    out_dir: str = "runs/default"

    def __post_init__(self) -> None:
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"amp must be none, bf16 or fp16, got {self.amp!r}")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("steps, batch_size and grad_accum must be positive")
        if self.optim.schedule_start >= self.steps:
            raise ConfigError(
                f"optim.schedule_start ({self.optim.schedule_start}) must be below steps "
                f"({self.steps})"
            )

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, so that the dict is YAML/JSON friendly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def build_dataclass(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, recursively; unknown keys are errors."""
    if dataclasses.is_dataclass(data):
        return data
    if hasattr(cls, "from_dict"):
        return cls.from_dict(data)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}")
    values = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if dataclasses.is_dataclass(option):
            return build_dataclass(option, value, where)
        if typing.get_origin(option) is tuple:
            return tuple(value) if isinstance(value, list | tuple) else (value,)
    if float in options and not isinstance(value, bool):
        # YAML 1.1 reads "3e-4" (no dot) as a string; accept it as the number it means.
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if int in options and not isinstance(value, int | bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    return value


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: circular base: chain")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_read_yaml(path.parent / base, (*seen, path.resolve())), data)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings (values parsed as YAML: numbers, bools, lists, null)."""
    data = dict(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value")
        value = yaml.safe_load(raw) if raw else ""
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = value
    return data


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    data = _read_yaml(Path(path)) if path is not None else {}
    return build_dataclass(TrainConfig, apply_overrides(data, list(overrides)), "config")
