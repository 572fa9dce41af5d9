"""``manifest.json``: what a folder of exported graphs holds, read and written in one place.

The exporter (:mod:`mobilevos.formats.export`) writes it; every host that runs the programs
(the engines of :mod:`mobilevos.formats`, the web page) reads it. It names the format (one of
:data:`~mobilevos.formats.registry.FORMATS`) and one program per verb with its inputs and
outputs (names, shapes, dtypes, in call order), the memory capacity and write policy, the
preprocessing constants, the model config and a hash of the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mobilevos.errors import InputError
from mobilevos.formats.registry import FORMATS, Format

MANIFEST_VERSION = 2
"""2: the segment program takes ``valid`` and ``present`` as 0/1 float32 masks (1: bool)."""
MANIFEST = "manifest.json"
VERBS = ("encode_query", "encode_value", "segment")
QUERY_OUTPUTS = ("key", "value", "f16", "f8", "f4")
GRAPH_OUTPUTS = {"encode_query": QUERY_OUTPUTS, "encode_value": ("values",), "segment": ("logits",)}


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read and check ``manifest.json``; a missing or malformed one is a one-line InputError."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(path, "no manifest.json here: not an exported model folder")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != MANIFEST_VERSION:
        raise InputError(path, f"not a mobilevos manifest of format {MANIFEST_VERSION}")
    missing = [
        k for k in ("graphs", "memory", "input_size", "max_objects", "model_config")
        if k not in manifest
    ]  # fmt: skip
    if missing or sorted(manifest["graphs"]) != sorted(VERBS):
        raise InputError(path, f"manifest lacks {', '.join(missing) or 'one graph per verb'}")
    if manifest.get("format", "onnx") not in FORMATS:
        raise InputError(
            path, f"unknown format {manifest['format']!r}; known: {', '.join(FORMATS)}"
        )
    return manifest


def export_format(manifest: dict[str, Any]) -> Format:
    """The format of a manifest read by :func:`read_manifest` (manifests written before the
    format was named are ONNX)."""
    return FORMATS[manifest.get("format", "onnx")]
