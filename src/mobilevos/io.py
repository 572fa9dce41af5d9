"""Reading frames and masks, writing label PNGs and overlay videos.

Conventions used across the package:

* frames are ``(H, W, 3)`` uint8 RGB arrays, wrapped in :class:`Frame` with their index and the
  name that outputs are named after;
* label maps are ``(H, W)`` uint8 arrays: 0 is background, 1..254 are object ids, and
  :data:`VOID_LABEL` (255) marks pixels to ignore (DAVIS "void");
* label maps are written as palette PNGs with the DAVIS palette, so any DAVIS or YouTube-VOS tool
  reads them back as indices.

Frames are streamed (:func:`open_frames`): a video is decoded one frame at a time with PyAV, a
folder is read one image at a time, so memory does not grow with the length of the input. Masks
(:func:`open_masks`) are matched to frames as they stream past.

Every writer goes through :func:`atomic_path` / :func:`atomic_dir`: output appears under its final
name only once complete, so an interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mobilevos.errors import InputError

logger = logging.getLogger(__name__)

VOID_LABEL = 255
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv"})
"""Suffixes :func:`open_frames` reads as videos (any container PyAV's ffmpeg can demux)."""
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
"""Suffixes :func:`open_frames` reads as still frames."""
DEFAULT_FPS = 24.0
"""Frame rate assumed for folders and single images, which carry none."""

_WRITABLE_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi"})
_ENCODERS = ("libx264", "mpeg4")
_EXIF_ORIENTATION = 0x0112
_DIGIT_RUNS = re.compile(r"([0-9]+)")


def _davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map: bits of the index spread over the RGB channels."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        palette[index] = (r, g, b)
    return palette


DAVIS_PALETTE: np.ndarray = _davis_palette()
"""``(256, 3)`` uint8 colours; index 1 is (128, 0, 0), index 255 is (224, 224, 192)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps the suffix of ``path`` so that writers that pick a format from the
    extension (PIL, PyAV) still work. On error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` if the block succeeds.

    An existing ``path`` is replaced only at the end, so a failed run leaves the previous
    results (or nothing) rather than a half-written folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_label_image(path: str | Path) -> np.ndarray:
    """Read a label PNG as an ``(H, W)`` uint8 array of object ids.

    * a palette ("P" mode) PNG gives its palette indices (DAVIS, YouTube-VOS);
    * a grayscale PNG whose only values are 0 and 255 is a binary mask: one object, id 1;
    * any other grayscale PNG gives its values as ids (255 stays void);
    * an RGB(A) PNG whose three channels are equal (a grayscale mask saved in colour, as many
      tools do) is read as grayscale.

    Raises :class:`InputError` naming the file when it is missing, not an image, or a colour
    image, which is not a label map.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "P":
                return np.array(image, dtype=np.uint8)
            array = _gray_array(path, image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(path, f"cannot read image ({exc.__class__.__name__})") from None
    return _labels_from_gray(path, array)


def _gray_array(path: Path, image: Image.Image) -> np.ndarray:
    """The single channel of a grayscale (or gray-valued RGB) image; colour images are refused."""
    mode = image.mode
    if mode in ("L", "1") or mode.startswith("I"):
        return np.asarray(image)
    if mode == "LA":
        return np.asarray(image.getchannel("L"))
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return rgb[..., 0]
    raise InputError(path, f"not a label image (mode {mode}); expected a palette or grayscale PNG")


def _labels_from_gray(path: Path, array: np.ndarray) -> np.ndarray:
    """Grayscale values to ids: a 0/255 mask becomes object 1, anything else keeps its values."""
    if array.dtype == bool:
        return array.astype(np.uint8)
    if array.size and (array.max() > VOID_LABEL or array.min() < 0):
        bad = int(array.max()) if array.max() > VOID_LABEL else int(array.min())
        raise InputError(path, f"label value {bad} is outside 0..255")
    labels = array.astype(np.uint8)
    values = np.unique(labels)
    if values.size and set(values.tolist()) <= {0, VOID_LABEL} and VOID_LABEL in values:
        labels = (labels == VOID_LABEL).astype(np.uint8)
    return labels


def write_palette_png(path: str | Path, labels: np.ndarray) -> None:
    """Write an ``(H, W)`` label map as a DAVIS-palette PNG, atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, np.uint8).tobytes())
    image.putpalette(DAVIS_PALETTE.reshape(-1).tolist())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def natural_key(name: str) -> tuple[tuple[tuple[int, int, str], ...], str]:
    """Sort key that orders digit runs by value, so ``frame2`` comes before ``frame10``.

    Case is ignored; the name itself breaks ties (``frame01`` vs ``frame1``) deterministically.
    """
    parts = (part for part in _DIGIT_RUNS.split(name.lower()) if part)
    return tuple((0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in parts), name


def _hhww(size: tuple[int, ...]) -> str:
    """``(H, W)`` as the ``HxW`` text used in error messages."""
    return f"{size[0]}x{size[1]}"


def _reason(exc: BaseException) -> str:
    """A one-line description of a PyAV / OS error for an :class:`InputError` message."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------- frames


class Frame(NamedTuple):
    """One decoded frame; outputs for it are named ``f"{name}.png"``.

    Shapes:
        image: (H, W, 3) uint8 RGB
    """

    index: int
    name: str
    image: np.ndarray


class FrameSource:
    """The frames of a video, an image folder or a single image, read one at a time.

    Iterate to get :class:`Frame` objects in order; each iteration starts again from the first
    frame. Use it as a context manager (or call :meth:`close`) so the video file is released.

    Attributes:
        path: what was opened.
        num_frames: frame count from the folder listing or the video header; ``None`` when the
            container does not say (mkv, webm). A header count is a promise, not a guarantee.
        fps: the video's average frame rate, :data:`DEFAULT_FPS` for folders and images.
        size: ``(H, W)`` of the first frame; every frame has this size.
        names: the frame names when known before decoding (folders, images), else ``None``;
            pass them to :meth:`MaskSource.check_against` to check mask names up front.
    """

    def __init__(
        self,
        path: Path,
        num_frames: int | None,
        fps: float,
        size: tuple[int, int],
        names: list[str] | None,
    ) -> None:
        self.path = path
        self.num_frames = num_frames
        self.fps = fps
        self.size = size
        self.names = names

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release open files. Safe to call more than once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={str(self.path)!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:g}, size={self.size})"
        )


