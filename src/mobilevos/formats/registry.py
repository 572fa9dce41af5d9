"""The runtime formats a model exports to, by name: the one list the rest of the code reads.

Each entry names a format (``onnx``, ``executorch``), the suffix of its program files, the
runtime that runs them and the module that implements it (:class:`~mobilevos.formats.base.
ProgramFormat`: the writer, int8 and the engine). The command line's ``--format`` and
``--backend`` choices, the manifest's check of its ``format`` field and
:func:`~mobilevos.formats.base.open_exported` all read this list; no other code branches on a
format's name.

The implementations are imported when first used (:meth:`Format.load`), so listing the formats
(the command line does it for every command) imports neither torch nor a runtime, and a
missing optional runtime (ExecuTorch) fails only where it is needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobilevos.errors import ConfigError

if TYPE_CHECKING:
    from mobilevos.formats.base import ProgramFormat


@dataclass(frozen=True)
class Format:
    """One runtime format.

    Attributes:
        name: its name in manifests and on the command line.
        suffix: the suffix of its program files (one per verb).
        runtime: the runtime that runs the programs, as messages name it.
        summary: one line for the command line's help.
        module: the module that implements it (its ``FORMAT`` class).
    """

    name: str
    suffix: str
    runtime: str
    summary: str
    module: str

    def load(self) -> type[ProgramFormat]:
        """The implementation (imported on first use)."""
        return importlib.import_module(self.module).FORMAT


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "onnx",
            ".onnx",
            "ONNX Runtime",
            "ONNX graphs (ONNX Runtime, the browser)",
            "mobilevos.formats.onnx",
        ),
        Format(
            "executorch",
            ".pte",
            "ExecuTorch",
            "ExecuTorch programs lowered to XNNPACK (phone apps)",
            "mobilevos.formats.executorch",
        ),
    )
}


def get_format(name: str) -> Format:
    """The format called ``name``; an unknown name is a one-line :class:`ConfigError`."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; use {', '.join(FORMATS)}") from None
