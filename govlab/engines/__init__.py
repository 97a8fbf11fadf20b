"""Table formats behind one interface (see ``base.Engine``).

Engines are imported lazily: PyIceberg and delta-rs are heavy imports, and a process
that serves one format should not pay for the others.
"""

from __future__ import annotations

import importlib

from govlab.config import Settings
from govlab.engines.base import Engine, TableInfo
from govlab.errors import BadRequest

FORMATS: tuple[str, ...] = ("delta", "parquet", "iceberg")

_CLASSES: dict[str, tuple[str, str]] = {
    "delta": ("govlab.engines.delta", "DeltaEngine"),
    "parquet": ("govlab.engines.parquet", "ParquetEngine"),
    "iceberg": ("govlab.engines.iceberg", "IcebergEngine"),
}


def get_engine(fmt: str, settings: Settings) -> Engine:
    """The engine for one format, rooted at ``settings``; BadRequest for unknown formats."""
    if fmt not in _CLASSES:
        raise BadRequest(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    module_name, class_name = _CLASSES[fmt]
    engine_class = getattr(importlib.import_module(module_name), class_name)
    return engine_class(settings)


# Modules the first write of a process would otherwise import on the spot (PyIceberg's
# SQL catalog loads SQLAlchemy's SQLite dialect, its partition split uses Acero).
_FIRST_WRITE_MODULES = ("sqlalchemy.dialects.sqlite", "pyarrow.acero", "govlab.seeding")


def preload() -> None:
    """Import every engine and what its first write needs, ahead of time.

    A seeding worker calls this once before it starts taking jobs: RQ forks a work
    horse per job, and each horse inherits these imports instead of paying for them
    inside the job (about 0.25 s for delta-rs, 0.6 s for PyIceberg, on every seed).
    ``govlab serve`` calls it before listening, so no first request pays it either.
    """
    for module_name, _ in _CLASSES.values():
        importlib.import_module(module_name)
    for module_name in _FIRST_WRITE_MODULES:
        importlib.import_module(module_name)


__all__ = ["FORMATS", "Engine", "TableInfo", "get_engine", "preload"]
