"""mobilevos: real-time semi-supervised video object segmentation with finite memory.

Public API::

    import mobilevos as mv
    model = mv.load_model("model.ckpt")          # or a preset name: mv.load_model("mobilevos-mbv2")
    predictor = mv.VOSPredictor(model, device="cpu")
    labels = predictor.step(frame, mask=first_mask)

    mv.export_onnx(model, "graphs/", size=(480, 864))          # or: mobilevos export
    predictor = mv.VOSPredictor(mv.OrtEngine("graphs/"))       # the same session on ONNX Runtime

The method follows Miles et al., "MobileVOS: Real-Time Video Object Segmentation - Contrastive
Learning meets Knowledge Distillation", CVPR 2023 (arXiv:2303.07815).

Names are imported lazily so that ``import mobilevos`` (and commands such as ``mobilevos score``
that need no network) do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "mobilevos.checkpoint",
    "save_checkpoint": "mobilevos.checkpoint",
    "MemoryConfig": "mobilevos.config",
    "ModelConfig": "mobilevos.config",
    "available_presets": "mobilevos.config",
    "get_preset": "mobilevos.config",
    "MobileVOSError": "mobilevos.errors",
    "MobileVOS": "mobilevos.model.network",
    "build_model": "mobilevos.model.network",
    "VOSPredictor": "mobilevos.predictor",
    "TorchEngine": "mobilevos.engine",
    "OrtEngine": "mobilevos.engine.ort_engine",
    "export_onnx": "mobilevos.export",
}

__all__ = [
    "MemoryConfig",
    "MobileVOS",
    "MobileVOSError",
    "ModelConfig",
    "OrtEngine",
    "TorchEngine",
    "VOSPredictor",
    "__version__",
    "available_presets",
    "build_model",
    "export_onnx",
    "get_preset",
    "load_model",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from mobilevos.checkpoint import load_model, save_checkpoint
    from mobilevos.config import MemoryConfig, ModelConfig, available_presets, get_preset
    from mobilevos.engine import TorchEngine
    from mobilevos.engine.ort_engine import OrtEngine
    from mobilevos.errors import MobileVOSError
    from mobilevos.export import export_onnx
    from mobilevos.model.network import MobileVOS, build_model
    from mobilevos.predictor import VOSPredictor


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mobilevos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
