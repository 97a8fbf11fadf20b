"""Seeds of an Iceberg table without PyIceberg or SQLAlchemy: the first one, and
reseeds with the same schema and partitioning.

A new table's seed needs little of PyIceberg: data files (``engines.iceberg_write``,
which imports none of it), one manifest and one manifest list (Avro), one metadata JSON
file, and one row in the SQL catalog. Importing PyIceberg's table layer and its SQL
catalog costs a fresh ``govlab seed`` process about 0.6 CPU-seconds (pydantic models,
SQLAlchemy, fsspec, ...), more than writing 500,000 rows takes; here the commit is
written with the standard library and fastavro (imported when the commit writes, a few
milliseconds):

* manifest and manifest list: Avro object container files (fastavro) with the schemas
  (field ids included) PyIceberg 0.12 writes for format version 2, deflate-compressed;
* metadata: the JSON PyIceberg writes for a new table with one APPEND snapshot
  (sequence number 1, a ``main`` branch, the table's sort order and properties);
* catalog: the JDBC catalog layout PyIceberg's ``SqlCatalog`` creates
  (``iceberg_tables``, ``iceberg_namespace_properties``) over ``sqlite3``; the table's
  row is inserted in one transaction, which fails if the table appeared meanwhile.

So the table is an ordinary Iceberg table: PyIceberg's ``SqlCatalog`` loads it,
scans it, and commits on top of it (``engines.iceberg``). A failure before the catalog
row is in deletes every file the seed wrote.

A reseed (``_Reseed``) reads the current metadata JSON (located by the catalog row)
and the current snapshot's manifests (Avro, read with fastavro), and commits what
``engines.iceberg`` commits through PyIceberg: one OVERWRITE snapshot (the new files
ADDED, the previous ones DELETED), history beyond ``KEEP_VERSIONS`` expired and, after
the commit, the files only expired snapshots reference deleted (``expired_files``, which
both paths share: manifest lists, manifests, data files), the metadata log trimmed, and
the catalog row swapped by compare-and-set on the previous metadata location
(CommitConflict if another writer committed meanwhile; the seed's files are deleted).
A schema or partitioning change, or a table with properties or metadata this module
does not write, goes through PyIceberg (``seed_without_pyiceberg`` returns None
before reading a batch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import RowsWrittenFn, TableInfo
from govlab.engines.iceberg_write import FileLayout, WrittenFile, local_path, write_data_files
from govlab.engines.writing import (
    DATA_PAGE_BYTES,
    DICTIONARY_PAGE_BYTES,
    ROW_GROUP_ROWS,
    CountingBatches,
    check_dataset_name,
    seed_lock,
)
from govlab.generators.base import DatasetSpec

NAMESPACE = "govlab"
CATALOG_NAME = "govlab"
PARTITION_FIELD_ID = 1000
PAGE_ROW_LIMIT = 1024
KEEP_VERSIONS = 10
VERSION_OFFSET = "govlab.version-offset"
TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.row-group-limit": str(ROW_GROUP_ROWS),
    "write.parquet.page-size-bytes": str(DATA_PAGE_BYTES),
    "write.parquet.dict-size-bytes": str(DICTIONARY_PAGE_BYTES),
    # PyIceberg passes this to Arrow as write_batch_size: the page size is only checked
    # every that many rows, so the default (20,000) made pages of 20,000 rows.
    "write.parquet.page-row-limit": str(PAGE_ROW_LIMIT),
    # Uncompressed, as all three formats write (``engines.writing.COMPRESSION``).
    "write.parquet.compression-codec": "uncompressed",
    # Old metadata JSON files are removed after each commit (the catalog points at the
    # newest); without these every reseed left one more file behind.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": str(KEEP_VERSIONS),
}
EXISTING, ADDED, DELETED = 0, 1, 2  # manifest entry status
TABLE_TYPE = "TABLE"  # SqlCatalog's iceberg_type of a table (not a view)

log = logging.getLogger(__name__)

# The tables as SQLAlchemy creates them for PyIceberg's SqlCatalog (schema "v1").
_CATALOG_DDL = (
    "CREATE TABLE IF NOT EXISTS iceberg_tables (\n"
    "\tcatalog_name VARCHAR(255) NOT NULL, \n"
    "\ttable_namespace VARCHAR(255) NOT NULL, \n"
    "\ttable_name VARCHAR(255) NOT NULL, \n"
    "\tmetadata_location VARCHAR(1000), \n"
    "\tprevious_metadata_location VARCHAR(1000), \n"
    "\ticeberg_type VARCHAR(5), \n"
    "\tPRIMARY KEY (catalog_name, table_namespace, table_name)\n"
    ")",
    "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (\n"
    "\tcatalog_name VARCHAR(255) NOT NULL, \n"
    "\tnamespace VARCHAR(255) NOT NULL, \n"
    "\tproperty_key VARCHAR(255) NOT NULL, \n"
    "\tproperty_value VARCHAR(1000) NOT NULL, \n"
    "\tPRIMARY KEY (catalog_name, namespace, property_key)\n"
    ")",
)


class CommitConflict(RuntimeError):
    """The catalog changed under the seed (the table appeared or moved on)."""


# ---------------------------------------------------------------------- types
def iceberg_type(dtype: pa.DataType) -> tuple[str, pa.DataType]:
    """(Iceberg type as the metadata JSON spells it, the Arrow type written) for one
    Arrow column type; ``engines.iceberg.iceberg_schema`` parses these names too."""
    if pa.types.is_boolean(dtype):
        return "boolean", pa.bool_()
    if pa.types.is_int8(dtype) or pa.types.is_int16(dtype) or pa.types.is_int32(dtype):
        return "int", pa.int32()
    if pa.types.is_uint8(dtype) or pa.types.is_uint16(dtype):
        return "int", pa.int32()
    if pa.types.is_int64(dtype) or pa.types.is_uint32(dtype):
        return "long", pa.int64()
    if pa.types.is_float16(dtype) or pa.types.is_float32(dtype):
        return "float", pa.float32()
    if pa.types.is_float64(dtype):
        return "double", pa.float64()
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string", pa.string()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "binary", pa.binary()
    if pa.types.is_date(dtype):
        return "date", pa.date32()
    if pa.types.is_timestamp(dtype):
        if dtype.tz is None:
            return "timestamp", pa.timestamp("us")
        return "timestamptz", pa.timestamp("us", tz="UTC")
    if pa.types.is_time(dtype):
        return "time", pa.time64("us")
    if pa.types.is_decimal128(dtype):
        return f"decimal({dtype.precision}, {dtype.scale})", dtype
    raise TypeError(f"no Iceberg type for Arrow type {dtype}")


# Partition columns this module writes manifests for (Avro type of the value).
_PARTITION_AVRO = {"string": "string", "int": "int", "long": "long"}


def supported(spec: DatasetSpec) -> bool:
    """Whether a new table of ``spec`` can be seeded here (else through PyIceberg)."""
    try:
        types = {f.name: iceberg_type(f.type)[0] for f in spec.schema}
    except TypeError:
        return False
    return types.get(spec.partition_by) in _PARTITION_AVRO and spec.primary_key in types


# ---------------------------------------------------------------------- the seed
def seed_new_table(
    settings: Settings,
    spec: DatasetSpec,
    batches: Iterable[pa.RecordBatch],
    progress: RowsWrittenFn | None = None,
) -> TableInfo | None:
    """Seed ``spec`` as a new table: None (nothing read from ``batches``) when the
    table exists already, the catalog file is not one this module understands, or the
    spec has a type it does not write; the caller then seeds through PyIceberg."""
    name = check_dataset_name(spec.name)
    if not supported(spec):
        return None
    catalog_path = settings.format_dir("iceberg") / "catalog.db"
    with seed_lock(settings, "iceberg", name):
        if catalog_path.exists() and not _table_absent(catalog_path, name):
            return None
        return _seed_new(settings, spec, batches, progress)


def seed_without_pyiceberg(
    settings: Settings,
    spec: DatasetSpec,
    batches: Iterable[pa.RecordBatch],
    progress: RowsWrittenFn | None = None,
) -> TableInfo | None:
    """Seed ``spec`` without PyIceberg: a new table (as ``seed_new_table``), or a
    reseed of a table with the same schema and partitioning (``_Reseed``). None
    (nothing read from ``batches``) for anything else: a schema or layout change, a
    table property or metadata this module does not write, an unreadable catalog; the
    caller then seeds through PyIceberg."""
    name = check_dataset_name(spec.name)
    if not supported(spec):
        return None
    catalog_path = settings.format_dir("iceberg") / "catalog.db"
    with seed_lock(settings, "iceberg", name):
        if not catalog_path.exists() or _table_absent(catalog_path, name):
            return _seed_new(settings, spec, batches, progress)
        reseed = _Reseed.plan(settings, spec, catalog_path)
        if reseed is None:
            return None
        return reseed.run(batches, progress)


def _seed_new(
    settings: Settings,
    spec: DatasetSpec,
    batches: Iterable[pa.RecordBatch],
    progress: RowsWrittenFn | None,
) -> TableInfo:
    """A new table's first seed (the caller holds the seed lock and saw no table)."""
    root = settings.format_dir("iceberg")
    catalog_path = root / "catalog.db"
    warehouse = root / "warehouse"
    location = f"{warehouse.as_uri()}/{NAMESPACE}/{spec.name}"
    table = _NewTable(spec, location)
    stream = CountingBatches(spec.schema, batches, progress)
    written: list[str] = []
    try:
        files = write_data_files(table.layout, stream, table.write_schema, written)
        metadata_location = table.write_metadata(files, written)
        warehouse.mkdir(parents=True, exist_ok=True)
        # the lock SqlCatalog's creation takes in ``IcebergEngine.catalog``: its
        # SQLAlchemy checks for the catalog tables and then creates them
        with FileLock(str(settings.lock_dir / "iceberg-catalog.lock")):
            _insert_table(catalog_path, spec.name, metadata_location)
    except BaseException:
        _delete(written)
        raise
    return table.info(settings, catalog_path, metadata_location)


