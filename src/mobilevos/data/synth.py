"""Seeded procedural videos for semi-supervised VOS: our stand-in for DAVIS and BL30K.

A video is made in two steps. :func:`plan_video` draws every random choice from the seed
(textures, shapes, depth order, object trajectories, camera path); :func:`render_plan` turns the
plan into frames and labels with plain arithmetic. :func:`render_video` does both.

Decisions (each a :class:`SynthConfig` field where it has a knob):

* **Randomness.** ``np.random.SeedSequence(seed)`` is spawned into independent streams (scene
  layout, background, one per object). Nothing reads global state, so the output depends only on
  ``(seed, config)``: not on the process, the thread count or what was rendered before.
* **Textures.** Procedural by default: multi-scale value noise, stripes (optionally warped),
  rotated checkers, linear/radial gradients and dot grids, mapped through a random ramp of 2-4
  colours and mixed with fine grain. With ``texture_dir``, a texture is a random crop of an image
  from that folder: the crop keeps the target's aspect ratio, its width is 30-100% of the
  largest such crop, its position is uniform, it is resized bilinearly and flipped with
  probability 1/2. Objects and background draw from the same distribution, and the background
  carries unlabelled *distractor* shapes of the same families, so neither colour nor shape alone
  tells an object from the background.
* **Shapes.** Star-shaped polygons around the object's centre: smooth blobs (radius a low-order
  Fourier series of the angle), star polygons (alternating outer/inner vertices) and ellipses,
  rasterised at 4x and box-filtered into an anti-aliased alpha. A pixel belongs to an object
  where its alpha is at least 1/2.
* **Occlusion.** One random depth order per video, fixed over time and independent of the ids
  (a low id is not a cue for "behind"). Objects are composited back to front and each writes its
  id where its alpha >= 1/2, so occluded parts belong to the front object.
* **Trajectories.** The centre integrates a velocity that starts at a random speed and direction
  and changes by small Gaussian accelerations (clipped to the maximum speed); the path is then
  folded into the central 80% of the frame, i.e. it bounces off that box's walls. The angle
  turns at a constant random rate; the log-scale moves at a constant rate and bounces inside
  ``scale_range``. With probability ``exit_probability`` the object also makes an *excursion*:
  it slides (cosine ramp) straight out through the nearest frame edge, stays wholly outside for
  at least one frame (:attr:`ObjectTrack.offscreen`) and slides back onto its path. Frame 0 is
  never part of an excursion and the object is back before the last frame.
* **Camera.** The background is a canvas larger than the frame, viewed with a pan (random-walk
  velocity) and a zoom (log-zoom bouncing in ``[1, 1 + background_zoom]``). Objects move in
  screen space.
* **Frame 0.** Every object is annotated there, so each must show at least
  ``min_visible_fraction`` of its own area and ``min_visible_area`` of the frame. Placements are
  redrawn until that holds (at most 30 tries); objects that still fail are dropped and the rest
  renumbered, so the ids in frame 0 are always exactly ``1..K``.
"""

from __future__ import annotations

import argparse
import colorsys
import dataclasses
import io
import json
import logging
import math
import multiprocessing
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError
from tqdm import tqdm

from mobilevos.errors import ConfigError, InputError
from mobilevos.io import atomic_dir, write_palette_png

logger = logging.getLogger(__name__)

