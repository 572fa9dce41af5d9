"""Frame sources: a video, an image folder or one image, decoded one frame at a time."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mobilevos.errors import InputError

if TYPE_CHECKING:  # PyAV loads with the first video, so frame folders and training need none
    import av

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv", ".y4m"})
"""Suffixes :func:`open_frames` reads as videos (any container PyAV's ffmpeg can demux)."""
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
"""Suffixes :func:`open_frames` reads as still frames."""
DEFAULT_FPS = 24.0
"""Frame rate assumed for folders and single images, which carry none."""

_EXIF_ORIENTATION = 0x0112
_DIGIT_RUNS = re.compile(r"([0-9]+)")


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
    import av

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
    import av

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
