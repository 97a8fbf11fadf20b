"""Apache Iceberg tables through PyIceberg with a SQLite ``SqlCatalog``.

Catalog ``<iceberg dir>/catalog.db``, warehouse ``<iceberg dir>/warehouse``, namespace
``govlab``, one table per dataset, identity-partitioned on the dataset's partition
column and declaring a sort order on the primary key (rows arrive in pk order).

A seed is ONE snapshot: the streamed batches are written as data files by
``engines.iceberg_write`` (split by partition as they arrive, bounded memory), then a
single OVERWRITE snapshot removes every previous data file and adds the new ones,
committed once at the end. (PyIceberg's ``tx.overwrite`` + ``tx.append`` would commit
one snapshot per chunk plus a delete snapshot, and every intermediate snapshot would
be a readable, partial "version".) A failed seed commits nothing and deletes the
data files it already wrote. The first seed of a table, and a reseed with the same
schema and partitioning, are written and committed by ``engines.iceberg_commit``
without PyIceberg (the same snapshots, history and files as here; the catalog row is
inserted or swapped last), so a failed first seed leaves no empty table behind. This
module commits the rest (schema or layout changes, tables with other settings).

History is bounded: each seed expires, in its own transaction, the snapshots beyond
the last ``KEEP_VERSIONS`` and then deletes what only they reference (their manifest
lists, manifests and data files; ``iceberg_commit.expired_files``, shared with the
stdlib reseed); old metadata JSON files go too, and snapshots list live manifests only.
Time travel reaches the last ``KEEP_VERSIONS`` versions.

``version`` is the current snapshot's sequence number (plus an offset kept in a table
property when a schema change replaced the table, so versions only ever grow);
``scan(version=N)`` reads the snapshot with that number.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import shutil
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from filelock import FileLock
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.io import load_file_io
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestFile
from pyiceberg.partitioning import PartitionField, PartitionFieldValue, PartitionKey, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, Transaction
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.refs import MAIN_BRANCH
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.table.sorting import SortField, SortOrder
from pyiceberg.table.update.snapshot import ExpireSnapshots, _OverwriteFiles
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    IcebergType,
    NestedField,
)

from govlab.config import Settings
from govlab.engines.arrow_dataset import SnapshotCache, needed_columns, normalise, output_schema
from govlab.engines.base import RowsWrittenFn, TableInfo
from govlab.engines.iceberg_commit import (
    CATALOG_NAME,
    KEEP_VERSIONS,
    NAMESPACE,
    PARTITION_FIELD_ID,
    TABLE_PROPERTIES,
    VERSION_OFFSET,
    catalog_entry,
    iceberg_type,
    reclaim_expired,
    seed_without_pyiceberg,
)
from govlab.engines.iceberg_write import FileLayout, WrittenFile, write_data_files
from govlab.engines.writing import CountingBatches, check_dataset_name, seed_lock
from govlab.errors import BadRequest, TableNotFound
from govlab.generators.base import DatasetSpec

if TYPE_CHECKING:  # imported where used: seeding needs neither SQLAlchemy nor policies
    from pathlib import Path

    from pyiceberg.catalog.sql import SqlCatalog

    from govlab.engines.snapshot import Snapshot as ArrowSnapshot
    from govlab.policy.ast import Expr

# NAMESPACE, CATALOG_NAME, the table properties and KEEP_VERSIONS (snapshots kept for
# time travel, the current one included) live in ``iceberg_commit``, which writes a new
# table's first seed without PyIceberg. History is bounded because every commit copies
# the table metadata many times inside PyIceberg: an unbounded snapshot list made each
# reseed slower than the last (a tiny seed: 105 ms at first, 360 ms after 50 reseeds).

_SNAPSHOTS = SnapshotCache()
_catalogs: dict[tuple[str, str], SqlCatalog] = {}
_TABLE_CACHE_SIZE = 16
_tables: dict[tuple[str, str], Table] = {}  # (catalog file, metadata location) -> table
_catalogs_guard = threading.Lock()


class IcebergEngine:
    name = "iceberg"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.format_dir("iceberg")
        self.catalog_path = self.root / "catalog.db"
        self.warehouse = self.root / "warehouse"

    # ------------------------------------------------------------------ catalog
    @property
    def catalog(self) -> SqlCatalog:
        """One SqlCatalog per (catalog file, warehouse) per process.

        Creating it creates the catalog tables and the namespace; a file lock keeps two
        processes doing that at once from tripping over each other.
        """
        from pyiceberg.catalog.sql import SqlCatalog  # SQLAlchemy: ~0.15 s, writers only

        key = (str(self.catalog_path), str(self.warehouse))
        with _catalogs_guard:
            catalog = _catalogs.get(key)
            if catalog is None or not self.catalog_path.exists():  # data dir wiped
                self.warehouse.mkdir(parents=True, exist_ok=True)
                self.settings.lock_dir.mkdir(parents=True, exist_ok=True)
                with FileLock(str(self.settings.lock_dir / "iceberg-catalog.lock")):
                    catalog = SqlCatalog(
                        CATALOG_NAME,
                        uri=f"sqlite:///{self.catalog_path}",
                        warehouse=self.warehouse.as_uri(),
                    )
                    catalog.create_namespace_if_not_exists(NAMESPACE)
                _catalogs[key] = catalog
            return catalog

    def identifier(self, dataset: str) -> tuple[str, str]:
        return (NAMESPACE, check_dataset_name(dataset))

    def _load(self, dataset: str) -> Table:
        """The table, which must have at least one snapshot (i.e. was seeded).

        Reads go through a cache keyed by the catalog's current metadata location (one
        indexed query): a metadata file is immutable, so the parsed table is reused
        until a commit moves the pointer. The table is read from that file directly (a
        read-only ``StaticTable``), so a reader never imports the SQL catalog and
        SQLAlchemy; writers load the table from the catalog.
        """
        if not self.catalog_path.exists():
            raise TableNotFound(f"iceberg table {dataset!r} has not been seeded")
        identifier = self.identifier(dataset)
        location = self._metadata_location(identifier)
        key = (str(self.catalog_path), location)
        with _catalogs_guard:
            table = _tables.get(key) if location is not None else None
        if table is None:
            table = self._read_table(identifier, location)
            if location is not None and table.metadata_location == location:
                with _catalogs_guard:
                    _tables[key] = table
                    while len(_tables) > _TABLE_CACHE_SIZE:
                        del _tables[next(iter(_tables))]
        if table.current_snapshot() is None:
            raise TableNotFound(f"iceberg table {dataset!r} has not been seeded")
        return table

    def _read_table(self, identifier: tuple[str, str], location: str | None) -> Table:
        """The table from its metadata file, else through the catalog."""
        table = _static_table(location) if location is not None else None
        if table is not None:
            return table
        try:
            return self.catalog.load_table(identifier)
        except NoSuchTableError:
            raise TableNotFound(f"iceberg table {identifier[1]!r} has not been seeded") from None

    def _metadata_location(self, identifier: tuple[str, str]) -> str | None:
        """The table's current metadata file per the catalog; None if there is none or
        the catalog could not be read (the caller then goes through the catalog)."""
        return self._catalog_entry(identifier)[1]

    def _catalog_entry(self, identifier: tuple[str, str]) -> tuple[bool, str | None]:
        """(read, metadata location): ``iceberg_commit.catalog_entry`` for this table."""
        return catalog_entry(self.catalog_path, identifier[0], identifier[1])

    @staticmethod
    def _snapshot(table: Table, dataset: str, version: int | None) -> Snapshot:
        current = table.current_snapshot()
        assert current is not None  # _load guarantees it
        if version is None or version == _version(table, current):
            return current
        for snapshot in table.metadata.snapshots:
            if _version(table, snapshot) == version:
                return snapshot
        raise BadRequest(f"iceberg table {dataset!r} has no version {version}")

    def exists(self, dataset: str) -> bool:
        try:
            self._load(dataset)
        except TableNotFound:
            return False
        return True

    def version(self, dataset: str) -> int:
        table = self._load(dataset)
        return _version(table, table.current_snapshot())

    def version_witnesses(self, dataset: str) -> tuple[Path, ...]:
        """The catalog database (a commit moves the table's metadata pointer in it) and
        its write-ahead log, where a commit lands first in WAL mode."""
        return (self.catalog_path, self.catalog_path.with_name(self.catalog_path.name + "-wal"))

    # ------------------------------------------------------------------ write
    def write(
        self,
        spec: DatasetSpec,
        batches: Iterable[pa.RecordBatch],
        progress: RowsWrittenFn | None = None,
    ) -> TableInfo:
        """One seed: the data files first (``iceberg_write``), then one commit.

        A table that does not exist yet, or one reseeded with the same layout, is
        seeded by ``iceberg_commit`` (no PyIceberg catalog, no SQLAlchemy). Otherwise
        the table as it is now is read from its metadata file, and the SQL catalog
        (SQLAlchemy, 0.15-0.3 s of imports) is imported on a thread while the files
        are written; it is only needed for the commit. A failure before the commit
        deletes every file written and leaves the current version as it was.
        """
        created = seed_without_pyiceberg(self.settings, spec, batches, progress)
        if created is not None:
            return created
        ice_schema, write_schema = iceberg_schema(spec.schema)
        stream = CountingBatches(spec.schema, batches, progress)
        identifier = self.identifier(spec.name)
        with seed_lock(self.settings, self.name, spec.name):
            current = self._current_table(identifier)
            if current is not None and _same_layout(current, ice_schema, spec):
                target = identifier
                stale = {
                    k: v
                    for k, v in TABLE_PROPERTIES.items()
                    if k.startswith("write.") and current.properties.get(k) != v
                }
                metadata = current.metadata.model_copy(
                    update={"properties": {**current.properties, **stale}}
                )
            else:
                stale = {}
                target = identifier
                offset = 0
                if current is not None:  # schema or partitioning changed: a staging table
                    target = (NAMESPACE, f"{spec.name}__staging_{uuid.uuid4().hex[:12]}")
                    offset = _version(current, current.current_snapshot())
                metadata = self._new_metadata(target, ice_schema, spec, offset)
            io = load_file_io(properties=metadata.properties, location=metadata.location)
            _import_catalog_in_background()
            written: list[str] = []
            try:
                files = _data_files(
                    metadata, write_data_files(_layout(metadata), stream, write_schema, written)
                )
                if target != identifier or current is None:
                    self._commit_new(target, metadata, files)
                else:
                    self._commit_reseed(identifier, current, stale, files)
            except BaseException:
                _delete_files(io, written)
                raise
            if target != identifier:
                # swap the staging table in by name; versions continue from the old
                # table's through the version-offset property
                assert current is not None
                old_location = _local_path(current.location())
                self.catalog.drop_table(identifier)
                self.catalog.rename_table(target, identifier)
                shutil.rmtree(old_location, ignore_errors=True)
            return self._info(spec.name, self._load(spec.name))

    def _current_table(self, identifier: tuple[str, str]) -> Table | None:
        """The table as the catalog has it now (None if there is none), read from its
        metadata file; through the catalog only when the catalog file is unusual."""
        if not self.catalog_path.exists():
            return None
        readable, location = self._catalog_entry(identifier)
        if readable and location is None:
            return None
        table = _static_table(location) if location is not None else None
        if table is not None:
            return table
        try:
            return self.catalog.load_table(identifier)
        except NoSuchTableError:
            return None

    def _new_metadata(
        self, identifier: tuple[str, str], schema: Schema, spec: DatasetSpec, offset: int
    ) -> TableMetadata:
        """The metadata a new table gets (``_commit_new`` creates it with the same
        arguments, so the files written for it carry its field ids and spec)."""
        return new_table_metadata(
            schema=schema,
            partition_spec=_partition_spec(schema, spec),
            sort_order=_sort_order(schema, spec),
            location=f"{self.warehouse.as_uri()}/{identifier[0]}/{identifier[1]}",
            properties={**TABLE_PROPERTIES, VERSION_OFFSET: str(offset)},
        )

    def _commit_new(
        self, identifier: tuple[str, str], metadata: TableMetadata, files: list[DataFile]
    ) -> None:
        """Create the table and its first snapshot in one transaction: a failed first
        seed leaves no empty table behind."""
        tx = self.catalog.create_table_transaction(
            identifier,
            schema=metadata.schema(),
            location=metadata.location,
            partition_spec=metadata.spec(),
            sort_order=metadata.sort_order_by_id(metadata.default_sort_order_id),
            properties=metadata.properties,
        )
        created = tx.table_metadata
        if (created.schema(), created.spec(), created.location) != (
            metadata.schema(),
            metadata.spec(),
            metadata.location,
        ):
            raise RuntimeError("the new Iceberg table's layout differs from its data files'")
        _commit_files(tx, [], files)

    def _commit_reseed(
        self,
        identifier: tuple[str, str],
        current: Table,
        stale: dict[str, str],
        files: list[DataFile],
    ) -> None:
        """One snapshot replacing every file of ``current``; history beyond the last
        ``KEEP_VERSIONS`` expires in the same transaction, and what only the expired
        snapshots reference (manifest lists, manifests, data files) goes after it
        (``iceberg_commit.reclaim_expired``, as the stdlib reseed; failures logged)."""
        table = self.catalog.load_table(identifier)
        if table.metadata_location != current.metadata_location:
            raise RuntimeError(f"iceberg table {identifier[1]!r} changed during the seed")
        tx = table.transaction()
        if stale:  # a table created before a writer setting changed
            tx.set_properties(stale)
        previous = [t.file for t in table.scan().plan_files()] if table.current_snapshot() else []
        expired_lists = _expire_history(tx, table)
        committed = _commit_files(tx, previous, files)
        reclaim_expired(expired_lists, [s.manifest_list for s in committed.metadata.snapshots])

    # ------------------------------------------------------------------ metadata
    def info(self, dataset: str) -> TableInfo:
        return self._info(dataset, self._load(dataset))

    def _info(self, dataset: str, table: Table) -> TableInfo:
        snapshot = table.current_snapshot()
        assert snapshot is not None
        summary = snapshot.summary
        details: dict[str, Any] = {
            "catalog": str(self.catalog_path),
            "warehouse": str(self.warehouse),
            "identifier": ".".join(self.identifier(dataset)),
            "metadata_location": table.metadata_location,
            "format_version": table.metadata.format_version,
            "snapshot_id": snapshot.snapshot_id,
            "sequence_number": snapshot.sequence_number,
            "operation": str(summary.operation.value) if summary else None,
            "partition_spec": [
                {"name": f.name, "transform": str(f.transform), "source_id": f.source_id}
                for f in table.spec().fields
            ],
            "sort_order": str(table.sort_order()),
            "files": int(summary.get("total-data-files", 0)) if summary else 0,
            "snapshots": len(table.metadata.snapshots),
            "properties": dict(table.properties),
        }
        return TableInfo(
            format=self.name,
            dataset=dataset,
            version=_version(table, snapshot),
            rows=int(summary.get("total-records", 0)) if summary else 0,
            location=_local_path(table.location()),
            details=details,
        )

    # ------------------------------------------------------------------ read
    def _filtered(
        self, spec: DatasetSpec, needed: list[str], row_filter: Expr, version: int | None
    ) -> Iterator[pa.Table]:
        """Tables of ``needed`` columns (spec types) holding exactly the matching rows.

        PyIceberg's row filter prunes files and row groups but only guarantees a
        superset (NULL handling, no substring predicate), so the exact Arrow filter is
        always applied to what it returns.
        """
        from govlab.policy.ast import AlwaysFalse, AlwaysTrue
        from govlab.policy.compile import to_arrow, to_iceberg

        table = self._load(spec.name)
        snapshot = self._snapshot(table, spec.name, version)
        if isinstance(row_filter, AlwaysFalse):
            return
        schema = output_schema(spec, needed)
        exact = to_arrow(row_filter)
        scan = table.scan(
            row_filter=to_iceberg(row_filter),
            selected_fields=tuple(needed),
            snapshot_id=snapshot.snapshot_id,
        )
        for batch in scan.to_arrow_batch_reader():
            part = normalise(pa.Table.from_batches([batch]), schema)
            if not isinstance(row_filter, AlwaysTrue):
                part = part.filter(exact)
            if part.num_rows:
                yield part

    def scan(
        self,
        spec: DatasetSpec,
        columns: list[str],
        row_filter: Expr,
        version: int | None = None,
    ) -> pa.Table:
        schema = output_schema(spec, columns)
        needed = needed_columns(spec, columns, row_filter)
        parts = [
            normalise(part, schema) for part in self._filtered(spec, needed, row_filter, version)
        ]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)

    def snapshot(self, spec: DatasetSpec, version: int | None = None) -> ArrowSnapshot | None:
        """The version's data files as a pyarrow dataset, planned once per snapshot, for
        the pk-ordered page; None (the caller scans through PyIceberg) when the snapshot
        has delete files or columns written with other types than the spec's.

        Files carry every column, the partition column included; each fragment also
        gets its identity-partition value as a guarantee, so Arrow prunes partitions
        and counts partition-only filters from metadata as for the other formats.
        """
        table = self._load(spec.name)
        snapshot = self._snapshot(table, spec.name, version)
        if not _written_as_is(spec.schema):
            return None
        key = (table.metadata.table_uuid, snapshot.snapshot_id, spec.schema, spec.partition_by)
        return _SNAPSHOTS.get(key, lambda: _arrow_dataset(table, snapshot, spec))

    def count(self, spec: DatasetSpec, row_filter: Expr, version: int | None = None) -> int:
        from govlab.policy.ast import AlwaysTrue

        if isinstance(row_filter, AlwaysTrue):
            table = self._load(spec.name)
            summary = self._snapshot(table, spec.name, version).summary
            if summary is not None and "total-records" in summary:
                return int(summary["total-records"])
        needed = needed_columns(spec, [], row_filter)
        return sum(part.num_rows for part in self._filtered(spec, needed, row_filter, version))


def _static_table(location: str) -> Table | None:
    """The table as of one metadata file (read-only); None when it cannot be read, and
    the caller goes through the catalog."""
    from pyiceberg.table import StaticTable

    try:
        return StaticTable.from_metadata(location)
    except (OSError, ValueError):
        return None


def _commit_files(tx: Transaction, previous_files: list[DataFile], files: list[DataFile]) -> Table:
    """Commit ONE overwrite snapshot that removes ``previous_files`` and adds ``files``
    (PyIceberg's ``overwrite`` + ``append`` would commit a snapshot each, and every
    intermediate snapshot would be a readable, partial version); the table as committed."""
    with _SeedOverwrite.of(tx) as overwrite:
        for data_file in previous_files:
            overwrite.delete_data_file(data_file)
        for data_file in files:
            overwrite.append_data_file(data_file)
    return tx.commit_transaction()


def _layout(metadata: TableMetadata) -> FileLayout:
    """What ``iceberg_write`` needs to know of a table (one identity partition field)."""
    spec = metadata.spec()
    if len(spec.fields) != 1 or str(spec.fields[0].transform) != "identity":
        raise ValueError("govlab writes Iceberg tables with one identity partition field")
    schema = metadata.schema()
    return FileLayout(
        location=metadata.location,
        properties=metadata.properties,
        field_ids={f.name: f.field_id for f in schema.fields},
        partition_column=schema.find_column_name(spec.fields[0].source_id) or "",
        partition_name=spec.fields[0].name,
    )


def _data_files(metadata: TableMetadata, files: list[WrittenFile]) -> list[DataFile]:
    """PyIceberg's ``DataFile`` for each file ``iceberg_write`` wrote."""
    spec, schema = metadata.spec(), metadata.schema()
    out = []
    for written in files:
        key = PartitionKey(
            field_values=[PartitionFieldValue(field=spec.fields[0], value=written.partition)],
            partition_spec=spec,
            schema=schema,
        )
        out.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=written.path,
                file_format=FileFormat.PARQUET,
                partition=key.partition,
                file_size_in_bytes=written.file_size_in_bytes,
                sort_order_id=None,
                spec_id=metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                record_count=written.record_count,
                column_sizes=written.column_sizes,
                value_counts=written.value_counts,
                null_value_counts=written.null_value_counts,
                nan_value_counts={},
                lower_bounds=written.lower_bounds,
                upper_bounds=written.upper_bounds,
                split_offsets=written.split_offsets,
            )
        )
    return out