SHAPE_FAMILIES = ("blob", "star", "ellipse")
MARKER_FILE = "synth.json"
"""Written at the root of every generated dataset; :func:`write_davis_dataset` only ever replaces
a non-empty folder that holds it."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_SUPERSAMPLE = 4  # polygon rasterisation factor before box filtering (anti-aliased alpha)
_BOX_MARGIN = 0.1  # object centres bounce inside [margin, 1 - margin] of the frame
_PLACEMENT_TRIES = 30
_SEEDS_PER_DATASET = 1_000_000  # video seed = dataset seed * this + index


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator. Lengths are fractions of the frame's short side ("unit").

    Attributes:
        height, width: frame size in pixels.
        num_frames: frames T per video.
        num_objects: inclusive range of objects K per video (ids 1..K).
        object_size: range of an object's diameter at scale 1, as a fraction of the unit.
        speed: range of an object's initial speed, unit per frame; the upper end is a hard cap.
        acceleration: std of the per-frame velocity change, unit per frame.
        rotation_speed: largest angular speed, degrees per frame.
        scale_range: scales an object may take relative to frame 0 (must contain 1).
        scale_speed: largest change of log-scale per frame.
        exit_probability: chance that an object leaves the frame and comes back.
        background_pan: largest camera pan speed, unit per frame.
        background_zoom: largest camera zoom-in, as ``zoom - 1``.
        zoom_speed: largest change of log-zoom per frame.
        texture_dir: folder of images to cut textures from; None for procedural textures.
        shapes: shape families drawn from (subset of ``SHAPE_FAMILIES``).
        distractors: inclusive range of unlabelled shapes painted on the background.
        min_visible_fraction: part of its own area each object shows in frame 0.
        min_visible_area: area each object shows in frame 0, as a fraction of the frame.
        jpeg_quality: quality of the JPEG frames written by :func:`write_davis_dataset`.
    """

    height: int = 480
    width: int = 854
    num_frames: int = 40
    num_objects: tuple[int, int] = (1, 4)
    object_size: tuple[float, float] = (0.15, 0.6)
    speed: tuple[float, float] = (0.0, 0.03)
    acceleration: float = 0.004
    rotation_speed: float = 4.0
    scale_range: tuple[float, float] = (0.7, 1.4)
    scale_speed: float = 0.02
    exit_probability: float = 0.25
    background_pan: float = 0.01
    background_zoom: float = 0.2
    zoom_speed: float = 0.005
    texture_dir: str | None = None
    shapes: tuple[str, ...] = SHAPE_FAMILIES
    distractors: tuple[int, int] = (0, 3)
    min_visible_fraction: float = 0.4
    min_visible_area: float = 0.002
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for name in ("num_objects", "object_size", "speed", "scale_range", "shapes", "distractors"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # lists from YAML/JSON
        if self.texture_dir is not None:
            object.__setattr__(self, "texture_dir", str(self.texture_dir))
        _check(self.height >= 16 and self.width >= 16, "height and width must be >= 16")
        _check(self.num_frames >= 1, "num_frames must be >= 1")
        _check_range("num_objects", self.num_objects, 1, 254)
        _check_range("object_size", self.object_size, 1e-3, 2.0)
        _check_range("speed", self.speed, 0.0, 1.0)
        _check_range("scale_range", self.scale_range, 1e-2, 100.0)
        _check(self.scale_range[0] <= 1.0 <= self.scale_range[1], "scale_range must contain 1")
        _check_range("distractors", self.distractors, 0, 1000)
        for name in ("acceleration", "rotation_speed", "scale_speed", "background_pan"):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0")
        _check(self.background_zoom >= 0 and self.zoom_speed >= 0, "zoom knobs must be >= 0")
        for name in ("exit_probability", "min_visible_fraction", "min_visible_area"):
            _check(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1]")
        _check(len(self.shapes) > 0, "shapes must not be empty")
        unknown = sorted(set(self.shapes) - set(SHAPE_FAMILIES))
        _check(not unknown, f"unknown shapes {unknown}; choose from {list(SHAPE_FAMILIES)}")
        _check(1 <= self.jpeg_quality <= 100, "jpeg_quality must be in 1..100")

    @property
    def unit(self) -> float:
        """The frame's short side in pixels: the unit of every relative length."""
        return float(min(self.height, self.width))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"synth config: {message}")


def _check_range(name: str, values: tuple, low: float, high: float) -> None:
    _check(len(values) == 2, f"{name} must be a (min, max) pair, got {values}")
    _check(
        low <= values[0] <= values[1] <= high, f"{name} must satisfy {low} <= min <= max <= {high}"
    )


