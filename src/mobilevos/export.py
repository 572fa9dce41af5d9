"""``mobilevos export``: the video model as one fixed-shape program per verb, plus a manifest.

    encode_query    image (1, 3, H, W) -> key, value, f16, f8, f4
    encode_value    what the value encoder reads of the frame (image, f16 for a value
                    trunk; f4, f8, f16 for the mask branch), masks (1, K, H, W)
                    -> values (1, K, Cv, h, w)
    segment         key, value, f8, f4, memory keys/values, valid, present -> logits

Two formats (``--format``): ONNX graphs (``.onnx``, for ONNX Runtime and the browser) and
ExecuTorch programs lowered to XNNPACK (``.pte``, the runtime phone apps embed; see
:mod:`mobilevos.pte`), with the same verbs, names, shapes and manifest.

The memory bank stays on the host (:class:`~mobilevos.memory.MemoryBank`, the same code as the
PyTorch predictor): ``segment`` takes the bank's tensors at their fixed capacity S and a
per-object validity mask, so one program serves every frame of every video. K is fixed at
export (``--max-objects``); sessions with fewer objects pad with absent objects (``present``
False, no valid slot), which the readout and the soft aggregation ignore.

``manifest.json`` describes everything a host needs to run the programs without this package:
the format, program files and their input/output names, shapes and dtypes (in call order), the
memory capacity and write policy, the preprocessing constants, the model config and a hash of
the weights.

int8 (``--int8``): static post-training quantization, calibrated on sessions over the user's
frames and over a built-in generated clip (:func:`mobilevos.quantize.calibration_clips`), so the
result does not hinge on what one clip happens to show. ONNX uses ONNX Runtime's own tools
(``quantize_static``, QDQ format, per-channel weights) and quantizes only convolutions;
ExecuTorch uses PT2E with the XNNPACK quantizer (:mod:`mobilevos.pte`). Both keep fp32, and why:

* the readout (the affinity MatMul, Exp and the per-object softmax sums): its logits are
  differences of large squared norms turned into exponent weights; 8-bit steps there would
  move attention between memory locations, not just blur it;
* the soft aggregation (sigmoid, product, log-odds) and the final upsampling: cheap, and their
  outputs are the probabilities users threshold.

Verification (on by default): PyTorch and the exported programs run the same clip through the
same predictor session; every verb's outputs are compared (max abs difference) and every
frame's mask (IoU); int8 programs are compared with the fp32 ones. Beyond tolerance the export
fails and nothing is written.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import mobilevos
from mobilevos import pte
from mobilevos.config import MemoryConfig
from mobilevos.engine.et_engine import require_executorch
from mobilevos.errors import ConfigError, ExportError
from mobilevos.io import atomic_dir
from mobilevos.manifest import (
    FORMATS,
    GRAPH_OUTPUTS,
    MANIFEST_VERSION,
    read_manifest,
    write_manifest,
)
from mobilevos.model.encoders import QueryFeatures
from mobilevos.model.network import IMAGENET_MEAN, IMAGENET_STD, STRIDE, MobileVOS
from mobilevos.quantize import calibration_clips, quantize_model_dir, quantize_programs
from mobilevos.verify import compare_backends

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
# Verification tolerances: fp32 graphs match PyTorch to float rounding; int8 is judged on masks.
FP32_MAX_ABS = 2e-3
FP32_MIN_IOU = 0.99
INT8_MIN_MEAN_IOU = 0.90


class _QueryGraph(nn.Module):
    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.encode_query(image))


class _ValueGraph(nn.Module):
    """``encode_value`` with the inputs the value encoder reads (its ``reads``), then masks."""

    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model
        self.reads = model.value_encoder.reads

    def forward(self, *inputs: Tensor) -> Tensor:
        named = dict(zip(self.reads, inputs, strict=False))
        # Fields the encoder does not read are not graph inputs; it never touches them.
        query = QueryFeatures(*(named.get(f) for f in QueryFeatures._fields))
        return self.model.value_encoder(named.get("image"), query, inputs[-1])


class _SegmentGraph(nn.Module):
    def __init__(self, model: MobileVOS) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        key: Tensor,
        value: Tensor,
        f8: Tensor,
        f4: Tensor,
        memory_keys: Tensor,
        memory_values: Tensor,
        valid: Tensor,
        present: Tensor,
    ) -> Tensor:
        query = QueryFeatures(key, value, key, f8, f4)  # f16 is not read by the decoder
        readout = self.model.read(query, memory_keys, memory_values, valid)
        return self.model.decode(query, readout, present).logits


def graph_inputs(model: MobileVOS, size: tuple[int, int], max_objects: int, slots: int):
    """Example inputs of each verb's graph, named. Shapes follow the model at ``size``."""
    h, w = size
    image = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        query = model.encode_query(image)
    k, s = max_objects, slots
    cv = model.config.value_dim
    frame = {"image": image, **query._asdict()}
    return {
        "encode_query": {"image": image},
        "encode_value": {
            **{name: frame[name] for name in model.value_encoder.reads},
            "masks": torch.zeros(1, k, h, w),
        },
        "segment": {
            "key": query.key,
            "value": query.value,
            "f8": query.f8,
            "f4": query.f4,
            "memory_keys": query.key[:, :, None].repeat(1, 1, s, 1, 1),
            "memory_values": torch.zeros(1, k, cv, s, h // STRIDE, w // STRIDE),
            "valid": torch.ones(1, k, s, dtype=torch.bool),
            "present": torch.ones(1, k, dtype=torch.bool),
        },
    }


def _export_graph(module: nn.Module, inputs: dict[str, Tensor], outputs, path: Path, opset: int):
    with warnings.catch_warnings():
        # Shapes are fixed on purpose: the tracer's "treated as a constant" notes are expected.
        # The TorchScript-based exporter is deprecated in favour of torch.export's, but it
        # traces these verbs in seconds and its graphs match PyTorch to 1e-5 (tests).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        _trace(module, inputs, outputs, path, opset)


def _trace(module: nn.Module, inputs: dict[str, Tensor], outputs, path: Path, opset: int):
    torch.onnx.export(
        module,
        tuple(inputs.values()),
        str(path),
        input_names=list(inputs),
        output_names=list(outputs),
        opset_version=opset,
        dynamo=False,
        do_constant_folding=True,
    )


def weights_hash(model: MobileVOS) -> str:
    """sha256 over the state dict's names and fp32 bytes, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _describe(tensors: dict[str, Tensor]) -> list[dict[str, Any]]:
    return [
        {"name": n, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for n, t in tensors.items()
    ]


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
    opset: int = DEFAULT_OPSET,
    int8: bool = False,
    calibration_frames: list[np.ndarray] | None = None,
    verify: bool = True,
    memory: MemoryConfig | None = None,
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir`` (built in a temporary folder, renamed at the end).

    ``format``: ``onnx`` or ``executorch``. Returns the manifest. With ``int8``, the programs are
    calibrated on ``calibration_frames`` ((H, W, 3) uint8 RGB, one clip; optional) and on a
    built-in generated clip; verification runs a generated clip through both sides (see the
    module doc). ``memory``: the memory the programs are made for (by default the model's; its
    capacity fixes the bank's shape).
    """
    check_size(size)
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; use {', '.join(FORMATS)}")
    if max_objects < 1:
        raise ConfigError(f"--max-objects must be >= 1, got {max_objects}")
    if format == "executorch":
        require_executorch()
    model = model.eval().cpu().to(memory_format=torch.contiguous_format)
    memory = memory or model.config.memory
    examples = graph_inputs(model, size, max_objects, memory.capacity)
    # Wrappers are built in eval mode: a module in training mode would update the BatchNorm
    # statistics of the model on every call, changing the weights between programs.
    modules = {
        "encode_query": _QueryGraph(model).eval(),
        "encode_value": _ValueGraph(model).eval(),
        "segment": _SegmentGraph(model).eval(),
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        graphs = {}
        for verb, module in modules.items():
            path = tmp / f"{verb}{FORMATS[format]}"
            if format == "onnx":
                _export_graph(module, examples[verb], GRAPH_OUTPUTS[verb], path, opset)
                _check_graph(path)
            else:
                pte.lower(module, tuple(examples[verb].values()), path)
            with torch.no_grad():
                outs = module(*examples[verb].values())
            outs = outs if isinstance(outs, tuple) else (outs,)
            graphs[verb] = {
                "file": path.name,
                "inputs": _describe(examples[verb]),
                "outputs": _describe(dict(zip(GRAPH_OUTPUTS[verb], outs, strict=True))),
            }
        manifest = {
            "format_version": MANIFEST_VERSION,
            "format": format,
            "mobilevos_version": mobilevos.__version__,
            "precision": "fp32",
            **({"opset": opset} if format == "onnx" else {"runtime": pte.runtime_facts()}),
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
                if format == "onnx":
                    manifest["quantization"] = quantize_model_dir(fp32_dir, tmp, clips)
                else:
                    manifest["quantization"] = quantize_programs(modules, fp32_dir, tmp, clips)
                manifest["precision"] = "int8"
                write_manifest(tmp, manifest)
                if verify:
                    manifest["verification"] = verify_export(model, tmp, reference_dir=fp32_dir)
            finally:
                shutil.rmtree(fp32_dir, ignore_errors=True)
        elif verify:
            manifest["verification"] = verify_export(model, tmp)
        write_manifest(tmp, manifest)
    return read_manifest(out_dir)


def export_onnx(model: MobileVOS, out_dir: str | Path, *args: Any, **kwargs: Any) -> dict:
    """:func:`export_model` in the ONNX format (the browser's and ONNX Runtime's)."""
    return export_model(model, out_dir, *args, format="onnx", **kwargs)


def read_calibration_frames(path: Path, count: int = 24) -> list[np.ndarray]:
    """Up to ``count`` frames spread over a video or frame folder, for int8 calibration."""
    from mobilevos.io import open_frames

    with open_frames(path) as source:
        frames = [frame.image for frame in source]
    if not frames:
        raise ConfigError(f"{path}: no frames to calibrate on")
    step = max(1, len(frames) // count)
    return frames[::step][:count]


def export_command(args: argparse.Namespace, model: MobileVOS) -> int:
    """``mobilevos export`` after the CLI has loaded the model."""
    from mobilevos.data.synth.dataset import parse_size

    size = parse_size(args.size)
    if args.calibration is not None and not args.int8:
        raise ConfigError("--calibration is for --int8")
    frames = read_calibration_frames(args.calibration) if args.int8 and args.calibration else None
    manifest = export_model(
        model,
        args.out,
        size,
        args.max_objects,
        format=args.format,
        opset=args.opset,
        int8=args.int8,
        calibration_frames=frames,
        verify=not args.no_verify,
    )
    line = f"exported {manifest['precision']} {args.format} programs for {size[0]}x{size[1]}, "
    line += f"{args.max_objects} objects, to {args.out}"
    check = manifest.get("verification")
    if check:
        worst = max(check["max_abs_diff"].values())
        line += f"; verified on {check['frames']} frames: max abs diff {worst:.2e}, "
        line += f"mean mask IoU {check['mean_iou']:.4f}"
    print(line)
    return 0


def _check_graph(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the checker raises several types
        raise ExportError(f"{path.name}: exported graph fails onnx.checker ({exc})") from None


def verify_export(
    model: MobileVOS, model_dir: Path, reference_dir: Path | None = None
) -> dict[str, Any]:
    """Run a generated clip through PyTorch (or the fp32 graphs) and the exported graphs.

    Returns per-output max abs differences (fp32 only) and per-frame mask IoUs; raises
    :class:`ExportError` beyond tolerance.
    """
    report = compare_backends(model, model_dir, reference_dir)
    ious = report["frame_iou"]
    if reference_dir is None:
        worst = max(report["max_abs_diff"].values())
        if worst > FP32_MAX_ABS or min(ious) < FP32_MIN_IOU:
            raise ExportError(
                f"{model_dir}: exported programs differ from PyTorch (max abs {worst:.2e}, "
                f"min frame IoU {min(ious):.4f}; tolerance {FP32_MAX_ABS:g}, {FP32_MIN_IOU})"
            )
    elif float(np.mean(ious)) < INT8_MIN_MEAN_IOU:
        raise ExportError(
            f"{model_dir}: int8 masks differ from fp32 (mean IoU {np.mean(ious):.4f} < "
            f"{INT8_MIN_MEAN_IOU})"
        )
    return report
