from __future__ import annotations

import math

import pytest
import torch

from mobilevos.model.readout import affinity_logits, masked_softmax, memory_read


def naive_read(query_key, memory_keys, memory_values, valid):
    """Loop reference: softmax over valid memory locations of -||m - q||^2 / sqrt(Ck)."""
    b, ck, s, h, w = memory_keys.shape
    k, cv = memory_values.shape[1:3]
    out = torch.zeros(b, k, cv, h, w, dtype=torch.float64)
    for bi in range(b):
        mk = memory_keys[bi].double().permute(1, 2, 3, 0).reshape(s, h * w, ck)
        mv = memory_values[bi].double().permute(0, 2, 3, 4, 1).reshape(k, s, h * w, cv)
        keep = valid[bi]
        mk, mv = mk[keep].reshape(-1, ck), mv[:, keep].reshape(k, -1, cv)
        for p in range(h * w):
            q = query_key[bi].double().reshape(ck, h * w)[:, p]
            dist = ((mk - q) ** 2).sum(dim=1)
            weights = torch.softmax(-dist / math.sqrt(ck), dim=0)
            out[bi, :, :, p // w, p % w] = (weights[None, :, None] * mv).sum(dim=1)
    return out


@pytest.mark.parametrize(
    "valid_slots", [[True, True, True], [True, False, True], [False, True, False]]
)
def test_memory_read_matches_naive_reference(valid_slots):
    g = torch.Generator().manual_seed(0)
    b, ck, s, h, w, k, cv = 2, 4, 3, 3, 5, 2, 6
    mk = torch.randn(b, ck, s, h, w, generator=g)
    mv = torch.randn(b, k, cv, s, h, w, generator=g)
    qk = torch.randn(b, ck, h, w, generator=g)
    valid = torch.tensor(valid_slots).expand(b, s)
    out = memory_read(qk, mk, mv, valid)
    assert out.shape == (b, k, cv, h, w) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), naive_read(qk, mk, mv, valid), atol=1e-5, rtol=1e-5)


def test_invalid_slots_get_exactly_zero_weight_whatever_they_hold():
    g = torch.Generator().manual_seed(1)
    mk = torch.randn(1, 4, 2, 2, 2, generator=g)
    qk = torch.randn(1, 4, 2, 2, generator=g)
    valid = torch.tensor([[True, False]])
    weights = masked_softmax(affinity_logits(mk, qk), valid, slots=2)
    assert weights.shape == (1, 4, 8)  # query locations x memory locations
    assert torch.all(weights[..., 4:] == 0)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(1, 4))
    # Garbage (even huge keys equal to the query) in the invalid slot changes nothing.
    mv = torch.randn(1, 1, 3, 2, 2, 2, generator=g)
    before = memory_read(qk, mk, mv, valid)
    mk2, mv2 = mk.clone(), mv.clone()
    mk2[:, :, 1] = qk * 1e3
    mv2[:, :, :, 1] = 1e6
    torch.testing.assert_close(memory_read(qk, mk2, mv2, valid), before)


def test_empty_bank_reads_zeros_not_nan():
    mk = torch.randn(1, 4, 2, 2, 2)
    mv = torch.randn(1, 1, 3, 2, 2, 2)
    out = memory_read(torch.randn(1, 4, 2, 2), mk, mv, torch.zeros(1, 2, dtype=torch.bool))
    assert torch.all(out == 0)


def test_readout_is_fp32_under_autocast():
    mk = torch.randn(1, 8, 2, 3, 3) * 30  # large keys: bf16 logits would lose precision
    mv = torch.randn(1, 1, 4, 2, 3, 3)
    qk = torch.randn(1, 8, 3, 3) * 30
    valid = torch.ones(1, 2, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = memory_read(qk.bfloat16(), mk.bfloat16(), mv.bfloat16(), valid)
    assert out.dtype == torch.float32
    ref = memory_read(qk.bfloat16().float(), mk.bfloat16().float(), mv.bfloat16().float(), valid)
    torch.testing.assert_close(out, ref)
