"""The live loop (``mobilevos live``, :mod:`mobilevos.live`): the newest frame first, drops
counted, corrections on the next frame, and outputs that stay valid when it stops."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from mobilevos.cli import main
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.engine import TorchEngine
from mobilevos.errors import InputError
from mobilevos.io import read_label_image, write_video
from mobilevos.live import LiveSession, LiveSource, run_live
from mobilevos.predictor import VOSPredictor

SIZE = (48, 80)
FPS = 50.0


@pytest.fixture(scope="module")
def clip():
    return render_video(4, SynthConfig(*SIZE, num_frames=12, num_objects=(2, 2)))


class SlowEngine(TorchEngine):
    """PyTorch, with each frame's query encoding held back: a model slower than the source."""

    def __init__(self, model, seconds: float) -> None:
        super().__init__(model)
        self.seconds = seconds

    def encode_query(self, image):
        time.sleep(self.seconds)
        return super().encode_query(image)


def looping(clip, fps: float = FPS) -> LiveSource:
    return LiveSource.from_frames("clip", lambda: iter(clip.frames), fps, loop=True)


def first_object(clip):
    only_one = np.where(clip.labels[0] == 1, 1, 0).astype(np.uint8)
    return lambda image: only_one


def take(session: LiveSession, count: int) -> list:
    frames = []
    for frame in session:
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


def test_a_slow_model_drops_frames_counts_them_and_never_repeats_one(tiny_model, clip):
    predictor = VOSPredictor(SlowEngine(copy.deepcopy(tiny_model), 3 / FPS), size=None)
    session = LiveSession(predictor, looping(clip), first_object(clip))
    frames = take(session, 6)
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))  # each frame at most once, in order
    assert frames[-1].dropped > 0
    # Every source frame up to the one processed was processed or dropped, none lost.
    for processed, frame in enumerate(frames, start=1):
        assert processed + frame.dropped == frame.index + 1


def test_live_masks_are_the_offline_session_s_on_the_frames_it_processed(tiny_model, clip):
    session = LiveSession(
        VOSPredictor(SlowEngine(copy.deepcopy(tiny_model), 2 / FPS), size=None),
        looping(clip),
        first_object(clip),
    )
    frames = take(session, 5)
    offline = VOSPredictor.from_model(copy.deepcopy(tiny_model), size=None)
    mask = first_object(clip)(None)
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.image, clip.frames[frame.index % len(clip.frames)])
        np.testing.assert_array_equal(
            frame.labels, offline.step(frame.image, mask if t == 0 else None)
        )


def test_a_correction_or_a_removal_changes_the_next_frame(tiny_model, clip):
    session = LiveSession(
        VOSPredictor.from_model(copy.deepcopy(tiny_model), size=None),
        looping(clip, fps=20),
        first_object(clip),
    )
    frames = iter(session)
    assert set(np.unique(next(frames).labels)) <= {0, 1}
    second = np.where(clip.labels[0] == 2, 2, 0).astype(np.uint8)
    session.correct(second)  # object 2 enters
    corrected = next(frames)
    assert 2 in np.unique(corrected.labels)
    session.remove([1])
    assert 1 not in np.unique(next(frames).labels)
    frames.close()


def test_a_frame_size_change_is_one_line_and_keeps_the_masks_so_far(tiny_model, clip, tmp_path):
    def frames():
        yield from clip.frames[:4]
        yield np.zeros((SIZE[0] + 16, SIZE[1], 3), np.uint8)

    session = LiveSession(
        VOSPredictor.from_model(copy.deepcopy(tiny_model), size=None),
        LiveSource.from_frames("camera", frames, fps=10),
        first_object(clip),
    )
    with pytest.raises(InputError, match=r"^camera: the frame size changed from 48x80 to 64x80"):
        run_live(session, out_dir=tmp_path / "masks", overlay=tmp_path / "overlay.mp4")
    written = sorted((tmp_path / "masks").iterdir())
    assert [p.name for p in written] == [f"{i:06d}.png" for i in range(4)]
    assert read_label_image(written[0]).shape == SIZE
    assert _video_frames(tmp_path / "overlay.mp4") == 4


def test_a_source_that_does_not_open_is_one_line_and_exit_2(tiny_checkpoint, capsys):
    for source, problem in (
        ("7", "camera 7: cannot be opened"),
        ("rtsp://127.0.0.1:9/none", "rtsp://127.0.0.1:9/none: cannot be opened"),
        ("missing.mp4", "missing.mp4: no such file, and not a camera index or a stream URL"),
    ):
        assert main(["live", source, "--checkpoint", str(tiny_checkpoint)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {problem}") and err.count("\n") == 1, err


def test_ctrl_c_ends_the_run_cleanly_with_valid_outputs(tiny_checkpoint, clip, tmp_path):
    video = tmp_path / "clip.mp4"
    write_video(video, clip.frames, fps=25)
    out = tmp_path / "out"
    ys, xs = np.nonzero(clip.labels[0] == 1)
    box = f"{xs.min()},{ys.min()},{xs.max() + 1},{ys.max() + 1}"
    code = "import sys; from mobilevos.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "live", str(video), "--loop", "--box", box]
    argv += ["--out", str(out), "--checkpoint", str(tiny_checkpoint), "--backend", "torch"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "masks").glob("*.png"))) < 5:
        assert process.poll() is None, process.communicate()
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "stopped (Ctrl-C)" in stdout and "Traceback" not in stderr
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) >= 5 and not list((out / "masks").glob(".*"))
    for path in masks:
        assert read_label_image(path).shape == SIZE
    assert _video_frames(out / "overlay.mp4") == len(masks)


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))
