"""Building what runs a session's frames: :func:`open_engine` (the one builder) and the export
cache behind its default backend on the CPU (:mod:`mobilevos.runtime.cache`)."""

from mobilevos.runtime.builder import BACKENDS, open_engine, runtime_name
from mobilevos.runtime.cache import CachedExportEngine, cached_export, usable, user_cache

__all__ = [
    "BACKENDS",
    "CachedExportEngine",
    "cached_export",
    "open_engine",
    "runtime_name",
    "usable",
    "user_cache",
]
