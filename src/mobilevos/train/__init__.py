"""Training and distillation (``mobilevos train``), split by concern:

* :mod:`~mobilevos.train.config`: the recipe (YAML + ``key=value`` overrides) as dataclasses;
* :mod:`~mobilevos.train.sampling`: the deterministic data plan (resumable, rank-independent);
* :mod:`~mobilevos.train.objective`: one micro-batch's clip unrolls and loss terms;
* :mod:`~mobilevos.train.trainer`: the loop, optimiser, checkpoints, resume and validation;
* :mod:`~mobilevos.train.logger`: ``metrics.jsonl`` and TensorBoard.
"""

from mobilevos.train.config import TrainConfig, load_train_config
from mobilevos.train.objective import compute_losses
from mobilevos.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "compute_losses", "load_train_config", "train"]
