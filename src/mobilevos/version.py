"""The package's version, read from the installed distribution's metadata.

The version is written once, in ``pyproject.toml``. Installing the package (``pip install``,
editable or not) records it in the distribution's metadata, and this module reads it from there
with :func:`importlib.metadata.version`; nothing in the sources spells it. An editable install
records the version when it is installed: after changing it in ``pyproject.toml``, install
again (``pip install -e .``) for ``__version__`` to follow.

Where the sources run without being installed (``PYTHONPATH=src``, a vendored copy) there is no
metadata to read, and :data:`__version__` is :data:`UNKNOWN_VERSION`, ``"0+unknown"``: it says
that the version is not known, yet is a valid PEP 440 version (sorting before every release),
so code that parses or compares versions keeps working. It is never guessed, e.g. from a
``pyproject.toml`` nearby: a source tree is not a release. (Sources run from a tree while
another copy of mobilevos is installed report the installed copy's version.)

This module imports nothing from the package, so any module may import it; ``import mobilevos``
reads it lazily, on first use of ``mobilevos.__version__``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "mobilevos"
"""The name of the distribution whose metadata holds the version."""

UNKNOWN_VERSION = "0+unknown"
""":data:`__version__` where the package is not installed (no metadata to read)."""

try:
    __version__: str = version(DISTRIBUTION)
except PackageNotFoundError:
    __version__ = UNKNOWN_VERSION

__all__ = ["DISTRIBUTION", "UNKNOWN_VERSION", "__version__"]
