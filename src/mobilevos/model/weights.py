"""Strict weight loading with errors that name the offending keys."""

from __future__ import annotations

import torch

from mobilevos.errors import CheckpointError


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Load weights strictly, turning mismatches into one-line :class:`CheckpointError` s."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: weights do not match the architecture: "
            f"{len(missing)} missing {_preview(missing)}, "
            f"{len(unexpected)} unexpected {_preview(unexpected)}"
        )
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if state_dict[k].shape != v.shape
    ]
    if wrong:
        raise CheckpointError(f"{source}: {len(wrong)} weights have the wrong shape: {wrong[:3]}")
    model.load_state_dict(state_dict, strict=True)


def _preview(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    more = f", ... (+{len(keys) - limit})" if len(keys) > limit else ""
    return f"[{shown}{more}]"
