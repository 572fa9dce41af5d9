"""Training and distillation: ``mobilevos train --config configs/<recipe>.yaml key=value ...``.

One loop serves every stage (static images, synthetic videos, main) and every model (teacher and
students); a recipe says which data, which model, which teacher and which loss weights.

* The student unrolls each clip with :func:`~mobilevos.engine.unroll_clip` (through
  :class:`~mobilevos.engine.ClipModel`, what DistributedDataParallel wraps): the same verbs,
  readout and memory policy as streaming inference. It stays in eval mode, which freezes
  BatchNorm statistics as STCN does; gradients still flow to every weight, BatchNorm's affine
  parameters included.
* A teacher (ours, or STCN converted with ``mobilevos convert stcn``) runs frozen, in eval mode,
  over the same clip with its own memory; see :class:`~mobilevos.train.config.TeacherConfig`.
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
import logging
import math
import multiprocessing
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.config import MemoryConfig, ModelConfig, get_preset
from mobilevos.data.clips import ClipBatch, collate_clips
from mobilevos.data.sampling import max_skip_schedule
from mobilevos.data.training import build_training_dataset
from mobilevos.device import AUTOCAST_DTYPES, resolve_device
from mobilevos.distributed import DistributedContext, init_distributed, shutdown_distributed
from mobilevos.engine import ClipModel
from mobilevos.errors import CheckpointError, ConfigError
from mobilevos.io import atomic_path
from mobilevos.model.network import MobileVOS, build_model
from mobilevos.model.weights import load_state_dict_strict
from mobilevos.train.config import TrainConfig
from mobilevos.train.logger import RunLogger
from mobilevos.train.objective import compute_losses
from mobilevos.train.sampling import BatchPlan, PlannedRequests, PlannedSampler

log = logging.getLogger(__name__)

STATE_VERSION = 1


def _lr_factor(config: TrainConfig, step: int) -> float:
    optim = config.optim
    warm = min(1.0, (step + 1) / optim.warmup_steps) if optim.warmup_steps else 1.0
    start = optim.schedule_start
    progress = max(step - start, 0) / (config.steps - start)
    if optim.schedule == "step":
        return warm * optim.gamma ** sum(progress >= m for m in optim.milestones)
    if optim.schedule == "cosine":
        return warm * 0.5 * (1 + math.cos(math.pi * progress))
    return warm


def _worker_context() -> multiprocessing.context.BaseContext | None:
    """Start data-loader workers from a fork server, not by forking the trainer.

    Each ``run()`` (every evaluation interval of a campaign) makes a new loader. A worker forked
    from a trainer whose heap holds gigabytes of freed activation buffers shares those pages
    copy-on-write; as the trainer writes its next activations into them, every page is copied
    for the trainer and the worker is left holding the old one: on the default recipe the second
    loader's worker held 5.8 GiB beside a 6.3 GiB trainer, 11.9 GiB in all, against 7.0 GiB with
    workers forked from a small server process that imported torch once and hold only what they
    use (``scripts/train_memory.py``, ``results/train-memory/``). As with spawn (the default on
    Windows and macOS, where there is no fork server and this returns None), a script that
    trains with loader workers must guard its entry point with ``if __name__ == "__main__":``,
    since each worker imports the script's main module.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "mobilevos.data.training"])
    return context


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
        self.wrapped: torch.nn.Module = ClipModel(self.model)
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.wrapped, device_ids=ids)
        self.dataset = build_training_dataset(config.data, seed=config.seed)
        self.plan = BatchPlan(len(self.dataset), self.per_rank, self.context, config.seed)

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
        memory = teacher_config.memory or MemoryConfig.whole_clip(self.config.data.clip_length)
        return teacher, memory

    # --------------------------------------------------------------------------- one step
    def max_skip(self, step: int) -> int:
        return max_skip_schedule(step / self.config.steps, self.config.data)

    def _autocast(self):
        if self.config.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=AUTOCAST_DTYPES[self.config.amp])

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
        # Compared as configs, so that a state saved before a field was added still matches.
        # Where the objects are combined is not in the weights: a state saved under either
        # order (the shipped students' campaigns trained with STCN's) resumes under the other.
        saved = ModelConfig.from_dict(state["model_config"])
        if saved.replace(aggregate_at=self.model.config.aggregate_at) != self.model.config:
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
        sampler = PlannedSampler(
            self.plan, self.step * accum, total, lambda micro: self.max_skip(micro // accum)
        )
        loader = DataLoader(
            PlannedRequests(self.dataset),
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            collate_fn=functools.partial(collate_clips, max_objects=self.config.data.max_objects),
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
            multiprocessing_context=_worker_context() if self.config.num_workers else None,
        )
        group: list[ClipBatch] = []
        for batch in loader:
            group.append(batch)
            if len(group) == accum:
                yield group
                group = []

    def run(self, stop_at: int | None = None, until_seconds: float | None = None) -> Path | None:
        """Train to ``config.steps`` and return the final model checkpoint's path.

        ``stop_at`` ends the run early after that step (as an interruption would, returning
        None); ``--resume`` then continues from the last saved state. ``until_seconds`` ends it
        early after the step at which :attr:`train_seconds` reaches it, for runs compared at
        equal time (one process: ranks would disagree on the moment).
        """
        if until_seconds is not None and self.context.enabled:
            raise ConfigError("a time limit on training needs a single process")
        main = self.context.is_main
        logger = RunLogger(self.run_dir, self.config, self.step) if main else None
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
            out_of_time = until_seconds is not None and self.train_seconds >= until_seconds
            if (stop_at is not None and step >= stop_at) or out_of_time:
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


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Run training (joining a torchrun process group if launched by torchrun)."""
    context = init_distributed(resolve_device(config.device))
    try:
        return Trainer(config, resume=resume, context=context).run()
    finally:
        shutdown_distributed()
