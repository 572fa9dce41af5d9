"""Planning a video from its seed (:func:`plan_video`) and rendering the plan to frames."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from mobilevos.data.synth.config import SynthConfig
from mobilevos.data.synth.motion import ObjectTrack, _sample_camera, _view, sample_track
from mobilevos.data.synth.sprites import Layer, Sprite, _random_sprite, compose_frame
from mobilevos.data.synth.textures import TextureSource
from mobilevos.errors import ConfigError

logger = logging.getLogger(__name__)

_PLACEMENT_TRIES = 30


class SynthVideo(NamedTuple):
    """A rendered video.

    Shapes:
        frames: (T, H, W, 3) uint8 RGB.
        labels: (T, H, W) uint8; 0 background, 1..K objects (front-most object wins).
    """

    frames: np.ndarray
    labels: np.ndarray


class VideoPlan(NamedTuple):
    """Every random choice of one video; :func:`render_plan` needs nothing else.

    Object ``i`` (0-based) has id ``i + 1``.

    Shapes:
        canvas: (Hc, Wc, 3) uint8 background, larger than the frame.
        camera: (T, 3) float: canvas x, y seen at the frame centre, and zoom (>= 1).
    """

    height: int
    width: int
    canvas: np.ndarray
    camera: np.ndarray
    sprites: tuple[Sprite, ...]
    tracks: tuple[ObjectTrack, ...]
    depth_order: tuple[int, ...]  # object indices, back to front


def _plan_background(
    rng: np.random.Generator, config: SynthConfig, textures: TextureSource
) -> tuple[np.ndarray, np.ndarray]:
    """Canvas (with unlabelled distractor shapes) and camera path."""
    camera, canvas_h, canvas_w = _sample_camera(rng, config)
    canvas = textures.sample(rng, canvas_h, canvas_w, config.unit)
    layers = []
    for _ in range(int(rng.integers(config.distractors[0], config.distractors[1] + 1))):
        sprite = _random_sprite(rng, config, textures)
        x, y = rng.uniform(0, canvas_w), rng.uniform(0, canvas_h)
        layers.append(Layer(sprite, x, y, rng.uniform(0, 2 * np.pi), 1.0, 0))
    return compose_frame(canvas, layers).frame, camera


def _first_frame_visible(
    sprites: Sequence[Sprite],
    tracks: Sequence[ObjectTrack],
    depth: Sequence[int],
    config: SynthConfig,
) -> np.ndarray:
    """Which objects show enough of themselves in frame 0 (see the package notes)."""
    background = np.zeros((config.height, config.width, 3), np.uint8)
    labels = compose_frame(background, _layers_at(sprites, tracks, depth, 0)).labels
    counts = np.bincount(labels.ravel(), minlength=len(sprites) + 1)[1:]
    floor = max(1.0, config.min_visible_area * config.height * config.width)
    needed = [
        max(floor, config.min_visible_fraction * s.area * t.scales[0] ** 2)
        for s, t in zip(sprites, tracks, strict=True)
    ]
    return counts >= np.array(needed)


def _layers_at(
    sprites: Sequence[Sprite], tracks: Sequence[ObjectTrack], depth: Sequence[int], t: int
) -> list[Layer]:
    """The objects' layers at frame t, back to front; object i gets label i + 1."""
    layers = []
    for i in depth:
        x, y = tracks[i].centers[t]
        layers.append(Layer(sprites[i], x, y, tracks[i].angles[t], tracks[i].scales[t], i + 1))
    return layers


def _place_objects(
    rngs: Sequence[np.random.Generator],
    sprites: Sequence[Sprite],
    depth: Sequence[int],
    config: SynthConfig,
) -> tuple[list[ObjectTrack], np.ndarray]:
    """Draw trajectories until every object is visible enough in frame 0.

    Returns the tracks and a keep-mask; objects still hidden after the last try are dropped
    (dropping an occluder only reveals the others, so the kept ones stay valid).
    """
    for _ in range(_PLACEMENT_TRIES):
        tracks = [sample_track(rng, config, s.radius) for rng, s in zip(rngs, sprites, strict=True)]
        visible = _first_frame_visible(sprites, tracks, depth, config)
        if visible.all():
            break
    return tracks, visible


def plan_video(seed: int, config: SynthConfig) -> VideoPlan:
    """Draw all random choices of the video ``seed`` (a non-negative int)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synth: seed must be a non-negative integer, got {seed!r}")
    scene_seq, background_seq, objects_seq = np.random.SeedSequence(int(seed)).spawn(3)
    scene = np.random.default_rng(scene_seq)
    count = int(scene.integers(config.num_objects[0], config.num_objects[1] + 1))
    textures = TextureSource(config.texture_dir)
    canvas, camera = _plan_background(np.random.default_rng(background_seq), config, textures)
    rngs = [np.random.default_rng(s) for s in objects_seq.spawn(count)]
    sprites = [_random_sprite(rng, config, textures) for rng in rngs]
    depth = [int(i) for i in scene.permutation(count)]
    tracks, keep = _place_objects(rngs, sprites, depth, config)
    if not keep.any():
        raise ConfigError(
            "synth config: no object fits the frame-0 visibility minimum; "
            "lower min_visible_area / min_visible_fraction or raise object_size"
        )
    if not keep.all():
        logger.debug("video %d: dropped %d object(s) hidden in frame 0", seed, int((~keep).sum()))
    new_index = np.cumsum(keep) - 1
    return VideoPlan(
        height=config.height,
        width=config.width,
        canvas=canvas,
        camera=camera,
        sprites=tuple(s for s, k in zip(sprites, keep, strict=True) if k),
        tracks=tuple(t for t, k in zip(tracks, keep, strict=True) if k),
        depth_order=tuple(int(new_index[i]) for i in depth if keep[i]),
    )


def render_plan(plan: VideoPlan) -> SynthVideo:
    """Render every frame of a plan.

    Shapes:
        returns: frames (T, H, W, 3) uint8, labels (T, H, W) uint8.
    """
    frames_count = len(plan.camera)
    frames = np.empty((frames_count, plan.height, plan.width, 3), np.uint8)
    labels = np.empty((frames_count, plan.height, plan.width), np.uint8)
    canvas = Image.fromarray(plan.canvas)
    for t in range(frames_count):
        background = _view(canvas, plan.camera[t], plan.height, plan.width)
        layers = _layers_at(plan.sprites, plan.tracks, plan.depth_order, t)
        frames[t], labels[t] = compose_frame(background, layers)
    return SynthVideo(frames, labels)


def render_video(seed: int, config: SynthConfig | None = None) -> SynthVideo:
    """Render the synthetic video ``seed``; byte-identical for the same seed and config.

    Fast enough to render on the fly while training (about 1 s for 40 frames of 480x854 with
    3 objects on one CPU core); no file is read unless ``config.texture_dir`` is set.

    Shapes:
        returns: frames (T, H, W, 3) uint8 RGB, labels (T, H, W) uint8 with ids 1..K.
    """
    return render_plan(plan_video(seed, config or SynthConfig()))


def jpeg_roundtrip(frames: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode frames as JPEG, so on-the-fly frames match those written to disk.

    Shapes:
        frames: (T, H, W, 3) uint8; returns the same shape.
    """
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[t] = np.asarray(decoded.convert("RGB"))
    return out
