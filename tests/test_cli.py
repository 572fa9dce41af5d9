"""End-to-end tests of the ``mobilevos`` command line: segment, info, convert and demo.

Most tests call :func:`mobilevos.cli.main` in-process (fast); two run the installed console
script in a subprocess to prove the real exit codes and that no traceback reaches the user.
Every run uses a tiny random-weight checkpoint and a generated 8-frame 72x96 clip, segmented at
``--size 64`` (so the resize path runs too). The segmentations are meaningless; what is checked is
the contract: file names, sizes, ids, given masks imposed on their frames, agreement with the
library's own predictor, determinism, and clean failures that leave nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import pytest
import torch
from PIL import Image

from mobilevos.checkpoint import load_model, save_checkpoint
from mobilevos.cli import main
from mobilevos.config import available_presets, get_preset
from mobilevos.data.synth import SynthConfig, render_video
from mobilevos.errors import CheckpointError, InputError
from mobilevos.formats.manifest import MANIFEST_VERSION
from mobilevos.io import open_frames, read_label_image, write_palette_png, write_video
from mobilevos.model.network import build_model
from mobilevos.predictor import VOSPredictor
from mobilevos.runtime import open_engine

HEIGHT, WIDTH, NUM_FRAMES, SIZE = 72, 96, 8, 64
FIRST_ID, SECOND_ID = 3, 7
LATE_FRAME = 3  # where the mask-folder tests introduce the second object
PAPER_PARAMETERS_M = {"mobilevos-mbv2": 2.5, "mobilevos-mbv2-lite": 1.9, "mobilevos-r18": 8.1}


class Clip(NamedTuple):
    """A generated clip written three ways, with its ground truth (ids 3 and 7).

    Shapes:
        frames: (T, H, W, 3) uint8 RGB; labels: (T, H, W) uint8
    """

    frames: np.ndarray
    labels: np.ndarray
    video: Path  # mp4, frames named 00000..00007
    jpg_dir: Path  # frames shot0.jpg..shot7.jpg
    png_dir: Path  # frames shot0.png..shot7.png
    mask0: Path  # frame 0's ground truth, both objects

    def source(self, kind: str) -> Path:
        return {"mp4": self.video, "jpg": self.jpg_dir, "png": self.png_dir}[kind]

    def frame_names(self, kind: str) -> list[str]:
        if kind == "mp4":
            return [f"{t:05d}" for t in range(NUM_FRAMES)]
        return [f"shot{t}" for t in range(NUM_FRAMES)]


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Seed 2 keeps both objects visible on every frame."""
    root = tmp_path_factory.mktemp("clip")
    video = render_video(
        2, SynthConfig(height=HEIGHT, width=WIDTH, num_frames=NUM_FRAMES, num_objects=(2, 2))
    )
    labels = np.zeros_like(video.labels)
    labels[video.labels == 1] = FIRST_ID
    labels[video.labels == 2] = SECOND_ID
    write_video(root / "clip.mp4", video.frames, fps=8)
    for suffix in ("jpg", "png"):
        (root / suffix).mkdir()
        for t, image in enumerate(video.frames):
            Image.fromarray(image).save(root / suffix / f"shot{t}.{suffix}")
    write_palette_png(root / "mask0.png", labels[0])
    return Clip(
        video.frames, labels, root / "clip.mp4", root / "jpg", root / "png", root / "mask0.png"
    )


