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


__all__ = ["FORMATS", "Engine", "TableInfo", "get_engine"]
