"""Training and distillation: ``mobilevos train --config configs/<recipe>.yaml key=value ...``.

One loop serves every stage (static images, synthetic videos, main) and every model (teacher and
students); a recipe says which data, which model, which teacher and which loss weights.

* The student unrolls each clip with :meth:`MobileVOS.forward` (the same verbs and memory code as
  streaming inference). It stays in eval mode, which freezes BatchNorm statistics as STCN does;
  gradients still flow to every weight, BatchNorm's affine parameters included.
* A teacher (ours, or STCN converted with ``mobilevos convert stcn``) runs frozen, in eval mode,
  over the same clip with its own memory; see :class:`~mobilevos.train_config.TeacherConfig`.
* Every sample is a pure function of (seed, epoch, index, max skip) and the pixel sampling of
  the representation loss of (seed, step), so a run is reproducible and ``--resume`` continues
  exactly: on CPU, a resumed run reproduces the uninterrupted loss curve.
* Under ``torchrun``, each rank takes ``batch_size / (world_size * grad_accum)`` clips of every
  micro-batch, so the effective batch does not depend on the number of processes; only rank 0
  writes logs and checkpoints.

Outputs in ``out_dir``: ``last.pt`` (resumable state, every ``checkpoint_every`` steps),
``final.ckpt`` (a normal model checkpoint for ``mobilevos segment``), ``metrics.jsonl``,
TensorBoard event files and a copy of the resolved config.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.config import MemoryConfig, get_preset
from mobilevos.data.clips import ClipBatch, collate_clips, max_skip_schedule
from mobilevos.data.training import build_training_dataset
from mobilevos.distributed import DistributedContext, init_distributed, shutdown_distributed
from mobilevos.errors import CheckpointError, ConfigError
from mobilevos.io import atomic_path
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
from mobilevos.model.network import MobileVOS, build_model, normalize_image
from mobilevos.model.weights import load_state_dict_strict
from mobilevos.predictor import resolve_device
from mobilevos.train_config import LossConfig, TrainConfig

log = logging.getLogger(__name__)

STATE_VERSION = 1


class _Request(Dataset):
    """Map ``(index, epoch, max_skip)`` requests onto a training dataset.

    Carrying epoch and max skip in the request (rather than as dataset state) keeps DataLoader
    workers, ranks and resumed runs in agreement without re-creating iterators.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, request: tuple[int, int, int]):
        index, epoch, max_skip = request
        self.dataset.set_epoch(epoch)
        self.dataset.set_max_skip(max_skip)
        return self.dataset[index]


class _BatchPlan:
    """Which dataset indices each micro-batch of each rank uses, as a pure function of position.

    Micro-batch ``m`` of the run lies in epoch ``m // per_epoch``; within an epoch the dataset is
    permuted with seed ``(seed, epoch)`` and cut into consecutive groups of ``world * per_rank``
    indices, of which rank ``r`` takes the ``r``-th block of ``per_rank``. One process with
    batch ``n * per_rank`` therefore sees exactly the union of ``n`` ranks' batches.
    """

    def __init__(self, size: int, per_rank: int, context: DistributedContext, seed: int) -> None:
        self.size, self.per_rank, self.context, self.seed = size, per_rank, context, seed
        self.per_epoch = size // (per_rank * context.world_size)
        if self.per_epoch == 0:
            raise ConfigError(
                f"dataset has {size} samples, fewer than one batch of "
                f"{per_rank * context.world_size}"
            )
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def indices(self, micro: int) -> tuple[int, list[int]]:
        epoch, position = divmod(micro, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=g)
        start = (position * self.context.world_size + self.context.rank) * self.per_rank
        return epoch, self._perm[start : start + self.per_rank].tolist()


class _PlannedSampler:
    """A batch sampler yielding the plan's requests from micro-batch ``start`` on."""

    def __init__(self, plan: _BatchPlan, start: int, total: int, skip_of_micro) -> None:
        self.plan, self.start, self.total, self.skip_of_micro = plan, start, total, skip_of_micro

    def __iter__(self):
        for micro in range(self.start, self.total):
            epoch, indices = self.plan.indices(micro)
            skip = self.skip_of_micro(micro)
            yield [(i, epoch, skip) for i in indices]

    def __len__(self) -> int:
        return self.total - self.start


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
    """Named loss terms of one micro-batch; ``"total"`` is their weighted sum."""
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
            teacher_out = teacher(frames, batch.first_masks, batch.present, teacher_memory)
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


