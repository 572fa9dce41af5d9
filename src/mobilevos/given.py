"""What a given mask does to a frame's probabilities, in streaming and in training unrolls.

Where a user (or a training clip) gives masks on a frame, those objects take exactly the given
mask there, new objects start at it, and the objects not given keep their predicted share of
what is left. The same function serves :class:`~mobilevos.predictor.VOSPredictor` and
:func:`~mobilevos.engine.unroll_clip`, so both write the same values into memory.
"""

from __future__ import annotations

import torch
from torch import Tensor


def impose_masks(prob: Tensor, onehot: Tensor, channels: list[int], claimed: Tensor) -> Tensor:
    """Overwrite the given objects' channels with the given mask, keeping a distribution.

    Where the mask is not void, each given object's probability becomes the mask, and the
    other channels share what is left in their predicted proportions. Void pixels keep the
    prediction, except that new objects (which have no prediction) stay at zero there.

    Shapes: prob (..., K'+1, H, W) over the objects tracked so far (K' <= K: objects new on
    this frame are missing at the end); onehot (..., K+1, H, W); claimed (..., H, W) in [0, 1];
    returns (..., K+1, H, W).
    """
    missing = onehot.shape[-3] - prob.shape[-3]
    if missing > 0:
        prob = torch.cat([prob, prob.new_zeros(*prob.shape[:-3], missing, *prob.shape[-2:])], -3)
    given = torch.zeros(prob.shape[-3], 1, 1, dtype=torch.bool, device=prob.device)
    given[channels] = True
    target = onehot.to(prob.dtype)
    mass = (target * given).sum(dim=-3, keepdim=True).clamp(max=1)
    rest = prob * ~given
    rest_sum = rest.sum(dim=-3, keepdim=True)
    # Share the mass left by the given objects among the others; if they predicted nothing
    # there, it goes to the background.
    fallback = torch.zeros_like(rest)
    fallback[..., 0, :, :] = 1
    share = torch.where(rest_sum > 1e-6, rest / rest_sum.clamp(min=1e-6), fallback)
    imposed = torch.where(given, target, share * (1 - mass))
    claimed = claimed[..., None, :, :].to(prob.dtype)
    return claimed * imposed + (1 - claimed) * prob