class SynthVideo(NamedTuple):
    """A rendered video.

    Shapes:
        frames: (T, H, W, 3) uint8 RGB.
        labels: (T, H, W) uint8; 0 background, 1..K objects (front-most object wins).
    """

    frames: np.ndarray
    labels: np.ndarray


class Sprite(NamedTuple):
    """An object's look in its own coordinates: texture plus a soft silhouette.

    The shape's centre is the middle of ``rgba``; one frame pixel at scale 1 spans ``density``
    sprite pixels (``density`` is the largest scale, so sprites are mostly shrunk, not blurred).

    Shapes:
        rgba: (S, S, 4) uint8; alpha is the anti-aliased silhouette.
    """

    rgba: np.ndarray
    radius: float  # frame pixels at scale 1 reached by the farthest point of the shape
    density: float
    area: float  # frame pixels covered (alpha >= 1/2) at scale 1


class ObjectTrack(NamedTuple):
    """Pose of one object over the video.

    Shapes:
        centers: (T, 2) float x, y in frame pixels (continuous: pixel (i, j) spans [j, j+1)).
        angles: (T,) float radians; positive turns clockwise on screen (y points down).
        scales: (T,) float, 1 at frame 0.
        offscreen: (T,) bool, frames where an excursion keeps the object wholly outside.
    """

    centers: np.ndarray
    angles: np.ndarray
    scales: np.ndarray
    offscreen: np.ndarray


class Layer(NamedTuple):
    """A sprite at one pose; :func:`compose_frame` draws a list of them back to front."""

    sprite: Sprite
    x: float
    y: float
    angle: float
    scale: float
    label: int


class Composite(NamedTuple):
    """One composed frame. Shapes: frame (H, W, 3) uint8, labels (H, W) uint8."""

    frame: np.ndarray
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


# ----------------------------------------------------------------------------------------------
# Textures


def _value_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Fractal value noise in [0, 1]: bicubic-upsampled random grids, halving the cell size."""
    total = np.zeros((height, width), np.float32)
    amplitude = 1.0
    for _ in range(4):
        grid_h = max(2, math.ceil(height / cell) + 1)
        grid_w = max(2, math.ceil(width / cell) + 1)
        grid = Image.fromarray(rng.random((grid_h, grid_w), dtype=np.float32))
        total += amplitude * np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC))
        amplitude *= 0.5
        cell = max(2.0, cell / 2)
    return _normalise(total)


def _normalise(field: np.ndarray) -> np.ndarray:
    low, high = float(field.min()), float(field.max())
    return (field - low) / (high - low) if high > low else np.zeros_like(field)


def _pattern(rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
    """One scalar pattern in [0, 1]: noise, stripes, checkers, gradient or dots."""
    kind = rng.choice(["noise", "stripes", "checkers", "gradient", "dots"])
    if kind == "noise":
        return _value_noise(rng, height, width, rng.uniform(0.05, 0.4) * unit)
    theta = rng.uniform(0, math.pi)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    u = xs * math.cos(theta) + ys * math.sin(theta)
    v = ys * math.cos(theta) - xs * math.sin(theta)
    period = rng.uniform(0.03, 0.2) * unit
    if kind == "stripes":
        warp = rng.uniform(0, 3) * _value_noise(rng, height, width, 0.3 * unit)
        return 0.5 + 0.5 * np.sin(2 * np.pi * u / period + warp)
    if kind == "checkers":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if kind == "dots":
        wave = np.sin(np.pi * u / period) * np.sin(np.pi * v / period)
        return (np.abs(wave) > rng.uniform(0.3, 0.8)).astype(np.float32)
    if rng.random() < 0.5:  # radial gradient around a random point
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        return _normalise(np.hypot(xs - cx, ys - cy))
    return _normalise(u)


def _random_colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` RGB colours in [0, 255] spread over hue, saturation and value."""
    hsv = zip(rng.random(count), rng.uniform(0, 1, count), rng.uniform(0.1, 1, count), strict=True)
    return np.array([colorsys.hsv_to_rgb(*c) for c in hsv], np.float32) * 255


