from __future__ import annotations

import math

import pytest
import torch

from mobilevos.model.readout import memory_read


def naive_read(query_key, memory_keys, memory_values, valid):
    """Loop reference: for each object, a softmax over the locations of its valid slots of
    -||m - q||^2 / sqrt(Ck); zeros for an object without a valid slot. valid: (B, K, S)."""
    b, ck, s, h, w = memory_keys.shape
    k, cv = memory_values.shape[1:3]
    out = torch.zeros(b, k, cv, h, w, dtype=torch.float64)
    for bi in range(b):
        mk = memory_keys[bi].double().permute(1, 2, 3, 0).reshape(s, h * w, ck)
        mv = memory_values[bi].double().permute(0, 2, 3, 4, 1).reshape(k, s, h * w, cv)
        for obj in range(k):
            keep = valid[bi, obj]
            if not keep.any():
                continue
            keys, values = mk[keep].reshape(-1, ck), mv[obj, keep].reshape(-1, cv)
            for p in range(h * w):
                q = query_key[bi].double().reshape(ck, h * w)[:, p]
                dist = ((keys - q) ** 2).sum(dim=1)
                weights = torch.softmax(-dist / math.sqrt(ck), dim=0)
                out[bi, obj, :, p // w, p % w] = (weights[:, None] * values).sum(dim=0)
    return out


def previous_read(query_key, memory_keys, memory_values, valid):
    """The readout as it was written before it was made of XNNPACK operators only: the slot
    maximum and sums as reductions, the objects' maxima by selection (kept as a reference)."""
    b, k, cv, s, h, w = memory_values.shape
    ck = memory_keys.shape[1]
    mk = memory_keys.flatten(start_dim=3).transpose(1, 2)  # B, S, Ck, hw
    qk = query_key.flatten(start_dim=2).transpose(1, 2)[:, None]  # B, 1, hw, Ck
    logits = (2 * qk @ mk - mk.pow(2).sum(dim=2, keepdim=True)) / math.sqrt(ck)  # B, S, Q, M
    slot_max = logits.amax(dim=-1)
    exp = torch.exp(logits - slot_max[..., None])
    slot_sum = exp.sum(dim=-1)
    values = memory_values.permute(0, 3, 1, 2, 4, 5).reshape(b, s, k * cv, h * w)
    slot_read = (values @ exp.transpose(2, 3)).view(b, s, k, cv, h * w)
    mask = valid[..., None]
    smax = slot_max[:, None]
    object_max = torch.where(mask, smax, torch.finfo(smax.dtype).min).amax(dim=2, keepdim=True)
    weights = torch.exp((smax - object_max).clamp(max=0)) * mask
    numerator = (slot_read * weights.transpose(1, 2)[:, :, :, None]).sum(dim=1)
    denominator = (weights * slot_sum[:, None]).sum(dim=2)
    return (numerator / denominator.clamp(min=1.0)[:, :, None]).view(b, k, cv, h, w)


@pytest.mark.parametrize(
    "valid_slots",
    [
        [[True, True], [True, True], [True, True]],
        [[True, False], [True, False], [False, False]],  # an object with no slot
        [[True, True], [False, True], [False, True]],  # objects added on a later frame
        [[False, True], [True, False], [True, True]],
    ],
)
def test_readout_equals_the_previous_formulation(valid_slots):
    """Same numbers as the readout written with reductions and selections, to 1e-5, at a
    model's scale of keys (the memory of the shipped students: 2 slots)."""
    g = torch.Generator().manual_seed(3)
    b, ck, s, h, w, k, cv = 1, 64, 2, 6, 10, 3, 16
    mk = torch.randn(b, ck, s, h, w, generator=g) * 2
    mv = torch.randn(b, k, cv, s, h, w, generator=g)
    qk = torch.randn(b, ck, h, w, generator=g) * 2
    valid = torch.tensor([valid_slots])
    new = memory_read(qk, mk, mv, valid)
    torch.testing.assert_close(new, previous_read(qk, mk, mv, valid), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new, memory_read(qk, mk, mv, valid.float()))  # 0/1 floats


@pytest.mark.parametrize(
    "valid_slots",
    [
        [[True, True, True], [True, True, True]],
        [[True, False, True], [True, False, True]],
        [[False, True, False], [True, True, True]],  # objects with different slots
        [[True, True, False], [False, False, False]],  # an object with no slot yet
    ],
)
def test_memory_read_matches_naive_reference(valid_slots):
    g = torch.Generator().manual_seed(0)
    b, ck, s, h, w, k, cv = 2, 4, 3, 3, 5, 2, 6
    mk = torch.randn(b, ck, s, h, w, generator=g) * 3  # spread logits: slot maxima differ
    mv = torch.randn(b, k, cv, s, h, w, generator=g)
    qk = torch.randn(b, ck, h, w, generator=g) * 3
    valid = torch.tensor(valid_slots).expand(b, k, s)
    out = memory_read(qk, mk, mv, valid)
    assert out.shape == (b, k, cv, h, w) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), naive_read(qk, mk, mv, valid), atol=1e-5, rtol=1e-5)