def _import_catalog_in_background() -> None:
    """Start importing the SQL catalog on a thread: writing the data files is mostly
    native code that releases the GIL, so the import runs beside it."""
    if "pyiceberg.catalog.sql" not in sys.modules:
        threading.Thread(
            target=importlib.import_module,
            args=("pyiceberg.catalog.sql",),
            name="govlab-import-catalog",
            daemon=True,
        ).start()


class _SeedOverwrite(_OverwriteFiles):
    """PyIceberg's overwrite, minus manifests with no live file.

    PyIceberg 0.12 carries forward a manifest whose entries are all DELETED (the record
    of an earlier snapshot's deletes), so with one overwrite per seed every snapshot
    listed one more dead manifest, and every commit and scan planning read them all.
    """

    @classmethod
    def of(cls, tx: Transaction) -> _SeedOverwrite:
        """Built as ``tx.update_snapshot().overwrite()`` builds its producer."""
        has_parent = tx.table_metadata.snapshot_by_name(name=MAIN_BRANCH) is not None
        return cls(
            operation=Operation.OVERWRITE if has_parent else Operation.APPEND,
            transaction=tx,
            io=tx._table.io,
            branch=MAIN_BRANCH,
        )

    def _existing_manifests(self) -> list[ManifestFile]:
        return [
            manifest
            for manifest in super()._existing_manifests()
            if manifest.has_added_files() or manifest.has_existing_files()
        ]


