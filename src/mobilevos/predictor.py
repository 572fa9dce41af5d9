"""Streaming inference: one frame in, one label map out, with a memory that never grows.

    predictor = VOSPredictor.from_model(model, device="cpu")
    for t, frame in enumerate(frames):
        labels = predictor.step(frame, mask=first_mask if t == 0 else None)

The predictor is the session: it owns all per-video state (the object ids, the caller's, e.g.
3 and 7; the frame geometry; the masks the user gives; the
:class:`~mobilevos.memory.MemoryBank` and its write policy; the frame counter). The network runs
behind a :class:`~mobilevos.engine.FrameEngine`: PyTorch (:class:`~mobilevos.engine.TorchEngine`)
or an exported format's engine (:mod:`mobilevos.formats`), as
:func:`mobilevos.runtime.open_engine` builds them; nothing else differs. Frames of any size
are resized so their short side is ``size`` (480 by default, the DAVIS convention), padded to
the network stride, and results are returned at the input size.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mobilevos.config import MemoryConfig
from mobilevos.device import synchronize
from mobilevos.engine import FrameEngine, TorchEngine, segment_memory
from mobilevos.errors import ConfigError, InputError
from mobilevos.given import impose_masks
from mobilevos.io import VOID_LABEL
from mobilevos.memory import MemoryBank
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import STRIDE, MobileVOS, normalize_image


@dataclass(frozen=True)
class FrameGeometry:
    """How an input frame maps to the network's padded input.

    ``height``/``width``: the input; ``resized_*``: after scaling; ``padded_*``: after padding
    bottom/right to a multiple of the stride.
    """

    height: int
    width: int
    resized_height: int
    resized_width: int
    padded_height: int
    padded_width: int

    @classmethod
    def for_frame(
        cls, height: int, width: int, size: int | None, fixed: tuple[int, int] | None = None
    ) -> FrameGeometry:
        """Short side to ``size`` (None: unchanged), padded to the stride; or, for an engine
        with a fixed input size, the largest scale that fits ``fixed``, padded to it."""
        if fixed is not None:
            scale = min(fixed[0] / height, fixed[1] / width)
            rh, rw = max(round(height * scale), 1), max(round(width * scale), 1)
            return cls(height, width, min(rh, fixed[0]), min(rw, fixed[1]), *fixed)
        if size is None:
            rh, rw = height, width
        else:
            scale = size / min(height, width)
            rh, rw = max(round(height * scale), 1), max(round(width * scale), 1)
        ph, pw = (math.ceil(x / STRIDE) * STRIDE for x in (rh, rw))
        return cls(height, width, rh, rw, ph, pw)

    def to_network(self, x: Tensor, mode: str) -> Tensor:
        """Resize (B, C, H, W) to the resized size and zero-pad to the padded size."""
        if (self.resized_height, self.resized_width) != (self.height, self.width):
            kwargs = {"align_corners": False} if mode == "bilinear" else {}
            x = F.interpolate(
                x, size=(self.resized_height, self.resized_width), mode=mode, **kwargs
            )
        pad_h = self.padded_height - self.resized_height
        pad_w = self.padded_width - self.resized_width
        return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x

    def to_input(self, x: Tensor) -> Tensor:
        """Crop the padding from (B, C, H', W') and resize back to the input size (bilinear)."""
        x = x[..., : self.resized_height, : self.resized_width]
        if (self.resized_height, self.resized_width) != (self.height, self.width):
            x = F.interpolate(
                x, size=(self.height, self.width), mode="bilinear", align_corners=False
            )
        return x


class VOSPredictor:
    """Segment the objects of one video, frame by frame.

    Args:
        engine: what runs the network's verbs (:class:`~mobilevos.engine.FrameEngine`):
            :func:`mobilevos.runtime.open_engine` builds one for a model or an exported folder;
            :meth:`from_model` is the shortcut for PyTorch.
        size: short side of the network input (None keeps the input size). Engines with a
            fixed input size (exported graphs) fit every frame into that size instead.
        memory: override the network's memory policy (e.g. more pinned slots for videos whose
            objects enter late).
    """

    def __init__(
        self, engine: FrameEngine, size: int | None = 480, memory: MemoryConfig | None = None
    ) -> None:
        if isinstance(engine, MobileVOS):
            raise ConfigError(
                "VOSPredictor takes an engine: VOSPredictor.from_model(model, device=...) runs "
                "a model under PyTorch, VOSPredictor(mobilevos.open_engine(model)) on the "
                "fastest backend"
            )
        if size is not None and size < STRIDE:
            raise ConfigError(f"size must be at least {STRIDE}, got {size}")
        self.engine = engine
        self.device = self.engine.device
        self.size = size
        self.memory_config = memory or self.engine.memory
        self.engine.check_memory(self.memory_config)
        self.stage_seconds: dict[str, float] = {}
        self.timing = False
        self.reset()

    @classmethod
    def from_model(
        cls,
        model: MobileVOS,
        device: str | torch.device = "cpu",
        size: int | None = 480,
        memory: MemoryConfig | None = None,
        autocast: bool = False,
        autocast_dtype: torch.dtype = torch.float16,
        channels_last: bool | None = None,
    ) -> VOSPredictor:
        """A session that runs ``model`` under PyTorch (:meth:`TorchEngine.for_inference
        <mobilevos.engine.TorchEngine.for_inference>`: the model is put in eval mode and moved
        to ``device``; ``autocast`` on CUDA only, the readout staying fp32; ``channels_last``
        None takes it on the CPU only, where oneDNN runs it faster)."""
        engine = TorchEngine.for_inference(model, device, autocast, autocast_dtype, channels_last)
        return cls(engine, size=size, memory=memory)

    @property
    def timing(self) -> bool:
        """When True, each step() records its seconds per stage in :attr:`stage_seconds`
        (preprocess, encode_query, segment, encode_value, postprocess; synchronised with the
        device, so it slows an accelerator down a little)."""
        return self._timer is not _no_timer

    @timing.setter
    def timing(self, on: bool) -> None:
        self._timer = self._time_stage if on else _no_timer

    @contextlib.contextmanager
    def _time_stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        yield
        synchronize(self.device)
        self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - start

    def reset(self) -> None:
        """Forget the video: objects, memory and frame counter."""
        self.memory = MemoryBank(self.memory_config)
        self.frame_index = -1
        self._ids: list[int] = []
        self._geometry: FrameGeometry | None = None
        self._probabilities: Tensor | None = None

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, in the order of the probability channels 1..K."""
        return list(self._ids)

    @property
    def probabilities(self) -> Tensor | None:
        """Last frame's (K+1, H, W) float probabilities at input size: channel 0 is background,
        channel i is ``object_ids[i - 1]``."""
        return self._probabilities

    def remove_objects(self, ids: list[int]) -> None:
        """Stop tracking these object ids (unknown ids are an error)."""
        unknown = [i for i in ids if i not in self._ids]
        if unknown:
            raise ConfigError(f"not tracking objects {unknown}; tracking {self._ids}")
        self.memory.remove_objects([self._ids.index(i) for i in ids])
        self._ids = [i for i in self._ids if i not in ids]

    @torch.inference_mode()
    def step(
        self, frame: np.ndarray | Tensor, mask: np.ndarray | Tensor | None = None
    ) -> np.ndarray:
        """Segment the next frame.

        Args:
            frame: (H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1].
            mask: optional (H, W) label map for this frame: objects it contains are set to it
                (new ids start being tracked here); 0 is background; 255 is void (ignored).
        Returns:
            (H, W) uint8 label map with the caller's ids (0 background).
        """
        self.stage_seconds = {}
        with self._timer("preprocess"):
            image = self._frame_tensor(frame)
        height, width = image.shape[-2:]
        if self._geometry is None or (self._geometry.height, self._geometry.width) != (
            height,
            width,
        ):
            if self._geometry is not None:
                raise InputError(
                    None,
                    f"frame size changed from {self._geometry.height}x"
                    f"{self._geometry.width} to {height}x{width} mid-video",
                )
            self._geometry = FrameGeometry.for_frame(
                height, width, self.size, self.engine.input_size
            )
        geometry = self._geometry
        self.frame_index += 1
        given = None if mask is None else self._prepare_mask(mask, height, width)
        if given is not None and not given.channels:
            given = None  # a later mask without objects sets nothing: an ordinary frame
        if given is None and not self._ids:
            raise InputError(None, "the first frame needs a mask with at least one object")

        timer = self._timer
        objects = len(self._ids) + (len(given.new_ids) if given is not None else 0)
        self._check_object_count(objects)
        self.engine.prepare((geometry.padded_height, geometry.padded_width), objects)
        with timer("preprocess"):
            net_image = normalize_image(geometry.to_network(image, "bilinear"))
        with timer("encode_query"):
            query = self.engine.encode_query(net_image)
        with timer("segment"):
            prob = self._predict(query, net_image.shape[-2:])
        with timer("preprocess"):  # the given mask, at network size
            if given is not None:
                self.memory.add_objects(len(given.new_ids))
                self._ids.extend(given.new_ids)
                net_given = geometry.to_network(given.onehot[None], "area")[0]
                claimed = given.claimed[None, None].float()
                prob = impose_masks(
                    prob, net_given, given.channels, geometry.to_network(claimed, "area")[0, 0]
                )
        slot = self.memory.slot_for(self.frame_index, annotated=given is not None)
        with timer("encode_value"):
            if slot is not None:
                value = self.engine.encode_value(net_image, query, prob[None, 1:])
                self.memory.write(slot, self.frame_index, query.key, value)
        with timer("postprocess"):
            out = geometry.to_input(prob[None].float())[0]
            if given is not None:
                out = impose_masks(out, given.onehot, given.channels, given.claimed.float())
            self._probabilities = out
            ids = torch.tensor([0, *self._ids], dtype=torch.uint8, device=out.device)
            # max().indices, not argmax(): the same first-maximum rule, but argmax over dim 0
            # took 80 ms at 480x854 on the CPU (torch 2.14) against 4 ms.
            labels = ids[out.max(dim=0).indices].cpu().numpy()
        return labels

    def _predict(self, query: QueryFeatures, size: tuple[int, int]) -> Tensor:
        """(K+1, H', W') probabilities for the tracked objects (all background if none yet)."""
        k = len(self._ids)
        if self.memory.is_empty or k == 0:
            prob = query.key.new_zeros(k + 1, *size, dtype=torch.float32)
            prob[0] = 1
            return prob
        return segment_memory(self.engine, query, self.memory).probabilities[0].float()

    def _check_object_count(self, count: int) -> None:
        limit = self.engine.max_objects
        if limit is not None and count > limit:
            raise InputError(None, f"{count} objects, but this engine takes at most {limit}")

    def _frame_tensor(self, frame: np.ndarray | Tensor) -> Tensor:
        x = torch.as_tensor(np.asarray(frame) if not isinstance(frame, Tensor) else frame)
        if x.ndim != 3 or x.shape[-1] != 3:
            raise InputError(None, f"frame must be (H, W, 3) RGB, got shape {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.float() / 255
        elif x.is_floating_point():
            x = x.float()
        else:
            raise InputError(None, f"frame must be uint8 or float, got {x.dtype}")
        return x.permute(2, 0, 1)[None].to(self.device)

    def _prepare_mask(self, mask: np.ndarray | Tensor, height: int, width: int) -> _GivenMask:
        labels = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
        if tuple(labels.shape) != (height, width):
            raise InputError(
                None, f"mask is {'x'.join(map(str, labels.shape))} but frames are {height}x{width}"
            )
        labels = labels.to(self.device, torch.long)
        present = [int(i) for i in torch.unique(labels).tolist() if i not in (0, VOID_LABEL)]
        if not present and not self._ids:
            raise InputError(None, "no object in mask")
        if any(i < 0 or i > VOID_LABEL for i in present):
            raise InputError(None, f"mask ids must be in 0..255, got {present}")
        new_ids = [i for i in present if i not in self._ids]
        ids = self._ids + new_ids
        channels = [ids.index(i) + 1 for i in present]
        onehot = torch.zeros(len(ids) + 1, height, width, device=self.device)
        for channel, object_id in zip(channels, present, strict=True):
            onehot[channel] = labels == object_id
        # The given mask speaks for every pixel that is not void: its objects are exactly
        # there; pixels it marks as background do not belong to its objects.
        claimed = labels != VOID_LABEL
        return _GivenMask(new_ids, channels, onehot, claimed)

    def track(self, frames: Iterator[np.ndarray], first_mask: np.ndarray) -> Iterator[np.ndarray]:
        """Convenience generator: segment ``frames`` given the first frame's mask."""
        for t, frame in enumerate(frames):
            yield self.step(frame, mask=first_mask if t == 0 else None)


@contextlib.contextmanager
def _no_timer(name: str) -> Iterator[None]:
    yield


@dataclass
class _GivenMask:
    """A user mask prepared for one frame: ``onehot`` (K+1, H, W) over all tracked objects
    (after adding ``new_ids``), ``channels`` the probability channels the mask sets, and
    ``claimed`` (H, W) bool, pixels where the mask is not void."""

    new_ids: list[int]
    channels: list[int]
    onehot: Tensor
    claimed: Tensor
