"""Delta Lake 4 tables through delta-rs (the ``deltalake`` package).

A seed is one ``write_deltalake(mode="overwrite")`` fed by a RecordBatchReader over
the generator, so the table is never in memory and delta-rs commits exactly once, at
the end: an interrupted seed leaves the previous version current and complete.

The protocol is reader 3 / writer 7 with table features: ``timestampNtz`` (from the
timestamp-without-time-zone columns) and ``changeDataFeed``. Deletion vectors and
column mapping stay off so every Delta reader that speaks table features can read it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake import ColumnProperties, DeltaTable, WriterProperties, write_deltalake

from govlab.engines.arrow_dataset import ArrowDatasetEngine, SnapshotCache
from govlab.engines.base import RowsWrittenFn, TableInfo
from govlab.engines.writing import (
    DATA_PAGE_BYTES,
    DICTIONARY_LIMIT_BYTES,
    ROW_GROUP_ROWS,
    CountingBatches,
    dictionary_columns,
    seed_lock,
)
from govlab.errors import BadRequest, TableNotFound
from govlab.generators.base import DatasetSpec

if TYPE_CHECKING:  # the read path: pyarrow.dataset imports pandas, seeds need neither
    import pyarrow.dataset as ds

    from govlab.engines.snapshot import Snapshot

TABLE_CONFIGURATION: dict[str, str | None] = {
    "delta.enableChangeDataFeed": "true",
}
TARGET_FILE_SIZE = 64 * 1024 * 1024  # also bounds what delta-rs buffers per partition
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_SNAPSHOTS = SnapshotCache()


class DeltaEngine(ArrowDatasetEngine):
    name = "delta"

    # ------------------------------------------------------------------ locations

    def exists(self, dataset: str) -> bool:
        return DeltaTable.is_deltatable(str(self.path(dataset)))

    def _table(self, dataset: str, version: int | None = None) -> DeltaTable:
        if not self.exists(dataset):
            raise TableNotFound(f"delta table {dataset!r} has not been seeded")
        table = DeltaTable(str(self.path(dataset)))
        if version is not None and version != table.version():
            if not 0 <= version <= table.version():
                raise BadRequest(f"delta table {dataset!r} has no version {version}")
            table.load_as_version(version)
        return table

    # ------------------------------------------------------------------ write
    def write(
        self,
        spec: DatasetSpec,
        batches: Iterable[pa.RecordBatch],
        progress: RowsWrittenFn | None = None,
    ) -> TableInfo:
        path = self.path(spec.name)
        stream = CountingBatches(spec.schema, batches, progress)
        with seed_lock(self.settings, self.name, spec.name):
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = path.exists()
            before = _data_files(path)
            encoded = set(dictionary_columns(stream.first()))
            columns = {
                name: ColumnProperties(dictionary_enabled=name in encoded)
                for name in spec.schema.names
                if name != spec.partition_by
            }
            try:
                write_deltalake(
                    str(path),
                    stream.reader(),
                    mode="overwrite",
                    schema_mode="overwrite",
                    partition_by=[spec.partition_by],
                    name=spec.name,
                    configuration=TABLE_CONFIGURATION,
                    target_file_size=TARGET_FILE_SIZE,
                    writer_properties=WriterProperties(
                        max_row_group_size=ROW_GROUP_ROWS,
                        compression="UNCOMPRESSED",  # as every format (writing.COMPRESSION)
                        data_page_size_limit=DATA_PAGE_BYTES,
                        dictionary_page_size_limit=DICTIONARY_LIMIT_BYTES,
                        column_properties=columns,
                    ),
                )
            except BaseException as exc:
                _remove_uncommitted(path, before, existed)
                if stream.error is not None and stream.error is not exc:
                    # delta-rs wraps the generator's exception in a DeltaError.
                    raise stream.error from None
                raise
            table = DeltaTable(str(path))
            return self._info(spec.name, table, rows=stream.rows)

    # ------------------------------------------------------------------ metadata
    def version(self, dataset: str) -> int:
        """The newest commit number, from a listing of ``_delta_log`` (commit files
        appear atomically); a log without commit files goes through delta-rs."""
        latest = _latest_commit(self.path(dataset))
        if latest is None:
            return self._table(dataset).version()
        return latest

    def version_witnesses(self, dataset: str) -> tuple[Path, ...]:
        return (self.path(dataset) / "_delta_log",)  # a commit adds an entry

    def info(self, dataset: str) -> TableInfo:
        return self._info(dataset, self._table(dataset))

    def _info(self, dataset: str, table: DeltaTable, rows: int | None = None) -> TableInfo:
        actions = pa.table(table.get_add_actions(flatten=True))
        if rows is None:
            rows = int(pc.sum(actions["num_records"]).as_py() or 0)
        protocol = table.protocol()
        metadata = table.metadata()
        details: dict[str, Any] = {
            "protocol": {
                "min_reader_version": protocol.min_reader_version,
                "min_writer_version": protocol.min_writer_version,
                "reader_features": sorted(protocol.reader_features or []),
                "writer_features": sorted(protocol.writer_features or []),
            },
            "configuration": dict(metadata.configuration),
            "partition_by": list(metadata.partition_columns),
            "files": actions.num_rows,
        }
        return TableInfo(
            format=self.name,
            dataset=dataset,
            version=table.version(),
            rows=rows,
            location=str(self.path(dataset)),
            details=details,
        )

    # ------------------------------------------------------------------ read
    def _dataset(self, spec: DatasetSpec, version: int | None) -> ds.Dataset:
        return self.snapshot(spec, version).dataset

    def snapshot(self, spec: DatasetSpec, version: int | None = None) -> Snapshot:
        """The version as a dataset, built once per commit (log replay is the cost).

        The key holds the commit file's identity, so a table wiped and re-seeded to the
        same version number is a new snapshot.
        """
        path = self.path(spec.name)
        current = self.version(spec.name)
        chosen = current if version is None else version
        if not 0 <= chosen <= current:
            raise BadRequest(f"delta table {spec.name!r} has no version {version}")
        try:
            st = (path / "_delta_log" / f"{chosen:020d}.json").stat()
        except FileNotFoundError:  # an old commit whose log entry was cleaned up
            from govlab.engines.snapshot import Snapshot

            return Snapshot(self._build_dataset(path, chosen))
        key = (str(path), chosen, st.st_ino, st.st_mtime_ns, st.st_size)
        return _SNAPSHOTS.get(key, lambda: self._build_dataset(path, chosen))

    @staticmethod
    def _build_dataset(path: Path, version: int) -> ds.FileSystemDataset:
        # Read the data files with Arrow's native local filesystem. The default is a
        # PyFileSystem calling back into delta-rs from Arrow's IO threads, which is
        # slower and intermittently aborted the interpreter at exit ("terminate called
        # without an active exception") after a scan.
        filesystem = pafs.SubTreeFileSystem(str(path), pafs.LocalFileSystem())
        # to_pyarrow_dataset imports pyarrow.dataset itself (the read path only)
        return DeltaTable(str(path), version=version).to_pyarrow_dataset(filesystem=filesystem)


def _latest_commit(path: Path) -> int | None:
    try:
        names = os.listdir(path / "_delta_log")
    except (FileNotFoundError, NotADirectoryError):
        return None
    versions = [int(m.group(1)) for m in map(_COMMIT_FILE.match, names) if m]
    return max(versions) if versions else None


ORPHAN_SWEEPS = 20
ORPHAN_QUIET_S = 0.1


def _data_files(path: Path) -> set[Path]:
    if not path.exists():
        return set()
    return {p for p in path.rglob("*") if p.is_file() and "_delta_log" not in p.parts}


def _remove_uncommitted(path: Path, before: set[Path], existed: bool) -> None:
    """After a failed write (no commit), delete the data files it left behind.

    Runs under the seed lock, so every file that appeared since the write began is ours.
    """
    if not existed and not DeltaTable.is_deltatable(str(path)):
        shutil.rmtree(path, ignore_errors=True)
        return
    # delta-rs may still be closing files from its writer tasks when the error reaches
    # us: sweep until a quiet interval shows no new file (bounded, failure path only).
    for _ in range(ORPHAN_SWEEPS):
        orphans = _data_files(path) - before
        for orphan in orphans:
            orphan.unlink(missing_ok=True)
        time.sleep(ORPHAN_QUIET_S)
        if not orphans and not (_data_files(path) - before):
            break
    for directory in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
        if "_delta_log" not in directory.parts and not any(directory.iterdir()):
            directory.rmdir()
