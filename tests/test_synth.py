"""Tests of the procedural VOS video generator (mobilevos.data.synth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobilevos.cli import main
from mobilevos.data import synth
from mobilevos.data.synth import (
    Layer,
    SynthConfig,
    make_sprite,
    plan_video,
    render_plan,
    render_video,
    sample_track,
    sequence_name,
    sprite_size,
    write_davis_dataset,
)
from mobilevos.data.synth.dataset import _split_counts
from mobilevos.data.synth.motion import _fold
from mobilevos.errors import ConfigError, InputError
from mobilevos.io import read_label_image

SMALL = SynthConfig(height=64, width=96, num_frames=6)


def _solid_square_sprite(half_side: float, colour: tuple[int, int, int]) -> synth.Sprite:
    """An axis-aligned square of the given half side (frame pixels) in one flat colour."""
    outline = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) / math.sqrt(2)
    radius = half_side * math.sqrt(2)
    size = sprite_size(radius, 1.0)
    texture = np.broadcast_to(np.array(colour, np.uint8), (size, size, 3)).copy()
    return make_sprite(outline, texture, radius, 1.0)


# ---------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_is_byte_identical_regardless_of_call_order():
    first = render_video(3, SMALL)
    render_video(4, SMALL)  # an unrelated call in between must not change anything
    again = render_video(3, SMALL)
    assert first.frames.dtype == np.uint8 and first.labels.dtype == np.uint8
    assert first.frames.shape == (6, 64, 96, 3) and first.labels.shape == (6, 64, 96)
    assert first.frames.tobytes() == again.frames.tobytes()
    assert first.labels.tobytes() == again.labels.tobytes()


def test_different_seeds_give_different_videos():
    a, b = render_video(10, SMALL), render_video(11, SMALL)
    assert not np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.labels, b.labels)


# ---------------------------------------------------------------------------------------------
# Frame 0 and labels


@pytest.mark.parametrize("seed", range(8))
def test_every_object_visible_in_frame_zero_with_ids_one_to_k(seed):
    config = SynthConfig(height=64, width=96, num_frames=3, num_objects=(2, 4))
    plan = plan_video(seed, config)
    video = render_plan(plan)
    k = len(plan.sprites)
    assert 1 <= k <= 4
    ids = set(np.unique(video.labels[0]).tolist()) - {0}
    assert ids == set(range(1, k + 1))  # no gaps
    counts = np.bincount(video.labels[0].ravel(), minlength=k + 1)
    floor = config.min_visible_area * config.height * config.width
    for i, sprite in enumerate(plan.sprites):
        assert counts[i + 1] >= floor
        assert counts[i + 1] >= config.min_visible_fraction * sprite.area
    assert int(video.labels.max()) <= k  # later frames never invent ids


def test_config_validation_rejects_bad_values():
    with pytest.raises(ConfigError, match="num_objects"):
        SynthConfig(num_objects=(0, 2))
    with pytest.raises(ConfigError, match="scale_range"):
        SynthConfig(scale_range=(1.2, 2.0))
    with pytest.raises(ConfigError, match="unknown shapes"):
        SynthConfig(shapes=("cube",))
    with pytest.raises(ConfigError, match="exit_probability"):
        SynthConfig(exit_probability=1.5)
    assert SynthConfig(num_objects=[1, 2]).num_objects == (1, 2)  # lists from YAML become tuples


# ---------------------------------------------------------------------------------------------
# Occlusion


@pytest.mark.parametrize("front_is_first", [False, True])
def test_front_object_owns_the_overlap(front_is_first):
    red = _solid_square_sprite(10, (255, 0, 0))
    blue = _solid_square_sprite(10, (0, 0, 255))
    # Red square spans x in [20, 40], blue x in [30, 50]; both y in [20, 40].
    layers = [Layer(red, 30, 30, 0.0, 1.0, 1), Layer(blue, 40, 30, 0.0, 1.0, 2)]
    if front_is_first:
        layers.reverse()
    front = layers[-1]
    background = np.full((60, 70, 3), 100, np.uint8)
    frame, labels = synth.compose_frame(background, layers)
    overlap = (slice(21, 39), slice(31, 39))  # interior of the overlap, 1 px from every edge
    assert np.all(labels[overlap] == front.label)
    front_colour = (255, 0, 0) if front.label == 1 else (0, 0, 255)
    assert np.all(frame[overlap] == front_colour)
    assert np.all(labels[21:39, 21:29] == 1)  # red-only part
    assert np.all(labels[21:39, 41:49] == 2)  # blue-only part
    assert np.all(labels[:19] == 0) and np.all(frame[:19] == 100)
    # The front square keeps its full area (20 x 20, give or take one edge row/column).
    assert abs(int(np.count_nonzero(labels == front.label)) - 400) <= 40


def test_rendered_video_respects_the_plans_depth_order():
    config = SynthConfig(
        height=64, width=96, num_frames=2, num_objects=(2, 2), object_size=(0.5, 0.6)
    )
    plan = plan_video(4, config)
    back, front = plan.depth_order
    swapped = render_plan(plan._replace(depth_order=(front, back)))
    original = render_plan(plan)
    # Where the two objects overlap, the label flips with the order; elsewhere nothing changes.
    alone = [render_plan(plan._replace(depth_order=(i,))).labels for i in (back, front)]
    overlap = (alone[0] == back + 1) & (alone[1] == front + 1)
    assert overlap.sum() >= 20  # the seed was picked so that the objects overlap
    assert np.all(original.labels[overlap] == front + 1)
    assert np.all(swapped.labels[overlap] == back + 1)
    assert np.array_equal(original.labels[~overlap], swapped.labels[~overlap])


# ---------------------------------------------------------------------------------------------
# Motion


def test_tracks_bounce_inside_the_box_within_speed_and_scale_limits():
    config = SynthConfig(height=64, width=96, num_frames=60, exit_probability=0.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        track = sample_track(rng, config, radius=10.0)
        x, y = track.centers[:, 0], track.centers[:, 1]
        assert np.all((x >= 0.1 * 96 - 1e-9) & (x <= 0.9 * 96 + 1e-9))
        assert np.all((y >= 0.1 * 64 - 1e-9) & (y <= 0.9 * 64 + 1e-9))
        steps = np.hypot(*np.diff(track.centers, axis=0).T)
        assert np.all(steps <= config.speed[1] * config.unit + 1e-9)
        assert track.scales[0] == 1.0
        assert np.all(track.scales >= config.scale_range[0] - 1e-9)
        assert np.all(track.scales <= config.scale_range[1] + 1e-9)
        assert not track.offscreen.any()


def test_fold_matches_a_naive_bouncing_simulation():
    positions, velocity, low, high = [2.0], 1.7, 0.0, 5.0
    for _ in range(30):
        nxt = positions[-1] + velocity
        if nxt > high:
            nxt, velocity = 2 * high - nxt, -velocity
        elif nxt < low:
            nxt, velocity = 2 * low - nxt, -velocity
        positions.append(nxt)
    folded = _fold(2.0 + 1.7 * np.arange(31), low, high)
    np.testing.assert_allclose(folded, positions, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_object_that_leaves_is_absent_then_present_again(seed):
    config = SynthConfig(
        height=64, width=96, num_frames=12, num_objects=(1, 1), exit_probability=1.0
    )
    plan = plan_video(seed, config)
    offscreen = plan.tracks[0].offscreen
    assert offscreen.any() and not offscreen[0] and not offscreen[-1]
    labels = render_plan(plan).labels
    present = (labels == 1).reshape(len(labels), -1).any(axis=1)
    assert present[0]
    assert not present[offscreen].any()
    last_out = int(np.flatnonzero(offscreen)[-1])
    assert present[last_out + 1 :].any() and present[-1]


# ---------------------------------------------------------------------------------------------
# Textures


def test_textures_are_cut_from_the_given_images(tmp_path):
    folder = tmp_path / "textures"
    folder.mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(folder / "red.png")
    Image.new("RGB", (30, 40), (0, 0, 255)).save(folder / "blue.jpg", quality=100)
    config = SynthConfig(height=64, width=96, num_frames=3, texture_dir=str(folder))
    video = render_video(1, config)
    # Blends of pure red and pure blue have no green; procedural textures would.
    assert int(video.frames[..., 1].max()) <= 2
    assert np.array_equal(video.frames, render_video(1, config).frames)


def test_bad_texture_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no images"):
        render_video(0, SynthConfig(height=64, width=96, num_frames=2, texture_dir=str(tmp_path)))
    with pytest.raises(InputError, match="not found"):
        render_video(0, SynthConfig(texture_dir=str(tmp_path / "missing")))


# ---------------------------------------------------------------------------------------------
# DAVIS layout


def test_write_davis_dataset_layout_and_contents(tmp_path):
    out = write_davis_dataset(tmp_path / "ds", 5, SMALL, seed=7, val_fraction=0.4, progress=False)
    names = [sequence_name(7, i) for i in range(5)]
    assert names[0] == "synth-7000000"
    train = (out / "ImageSets/2017/train.txt").read_text().split()
    val = (out / "ImageSets/2017/val.txt").read_text().split()
    assert train == names[:3] and val == names[3:]
    assert not set(train) & set(val)
    assert sorted(p.name for p in (out / "JPEGImages/480p").iterdir()) == names
    meta = json.loads((out / synth.MARKER_FILE).read_text())
    assert meta["seed"] == 7 and meta["config"]["height"] == 64
    name = names[2]
    expected = render_video(7_000_002, SMALL)
    expected_jpeg = synth.jpeg_roundtrip(expected.frames, SMALL.jpeg_quality)
    frames = sorted((out / "JPEGImages/480p" / name).iterdir())
    masks = sorted((out / "Annotations/480p" / name).iterdir())
    assert [p.name for p in frames] == [f"{t:05d}.jpg" for t in range(6)]
    assert [p.name for p in masks] == [f"{t:05d}.png" for t in range(6)]
    for t, (frame_path, mask_path) in enumerate(zip(frames, masks, strict=True)):
        with Image.open(mask_path) as image:
            assert image.mode == "P"
        assert np.array_equal(read_label_image(mask_path), expected.labels[t])
        with Image.open(frame_path) as image:
            assert image.format == "JPEG" and image.size == (96, 64)
            assert np.array_equal(np.asarray(image.convert("RGB")), expected_jpeg[t])
    assert not list(tmp_path.glob(".ds.*"))  # no temporary folder left behind


def test_workers_give_the_same_files_as_serial(tmp_path):
    serial = write_davis_dataset(tmp_path / "a", 3, SMALL, seed=2, progress=False)
    pooled = write_davis_dataset(tmp_path / "b", 3, SMALL, seed=2, workers=2, progress=False)
    files = sorted(p.relative_to(serial) for p in serial.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(pooled) for p in pooled.rglob("*") if p.is_file())
    for rel in files:
        assert (serial / rel).read_bytes() == (pooled / rel).read_bytes(), rel


def test_existing_output_folders_are_protected(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a synthetic dataset"):
        write_davis_dataset(foreign, 1, SMALL, overwrite=True, progress=False)
    assert (foreign / "thesis.tex").read_text() == "precious"
    out = write_davis_dataset(tmp_path / "ds", 1, SMALL, seed=0, progress=False)
    with pytest.raises(InputError, match="overwrite"):
        write_davis_dataset(out, 1, SMALL, seed=1, progress=False)
    write_davis_dataset(out, 1, SMALL, seed=1, overwrite=True, progress=False)
    assert (out / "ImageSets/2017/train.txt").read_text().split() == ["synth-1000000"]
    assert not (out / "JPEGImages/480p/synth-000000").exists()


def test_split_counts_keep_both_splits_when_asked():
    assert _split_counts(10, 0.2) == 2
    assert _split_counts(2, 0.2) == 1
    assert _split_counts(2, 0.9) == 1
    assert _split_counts(1, 0.2) == 0 and _split_counts(1, 0.5) == 1
    assert _split_counts(5, 0.0) == 0 and _split_counts(5, 1.0) == 5


# ---------------------------------------------------------------------------------------------
# Command line


def test_synth_command_writes_a_dataset(tmp_path):
    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--videos", "2", "--frames", "2", "--size", "32x48"]
    assert main(argv) == 0
    frame = out / "JPEGImages/480p/synth-000001/00001.jpg"
    with Image.open(frame) as image:
        assert image.size == (48, 32)
    assert (out / "ImageSets/2017/val.txt").read_text().split() == ["synth-000001"]


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--size", "480by854"], "480x854"),
        (["--videos", "0"], "number of videos"),
        (["--frames", "0"], "num_frames"),
        (["--val-fraction", "1.5"], "val fraction"),
        (["--textures", "/nonexistent/textures"], "texture folder not found"),
    ],
)
def test_synth_command_rejects_bad_arguments(tmp_path, capsys, argv, pattern):
    base = {"--out": str(tmp_path / "x"), "--videos": "1", "--size": "32x48"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    assert main(["synth", *(item for pair in base.items() for item in pair)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and pattern in err, err
    assert not Path(tmp_path / "x").exists()


def test_jpeg_roundtrip_keeps_shape_and_picture():
    frames = render_video(0, SMALL).frames.astype(np.float32)
    other = render_video(1, SMALL).frames.astype(np.float32)
    out = synth.jpeg_roundtrip(frames.astype(np.uint8), quality=90)
    assert out.shape == frames.shape and out.dtype == np.uint8
    error = np.abs(out - frames).mean()
    assert 0 < error < 0.5 * np.abs(frames - other).mean()  # lossy, but the same pictures