def _colour_ramp(field: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Map a [0, 1] field through a piecewise-linear ramp of colours; returns (h, w, 3) float."""
    position = field * (len(colours) - 1)
    index = np.clip(position.astype(np.int64), 0, len(colours) - 2)
    frac = (position - index)[..., None]
    return colours[index] * (1 - frac) + colours[index + 1] * frac


def procedural_texture(
    rng: np.random.Generator, height: int, width: int, unit: float
) -> np.ndarray:
    """A random procedural texture; feature sizes scale with ``unit`` (the frame's short side).

    Shapes:
        returns: (height, width, 3) uint8 RGB.
    """
    field = _pattern(rng, height, width, unit)
    if rng.random() < 0.5:  # blend in a second pattern for richer structure
        mix = rng.uniform(0.2, 0.5)
        field = (1 - mix) * field + mix * _pattern(rng, height, width, unit)
    rgb = _colour_ramp(field, _random_colours(rng, int(rng.integers(2, 5))))
    grain = rng.uniform(0, 0.3)
    if grain > 0.05:
        fine = _value_noise(rng, height, width, rng.uniform(2, 8))
        rgb *= (1 - grain + 2 * grain * fine)[..., None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


class TextureSource:
    """Draws textures: procedural, or random crops of the images in ``texture_dir``."""

    def __init__(self, texture_dir: str | Path | None) -> None:
        self.files: list[Path] = []
        if texture_dir is None:
            return
        folder = Path(texture_dir)
        if not folder.is_dir():
            raise InputError(folder, "texture folder not found")
        self.files = sorted(
            (p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: p.relative_to(folder).as_posix(),
        )
        if not self.files:
            raise InputError(folder, f"no images ({', '.join(_IMAGE_SUFFIXES)}) in texture folder")

    def sample(self, rng: np.random.Generator, height: int, width: int, unit: float) -> np.ndarray:
        """A (height, width, 3) uint8 RGB texture."""
        if not self.files:
            return procedural_texture(rng, height, width, unit)
        return _crop_texture(rng, self.files[int(rng.integers(len(self.files)))], height, width)


def _crop_texture(rng: np.random.Generator, path: Path, height: int, width: int) -> np.ndarray:
    """A random crop of the image at ``path`` with the target's aspect, resized to it."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, f"cannot read texture image ({exc.__class__.__name__})") from None
    src_w, src_h = image.size
    aspect = width / height
    crop_w = min(src_w, src_h * aspect) * rng.uniform(0.3, 1.0)
    crop_h = crop_w / aspect
    left, top = rng.uniform(0, src_w - crop_w), rng.uniform(0, src_h - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    crop = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Shapes and sprites


def shape_outline(rng: np.random.Generator, family: str) -> np.ndarray:
    """Vertices of a shape centred on the origin, farthest vertex at distance 1.

    Shapes:
        returns: (N, 2) float x, y.
    """
    if family == "star":
        points = int(rng.integers(3, 9))
        angles = np.arange(2 * points) * np.pi / points + rng.normal(0, 0.1, 2 * points)
        radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, rng.uniform(0.35, 0.7))
        radii = radii * rng.uniform(0.8, 1.0, 2 * points)
    else:
        angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
        if family == "ellipse":
            minor = rng.uniform(0.4, 1.0)
            radii = minor / np.hypot(minor * np.cos(angles), np.sin(angles))
        elif family == "blob":
            radii = np.ones_like(angles)
            for k, amplitude in enumerate(rng.uniform(0, 0.15, 4), start=2):
                radii += amplitude * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
        else:
            raise ConfigError(f"synth config: unknown shape family {family!r}")
    radii = radii / radii.max()
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def make_sprite(outline: np.ndarray, texture: np.ndarray, radius: float, density: float) -> Sprite:
    """Rasterise ``outline`` (unit radius) at ``radius`` frame pixels over ``texture``.

    Shapes:
        outline: (N, 2) vertices with largest norm 1.
        texture: (S, S, 3) uint8 with ``S = sprite_size(radius, density)``.
    """
    size = texture.shape[0]
    big = size * _SUPERSAMPLE
    points = big / 2 + outline * radius * density * _SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points.tolist()], fill=255)
    alpha = np.asarray(mask.reduce(_SUPERSAMPLE), dtype=np.uint8)
    rgba = np.concatenate([texture, alpha[..., None]], axis=2)
    area = float(np.count_nonzero(alpha >= 128)) / density**2
    return Sprite(rgba=rgba, radius=radius, density=density, area=area)


