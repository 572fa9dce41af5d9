"""ExecuTorch programs (``.pte``) lowered to the XNNPACK delegate, fp32 and int8.

Each verb's module is captured with ``torch.export`` at the export's fixed shapes and lowered
with ``to_edge_transform_and_lower`` and the XNNPACK partitioner: every operator XNNPACK runs
goes into its delegate, the rest (the readout's masked reductions, the soft aggregation's
product) stays in ExecuTorch's portable kernels.

int8 is PyTorch's PT2E static quantization with the XNNPACK quantizer: symmetric int8
activations, per-channel int8 weights, BatchNorm folded into the convolutions, calibrated by
running the prepared module on every recorded call of the calibration sessions (histogram
observers). Quantized: every operator the quantizer knows (convolutions, residual additions,
concatenations, ReLU/ReLU6 fused into their convolutions) inside the encoders and the decoder,
so XNNPACK keeps whole chains of them in int8 without converting back and forth. fp32, for the
same reasons as in the ONNX export (:mod:`mobilevos.export`): the memory readout and the soft
aggregation, which are not modules of the network but functions between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mobilevos.engine.et_engine import require_executorch

# Submodules of MobileVOS whose operators int8 quantizes; everything else stays fp32.
QUANTIZED_MODULES = ("query_encoder", "value_encoder", "decoder")
DELEGATE = "XnnpackBackend"


def lower(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> None:
    """Capture ``module`` at ``inputs``' shapes, lower it to XNNPACK, write the program."""
    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        program = torch.export.export(module, inputs)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    path.write_bytes(edge.to_executorch().buffer)


def _in_quantized_module(node: torch.fx.Node) -> bool:
    """Quantize an operator only inside the encoders and the decoder (weights, constants and
    inputs, which belong to no module, follow the operators that use them)."""
    if node.op != "call_function":
        return True
    paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
    return any(part in QUANTIZED_MODULES for path in paths for part in path.split("."))


def lower_int8(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    calibration: Iterable[tuple[Tensor, ...]],
    path: Path,
) -> int:
    """Quantize ``module`` (PT2E, XNNPACK quantizer) calibrated on ``calibration`` (argument
    tuples shaped like ``inputs``), lower it to XNNPACK and write the program. Returns the
    number of calibration calls."""
    require_executorch()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)
    )
    quantizer.set_filter_function(_in_quantized_module)
    with torch.no_grad():
        captured = torch.export.export(module, inputs).module()
        prepared = prepare_pt2e(captured, quantizer)
        calls = 0
        for args in calibration:
            prepared(*args)
            calls += 1
        quantized = convert_pt2e(prepared)
    lower(quantized, inputs, path)
    return calls


def runtime_facts() -> dict[str, Any]:
    """The ExecuTorch version and delegate, for the manifest."""
    from importlib.metadata import version

    return {"executorch": version("executorch"), "delegate": DELEGATE}
