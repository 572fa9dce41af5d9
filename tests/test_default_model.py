"""The shipped default model: its file loads strictly and predicts what it predicted at export."""

from __future__ import annotations

import torch

from mobilevos.checkpoint import DEFAULT_CHECKPOINT, load_model, read_checkpoint
from mobilevos.fingerprint import fingerprints_match, output_fingerprint


def test_packaged_weights_reproduce_their_stored_output_fingerprint() -> None:
    meta = read_checkpoint(DEFAULT_CHECKPOINT).meta
    model = load_model()  # strict: every key and shape of the stored config's network
    assert model.config.name == meta["recipe"]["model"]
    fingerprint = output_fingerprint(model)
    assert fingerprints_match(fingerprint, meta["fingerprint"]), (fingerprint, meta["fingerprint"])
    # The comparison can fail: slightly other weights move the outputs past the tolerance.
    with torch.no_grad():
        model.decoder.pred.weight.mul_(1.05)
    assert not fingerprints_match(output_fingerprint(model), meta["fingerprint"])


def test_packaged_metadata_says_how_the_model_was_trained() -> None:
    meta = read_checkpoint(DEFAULT_CHECKPOINT).meta
    assert meta["steps"] > 0 and meta["train_seconds"] > 0
    assert set(meta["held_out_jf"]) >= {"procedural"}
    assert meta["recipe"]["data"]["sources"] and meta["data"]
