"""Pieces every engine shares: the seed lock, the counting batch stream, the
normalisation that makes all three formats return byte-for-byte the same Arrow schema,
and table versions as cached Arrow snapshots.

The write path (seeding) imports this module and neither the policy layer (pydantic,
YAML, the masks: about 0.15 s of a short seed's imports) nor ``pyarrow.dataset``. What
reads tables imports them where it is used (``engines._snapshot``, ``engines._page``).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import ProgressFn
from govlab.errors import BadRequest
from govlab.generators.base import DatasetSpec

if TYPE_CHECKING:
    import pyarrow.dataset as ds

    from govlab.engines._snapshot import Snapshot
    from govlab.policy.ast import Expr

# Row groups of this many rows: large enough for efficient scans, small enough that
# min/max statistics prune well on pk and date ranges.
ROW_GROUP_ROWS = 65_536
# Small data and dictionary pages: a page's rows are fetched by decoding only the first
# pages of a row group (not 1 MiB pages and dictionaries built over unique values), and
# columns of (nearly) unique values such as keys or SSNs fall back to plain encoding
# early instead of being dictionary-encoded and then re-encoded. Writes get faster too.
DATA_PAGE_BYTES = 64 * 1024
DICTIONARY_PAGE_BYTES = 64 * 1024
# Which columns are dictionary-encoded is decided per seed from its first batch
# (``dictionary_columns``): few distinct values (names, conditions, clinician ids) are,
# whole in every row group (up to this dictionary size); (nearly) unique ones (keys,
# SSNs, addresses) are written plain from the start, never dictionary-encoded and then
# re-encoded. A dictionary-encoded column is read as a dictionary by the key pass, and
# a filter or text term on it is evaluated once per entry.
DICTIONARY_LIMIT_BYTES = 1024 * 1024
# Data pages are not compressed (delta-rs' default, now every format's): decoding a row
# group takes a third of the time it takes with snappy (3.4 vs 9.2 ms for 65k rows), a
# seed encodes twice as fast, and the files are about 1.8x bigger. Columns that repeat
# are dictionary-encoded anyway, so what stays big is the unique text.
COMPRESSION = "none"
_DICTIONARY_MAX_SHARE = 0.25  # distinct values per row of the first batch, at most
_DICTIONARY_MAX_BYTES = 256 * 1024  # estimated size of one row group's dictionary

_DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$")


def check_dataset_name(name: str) -> str:
    """Dataset names become directory and table names: refuse anything path-like."""
    if not _DATASET_NAME.match(name):
        raise BadRequest(f"invalid dataset name {name!r}")
    return name


@contextmanager
def seed_lock(settings: Settings, fmt: str, dataset: str) -> Iterator[None]:
    """Serialise seeds of one table across threads and processes.

    Readers never take this lock: every format publishes a new version atomically.
    """
    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.lock_dir / f"{fmt}-{check_dataset_name(dataset)}.lock")):
        yield


class CountingBatches:
    """Wrap the row stream of a seed: conform each batch to the spec schema, count rows,
    report progress, and remember an exception raised by the source.

    Writers that consume the stream inside native code (delta-rs) see a source
    exception wrapped in their own error type; ``error`` lets the engine re-raise the
    original one.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        progress: ProgressFn | None = None,
    ) -> None:
        self.schema = schema
        self._batches = iter(batches)
        self._head: list[pa.RecordBatch] = []
        self._progress = progress
        self.rows = 0
        self.error: BaseException | None = None

    def first(self) -> pa.RecordBatch | None:
        """The first batch, read ahead (iteration still starts with it): writers choose
        their column encodings from it."""
        if not self._head:
            try:
                self._head.append(next(self._batches))
            except StopIteration:
                return None
            except BaseException as exc:
                self.error = exc
                raise
        return self._head[0]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in itertools.chain(self._head, self._batches):
                if batch.schema != self.schema:
                    batch = conform_batch(batch, self.schema)
                if batch.num_rows == 0:
                    continue
                yield batch
                self.rows += batch.num_rows
                if self._progress is not None:
                    self._progress(self.rows)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, iter(self))

    def chunks(self, rows: int) -> Iterator[pa.Table]:
        """The stream regrouped into tables of about ``rows`` rows (bounded memory)."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in self:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= rows:
                yield pa.Table.from_batches(pending, schema=self.schema)
                pending, pending_rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=self.schema)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the schema's column order and types (extra columns are an error)."""
    if set(batch.schema.names) != set(schema.names):
        raise ValueError(
            f"batch columns {sorted(batch.schema.names)} do not match the dataset schema "
            f"{sorted(schema.names)}"
        )
    arrays = [batch.column(f.name).cast(f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def dictionary_columns(batch: pa.RecordBatch | None) -> list[str]:
    """The columns to dictionary-encode, judged on a seed's first batch (a generator
    chunk is as big as a row group): at most ``_DICTIONARY_MAX_SHARE`` distinct values
    per row, holding at most ``_DICTIONARY_MAX_BYTES``. A misjudged column costs speed,
    never answers: a dictionary that outgrows its page falls back to plain values, and
    such a column is read plain (``Snapshot.low_cardinality``)."""
    if batch is None or batch.num_rows == 0:
        return []
    chosen = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        distinct = pc.unique(column)
        if len(distinct) > _DICTIONARY_MAX_SHARE * batch.num_rows:
            continue
        if distinct.nbytes <= _DICTIONARY_MAX_BYTES:
            chosen.append(name)
    return chosen


def output_schema(spec: DatasetSpec, columns: list[str]) -> pa.Schema:
    """The schema a scan returns: the requested columns, in order, typed as in the spec."""
    unknown = [c for c in columns if c not in spec.schema.names]
    if unknown:
        raise BadRequest(f"unknown column(s) for {spec.name}: {', '.join(unknown)}")
    if len(set(columns)) != len(columns):
        raise BadRequest("duplicate column in projection")
    return pa.schema([spec.schema.field(c) for c in columns])


def needed_columns(spec: DatasetSpec, columns: list[str], row_filter: Expr) -> list[str]:
    """Columns a scan must read to return ``columns`` and evaluate ``row_filter``, in
    schema order (never empty, so row counts survive a zero-column projection)."""
    from govlab.policy.ast import columns_of  # the read path only (see the module docstring)

    wanted = set(columns) | columns_of(row_filter)
    needed = [name for name in spec.schema.names if name in wanted]
    return needed or [spec.primary_key]


def normalise(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` projected and cast to ``schema`` (names, order, types, nullability).

    Formats hand back slightly different physical types (large_string, other timestamp
    units, partition columns as dictionaries); callers always get the spec's.
    """
    if table.schema == schema:
        return table
    arrays = []
    for f in schema:
        column = table.column(f.name)
        if column.type != f.type:
            column = column.cast(f.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema) if arrays else table.select([])


class SnapshotCache:
    """A small LRU of Snapshots keyed by something that changes with every version."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Snapshot | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, build: Callable[[], ds.FileSystemDataset | None]
    ) -> Snapshot | None:
        """The snapshot for ``key``, built on first use (None is remembered too)."""
        from govlab.engines._snapshot import Snapshot  # the read path only

        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        dataset = build()
        snapshot = None if dataset is None else Snapshot(dataset)
        with self._lock:
            self._items[key] = snapshot
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return snapshot

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ArrowDatasetEngine:
    """What Delta and Parquet share: a table directory per dataset under the format's
    root, and scans of a ``pyarrow.dataset`` with the whole bound filter pushed down.
    Subclasses set ``name`` and provide ``_dataset(spec, version)``."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.format_dir(self.name)

    def path(self, dataset: str) -> Path:
        return self.root / check_dataset_name(dataset)

    def _dataset(self, spec: DatasetSpec, version: int | None) -> ds.Dataset:
        raise NotImplementedError

    def scan(
        self,
        spec: DatasetSpec,
        columns: list[str],
        row_filter: Expr,
        version: int | None = None,
    ) -> pa.Table:
        from govlab.policy.compile import to_arrow

        schema = output_schema(spec, columns)  # unknown columns: BadRequest, before I/O
        table = self._dataset(spec, version).to_table(
            columns=list(columns), filter=to_arrow(row_filter)
        )
        return normalise(table, schema)

    def count(self, spec: DatasetSpec, row_filter: Expr, version: int | None = None) -> int:
        from govlab.policy.compile import to_arrow

        return self._dataset(spec, version).count_rows(filter=to_arrow(row_filter))
