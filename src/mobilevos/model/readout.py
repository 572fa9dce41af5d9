"""Memory readout: affinity between a query frame and memory slots, then a weighted sum of values.

A pure function of tensors, used by training, streaming inference and the exported graphs alike.

Affinity is STCN's negative squared L2 distance between keys, scaled by 1/sqrt(Ck). The term
‖q‖² is the same for every memory location of a query pixel, so it cancels in the softmax over
memory and is dropped: ``logit = (2 m·q − ‖m‖²) / sqrt(Ck)``.

Each object attends only to the slots that hold a frame *for it* (an object added on frame 30
has nothing in the frames written before). With one object, its logits get a bias of 0 on its
valid slots and :data:`INVALID` below every logit on the others, so that one softmax over all
memory locations gives exactly the softmax over its valid ones (the biased terms' exponentials
are exactly 0), and an object with no valid slot is multiplied out to zeros. With several, one
softmax over the slots valid for any object is shared by all of them, and each object's read is
renormalised over its own valid slots (:func:`_read_shared`): the softmax, the largest pass of
the readout, runs once per frame instead of once per object. The shapes are the same whatever
the validity pattern: the same graph serves frame 2 and frame 100,000, with any mix of objects.

Every operation is one that XNNPACK runs, so an ExecuTorch program of the readout has nothing
outside its delegate (tests/test_executorch.py counts): batched matrix products with no
broadcast operand, a softmax over the last dimension, the bias added by broadcasting, the
squared norms as an average pool, and the slots' validity combined by a chain of maxima.
Against a softmax per object (the form before it), the shared softmax took 0.87-0.94 of the time
of three objects' ``segment`` under both runtimes; for one object the biased softmax is faster
than a shared one and, under ExecuTorch, than the reductions it replaced (docs/speed.md).

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
"""How far below every logit an object's logits are biased on the slots not valid for it (far
enough that their exponentials are exactly 0; finite, so no inf is ever formed)."""

TINY = 1e-30
"""Added to an object's share of the attention before dividing by it: 0 / TINY for an object
with no valid slot, never 0 / 0."""


def _fp32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float32 else x.float()


def affinity_logits(memory_keys: Tensor, query_key: Tensor) -> Tensor:
    """Negative squared-distance affinity logits of every query location to every memory
    location, from one matrix product (no copy of the query per slot).

    Memory locations run along the last, contiguous dimension, slot by slot, so the softmax
    over them is over the last dimension (on CUDA a softmax over another dimension took 68 ms
    of a 72 ms teacher frame).

    Shapes:
        memory_keys: (B, Ck, S, h, w)
        query_key: (B, Ck, h, w)
        returns: (B, h*w query locations, S*h*w memory locations)
    """
    b, ck = memory_keys.shape[:2]
    mk = memory_keys.reshape(b, ck, -1)  # B, Ck, S*M
    qk = query_key.reshape(b, ck, -1).transpose(1, 2)  # B, Q, Ck
    # ‖m‖² as a mean over a window as tall as the key, times its height.
    squares = (mk * mk).view(b, 1, ck, -1)
    sq_norm = F.avg_pool2d(squares, (ck, 1)).view(b, 1, -1) * ck  # B, 1, S*M
    return (2 * torch.bmm(qk, mk) - sq_norm) * (1 / math.sqrt(ck))


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
    with autocast_off(query_key):
        logits = affinity_logits(_fp32(memory_keys), _fp32(query_key))  # B, Q, S*M
        valid = _fp32(valid)
        values = _fp32(memory_values)
        if values.shape[1] == 1:
            return _read_one(logits, values, valid)
        return _read_shared(logits, values, valid)


def _any_valid(valid: Tensor, dim: int) -> Tensor:
    """1 where any of ``valid``'s entries along ``dim`` is (a chain of maxima: XNNPACK has no
    reduction over them)."""
    first = valid.narrow(dim, 0, 1)
    for i in range(1, valid.shape[dim]):
        first = torch.maximum(first, valid.narrow(dim, i, 1))
    return first


def _softmax_over(logits: Tensor, slots: Tensor) -> Tensor:
    """The softmax of ``logits`` over the memory locations of ``slots`` (B, 1, S; 0/1), the
    other slots biased out; shapes as ``logits``, (B, Q, S*M)."""
    b, q, sm = logits.shape
    s = slots.shape[2]
    bias = (slots - 1) * INVALID  # 0 on the slots read
    biased = logits.view(b, q, s, sm // s) + bias.view(b, 1, s, 1)
    return torch.softmax(biased.view(b, q, sm), dim=-1)


def _read_one(logits: Tensor, values: Tensor, valid: Tensor) -> Tensor:
    """One object: a softmax over the memory locations, its invalid slots biased out."""
    b, k, cv, s, h, w = values.shape
    m = h * w
    attention = _softmax_over(logits, valid)
    flat = values.permute(0, 1, 3, 4, 5, 2).reshape(b, s * m, cv)
    read = torch.bmm(attention, flat).transpose(1, 2)  # B, Cv, Q
    return (read * _any_valid(valid, 2).view(b, 1, 1)).reshape(b, k, cv, h, w)


def _read_shared(logits: Tensor, values: Tensor, valid: Tensor) -> Tensor:
    """Several objects: one softmax over the slots valid for any object, shared by all of them;
    each object's read is renormalised over its own valid slots.

    One matrix product gives every object's weighted values and, from a column of its slots'
    validity beside them, the attention its valid slots hold (the normaliser). This equals a
    softmax per object over its own slots (as :func:`_read_one`) up to rounding, unless an
    object's valid slots hold under about 1e-30 of a query location's attention (every one of
    their locations about 70 logits or more below the best location of a slot valid only for
    other objects): the object then reads zeros there.
    """
    b, k, cv, s, h, w = values.shape
    m = h * w
    attention = _softmax_over(logits, _any_valid(valid, 1))
    masked = values * valid.view(b, k, 1, s, 1, 1)  # B, K, Cv, S, h, w
    # Each object's valid slots as a value channel of ones (ones made from the values, not a
    # constant: XNNPACK has no fill).
    ones = values[:, :1, :1] * 0 + 1  # B, 1, 1, S, h, w
    cover = ones * valid.view(b, k, 1, s, 1, 1)  # B, K, 1, S, h, w
    columns = torch.cat([masked, cover], dim=2)  # B, K, Cv+1, S, h, w
    flat = columns.permute(0, 3, 4, 5, 1, 2).reshape(b, s * m, k * (cv + 1))
    read = torch.bmm(attention, flat).view(b, m, k, cv + 1)
    weighted, held = read[..., :cv], read[..., cv:]
    out = weighted / (held + TINY)  # an object with no valid slot: 0 / TINY
    return out.permute(0, 2, 3, 1).reshape(b, k, cv, h, w)
