"""A table version as a Daft DataFrame: pinned by the same version number the
in-process engines report, read from the data root or from an object store.

:class:`DaftSource` stands where an engine stands in ``GovernedSearch.prepare``: it
reports ``version(dataset)`` (the count and the page are then read from that one
version), and ``frame(spec, version)`` reads exactly that version:

| format | pinned by | Daft reads |
|---|---|---|
| delta | the commit number | ``read_deltalake(uri, version=N)`` |
| parquet | the ``v<N>`` directory ``CURRENT`` names | ``read_parquet(v<N>/**/*.parquet)`` (hive) |
| iceberg | our version = offset + snapshot sequence number | ``read_iceberg(table, snapshot_id)`` |

Columns come back in the spec's order and types, as from every engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from govlab.catalog import DatasetSpec
from govlab.config import Settings, quiet_third_parties
from govlab.engines import FORMATS, get_engine
from govlab.errors import BadRequest, TableNotFound
from govlab.execution.objectstore import ObjectStore, iceberg_catalog

POINTER = "CURRENT"
VERSION_OFFSET = "govlab.version-offset"  # as the Iceberg engine records it


#: Daft's scan warnings that a table without a partition filter is read whole: govlab
#: means that (a role without a region filter sees every partition), so they are noise.
_FULL_SCAN_LOGGERS = ("daft.io.delta_lake.delta_lake_scan", "daft.io.iceberg.iceberg_scan")


def import_daft() -> Any:
    """Daft, imported with its usage reporting off (it calls out on import)."""
    quiet_third_parties()
    import daft

    for name in _FULL_SCAN_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    return daft


def read_pointer(filesystem: pafs.FileSystem, base: str) -> int | None:
    """The version ``CURRENT`` names under ``base``; None when there is none yet."""
    info = filesystem.get_file_info(f"{base}/{POINTER}")
    if info.type == pafs.FileType.NotFound:
        return None
    with filesystem.open_input_stream(f"{base}/{POINTER}") as stream:
        text = stream.read().decode().strip()
    if not text.startswith("v") or not text[1:].isdigit():
        raise RuntimeError(f"corrupt {POINTER} pointer under a parquet table")
    return int(text[1:])


def iceberg_version(table: Any) -> int:
    snapshot = table.current_snapshot()
    offset = int(table.properties.get(VERSION_OFFSET, "0"))
    return offset + (snapshot.sequence_number if snapshot is not None else 0)


def iceberg_snapshot_id(table: Any, version: int) -> int:
    offset = int(table.properties.get(VERSION_OFFSET, "0"))
    for snapshot in table.metadata.snapshots:
        if offset + (snapshot.sequence_number or 0) == version:
            return int(snapshot.snapshot_id)
    raise BadRequest(f"iceberg table has no version {version}")


@dataclass
class DaftSource:
    """One format's tables for Daft; the engine-shaped object a Daft search prepares with."""

    fmt: str
    settings: Settings
    store: ObjectStore | None = None
    _iceberg: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise BadRequest(f"unknown format {self.fmt!r}; valid formats: {', '.join(FORMATS)}")

    @property
    def name(self) -> str:
        return self.fmt

    # ------------------------------------------------------------ versions
    def version(self, dataset: str) -> int:
        """The current version, as the in-process engine reports it for local tables."""
        if self.store is None:
            return get_engine(self.fmt, self.settings).version(dataset)
        if self.fmt == "delta":
            return self._delta_version(dataset)
        if self.fmt == "parquet":
            filesystem, root = self.store.arrow_filesystem()
            current = read_pointer(filesystem, f"{root}/parquet/{dataset}")
            if current is None:
                raise TableNotFound(f"parquet table {dataset!r} is not in the object store")
            return current
        return iceberg_version(self._iceberg_table(dataset))

    def _delta_version(self, dataset: str) -> int:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        assert self.store is not None
        uri = self.store.table_uri("delta", dataset)
        try:  # not is_deltatable(): against moto's S3 its listing never answers
            table = DeltaTable(uri, storage_options=self.store.delta_options())
        except TableNotFoundError:
            raise TableNotFound(f"delta table {dataset!r} is not in the object store") from None
        return int(table.version())

    def _iceberg_table(self, dataset: str) -> Any:
        catalog = iceberg_catalog(self.settings, self.store)
        identifier = ("govlab", dataset)
        if not catalog.table_exists(identifier):
            raise TableNotFound(f"iceberg table {dataset!r} has not been seeded")
        return catalog.load_table(identifier)

    def snapshot(self, spec: DatasetSpec, version: int | None = None) -> None:
        """No Arrow snapshot: the in-process fast page path does not apply."""
        return None

    def page(self, prepared: Any, visible: Any) -> Any:
        """The search's page computed by Daft (``execution.daft.page``)."""
        from govlab.execution.daft import page

        return page(prepared, visible)

    # ------------------------------------------------------------ frames
    def location(self, dataset: str) -> str:
        if self.store is not None:
            return self.store.table_uri(self.fmt, dataset)
        return str(self.settings.format_dir(self.fmt) / dataset)

    def frame(self, spec: DatasetSpec, version: int) -> Any:
        """The pinned version as a lazy Daft DataFrame, columns as in the spec."""
        daft = import_daft()
        io_config = self.store.daft_io_config() if self.store else None
        if self.fmt == "delta":
            frame = daft.read_deltalake(
                self.location(spec.name), version=version, io_config=io_config
            )
        elif self.fmt == "parquet":
            pattern = f"{self.location(spec.name)}/v{version}/**/*.parquet"
            frame = daft.read_parquet(pattern, hive_partitioning=True, io_config=io_config)
        else:
            table = self._iceberg_table(spec.name)
            snapshot_id = iceberg_snapshot_id(table, version)
            frame = daft.read_iceberg(table, snapshot_id=snapshot_id, io_config=io_config)
        return conform(frame, spec.schema)


def conform(frame: Any, schema: pa.Schema) -> Any:
    """The spec's columns, in its order, cast where a format stored another type."""
    daft = import_daft()
    have = {f.name: f.dtype for f in frame.schema()}
    columns = []
    for f in schema:
        if f.name not in have:
            raise BadRequest(f"the table has no column {f.name!r}")
        wanted = daft.DataType.from_arrow_type(f.type)
        column = daft.col(f.name)
        columns.append(column if have[f.name] == wanted else column.cast(wanted))
    return frame.select(*columns)


def source(fmt: str, settings: Settings) -> DaftSource:
    return DaftSource(fmt, settings, ObjectStore.from_env())
