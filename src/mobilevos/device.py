"""Device names and precision: parsed and checked before any work starts."""

from __future__ import annotations

import torch

from mobilevos.errors import ConfigError

AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device) -> torch.device:
    """Parse and check a device name ("cpu", "cuda", "cuda:1", "mps")."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device mps requested but Apple MPS is not available")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or mps")
    return device


def autocast_off(x: torch.Tensor) -> torch.autocast:
    """A region where autocast is off on ``x``'s device, for maths that must stay in fp32.

    Tensors on the ``meta`` device (shapes only: FLOPs are counted on them without computing)
    have no autocast of their own; the CPU's stands in.
    """
    device_type = "cpu" if x.device.type == "meta" else x.device.type
    return torch.autocast(device_type=device_type, enabled=False)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (for timing); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
