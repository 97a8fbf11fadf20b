"""Table formats behind one interface (see ``base.Engine``), as a registry.

A format is one engine module plus one :class:`FormatDef` line in :data:`FORMAT_DEFS`:
the API's ``format`` enum, the CLI's choices and the lab's labels are all read from
it. Engines are imported lazily: PyIceberg and delta-rs are heavy imports, and a process
that serves one format should not pay for the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from govlab.config import Settings
from govlab.engines.base import Engine, TableInfo
from govlab.errors import BadRequest


@dataclass(frozen=True)
class FormatDef:
    name: str
    label: str  # what the lab shows on its button
    description: str  # one line, for the lab and the docs
    engine: str  # "module:Class", imported on first use


FORMAT_DEFS: dict[str, FormatDef] = {
    f.name: f
    for f in (
        FormatDef(
            "delta",
            "Delta (v4)",
            "Delta Lake 4 (delta-rs): a log of versions, time travel, deletion vectors.",
            "govlab.engines.delta:DeltaEngine",
        ),
        FormatDef(
            "parquet",
            "Parquet",
            "Parquet files partitioned by region; each version a directory, swapped atomically.",
            "govlab.engines.parquet:ParquetEngine",
        ),
        FormatDef(
            "iceberg",
            "Iceberg",
            "Apache Iceberg via PyIceberg and a local SQL catalog: snapshots, manifests, pruning.",
            "govlab.engines.iceberg:IcebergEngine",
        ),
    )
}
FORMATS: tuple[str, ...] = tuple(FORMAT_DEFS)
_CLASSES: dict[str, tuple[str, str]] = {
    name: (d.engine.partition(":")[0], d.engine.partition(":")[2])
    for name, d in FORMAT_DEFS.items()
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


__all__ = ["FORMATS", "FORMAT_DEFS", "Engine", "FormatDef", "TableInfo", "get_engine", "preload"]