def open_frames(path: str | Path) -> FrameSource:
    """Open a video file, a folder of ``.jpg``/``.jpeg``/``.png`` frames, or one image.

    Video frames are named by their zero-padded index (``00000``, ``00001``, ...); folder and
    image frames by their file stem. Folder frames are in natural order (``f2`` before ``f10``).
    Images with an EXIF orientation, and videos with a rotation in their display matrix, are
    turned upright as a viewer would show them, so masks drawn on what the user sees fit.

    Raises :class:`InputError` naming the file for a missing path, an unsupported extension, an
    empty folder, frames of different sizes, a file with no video stream, or a video that cannot
    be decoded (also raised during iteration if decoding fails mid-stream).
    """
    path = Path(path)
    if path.is_dir():
        return _ImageFrames(path, _list_images(path))
    if not path.exists():
        raise InputError(path, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return _VideoFrames(path)
    if suffix in IMAGE_EXTENSIONS:
        return _ImageFrames(path, [path])
    known = ", ".join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))
    raise InputError(
        path, f"unsupported file type {suffix or '(none)'!r}; expected a folder or one of {known}"
    )


def _list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` (hidden files skipped) in natural order of their stems."""
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ]
    if not files:
        raise InputError(folder, "no .jpg, .jpeg or .png frames in folder")
    files.sort(key=lambda p: natural_key(p.stem))
    _check_unique_stems(folder, files)
    return files


def _check_unique_stems(folder: Path, files: list[Path]) -> None:
    """Outputs are named after stems, so ``a.jpg`` and ``a.png`` together are ambiguous."""
    seen: dict[str, Path] = {}
    for file in files:
        if file.stem in seen:
            raise InputError(folder, f"{seen[file.stem].name} and {file.name} share a name")
        seen[file.stem] = file


def _image_size(file: Path) -> tuple[int, int]:
    """``(H, W)`` of an image as displayed (EXIF rotation applied), reading only its header."""
    try:
        with Image.open(file) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(file, f"cannot read image ({exc.__class__.__name__})") from None
    return height, width


def _read_rgb(file: Path) -> np.ndarray:
    """Decode an image file to an upright ``(H, W, 3)`` uint8 RGB array."""
    try:
        with Image.open(file) as image:
            upright = ImageOps.exif_transpose(image)
            return np.array(upright.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(file, f"cannot read image ({exc.__class__.__name__})") from None


class _ImageFrames(FrameSource):
    """A folder of images, or one image. Sizes are checked up front from the file headers."""

    def __init__(self, path: Path, files: list[Path]) -> None:
        size = _image_size(files[0])
        for file in files[1:]:
            other = _image_size(file)
            if other != size:
                raise InputError(
                    file,
                    f"frame is {_hhww(other)} but the first frame ({files[0].name}) is "
                    f"{_hhww(size)}",
                )
        super().__init__(path, len(files), DEFAULT_FPS, size, [f.stem for f in files])
        self._files = files

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self._files):
            image = _read_rgb(file)
            if image.shape[:2] != self.size:
                raise InputError(
                    file, f"frame is {_hhww(image.shape)} but the first is {_hhww(self.size)}"
                )
            yield Frame(index, file.stem, image)


class _OpenVideo(NamedTuple):
    """A video container opened for decoding, with its first frame already decoded."""

    container: av.container.InputContainer
    images: Iterator[np.ndarray]
    first: np.ndarray
    fps: float
    num_frames: int | None


def _open_video(path: Path) -> _OpenVideo:
    """Open ``path`` and decode its first frame, so a broken file fails here, not later."""
    try:
        container = av.open(str(path), mode="r", metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot open video ({_reason(exc)})") from None
    try:
        if not container.streams.video:
            raise InputError(path, "no video stream")
        stream = container.streams.video[0]
        # Keep ffmpeg's default slice threading: frame threading hides errors of a truncated
        # stream (the decode just ends early), and decoding is far faster than segmenting anyway.
        images = _decode_rgb(container, stream, path)
        first = next(images, None)
        if first is None:
            raise InputError(path, "video has no decodable frames")
    except BaseException:
        container.close()
        raise
    fps = next((float(r) for r in (stream.average_rate, stream.guessed_rate) if r), DEFAULT_FPS)
    return _OpenVideo(container, images, first, fps, stream.frames or None)


def _decode_rgb(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> Iterator[np.ndarray]:
    """Decode ``stream`` lazily to upright RGB arrays; ffmpeg errors become :class:`InputError`.

    Shapes:
        yields: (H, W, 3) uint8
    """
    count = 0
    try:
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")
            quarter_turns = round(frame.rotation / 90) % 4
            if quarter_turns:
                # ``rotation`` is counter-clockwise, as is np.rot90 with positive k.
                image = np.ascontiguousarray(np.rot90(image, k=quarter_turns))
            count += 1
            yield image
    except (av.FFmpegError, ValueError) as exc:
        raise InputError(
            path, f"corrupt video: decoding failed after {count} frames ({_reason(exc)})"
        ) from None


class _VideoFrames(FrameSource):
    """A video decoded one frame at a time; iterating again re-opens the file."""

    def __init__(self, path: Path) -> None:
        opened = _open_video(path)
        height, width = opened.first.shape[:2]
        super().__init__(path, opened.num_frames, opened.fps, (height, width), None)
        self._opened: _OpenVideo | None = opened
        self._started = False

    def __iter__(self) -> Iterator[Frame]:
        if self._started or self._opened is None:
            self.close()
            self._opened = _open_video(self.path)
        self._started = True
        opened = self._opened
        yield Frame(0, f"{0:05d}", opened.first)
        count = 1
        for image in opened.images:
            if image.shape[:2] != self.size:
                raise InputError(
                    self.path,
                    f"frame {count} is {_hhww(image.shape)} but the first is {_hhww(self.size)}",
                )
            yield Frame(count, f"{count:05d}", image)
            count += 1
        if self.num_frames is not None and count < self.num_frames:
            # Results for a silently shortened video would look complete; refuse instead.
            raise InputError(
                self.path,
                f"video ended after {count} of the {self.num_frames} frames its header lists "
                "(truncated or damaged file; re-encoding it may help)",
            )
        if self.num_frames is not None and count > self.num_frames:
            logger.warning(
                "%s: decoded %d frames but the header says %d", self.path, count, self.num_frames
            )

    def close(self) -> None:
        if self._opened is not None:
            self._opened.container.close()
            self._opened = None


# ---------------------------------------------------------------------------------------- masks


class MaskSource:
    """The user's masks, matched to frames as they stream past.

    A single PNG is the mask of frame 0. In a folder, a PNG belongs to the frame whose name is
    its stem (``00012.png`` to frame ``00012``, ``frame_a.png`` to ``frame_a.jpg``); failing
    that, an all-digit stem is a frame index (``12.png`` to the 13th frame). A stem match wins
    over an index match, and a PNG whose stem names some frame is never used by index, so
    1-based or sparse numbering (YouTube-VOS: 00000, 00005, ...) maps by name.

    Each mask is checked against its frame's size, and the first mask must hold an object.

    Attributes:
        path: the PNG or folder that was opened.
        files: the mask PNGs in natural order.
    """

    def __init__(self, path: Path, files: list[Path], single: bool) -> None:
        self.path = path
        self.files = files
        self._single = single
        self._by_stem = {f.stem: f for f in files}
        self._by_index: dict[int, list[Path]] = {}
        for file in files:
            if file.stem.isascii() and file.stem.isdigit():
                self._by_index.setdefault(int(file.stem), []).append(file)
        self._frame_names: frozenset[str] | None = None
        self._plan: dict[int, Path] | None = None
        self._assigned: dict[int, Path] = {}
        self._object_seen = False

    def mask_for(self, frame: Frame) -> np.ndarray | None:
        """The ``(H, W)`` uint8 label map given for ``frame``, or ``None`` if it has none.

        Raises :class:`InputError` naming the PNG if its size differs from the frame's, if it is
        the first mask and holds no object, or if two PNGs claim the frame.
        """
        file = self._assigned.get(frame.index)
        if file is None:
            if self._plan is not None:
                file = self._plan.get(frame.index)
            else:
                file = self._match(frame.index, frame.name, set(self._assigned.values()))
        if file is None:
            return None
        self._assigned[frame.index] = file
        return self._load(file, frame)

    def unused(self) -> list[Path]:
        """The PNGs not returned by :meth:`mask_for` so far (after a full pass: never matched)."""
        used = set(self._assigned.values())
        return [f for f in self.files if f not in used]

    def check_against(self, names: Sequence[str]) -> dict[str, Path]:
        """Match every PNG to the frames ``names`` (in order) before decoding anything.

        Fixes the matching that :meth:`mask_for` then follows, and returns it as frame name to
        PNG. Raises :class:`InputError` if a PNG matches no frame or two PNGs claim one frame.
        """
        self._frame_names = frozenset(names)
        plan: dict[int, Path] = {}
        for index, name in enumerate(names):
            file = self._match(index, name, set(plan.values()))
            if file is not None:
                plan[index] = file
        matched = set(plan.values())
        missing = [f.name for f in self.files if f not in matched]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise InputError(
                self.path, f"{len(missing)} mask(s) match no frame name or index: {shown}"
            )
        self._plan = plan
        return {names[index]: file for index, file in plan.items()}

    def _match(self, index: int, name: str, taken: set[Path]) -> Path | None:
        """The one unclaimed PNG for frame ``index`` called ``name``, by stem then by index."""
        if self._single:
            return self.files[0] if index == 0 else None
        candidates = []
        by_stem = self._by_stem.get(name)
        if by_stem is not None and by_stem not in taken:
            candidates.append(by_stem)
        for file in self._by_index.get(index, ()):
            names_a_frame = self._frame_names is not None and file.stem in self._frame_names
            if file not in taken and file != by_stem and not names_a_frame:
                candidates.append(file)
        if len(candidates) > 1:
            listed = " and ".join(f.name for f in candidates)
            raise InputError(self.path, f"{listed} both match frame {name} (index {index})")
        return candidates[0] if candidates else None

    def _load(self, file: Path, frame: Frame) -> np.ndarray:
        """Read ``file`` and check it against ``frame``."""
        labels = read_label_image(file)
        frame_size = frame.image.shape[:2]
        if labels.shape != frame_size:
            raise InputError(
                file, f"mask is {_hhww(labels.shape)} but frames are {_hhww(frame_size)}"
            )
        if not self._object_seen:
            if not ((labels != 0) & (labels != VOID_LABEL)).any():
                raise InputError(file, "no object in mask")
            self._object_seen = True
        return labels


def open_masks(path: str | Path) -> MaskSource:
    """Open one mask PNG (the mask of frame 0) or a folder of mask PNGs (see :class:`MaskSource`).

    Raises :class:`InputError` for a missing path, a non-PNG file, or a folder without PNGs.
    """
    path = Path(path)
    if path.is_dir():
        files = [
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == ".png"
        ]
        if not files:
            raise InputError(path, "no .png masks in folder")
        files.sort(key=lambda p: natural_key(p.stem))
        _check_unique_stems(path, files)
        return MaskSource(path, files, single=False)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.suffix.lower() != ".png":
        raise InputError(path, "masks must be PNG files (palette or grayscale)")
    return MaskSource(path, [path], single=True)


# ------------------------------------------------------------------------------------- overlays


def blend_labels(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Tint each object with its DAVIS colour and outline it, for viewing results.

    Object pixels (ids 1..254) become ``(1 - alpha) * image + alpha * colour``; the pixels just
    inside each object's edge become the colour at half brightness, a contour about one pixel
    per 360 pixels of the shorter side. Background (0) and void (255) pixels are unchanged.

    Shapes:
        image: (H, W, 3) uint8 RGB
        labels: (H, W) integer ids
        returns: (H, W, 3) uint8 RGB
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match image {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if labels.size and (labels.min() < 0 or labels.max() > VOID_LABEL):
        raise ValueError("labels must be in 0..255")
    labels = labels.astype(np.uint8, copy=False)
    objects = (labels != 0) & (labels != VOID_LABEL)
    out = image.copy()
    if not objects.any():
        return out
    colours = DAVIS_PALETTE[labels[objects]].astype(np.float32)
    mixed = (1.0 - alpha) * image[objects].astype(np.float32) + alpha * colours
    out[objects] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    edges = _label_edges(labels, width=max(1, min(labels.shape) // 360)) & objects
    out[edges] = DAVIS_PALETTE[labels[edges]] // 2
    return out


def _label_edges(labels: np.ndarray, width: int) -> np.ndarray:
    """Pixels within ``width`` pixels (4-connected) of a change of label, on both sides.

    Shapes:
        labels: (H, W); returns: (H, W) bool
    """
    edges = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:] != labels[:-1]
    edges[1:] |= vertical
    edges[:-1] |= vertical
    horizontal = labels[:, 1:] != labels[:, :-1]
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    for _ in range(width - 1):
        grown = edges.copy()
        grown[1:] |= edges[:-1]
        grown[:-1] |= edges[1:]
        grown[:, 1:] |= edges[:, :-1]
        grown[:, :-1] |= edges[:, 1:]
        edges = grown
    return edges


@functools.cache
def _default_encoder() -> str:
    """libx264 when PyAV's bundled ffmpeg has it, else the always-present mpeg4 encoder."""
    for name in _ENCODERS:
        try:
            av.Codec(name, "w")
        except ValueError:
            continue
        return name
    raise RuntimeError(f"PyAV's ffmpeg has none of the video encoders {_ENCODERS}")


class VideoWriter:
    """Write RGB frames to a video (H.264 or MPEG-4 Part 2, yuv420p), atomically.

    Use as a context manager: frames go to a temporary file beside ``path`` that is renamed onto
    ``path`` when the block ends normally and deleted when it raises, so a crash never leaves a
    playable-looking partial video. The size is fixed by the first frame. yuv420p needs even
    sides, so an odd height or width is **padded** by repeating the last row or column (nothing
    is cropped): a 49x65 input is stored as 50x66.

    Args:
        path: output file, ``.mp4`` (also ``.mov``, ``.mkv``, ``.avi``).
        fps: frame rate; pass the input's :attr:`FrameSource.fps` to keep timing.
        codec: ``"libx264"`` or ``"mpeg4"``; default: libx264 if available, else mpeg4.
        quality: libx264 constant rate factor (lower is better; 18 is visually lossless).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = DEFAULT_FPS,
        *,
        codec: str | None = None,
        quality: int = 18,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _WRITABLE_EXTENSIONS:
            known = ", ".join(sorted(_WRITABLE_EXTENSIONS))
            raise InputError(self.path, f"cannot write video of this type; use one of {known}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.codec = codec or _default_encoder()
        self.quality = quality
        self.num_frames = 0
        self._size: tuple[int, int] | None = None
        self._stack: contextlib.ExitStack | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path))
            # faststart puts the index first, so players can start before the download ends
            options = {"movflags": "+faststart"} if tmp.suffix.lower() in (".mp4", ".mov") else {}
            self._container = av.open(str(tmp), mode="w", options=options)
            self._stack = stack.pop_all()
        return self

    def write(self, image: np.ndarray) -> None:
        """Append one frame.

        Shapes:
            image: (H, W, 3) uint8 RGB, the same H, W for every frame
        """
        if self._container is None:
            raise RuntimeError("VideoWriter.write() outside its 'with' block")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        if self._stream is None:
            self._add_stream(image.shape[:2])
        elif image.shape[:2] != self._size:
            raise ValueError(f"frame is {_hhww(image.shape)} but the video is {_hhww(self._size)}")
        frame = av.VideoFrame.from_ndarray(_pad_to_even(image), format="rgb24")
        frame.pts = self.num_frames
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.num_frames += 1

    def _add_stream(self, size: tuple[int, int]) -> None:
        """Create the video stream once the first frame gives the size."""
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream(self.codec, rate=rate)
        stream.height = size[0] + size[0] % 2
        stream.width = size[1] + size[1] % 2
        stream.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            stream.options = {"crf": str(self.quality), "preset": "fast"}
        else:
            stream.bit_rate = max(1_000_000, int(0.2 * stream.width * stream.height * self.fps))
        self._stream = stream
        self._size = size

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        if exc_type is not None:
            self._close_quietly()
            stack.__exit__(exc_type, exc, tb)  # deletes the temporary file
            return
        with stack:  # an error while finishing also deletes the temporary file
            self._finish()

    def _finish(self) -> None:
        """Flush the encoder and close the file; refuse to publish a video without frames."""
        if self._stream is None:
            self._close_quietly()
            raise ValueError(f"{self.path}: no frames were written")
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self._close_quietly()
            raise
        self._container = None

    def _close_quietly(self) -> None:
        """Close the container after a failure, without masking the original error."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """Repeat the last row / column of an odd-sized image (yuv420p needs even sides).

    Shapes:
        image: (H, W, 3); returns: (H + H % 2, W + W % 2, 3)
    """
    pad = ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0))
    return np.pad(image, pad, mode="edge") if any(p[1] for p in pad) else image


class OverlayWriter:
    """A :class:`VideoWriter` of frames with their label maps blended on (:func:`blend_labels`).

    Use as a context manager, like :class:`VideoWriter`; odd sizes are padded the same way.
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, alpha: float = 0.5) -> None:
        self.alpha = alpha
        self._writer = VideoWriter(path, fps)

    @property
    def path(self) -> Path:
        return self._writer.path

    @property
    def num_frames(self) -> int:
        return self._writer.num_frames

    def __enter__(self) -> OverlayWriter:
        self._writer.__enter__()
        return self

    def write(self, frame: Frame | np.ndarray, labels: np.ndarray) -> None:
        """Blend ``labels`` over ``frame`` and append it.

        Shapes:
            frame: (H, W, 3) uint8 RGB (or a :class:`Frame`); labels: (H, W)
        """
        image = frame.image if isinstance(frame, Frame) else frame
        self._writer.write(blend_labels(image, labels, self.alpha))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._writer.__exit__(exc_type, exc, tb)


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = DEFAULT_FPS) -> int:
    """Write ``frames`` to ``path`` with :class:`VideoWriter`; returns how many were written.

    Handy for tests and demos that need a small clip.

    Shapes:
        frames: each (H, W, 3) uint8 RGB
    """
    with VideoWriter(path, fps) as writer:
        for image in frames:
            writer.write(image)
    return writer.num_frames
