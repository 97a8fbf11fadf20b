"""Pieces every engine shares: the seed lock, the counting batch stream, the
normalisation that makes all three formats return byte-for-byte the same Arrow schema,
and table versions as cached Arrow snapshots.

The write path (seeding) imports this module and not the policy layer (pydantic, YAML,
the masks: about 0.15 s); what reads filters imports it where it is used.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import ProgressFn
from govlab.errors import BadRequest
from govlab.generators.base import DatasetSpec

if TYPE_CHECKING:
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


# ---------------------------------------------------------------------- snapshots
class Snapshot:
    """One immutable table version as a pyarrow ``FileSystemDataset``.

    Engines build it once per version (``SnapshotCache``); it is immutable, so threads
    share it. Reading it with an Arrow filter returns exactly the rows the engine's
    ``scan`` returns for that filter. Per-row-group primary-key statistics are read
    from the Parquet footers once and kept here, for the pk-ordered page below.
    """

    def __init__(self, dataset: ds.FileSystemDataset) -> None:
        self.dataset = dataset
        self._pk_bounds: dict[tuple[str, int], tuple[Any, Any] | None] = {}
        self._low_cardinality: dict[str, bool] = {}

    def row_groups(self, pk: str, expr: pc.Expression) -> list[RowGroup] | None:
        """The row groups that may hold rows matching ``expr`` (pruned by partition and
        statistics), each with its pk min/max; None when some group has no usable pk
        statistics (or has NULL keys), so the caller takes the general path."""
        groups = []
        for fragment in self.dataset.get_fragments(filter=expr):
            for part in fragment.split_by_row_group(expr, schema=self.dataset.schema):
                key = _group_id(part)
                if key not in self._pk_bounds:
                    self._pk_bounds[key] = _pk_bounds(part, pk)
                bounds = self._pk_bounds[key]
                if bounds is None:
                    return None
                groups.append(RowGroup(part, bounds[0], bounds[1]))
        return groups

    def subset(self, fragments: list[ds.Fragment]) -> ds.FileSystemDataset:
        return ds.FileSystemDataset(
            fragments, self.dataset.schema, self.dataset.format, self.dataset.filesystem
        )

    def reader(
        self, fragments: list[ds.ParquetFileFragment], dictionary: frozenset[str]
    ) -> ds.FileSystemDataset:
        """The fragments as a dataset that reads ``dictionary`` columns as dictionaries."""
        if not dictionary:
            return self.subset(fragments)
        file_format = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=set(dictionary)),
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True),
        )
        schema = self.dataset.schema
        for name in dictionary:
            i = schema.get_field_index(name)
            field = schema.field(i)
            schema = schema.set(i, field.with_type(pa.dictionary(pa.int32(), field.type)))
        remade = [
            file_format.make_fragment(
                f.path,
                filesystem=f.filesystem,
                partition_expression=f.partition_expression,
                row_groups=[f.row_groups[0].id],
            )
            for f in fragments
        ]
        return ds.FileSystemDataset(remade, schema, file_format, self.dataset.filesystem)

    def low_cardinality(self, column: str) -> bool:
        """Whether every row group stores ``column`` wholly dictionary-encoded with a
        dictionary of bounded size (read as a dictionary, a leaf or a text term is
        evaluated once per entry, and fetching rows decodes codes, not values)."""
        if column not in self._low_cardinality:
            self._low_cardinality[column] = _small_dictionaries(self.dataset, column)
        return self._low_cardinality[column]


@dataclass(frozen=True)
class RowGroup:
    fragment: ds.ParquetFileFragment  # exactly one row group
    lo: Any  # pk min
    hi: Any  # pk max


def _pk_bounds(part: ds.ParquetFileFragment, pk: str) -> tuple[Any, Any] | None:
    """(min, max) of the key in a one-row-group fragment; None unless both are known and
    the group has no NULL keys (NULLs sort last, outside any min/max bound)."""
    info = part.row_groups[0]
    bounds = (info.statistics or {}).get(pk)
    if not bounds or bounds.get("min") is None or bounds.get("max") is None:
        return None
    metadata = part.metadata
    names = metadata.schema.names
    if names.count(pk) != 1:
        return None
    stats = metadata.row_group(info.id).column(names.index(pk)).statistics
    if stats is None or not stats.has_null_count or stats.null_count != 0:
        return None
    return bounds["min"], bounds["max"]


def _small_dictionaries(dataset: ds.FileSystemDataset, column: str) -> bool:
    """Whether every row group has a dictionary page of at most
    ``_DICTIONARY_READ_MAX_BYTES`` and data pages of codes only: at most 4 bytes a value
    (a chunk that fell back to plain values would be re-encoded, slowly, on read)."""
    try:
        for fragment in dataset.get_fragments():
            metadata = fragment.metadata
            names = metadata.schema.names
            if names.count(column) != 1:
                return False
            index = names.index(column)
            for i in range(metadata.num_row_groups):
                chunk = metadata.row_group(i).column(index)
                start = chunk.dictionary_page_offset
                if not chunk.has_dictionary_page or start is None:
                    return False
                dictionary_bytes = chunk.data_page_offset - start
                if dictionary_bytes > _DICTIONARY_READ_MAX_BYTES:
                    return False
                codes_bytes = chunk.total_compressed_size - dictionary_bytes
                if codes_bytes > 4 * chunk.num_values + 4096:
                    return False
    except (OSError, ValueError, pa.ArrowException):
        return False
    return True


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


def _group_id(fragment: ds.ParquetFileFragment) -> tuple[str, int]:
    return fragment.path, fragment.row_groups[0].id


# A column is read as a dictionary when every row group stores it wholly
# dictionary-encoded with a dictionary page at most this big (``_small_dictionaries``).
_DICTIONARY_READ_MAX_BYTES = 512 * 1024


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
