"""mobilevos: real-time semi-supervised video object segmentation with finite memory.

Public API::

    import mobilevos as mv
    model = mv.load_model("model.ckpt")          # or a preset name: mv.load_model("mobilevos-mbv2")
    predictor = mv.VOSPredictor.from_model(model, device="cpu")
    labels = predictor.step(frame, mask=first_mask)

    segmenter = mv.PromptSegmenter()             # no mask file? a box or a click instead
    first_mask = segmenter.label_map(frame, [mv.Box(40, 30, 200, 180), mv.Click(320, 90)])

    mv.export_onnx(model, "graphs/", size=(480, 864))          # or: mobilevos export
    predictor = mv.VOSPredictor(mv.OrtEngine("graphs/"))       # the same session on ONNX Runtime
    mv.export_model(model, "phone/", format="executorch")      # ExecuTorch (XNNPACK), for apps
    predictor = mv.VOSPredictor(mv.ExecuTorchEngine("phone/"))
    predictor = mv.VOSPredictor(mv.open_engine(model))         # the fastest runtime that loads

The method follows Miles et al., "MobileVOS: Real-Time Video Object Segmentation - Contrastive
Learning meets Knowledge Distillation", CVPR 2023 (arXiv:2303.07815).

Names are imported lazily so that ``import mobilevos`` (and commands such as ``mobilevos score``
that need no network) do not pay for importing torch. ``__version__`` too is read on first use,
from the installed package's metadata (:mod:`mobilevos.version`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "__version__": "mobilevos.version",
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
    "open_engine": "mobilevos.runtime",
    "CachedExportEngine": "mobilevos.runtime",
    "OrtEngine": "mobilevos.formats.onnx",
    "ExecuTorchEngine": "mobilevos.formats.executorch",
    "export_onnx": "mobilevos.formats.export",
    "export_model": "mobilevos.formats.export",
    "Box": "mobilevos.prompts",
    "Click": "mobilevos.prompts",
    "PromptSegmenter": "mobilevos.prompts",
}

__all__ = [
    "Box",
    "CachedExportEngine",
    "Click",
    "ExecuTorchEngine",
    "MemoryConfig",
    "MobileVOS",
    "MobileVOSError",
    "ModelConfig",
    "OrtEngine",
    "PromptSegmenter",
    "TorchEngine",
    "VOSPredictor",
    "__version__",
    "available_presets",
    "build_model",
    "export_model",
    "export_onnx",
    "get_preset",
    "load_model",
    "open_engine",
    "save_checkpoint",
]

if TYPE_CHECKING:
    from mobilevos.checkpoint import load_model, save_checkpoint
    from mobilevos.config import MemoryConfig, ModelConfig, available_presets, get_preset
    from mobilevos.engine import TorchEngine
    from mobilevos.errors import MobileVOSError
    from mobilevos.formats.executorch import ExecuTorchEngine
    from mobilevos.formats.export import export_model, export_onnx
    from mobilevos.formats.onnx import OrtEngine
    from mobilevos.model.network import MobileVOS, build_model
    from mobilevos.predictor import VOSPredictor
    from mobilevos.prompts import Box, Click, PromptSegmenter
    from mobilevos.runtime import CachedExportEngine, open_engine
    from mobilevos.version import __version__


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mobilevos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
