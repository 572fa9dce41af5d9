"""Memory readout: affinity between a query frame and memory slots, then a weighted sum of values.

Pure functions used by training, streaming inference and the exported graphs alike.

Affinity is STCN's negative squared L2 distance between keys, scaled by 1/sqrt(Ck). The term
‖q‖² is the same for every memory location of a query pixel, so it cancels in the softmax over
memory and is dropped: ``logit = (2 m·q − ‖m‖²) / sqrt(Ck)``.

Slots that hold no frame yet (``valid`` False) get zero weight; shapes never depend on how many
slots are filled, so the same graph serves frame 2 and frame 100,000.

Everything here runs in fp32 even under autocast: the logits are differences of large squared
norms and an exponent, which half precision cannot hold without overflow or cancellation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _fp32(x: Tensor) -> Tensor:
    return x if x.dtype == torch.float32 else x.float()


def affinity_logits(memory_keys: Tensor, query_key: Tensor) -> Tensor:
    """Negative squared-distance affinity logits.

    Shapes:
        memory_keys: (B, Ck, S, h, w)
        query_key: (B, Ck, h, w)
        returns: (B, S*h*w, h*w), memory locations along dim 1.
    """
    ck = query_key.shape[1]
    mk = memory_keys.flatten(start_dim=2)  # B, Ck, N
    qk = query_key.flatten(start_dim=2)  # B, Ck, HW
    sq_norm = mk.pow(2).sum(dim=1).unsqueeze(2)  # B, N, 1
    return (2 * mk.transpose(1, 2) @ qk - sq_norm) / math.sqrt(ck)


def masked_softmax(logits: Tensor, valid: Tensor, slots: int) -> Tensor:
    """Softmax over memory locations, giving exactly zero weight to invalid slots.

    Invalid locations are filled with the most negative finite float (not -inf, so that a bank
    with no valid slot reads zeros instead of NaN), and the weights are multiplied by the mask.

    Shapes:
        logits: (B, S*h*w, h*w)
        valid: (B, S) bool
        returns: (B, S*h*w, h*w)
    """
    b, n, _ = logits.shape
    location_valid = valid[:, :, None].expand(b, slots, n // slots).reshape(b, n, 1)
    filled = logits.masked_fill(~location_valid, torch.finfo(logits.dtype).min)
    return torch.softmax(filled, dim=1) * location_valid


def readout(affinity: Tensor, memory_values: Tensor) -> Tensor:
    """Weighted sum of memory values for every query location.

    Shapes:
        affinity: (B, S*h*w, h*w)
        memory_values: (B, K, Cv, S, h, w)
        returns: (B, K, Cv, h, w)
    """
    b, k, cv, s, h, w = memory_values.shape
    values = memory_values.reshape(b, k * cv, s * h * w)
    return (values @ affinity).view(b, k, cv, h, w)


def memory_read(
    query_key: Tensor, memory_keys: Tensor, memory_values: Tensor, valid: Tensor
) -> Tensor:
    """Read the memory for one query frame, in fp32 whatever the autocast state.

    Shapes:
        query_key: (B, Ck, h, w)
        memory_keys: (B, Ck, S, h, w)
        memory_values: (B, K, Cv, S, h, w)
        valid: (B, S) bool, slots holding a frame for these K objects
        returns: (B, K, Cv, h, w) float32
    """
    with torch.autocast(device_type=query_key.device.type, enabled=False):
        logits = affinity_logits(_fp32(memory_keys), _fp32(query_key))
        weights = masked_softmax(logits, valid, memory_keys.shape[2])
        return readout(weights, _fp32(memory_values))
