"""Training losses of MobileVOS: segmentation, representation and boundary logit distillation.

The total loss (Miles et al., CVPR 2023) is ``L = w_seg·L_seg + w_repr·L_repr + w_logit·L_logit``:

* :class:`BootstrappedCE` — the segmentation loss; STCN's bootstrapped cross-entropy.
* :func:`representation_loss` — the paper's contribution: one loss on N×N correlation matrices
  of sampled pixel embeddings whose target mixes the teacher's correlations (relational
  distillation) with the label co-occurrence matrix (pixel-wise supervised contrastive learning).
  The pixels come from :func:`sample_pixels`, which favours a band around object boundaries.
* :func:`logit_distillation_loss` — KL divergence between teacher and student output
  distributions, counted only on a band around the ground-truth boundaries.
* :class:`LossWeights` and :func:`combine_losses` — the weighted total.

All functions are pure and device-agnostic. The matrix and divergence terms run in fp32 even
under autocast: a squared Frobenius norm of a 512×512 correlation matrix reaches 512² = 262,144,
beyond the float16 maximum (65,504).

Shapes legend: B batch (the trainer flattens clip time into it: one matrix per frame), N sampled
pixels, C channels (Cs student, Ct teacher), K objects (K+1 classes with background), H×W label /
logit resolution, h×w the grid of the embedding features (stride 8 by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mobilevos.device import autocast_off
from mobilevos.errors import ConfigError
from mobilevos.io import VOID_LABEL

__all__ = [
    "BootstrappedCE",
    "LossWeights",
    "SegLoss",
    "boundary_band",
    "combine_losses",
    "gather_embeddings",
    "logit_distillation_loss",
    "one_hot_labels",
    "representation_loss",
    "sample_pixels",
]

LOG_EPS = 1e-6
"""Added inside both logarithms of :func:`representation_loss` (see there for why)."""


def _full(x: Tensor) -> Tensor:
    """Upcast half-precision tensors to fp32; fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_labels(labels: Tensor, name: str = "labels") -> None:
    if labels.dim() != 3 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"{name} must be an integer (B, H, W) label map, got {tuple(labels.shape)} "
            f"{labels.dtype}"
        )


# --------------------------------------------------------------------------------------------
# Boundary band and pixel sampling
# --------------------------------------------------------------------------------------------


def boundary_band(labels: Tensor, width: int) -> Tensor:
    """Pixels lying within ``width`` pixels of a pixel with a different (non-void) label.

    Distance is Chebyshev (a (2·width+1)² square window), because a square window is a plain
    max-pool, which runs on any device without building per-label one-hot maps. A pixel is in the
    band when the largest and smallest non-void labels in its window differ: the window holds the
    pixel itself, so if they differ, some label in it differs from the pixel's own. Void pixels
    (255) are never in the band and never count as a "different label"; the image border does not
    count either. ``width == 0`` gives an empty band.

    Shapes:
        labels: (B, H, W) integer, 0 background, 1..254 objects, 255 void
        returns: (B, H, W) bool
    """
    _check_labels(labels)
    if width < 0:
        raise ConfigError(f"boundary band width must be >= 0, got {width}")
    valid = labels != VOID_LABEL
    if width == 0:
        return torch.zeros_like(valid)
    values = labels.to(torch.float32).unsqueeze(1)  # labels <= 254 are exact in fp32
    high = _square_max(values.masked_fill(~valid[:, None], -1.0), width)
    low = -_square_max((-values).masked_fill(~valid[:, None], -256.0), width)
    return valid & (high != low).squeeze(1)


def _square_max(x: Tensor, width: int) -> Tensor:
    """Max over a (2·width+1)² window, as a column pass then a row pass (2k work, not k²).

    Shapes: (B, 1, H, W) -> (B, 1, H, W); outside the image counts as -inf.
    """
    k = 2 * width + 1
    x = F.max_pool2d(x, (k, 1), stride=1, padding=(width, 0))
    return F.max_pool2d(x, (1, k), stride=1, padding=(0, width))


def _draw(mask: Tensor, count: int, available: int, generator: torch.Generator | None) -> Tensor:
    """``count`` indices where ``mask`` is True; without replacement unless too few exist."""
    if count == 0:
        return torch.empty(0, dtype=torch.long, device=mask.device)
    return torch.multinomial(
        mask.float(), count, replacement=available < count, generator=generator
    )


