"""What several commands share: the model and backend options, the one parser of ``HxW``
sizes and comma-separated lists, and building the engine the options name."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobilevos.errors import ConfigError
from mobilevos.formats.registry import FORMATS

UNTRAINED_WARNING = (
    "WARNING: {name} is an untrained preset (trained weights: the presets `mobilevos info` "
    "marks, or --checkpoint); its masks are MEANINGLESS and only show that the pipeline runs."
)


def parse_size(text: str, flag: str = "--size") -> tuple[int, int]:
    """``"480x854"`` into ``(480, 854)`` (H, W); a one-line ConfigError naming ``flag``."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdecimal() for p in parts):
        raise ConfigError(f"{flag} must look like 480x854 (HxW), got {text!r}")
    return int(parts[0]), int(parts[1])


def parse_names(text: str, flag: str) -> tuple[str, ...]:
    """``"a,b"`` into ``("a", "b")``; blanks are dropped, an empty list is an error."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ConfigError(f"{flag} needs at least one name, got {text!r}")
    return names


def parse_counts(text: str, flag: str) -> tuple[int, ...]:
    """``"1,3"`` into ``(1, 3)``."""
    try:
        return tuple(int(part) for part in parse_names(text, flag))
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers, got {text!r}") from None


def parse_subset(text: str | None) -> list[str] | None:
    """``--sequences a,b`` into ``["a", "b"]``; None when not given."""
    return None if text is None else [s for s in text.split(",") if s]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint", type=Path, help="a mobilevos checkpoint file")
    group.add_argument("--model", help="a preset name (see `mobilevos info`)")
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="allow --model without trained weights: the output will be meaningless",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    formats = "; ".join(
        f"{f.name}: the {f.runtime} programs in --model-dir" for f in FORMATS.values()
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "torch", *FORMATS],
        default="auto",
        help="auto (default): on the CPU, ONNX Runtime through an export of the model made on "
        "first use and cached by weights, size and object count (else PyTorch; with "
        f"--model-dir, that folder's runtime); torch: PyTorch; {formats}",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="an exported model folder (`mobilevos export`)"
    )


def engine_source(args: argparse.Namespace):
    """What the options name to run: an exported folder (``--model-dir``), or the model of
    :func:`load_model_from_args`."""
    if args.model_dir is None:
        return load_model_from_args(args)
    if args.checkpoint is not None or args.model is not None:
        raise ConfigError("--model-dir holds the model: drop --checkpoint/--model")
    return args.model_dir


def load_model_from_args(args: argparse.Namespace):
    """The model named by --checkpoint, a --model preset's shipped weights (an untrained preset
    with --untrained), or else the shipped default model."""
    from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, trained_presets
    from mobilevos.config import get_preset

    if args.checkpoint is not None:
        return load_model(args.checkpoint)
    if args.model is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise ConfigError(
                "no trained default model is installed: give --checkpoint PATH "
                "(or --model PRESET --untrained for a smoke run)"
            )
        return load_model()
    get_preset(args.model)  # unknown preset: one-line error
    if args.model in trained_presets():
        return load_model(args.model)
    if not args.untrained:
        raise ConfigError(
            f"preset {args.model} has no trained weights (those that have: "
            f"{', '.join(trained_presets())}): give --checkpoint PATH, or add --untrained to "
            "run it anyway (its output is meaningless)"
        )
    print(UNTRAINED_WARNING.format(name=args.model), file=sys.stderr)
    return load_model(args.model)
