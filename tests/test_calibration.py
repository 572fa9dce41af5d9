"""int8 calibration that does not hinge on the user's clip: the clip's share, the range
observers, and the export's warning when int8 keeps fp32's masks less well than it should."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import torch

from mobilevos.checkpoint import load_model
from mobilevos.cli import main
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import CalibrationWarning, ConfigError
from mobilevos.formats.calibration import USER_FRAMES, calibration_clips
from mobilevos.formats.export import export_model
from mobilevos.formats.verify import INT8_WARN_IOU

SIZE = (64, 96)
# The shipped student at the page's size: a trained network, so masks mean something.
SHIPPED_SIZE = (240, 432)


def test_the_users_clip_is_held_to_a_built_in_clips_share_spread_over_it():
    frames = [np.full((*SIZE, 3), i, np.uint8) for i in range(40)]
    clips = calibration_clips(frames, SIZE, 2)
    user = clips[0]
    assert len(user.frames) == USER_FRAMES
    assert max(len(clip.frames) for clip in clips[1:]) == USER_FRAMES
    shown = [int(frame[0, 0, 0]) for frame in user.frames]
    assert shown[0] == 0 and shown[-1] == 39  # from the first frame to the last
    assert np.ptp(np.diff(shown)) <= 1  # evenly spaced
    few = calibration_clips(frames[:5], SIZE, 2)[0]
    assert [int(f[0, 0, 0]) for f in few.frames] == [0, 1, 2, 3, 4]


def activation_scale(method: str, data: torch.Tensor) -> float:
    """The int8 step an ExecuTorch activation observer of ``method`` sets after ``data``."""
    from mobilevos.formats.executorch import quantization_config

    observer = quantization_config(method).input_activation.observer_or_fake_quant_ctr()
    for chunk in data.split(data.numel() // 4):
        observer(chunk)
    scale, _ = observer.calculate_qparams()
    return float(scale)


def test_percentile_ranges_ignore_outliers_that_min_max_follows():
    pytest.importorskip("executorch")
    torch.manual_seed(0)
    # Two outliers in a million values: under the 0.0005 % a 99.999 % range leaves out per side.
    data = torch.cat([torch.rand(1_000_000) * 2 - 1, torch.full((2,), 100.0)])
    # int8 has 255 steps: [-1, 1] in steps of 2/255 unless the range stretches to 100.
    assert activation_scale("minmax", data) == pytest.approx(101 / 255, rel=1e-3)
    bin_width = 101 / 2048  # the histogram's bins span everything seen
    assert activation_scale("percentile", data) == pytest.approx(2 / 255, abs=2 * bin_width / 255)


def test_calibration_methods_are_each_formats_own(tiny_model, tmp_path, capsys):
    from mobilevos.formats.executorch import ExecuTorchFormat

    frames = list(render_video(3, SynthConfig(*SIZE, num_frames=4)).frames)
    manifest = export_model(
        copy.deepcopy(tiny_model), tmp_path / "q", SIZE, 2, int8=True,
        calibration_frames=frames, calibration_method="percentile", verify=False,
    )  # fmt: skip
    assert manifest["quantization"]["calibration_method"] == "percentile"
    with pytest.raises(ConfigError, match="onnx int8 has no calibration method 'histogram'"):
        export_model(tiny_model, tmp_path / "x", SIZE, 2, int8=True, calibration_method="histogram")
    with pytest.raises(ConfigError, match="executorch int8 has no calibration method 'entropy'"):
        ExecuTorchFormat(calibration="entropy")
    with pytest.raises(ConfigError, match="for int8"):
        export_model(tiny_model, tmp_path / "x", SIZE, 2, calibration_method="minmax")
    assert not (tmp_path / "x").exists()
    args = ["export", "--model", "mobilevos-tiny", "--out", str(tmp_path / "c")]
    assert main([*args, "--calibration-method", "minmax"]) == 2
    assert "--calibration-method is for --int8" in capsys.readouterr().err


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def saturated_noise(count: int = 12) -> list[np.ndarray]:
    """Frames of pure black and white pixels: a clip made to be a bad calibration."""
    rng = np.random.default_rng(0)
    return [rng.choice([0, 255], size=(*SHIPPED_SIZE, 3)).astype(np.uint8) for _ in range(count)]


def test_export_warns_when_the_clip_makes_int8_drift_and_not_when_it_holds(shipped, tmp_path):
    # Saturated noise with min-max ranges: the worst calibration measured (IoU 0.966 against a
    # threshold of 0.975; the percentile default holds it at 0.974).
    with pytest.warns(CalibrationWarning, match="calibrate on another clip") as caught:
        bad = export_model(
            copy.deepcopy(shipped), tmp_path / "bad", SHIPPED_SIZE, 2, int8=True,
            calibration_frames=saturated_noise(), calibration_method="minmax",
        )  # fmt: skip
    assert len(caught) == 1 and str(tmp_path / "bad") in str(caught[0].message)
    assert bad["verification"]["mean_iou"] < INT8_WARN_IOU
    assert "calibrate on another clip" in bad["verification"]["warning"]  # kept in the manifest
    good = list(render_video(11, SynthConfig(*SHIPPED_SIZE, num_frames=12)).frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        fine = export_model(
            copy.deepcopy(shipped), tmp_path / "good", SHIPPED_SIZE, 2, int8=True,
            calibration_frames=good,
        )  # fmt: skip
    assert fine["verification"]["mean_iou"] >= INT8_WARN_IOU
    assert "warning" not in fine["verification"]


def test_the_cli_prints_the_warning_as_one_line_and_writes_the_export(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "noise").mkdir()
    for i, frame in enumerate(saturated_noise()):
        Image.fromarray(frame).save(tmp_path / "noise" / f"{i:05d}.png")
    size = f"{SHIPPED_SIZE[0]}x{SHIPPED_SIZE[1]}"
    args = ["export", "--int8", "--size", size, "--max-objects", "2", "--out", str(tmp_path / "q")]
    noise = ["--calibration", str(tmp_path / "noise"), "--calibration-method", "minmax"]
    assert main([*args, *noise]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {tmp_path / 'q'}: int8 masks agree")
    assert "calibrate on another clip" in err[0]
    assert json.loads((tmp_path / "q" / "manifest.json").read_text())["precision"] == "int8"
