"""The ExecuTorch export (XNNPACK programs) and its engine, against PyTorch and the ONNX export.

Skipped where ExecuTorch (the ``phone`` extra) is not installed; ``.ci/run`` installs it.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mobilevos.cli import main
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import ExportError, InputError
from mobilevos.formats.base import open_exported
from mobilevos.formats.executorch import (
    VIEW_KERNELS,
    ExecuTorchEngine,
    kernels_outside_delegate,
)
from mobilevos.formats.export import export_model, export_onnx
from mobilevos.formats.manifest import VERBS, read_manifest
from mobilevos.formats.verify import compare_backends
from mobilevos.model.network import build_model
from test_export import (
    SIZE,
    assert_matches_torch_with_an_object_entering_late,
    assert_misfits_are_one_line_errors,
)

pytest.importorskip("executorch.runtime", reason="ExecuTorch not installed: make phone")


@pytest.fixture(scope="module", params=["tiny_model", "tiny_fast_model"])
def model(request):
    """The tiny preset, and the tiny preset built like mobilevos-mbv2-fast."""
    return copy.deepcopy(request.getfixturevalue(request.param))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("executorch") / "tiny"
    manifest = export_model(copy.deepcopy(model), out, SIZE, 2, format="executorch")
    return out, manifest


def test_programs_match_pytorch_verb_by_verb_and_mask_by_mask(model, exported):
    out, manifest = exported
    assert manifest["format"] == "executorch" and manifest["runtime"]["delegate"]
    assert [manifest["graphs"][v]["file"] for v in VERBS] == [f"{v}.pte" for v in VERBS]
    report = compare_backends(model, out)
    assert {"encode_query.f4", "encode_value.values", "session.probabilities"} <= set(
        report["max_abs_diff"]
    )
    assert max(report["max_abs_diff"].values()) < 1e-4
    assert report["mean_iou"] == 1.0
    assert manifest["verification"]["mean_iou"] == 1.0


def test_manifest_has_the_onnx_schema(model, exported, tmp_path):
    """Same verbs, names, shapes, dtypes, memory, preprocessing and weights hash as ONNX."""
    onnx_manifest = export_onnx(copy.deepcopy(model), tmp_path / "onnx", SIZE, 2, verify=False)
    et_manifest = exported[1]
    for verb in VERBS:
        for kind in ("inputs", "outputs"):
            assert et_manifest["graphs"][verb][kind] == onnx_manifest["graphs"][verb][kind]
    for key in ("memory", "preprocessing", "model_config", "weights_sha256", "input_size"):
        assert et_manifest[key] == onnx_manifest[key]
    assert read_manifest(exported[0]) == et_manifest
    assert isinstance(open_exported(exported[0]), ExecuTorchEngine)


def test_executorch_predictor_matches_torch_with_an_object_entering_late(model, exported):
    assert_matches_torch_with_an_object_entering_late(model, ExecuTorchEngine(exported[0]))


def assert_nothing_runs_outside_xnnpack(folder) -> None:
    """No kernel outside the delegate touches more than a scalar (reshapes aside)."""
    for verb in VERBS:
        kernels = kernels_outside_delegate(folder / f"{verb}.pte")
        outside = [(op, n) for op, n in kernels if op not in VIEW_KERNELS and n > 1]
        assert not outside, f"{verb}.pte runs outside XNNPACK: {outside}"


@pytest.mark.parametrize("student", ["tiny_model", "tiny_fast_model", "half_entry"])
def test_every_per_frame_operator_runs_inside_xnnpack(student, request, tmp_path):
    """The readout, the soft aggregation, the attention pools and the per-object broadcasts,
    in the tiny presets built like the two students (no ASPP: its GroupNorm is not an XNNPACK
    operator, and no student has one), and the tiny fast one on a MobileNetV2 query trunk that
    enters at half resolution with blocks dropped (its pooled entry): fp32 at two objects, int8
    at three."""
    if student == "half_entry":
        config = request.getfixturevalue("tiny_fast_model").config.replace(
            query_backbone="mobilenetv2", query_trunk_entry="half", query_trunk_dropped=(3, 13)
        )
    else:
        config = request.getfixturevalue(student).config
    config = config.replace(aspp=False, pretrained=False)
    torch.manual_seed(0)
    model = build_model(config).eval()
    export_model(copy.deepcopy(model), tmp_path / "fp32", SIZE, 2, format="executorch")
    assert_nothing_runs_outside_xnnpack(tmp_path / "fp32")
    video = render_video(5, SynthConfig(*SIZE, num_frames=4, num_objects=(3, 3)))
    export_model(
        model, tmp_path / "int8", SIZE, 3, format="executorch", int8=True,
        calibration_frames=list(video.frames), verify=False,
    )  # fmt: skip
    assert_nothing_runs_outside_xnnpack(tmp_path / "int8")


def test_int8_quantizes_the_networks_and_keeps_the_readout_fp32(tiny_model, tmp_path):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    from mobilevos.formats.executorch import in_quantized_module
    from mobilevos.formats.graphs import SegmentGraph, graph_inputs

    model = tiny_model
    video = render_video(3, SynthConfig(*SIZE, num_frames=6))
    manifest = export_model(
        copy.deepcopy(model), tmp_path / "int8", SIZE, 2, format="executorch", int8=True,
        calibration_frames=list(video.frames),
    )  # fmt: skip
    assert manifest["precision"] == "int8"
    assert manifest["quantization"]["calibration_clips"]["user-0"] == 6
    assert manifest["verification"]["mean_iou"] >= 0.9
    # What the quantizer observes in the segment program: the decoder's convolutions, never
    # the readout's matrix products and exponentials, which stay fp32.
    examples = graph_inputs(model, SIZE, 2, model.config.memory.capacity)["segment"]
    module = SegmentGraph(copy.deepcopy(model)).eval()
    captured = torch.export.export(module, tuple(examples.values())).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(True))
    prepared = prepare_pt2e(captured, quantizer.set_filter_function(in_quantized_module))
    observed = {
        str(arg.target).split(".")[1]  # aten.<name>.<overload>
        for node in prepared.graph.nodes
        if node.op == "call_module" and "activation_post_process" in str(node.target)
        for arg in node.all_input_nodes
        if arg.op == "call_function"
    }
    assert "conv2d" in observed
    assert not observed & {"bmm", "matmul", "mm", "baddbmm", "exp", "softmax", "_softmax"}


def test_programs_that_do_not_fit_the_manifest_are_one_line_errors(exported, tmp_path):
    out = tmp_path / "broken"
    assert_misfits_are_one_line_errors(ExecuTorchEngine, exported[0], out, ".pte")
    (out / "encode_value.pte").write_bytes(b"not a program")
    with pytest.raises(ExportError, match=r"encode_value\.pte: not a loadable ExecuTorch program"):
        ExecuTorchEngine(out)


def test_missing_runtime_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_executorch(name, *args, **kwargs):
        if name.startswith("executorch"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    from mobilevos.formats.executorch import require_executorch

    monkeypatch.setattr(builtins, "__import__", no_executorch)
    with pytest.raises(InputError, match=r"executorch: not installed: pip install '\.\[phone\]'"):
        require_executorch()


def test_cli_export_segment_and_backend_mismatch(exported, tmp_path, capsys):
    from mobilevos.io import write_palette_png, write_video

    video = render_video(5, SynthConfig(*SIZE, num_frames=4, num_objects=(1, 1)))
    write_video(tmp_path / "clip.mp4", video.frames, fps=8)
    write_palette_png(tmp_path / "first.png", video.labels[0])
    seg = ["segment", str(tmp_path / "clip.mp4"), "--mask", str(tmp_path / "first.png")]
    et = ["--model-dir", str(exported[0])]
    assert main([*seg, "--out", str(tmp_path / "m"), "--backend", "executorch", *et]) == 0
    assert len(list((tmp_path / "m").glob("*.png"))) == 4
    capsys.readouterr()
    assert main([*seg, "--out", str(tmp_path / "n"), "--backend", "onnx", *et]) == 2
    err = capsys.readouterr().err
    assert "holds executorch programs, not onnx" in err and err.count("\n") == 1
    assert not (tmp_path / "n").exists()
    out = tmp_path / "cli"
    args = ["--model", "mobilevos-tiny", "--untrained", "--size", "64x96", "--max-objects", "1"]
    assert main(["export", "--format", "executorch", "--out", str(out), *args]) == 0
    assert "exported fp32 executorch programs" in capsys.readouterr().out
    assert read_manifest(out)["max_objects"] == 1