def catalog_entry(catalog_path: Path, namespace: str, name: str) -> tuple[bool, str | None]:
    """(read, metadata location) of a table in the catalog's table (the JDBC catalog
    layout ``SqlCatalog`` writes), over a plain read-only SQLite connection: (True, None)
    when the table is not there, (False, None) on any surprise."""
    try:
        connection = sqlite3.connect(f"{catalog_path.as_uri()}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT metadata_location FROM iceberg_tables "
                "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
                (CATALOG_NAME, namespace, name),
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False, None
    if row is None:
        return True, None
    return (True, row[0]) if isinstance(row[0], str) else (False, None)


def _table_absent(catalog_path: Path, name: str) -> bool:
    """Whether the catalog surely has no row for the table (False on any surprise)."""
    return catalog_entry(catalog_path, NAMESPACE, name) == (True, None)


def _table_location(catalog_path: Path, name: str) -> str | None:
    """The table's metadata location per the catalog (None if unreadable or absent)."""
    return catalog_entry(catalog_path, NAMESPACE, name)[1]


def _swap_table(catalog_path: Path, name: str, previous: str, metadata_location: str) -> None:
    """Point the catalog's row at ``metadata_location`` if it still points at
    ``previous`` (SqlCatalog's commit: one compare-and-set UPDATE); CommitConflict if
    another writer committed meanwhile."""
    connection = sqlite3.connect(str(catalog_path), timeout=30, isolation_level=None)
    try:
        cursor = connection.execute(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
            "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? "
            "AND metadata_location = ?",
            (metadata_location, previous, CATALOG_NAME, NAMESPACE, name, previous),
        )
        if cursor.rowcount < 1:
            raise CommitConflict(f"iceberg table {name!r} was committed by another writer")
    finally:
        connection.close()


def _insert_table(catalog_path: Path, name: str, metadata_location: str) -> None:
    """Create the catalog's tables and namespace if needed and insert the table's row,
    in one transaction; CommitConflict if the table is there already."""
    connection = sqlite3.connect(str(catalog_path), timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            for ddl in _CATALOG_DDL:
                connection.execute(ddl)
            connection.execute(
                "INSERT OR IGNORE INTO iceberg_namespace_properties "
                "(catalog_name, namespace, property_key, property_value) VALUES (?, ?, ?, ?)",
                (CATALOG_NAME, NAMESPACE, "exists", "true"),
            )
            columns = {row[1] for row in connection.execute("PRAGMA table_info(iceberg_tables)")}
            row = {
                "catalog_name": CATALOG_NAME,
                "table_namespace": NAMESPACE,
                "table_name": name,
                "metadata_location": metadata_location,
                "previous_metadata_location": None,
            }
            if "iceberg_type" in columns:  # a catalog PyIceberg created before 0.10 lacks it
                row["iceberg_type"] = TABLE_TYPE
            try:
                connection.execute(
                    f"INSERT INTO iceberg_tables ({', '.join(row)}) "
                    f"VALUES ({', '.join('?' for _ in row)})",
                    tuple(row.values()),
                )
            except sqlite3.IntegrityError:
                raise CommitConflict(
                    f"iceberg table {name!r} was created by another writer during the seed"
                ) from None
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    finally:
        connection.close()


def _delete(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError, ValueError):  # already gone: nothing to reclaim
            os.remove(local_path(path))


# ---------------------------------------------------------------------- expiry
def expired_files(expired_lists: Iterable[str], kept_lists: Iterable[str]) -> list[str]:
    """The files only expired snapshots reference, given their manifest lists and the
    manifest lists of every snapshot the committed metadata keeps: the expired manifest
    lists, the manifests they name that no kept manifest list names, and the data (or
    delete) files live (ADDED or EXISTING) in those manifests and in no kept one. Data
    files first, then manifests, then manifest lists.

    Both commit paths use it once their commit is in (``engines.iceberg`` and
    ``_Reseed``). Only files reachable from an expired snapshot are candidates, and
    anything a kept snapshot reaches is excluded, so time travel to every kept version
    (and a reader holding one) is unaffected. OSError or ValueError when a manifest
    list or manifest cannot be read: nothing is to be deleted then.
    """
    kept = {local_path(path): path for path in kept_lists}
    expired = {local_path(path): path for path in expired_lists if local_path(path) not in kept}
    if not expired:
        return []
    kept_manifests = _manifests(kept.values())
    dropped = {k: v for k, v in _manifests(expired.values()).items() if k not in kept_manifests}
    kept_data = _live_paths(kept_manifests.values())
    data = {k: v for k, v in _live_paths(dropped.values()).items() if k not in kept_data}
    return [*(data[k] for k in sorted(data)), *sorted(dropped.values()), *sorted(expired.values())]


def _manifests(manifest_lists: Iterable[str]) -> dict[str, str]:
    """{local path: path as written} of the manifests the manifest lists name."""
    return {
        local_path(record["manifest_path"]): record["manifest_path"]
        for manifest_list in manifest_lists
        for record in read_avro(manifest_list)[2]
    }


def _live_paths(manifests: Iterable[str]) -> dict[str, str]:
    """{local path: path as written} of the files the manifests list as live."""
    return {
        local_path(entry["data_file"]["file_path"]): entry["data_file"]["file_path"]
        for manifest in manifests
        for entry in read_avro(manifest)[2]
        if entry["status"] != DELETED
    }


def reclaim_expired(expired_lists: Iterable[str], kept_lists: Iterable[str]) -> list[str]:
    """Delete ``expired_files`` (after the commit that expired the snapshots); the
    paths deleted. Housekeeping: a failure is logged, never raised (the seed is
    committed), and the files it could not delete stay on disk, unreferenced."""
    try:
        paths = expired_files(expired_lists, kept_lists)
    except Exception as error:  # the commit is in: nothing to undo
        log.warning("iceberg: expired files not reclaimed (%s: %s)", type(error).__name__, error)
        return []
    _delete(paths)
    return paths


class _NewTable:
    """A new table's layout (field ids 1..n, every field optional, identity partition
    field 1000 on the dataset's partition column, sort order 1 on the primary key) and
    its first snapshot's metadata files."""

    def __init__(self, spec: DatasetSpec, location: str) -> None:
        self.spec = spec
        self.location = location
        self.types = [iceberg_type(f.type) for f in spec.schema]
        self.write_schema = pa.schema(
            [
                pa.field(f.name, t[1], nullable=True)
                for f, t in zip(spec.schema, self.types, strict=True)
            ]
        )
        self.field_ids = {f.name: i for i, f in enumerate(spec.schema, start=1)}
        self.properties = {**TABLE_PROPERTIES, VERSION_OFFSET: "0"}
        self.partition_source = self.field_ids[spec.partition_by]
        self.partition_type = self.types[self.partition_source - 1][0]
        self.layout = FileLayout(
            location=location,
            properties=self.properties,
            field_ids=self.field_ids,
            partition_column=spec.partition_by,
            partition_name=spec.partition_by,
        )
        self.schema_json = {
            "type": "struct",
            "fields": [
                {"id": i, "name": f.name, "type": t[0], "required": False}
                for i, (f, t) in enumerate(zip(spec.schema, self.types, strict=True), start=1)
            ],
            "schema-id": 0,
            "identifier-field-ids": [],
        }
        self.spec_fields = [
            {
                "source-id": self.partition_source,
                "field-id": PARTITION_FIELD_ID,
                "transform": "identity",
                "name": spec.partition_by,
            }
        ]
        self.snapshot_id = uuid.uuid4().int & ((1 << 63) - 1)
        self.commit_uuid = uuid.uuid4()
        self.timestamp_ms = int(time.time() * 1000)
        self.summary: dict[str, str] = {}

    # -------------------------------------------------------------- files
    def write_metadata(self, files: list[WrittenFile], written: list[str]) -> str:
        """Manifest, manifest list and metadata JSON; each path goes to ``written``
        before the file is created. The metadata file's location."""
        metadata_dir = f"{self.location}/metadata"
        os.makedirs(local_path(metadata_dir), exist_ok=True)
        manifest = f"{metadata_dir}/{self.commit_uuid}-m0.avro"
        written.append(manifest)
        manifest_length = self._write_manifest(manifest, files)
        manifest_list = f"{metadata_dir}/snap-{self.snapshot_id}-0-{self.commit_uuid}.avro"
        written.append(manifest_list)
        self._write_manifest_list(manifest_list, manifest, manifest_length, files)
        metadata = f"{metadata_dir}/00000-{uuid.uuid4()}.metadata.json"
        written.append(metadata)
        with open(local_path(metadata), "x", encoding="utf-8") as out:
            json.dump(self._metadata(manifest_list, files), out, separators=(",", ":"))
        return metadata

    def _write_manifest(self, path: str, files: list[WrittenFile]) -> int:
        records = _added_entries(files, self.snapshot_id, self.spec.partition_by)
        return _write_manifest(
            path,
            records,
            self.schema_json,
            self.spec_fields,
            0,
            self.spec.partition_by,
            self.partition_type,
        )

    def _write_manifest_list(
        self, path: str, manifest: str, manifest_length: int, files: list[WrittenFile]
    ) -> None:
        record = _manifest_list_record(
            manifest,
            manifest_length,
            0,
            1,
            self.snapshot_id,
            [f.partition for f in files],
            self.partition_type,
            added=(len(files), sum(f.record_count for f in files)),
        )
        _write_manifest_list(path, [record], self.snapshot_id, None, 1)

    def _metadata(self, manifest_list: str, files: list[WrittenFile]) -> dict[str, Any]:
        size = sum(f.file_size_in_bytes for f in files)
        rows = sum(f.record_count for f in files)
        self.summary = {
            "operation": "append",
            "added-files-size": str(size),
            "added-data-files": str(len(files)),
            "added-records": str(rows),
            "changed-partition-count": str(len({f.partition for f in files})),
            "total-data-files": str(len(files)),
            "total-delete-files": "0",
            "total-records": str(rows),
            "total-files-size": str(size),
            "total-position-deletes": "0",
            "total-equality-deletes": "0",
        }
        pk = self.field_ids[self.spec.primary_key]
        return {
            "location": self.location,
            "table-uuid": str(uuid.uuid4()),
            "last-updated-ms": self.timestamp_ms,
            "last-column-id": len(self.field_ids),
            "schemas": [self.schema_json],
            "current-schema-id": 0,
            "partition-specs": [{"spec-id": 0, "fields": self.spec_fields}],
            "default-spec-id": 0,
            "last-partition-id": PARTITION_FIELD_ID,
            "properties": {k: v for k, v in self.properties.items() if k != "format-version"},
            "current-snapshot-id": self.snapshot_id,
            "snapshots": [
                {
                    "snapshot-id": self.snapshot_id,
                    "sequence-number": 1,
                    "timestamp-ms": self.timestamp_ms,
                    "manifest-list": manifest_list,
                    "summary": self.summary,
                    "schema-id": 0,
                }
            ],
            "snapshot-log": [{"snapshot-id": self.snapshot_id, "timestamp-ms": self.timestamp_ms}],
            "metadata-log": [],
            "sort-orders": [
                {
                    "order-id": 1,
                    "fields": [
                        {
                            "source-id": pk,
                            "transform": "identity",
                            "direction": "asc",
                            "null-order": "nulls-first",
                        }
                    ],
                }
            ],
            "default-sort-order-id": 1,
            "refs": {"main": {"snapshot-id": self.snapshot_id, "type": "branch"}},
            "statistics": [],
            "partition-statistics": [],
            "format-version": 2,
            "last-sequence-number": 1,
        }

    def info(self, settings: Settings, catalog_path: Path, metadata_location: str) -> TableInfo:
        """What ``IcebergEngine.info`` says about the table right after this seed."""
        name = self.spec.name
        properties = {k: v for k, v in self.properties.items() if k != "format-version"}
        details: dict[str, Any] = {
            "catalog": str(catalog_path),
            "warehouse": str(catalog_path.parent / "warehouse"),
            "identifier": f"{NAMESPACE}.{name}",
            "metadata_location": metadata_location,
            "format_version": 2,
            "snapshot_id": self.snapshot_id,
            "sequence_number": 1,
            "operation": "append",
            "partition_spec": [
                {
                    "name": self.spec.partition_by,
                    "transform": "identity",
                    "source_id": self.partition_source,
                }
            ],
            "sort_order": f"[\n  {self.field_ids[self.spec.primary_key]} ASC NULLS FIRST\n]",
            "files": int(self.summary["total-data-files"]),
            "snapshots": 1,
            "properties": properties,
        }
        return TableInfo(
            format="iceberg",
            dataset=name,
            version=1,
            rows=int(self.summary["total-records"]),
            location=local_path(self.location),
            details=details,
        )


class _Unsupported(Exception):
    """The table is not one ``_Reseed`` commits to: PyIceberg seeds it."""


# Table properties that move or encode metadata files, or add summaries, otherwise than
# this module writes them: a table with any of them is reseeded through PyIceberg.
_FOREIGN_PROPERTIES = (
    "write.metadata.path",
    "write.metadata.compression-codec",
    "write.avro.compression-codec",
    "write.object-storage.enabled",
    "write.location-provider.impl",
    "write.py-location-provider.impl",
    "write.summary.partition-limit",
)
_METADATA_FILE = re.compile(r"(\d+)-([\w-]{36})(?:\.\w+)?\.metadata\.json")
# Totals of a snapshot summary: (total, added, removed), as PyIceberg updates them.
_TOTALS = (
    ("total-data-files", "added-data-files", "deleted-data-files"),
    ("total-delete-files", "added-delete-files", "removed-delete-files"),
    ("total-records", "added-records", "deleted-records"),
    ("total-files-size", "added-files-size", "removed-files-size"),
    ("total-position-deletes", "added-position-deletes", "removed-position-deletes"),
    ("total-equality-deletes", "added-equality-deletes", "removed-equality-deletes"),
)


@dataclass(frozen=True)
class _LiveFile:
    """A live data file of a snapshot: its manifest entry's ``data_file`` record and
    (inherited) sequence numbers."""

    data_file: dict[str, Any]
    sequence_number: int | None
    file_sequence_number: int | None


class _Reseed:
    """A reseed of an existing table with the same schema and partitioning, committed
    as ``IcebergEngine.write`` commits it through PyIceberg, with the same result:

    * one OVERWRITE snapshot (sequence number: the table's last plus one) whose
      manifest list holds a manifest of the new files (ADDED) and one of every live
      file of the current snapshot (DELETED, with their sequence numbers), as
      PyIceberg's ``_OverwriteFiles`` writes them; the summary's counts and totals as
      PyIceberg's ``SnapshotSummaryCollector`` and ``update_snapshot_summaries``;
    * history: the snapshots beyond the newest ``KEEP_VERSIONS - 1`` expire in the
      same metadata (``ExpireSnapshots``: removed with their snapshot-log entries, a
      child's parent id dropped), and after the commit what only they reference
      (manifest lists, manifests, data files: ``expired_files``, as the PyIceberg path)
      is deleted;
    * the metadata JSON: the next ``NNNNN-<uuid>.metadata.json``, the previous one
      appended to the metadata log (trimmed to ``write.metadata.previous-versions-max``)
      and files dropped from the log deleted after the commit, table properties
      brought up to date as the PyIceberg path does;
    * the catalog: SqlCatalog's compare-and-set on the previous metadata location.

    What the commit needs is read (metadata JSON, manifest list and manifests of the
    current snapshot) before a batch is: a table that surprises the plan goes to
    PyIceberg untouched. The expired snapshots' files are read after the commit, as
    housekeeping (a failure there is logged, the seed stands).
    """

    def __init__(self, settings: Settings, spec: DatasetSpec, catalog_path: Path) -> None:
        self.settings = settings
        self.spec = spec
        self.catalog_path = catalog_path
        previous = _table_location(catalog_path, spec.name)
        if previous is None:
            raise _Unsupported("no metadata location in the catalog")
        self.previous_location = previous
        with open(local_path(previous), encoding="utf-8") as file:
            base: dict[str, Any] = json.load(file)
        self.base = base
        if base.get("format-version") != 2:
            raise _Unsupported("format version")
        self.location = str(base["location"]).rstrip("/")
        local_path(self.location)  # ValueError unless on the local file system
        properties: dict[str, str] = dict(base.get("properties", {}))
        if any(key in properties for key in _FOREIGN_PROPERTIES):
            raise _Unsupported("table properties")
        stale = {
            k: v
            for k, v in TABLE_PROPERTIES.items()
            if k.startswith("write.") and properties.get(k) != v
        }
        self.properties = {**properties, **stale}

        # layout: the schema and partitioning ``engines.iceberg._same_layout`` accepts
        self.schema_json = _by_id(base["schemas"], "schema-id", base["current-schema-id"])
        types = [(f.name, iceberg_type(f.type)[0]) for f in spec.schema]
        fields = self.schema_json["fields"]
        if [(f["name"], f["type"]) for f in fields] != types:
            raise _Unsupported("schema changed")
        self.field_ids = {f["name"]: int(f["id"]) for f in fields}
        self.spec_id = int(base["default-spec-id"])
        self.spec_fields = _by_id(base["partition-specs"], "spec-id", self.spec_id)["fields"]
        if len(self.spec_fields) != 1:
            raise _Unsupported("partitioning changed")
        partition = self.spec_fields[0]
        if (partition["transform"], partition["field-id"], partition["source-id"]) != (
            "identity",
            PARTITION_FIELD_ID,
            self.field_ids[spec.partition_by],
        ):
            raise _Unsupported("partitioning changed")
        self.partition_name = str(partition["name"])
        self.partition_type = dict(types)[spec.partition_by]
        order = _by_id(base["sort-orders"], "order-id", base["default-sort-order-id"])
        self.sort_order = _sort_order_text(order["fields"])

        # the current snapshot and history
        current_id = base.get("current-snapshot-id")
        snapshots: list[dict[str, Any]] = base["snapshots"]
        if current_id is None or base.get("refs") != {
            "main": {"snapshot-id": current_id, "type": "branch"}
        }:
            raise _Unsupported("refs")
        if base.get("statistics") or base.get("partition-statistics"):
            raise _Unsupported("statistics files")
        self.current = _by_id(snapshots, "snapshot-id", current_id)
        self.previous = self._live_files(self.current)
        previous_files = [p.data_file for p in self.previous]
        if not _writable(previous_files, self.partition_name, self.partition_type):
            raise _Unsupported("manifest entry types")
        history = sorted(snapshots, key=lambda s: int(s["sequence-number"]))
        self.expiring = history[: max(0, len(history) - (KEEP_VERSIONS - 1))]

    @classmethod
    def plan(cls, settings: Settings, spec: DatasetSpec, catalog_path: Path) -> _Reseed | None:
        """The reseed, or None when PyIceberg should commit it."""
        try:
            return cls(settings, spec, catalog_path)
        except (_Unsupported, OSError, ValueError, KeyError, TypeError, IndexError, zlib.error):
            return None

    def _live_files(self, snapshot: Mapping[str, Any]) -> list[_LiveFile]:
        """The data files a snapshot lists (ADDED and EXISTING entries of its manifests,
        sequence numbers inherited as PyIceberg's reader does)."""
        _, _, manifests = read_avro(snapshot["manifest-list"])
        live = []
        for manifest in manifests:
            if manifest["content"] != 0 or manifest["partition_spec_id"] != self.spec_id:
                raise _Unsupported("delete files or another partition spec")
            inherited = manifest["sequence_number"]
            for entry in read_avro(manifest["manifest_path"])[2]:
                if entry["status"] == DELETED:
                    continue
                data_file = entry["data_file"]
                if (
                    data_file["content"] != 0
                    or data_file.keys() != _DATA_FILE_FIELDS
                    or data_file["partition"].keys() != {self.partition_name}
                ):
                    raise _Unsupported("manifest entry")
                inherit = inherited == 0 or entry["status"] == ADDED
                sequence = entry["sequence_number"]
                file_sequence = entry["file_sequence_number"]
                live.append(
                    _LiveFile(
                        data_file,
                        inherited if sequence is None and inherit else sequence,
                        inherited if file_sequence is None and inherit else file_sequence,
                    )
                )
        return live

    # -------------------------------------------------------------- the seed
    def run(self, batches: Iterable[pa.RecordBatch], progress: RowsWrittenFn | None) -> TableInfo:
        spec = self.spec
        write_schema = pa.schema(
            [pa.field(f.name, iceberg_type(f.type)[1], nullable=True) for f in spec.schema]
        )
        layout = FileLayout(
            location=self.location,
            properties=self.properties,
            field_ids=self.field_ids,
            partition_column=spec.partition_by,
            partition_name=self.partition_name,
        )
        stream = CountingBatches(spec.schema, batches, progress)
        written: list[str] = []
        try:
            files = write_data_files(layout, stream, write_schema, written)
            metadata, metadata_location = self._write_metadata(files, written)
            _swap_table(self.catalog_path, spec.name, self.previous_location, metadata_location)
        except BaseException:
            _delete(written)
            raise
        self._reclaim(metadata)
        return self._info(metadata, metadata_location)

    def _write_metadata(
        self, files: list[WrittenFile], written: list[str]
    ) -> tuple[dict[str, Any], str]:
        """Manifests, manifest list and metadata JSON of the new snapshot; each path
        goes to ``written`` before the file is created. (metadata, its location)"""
        base = self.base
        sequence = int(base["last-sequence-number"]) + 1
        snapshot_id = _new_snapshot_id({int(s["snapshot-id"]) for s in base["snapshots"]})
        commit_uuid = uuid.uuid4()
        metadata_dir = f"{self.location}/metadata"
        os.makedirs(local_path(metadata_dir), exist_ok=True)
        manifests: list[tuple[list[dict[str, Any]], list[Any], str]] = []
        if files:
            added = _added_entries(files, snapshot_id, self.partition_name)
            manifests.append((added, [f.partition for f in files], "added"))
        if self.previous:
            deleted = [
                {
                    "status": DELETED,
                    "snapshot_id": snapshot_id,
                    "sequence_number": p.sequence_number,
                    "file_sequence_number": p.file_sequence_number,
                    "data_file": p.data_file,
                }
                for p in self.previous
            ]
            partitions = [p.data_file["partition"][self.partition_name] for p in self.previous]
            manifests.append((deleted, partitions, "deleted"))
        records = []
        for number, (entries, partitions, kind) in enumerate(manifests):
            path = f"{metadata_dir}/{commit_uuid}-m{number}.avro"
            written.append(path)
            length = _write_manifest(
                path,
                entries,
                self.schema_json,
                self.spec_fields,
                self.spec_id,
                self.partition_name,
                self.partition_type,
            )
            counts = (len(entries), sum(e["data_file"]["record_count"] for e in entries))
            records.append(
                _manifest_list_record(
                    path,
                    length,
                    self.spec_id,
                    sequence,
                    snapshot_id,
                    partitions,
                    self.partition_type,
                    **{kind: counts},
                )
            )
        manifest_list = f"{metadata_dir}/snap-{snapshot_id}-0-{commit_uuid}.avro"
        written.append(manifest_list)
        parent_id = int(self.current["snapshot-id"])
        _write_manifest_list(manifest_list, records, snapshot_id, parent_id, sequence)

        timestamp_ms = int(time.time() * 1000)
        snapshot = {
            "snapshot-id": snapshot_id,
            "parent-snapshot-id": parent_id,
            "sequence-number": sequence,
            "timestamp-ms": timestamp_ms,
            "manifest-list": manifest_list,
            "summary": self._summary(files),
            "schema-id": self.schema_json["schema-id"],
        }
        metadata = self._metadata(snapshot)
        name = f"{self._next_metadata_version():05d}-{uuid.uuid4()}.metadata.json"
        location = f"{metadata_dir}/{name}"
        written.append(location)
        with open(local_path(location), "x", encoding="utf-8") as out:
            json.dump(metadata, out, separators=(",", ":"))
        return metadata, location

    def _summary(self, files: list[WrittenFile]) -> dict[str, str]:
        """The snapshot summary PyIceberg writes for the overwrite."""
        removed = [p.data_file for p in self.previous]
        counts = {
            "added-files-size": sum(f.file_size_in_bytes for f in files),
            "removed-files-size": sum(int(d["file_size_in_bytes"]) for d in removed),
            "added-data-files": len(files),
            "deleted-data-files": len(removed),
            "added-records": sum(f.record_count for f in files),
            "deleted-records": sum(int(d["record_count"]) for d in removed),
            "changed-partition-count": len(
                {_partition_key(f.partition) for f in files}
                | {_partition_key(d["partition"][self.partition_name]) for d in removed}
            ),
        }
        summary = {"operation": "overwrite"}
        summary.update({k: str(v) for k, v in counts.items() if v > 0})
        previous: Mapping[str, str] = self.current.get("summary") or {
            total: "0" for total, _, _ in _TOTALS
        }
        for total_key, added_key, removed_key in _TOTALS:
            text = previous.get(total_key)
            if not text:
                continue
            total = int(text)
            if total >= 0 and summary.get(added_key):
                total += int(summary[added_key])
            if total >= 0 and summary.get(removed_key):
                total -= int(summary[removed_key])
            if total >= 0:
                summary[total_key] = str(total)
        return summary

    def _metadata(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The table metadata after the commit (the previous file's, key order kept)."""
        base = self.base
        metadata = dict(base)
        metadata["properties"] = self.properties
        expired = {int(s["snapshot-id"]) for s in self.expiring}
        snapshots = []
        for kept in base["snapshots"]:
            if int(kept["snapshot-id"]) in expired:
                continue
            if kept.get("parent-snapshot-id") in expired:
                kept = {k: v for k, v in kept.items() if k != "parent-snapshot-id"}
            snapshots.append(kept)
        timestamp_ms = snapshot["timestamp-ms"]
        metadata["last-updated-ms"] = timestamp_ms
        metadata["current-snapshot-id"] = snapshot["snapshot-id"]
        metadata["snapshots"] = [*snapshots, snapshot]
        metadata["snapshot-log"] = [
            *(e for e in base.get("snapshot-log", []) if int(e["snapshot-id"]) not in expired),
            {"snapshot-id": snapshot["snapshot-id"], "timestamp-ms": timestamp_ms},
        ]
        keep = max(1, int(self.properties.get("write.metadata.previous-versions-max", 100)))
        log = list(base.get("metadata-log", []))
        if len(log) >= keep:
            log = log[len(log) - keep + 1 :]
        log.append(
            {"metadata-file": self.previous_location, "timestamp-ms": base["last-updated-ms"]}
        )
        metadata["metadata-log"] = log
        metadata["refs"] = {"main": {"snapshot-id": snapshot["snapshot-id"], "type": "branch"}}
        metadata["last-sequence-number"] = snapshot["sequence-number"]
        return metadata

    def _next_metadata_version(self) -> int:
        match = _METADATA_FILE.fullmatch(self.previous_location.rsplit("/", 1)[-1])
        return int(match.group(1)) + 1 if match else 0

    def _reclaim(self, metadata: Mapping[str, Any]) -> None:
        """After the commit: what only the expired snapshots reference (``expired_files``:
        their manifest lists, manifests and data files; never a file a kept snapshot
        reaches), and the metadata files the log no longer names. Failures are logged."""
        reclaim_expired(
            [s["manifest-list"] for s in self.expiring],
            [s["manifest-list"] for s in metadata["snapshots"]],
        )
        enabled = self.properties.get("write.metadata.delete-after-commit.enabled", "false")
        if enabled.strip().lower() == "true":
            logged = {e["metadata-file"] for e in metadata["metadata-log"]}
            dropped = {e["metadata-file"] for e in self.base.get("metadata-log", [])} - logged
            _delete(sorted(dropped))

    def _info(self, metadata: Mapping[str, Any], metadata_location: str) -> TableInfo:
        """What ``IcebergEngine.info`` says about the table right after this seed."""
        snapshot = metadata["snapshots"][-1]
        summary = snapshot["summary"]
        name = self.spec.name
        details: dict[str, Any] = {
            "catalog": str(self.catalog_path),
            "warehouse": str(self.catalog_path.parent / "warehouse"),
            "identifier": f"{NAMESPACE}.{name}",
            "metadata_location": metadata_location,
            "format_version": 2,
            "snapshot_id": snapshot["snapshot-id"],
            "sequence_number": snapshot["sequence-number"],
            "operation": summary["operation"],
            "partition_spec": [
                {
                    "name": self.partition_name,
                    "transform": "identity",
                    "source_id": self.field_ids[self.spec.partition_by],
                }
            ],
            "sort_order": self.sort_order,
            "files": int(summary.get("total-data-files", 0)),
            "snapshots": len(metadata["snapshots"]),
            "properties": dict(self.properties),
        }
        offset = int(self.properties.get(VERSION_OFFSET, "0"))
        return TableInfo(
            format="iceberg",
            dataset=name,
            version=offset + int(snapshot["sequence-number"]),
            rows=int(summary.get("total-records", 0)),
            location=local_path(self.location),
            details=details,
        )


def _by_id(items: Iterable[Mapping[str, Any]], key: str, wanted: Any) -> dict[str, Any]:
    for item in items:
        if item.get(key) == wanted:
            return dict(item)
    raise _Unsupported(f"no {key} {wanted}")


def _sort_order_text(fields: list[Mapping[str, Any]]) -> str:
    """``str(SortOrder)`` of PyIceberg for identity fields."""
    parts = []
    for field in fields:
        if field["transform"] != "identity":
            raise _Unsupported("sort order transform")
        direction = str(field["direction"]).upper()
        nulls = str(field["null-order"]).upper().replace("-", " ")
        parts.append(f"{field['source-id']} {direction} {nulls}")
    return "[" + ("\n  " + "\n  ".join(parts) + "\n" if parts else "") + "]"


def _partition_key(value: Any) -> tuple[bool, Any]:
    return (value is None, value)


def _new_snapshot_id(taken: set[int]) -> int:
    """A snapshot id as PyIceberg draws one (a uuid4's halves XORed, made positive)."""
    while True:
        raw = uuid.uuid4().bytes
        mixed = bytes(a ^ b for a, b in zip(raw[:8], raw[8:], strict=True))
        value = abs(int.from_bytes(mixed, "little", signed=True)) & ((1 << 63) - 1)
        if value not in taken:
            return value


# ---------------------------------------------------------------------- manifests
def _added_entries(
    files: list[WrittenFile], snapshot_id: int, partition_name: str
) -> list[dict[str, Any]]:
    """Manifest entries (status ADDED) for the data files a seed wrote."""
    return [
        {
            "status": ADDED,
            "snapshot_id": snapshot_id,
            "sequence_number": None,  # inherited from the manifest list
            "file_sequence_number": None,
            "data_file": {
                "content": 0,  # data
                "file_path": f.path,
                "file_format": "PARQUET",
                "partition": {partition_name: f.partition},
                "record_count": f.record_count,
                "file_size_in_bytes": f.file_size_in_bytes,
                "column_sizes": _avro_map(f.column_sizes),
                "value_counts": _avro_map(f.value_counts),
                "null_value_counts": _avro_map(f.null_value_counts),
                "nan_value_counts": _avro_map({}),
                "lower_bounds": _avro_map(f.lower_bounds),
                "upper_bounds": _avro_map(f.upper_bounds),
                "key_metadata": None,
                "split_offsets": f.split_offsets,
                "equality_ids": None,
                "sort_order_id": None,
            },
        }
        for f in files
    ]


def _write_manifest(
    path: str,
    records: list[dict[str, Any]],
    schema_json: Mapping[str, Any],
    spec_fields: list[dict[str, Any]],
    spec_id: int,
    partition_name: str,
    partition_type: str,
) -> int:
    """A v2 data manifest as PyIceberg writes it; its length in bytes."""
    meta = {
        "schema": json.dumps(schema_json, separators=(",", ":")),
        "partition-spec": json.dumps(spec_fields, separators=(",", ":")),
        "partition-spec-id": str(spec_id),
        "format-version": "2",
        "content": "data",
    }
    schema = _manifest_entry_schema(partition_name, _PARTITION_AVRO[partition_type])
    return write_avro(path, schema, meta, records)


def _manifest_list_record(
    manifest: str,
    length: int,
    spec_id: int,
    sequence_number: int,
    snapshot_id: int,
    partitions: list[Any],
    partition_type: str,
    added: tuple[int, int] = (0, 0),
    deleted: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """A manifest list's record of one manifest written by the snapshot being committed
    (``added``/``deleted``: (files, rows)); ``partitions`` are its entries' values."""
    present = [v for v in partitions if v is not None]
    summary = {
        "contains_null": len(present) < len(partitions),
        "contains_nan": False,
        "lower_bound": _partition_bound(min(present), partition_type) if present else None,
        "upper_bound": _partition_bound(max(present), partition_type) if present else None,
    }
    return {
        "manifest_path": manifest,
        "manifest_length": length,
        "partition_spec_id": spec_id,
        "content": 0,
        "sequence_number": sequence_number,
        # no live entry older than the snapshot: PyIceberg's writer leaves it unassigned
        # and the manifest list fills in the snapshot's sequence number
        "min_sequence_number": sequence_number,
        "added_snapshot_id": snapshot_id,
        "added_files_count": added[0],
        "existing_files_count": 0,
        "deleted_files_count": deleted[0],
        "added_rows_count": added[1],
        "existing_rows_count": 0,
        "deleted_rows_count": deleted[1],
        "partitions": [summary],
        "key_metadata": None,
    }


def _write_manifest_list(
    path: str,
    records: list[dict[str, Any]],
    snapshot_id: int,
    parent_id: int | None,
    sequence_number: int,
) -> None:
    meta = {
        "snapshot-id": str(snapshot_id),
        "parent-snapshot-id": "null" if parent_id is None else str(parent_id),
        "sequence-number": str(sequence_number),
        "format-version": "2",
    }
    write_avro(path, _MANIFEST_FILE_SCHEMA, meta, records)


def _partition_bound(value: Any, kind: str) -> bytes:
    if kind == "string":
        return str(value).encode()
    return int(value).to_bytes(4 if kind == "int" else 8, "little", signed=True)


def _avro_map(values: Mapping[int, Any]) -> list[dict[str, Any]]:
    """An Iceberg map with int keys, as Avro writes it (an array of key/value records)."""
    return [{"key": k, "value": v} for k, v in values.items()]


# ---------------------------------------------------------------------- Avro
# The data file's int-keyed maps: (name, field id, key id, value id, value type, doc).
_MAP_FIELDS = (
    ("column_sizes", 108, 117, 118, "long", "Map of column id to total size on disk"),
    (
        "value_counts",
        109,
        119,
        120,
        "long",
        "Map of column id to total count, including null and NaN",
    ),
    ("null_value_counts", 110, 121, 122, "long", "Map of column id to null value count"),
    (
        "nan_value_counts",
        137,
        138,
        139,
        "long",
        "Map of column id to number of NaN values in the column",
    ),
    ("lower_bounds", 125, 126, 127, "bytes", "Map of column id to lower bound"),
    ("upper_bounds", 128, 129, 130, "bytes", "Map of column id to upper bound"),
)


def _map_of(
    name: str, field_id: int, key_id: int, value_id: int, value_type: str, doc: str
) -> dict[str, Any]:
    return {
        "name": name,
        "field-id": field_id,
        "type": [
            "null",
            {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": f"k{key_id}_v{value_id}",
                    "fields": [
                        {"name": "key", "type": "int", "field-id": key_id},
                        {"name": "value", "type": value_type, "field-id": value_id},
                    ],
                },
                "logicalType": "map",
            },
        ],
        "default": None,
        "doc": doc,
    }


def _manifest_entry_schema(partition_name: str, partition_avro: str) -> dict[str, Any]:
    """The Avro schema of a v2 manifest entry as PyIceberg 0.12 writes it."""
    return {
        "type": "record",
        "fields": [
            {"name": "status", "field-id": 0, "type": "int"},
            {"name": "snapshot_id", "field-id": 1, "type": ["null", "long"], "default": None},
            {"name": "sequence_number", "field-id": 3, "type": ["null", "long"], "default": None},
            {
                "name": "file_sequence_number",
                "field-id": 4,
                "type": ["null", "long"],
                "default": None,
            },
            {
                "name": "data_file",
                "field-id": 2,
                "type": {
                    "type": "record",
                    "fields": [
                        {
                            "name": "content",
                            "field-id": 134,
                            "type": "int",
                            "doc": "File format name: avro, orc, or parquet",
                        },
                        {
                            "name": "file_path",
                            "field-id": 100,
                            "type": "string",
                            "doc": "Location URI with FS scheme",
                        },
                        {
                            "name": "file_format",
                            "field-id": 101,
                            "type": "string",
                            "doc": "File format name: avro, orc, or parquet",
                        },
                        {
                            "name": "partition",
                            "field-id": 102,
                            "type": {
                                "type": "record",
                                "fields": [
                                    {
                                        "name": partition_name,
                                        "field-id": PARTITION_FIELD_ID,
                                        "type": ["null", partition_avro],
                                        "default": None,
                                    }
                                ],
                                "name": "r102",
                            },
                            "doc": "Partition data tuple, schema based on the partition spec",
                        },
                        {
                            "name": "record_count",
                            "field-id": 103,
                            "type": "long",
                            "doc": "Number of records in the file",
                        },
                        {
                            "name": "file_size_in_bytes",
                            "field-id": 104,
                            "type": "long",
                            "doc": "Total file size in bytes",
                        },
                        *(_map_of(*fields) for fields in _MAP_FIELDS),
                        {
                            "name": "key_metadata",
                            "field-id": 131,
                            "type": ["null", "bytes"],
                            "default": None,
                            "doc": "Encryption key metadata blob",
                        },
                        {
                            "name": "split_offsets",
                            "field-id": 132,
                            "type": ["null", {"type": "array", "element-id": 133, "items": "long"}],
                            "default": None,
                            "doc": "Splittable offsets",
                        },
                        {
                            "name": "equality_ids",
                            "field-id": 135,
                            "type": ["null", {"type": "array", "element-id": 136, "items": "long"}],
                            "default": None,
                            "doc": "Field ids used to determine row equality in equality delete "
                            "files.",
                        },
                        {
                            "name": "sort_order_id",
                            "field-id": 140,
                            "type": ["null", "int"],
                            "default": None,
                            "doc": "ID representing sort order for this file",
                        },
                    ],
                    "name": "r2",
                },
            },
        ],
        "name": "manifest_entry",
    }


_DATA_FILE_FIELDS = frozenset(
    f["name"] for f in _manifest_entry_schema("p", "string")["fields"][4]["type"]["fields"]
)

_MANIFEST_FILE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "fields": [
        {
            "name": "manifest_path",
            "field-id": 500,
            "type": "string",
            "doc": "Location URI with FS scheme",
        },
        {"name": "manifest_length", "field-id": 501, "type": "long"},
        {"name": "partition_spec_id", "field-id": 502, "type": "int"},
        {"name": "content", "field-id": 517, "type": "int"},
        {"name": "sequence_number", "field-id": 515, "type": "long"},
        {"name": "min_sequence_number", "field-id": 516, "type": "long"},
        {"name": "added_snapshot_id", "field-id": 503, "type": "long"},
        {"name": "added_files_count", "field-id": 504, "type": "int"},
        {"name": "existing_files_count", "field-id": 505, "type": "int"},
        {"name": "deleted_files_count", "field-id": 506, "type": "int"},
        {"name": "added_rows_count", "field-id": 512, "type": "long"},
        {"name": "existing_rows_count", "field-id": 513, "type": "long"},
        {"name": "deleted_rows_count", "field-id": 514, "type": "long"},
        {
            "name": "partitions",
            "field-id": 507,
            "type": [
                "null",
                {
                    "type": "array",
                    "element-id": 508,
                    "items": {
                        "type": "record",
                        "fields": [
                            {"name": "contains_null", "field-id": 509, "type": "boolean"},
                            {
                                "name": "contains_nan",
                                "field-id": 518,
                                "type": ["null", "boolean"],
                                "default": None,
                            },
                            {
                                "name": "lower_bound",
                                "field-id": 510,
                                "type": ["null", "bytes"],
                                "default": None,
                            },
                            {
                                "name": "upper_bound",
                                "field-id": 511,
                                "type": ["null", "bytes"],
                                "default": None,
                            },
                        ],
                        "name": "r508",
                    },
                },
            ],
            "default": None,
        },
        {"name": "key_metadata", "field-id": 519, "type": ["null", "bytes"], "default": None},
    ],
    "name": "manifest_file",
}


# Blocks of the files written here: one (a seed's manifests are small), as before.
_ONE_BLOCK = 1 << 62


def write_avro(
    path: str, schema: dict[str, Any], meta: Mapping[str, str], records: list[Any]
) -> int:
    """Write an Avro object container file with ``schema``, extra header ``meta`` and
    ``records`` in one deflate block (fastavro); its size in bytes. The file must not
    exist yet."""
    import fastavro  # when a commit writes, not when govlab starts (generation first)

    with open(local_path(path), "xb") as file:
        fastavro.writer(
            file, schema, records, codec="deflate", metadata=dict(meta), sync_interval=_ONE_BLOCK
        )
        return file.tell()


def read_avro(path: str) -> tuple[dict[str, bytes], Any, list[Any]]:
    """(header metadata, schema, records) of an Avro object container file (fastavro:
    records as dicts, arrays as lists); ValueError if it is not a readable one."""
    import fastavro
    from fastavro.schema import SchemaParseException

    with open(local_path(path), "rb") as file:
        try:
            reader = fastavro.reader(file)
            records = list(reader)
        except (EOFError, SchemaParseException) as error:
            raise ValueError(f"unreadable Avro file {path}: {error}") from error
    meta = {key: value.encode() for key, value in reader.metadata.items()}
    return meta, json.loads(reader.metadata["avro.schema"]), records


def _writable(data_files: list[dict[str, Any]], partition_name: str, partition_type: str) -> bool:
    """Whether data files read from a manifest can be written back as they are (the
    DELETED entries of a reseed) with this module's manifest schema."""
    from fastavro.validation import validate_many

    entry = _manifest_entry_schema(partition_name, _PARTITION_AVRO[partition_type])
    return bool(validate_many(data_files, entry["fields"][4]["type"], raise_errors=False))
