"""The training objective of one micro-batch: the student's (and teacher's) clip unrolls and the
named loss terms of ``L = L_seg + λ_repr L_repr + λ_logit L_logit`` (:mod:`mobilevos.losses`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.data.clips import ClipBatch
from mobilevos.engine import TorchEngine, unroll_clip
from mobilevos.losses import (
    BootstrappedCE,
    LossWeights,
    combine_losses,
    gather_embeddings,
    logit_distillation_loss,
    one_hot_labels,
    representation_loss,
    sample_pixels,
)
from mobilevos.model.network import MobileVOS, normalize_image
from mobilevos.train.config import LossConfig


def representation_term(
    student_hidden: Tensor,
    teacher_hidden: Tensor | None,
    labels: Tensor,
    present: Tensor,
    config: LossConfig,
    generator: torch.Generator,
) -> Tensor | None:
    """The unified representation loss over every (clip, frame, present object).

    Decoding is per object (STCN family), so each object's decoder features are one embedding
    space and the labels are that object against everything else (void never sampled). Features
    are the decoder's last hidden map (stride 4) average-pooled to stride 8.

    Shapes:
        student_hidden: (B, T', K, Ds, H/4, W/4); teacher_hidden: (B, T', K, Dt, H/4, W/4)
        labels: (B, T', H, W) in 0..K or 255; present: (B, K) bool
    """
    b, t, k = student_hidden.shape[:3]
    keep = present[:, None, :].expand(b, t, k).reshape(-1)
    if not keep.any():
        return None
    obj = torch.arange(1, k + 1, device=labels.device)
    per_object = (labels[:, :, None] == obj[None, None, :, None, None]).long()
    per_object = per_object.masked_fill((labels == 255)[:, :, None], 255)
    per_object = per_object.flatten(0, 2)[keep]
    features = F.avg_pool2d(student_hidden.flatten(0, 2)[keep].float(), 2)
    size = features.shape[-2:]
    small = F.interpolate(per_object[:, None].float(), size=size, mode="nearest-exact")[:, 0]
    small = small.long()
    usable = (small != 255).flatten(1).any(dim=1)
    if not usable.any():
        return None
    small, features = small[usable], features[usable]
    index = sample_pixels(
        small, config.num_samples, config.boundary_fraction, config.sample_band, generator
    )
    z_student = gather_embeddings(features, index)
    y = one_hot_labels(small, index, 2)
    z_teacher = None
    if teacher_hidden is not None:
        teacher = F.avg_pool2d(teacher_hidden.flatten(0, 2)[keep][usable].float(), 2)
        z_teacher = gather_embeddings(teacher, index)
    return representation_loss(z_student, y, z_teacher, config.omega)


def compute_losses(
    student: torch.nn.Module,
    teacher: MobileVOS | None,
    batch: ClipBatch,
    config: LossConfig,
    step: int,
    generator: torch.Generator,
    teacher_memory: MemoryConfig | None = None,
    student_memory: MemoryConfig | None = None,
) -> dict[str, Tensor]:
    """Named loss terms of one micro-batch; ``"total"`` is their weighted sum.

    ``student`` unrolls a clip when called (a :class:`~mobilevos.engine.ClipModel`, or
    DistributedDataParallel around one); the frozen ``teacher`` is unrolled here, without
    gradients, with its own memory.
    """
    frames = normalize_image(batch.frames)
    out = student(frames, batch.first_masks, batch.present, student_memory)
    target = batch.labels[:, 1:]
    seg = BootstrappedCE(config.bootstrap_start, config.bootstrap_end, config.bootstrap_top_p)
    terms = {"seg": seg(out.logits.flatten(0, 1), target.flatten(0, 1), step).loss}
    use_teacher = teacher is not None and (
        config.logit_weight > 0 or (config.repr_weight > 0 and config.omega > 0)
    )
    teacher_out = None
    if use_teacher:
        with torch.no_grad():
            teacher_out = unroll_clip(
                TorchEngine(teacher), frames, batch.first_masks, batch.present, teacher_memory
            )
    if config.repr_weight > 0 and (config.omega == 0 or teacher_out is not None):
        term = representation_term(
            out.hidden,
            teacher_out.hidden if teacher_out is not None and config.omega > 0 else None,
            target,
            batch.present,
            config,
            generator,
        )
        if term is not None:
            terms["repr"] = term
    if teacher_out is not None and config.logit_weight > 0:
        terms["logit"] = logit_distillation_loss(
            out.logits.flatten(0, 1),
            teacher_out.logits.flatten(0, 1),
            target.flatten(0, 1),
            config.logit_band,
            config.temperature,
        )
    weights = LossWeights(config.seg_weight, config.repr_weight, config.logit_weight)
    terms["total"] = combine_losses(terms, weights)
    return terms