def sprite_size(radius: float, density: float) -> int:
    """Side S of a sprite holding a shape of ``radius`` frame pixels at ``density``."""
    return math.ceil(2 * radius * density) + 4


def _random_sprite(
    rng: np.random.Generator, config: SynthConfig, textures: TextureSource
) -> Sprite:
    """A random shape of a random family and size, with a random texture."""
    family = config.shapes[int(rng.integers(len(config.shapes)))]
    outline = shape_outline(rng, family)
    radius = rng.uniform(*config.object_size) * config.unit / 2
    density = max(1.0, config.scale_range[1])
    size = sprite_size(radius, density)
    sprite = make_sprite(outline, textures.sample(rng, size, size, config.unit), radius, density)
    needed = config.min_visible_area * config.height * config.width
    if sprite.area < needed:  # a thin star can fall below the frame-0 minimum: enlarge it
        radius *= math.sqrt(needed / max(sprite.area, 1e-6)) * 1.1
        size = sprite_size(radius, density)
        sprite = make_sprite(
            outline, textures.sample(rng, size, size, config.unit), radius, density
        )
    return sprite


# ----------------------------------------------------------------------------------------------
# Compositing


def _warp_sprite(
    layer: Layer, height: int, width: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The sprite rotated, scaled and moved, cut to its box inside the frame.

    Returns ``((y0, y1, x0, x1), rgba)`` with rgba (y1-y0, x1-x0, 4) uint8, or None when the
    object lies wholly outside the frame.
    """
    sprite, x, y = layer.sprite, layer.x, layer.y
    reach = sprite.radius * layer.scale + 2  # alpha is zero beyond this distance
    x0, y0 = max(0, math.floor(x - reach)), max(0, math.floor(y - reach))
    x1, y1 = min(width, math.ceil(x + reach)), min(height, math.ceil(y + reach))
    if x0 >= x1 or y0 >= y1:
        return None
    # Inverse map, box pixel -> sprite pixel: q = S/2 + k * R(-angle) (p - centre).
    k = sprite.density / layer.scale
    cos, sin = math.cos(layer.angle), math.sin(layer.angle)
    half = sprite.rgba.shape[0] / 2
    coefficients = (
        k * cos,
        k * sin,
        half + k * (cos * (x0 - x) + sin * (y0 - y)),
        -k * sin,
        k * cos,
        half + k * (cos * (y0 - y) - sin * (x0 - x)),
    )
    image = Image.fromarray(sprite.rgba)
    warped = image.transform(
        (x1 - x0, y1 - y0), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return (y0, y1, x0, x1), np.asarray(warped, dtype=np.uint8)


def compose_frame(background: np.ndarray, layers: Sequence[Layer]) -> Composite:
    """Alpha-blend ``layers`` over ``background`` back to front and paint their labels.

    Each layer writes its label where its alpha is >= 1/2, overwriting earlier layers, so the
    front-most object owns every pixel it covers.

    Shapes:
        background: (H, W, 3) uint8.
        returns: frame (H, W, 3) uint8, labels (H, W) uint8.
    """
    height, width = background.shape[:2]
    frame = background.astype(np.float32)
    labels = np.zeros((height, width), np.uint8)
    for layer in layers:
        placed = _warp_sprite(layer, height, width)
        if placed is None:
            continue
        (y0, y1, x0, x1), rgba = placed
        alpha = rgba[..., 3:].astype(np.float32) / 255
        region = frame[y0:y1, x0:x1]
        region *= 1 - alpha
        region += alpha * rgba[..., :3]
        labels[y0:y1, x0:x1][rgba[..., 3] >= 128] = layer.label
    return Composite(np.clip(frame + 0.5, 0, 255).astype(np.uint8), labels)


# ----------------------------------------------------------------------------------------------
# Motion


def _fold(values: np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """Reflect values into [low, high], as a point bouncing between two walls."""
    span = np.asarray(high, np.float64) - low
    if np.any(span <= 0):
        return np.broadcast_to((np.asarray(low) + high) / 2, values.shape).copy()
    phase = np.mod(values - low, 2 * span)
    return low + np.where(phase <= span, phase, 2 * span - phase)


def _random_walk(rng: np.random.Generator, count: int, speed: float, cap: float, accel: float):
    """Per-frame 2-D steps: random initial velocity plus Gaussian accelerations, norm <= cap.

    Shapes:
        returns: (count, 2); row 0 is zero (frame 0 does not move).
    """
    direction = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([math.cos(direction), math.sin(direction)])
    steps = np.zeros((count, 2))
    for t in range(1, count):
        velocity = velocity + rng.normal(0, accel, 2)
        norm = float(np.hypot(*velocity))
        if norm > cap:
            velocity *= cap / norm
        steps[t] = velocity
    return steps


def sample_track(rng: np.random.Generator, config: SynthConfig, radius: float) -> ObjectTrack:
    """A random trajectory for an object of ``radius`` frame pixels (see the module notes)."""
    frames, unit = config.num_frames, config.unit
    low = np.array([config.width, config.height]) * _BOX_MARGIN
    high = np.array([config.width, config.height]) * (1 - _BOX_MARGIN)
    start = rng.uniform(low, high)
    steps = _random_walk(
        rng,
        frames,
        rng.uniform(*config.speed) * unit,
        config.speed[1] * unit,
        config.acceleration * unit,
    )
    centers = _fold(start + np.cumsum(steps, axis=0), low, high)
    time = np.arange(frames, dtype=np.float64)
    spin = math.radians(rng.uniform(-config.rotation_speed, config.rotation_speed))
    angles = rng.uniform(0, 2 * np.pi) + spin * time
    log_low, log_high = np.log(config.scale_range)
    growth = rng.uniform(-config.scale_speed, config.scale_speed)
    scales = np.exp(_fold(growth * time, log_low, log_high)) if log_high > log_low else time * 0 + 1
    offscreen = np.zeros(frames, bool)
    if rng.random() < config.exit_probability:
        reach = radius * scales + 3
        centers, offscreen = _exit_excursion(rng, centers, reach, config.height, config.width)
    return ObjectTrack(centers, angles, scales, offscreen)


def _exit_excursion(
    rng: np.random.Generator, centers: np.ndarray, reach: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Push the object out through the nearest edge and back: ramp out, hold outside, ramp in.

    Frames ``[start, start + ramp)`` slide out, the next ``hold`` frames are wholly outside,
    the next ``ramp`` slide back; ``start >= 1`` and the object is back on its path at the
    latest on the last frame. Returns the new centres and the ``offscreen`` flags.
    """
    frames = len(centers)
    ramp = max(1, min(4, frames // 8))
    hold = int(rng.integers(1, max(1, frames // 4) + 1))
    latest_start = frames - 1 - (2 * ramp + hold)
    if latest_start < 1:
        return centers, np.zeros(frames, bool)
    start = int(rng.integers(1, latest_start + 1))
    held = slice(start + ramp, start + ramp + hold)
    middle = centers[held].mean(axis=0)
    gaps = [middle[0], width - middle[0], middle[1], height - middle[1]]  # left right top bottom
    side = int(np.argmin(gaps))
    axis, sign = side // 2, (-1.0 if side % 2 == 0 else 1.0)
    edge = 0.0 if sign < 0 else float((width, height)[axis])
    distance = float(np.max(sign * (edge - centers[held, axis]) + reach[held])) + 1
    weight = np.zeros(frames)
    ramp_in = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, ramp + 1) / (ramp + 1))
    weight[start : start + ramp] = ramp_in
    weight[held] = 1.0
    weight[start + ramp + hold : start + 2 * ramp + hold] = ramp_in[::-1]
    moved = centers.copy()
    moved[:, axis] += sign * distance * weight
    return moved, weight == 1.0


def _sample_camera(rng: np.random.Generator, config: SynthConfig) -> tuple[np.ndarray, int, int]:
    """Camera path (T, 3) [canvas x, canvas y, zoom] and the canvas (height, width) it needs."""
    frames, unit = config.num_frames, config.unit
    cap = config.background_pan * unit
    offsets = np.cumsum(_random_walk(rng, frames, rng.uniform(0, cap), cap, 0.1 * cap), axis=0)
    offsets -= (offsets.max(axis=0) + offsets.min(axis=0)) / 2
    log_high = math.log1p(config.background_zoom)
    rate = rng.uniform(-config.zoom_speed, config.zoom_speed)
    zoom = np.exp(_fold(rng.uniform(0, log_high) + rate * np.arange(frames), 0.0, log_high))
    half_w = np.max(np.abs(offsets[:, 0]) + config.width / (2 * zoom)) + 2
    half_h = np.max(np.abs(offsets[:, 1]) + config.height / (2 * zoom)) + 2
    canvas_w, canvas_h = math.ceil(2 * half_w), math.ceil(2 * half_h)
    camera = np.stack([canvas_w / 2 + offsets[:, 0], canvas_h / 2 + offsets[:, 1], zoom], axis=1)
    return camera, canvas_h, canvas_w


def _view(canvas: Image.Image, camera: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (H, W, 3) part of the canvas the camera (x, y, zoom) sees."""
    cx, cy, zoom = (float(v) for v in camera)
    a = 1.0 / zoom
    coefficients = (a, 0.0, cx - a * width / 2, 0.0, a, cy - a * height / 2)
    view = canvas.transform(
        (width, height), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return np.asarray(view, dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Planning and rendering


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
    """Which objects show enough of themselves in frame 0 (see the module notes)."""
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


# ----------------------------------------------------------------------------------------------
# DAVIS-layout datasets


def sequence_name(dataset_seed: int, index: int) -> str:
    """Name of video ``index`` of the dataset ``dataset_seed``: ``synth-<video seed>``.

    The video seed is ``dataset_seed * 1_000_000 + index``, so ``render_video(int(name[6:]),
    config)`` reproduces a sequence, and datasets with different seeds never share a name.
    """
    return f"synth-{dataset_seed * _SEEDS_PER_DATASET + index:06d}"


def _split_counts(num_videos: int, val_fraction: float) -> int:
    """Number of validation videos: rounded, but keep one of each split when both are asked for."""
    count = math.floor(val_fraction * num_videos + 0.5)
    if num_videos >= 2 and 0 < val_fraction < 1:
        count = min(max(count, 1), num_videos - 1)
    return count


def _write_sequence(job: tuple[int, str, str, SynthConfig]) -> str:
    """Render one video and write its JPEG frames and palette PNG labels under ``root``."""
    video_seed, name, root, config = job
    video = render_video(video_seed, config)
    image_dir = Path(root) / "JPEGImages" / "480p" / name
    label_dir = Path(root) / "Annotations" / "480p" / name
    image_dir.mkdir(parents=True)
    for t, (frame, labels) in enumerate(zip(video.frames, video.labels, strict=True)):
        Image.fromarray(frame).save(
            image_dir / f"{t:05d}.jpg", format="JPEG", quality=config.jpeg_quality
        )
        write_palette_png(label_dir / f"{t:05d}.png", labels)
    return name


def _check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an earlier synthetic dataset (and that only if asked)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not (out_dir / MARKER_FILE).is_file():
        raise InputError(
            out_dir, "folder is not empty and is not a synthetic dataset; not replacing it"
        )
    if not overwrite:
        raise InputError(
            out_dir, "already holds a synthetic dataset; pass --overwrite to replace it"
        )


def _run_jobs(jobs: list, workers: int, progress: bool) -> list[str]:
    """Run :func:`_write_sequence` over jobs, serially or in a spawn-started process pool."""

    def bar(items: Iterable) -> Iterable:
        return tqdm(items, total=len(jobs), desc="synth videos", unit="video", disable=not progress)

    if workers <= 1 or len(jobs) <= 1:
        return [_write_sequence(job) for job in bar(jobs)]
    # spawn, not fork: the caller may hold torch / OpenMP threads that fork would copy half-locked.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        return list(bar(pool.map(_write_sequence, jobs)))


def write_davis_dataset(
    out_dir: str | Path,
    num_videos: int,
    config: SynthConfig | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    *,
    workers: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``num_videos`` synthetic videos in the DAVIS 2017 layout and return ``out_dir``.

    Layout: ``JPEGImages/480p/<seq>/00000.jpg``, ``Annotations/480p/<seq>/00000.png`` (DAVIS
    palette, every frame annotated), ``ImageSets/2017/{train,val}.txt`` and ``synth.json``
    (config and seeds). The folder is named ``480p`` whatever the frame size, as our reader
    and the DAVIS toolkit expect. The last ``round(val_fraction * num_videos)`` sequences form
    the validation split. Everything is built in a temporary folder beside ``out_dir`` and
    renamed at the end; ``workers > 1`` renders in processes with identical results (they
    are started with "spawn", so a calling script needs the usual ``if __name__ == "__main__"``
    guard).
    """
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    if not 1 <= num_videos <= _SEEDS_PER_DATASET:
        raise ConfigError(
            f"synth: number of videos must be in 1..{_SEEDS_PER_DATASET}, got {num_videos}"
        )
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"synth: seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"synth: val fraction must be in [0, 1], got {val_fraction}")
    TextureSource(config.texture_dir)  # fail on a bad texture folder before any work
    _check_output_dir(out_dir, overwrite)
    names = [sequence_name(seed, i) for i in range(num_videos)]
    num_val = _split_counts(num_videos, val_fraction)
    with atomic_dir(out_dir) as tmp:
        jobs = [(seed * _SEEDS_PER_DATASET + i, n, str(tmp), config) for i, n in enumerate(names)]
        _run_jobs(jobs, workers, progress)
        sets = tmp / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        split = num_videos - num_val
        (sets / "train.txt").write_text("".join(f"{n}\n" for n in names[:split]))
        (sets / "val.txt").write_text("".join(f"{n}\n" for n in names[split:]))
        meta = {"seed": seed, "num_videos": num_videos, "val_fraction": val_fraction}
        meta["config"] = dataclasses.asdict(config)
        (tmp / MARKER_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("wrote %d synthetic videos to %s (%d val)", num_videos, out_dir, num_val)
    return out_dir


# ----------------------------------------------------------------------------------------------
# Command line: mobilevos synth


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``mobilevos synth`` to ``parser``."""
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to write")
    parser.add_argument("--videos", required=True, type=int, help="number of videos")
    parser.add_argument("--frames", type=int, default=defaults.num_frames, help="frames per video")
    parser.add_argument(
        "--size", default=f"{defaults.height}x{defaults.width}", help="frame size HxW"
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (names synth-<seed>…)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of val videos")
    parser.add_argument("--textures", type=Path, default=None, help="folder of texture images")
    parser.add_argument("--workers", type=int, default=0, help="render processes (0: serial)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier synthetic dataset at --out"
    )


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"480x854"`` into ``(480, 854)``; ConfigError on anything else."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"--size must look like 480x854 (HxW), got {text!r}")
    return int(parts[0]), int(parts[1])


def synth_command(args: argparse.Namespace) -> int:
    """Run ``mobilevos synth`` from parsed arguments; returns the exit status."""
    height, width = parse_size(args.size)
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    if args.textures is not None and not Path(args.textures).is_dir():
        raise InputError(args.textures, "texture folder not found")
    config = SynthConfig(
        height=height,
        width=width,
        num_frames=args.frames,
        texture_dir=None if args.textures is None else str(args.textures),
    )
    write_davis_dataset(
        args.out,
        args.videos,
        config,
        seed=args.seed,
        val_fraction=args.val_fraction,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    return 0