def _expire_history(tx: Transaction, table: Table) -> list[str]:
    """Expire, in the seed's own transaction, the snapshots beyond the newest
    ``KEEP_VERSIONS - 1`` (the seed adds one more), and return their manifest lists.

    What only they reference (``iceberg_commit.expired_files``: the manifest lists, the
    manifests no kept snapshot lists, the data files live in no kept snapshot) is
    deleted only after the commit succeeded: a failed seed expires nothing.
    """
    history = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0)
    expiring = history[: max(0, len(history) - (KEEP_VERSIONS - 1))]
    if not expiring:
        return []
    ExpireSnapshots(tx).by_ids([s.snapshot_id for s in expiring]).commit()
    return [s.manifest_list for s in expiring]


def _delete_files(io: Any, paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(Exception):  # already gone: nothing to reclaim
            io.delete(path)


@functools.lru_cache(maxsize=64)
def _written_as_is(schema: pa.Schema) -> bool:
    """Whether every column is written with its own Arrow type (then filters evaluated
    on the files see exactly the values the spec's types hold)."""
    _, write_schema = iceberg_schema(schema)
    return [f.type for f in write_schema] == schema.types


def _arrow_dataset(
    table: Table, snapshot: Snapshot, spec: DatasetSpec
) -> ds.FileSystemDataset | None:
    """None when the snapshot needs PyIceberg's reader (delete files, another spec)."""
    tasks = list(table.scan(snapshot_id=snapshot.snapshot_id).plan_files())
    if any(task.delete_files for task in tasks):
        return None
    specs = table.specs()
    column = spec.partition_by
    dtype = spec.column_type(column)
    filesystem = pafs.LocalFileSystem()
    file_format = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True)
    )
    fragments = []
    for task in tasks:
        data_file = task.file
        fields = specs[data_file.spec_id].fields
        if len(fields) != 1 or fields[0].field_id != PARTITION_FIELD_ID:
            return None
        value = data_file.partition[0]
        guarantee = (
            pc.field(column).is_null()
            if value is None
            else pc.field(column) == pa.scalar(value, dtype)
        )
        fragments.append(
            file_format.make_fragment(
                _local_path(data_file.file_path),
                filesystem=filesystem,
                partition_expression=guarantee,
            )
        )
    return ds.FileSystemDataset(fragments, spec.schema, file_format, filesystem)