# ------------------------------------------------------------------------------------- helpers


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> CliResult:
    """Run ``mobilevos ARGV`` in-process; argparse usage errors count as their exit code."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def segment_argv(source: Path, mask: Path, out: Path, *extra: object) -> list[object]:
    return ["segment", source, "--mask", mask, "--out", out, "--size", SIZE, *extra]


def read_outputs(out_dir: Path) -> dict[str, np.ndarray]:
    """Output PNGs by stem, checking that each is a palette PNG."""
    result = {}
    for path in sorted(out_dir.iterdir()):
        with Image.open(path) as image:
            assert image.mode == "P", path
        result[path.stem] = read_label_image(path)
    return result


def reference_labels(
    checkpoint: Path, source: Path, masks: dict[int, np.ndarray], backend: str = "auto"
) -> list[np.ndarray]:
    """The library's own frame-by-frame answer with the CLI's default engine (cached ONNX
    exports on the CPU) or with ``backend="torch"``: what the CLI must reproduce exactly."""
    predictor = VOSPredictor(open_engine(load_model(checkpoint), backend), size=SIZE)
    with open_frames(source) as frames:
        return [predictor.step(frame.image, mask=masks.get(frame.index)) for frame in frames]


def assert_user_error(result: CliResult, *fragments: str) -> str:
    """Exit 2, no traceback, exactly one ``error:`` line holding every fragment."""
    assert result.code == 2, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "segmented" not in result.out
    return lines[0]


def decode_video(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def packet_extents(path: Path) -> list[tuple[int, int]]:
    """(file offset, size) of every video packet, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted((p.pos, p.size) for p in container.demux(stream) if p.size)


def console_script() -> list[str]:
    """The installed ``mobilevos`` script, or an equivalent ``python -c`` if not installed."""
    script = Path(sys.executable).with_name("mobilevos")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from mobilevos.cli import main; sys.exit(main())"]


