"""The PyTorch engine: runs a :class:`~mobilevos.model.network.MobileVOS` on any device.

It serves streaming inference (under ``torch.inference_mode`` in the predictor) and training
unrolls (with autograd) with the same code. Two inference options, both measured by
``mobilevos bench`` and covered by the parity tests:

* ``autocast``: run the networks in fp16/bf16 (CUDA only; the readout and the soft aggregation
  stay fp32);
* ``channels_last``: convolution weights and the input images in channels-last layout, which
  oneDNN's CPU convolutions run faster (the lite student's frame 1.28x faster at 480p).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.device import resolve_device
from mobilevos.errors import ConfigError
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import MobileVOS, Segmentation


class TorchEngine:
    """A :class:`~mobilevos.engine.base.FrameEngine` over a PyTorch model.

    Args:
        model: the network. Its parameters' device is the engine's device: move the model
            first (``VOSPredictor`` does) or let the trainer place it.
        autocast_dtype: torch.float16 or torch.bfloat16 to run under autocast (CUDA), or None.
        channels_last: put the model's weights (and every input image) in channels-last
            layout. The caller owns the model: this changes it in place.
    """

    max_objects: int | None = None
    input_size: tuple[int, int] | None = None

    def __init__(
        self,
        model: MobileVOS,
        autocast_dtype: torch.dtype | None = None,
        channels_last: bool = False,
    ) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        if autocast_dtype is not None and self.device.type != "cuda":
            raise ConfigError("autocast is supported on CUDA only")
        self.autocast_dtype = autocast_dtype
        self.channels_last = channels_last
        if channels_last:
            model.to(memory_format=torch.channels_last)

    @classmethod
    def for_inference(
        cls,
        model: MobileVOS,
        device: str | torch.device = "cpu",
        autocast: bool = False,
        autocast_dtype: torch.dtype = torch.float16,
        channels_last: bool | None = None,
    ) -> TorchEngine:
        """An engine that runs ``model`` in eval mode on ``device`` (the model is moved there).

        ``autocast``: run under autocast in ``autocast_dtype`` (CUDA only); ``channels_last``:
        None takes it on the CPU only, where oneDNN runs it faster.
        """
        dev = resolve_device(device)
        if autocast and dev.type != "cuda":
            raise ConfigError("autocast is supported on CUDA only")
        if channels_last is None:
            channels_last = dev.type == "cpu"
        return cls(model.eval().to(dev), autocast_dtype if autocast else None, channels_last)

    @property
    def memory(self) -> MemoryConfig:
        return self.model.config.memory

    def check_memory(self, memory: MemoryConfig) -> None:
        """Any capacity works: shapes follow the bank."""

    def prepare(self, size: tuple[int, int], objects: int) -> None:
        """Nothing to prepare: any size and object count run."""

    def encode_query(self, image: Tensor) -> QueryFeatures:
        with self._autocast():
            return self.model.encode_query(self._layout(image))

    def encode_value(self, image: Tensor, query: QueryFeatures, masks: Tensor) -> Tensor:
        with self._autocast():
            return self.model.encode_value(self._layout(image), query, masks)

    def segment(
        self,
        query: QueryFeatures,
        keys: Tensor,
        values: Tensor,
        valid: Tensor,
        present: Tensor | None = None,
    ) -> Segmentation:
        with self._autocast():
            return self.model.decode(query, self.model.read(query, keys, values, valid), present)

    def _layout(self, image: Tensor) -> Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)
