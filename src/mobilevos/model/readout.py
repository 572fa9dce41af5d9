"""Memory readout: affinity between a query frame and memory slots, then a weighted sum of values.

A pure function of tensors, used by training, streaming inference and the exported graphs alike.

Affinity is STCN's negative squared L2 distance between keys, scaled by 1/sqrt(Ck). The term
‖q‖² is the same for every memory location of a query pixel, so it cancels in the softmax over
memory and is dropped: ``logit = (2 m·q − ‖m‖²) / sqrt(Ck)``.

Each object attends only to the slots that hold a frame *for it* (an object added on frame 30
has nothing in the frames written before). The softmax is therefore per object: each object's
logits get a bias of 0 on its valid slots and :data:`INVALID` below every logit on the others,
so that one softmax over all memory locations gives exactly the softmax over the object's valid
ones (the biased terms' exponentials are exactly 0), and an object with no valid slot is
multiplied out to zeros. The shapes are the same whatever the validity pattern: the same graph
serves frame 2 and frame 100,000, with any mix of objects.

Every operation is one that XNNPACK runs, so an ExecuTorch program of the readout has nothing
outside its delegate (tests/test_executorch.py counts): batched matrix products with no
broadcast operand, a softmax over the last dimension, the bias added by broadcasting, the
squared norms as an average pool, and the slots' validity combined by a chain of maxima. The
objects' softmaxes cost K passes over the affinity; measured against a per-slot softmax
combined per object (one pass, but its maxima and sums as pooling windows) and the reductions
this replaced, it was the fastest under ExecuTorch for one and three objects and as fast as
the reductions under ONNX Runtime for one object (docs/speed.md).

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
    b, k, cv, s, h, w = memory_values.shape
    m = h * w  # locations per slot (and query locations)
    with autocast_off(query_key):
        logits = affinity_logits(_fp32(memory_keys), _fp32(query_key))  # B, Q, S*M
        valid = _fp32(valid)
        bias = (valid - 1) * INVALID  # B, K, S: 0 on valid slots
        biased = logits.view(b, 1, m, s, m) + bias.view(b, k, 1, s, 1)  # B, K, Q, S, M
        attention = torch.softmax(biased.view(b * k, m, s * m), dim=-1)
        values = _fp32(memory_values).permute(0, 1, 3, 4, 5, 2).reshape(b * k, s * m, cv)
        read = torch.bmm(attention, values).view(b, k, m, cv).transpose(2, 3)  # B, K, Cv, Q
        any_valid = valid[:, :, :1] if s > 1 else valid
        for i in range(1, s):  # a chain of maxima: XNNPACK has no reduction over them
            any_valid = torch.maximum(any_valid, valid[:, :, i : i + 1])
        return (read * any_valid.view(b, k, 1, 1)).reshape(b, k, cv, h, w)
