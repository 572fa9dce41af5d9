"""Export: the video model as one fixed-shape program per verb in a runtime format, plus a
manifest, verified before it is written.

The verbs (:mod:`mobilevos.formats.graphs`) are written by the format's module
(:data:`~mobilevos.formats.registry.FORMATS`): ONNX graphs (``.onnx``, for ONNX Runtime and the
browser) or ExecuTorch programs lowered to XNNPACK (``.pte``, the runtime phone apps embed),
with the same verbs, names, shapes and manifest.

The memory bank stays on the host (:class:`~mobilevos.memory.MemoryBank`, the same code as the
PyTorch predictor): ``segment`` takes the bank's tensors at their fixed capacity S and a
per-object validity mask, so one program serves every frame of every video. K is fixed at
export (``max_objects``); sessions with fewer objects pad with absent objects (``present``
False, no valid slot), which the readout and the soft aggregation ignore.

``manifest.json`` describes everything a host needs to run the programs without this package:
the format, program files and their input/output names, shapes and dtypes (in call order), the
memory capacity and write policy, the preprocessing constants, the model config and a hash of
the weights.

int8 (``int8=True``): static post-training quantization, calibrated on sessions over the
user's frames and over built-in clips (:func:`~mobilevos.formats.calibration.calibration_clips`),
so the result does not hinge on what one clip happens to show. Both formats keep fp32, and why:

* the readout (the affinity MatMul, Exp and the softmax sums): its logits are
  differences of large squared norms turned into exponent weights; 8-bit steps there would
  move attention between memory locations, not just blur it;
* the soft aggregation (sigmoid, product, log-odds) and the final upsampling: cheap, and their
  outputs are the probabilities users threshold.

Verification (on by default): PyTorch and the exported programs run the same clip through the
same predictor session; every verb's outputs are compared (max abs difference) and every
frame's mask (IoU); int8 programs are compared with the fp32 ones
(:func:`~mobilevos.formats.verify.verify_export`). Beyond tolerance the export fails and
nothing is written; int8 masks that agree with fp32's less well than they should, though not
badly enough to fail, are written with a :class:`~mobilevos.errors.CalibrationWarning` saying
what to do.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobilevos.config import MemoryConfig
from mobilevos.errors import CalibrationWarning, ConfigError
from mobilevos.formats.calibration import calibration_clips, calibration_facts, record_inputs
from mobilevos.formats.graphs import describe, graph_inputs, verb_modules, weights_hash
from mobilevos.formats.manifest import (
    GRAPH_OUTPUTS,
    MANIFEST_VERSION,
    read_manifest,
    write_manifest,
)
from mobilevos.formats.registry import get_format
from mobilevos.formats.verify import verify_export
from mobilevos.io import atomic_dir
from mobilevos.model.network import IMAGENET_MEAN, IMAGENET_STD, STRIDE, MobileVOS
from mobilevos.version import __version__


def check_size(size: tuple[int, int]) -> None:
    if any(x < STRIDE or x % STRIDE for x in size):
        raise ConfigError(f"export size must be multiples of {STRIDE}, got {size[0]}x{size[1]}")


def export_model(
    model: MobileVOS,
    out_dir: str | Path,
    size: tuple[int, int] = (480, 864),
    max_objects: int = 3,
    *,
    format: str = "onnx",
    opset: int | None = None,
    int8: bool = False,
    calibration_frames: list[np.ndarray] | None = None,
    calibration_method: str | None = None,
    verify: bool = True,
    memory: MemoryConfig | None = None,
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir`` (built in a temporary folder, renamed at the end).

    ``format``: a name in :data:`~mobilevos.formats.registry.FORMATS`; ``opset``: the ONNX
    opset (ONNX only; None: its default). Returns the manifest. With ``int8``, the programs are
    calibrated on ``calibration_frames`` ((H, W, 3) uint8 RGB, one clip; optional) and on the
    built-in clips, activation ranges set by ``calibration_method`` (the format's
    ``CALIBRATION_METHODS``; None: its default); verification runs a generated clip through
    both sides (see the module doc).
    ``memory``: the memory the programs are made for (by default the model's; its capacity
    fixes the bank's shape).
    """
    check_size(size)
    fmt = get_format(format)
    if max_objects < 1:
        raise ConfigError(f"--max-objects must be >= 1, got {max_objects}")
    settings: dict[str, Any] = {} if opset is None else {"opset": opset}
    if calibration_method is not None:
        if not int8:
            raise ConfigError("a calibration method is for int8 exports")
        settings["calibration"] = calibration_method
    try:
        writer = fmt.load()(**settings)  # the format's settings are its class's fields
    except TypeError:
        raise ConfigError(f"{fmt.name} exports have no {', '.join(settings)} setting") from None
    writer.require()
    model = model.eval().cpu().to(memory_format=torch.contiguous_format)
    memory = memory or model.config.memory
    examples = graph_inputs(model, size, max_objects, memory.capacity)
    modules = verb_modules(model)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        graphs = {}
        for verb, module in modules.items():
            path = tmp / f"{verb}{fmt.suffix}"
            writer.write(verb, module, examples[verb], path)
            with torch.no_grad():
                outs = module(*examples[verb].values())
            outs = outs if isinstance(outs, tuple) else (outs,)
            graphs[verb] = {
                "file": path.name,
                "inputs": describe(examples[verb]),
                "outputs": describe(dict(zip(GRAPH_OUTPUTS[verb], outs, strict=True))),
            }
        manifest = {
            "format_version": MANIFEST_VERSION,
            "format": fmt.name,
            "mobilevos_version": __version__,
            "precision": "fp32",
            **writer.facts(),
            "input_size": list(size),
            "max_objects": max_objects,
            "stride": STRIDE,
            "graphs": graphs,
            "memory": {
                "pinned": memory.pinned,
                "recent": memory.recent,
                "write_every": memory.write_every,
                "capacity": memory.capacity,
            },
            "preprocessing": {
                "input": "RGB in [0, 1], resized to fit input_size keeping the aspect ratio "
                "(bilinear), zero-padded bottom/right, then (x - mean) / std",
                "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD),
                "mask_resize": "area",
            },
            "model_config": model.config.to_dict(),
            "weights_sha256": weights_hash(model),
        }
        write_manifest(tmp, manifest)
        if int8:
            fp32_dir = Path(tempfile.mkdtemp(prefix=".fp32.", dir=tmp.parent))
            try:
                for spec in graphs.values():
                    shutil.copy(tmp / spec["file"], fp32_dir / spec["file"])
                write_manifest(fp32_dir, manifest)
                clips = calibration_clips(calibration_frames, size, max_objects)
                feeds = record_inputs(fp32_dir, clips)
                manifest["quantization"] = {
                    **writer.write_int8(modules, fp32_dir, tmp, feeds),
                    **calibration_facts(clips, feeds),
                }
                manifest["precision"] = "int8"
                write_manifest(tmp, manifest)
                if verify:
                    manifest["verification"] = verify_export(model, tmp, reference_dir=fp32_dir)
            finally:
                shutil.rmtree(fp32_dir, ignore_errors=True)
        elif verify:
            manifest["verification"] = verify_export(model, tmp)
        write_manifest(tmp, manifest)
    warning = manifest.get("verification", {}).get("warning")
    if warning:
        warnings.warn(f"{out_dir}: {warning}", CalibrationWarning, stacklevel=2)
    return read_manifest(out_dir)


def export_onnx(model: MobileVOS, out_dir: str | Path, *args: Any, **kwargs: Any) -> dict:
    """:func:`export_model` in the ONNX format (the browser's and ONNX Runtime's)."""
    return export_model(model, out_dir, *args, format="onnx", **kwargs)
