"""User-facing errors.

Every mistake a user can make (a wrong path, a mask of the wrong size, a checkpoint for another
architecture) raises a subclass of :class:`MobileVOSError` whose message is one line naming the
file and the problem. The CLI prints that line and exits non-zero, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class MobileVOSError(Exception):
    """Base class for errors caused by user input, not by a bug."""


class InputError(MobileVOSError):
    """A frame, video or mask that is missing, unreadable or inconsistent."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class CheckpointError(MobileVOSError):
    """A checkpoint that is missing, corrupt, or does not match the model it describes."""


class ConfigError(MobileVOSError):
    """An unknown preset, an invalid option, or a contradictory configuration."""


class DatasetError(MobileVOSError):
    """A benchmark dataset or prediction folder that does not follow the expected layout."""


class ExportError(MobileVOSError):
    """An exported model that fails its checks, or graphs that do not fit their manifest."""


class CalibrationWarning(UserWarning):
    """An int8 export that was written but keeps fp32's masks less well than it should (the
    calibration clip is a likely cause); the CLI prints it as one line."""