def _lr_factor(config: TrainConfig, step: int) -> float:
    optim = config.optim
    warm = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps else 1.0
    progress = step / config.steps
    if optim.schedule == "step":
        return warm * optim.gamma ** sum(progress >= m for m in optim.milestones)
    if optim.schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * progress))
    return warm


class Trainer:
    """Owns the model, optimiser, data plan and logs of one run (see the module docstring)."""

    def __init__(
        self, config: TrainConfig, resume: bool = False, context: DistributedContext | None = None
    ) -> None:
        self.config = config
        device = resolve_device(config.device)
        self.context = context or DistributedContext()
        self.device = self.context.device(device)
        self.run_dir = Path(config.out_dir)
        if config.amp != "none" and self.device.type != "cuda":
            raise ConfigError(f"amp={config.amp} needs a CUDA device")
        world = self.context.world_size
        if config.batch_size % (world * config.grad_accum):
            raise ConfigError(
                f"batch_size {config.batch_size} is not divisible by world size {world} x "
                f"grad_accum {config.grad_accum}"
            )
        self.per_rank = config.batch_size // (world * config.grad_accum)
        torch.manual_seed(config.seed)
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        self.model = self._build_student().to(self.device, memory_format=self.memory_format).eval()
        self.model.activation_checkpointing = config.activation_checkpointing
        self.teacher, self.teacher_memory = self._build_teacher()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            params, lr=config.optim.lr, weight_decay=config.optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _lr_factor(config, step)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
        self.step = 0
        self.train_seconds = 0.0  # wall time spent in run(), kept across resumes
        if resume:
            self._load_state()
        self.wrapped = self.model
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids)
        self.dataset = build_training_dataset(config.data, seed=config.seed)
        self.plan = _BatchPlan(len(self.dataset), self.per_rank, self.context, config.seed)

    # ------------------------------------------------------------------------------ set-up
    def _build_student(self) -> MobileVOS:
        preset = get_preset(self.config.model)
        if self.config.model_overrides:
            try:
                preset = preset.replace(**self.config.model_overrides)
            except TypeError as exc:
                raise ConfigError(f"model_overrides: {exc}") from None
        if self.config.init:
            return load_model(self.config.init, expected_config=preset)
        return build_model(preset)

    def _build_teacher(self) -> tuple[MobileVOS | None, MemoryConfig | None]:
        teacher_config = self.config.teacher
        if teacher_config is None or not teacher_config.checkpoint:
            return None, None
        teacher = load_model(teacher_config.checkpoint)
        teacher = teacher.to(self.device, memory_format=self.memory_format).eval()
        teacher.requires_grad_(False)
        memory = teacher_config.memory or MemoryConfig(
            pinned=1, recent=max(self.config.data.clip_length - 1, 1), write_every=1
        )
        return teacher, memory

    # --------------------------------------------------------------------------- one step
    def max_skip(self, step: int) -> int:
        return max_skip_schedule(step / self.config.steps, self.config.data)

    def _autocast(self):
        if self.config.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def train_step(self, batches: list[ClipBatch]) -> dict[str, float]:
        """One optimiser step over ``grad_accum`` micro-batches; returns the mean loss terms."""
        self.optimizer.zero_grad(set_to_none=True)
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed * 7919 + self.step)
        sums: dict[str, float] = {}
        for i, batch in enumerate(batches):
            batch = ClipBatch(*(x.to(self.device, non_blocking=True) for x in batch))
            last = i == len(batches) - 1
            sync = contextlib.nullcontext()
            if self.context.enabled and not last:
                sync = self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    terms = compute_losses(
                        self.wrapped,
                        self.teacher,
                        batch,
                        self.config.loss,
                        self.step,
                        generator,
                        self.teacher_memory,
                        self.config.memory,
                    )
                self.scaler.scale(terms["total"] / len(batches)).backward()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / len(batches)
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.grad_clip > 0:
            sums["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
            )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return sums

    # ------------------------------------------------------------------------------ state
    def state_path(self) -> Path:
        return self.run_dir / "last.pt"

    def save_state(self) -> None:
        """Write the resumable state atomically (rank 0 only)."""
        if not self.context.is_main:
            return
        payload = {
            "format_version": STATE_VERSION,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "train_config": self.config.to_dict(),
            "model_config": self.model.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }
        with atomic_path(self.state_path()) as tmp:
            torch.save(payload, tmp)

    def _load_state(self) -> None:
        path = self.state_path()
        if not path.is_file():
            raise CheckpointError(f"{path}: nothing to resume (no last.pt in out_dir)")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable training state ({exc})") from None
        if state.get("format_version") != STATE_VERSION:
            raise CheckpointError(f"{path}: unsupported training state version")
        if state["model_config"] != self.model.config.to_dict():
            raise CheckpointError(
                f"{path}: saved for another model ({state['model_config']['name']})"
            )
        load_state_dict_strict(self.model, state["model"], str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        log.info("resumed %s at step %d", path, self.step)

    # ------------------------------------------------------------------------------- loop
    def batches(self):
        """Micro-batches from the current step on, grouped per optimiser step."""
        accum = self.config.grad_accum
        total = self.config.steps * accum
        sampler = _PlannedSampler(
            self.plan, self.step * accum, total, lambda micro: self.max_skip(micro // accum)
        )
        loader = DataLoader(
            _Request(self.dataset),
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            collate_fn=functools.partial(collate_clips, max_objects=self.config.data.max_objects),
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        group: list[ClipBatch] = []
        for batch in loader:
            group.append(batch)
            if len(group) == accum:
                yield group
                group = []

    def run(self, stop_at: int | None = None) -> Path | None:
        """Train to ``config.steps`` and return the final model checkpoint's path.

        ``stop_at`` ends the run early after that step (as an interruption would, returning
        None); ``--resume`` then continues from the last saved state.
        """
        main = self.context.is_main
        logger = _RunLogger(self.run_dir, self.config, self.step) if main else None
        bar = tqdm(total=self.config.steps, initial=self.step, unit="step", disable=not main)
        started = time.perf_counter()
        clips = 0
        tick = time.perf_counter()
        for group in self.batches():
            terms = self.train_step(group)
            self.train_seconds += time.perf_counter() - tick  # data wait + step, not logging
            clips += self.config.batch_size
            bar.update(1)
            bar.set_postfix(loss=f"{terms['total']:.4f}")
            step = self.step
            if logger is not None and (
                step % self.config.log_every == 0 or step == self.config.steps
            ):
                elapsed = time.perf_counter() - started
                logger.log(
                    step,
                    {
                        **terms,
                        "lr": self.scheduler.get_last_lr()[0],
                        "clips_per_s": clips / max(elapsed, 1e-9),
                        "max_skip": self.max_skip(step - 1),
                    },
                )
                started, clips = time.perf_counter(), 0
            if step % self.config.checkpoint_every == 0 or step == self.config.steps:
                self.save_state()
            val = self.config.val
            if logger is not None and val.root and val.every and step % val.every == 0:
                logger.log(step, {"val_jf": self.validate()})
            tick = time.perf_counter()
            if stop_at is not None and step >= stop_at:
                bar.close()
                if logger is not None:
                    logger.close()
                return None
        bar.close()
        final = self.run_dir / "final.ckpt"
        if main:
            save_checkpoint(
                self.model,
                final,
                meta={
                    "steps": self.step,
                    "train_seconds": round(self.train_seconds, 1),
                    "train_config": self.config.to_dict(),
                },
            )
            logger.close()
        self.context.barrier()
        return final

    def validate(self) -> float:
        """J&F of the current model on the validation set (DAVIS layout), through the evaluator."""
        from mobilevos.evaluate import run_eval

        val = self.config.val
        out = self.run_dir / "val" / f"step-{self.step:07d}"
        result = run_eval(
            self.model,
            val.dataset,
            val.root,
            val.split,
            out,
            str(self.device),
            val.size,
            val.sequences,
            workers=1,
            progress=False,
        )
        return float(result.global_row.jf_mean)


class _RunLogger:
    """metrics.jsonl + TensorBoard scalars (rank 0)."""

    def __init__(self, run_dir: Path, config: TrainConfig, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(run_dir / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        path = run_dir / "metrics.jsonl"
        # A resumed run repeats the steps after its last checkpoint: drop their old lines.
        kept = []
        if start_step > 0 and path.is_file():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= start_step
            ]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))
        self.metrics = path.open("a")
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)

    def log(self, step: int, values: dict[str, Any]) -> None:
        self.metrics.write(json.dumps({"step": step, **values}) + "\n")
        self.metrics.flush()
        for name, value in values.items():
            self.writer.add_scalar(name if "/" in name else f"train/{name}", value, step)

    def close(self) -> None:
        self.metrics.close()
        self.writer.close()


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Run training (joining a torchrun process group if launched by torchrun)."""
    context = init_distributed(resolve_device(config.device))
    try:
        return Trainer(config, resume=resume, context=context).run()
    finally:
        shutdown_distributed()