def sample_pixels(
    labels: Tensor,
    num_samples: int = 512,
    boundary_fraction: float = 0.75,
    band_width: int = 2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Choose the pixels whose embeddings enter :func:`representation_loss`.

    Per frame, ``round(num_samples · boundary_fraction)`` pixels come from the
    :func:`boundary_band` of ``labels`` (without replacement when the band has enough pixels, with
    replacement otherwise), followed by the rest drawn uniformly over all non-void pixels (again
    with replacement only when too few exist). A frame whose band is empty (one label only) gets
    all its samples uniformly. The two parts may share pixels. Void pixels are never drawn.

    ``labels`` must already be at the feature grid (the default embedding is stride 8; resize a
    full-resolution map with ``F.interpolate(..., mode="nearest-exact")``, which picks the pixel at
    each cell's centre). The default ``band_width`` of 2 cells at stride 8 is ±16 image pixels:
    where the decoder's boundary is uncertain, yet a small part of a 48×48 grid (a 384 crop).

    Draws use ``generator`` (on its own device) when given, so the result is reproducible.

    Shapes:
        labels: (B, h, w) integer, 255 void
        returns: (B, N) long flat indices into h*w, N = num_samples, on labels' device
    Raises:
        ConfigError: ``num_samples < 1``, ``boundary_fraction`` outside [0, 1], bad band width.
        ValueError: a frame has no non-void pixel (the caller should drop such a frame).
    """
    _check_labels(labels)
    if num_samples < 1:
        raise ConfigError(f"num_samples must be >= 1, got {num_samples}")
    if not 0.0 <= boundary_fraction <= 1.0:
        raise ConfigError(f"boundary_fraction must be in [0, 1], got {boundary_fraction}")
    device = generator.device if generator is not None else labels.device
    valid = (labels != VOID_LABEL).flatten(1).to(device)
    band = boundary_band(labels, band_width).flatten(1).to(device)
    valid_counts = valid.sum(1).tolist()
    band_counts = band.sum(1).tolist()
    n_band = round(num_samples * boundary_fraction)
    rows = []
    for b in range(labels.shape[0]):
        if valid_counts[b] == 0:
            raise ValueError(f"frame {b} of the batch has no non-void pixel to sample")
        take_band = n_band if band_counts[b] > 0 else 0
        rows.append(
            torch.cat(
                [
                    _draw(band[b], take_band, band_counts[b], generator),
                    _draw(valid[b], num_samples - take_band, valid_counts[b], generator),
                ]
            )
        )
    return torch.stack(rows).to(labels.device)


def gather_embeddings(features: Tensor, index: Tensor) -> Tensor:
    """Pick the feature vectors of the sampled pixels.

    Shapes:
        features: (B, C, h, w)
        index: (B, N) long flat indices into h*w (from :func:`sample_pixels`)
        returns: (B, N, C)
    """
    b, c = features.shape[:2]
    if index.dim() != 2 or index.shape[0] != b:
        raise ValueError(f"index must be (B={b}, N), got {tuple(index.shape)}")
    flat = features.flatten(2)  # B, C, h*w
    return flat.gather(2, index[:, None, :].expand(b, c, index.shape[1])).transpose(1, 2)


def one_hot_labels(labels: Tensor, index: Tensor, num_classes: int) -> Tensor:
    """One-hot labels of the sampled pixels (background and each object id).

    A void pixel gets an all-zero row (it matches nothing); :func:`sample_pixels` never picks one.

    Shapes:
        labels: (B, h, w) integer in 0..num_classes-1 or 255
        index: (B, N) long flat indices into h*w
        returns: (B, N, num_classes) float32, num_classes = K + 1
    """
    _check_labels(labels)
    picked = labels.flatten(1).gather(1, index).long()
    void = picked == VOID_LABEL
    if bool(((picked < 0) | (picked >= num_classes))[~void].any()):
        raise ValueError(f"sampled labels must lie in 0..{num_classes - 1} or be void (255)")
    onehot = F.one_hot(picked.masked_fill(void, 0), num_classes).to(torch.float32)
    return onehot.masked_fill(void[..., None], 0.0)


# --------------------------------------------------------------------------------------------
# Representation loss (relational distillation + supervised contrastive)
# --------------------------------------------------------------------------------------------


def _correlation(embeddings: Tensor) -> Tensor:
    """C = Z Zᵀ of row-normalised embeddings. Shapes: (B, N, C) -> (B, N, N)."""
    z = F.normalize(_full(embeddings), dim=-1)
    return z @ z.transpose(1, 2)


def _check_repr_inputs(
    student: Tensor, labels_onehot: Tensor | None, teacher: Tensor | None, omega: float
) -> None:
    if not 0.0 <= omega <= 1.0:
        raise ConfigError(f"representation loss omega must be in [0, 1], got {omega}")
    if omega > 0 and teacher is None:
        raise ConfigError(
            f"representation loss with omega={omega} needs teacher embeddings; "
            "train with a teacher or set omega=0"
        )
    if omega < 1 and labels_onehot is None:
        raise ValueError(f"representation loss with omega={omega} needs labels_onehot")
    if student.dim() != 3:
        raise ValueError(f"student embeddings must be (B, N, Cs), got {tuple(student.shape)}")
    for name, other in (("labels_onehot", labels_onehot), ("teacher", teacher)):
        if other is not None and (other.dim() != 3 or other.shape[:2] != student.shape[:2]):
            raise ValueError(
                f"{name} must be (B, N, ·) = {tuple(student.shape[:2])} like the student, "
                f"got {tuple(other.shape)}"
            )


def representation_loss(
    student: Tensor,
    labels_onehot: Tensor | None,
    teacher: Tensor | None = None,
    omega: float = 0.5,
) -> Tensor:
    """MobileVOS's unified representation loss (relational KD + supervised contrastive).

    Each embedding row is L2-normalised, giving correlation matrices C_s = Z_s Z_sᵀ and
    C_t = Z_t Z_tᵀ (the channel counts Cs and Ct may differ: no projector is needed). With Y the
    one-hot labels, the target is ``T = ω·C_t + (1 − ω)·Y Yᵀ`` and, per frame,

        L = (1/N) · ( log2(‖C_s‖²_F + ε) − log2(‖C_s ⊙ T‖²_F + ε) ),

    averaged over B. The ratio ‖C_s ⊙ T‖² / ‖C_s‖² is the C_s²-weighted mean of T², so L ≥ 0
    (|T| ≤ 1) and L = 0 when C_s vanishes wherever |T| < 1. ω = 1 is pure relational
    distillation (labels unused), ω = 0 pure supervised contrastive learning (teacher unused, may
    be None). The teacher is a fixed target: no gradient flows into it.

    ε (:data:`LOG_EPS`) keeps the loss finite when a frame's matrices vanish: F.normalize maps an
    all-zero feature vector (e.g. dead ReLU features early in training) to a zero row, and with
    all rows zero both logs would be log2(0) = −inf, giving NaN. Otherwise ‖C_s‖² ≥ 1 (its
    diagonal), so ε shifts the loss by about 1e-6 relative. Adding the same ε to both norms keeps
    L ≥ 0.

    Args:
        student: student pixel embeddings (any scale; normalised here).
        labels_onehot: one-hot labels (K+1 classes; rows of void pixels all zero), or None
            when ``omega == 1``.
        teacher: teacher embeddings at the same pixels; required when ``omega > 0``.
        omega: weight of the teacher's correlations in the target, in [0, 1].

    Shapes:
        student: (B, N, Cs)
        labels_onehot: (B, N, K+1) float
        teacher: (B, N, Ct)
        returns: () scalar, float32
    """
    _check_repr_inputs(student, labels_onehot, teacher, omega)
    with autocast_off(student):
        c_s = _correlation(student)
        target = torch.zeros_like(c_s)
        if omega > 0 and teacher is not None:
            target = target + omega * _correlation(teacher.detach())
        if omega < 1 and labels_onehot is not None:
            y = labels_onehot.to(c_s.dtype)
            target = target + (1.0 - omega) * (y @ y.transpose(1, 2))
        full = c_s.pow(2).sum(dim=(1, 2))
        kept = (c_s * target).pow(2).sum(dim=(1, 2))
        per_frame = (torch.log2(full + LOG_EPS) - torch.log2(kept + LOG_EPS)) / c_s.shape[1]
        return per_frame.mean()


# --------------------------------------------------------------------------------------------
# Boundary-aware logit distillation
# --------------------------------------------------------------------------------------------


def logit_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor,
    band_width: int = 5,
    temperature: float = 1.0,
) -> Tensor:
    """KL(teacher ‖ student) of the output distributions, on the ground-truth boundary band.

    With p = softmax(teacher/τ) and q = softmax(student/τ) over background + K objects, each
    pixel contributes ``KL(p ‖ q) = Σ_c p_c (log p_c − log q_c)``; the loss is
    ``τ² · mean of KL over the pixels of boundary_band(labels, band_width)``, pooled over the
    whole batch. The τ² factor (Hinton et al., 2015) keeps the gradient's scale independent of τ:
    softening by τ shrinks the gradients of the KL by about 1/τ², so without it changing τ would
    also silently change the loss weight. The teacher is a fixed target (no gradient). Pixels off
    the band (and void pixels) do not affect the value; an empty band gives 0, still attached to
    the graph so that ``backward`` works.

    Shapes:
        student_logits: (B, K+1, H, W)
        teacher_logits: (B, K+1, H, W)
        labels: (B, H, W) integer, 255 void
        returns: () scalar, float32
    """
    if student_logits.dim() != 4 or student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student and teacher logits must both be (B, K+1, H, W), got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    _check_labels(labels)
    b, _, h, w = student_logits.shape
    if labels.shape != (b, h, w):
        raise ValueError(f"labels must be {(b, h, w)} like the logits, got {tuple(labels.shape)}")
    if temperature <= 0:
        raise ConfigError(f"distillation temperature must be > 0, got {temperature}")
    band = boundary_band(labels, band_width)
    with autocast_off(student_logits):
        log_q = F.log_softmax(_full(student_logits) / temperature, dim=1)
        log_p = F.log_softmax(_full(teacher_logits.detach()) / temperature, dim=1)
        kl = (log_p.exp() * (log_p - log_q)).sum(dim=1)  # B, H, W
        total = torch.where(band, kl, torch.zeros_like(kl)).sum()
        return temperature**2 * total / band.sum().clamp(min=1)


# --------------------------------------------------------------------------------------------
# Segmentation loss
# --------------------------------------------------------------------------------------------


class SegLoss(NamedTuple):
    """A segmentation loss value and the fraction of pixels it averaged over."""

    loss: Tensor
    p: float


@dataclass(frozen=True)
class BootstrappedCE:
    """STCN's bootstrapped cross-entropy: plain CE, then the hardest pixels only.

    Schedule of the kept fraction p: 1 before ``start_warm`` iterations; linear from 1 at
    ``start_warm`` down to ``top_p`` at ``end_warm``; ``top_p`` afterwards. The loss is the mean
    of the k = round(p · n) largest per-pixel cross-entropies (at least 1), where n counts the
    non-ignored pixels of the whole batch. Ignored pixels are left out of both the ranking and n
    (STCN ranks them as zeros), so at p = 1 the value is exactly ``F.cross_entropy`` with
    ``ignore_index`` and the schedule is continuous at ``start_warm``.

    The trainer passes the soft-aggregated logits (background + K objects). Log-probabilities work
    as well: cross-entropy applies log_softmax, which leaves log-probabilities unchanged.
    """

    start_warm: int = 20_000
    end_warm: int = 70_000
    top_p: float = 0.15
    ignore_index: int = VOID_LABEL

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"bootstrapped CE top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.start_warm <= self.end_warm:
            raise ConfigError(
                "bootstrapped CE needs 0 <= start_warm <= end_warm, got "
                f"{self.start_warm} and {self.end_warm}"
            )

    def fraction(self, iteration: int) -> float:
        """The fraction p of hardest pixels kept at ``iteration``."""
        if iteration < self.start_warm:
            return 1.0
        if iteration >= self.end_warm:
            return self.top_p
        progress = (iteration - self.start_warm) / (self.end_warm - self.start_warm)
        return 1.0 - (1.0 - self.top_p) * progress

    def __call__(self, logits: Tensor, target: Tensor, iteration: int) -> SegLoss:
        """Loss at ``iteration`` and the fraction p used.

        Shapes:
            logits: (B, K+1, H, W)
            target: (B, H, W) long in 0..K or ``ignore_index``
            returns: SegLoss(loss () float32, p)
        """
        if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(
                f"logits (B, K+1, H, W) and target (B, H, W) disagree: "
                f"{tuple(logits.shape)} and {tuple(target.shape)}"
            )
        ignored = target == self.ignore_index
        if bool(((target < 0) | (target >= logits.shape[1]))[~ignored].any()):
            raise ValueError(f"target labels must lie in 0..{logits.shape[1] - 1} or be ignored")
        p = self.fraction(iteration)
        with autocast_off(logits):
            pixel = F.cross_entropy(
                _full(logits), target.long(), ignore_index=self.ignore_index, reduction="none"
            )
        losses = pixel[~ignored]
        if losses.numel() == 0:
            return SegLoss(pixel.sum() * 0.0, p)
        k = max(1, round(p * losses.numel()))
        if k < losses.numel():
            losses = torch.topk(losses, k, sorted=False).values
        return SegLoss(losses.mean(), p)


# --------------------------------------------------------------------------------------------
# Weighted total
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms in the total (the paper gives none; ours default to 1)."""

    seg: float = 1.0
    repr: float = 1.0
    logit: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ConfigError(f"loss weight {f.name} must be >= 0, got {getattr(self, f.name)}")


def combine_losses(terms: Mapping[str, Tensor], weights: LossWeights | None = None) -> Tensor:
    """Weighted sum of the terms present, named like the :class:`LossWeights` fields.

    A term may be absent (e.g. no teacher, so no ``"logit"``); an unknown name is an error, so a
    typo cannot silently drop a term.

    Shapes:
        terms: name -> () scalar
        returns: () scalar
    """
    weights = weights or LossWeights()
    known = {f.name for f in dataclasses.fields(weights)}
    unknown = sorted(set(terms) - known)
    if unknown:
        raise ValueError(f"unknown loss terms {unknown}; expected some of {sorted(known)}")
    if not terms:
        raise ValueError("combine_losses needs at least one loss term")
    parts = [getattr(weights, name) * value for name, value in terms.items()]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
