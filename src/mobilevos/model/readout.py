"""Memory readout: affinity between a query frame and memory slots, then a weighted sum of values.

A pure function of tensors, used by training, streaming inference and the exported graphs alike.

Affinity is STCN's negative squared L2 distance between keys, scaled by 1/sqrt(Ck). The term
‖q‖² is the same for every memory location of a query pixel, so it cancels in the softmax over
memory and is dropped: ``logit = (2 m·q − ‖m‖²) / sqrt(Ck)``.

Each object attends only to the slots that hold a frame *for it* (an object added on frame 30
has nothing in the frames written before). The softmax is therefore per object, but computed
without K copies of the affinity: each slot's exponentials are taken relative to that slot's own
maximum (its partial softmax), and the partial results are combined per object with weights
``exp(slot max − object max)`` over the object's valid slots, as a streaming softmax combines
blocks. This is exactly the softmax over the object's valid locations, costs the same as one
softmax over all slots, and has the same shapes whatever the validity pattern: the same graph
serves frame 2 and frame 100,000, with any mix of objects.

Every operation is one that XNNPACK runs, so an ExecuTorch program of the readout has nothing
outside its delegate (tests/test_executorch.py counts): products are batched matrix products
with no broadcast operand, the reductions over memory locations are pooling windows as tall as
the memory (the slot maximum a max pool, the slot sum an average pool times the count), the
reductions over the few slots are chains of elementwise maxima and sums, and validity enters
as arithmetic masks (0 or 1), never as a selection.

Everything here runs in fp32 even under autocast: the logits are differences of large squared
norms and an exponent, which half precision cannot hold without overflow or cancellation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mobilevos.device import autocast_off

INVALID = 1e30
"""How far below every logit an invalid slot's maximum is pushed (finite: no inf is formed)."""


def _fp32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float32 else x.float()


def affinity_logits(memory_keys: Tensor, query_key: Tensor) -> Tensor:
    """Negative squared-distance affinity logits, slot by slot.

    Memory locations run down the rows, query locations along the last, contiguous dimension:
    the logits come from one matrix product with the query as it is (no copy per slot), and
    the read that follows multiplies the values by them without a transpose.

    Shapes:
        memory_keys: (B, Ck, S, h, w)
        query_key: (B, Ck, h, w)
        returns: (B, S, h*w memory locations, h*w query locations)
    """
    b, ck, s, h, w = memory_keys.shape
    mk = memory_keys.reshape(b, ck, s * h * w).transpose(1, 2)  # B, S*M, Ck
    qk = query_key.reshape(b, ck, -1)  # B, Ck, Q
    # ‖m‖² as a mean over a window as wide as the key, times its width.
    squares = (mk * mk).view(b, 1, s * h * w, ck)
    sq_norm = F.avg_pool2d(squares, (1, ck)).view(b, s * h * w, 1) * ck  # B, S*M, 1
    logits = (2 * torch.bmm(mk, qk) - sq_norm) * (1 / math.sqrt(ck))  # B, S*M, Q
    return logits.view(b, s, h * w, -1)


def object_slot_weights(slot_max: Tensor, valid: Tensor) -> list[Tensor]:
    """How much each slot's partial softmax counts for each object.

    ``exp(slot max − max over the object's valid slots)`` on valid slots, exactly 0 elsewhere
    (also when an object has no valid slot). An invalid slot's maximum is pushed
    :data:`INVALID` below every logit before the objects' maxima are taken, and the exponent
    is clamped at 0, so no inf is ever formed and gradients stay finite.

    Shapes:
        slot_max: (B, S, 1, Q) each slot's largest logit per query location
        valid: (B, K, S) float, 1 for the slots holding a frame for the object, else 0
        returns: S tensors (B, K, Q), slot by slot
    """
    b, s = slot_max.shape[:2]
    slot = [slot_max[:, i : i + 1].view(b, 1, -1) for i in range(s)]  # each B, 1, Q
    mask = [valid[:, :, i : i + 1] for i in range(s)]  # each B, K, 1
    pushed = [m + (v - 1) * INVALID for m, v in zip(slot, mask, strict=True)]  # B, K, Q
    object_max = pushed[0]
    for p in pushed[1:]:
        object_max = torch.maximum(object_max, p)
    return [torch.exp((p - object_max).clamp(max=0)) * v for p, v in zip(pushed, mask, strict=True)]


def memory_read(
    query_key: Tensor, memory_keys: Tensor, memory_values: Tensor, valid: Tensor
) -> Tensor:
    """Read every object's memory for one query frame, in fp32 whatever the autocast state.

    Shapes:
        query_key: (B, Ck, h, w)
        memory_keys: (B, Ck, S, h, w)
        memory_values: (B, K, Cv, S, h, w)
        valid: (B, K, S) bool (or 0/1 float), the slots holding a frame for each object
        returns: (B, K, Cv, h, w) float32; an object with no valid slot reads zeros
    """
    b, k, cv, s, h, w = memory_values.shape
    m = h * w  # memory locations per slot
    with autocast_off(query_key):
        logits = affinity_logits(_fp32(memory_keys), _fp32(query_key))  # B, S, M, Q
        slot_max = F.max_pool2d(logits, (m, 1))  # B, S, 1, Q
        exp = torch.exp(logits - slot_max)
        slot_sum = F.avg_pool2d(exp, (m, 1)) * m  # B, S, 1, Q
        values = _fp32(memory_values).permute(0, 3, 1, 2, 4, 5).reshape(b * s, k * cv, m)
        slot_read = torch.bmm(values, exp.view(b * s, m, -1)).view(b, s, k, cv, -1)
        weights = object_slot_weights(slot_max, _fp32(valid))  # S x (B, K, Q)
        numerator = denominator = None
        for i, weight in enumerate(weights):  # B, K, Q
            read = slot_read[:, i : i + 1].view(b, k, cv, -1) * weight.view(b, k, 1, -1)
            total = slot_sum[:, i : i + 1].view(b, 1, -1) * weight
            numerator = read if numerator is None else numerator + read
            denominator = total if denominator is None else denominator + total
        # The denominator is >= 1 when the object has a valid slot (its largest term is
        # exp(0)), and 0 with a zero numerator when it has none: that object reads zeros.
        out = numerator / denominator.clamp(min=1.0).view(b, k, 1, -1)
        return out.view(b, k, cv, h, w)
