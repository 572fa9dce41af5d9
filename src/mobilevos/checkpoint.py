"""Self-describing model checkpoints.

A checkpoint is one ``torch.save`` file holding only plain containers and tensors::

    {"format_version": 1, "config": ModelConfig.to_dict(), "state_dict": {...}, "meta": {...}}

It is read with ``torch.load(weights_only=True)`` (no arbitrary code runs), the model is rebuilt
from the embedded config, and the weights are loaded strictly: any missing, unexpected or
mis-shaped key is an error naming the keys.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import torch

from mobilevos.config import ModelConfig, available_presets, get_preset
from mobilevos.errors import CheckpointError, ConfigError
from mobilevos.io import atomic_path
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.model.weights import load_state_dict_strict

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_PRESET = "mobilevos-mbv2-fast"
"""The preset whose shipped weights are the default model (``load_model()``, ``segment``)."""


def shipped_checkpoint(preset: str) -> Path:
    """Where the package keeps trained weights of ``preset`` (``scripts/campaign.py`` writes
    them); the file exists only for :func:`trained_presets`."""
    return ASSETS / f"{preset}.ckpt"


def trained_presets() -> list[str]:
    """The presets whose trained weights ship with the package."""
    return [name for name in available_presets() if shipped_checkpoint(name).is_file()]


DEFAULT_CHECKPOINT = shipped_checkpoint(DEFAULT_PRESET)
"""The shipped default model, loaded by ``load_model()``."""


class Checkpoint(NamedTuple):
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


def save_checkpoint(
    model: MobileVOS, path: str | Path, meta: dict[str, Any] | None = None, half: bool = False
) -> None:
    """Write ``model`` (config + weights + ``meta``) to ``path`` atomically.

    ``half`` stores floating-point weights in fp16 (half the size; loading casts them back to
    the model's fp32, so inference runs in fp32 on weights rounded to fp16).
    """
    # Contiguous, whatever layout the weights trained in (see TrainConfig.channels_last).
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "state_dict": state,
        "meta": dict(meta or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file without building a model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason[:120]})") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        hint = ""
        if isinstance(payload, dict) and any(str(k).startswith("key_encoder.") for k in payload):
            hint = "; it looks like an STCN state dict: run `mobilevos convert stcn IN OUT`"
        raise CheckpointError(f"{path}: not a mobilevos checkpoint (no format_version){hint}")
    version = payload["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is not supported (expected {FORMAT_VERSION})"
        )
    missing = [k for k in ("config", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    try:
        config = ModelConfig.from_dict(payload["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid embedded config ({exc})") from None
    return Checkpoint(config, payload["state_dict"], dict(payload.get("meta") or {}))


def load_model(
    source: str | Path | None = None, *, expected_config: ModelConfig | None = None
) -> MobileVOS:
    """Build a model from a checkpoint file or a preset name; with no source, the shipped
    default model (:data:`DEFAULT_CHECKPOINT`).

    A path to an existing file is read as a checkpoint (strictly, from its embedded config). A
    preset name loads the preset's shipped trained weights (:func:`trained_presets`); a preset
    without them is built with its trunk's pretrained ImageNet weights where they are available
    offline: such a model is **not trained for VOS** and its masks are meaningless until trained
    weights are loaded (a warning is logged).

    ``expected_config`` guards against a checkpoint of another architecture: if given, the
    checkpoint's architecture (all fields but ``name``, ``memory`` and weight paths) must match.
    """
    if source is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise CheckpointError(
                f"{DEFAULT_CHECKPOINT}: the packaged default weights are missing "
                "(reinstall mobilevos, or give a checkpoint)"
            )
        source = DEFAULT_CHECKPOINT
    path = Path(source)
    if path.is_file():
        ckpt = read_checkpoint(path)
        if expected_config is not None:
            _check_architecture(ckpt.config, expected_config, path)
        model = build_model(ckpt.config, pretrained=False)
        load_state_dict_strict(model, ckpt.state_dict, str(path))
        return model.eval()
    if str(source) in available_presets():
        shipped = shipped_checkpoint(str(source))
        if shipped.is_file():
            return load_model(shipped, expected_config=get_preset(str(source)))
        log.warning("preset %s has no trained VOS weights: its output is meaningless", source)
        return build_model(get_preset(str(source))).eval()
    if path.suffix or path.parent != Path("."):
        raise CheckpointError(f"{path}: checkpoint not found")
    raise ConfigError(
        f"unknown preset {str(source)!r}; choose one of: {', '.join(available_presets())}"
    )


_NON_ARCHITECTURE_FIELDS = (
    "name",
    "memory",
    "aggregate_at",
    "pretrained",
    "backbone_weights",
    "value_backbone_weights",
)


def _check_architecture(actual: ModelConfig, expected: ModelConfig, path: Path) -> None:
    a, e = actual.to_dict(), expected.to_dict()
    diffs = [k for k in e if k not in _NON_ARCHITECTURE_FIELDS and a[k] != e[k]]
    if diffs:
        raise CheckpointError(
            f"{path}: checkpoint is a {actual.name} model, not {expected.name} "
            f"(differs in {', '.join(diffs)})"
        )