def _version(table: Table, snapshot: Snapshot | None) -> int:
    """Our version number of a snapshot: its sequence number plus the table's offset
    (non-zero after a schema change replaced the table, so versions never go back)."""
    offset = int(table.properties.get(VERSION_OFFSET, "0"))
    return offset + (snapshot.sequence_number if snapshot is not None else 0)


# ---------------------------------------------------------------------- schema mapping
def _iceberg_type(dtype: pa.DataType) -> tuple[IcebergType, pa.DataType]:
    """(Iceberg type, the Arrow type we write it as) for one Arrow column type: the one
    mapping (``iceberg_commit.iceberg_type``, in the metadata JSON's spelling), parsed
    by PyIceberg."""
    name, arrow_type = iceberg_type(dtype)
    return IcebergType.model_validate(name), arrow_type


def iceberg_schema(schema: pa.Schema) -> tuple[Schema, pa.Schema]:
    """The Iceberg schema (field ids 1..n, every field optional) for an Arrow schema, and
    the Arrow schema to cast written chunks to.

    All fields are optional: Iceberg's required flag would only add a write-time check
    the generators already guarantee, and optional fields accept non-null Arrow input.
    """
    fields, arrow_fields = [], []
    for field_id, field in enumerate(schema, start=1):
        ice_type, arrow_type = _iceberg_type(field.type)
        fields.append(NestedField(field_id, field.name, ice_type, required=False))
        arrow_fields.append(pa.field(field.name, arrow_type, nullable=True))
    return Schema(*fields), pa.schema(arrow_fields)


def _partition_spec(schema: Schema, spec: DatasetSpec) -> PartitionSpec:
    source = schema.find_field(spec.partition_by)
    return PartitionSpec(
        PartitionField(
            source_id=source.field_id,
            field_id=PARTITION_FIELD_ID,
            transform=IdentityTransform(),
            name=spec.partition_by,
        )
    )


def _sort_order(schema: Schema, spec: DatasetSpec) -> SortOrder:
    pk = schema.find_field(spec.primary_key)
    return SortOrder(SortField(source_id=pk.field_id, transform=IdentityTransform()))


def _same_layout(table: Table, schema: Schema, spec: DatasetSpec) -> bool:
    current = [(f.name, f.field_type) for f in table.schema().fields]
    wanted = [(f.name, f.field_type) for f in schema.fields]
    partition = [
        (table.schema().find_column_name(f.source_id), str(f.transform))
        for f in table.spec().fields
    ]
    return current == wanted and partition == [(spec.partition_by, str(IdentityTransform()))]


def _local_path(location: str) -> str:
    parsed = urlparse(location)
    return parsed.path if parsed.scheme == "file" else location
