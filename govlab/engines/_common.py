"""Pieces every engine shares: the seed lock, the counting batch stream, and the
normalisation that makes all three formats return byte-for-byte the same Arrow schema.
"""

from __future__ import annotations

import operator
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import ProgressFn
from govlab.errors import BadRequest
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    NotIn,
    NotNull,
    Or,
    columns_of,
)
from govlab.policy.compile import to_arrow

# Row groups of this many rows: large enough for efficient scans, small enough that
# min/max statistics prune well on pk and date ranges.
ROW_GROUP_ROWS = 65_536
# Small data and dictionary pages: a page's rows are fetched by decoding only the first
# pages of a row group (not 1 MiB pages and dictionaries built over unique values), and
# columns of (nearly) unique values such as keys or SSNs fall back to plain encoding
# early instead of being dictionary-encoded and then re-encoded. Writes get faster too.
DATA_PAGE_BYTES = 64 * 1024
DICTIONARY_PAGE_BYTES = 64 * 1024

# Rows decoded at a time when fetching a page's rows from a row group.
_FETCH_BATCH_ROWS = 1024

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
        self._batches = batches
        self._progress = progress
        self.rows = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
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
        small dictionary (read as a dictionary, a text match runs once per entry)."""
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
                if chunk.data_page_offset - start > _DICTIONARY_READ_MAX_BYTES:
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


# ---------------------------------------------------------------------- pk-ordered page
@dataclass(frozen=True)
class PkPage:
    rows: pa.Table
    total: int
    exact: bool  # False: ``total`` is a lower bound (counting stopped at the count limit)


def pk_page(
    snapshot: Snapshot,
    spec: DatasetSpec,
    row_filter: Expr,
    descending: bool,
    offset: int,
    limit: int,
    count_limit: int | None = None,
) -> PkPage | None:
    """One page of whole rows ordered by the primary key, and the number of matching
    rows: exactly what a full key scan + select_k + a second scan would give, reading
    much less. None when the snapshot lacks what this needs (pk statistics).

    * Count: from Parquet metadata when the filter only touches partition columns
      (exact). Otherwise by counting matches while reading keys: with ``count_limit``
      None every row group is read (exact); with a limit, reading may stop once at least
      ``count_limit`` matches are held, and the total is then a lower bound. That is what
      keeps a first page's cost flat as the table grows (a search engine's "10,000+").
    * Keys: row groups are read in pk order (by min, or max when descending), a wave
      of overlapping groups at a time, and reading stops once ``offset + limit`` keys
      are held, every unread group starts beyond the last of them, and the count needs
      no more. The writers keep rows in pk order within each file, so the first pages
      read one group per partition at any size (with unordered files this stays exact;
      it just stops later).
    * Rows: only the row groups that hold the page's keys are read, with the filter
      re-applied together with ``pk in keys``.
    """
    pk = spec.primary_key
    expr = to_arrow(row_filter)
    groups = snapshot.row_groups(pk, expr)
    if groups is None:
        return None
    top = offset + limit
    # in page order: by min key (max when descending); ``where`` indexes this order
    groups.sort(key=(lambda g: g.hi) if descending else (lambda g: g.lo), reverse=descending)
    if columns_of(row_filter) <= {spec.partition_by}:
        total, exact = snapshot.dataset.count_rows(filter=expr), True
        if offset >= total:
            return PkPage(spec.schema.empty_table(), total, exact)
        keys, where, _ = _first_keys(snapshot, groups, spec, row_filter, descending, top, 0)
    else:
        count_to = None if count_limit is None else max(count_limit, top)
        keys, where, exact = _first_keys(
            snapshot, groups, spec, row_filter, descending, top, count_to
        )
        total = len(keys)
        if offset >= total:  # only when every group was read: ``count_to`` >= ``top``
            return PkPage(spec.schema.empty_table(), total, exact)
    table = pa.table({"k": keys, "g": where})
    order = "descending" if descending else "ascending"
    if top < table.num_rows:
        # the top keys are those up to the top-th one (select_k on the key array alone
        # is ~10x faster than on the table)
        kth = _kth(keys, top, descending)
        keep = pc.greater_equal(keys, kth) if descending else pc.less_equal(keys, kth)
        table = table.filter(keep)
    table = table.sort_by([("k", order)]).slice(offset, limit)
    page_keys = table.column("k").combine_chunks()
    rows = _page_rows(snapshot, groups, spec, expr, page_keys, table.column("g"))
    return PkPage(rows, total, exact)


def _tagged_keys(
    snapshot: Snapshot, groups: list[RowGroup], first: int, pk: str, expr: pc.Expression
) -> tuple[list[pa.Array], list[pa.Array]]:
    """Matching keys of ``groups`` and, for each, the index (offset by ``first``) of the
    row group it came from."""
    index = {_group_id(g.fragment): first + i for i, g in enumerate(groups)}
    scanner = snapshot.subset([g.fragment for g in groups]).scanner(columns=[pk], filter=expr)
    keys, where = [], []
    for tagged in scanner.scan_batches():
        batch = tagged.record_batch
        if batch.num_rows == 0:
            continue
        fragment = tagged.fragment
        group = index[_group_id(fragment)]
        keys.append(batch.column(0))
        where.append(pa.array(np.full(batch.num_rows, group, dtype=np.int32)))
    return keys, where


def _group_id(fragment: ds.ParquetFileFragment) -> tuple[str, int]:
    return fragment.path, fragment.row_groups[0].id


def _wave_reader(
    snapshot: Snapshot, spec: DatasetSpec, row_filter: Expr
) -> Callable[[list[RowGroup], int], tuple[list[pa.Array], list[pa.Array]]]:
    """How to read the matching keys of a wave of row groups: Arrow's own filter, or
    the text-match plan below when the filter has text terms."""
    pk = spec.primary_key
    expr = to_arrow(row_filter)
    text = _text_plan(snapshot, spec, row_filter)
    if text is None:
        return lambda wave, first: _tagged_keys(snapshot, wave, first, pk, expr)
    columns, dictionary = text
    return lambda wave, first: _tagged_text_keys(
        snapshot, wave, first, pk, row_filter, columns, dictionary
    )


# ---------------------------------------------------------------------- text match
# Arrow evaluates ``match_substring(ignore_case=True)`` with RE2 on every value. For a
# filter with text terms the key scan evaluates the same function on fewer values:
# once per dictionary entry for columns stored fully dictionary-encoded (read as
# dictionaries), and as an exact ASCII lower-case match where term and values are ASCII
# (RE2 case folding only differs from ASCII folding on non-ASCII characters). Every
# other leaf, and the AND/OR around them, is still Arrow's own expression evaluation.
_DICTIONARY_READ_MAX_BYTES = 16 * 1024  # dictionary page size of a low-cardinality column


def _contains_nodes(expr: Expr) -> list[Contains] | None:
    """The text leaves of a filter; None if it has a node the rewrite does not handle."""
    match expr:
        case Contains():
            return [expr]
        case And(children) | Or(children):
            found: list[Contains] = []
            for child in children:
                inner = _contains_nodes(child)
                if inner is None:
                    return None
                found += inner
            return found
        case AlwaysTrue() | AlwaysFalse() | Cmp() | In() | NotIn() | IsNull() | NotNull():
            return []
    return None


def _text_plan(
    snapshot: Snapshot, spec: DatasetSpec, row_filter: Expr
) -> tuple[list[str], frozenset[str]] | None:
    """(columns to read, the ones to read as dictionaries), or None to let Arrow
    evaluate the whole filter (no text leaf, or a shape or type this does not cover)."""
    leaves = _contains_nodes(row_filter)
    if not leaves:
        return None
    schema = snapshot.dataset.schema
    referenced = columns_of(row_filter)
    for name in referenced:
        if name not in schema.names or schema.field(name).type != spec.column_type(name):
            return None
    text_columns = {leaf.column for leaf in leaves}
    if any(not pa.types.is_string(schema.field(c).type) for c in text_columns):
        return None
    other = columns_of(_without_text(row_filter))
    candidates = sorted(text_columns - other - {spec.primary_key, spec.partition_by})
    dictionary = frozenset(c for c in candidates if snapshot.low_cardinality(c))
    columns = [spec.primary_key] + [n for n in schema.names if n in referenced]
    return list(dict.fromkeys(columns)), dictionary


def _without_text(expr: Expr) -> Expr:
    match expr:
        case Contains():
            return AlwaysTrue()
        case And(children):
            return And(tuple(_without_text(c) for c in children))
        case Or(children):
            return Or(tuple(_without_text(c) for c in children))
    return expr


def _tagged_text_keys(
    snapshot: Snapshot,
    groups: list[RowGroup],
    first: int,
    pk: str,
    row_filter: Expr,
    columns: list[str],
    dictionary: frozenset[str],
) -> tuple[list[pa.Array], list[pa.Array]]:
    index = {_group_id(g.fragment): first + i for i, g in enumerate(groups)}
    dataset = snapshot.reader([g.fragment for g in groups], dictionary)
    keys: list[pa.Array] = []
    where: list[pa.Array] = []
    pool = _fetch_pool()
    pending: deque[tuple[int, Future[pa.Table]]] = deque()

    def collect(group: int, matched: pa.Table) -> None:
        if matched.num_rows:
            keys.append(matched.column(pk).combine_chunks())
            where.append(pa.array(np.full(matched.num_rows, group, dtype=np.int32)))

    # batches are matched on the pool (Arrow compute releases the GIL), a few at a time
    for tagged in dataset.scanner(columns=columns).scan_batches():
        batch = tagged.record_batch
        if batch.num_rows == 0:
            continue
        group = index[_group_id(tagged.fragment)]
        pending.append((group, pool.submit(_text_filtered, batch, row_filter)))
        if len(pending) > 2 * _pool_workers:
            done_group, future = pending.popleft()
            collect(done_group, future.result())
    while pending:
        done_group, future = pending.popleft()
        collect(done_group, future.result())
    return keys, where


def _text_filtered(batch: pa.RecordBatch, row_filter: Expr) -> pa.Table:
    """The batch's rows where ``row_filter`` is TRUE: text leaves computed here into
    boolean columns, the rest of the filter evaluated by Arrow around them."""
    table = pa.Table.from_batches([batch])
    names: dict[tuple[str, str], str] = {}
    for leaf in _contains_nodes(row_filter) or []:
        key = (leaf.column, leaf.term)
        if key not in names:
            names[key] = f"__govlab_text_{len(names)}"
            hits = _contains(batch.column(leaf.column), leaf.term)
            table = table.append_column(names[key], hits)
    return table.filter(_with_text_columns(row_filter, names))


def _with_text_columns(expr: Expr, names: dict[tuple[str, str], str]) -> pc.Expression:
    match expr:
        case Contains(column, term):
            return pc.field(names[(column, term)])
        case And(children):
            return reduce(operator.and_, (_with_text_columns(c, names) for c in children))
        case Or(children):
            return reduce(operator.or_, (_with_text_columns(c, names) for c in children))
    return to_arrow(expr)


def _contains(values: pa.Array, term: str) -> pa.Array:
    """``match_substring(values, term, ignore_case=True)``, computed faster."""
    if isinstance(values, pa.DictionaryArray):
        return pc.take(_contains(values.dictionary, term), values.indices)
    if term.isascii() and _all_ascii(values):
        return pc.match_substring(pc.ascii_lower(values), term.lower())
    return pc.match_substring(values, term, ignore_case=True)


def _all_ascii(values: pa.Array) -> bool:
    """Whether every byte of the values is ASCII (conservative: bytes behind NULL slots
    count too, and types other than ``string`` say no)."""
    if values.type != pa.string() or len(values) == 0:
        return False
    _, offsets_buffer, data_buffer = values.buffers()
    if data_buffer is None:
        return True
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=values.offset + len(values) + 1)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[values.offset] : offsets[-1]]
    return bool(data.max(initial=0) < 128)


def _first_keys(
    snapshot: Snapshot,
    groups: list[RowGroup],
    spec: DatasetSpec,
    row_filter: Expr,
    descending: bool,
    top: int,
    count_to: int | None,
) -> tuple[pa.ChunkedArray, pa.ChunkedArray, bool]:
    """Matching keys in pk order, reading ``groups`` (sorted in page order) a wave at a
    time: at least the ``top`` first, and at least ``count_to`` in all (every one when
    ``count_to`` is None). Also says whether every group was read (the keys are then
    all the matches, so their number is the exact total)."""
    read_wave = _wave_reader(snapshot, spec, row_filter)
    keys: list[pa.Array] = []
    where: list[pa.Array] = []
    held = 0
    i = 0
    wave_size = 1
    while i < len(groups):
        j = _wave_end(groups, i, descending, wave_size if count_to is not None else len(groups))
        new_keys, new_where = read_wave(groups[i:j], i)
        keys += new_keys
        where += new_where
        held += sum(len(k) for k in new_keys)
        wave_size = 2 * (j - i)  # still short of the count: read more at a time
        i = j
        if i < len(groups) and count_to is not None and held >= max(top, count_to):
            kth = _kth(keys, top, descending)
            if (groups[i].hi < kth) if descending else (groups[i].lo > kth):
                break
    pk_type = snapshot.dataset.schema.field(spec.primary_key).type
    return _chunked(keys, pk_type), _chunked(where, pa.int32()), i >= len(groups)


def _wave_end(groups: list[RowGroup], i: int, descending: bool, at_least: int) -> int:
    """End of the wave starting at ``i``: the group, every later group overlapping all
    of it (they could hold keys before its last one), and at least ``at_least`` groups."""
    j = i + 1
    if descending:
        bound = groups[i].lo
        while j < len(groups) and groups[j].hi >= bound:
            bound = max(bound, groups[j].lo)
            j += 1
    else:
        bound = groups[i].hi
        while j < len(groups) and groups[j].lo <= bound:
            bound = min(bound, groups[j].hi)
            j += 1
    return max(j, min(len(groups), i + at_least))


def _kth(keys: list[pa.Array] | pa.ChunkedArray, k: int, descending: bool) -> Any:
    """The k-th key in page order among those held."""
    held = keys if isinstance(keys, pa.ChunkedArray) else pa.chunked_array(keys)
    order = "descending" if descending else "ascending"
    best = held.take(pc.select_k_unstable(held, k=k, sort_keys=[("", order)]))
    return (pc.min(best) if descending else pc.max(best)).as_py()


def _page_rows(
    snapshot: Snapshot,
    groups: list[RowGroup],
    spec: DatasetSpec,
    expr: pc.Expression,
    page_keys: pa.Array,
    page_groups: pa.ChunkedArray,
) -> pa.Table:
    """Whole rows for the page's keys, in page order, read from their row groups only;
    the row filter is applied again to what is read (as a second scan would)."""
    if len(page_keys) == 0:
        return spec.schema.empty_table()
    pk = spec.primary_key
    keyed = pa.table({"k": page_keys, "g": page_groups.combine_chunks()})
    jobs = [
        (groups[g].fragment, keyed.filter(pc.equal(keyed["g"], g))["k"].combine_chunks())
        for g in sorted(set(page_groups.to_pylist()))
    ]
    if len(jobs) == 1:
        parts = [_group_rows(snapshot, *jobs[0], pk)]
    else:  # decoding releases the GIL: the page's row groups are read side by side
        parts = list(_fetch_pool().map(lambda job: _group_rows(snapshot, *job, pk), jobs))
    rows = pa.concat_tables(parts).filter(expr)
    rows = normalise(rows, spec.schema)
    positions = pc.index_in(page_keys, value_set=rows.column(pk))
    return rows.take(positions)


_pool: ThreadPoolExecutor | None = None
_pool_guard = threading.Lock()
_pool_workers = max(2, min(8, pa.cpu_count()))


def _fetch_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(_pool_workers, thread_name_prefix="govlab-fetch")
        return _pool


def _group_rows(
    snapshot: Snapshot, part: ds.ParquetFileFragment, keys: pa.Array, pk: str
) -> pa.Table:
    """The rows of one row group whose key is in ``keys``, in the dataset's schema.

    Decoded batch by batch, stopping once every key was seen: rows are pk-ordered in
    the files, so an early page decodes the start of its groups only. Anything this
    cannot mirror exactly (a column neither in the file nor a partition key) goes
    through the dataset scanner instead.
    """
    schema = snapshot.dataset.schema
    metadata = part.metadata
    in_file = set(metadata.schema.to_arrow_schema().names)
    constants = ds.get_partition_keys(part.partition_expression)
    columns = [name for name in schema.names if name in in_file]
    missing = [name for name in schema.names if name not in in_file]
    if pk not in in_file or any(name not in constants for name in missing):
        return snapshot.subset([part]).to_table(filter=pc.field(pk).isin(keys), use_threads=False)
    remaining = set(keys.to_pylist())
    pieces: list[pa.RecordBatch] = []
    with part.filesystem.open_input_file(part.path) as source:
        reader = pq.ParquetFile(source, metadata=metadata)
        batches = reader.iter_batches(
            batch_size=_FETCH_BATCH_ROWS,
            row_groups=[part.row_groups[0].id],
            columns=columns,
            use_threads=False,
        )
        for batch in batches:
            mask = pc.is_in(batch.column(pk), value_set=keys)
            hits = batch.filter(mask)
            if hits.num_rows:
                pieces.append(hits)
                remaining.difference_update(hits.column(pk).to_pylist())
                if not remaining:
                    break
    found = pa.Table.from_batches(pieces, schema=pieces[0].schema) if pieces else None
    arrays = []
    for field in schema:
        if found is None:
            arrays.append(pa.array([], field.type))
        elif field.name in in_file:
            column = found.column(field.name)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        else:
            arrays.append(pa.array([constants[field.name]] * found.num_rows, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _chunked(arrays: list[pa.Array], dtype: pa.DataType) -> pa.ChunkedArray:
    return pa.chunked_array(arrays, type=dtype)


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
        schema = output_schema(spec, columns)  # unknown columns: BadRequest, before I/O
        table = self._dataset(spec, version).to_table(
            columns=list(columns), filter=to_arrow(row_filter)
        )
        return normalise(table, schema)

    def count(self, spec: DatasetSpec, row_filter: Expr, version: int | None = None) -> int:
        return self._dataset(spec, version).count_rows(filter=to_arrow(row_filter))
