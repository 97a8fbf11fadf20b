"""Plain hive-partitioned Parquet, versioned by directory with an atomic pointer.

Layout under ``settings.format_dir("parquet")/<dataset>``::

    CURRENT            "v3": the published version (replaced with os.replace)
    v2/                the previous version, kept for readers still scanning it
    v3/region=NE/part-0.parquet ...
    v3/_govlab.json    row count and version (ignored by dataset discovery: "_" prefix)

A seed writes into a hidden temporary directory, fsyncs it, renames it to ``v<N>``
and only then swaps ``CURRENT``; any failure before the swap removes the new
directory, so readers only ever see complete versions. Versions older than the
previous one are deleted after a successful swap.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from govlab.engines.arrow_dataset import ArrowDatasetEngine, SnapshotCache
from govlab.engines.base import RowsWrittenFn, TableInfo
from govlab.engines.writing import (
    COMPRESSION,
    DATA_PAGE_BYTES,
    DICTIONARY_LIMIT_BYTES,
    ROW_GROUP_ROWS,
    CountingBatches,
    dictionary_columns,
    seed_lock,
)
from govlab.errors import BadRequest, TableNotFound
from govlab.generators.base import DatasetSpec

if TYPE_CHECKING:
    import pyarrow.dataset as ds

    from govlab.engines.snapshot import Snapshot

POINTER = "CURRENT"
MANIFEST = "_govlab.json"
TMP_PREFIX = ".tmp-"
ROWS_PER_FILE = 16 * ROW_GROUP_ROWS
_VERSION_DIR = re.compile(r"^v(\d+)$")
_SNAPSHOTS = SnapshotCache()


class ParquetEngine(ArrowDatasetEngine):
    name = "parquet"

    # ------------------------------------------------------------------ locations

    def _current(self, dataset: str) -> int | None:
        try:
            text = (self.path(dataset) / POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        match = _VERSION_DIR.match(text)
        if not match:
            raise RuntimeError(f"corrupt {POINTER} pointer for parquet table {dataset!r}")
        return int(match.group(1))

    def exists(self, dataset: str) -> bool:
        return self._current(dataset) is not None

    def version(self, dataset: str) -> int:
        current = self._current(dataset)
        if current is None:
            raise TableNotFound(f"parquet table {dataset!r} has not been seeded")
        return current

    def version_witnesses(self, dataset: str) -> tuple[Path, ...]:
        return (self.path(dataset) / POINTER,)  # replaced atomically by each seed

    def versions(self, dataset: str) -> list[int]:
        """Complete versions still on disk (the current one and at most one before it)."""
        table_dir = self.path(dataset)
        if not table_dir.is_dir():
            return []
        found = (_VERSION_DIR.match(p.name) for p in table_dir.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def _version_dir(self, dataset: str, version: int | None) -> Path:
        current = self.version(dataset)
        chosen = current if version is None else version
        path = self.path(dataset) / f"v{chosen}"
        if chosen > current or not path.is_dir():
            raise BadRequest(f"parquet table {dataset!r} has no version {version}")
        return path

    # ------------------------------------------------------------------ write
    def write(
        self,
        spec: DatasetSpec,
        batches: Iterable[pa.RecordBatch],
        progress: RowsWrittenFn | None = None,
    ) -> TableInfo:
        table_dir = self.path(spec.name)
        stream = CountingBatches(spec.schema, batches, progress)
        with seed_lock(self.settings, self.name, spec.name):
            table_dir.mkdir(parents=True, exist_ok=True)
            current = self._current(spec.name)
            _remove_leftovers(table_dir, current)
            new = max([current or 0, *self.versions(spec.name)]) + 1
            tmp = table_dir / f"{TMP_PREFIX}v{new}-{uuid.uuid4().hex}"
            final = table_dir / f"v{new}"
            try:
                import pyarrow.dataset as ds  # Arrow's partitioned writer (imports pandas)

                tmp.mkdir()
                encoded = dictionary_columns(stream.first())
                ds.write_dataset(
                    stream.reader(),
                    tmp,
                    format="parquet",
                    partitioning=_partitioning(spec),
                    basename_template="part-{i}.parquet",
                    preserve_order=True,  # files stay sorted by primary key
                    min_rows_per_group=ROW_GROUP_ROWS,
                    max_rows_per_group=ROW_GROUP_ROWS,
                    max_rows_per_file=ROWS_PER_FILE,
                    file_options=ds.ParquetFileFormat().make_write_options(
                        data_page_size=DATA_PAGE_BYTES,
                        compression=COMPRESSION,
                        use_dictionary=[c for c in encoded if c != spec.partition_by],
                        dictionary_pagesize_limit=DICTIONARY_LIMIT_BYTES,
                    ),
                    existing_data_behavior="overwrite_or_ignore",
                )
                manifest = {"version": new, "rows": stream.rows, "partition_by": spec.partition_by}
                (tmp / MANIFEST).write_text(json.dumps(manifest))
                _fsync_tree(tmp)
                os.rename(tmp, final)
                _fsync_dir(table_dir)
                _write_atomically(table_dir / POINTER, f"v{new}\n")
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                if self._current(spec.name) != new:
                    shutil.rmtree(final, ignore_errors=True)
                raise
            for old in self.versions(spec.name):
                if old < new - 1:
                    shutil.rmtree(table_dir / f"v{old}", ignore_errors=True)
            return self.info(spec.name)

    # ------------------------------------------------------------------ metadata
    def info(self, dataset: str) -> TableInfo:
        version_dir = self._version_dir(dataset, None)
        manifest = json.loads((version_dir / MANIFEST).read_text())
        files = sorted(p for p in version_dir.rglob("*.parquet"))
        return TableInfo(
            format=self.name,
            dataset=dataset,
            version=manifest["version"],
            rows=manifest["rows"],
            location=str(self.path(dataset)),
            details={
                "path": str(version_dir),
                "partition_by": manifest["partition_by"],
                "files": len(files),
                "partitions": sorted({p.parent.name for p in files}),
                "versions_on_disk": self.versions(dataset),
            },
        )

    # ------------------------------------------------------------------ read
    def _dataset(self, spec: DatasetSpec, version: int | None) -> ds.Dataset:
        return self.snapshot(spec, version).dataset

    def snapshot(self, spec: DatasetSpec, version: int | None = None) -> Snapshot:
        """The version as a dataset, discovered once per published version directory.

        A published ``v<N>`` directory never changes; the key also holds its inode and
        change time, so a directory wiped and re-seeded under the same name is new.
        """
        import pyarrow.dataset as ds

        version_dir = self._version_dir(spec.name, version)
        st = version_dir.stat()
        key = (str(version_dir), st.st_ino, st.st_ctime_ns, st.st_mtime_ns)
        key += (spec.schema, spec.partition_by)
        return _SNAPSHOTS.get(
            key,
            lambda: ds.dataset(
                version_dir,
                format="parquet",
                partitioning=_partitioning(spec),
                schema=spec.schema,
            ),
        )


def _partitioning(spec: DatasetSpec) -> ds.Partitioning:
    import pyarrow.dataset as ds

    column = spec.partition_by
    return ds.partitioning(pa.schema([(column, spec.column_type(column))]), flavor="hive")


def _remove_leftovers(table_dir: Path, current: int | None) -> None:
    """Delete what a killed seed left: temporaries, and a version directory newer than
    CURRENT (renamed but never published). Only called under the seed lock."""
    for path in table_dir.iterdir():
        match = _VERSION_DIR.match(path.name)
        unpublished = match is not None and (current is None or int(match.group(1)) > current)
        if path.name.startswith(TMP_PREFIX) or unpublished:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex}")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
