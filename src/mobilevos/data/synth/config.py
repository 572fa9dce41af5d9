"""The generator's knobs: :class:`SynthConfig`, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from mobilevos.errors import ConfigError

SHAPE_FAMILIES = ("blob", "star", "ellipse")


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
