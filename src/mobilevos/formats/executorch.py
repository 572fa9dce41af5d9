"""ExecuTorch: programs (``.pte``) lowered to the XNNPACK delegate, the CPU runtime phone apps
embed; fp32 and int8.

Each verb's module is captured with ``torch.export`` at the export's fixed shapes and lowered
with ``to_edge_transform_and_lower`` and the XNNPACK partitioner: every operator XNNPACK runs
goes into its delegate, and every operator of the networks is one XNNPACK runs (the readout,
the soft aggregation and the attention pools are written for it; model/readout.py), so nothing
per frame is left to ExecuTorch's portable kernels but a few scalar conversions
(:func:`kernels_outside_delegate` reads a program and lists them).

int8 is PyTorch's PT2E static quantization with the XNNPACK quantizer: symmetric int8
activations, per-channel int8 weights, BatchNorm folded into the convolutions, calibrated by
running the prepared module on every recorded call of the calibration sessions (activation
ranges by one of :data:`CALIBRATION_METHODS`). Quantized: every operator the quantizer knows
(convolutions, residual additions, concatenations, ReLU/ReLU6 fused into their convolutions)
inside the encoders and the decoder, so XNNPACK keeps whole chains of them in int8 without
converting back and forth. fp32, for the reasons :mod:`mobilevos.formats.export` gives: the
memory readout and the soft aggregation, which are not modules of the network but functions
between them.

:class:`ExecuTorchEngine` runs a folder of these programs through ExecuTorch's Python bindings
(``pip install '.[phone]'``); the host side is
:class:`~mobilevos.formats.base.ExportedEngine`'s, shared with the ONNX Runtime engine. A
``.pte`` keeps no input names, so its inputs are checked against the manifest by position,
shape and dtype.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from mobilevos.errors import InputError
from mobilevos.formats.base import (
    ExportedEngine,
    Feeds,
    check_calibration,
    check_signature,
    unloadable,
)
from mobilevos.formats.manifest import VERBS, read_manifest

PHONE_EXTRA = "pip install '.[phone]' (or: make phone)"
# Submodules of MobileVOS whose operators int8 quantizes; everything else stays fp32.
QUANTIZED_MODULES = ("query_encoder", "value_encoder", "decoder")
DELEGATE = "XnnpackBackend"
# How int8 sets each activation's range from the calibration calls (observers over every value
# seen): the range that minimises the squared rounding and clipping error over the histogram
# (PyTorch's HistogramObserver), the extremes seen, or the central 99.999 % of the values.
# docs/export.md has what each does to accuracy.
CALIBRATION_METHODS = ("histogram", "minmax", "percentile")
DEFAULT_CALIBRATION = "histogram"
PERCENTILE = 99.999
# ExecuTorch's scalar types (c10::ScalarType numbers) in a method's metadata, as the manifest
# spells them.
_DTYPES = {6: "float32", 11: "bool"}


def require_executorch() -> None:
    """Import ExecuTorch's runtime; a one-line :class:`InputError` naming the extra when it is
    not installed."""
    # torchao (imported with ExecuTorch) registers an Enum with torch's pytree, which logs a
    # deprecation note about it on every import: not ours to act on.
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        import executorch.runtime  # noqa: F401
    except ImportError:
        raise InputError("executorch", f"not installed: {PHONE_EXTRA}") from None


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null meanwhile."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def thread_count(threads: int | None = None) -> int:
    """Size ExecuTorch's thread pool to ``threads`` (None: leave it) and return its size. The
    pool is the process's, shared by every program it runs.

    The first call starts the pool, whose CPU probe writes five lines of ``cpuinfo_utils``
    notes to stderr on x86 (it looks for ARM registers); they are silenced here, so a command's
    output stays its own."""
    from executorch.extension.pybindings import portable_lib

    with _native_stderr_silenced():
        count = portable_lib._threadpool_get_thread_count()
    if threads is not None and count != threads:
        portable_lib._unsafe_reset_threadpool(threads)
        count = threads
    return count


class ExecuTorchEngine(ExportedEngine):
    """A :class:`~mobilevos.engine.base.FrameEngine` over exported ExecuTorch programs (CPU).

    Args:
        model_dir: a folder written by ``mobilevos export --format executorch``.
        threads: XNNPACK threads (None: ExecuTorch's default, one per core). The pool is the
            process's: the last engine built sets it for all.
    """

    def __init__(self, model_dir: str | Path, threads: int | None = None) -> None:
        require_executorch()
        from executorch.runtime import Runtime

        thread_count(threads)
        self._runtime = Runtime.get()
        self.methods: dict[str, Any] = {}
        self.input_names: dict[str, list[str]] = {}  # a program's inputs are positional
        super().__init__(model_dir, threads)

    def _load(self, verb: str, path: Path, spec: dict[str, Any]) -> None:
        try:
            method = self._runtime.load_program(path).load_method("forward")
        except Exception as exc:  # the bindings raise RuntimeError and ValueError
            raise unloadable(path, "ExecuTorch program", exc) from None
        meta = method.metadata
        for kind in ("input", "output"):
            count = getattr(meta, f"num_{kind}s")()
            infos = [getattr(meta, f"{kind}_tensor_meta")(i) for i in range(count)]
            actual = [
                (None, list(i.sizes()), _DTYPES.get(i.dtype(), str(i.dtype()))) for i in infos
            ]
            check_signature(path, spec, kind, actual)
        self.methods[verb] = method
        self.input_names[verb] = [e["name"] for e in spec["inputs"]]

    def _call(self, verb: str, feeds: dict[str, np.ndarray]) -> list[Tensor]:
        inputs = [torch.from_numpy(feeds[name]) for name in self.input_names[verb]]
        return [out.clone() for out in self.methods[verb].execute(inputs)]


@dataclass(frozen=True)
class ExecuTorchFormat:
    """The ExecuTorch format (:class:`~mobilevos.formats.base.ProgramFormat`).

    Args:
        calibration: how int8 sets activation ranges, one of :data:`CALIBRATION_METHODS`.
    """

    calibration: str = DEFAULT_CALIBRATION
    engine: ClassVar[type[ExportedEngine]] = ExecuTorchEngine

    def __post_init__(self) -> None:
        check_calibration("executorch", self.calibration, CALIBRATION_METHODS)

    require = staticmethod(require_executorch)

    def write(self, verb: str, module: nn.Module, inputs: dict[str, Tensor], path: Path) -> None:
        lower(module, tuple(inputs.values()), path)

    def write_int8(
        self, modules: dict[str, nn.Module], fp32_dir: Path, out_dir: Path, feeds: Feeds
    ) -> dict[str, Any]:
        """Quantize each verb's module (PT2E, XNNPACK quantizer) on the calls recorded over
        the fp32 programs of ``fp32_dir``, lowered into ``out_dir``."""
        manifest = read_manifest(fp32_dir)
        for verb in VERBS:
            spec = manifest["graphs"][verb]
            names = [x["name"] for x in spec["inputs"]]
            calls = [tuple(torch.from_numpy(feed[n]) for n in names) for feed in feeds[verb]]
            lower_int8(modules[verb], calls[0], calls, out_dir / spec["file"], self.calibration)
        return {
            "tool": "PT2E (torchao.quantization.pt2e) with executorch's XNNPACKQuantizer",
            "format": "activations int8 per tensor, weights int8 per channel, symmetric",
            "calibration_method": self.calibration,
            "quantized_modules": list(QUANTIZED_MODULES),
        }

    def facts(self) -> dict[str, Any]:
        """The ExecuTorch version and delegate."""
        from importlib.metadata import version

        return {"runtime": {"executorch": version("executorch"), "delegate": DELEGATE}}


FORMAT = ExecuTorchFormat


def lower(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> None:
    """Capture ``module`` at ``inputs``' shapes, lower it to XNNPACK, write the program."""
    require_executorch()
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        program = torch.export.export(module, inputs)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    path.write_bytes(edge.to_executorch().buffer)


VIEW_KERNELS = ("aten::view_copy", "aten::unsqueeze_copy", "aten::squeeze_copy")
"""Kernels that only reshape: outside the delegate they cost no arithmetic."""


def kernels_outside_delegate(path: Path) -> list[tuple[str, int]]:
    """The kernels a program runs outside its delegates, in order: each operator's name and
    the element count of the largest tensor it touches (0 for scalars and lists).

    Every per-frame operator of the networks is meant to run inside XNNPACK (the readout, the
    aggregation and the attention pools are written for it), so this is at most a few scalar
    conversions; the tests and ``mobilevos export`` check it. Reads ExecuTorch's serialized
    program (its private ``_serialize`` module: the runtime has no public reader)."""
    require_executorch()
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.exir.schema import KernelCall
    from executorch.exir.schema import Tensor as TensorValue

    plan = deserialize_pte_binary(Path(path).read_bytes()).program.execution_plan[0]
    kernels = []
    for chain in plan.chains:
        for instruction in chain.instructions:
            call = instruction.instr_args
            if isinstance(call, KernelCall):
                op = plan.operators[call.op_index]
                sizes = [plan.values[i].val for i in call.args]
                largest = max(
                    (math.prod(v.sizes) for v in sizes if isinstance(v, TensorValue)), default=0
                )
                kernels.append((op.name, largest))
    return kernels


def in_quantized_module(node: torch.fx.Node) -> bool:
    """Quantize an operator only inside the encoders and the decoder (weights, constants and
    inputs, which belong to no module, follow the operators that use them)."""
    if node.op != "call_function":
        return True
    paths = [path for path, _ in node.meta.get("nn_module_stack", {}).values()]
    return any(part in QUANTIZED_MODULES for path in paths for part in path.split("."))


def quantization_config(method: str = DEFAULT_CALIBRATION) -> Any:
    """The XNNPACK quantizer's static int8 configuration (per-channel weights) with activation
    ranges set by ``method`` (:data:`CALIBRATION_METHODS`)."""
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver

    class PercentileObserver(HistogramObserver):
        """The range between the (100 - p) / 2 % and the (100 + p) / 2 % points of the
        histogram of every value seen (``p`` = :data:`PERCENTILE`)."""

        def calculate_qparams(self):  # type: ignore[override]
            total = float(self.histogram.sum())
            if total == 0 or float(self.max_val) <= float(self.min_val):
                return super().calculate_qparams()
            cdf = self.histogram.double().cumsum(0) / total
            cut = (100 - PERCENTILE) / 200
            low = int(torch.searchsorted(cdf, torch.tensor(cut, dtype=cdf.dtype)))
            high = int(torch.searchsorted(cdf, torch.tensor(1 - cut, dtype=cdf.dtype)))
            edges = torch.linspace(float(self.min_val), float(self.max_val), self.bins + 1)
            return self._calculate_qparams(edges[low], edges[min(high + 1, self.bins)])

    config = get_symmetric_quantization_config(is_per_channel=True)
    observer = {
        "histogram": HistogramObserver,
        "minmax": MinMaxObserver,
        "percentile": PercentileObserver,
    }[method]
    activation = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=activation, output_activation=activation)


def lower_int8(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    calibration: Iterable[tuple[Tensor, ...]],
    path: Path,
    method: str = DEFAULT_CALIBRATION,
) -> int:
    """Quantize ``module`` (PT2E, XNNPACK quantizer) calibrated on ``calibration`` (argument
    tuples shaped like ``inputs``) with activation ranges by ``method``, lower it to XNNPACK
    and write the program. Returns the number of calibration calls."""
    require_executorch()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(quantization_config(method))
    quantizer.set_filter_function(in_quantized_module)
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