def test_invalid_slots_count_for_nothing_whatever_they_hold():
    g = torch.Generator().manual_seed(1)
    mk = torch.randn(1, 4, 2, 2, 2, generator=g)
    qk = torch.randn(1, 4, 2, 2, generator=g)
    mv = torch.randn(1, 1, 3, 2, 2, 2, generator=g)
    valid = torch.tensor([[[True, False]]])
    before = memory_read(qk, mk, mv, valid)
    # One valid slot: the read is the softmax over that slot alone.
    torch.testing.assert_close(
        before, memory_read(qk, mk[:, :, :1], mv[:, :, :, :1], valid[..., :1])
    )
    # Garbage (even huge keys equal to the query) in the invalid slot changes nothing.
    mk2, mv2 = mk.clone(), mv.clone()
    mk2[:, :, 1] = qk * 1e3
    mv2[:, :, :, 1] = 1e6
    torch.testing.assert_close(memory_read(qk, mk2, mv2, valid), before)


def test_gradients_are_finite_with_invalid_slots_and_objects_without_slots():
    g = torch.Generator().manual_seed(2)
    mk = (torch.randn(1, 4, 3, 2, 2, generator=g) * 20).requires_grad_()
    mv = torch.randn(1, 2, 3, 3, 2, 2, generator=g).requires_grad_()
    qk = (torch.randn(1, 4, 2, 2, generator=g) * 20).requires_grad_()
    valid = torch.tensor([[[True, False, True], [False, False, False]]])
    memory_read(qk, mk, mv, valid).sum().backward()
    for x in (mk, mv, qk):
        assert torch.isfinite(x.grad).all()
    assert torch.all(mv.grad[:, 1] == 0) and torch.all(mv.grad[:, :, :, 1] == 0)


def test_empty_bank_reads_zeros_not_nan():
    mk = torch.randn(1, 4, 2, 2, 2)
    mv = torch.randn(1, 1, 3, 2, 2, 2)
    out = memory_read(torch.randn(1, 4, 2, 2), mk, mv, torch.zeros(1, 1, 2, dtype=torch.bool))
    assert torch.all(out == 0)


def test_readout_is_fp32_under_autocast():
    mk = torch.randn(1, 8, 2, 3, 3) * 30  # large keys: bf16 logits would lose precision
    mv = torch.randn(1, 1, 4, 2, 3, 3)
    qk = torch.randn(1, 8, 3, 3) * 30
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = memory_read(qk.bfloat16(), mk.bfloat16(), mv.bfloat16(), valid)
    assert out.dtype == torch.float32
    ref = memory_read(qk.bfloat16().float(), mk.bfloat16().float(), mv.bfloat16().float(), valid)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize(
    "valid_slots",
    [
        [[True, True, False], [True, True, False], [True, True, False]],
        [[True, True, False], [False, True, False], [False, False, False]],  # late, and none yet
        [[False, True, True], [True, False, True], [False, False, True]],
    ],
)
def test_several_objects_read_as_each_object_alone(valid_slots):
    """The softmax shared by several objects gives each object what a read of that object
    alone gives (its own biased softmax), even with garbage in a slot no object may read."""
    g = torch.Generator().manual_seed(4)
    b, ck, s, h, w, k, cv = 1, 64, 3, 6, 10, 3, 16
    mk = torch.randn(b, ck, s, h, w, generator=g) * 2
    mv = torch.randn(b, k, cv, s, h, w, generator=g)
    qk = torch.randn(b, ck, h, w, generator=g) * 2
    valid = torch.tensor([valid_slots])
    unused = ~valid.any(dim=1)[0]
    mk[:, :, unused] = qk[:, :, None].expand(b, ck, int(unused.sum()), h, w) * 1e3
    together = memory_read(qk, mk, mv, valid)
    for obj in range(k):
        alone = memory_read(qk, mk, mv[:, obj : obj + 1], valid[:, obj : obj + 1])
        torch.testing.assert_close(together[:, obj : obj + 1], alone, atol=1e-5, rtol=1e-5)


def test_an_object_whose_slots_hold_almost_no_attention_reads_zeros():
    """The documented limit of the shared softmax: an object whose only slot is ~100 logits
    below another object's slot everywhere reads zeros, where alone it reads its slot."""
    ck, h, w = 4, 2, 2
    qk = torch.zeros(1, ck, h, w)
    mk = torch.zeros(1, ck, 2, h, w)
    mk[:, :, 1] = 40.0  # logit -(40^2 * 4) / 2 = -3200 against 0 on slot 0
    mv = torch.ones(1, 2, 3, 2, h, w)
    valid = torch.tensor([[[True, False], [False, True]]])
    together = memory_read(qk, mk, mv, valid)
    assert torch.all(together[:, 0] == 1)
    assert torch.all(together[:, 1].abs() < 1e-6)
    alone = memory_read(qk, mk, mv[:, 1:], valid[:, 1:])
    torch.testing.assert_close(alone, torch.ones_like(alone))
