"""The shipped models: each file loads strictly and predicts what it predicted at export."""

from __future__ import annotations

import pytest
import torch

from mobilevos.checkpoint import (
    DEFAULT_PRESET,
    load_model,
    read_checkpoint,
    shipped_checkpoint,
    trained_presets,
)
from mobilevos.fingerprint import fingerprints_match, output_fingerprint


def test_the_default_preset_ships_weights() -> None:
    assert DEFAULT_PRESET in trained_presets()


@pytest.mark.parametrize("preset", trained_presets())
def test_packaged_weights_reproduce_their_stored_output_fingerprint(preset: str) -> None:
    meta = read_checkpoint(shipped_checkpoint(preset)).meta
    model = load_model(preset)  # strict: every key and shape of the stored config's network
    assert model.config.name == meta["recipe"]["model"] == preset
    fingerprint = output_fingerprint(model)
    assert fingerprints_match(fingerprint, meta["fingerprint"]), (fingerprint, meta["fingerprint"])
    # The comparison can fail: slightly other weights move the outputs past the tolerance.
    with torch.no_grad():
        model.decoder.pred.weight.mul_(1.05)
    assert not fingerprints_match(output_fingerprint(model), meta["fingerprint"])


@pytest.mark.parametrize("preset", trained_presets())
def test_packaged_metadata_says_how_the_model_was_trained(preset: str) -> None:
    meta = read_checkpoint(shipped_checkpoint(preset)).meta
    assert meta["steps"] > 0 and meta["train_seconds"] > 0
    assert set(meta["held_out_jf"]) >= {"procedural"}
    assert meta["recipe"]["data"]["sources"] and meta["data"]