def run_script(*argv: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [*console_script(), *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


# ------------------------------------------------------------------------------- segment: works


@pytest.mark.parametrize("kind", ["mp4", "jpg", "png"])
def test_segment_writes_a_png_per_frame_and_an_overlay(
    kind: str, clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    out, overlay = tmp_path / "masks", tmp_path / "overlay.mp4"
    argv = segment_argv(
        clip.source(kind), clip.mask0, out, "--overlay", overlay, "--checkpoint", tiny_checkpoint
    )
    result = run_cli(capsys, *argv)
    assert result.code == 0, result.err
    assert f"segmented {NUM_FRAMES} frames, objects [{FIRST_ID}, {SECOND_ID}]" in result.out

    outputs = read_outputs(out)
    assert list(outputs) == clip.frame_names(kind)
    for labels in outputs.values():
        assert labels.shape == (HEIGHT, WIDTH)
        assert set(np.unique(labels).tolist()) <= {0, FIRST_ID, SECOND_ID}
    np.testing.assert_array_equal(outputs[clip.frame_names(kind)[0]], clip.labels[0])
    expected = reference_labels(tiny_checkpoint, clip.source(kind), {0: clip.labels[0]})
    for labels, want in zip(outputs.values(), expected, strict=True):
        np.testing.assert_array_equal(labels, want)

    video = decode_video(overlay)
    assert len(video) == NUM_FRAMES
    assert video[0].shape == (HEIGHT, WIDTH, 3)
    # Objects are tinted; the background only carries compression noise.
    change = np.abs(video[0].astype(int) - clip.frames[0].astype(int)).mean(axis=2)
    objects = clip.labels[0] != 0
    assert change[objects].mean() > 3 * change[~objects].mean() + 5


def test_backend_torch_runs_pytorch_and_the_default_says_what_it_exports(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "torch"
    argv = segment_argv(clip.video, clip.mask0, out, "--checkpoint", tiny_checkpoint)
    result = run_cli(capsys, *argv, "--backend", "torch")
    assert result.code == 0 and "exporting" not in result.err, result.err
    assert result.out.rstrip().endswith("(PyTorch)"), result.out
    assert not (tmp_path / "cache" / "mobilevos").exists()
    expected = reference_labels(tiny_checkpoint, clip.video, {0: clip.labels[0]}, "torch")
    for labels, want in zip(read_outputs(out).values(), expected, strict=True):
        np.testing.assert_array_equal(labels, want)
    # The default backend exports once, saying so, then finds its export.
    for name, says in (("first", True), ("again", False)):
        argv = segment_argv(
            clip.video, clip.mask0, tmp_path / name, "--checkpoint", tiny_checkpoint
        )
        result = run_cli(capsys, *argv)
        assert result.code == 0, result.err
        assert ("exporting mobilevos-tiny to ONNX" in result.err) is says, result.err
        assert ("exported and verified in" in result.err) is says, result.err
        assert result.out.rstrip().endswith("(ONNX Runtime, cached export)"), result.out
    assert len(list((tmp_path / "cache" / "mobilevos" / "exports").iterdir())) == 1


def test_segment_twice_gives_identical_pngs(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    runs = []
    for name in ("first", "second"):
        out = tmp_path / name
        argv = segment_argv(clip.video, clip.mask0, out, "--checkpoint", tiny_checkpoint)
        assert run_cli(capsys, *argv).code == 0
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert len(runs[0]) == NUM_FRAMES
    assert runs[0] == runs[1]


@pytest.mark.parametrize(
    ("kind", "stems"),
    [
        ("mp4", ("00000", f"{LATE_FRAME:05d}")),  # by frame name
        ("mp4", ("0", str(LATE_FRAME))),  # by index
        ("jpg", ("shot0", f"shot{LATE_FRAME}")),  # by frame name
        ("jpg", ("0", str(LATE_FRAME))),  # by index
    ],
    ids=["mp4-stem", "mp4-index", "jpg-stem", "jpg-index"],
)
def test_mask_folder_introduces_an_object_on_a_later_frame(
    kind: str, stems: tuple[str, str], clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    first = np.where(clip.labels[0] == FIRST_ID, FIRST_ID, 0).astype(np.uint8)
    late = np.where(clip.labels[LATE_FRAME] == SECOND_ID, SECOND_ID, 0).astype(np.uint8)
    assert late.any()
    mask_dir = tmp_path / "given"
    write_palette_png(mask_dir / f"{stems[0]}.png", first)
    write_palette_png(mask_dir / f"{stems[1]}.png", late)
    out = tmp_path / "masks"
    argv = segment_argv(clip.source(kind), mask_dir, out, "--checkpoint", tiny_checkpoint)
    result = run_cli(capsys, *argv)
    assert result.code == 0, result.err
    assert f"objects [{FIRST_ID}, {SECOND_ID}]" in result.out

    outputs = list(read_outputs(out).values())
    assert len(outputs) == NUM_FRAMES
    np.testing.assert_array_equal(outputs[0], first)
    for labels in outputs[:LATE_FRAME]:
        assert SECOND_ID not in labels
    np.testing.assert_array_equal(outputs[LATE_FRAME] == SECOND_ID, late == SECOND_ID)
    # From that frame on the object is tracked exactly as the library's predictor tracks it.
    expected = reference_labels(tiny_checkpoint, clip.source(kind), {0: first, LATE_FRAME: late})
    for labels, want in zip(outputs, expected, strict=True):
        np.testing.assert_array_equal(labels, want)


def test_untrained_preset_runs_and_warns(clip: Clip, tmp_path: Path, capsys) -> None:
    out = tmp_path / "masks"
    argv = segment_argv(clip.video, clip.mask0, out, "--model", "mobilevos-tiny", "--untrained")
    result = run_cli(capsys, *argv)
    assert result.code == 0, result.err
    assert "meaningless" in result.err.lower()
    outputs = read_outputs(out)
    assert len(outputs) == NUM_FRAMES
    np.testing.assert_array_equal(outputs["00000"], clip.labels[0])


# ------------------------------------------------------------------------------ segment: errors


class BadRun(NamedTuple):
    """How one bad run differs from a good one, and what its error line must say."""

    fragments: tuple[str, ...]
    source: Path | None = None
    mask: Path | None = None
    model: tuple[object, ...] | None = None
    overlay_name: str = "overlay.mp4"


def _mask_wrong_size(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    small = np.zeros((HEIGHT // 2, WIDTH // 2), np.uint8)
    small[4:20, 4:20] = FIRST_ID
    write_palette_png(tmp / "small.png", small)
    return BadRun(("small.png", "36x48", f"{HEIGHT}x{WIDTH}"), mask=tmp / "small.png")


def _mask_without_object(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    write_palette_png(tmp / "empty.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    return BadRun(("empty.png", "no object"), mask=tmp / "empty.png")


def _missing_input(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    return BadRun(("nowhere.mp4", "no such file"), source=tmp / "nowhere.mp4")


def _random_bytes_video(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    (tmp / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    return BadRun(("noise.mp4", "cannot open video"), source=tmp / "noise.mp4")


def _video_cut_in_half(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    data = clip.video.read_bytes()
    (tmp / "half.mp4").write_bytes(data[: len(data) // 2])
    return BadRun(("half.mp4", "video"), source=tmp / "half.mp4")


def _video_cut_inside_last_frame(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    """Decoding fails mid-stream, after some PNGs and overlay frames were already written."""
    pos, size = packet_extents(clip.video)[-1]
    (tmp / "cut.mp4").write_bytes(clip.video.read_bytes()[: pos + size // 2])
    return BadRun(("cut.mp4", "corrupt video"), source=tmp / "cut.mp4")


def _garbage_checkpoint(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    (tmp / "garbage.ckpt").write_bytes(np.random.default_rng(1).bytes(2048))
    return BadRun(
        ("garbage.ckpt", "not a readable checkpoint"), model=("--checkpoint", tmp / "garbage.ckpt")
    )


def _missing_checkpoint(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    return BadRun(("absent.ckpt", "not found"), model=("--checkpoint", tmp / "absent.ckpt"))


def _edited_checkpoint(ckpt: Path, path: Path, edit: Callable[[dict], None]) -> None:
    payload = torch.load(ckpt, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def _checkpoint_keys_renamed(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    def edit(payload: dict) -> None:
        state = payload["state_dict"]
        first, second = sorted(state)[:2]
        del state[first]
        state["legacy." + second] = state.pop(second)

    _edited_checkpoint(ckpt, tmp / "renamed.ckpt", edit)
    keys = sorted(torch.load(ckpt, weights_only=True)["state_dict"])[:2]
    # Both originals are missing; only the renamed key is unexpected.
    return BadRun(
        ("renamed.ckpt", "2 missing", "1 unexpected", keys[0], "legacy." + keys[1]),
        model=("--checkpoint", tmp / "renamed.ckpt"),
    )


def _checkpoint_of_other_architecture(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    """Tiny weights under a config without ASPP: the ASPP weights are unexpected."""

    def edit(payload: dict) -> None:
        payload["config"] = get_preset("mobilevos-tiny").replace(aspp=False).to_dict()

    _edited_checkpoint(ckpt, tmp / "no_aspp.ckpt", edit)
    return BadRun(
        ("no_aspp.ckpt", "do not match the architecture", "aspp"),
        model=("--checkpoint", tmp / "no_aspp.ckpt"),
    )


def _checkpoint_with_other_shapes(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    def edit(payload: dict) -> None:
        payload["config"] = get_preset("mobilevos-tiny").replace(key_dim=8).to_dict()

    _edited_checkpoint(ckpt, tmp / "keys8.ckpt", edit)
    return BadRun(("keys8.ckpt", "wrong shape"), model=("--checkpoint", tmp / "keys8.ckpt"))


def _unknown_preset(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    return BadRun(
        ("mobilevos-huge", "unknown preset", "mobilevos-tiny"),
        model=("--model", "mobilevos-huge", "--untrained"),
    )


def _preset_without_untrained(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    return BadRun(
        ("mobilevos-tiny", "no trained weights", "--checkpoint", "--untrained"),
        model=("--model", "mobilevos-tiny"),
    )


def _cuda_without_cuda(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    return BadRun(("cuda", "not available"), model=("--checkpoint", ckpt, "--device", "cuda"))


def _folder_mask_matching_no_frame(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    write_palette_png(tmp / "given" / "shot0.png", clip.labels[0])
    write_palette_png(tmp / "given" / "ghost.png", clip.labels[1])
    return BadRun(("given", "ghost.png", "match no frame"), source=clip.jpg_dir, mask=tmp / "given")


def _video_mask_matching_no_frame(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    """Found only after the last frame: every PNG written so far must be thrown away."""
    write_palette_png(tmp / "given" / "00000.png", clip.labels[0])
    write_palette_png(tmp / "given" / "00042.png", clip.labels[1])
    return BadRun(("given", "00042.png", "match no frame"), mask=tmp / "given")


def _overlay_of_unknown_type(clip: Clip, ckpt: Path, tmp: Path) -> BadRun:
    return BadRun(("overlay.gif",), overlay_name="overlay.gif")


BAD_RUNS: dict[str, Callable[[Clip, Path, Path], BadRun]] = {
    "mask-wrong-size": _mask_wrong_size,
    "mask-without-object": _mask_without_object,
    "missing-input": _missing_input,
    "random-bytes-mp4": _random_bytes_video,
    "mp4-cut-in-half": _video_cut_in_half,
    "mp4-cut-inside-last-frame": _video_cut_inside_last_frame,
    "garbage-checkpoint": _garbage_checkpoint,
    "missing-checkpoint": _missing_checkpoint,
    "checkpoint-keys-renamed": _checkpoint_keys_renamed,
    "checkpoint-other-architecture": _checkpoint_of_other_architecture,
    "checkpoint-other-shapes": _checkpoint_with_other_shapes,
    "unknown-preset": _unknown_preset,
    "preset-without-untrained": _preset_without_untrained,
    "cuda-without-cuda": _cuda_without_cuda,
    "folder-mask-matching-no-frame": _folder_mask_matching_no_frame,
    "video-mask-matching-no-frame": _video_mask_matching_no_frame,
    "overlay-unknown-type": _overlay_of_unknown_type,
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_segment_input_fails_cleanly(
    case: str, clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    inputs, run_dir = tmp_path / "inputs", tmp_path / "run"
    inputs.mkdir()
    run_dir.mkdir()
    bad = BAD_RUNS[case](clip, tiny_checkpoint, inputs)
    model = bad.model if bad.model is not None else ("--checkpoint", tiny_checkpoint)
    argv = segment_argv(
        bad.source or clip.video,
        bad.mask or clip.mask0,
        run_dir / "masks",
        "--overlay",
        run_dir / bad.overlay_name,
        *model,
    )
    assert_user_error(run_cli(capsys, *argv), *bad.fragments)
    assert sorted(p.name for p in run_dir.iterdir()) == []  # no output, no temp files


def test_model_and_checkpoint_together_are_refused(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    """The CLI has no "load this checkpoint as that preset": argparse rejects the pair."""
    argv = segment_argv(
        clip.video,
        clip.mask0,
        tmp_path / "masks",
        "--model",
        "mobilevos-tiny",
        "--checkpoint",
        tiny_checkpoint,
    )
    result = run_cli(capsys, *argv)
    assert result.code == 2
    assert "not allowed with" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "masks").exists()


# --------------------------------------------------------------------- segment: known problems


def test_video_truncated_at_a_frame_boundary_fails(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    pos, _ = packet_extents(clip.video)[-1]
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.video.read_bytes()[:pos])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    argv = segment_argv(truncated, clip.mask0, run_dir / "masks", "--checkpoint", tiny_checkpoint)
    assert_user_error(run_cli(capsys, *argv), "truncated.mp4")
    assert sorted(p.name for p in run_dir.iterdir()) == []


def test_frame_boundary_truncation_keeps_the_header_count(clip: Clip, tmp_path: Path) -> None:
    """The scene of the test above: the header still promises 8 frames and 7 decode."""
    pos, _ = packet_extents(clip.video)[-1]
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.video.read_bytes()[:pos])
    with open_frames(truncated) as frames:
        assert frames.num_frames == NUM_FRAMES
        decoded = []
        with pytest.raises(InputError, match=f"video ended after {NUM_FRAMES - 1} of the"):
            for frame in frames:
                decoded.append(frame.index)
        assert decoded == list(range(NUM_FRAMES - 1))


def _folder_copy(source: Path, target: Path) -> dict[str, bytes]:
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return {p.name: p.read_bytes() for p in target.iterdir()}


@pytest.mark.parametrize("target", ["frames", "masks"])
def test_out_naming_an_input_folder_is_refused(
    target: str, clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    frames = _folder_copy(clip.jpg_dir, tmp_path / "frames")
    (tmp_path / "masks").mkdir()
    write_palette_png(tmp_path / "masks" / "shot0.png", clip.labels[0])
    masks = {p.name: p.read_bytes() for p in (tmp_path / "masks").iterdir()}
    argv = segment_argv(
        tmp_path / "frames", tmp_path / "masks", tmp_path / target, "--checkpoint", tiny_checkpoint
    )
    result = run_cli(capsys, *argv)
    after_frames = {p.name: p.read_bytes() for p in (tmp_path / "frames").iterdir()}
    after_masks = {p.name: p.read_bytes() for p in (tmp_path / "masks").iterdir()}
    assert (after_frames, after_masks) == (frames, masks)
    assert_user_error(result, target)


def test_out_naming_an_existing_file_fails_cleanly(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    argv = segment_argv(
        clip.video,
        clip.mask0,
        tmp_path / "notes.txt",
        "--overlay",
        tmp_path / "overlay.mp4",
        "--checkpoint",
        tiny_checkpoint,
    )
    assert_user_error(run_cli(capsys, *argv), "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_out_folder_with_foreign_files_is_not_wiped(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    argv = segment_argv(
        clip.video, clip.mask0, tmp_path / "results", "--checkpoint", tiny_checkpoint
    )
    run_cli(capsys, *argv)
    assert (tmp_path / "results" / "notes.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------ console script


def test_console_script_exits_2_with_one_error_line(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "masks"
    proc = run_script(
        *segment_argv(tmp_path / "nowhere.mp4", clip.mask0, out, "--checkpoint", tiny_checkpoint)
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere.mp4'}: no such file or folder"
    ]
    assert not out.exists()


def test_console_script_untrained_run_warns(clip: Clip, tmp_path: Path) -> None:
    out = tmp_path / "masks"
    proc = run_script(
        *segment_argv(clip.video, clip.mask0, out, "--model", "mobilevos-tiny", "--untrained")
    )
    assert proc.returncode == 0, proc.stderr
    assert "meaningless" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert sorted(p.stem for p in out.iterdir()) == [f"{t:05d}" for t in range(NUM_FRAMES)]


# ---------------------------------------------------------------------------------------- info


def _millions(text: str, pattern: str) -> float:
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match, (pattern, text)
    return float(match.group(1))


def test_info_lists_every_preset_with_its_parameter_count(capsys) -> None:
    result = run_cli(capsys, "info")
    assert result.code == 0, result.err
    for name in available_presets():
        count = _millions(result.out, rf"^{re.escape(name)}\s+([0-9.]+)M")
        assert count > 0
        if name in PAPER_PARAMETERS_M:
            assert abs(count / PAPER_PARAMETERS_M[name] - 1) < 0.15, (name, count)
    tiny = sum(p.numel() for p in build_model(get_preset("mobilevos-tiny")).parameters())
    assert _millions(result.out, r"^mobilevos-tiny\s+([0-9.]+)M") == round(tiny / 1e6, 3)
    # FLOPs at 480x864 beside the parameters: the fast student's budget, the lite's 14.3 G.
    fast = re.search(r"^mobilevos-mbv2-fast\s+\S+\s+-\s+([0-9.]+)\s+\+([0-9.]+)%", result.out, re.M)
    assert fast and float(fast.group(1)) <= 6.0 and float(fast.group(2)) <= 15.0, result.out
    assert re.search(r"^mobilevos-mbv2-lite\s+\S+\s+1\.9M\s+14\.3\s", result.out, re.M)


def test_presets_with_shipped_weights_load_by_name(
    clip: Clip, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A preset's shipped weights load by its name (API and --model), and info marks them."""
    import mobilevos.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "ASSETS", tmp_path)
    torch.manual_seed(5)
    trained = build_model(get_preset("mobilevos-tiny"))
    save_checkpoint(trained, tmp_path / "mobilevos-tiny.ckpt")
    assert checkpoint_module.trained_presets() == ["mobilevos-tiny"]
    loaded = checkpoint_module.load_model("mobilevos-tiny")
    for (name, a), b in zip(
        trained.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    out = tmp_path / "masks"
    result = run_cli(
        capsys, *segment_argv(clip.video, clip.mask0, out, "--model", "mobilevos-tiny")
    )
    assert result.code == 0 and "meaningless" not in result.err.lower(), result.err
    expected = reference_labels(
        tmp_path / "mobilevos-tiny.ckpt", clip.source("mp4"), {0: clip.labels[0]}
    )
    for labels, want in zip(read_outputs(out).values(), expected, strict=True):
        np.testing.assert_array_equal(labels, want)
    info = run_cli(capsys, "info")
    assert re.search(r"^mobilevos-tiny\s.*trained$", info.out, re.M), info.out
    assert re.search(r"^mobilevos-mbv2-lite\s.*-$", info.out, re.M), info.out
    # Weights of another architecture under a preset's name are refused, naming the file.
    save_checkpoint(trained, tmp_path / "mobilevos-mbv2.ckpt")
    with pytest.raises(CheckpointError, match=r"mobilevos-mbv2\.ckpt: checkpoint is a"):
        checkpoint_module.load_model("mobilevos-mbv2")


def test_info_model_counts_mbv2_near_the_paper(capsys) -> None:
    result = run_cli(capsys, "info", "--model", "mobilevos-mbv2")
    assert result.code == 0, result.err
    count = _millions(result.out, r"([0-9.]+) M parameters")
    assert abs(count / 2.5 - 1) < 0.15
    total = re.search(r"^\s*total\s+([0-9,]+)\s*$", result.out, flags=re.MULTILINE)
    assert total, result.out
    assert abs(int(total.group(1).replace(",", "")) / 1e6 - count) < 5e-4


def test_info_checkpoint_names_its_config(tiny_checkpoint: Path, capsys) -> None:
    result = run_cli(capsys, "info", "--checkpoint", tiny_checkpoint)
    assert result.code == 0, result.err
    assert "mobilevos-tiny" in result.out.splitlines()[0]
    tiny = sum(p.numel() for p in build_model(get_preset("mobilevos-tiny")).parameters())
    assert _millions(result.out, r"([0-9.]+) M parameters") == round(tiny / 1e6, 3)


def test_info_garbage_checkpoint_is_a_user_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00not a checkpoint" * 64)
    result = run_cli(capsys, "info", "--checkpoint", tmp_path / "garbage.ckpt")
    assert_user_error(result, "garbage.ckpt", "not a readable checkpoint")


# ------------------------------------------------------------------------------------- convert


@pytest.mark.parametrize("kind", ["mobilevos-checkpoint", "random-bytes"])
def test_convert_stcn_refuses_other_files(
    kind: str, tiny_checkpoint: Path, tmp_path: Path, capsys
) -> None:
    if kind == "random-bytes":
        source = tmp_path / "weights.pth"
        source.write_bytes(np.random.default_rng(2).bytes(1024))
        fragments = ("weights.pth", "not a readable torch file")
    else:
        source, fragments = tiny_checkpoint, ("tiny.ckpt", "not an STCN state dict")
    result = run_cli(capsys, "convert", "stcn", source, tmp_path / "teacher.ckpt")
    assert_user_error(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["weights.pth"] if kind == "random-bytes" else []
    )


# ---------------------------------------------------------------------------------------- demo


def test_demo_writes_prompt_masks_overlay_and_contact_sheet(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from mobilevos.extras import BIG_BUCK_BUNNY, U2NETP

    out = tmp_path / "demo"
    result = run_cli(capsys, "demo", "--out", out)
    assert result.code == 0, result.err
    assert "the shipped default" in result.out
    real = BIG_BUCK_BUNNY.find() is not None and U2NETP.find() is not None
    frames, size = (132, (720, 1280)) if real else (30, (240, 432))
    assert len(decode_video(out / "overlay.mp4")) == frames
    masks = read_outputs(out / "masks")
    assert list(masks) == [f"{t:05d}" for t in range(frames)]
    first = read_label_image(out / "first.png")
    assert first.shape == size and first.any()
    np.testing.assert_array_equal(masks["00000"], first)
    # The object is followed: it is neither lost nor spread over the frame at the end.
    last_share = (masks[f"{frames - 1:05d}"] > 0).mean()
    assert 0.3 * (first > 0).mean() < last_share < 3 * (first > 0).mean()
    assert Image.open(out / "contact-sheet.png").size[0] > 6 * 100


def test_segment_without_checkpoint_uses_the_packaged_default(
    clip: Clip, tiny_checkpoint: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import mobilevos.checkpoint as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "DEFAULT_CHECKPOINT", tmp_path / "missing.ckpt")
    argv = segment_argv(clip.source("mp4"), clip.mask0, tmp_path / "a")
    assert_user_error(run_cli(capsys, *argv), "no trained default model is installed")
    monkeypatch.setattr(checkpoint_module, "DEFAULT_CHECKPOINT", tiny_checkpoint)
    result = run_cli(capsys, *segment_argv(clip.source("mp4"), clip.mask0, tmp_path / "b"))
    assert result.code == 0, result.err
    expected = reference_labels(tiny_checkpoint, clip.source("mp4"), {0: clip.labels[0]})
    for labels, want in zip(read_outputs(tmp_path / "b").values(), expected, strict=True):
        np.testing.assert_array_equal(labels, want)


# --------------------------------------------------------------------------------------- serve


def test_serve_explains_what_is_missing_in_one_line(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from mobilevos.serve import ORT_DIST

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    web = tmp_path / "web"
    web.mkdir()
    assert_user_error(run_cli(capsys, "serve", "--web-dir", web), "no web page here", "--web-dir")
    (web / "index.html").write_text("<!doctype html>")
    assert_user_error(run_cli(capsys, "serve", "--web-dir", web), "run `make web`", "npm ci")
    (web / ORT_DIST).mkdir(parents=True)
    (web / ORT_DIST / "ort.min.mjs").write_text("export {};")
    not_an_export = tmp_path / "graphs"
    not_an_export.mkdir()
    result = run_cli(capsys, "serve", "--web-dir", web, "--model-dir", not_an_export)
    assert_user_error(result, "no manifest.json")
    manifest = {
        "format_version": MANIFEST_VERSION,
        "graphs": {"encode_query": {}, "encode_value": {}, "segment": {}},
        "memory": {},
        "input_size": [32, 48],
        "max_objects": 1,
        "model_config": {},
    }
    (not_an_export / "manifest.json").write_text(json.dumps(manifest))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["serve", "--web-dir", web, "--model-dir", not_an_export, "--port", port]
        assert_user_error(run_cli(capsys, *argv), f"cannot listen on 127.0.0.1:{port}")
