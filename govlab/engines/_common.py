"""Pieces every engine shares: the seed lock, the counting batch stream, and the
normalisation that makes all three formats return byte-for-byte the same Arrow schema.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from filelock import FileLock

from govlab.config import Settings
from govlab.engines import _text
from govlab.engines.base import ProgressFn
from govlab.errors import BadRequest
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import AlwaysFalse, AlwaysTrue, Expr, columns_of
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
      ``count_limit`` matches are counted, and the total is then a lower bound. That is
      what keeps a first page's cost flat as the table grows (a search engine's "10,000+").
    * Keys: row groups are read in pk order (by min, or max when descending), a wave
      of overlapping groups at a time, and reading stops once ``offset + limit`` keys
      are held, every unread group starts beyond the last of them, and the count needs
      no more. The writers keep rows in pk order within each file, so the first pages
      read one group per partition at any size (with unordered files this stays exact;
      it just stops later). Matches are counted, and only the keys that can still be
      on the page are kept (``_KeyPass``).
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
    key_pass = _KeyPass(snapshot, spec, row_filter, descending, top)
    if columns_of(row_filter) <= {spec.partition_by}:
        total, exact = snapshot.dataset.count_rows(filter=expr), True
        if offset >= total:
            return PkPage(spec.schema.empty_table(), total, exact)
        _first_keys(key_pass, groups, 0)
    else:
        count_to = None if count_limit is None else max(count_limit, top)
        exact = _first_keys(key_pass, groups, count_to)
        total = key_pass.count
        if offset >= total:  # only when every group was read: ``count_to`` >= ``top``
            return PkPage(spec.schema.empty_table(), total, exact)
    keys, where = key_pass.page(offset, limit)
    rows = _page_rows(snapshot, groups, spec, expr, keys, where)
    return PkPage(rows, total, exact)


def _group_id(fragment: ds.ParquetFileFragment) -> tuple[str, int]:
    return fragment.path, fragment.row_groups[0].id


# ---------------------------------------------------------------------- key pass
# A low-cardinality column's dictionary page is at most this big (read as a dictionary,
# a text term is matched once per entry).
_DICTIONARY_READ_MAX_BYTES = 16 * 1024


@dataclass(frozen=True)
class KeyPlan:
    """How the key pass reads a filter: ``filter`` evaluated by ``_text.true_mask`` on
    batches of ``columns`` (``dictionary`` ones read as dictionaries), or, when that
    does not cover the filter, ``scan_filter`` evaluated by the scanner."""

    filter: Expr | None
    scan_filter: pc.Expression | None
    columns: tuple[str, ...]  # the key first
    dictionary: frozenset[str]


def key_plan(snapshot: Snapshot, spec: DatasetSpec, row_filter: Expr) -> KeyPlan:
    """The plan for ``row_filter``: evaluated by ``_text`` where it covers every node
    and column type; otherwise by Arrow's scanner (same answers, slower)."""
    pk = spec.primary_key
    schema = snapshot.dataset.schema
    referenced = columns_of(row_filter)
    whole = KeyPlan(None, to_arrow(row_filter), (pk,), frozenset())
    if not _text.supported(row_filter):
        return whole
    for name in referenced:
        if name not in schema.names or schema.field(name).type != spec.column_type(name):
            return whole
    if any(not pa.types.is_string(schema.field(c).type) for c in _text.text_columns(row_filter)):
        return whole
    dictionary = frozenset(
        name
        for name in referenced - {pk, spec.partition_by}
        if pa.types.is_string(schema.field(name).type) and snapshot.low_cardinality(name)
    )
    columns = (pk, *(n for n in schema.names if n in referenced and n != pk))
    return KeyPlan(row_filter, None, columns, dictionary)


class _KeyPass:
    """Reads the matching keys of row groups without materialising rows: counts the
    matches, and keeps of each batch only its ``top`` first keys in page order (no
    later key can be among the page's), tagged with the row group they came from."""

    def __init__(
        self,
        snapshot: Snapshot,
        spec: DatasetSpec,
        row_filter: Expr,
        descending: bool,
        top: int,
    ) -> None:
        self.snapshot = snapshot
        self.plan = key_plan(snapshot, spec, row_filter)
        self.descending = descending
        self.top = top
        self.count = 0
        self._keys: list[pa.Array] = []
        self._where: list[pa.Array] = []
        self._pk_type = snapshot.dataset.schema.field(spec.primary_key).type
        self._bound: dict[tuple[tuple[str, Any], ...], Expr] = {}

    def read(self, groups: list[RowGroup], first: int) -> None:
        """Add the matches of ``groups`` (``first`` is the index of ``groups[0]``)."""
        plan = self.plan
        index = {_group_id(g.fragment): first + i for i, g in enumerate(groups)}
        filters = {_group_id(g.fragment): self._group_filter(g) for g in groups}
        live = [g for g in groups if not isinstance(filters[_group_id(g.fragment)], AlwaysFalse)]
        if not live:
            return
        columns = self._columns(filters.values())
        dataset = self.snapshot.reader([g.fragment for g in live], plan.dictionary)
        scanner = dataset.scanner(columns=columns, filter=plan.scan_filter)
        pool = _fetch_pool()
        pending: deque[tuple[int, Future[pa.Array]]] = deque()
        # batches are matched on the pool (Arrow compute releases the GIL), a few at a time
        for tagged in scanner.scan_batches():
            batch = tagged.record_batch
            if batch.num_rows == 0:
                continue
            key = _group_id(tagged.fragment)
            job = pool.submit(self._matching_keys, batch, filters[key])
            pending.append((index[key], job))
            if len(pending) > 2 * _pool_workers:
                self._add(*pending.popleft())
        while pending:
            self._add(*pending.popleft())

    def _group_filter(self, group: RowGroup) -> Expr | None:
        """The plan's filter with the group's partition values bound in (a filter on
        the partition column alone becomes TRUE for every group left to read)."""
        if self.plan.filter is None:
            return None
        fragment = group.fragment
        constants = ds.get_partition_keys(fragment.partition_expression)
        if not constants:
            return self.plan.filter
        key = tuple(sorted(constants.items(), key=lambda item: item[0]))
        cached = self._bound.get(key)
        if cached is None:
            schema = self.snapshot.dataset.schema
            cached = _text.bind_constants(self.plan.filter, constants, schema)
            self._bound[key] = cached
        return cached

    def _columns(self, filters: Iterable[Expr | None]) -> list[str]:
        """The key, then every column a group's filter still needs, in schema order."""
        if self.plan.filter is None:
            return list(self.plan.columns)
        needed = set().union(*(columns_of(f) for f in filters if f is not None))
        pk = self.plan.columns[0]
        return [pk, *(c for c in self.plan.columns[1:] if c in needed)]

    def _matching_keys(self, batch: pa.RecordBatch, row_filter: Expr | None) -> pa.Array:
        keys = batch.column(0)
        if row_filter is None or isinstance(row_filter, AlwaysTrue):
            return keys
        mask = _text.true_mask(row_filter, batch, None, self.plan.dictionary)
        return keys.filter(pa.array(mask))

    def _add(self, group: int, future: Future[pa.Array]) -> None:
        keys = future.result()
        if len(keys) == 0:
            return
        self.count += len(keys)
        if len(keys) > self.top:
            keys = keys.take(pc.select_k_unstable(keys, k=self.top, sort_keys=[("", self._order)]))
        self._keys.append(keys)
        self._where.append(pa.array(np.full(len(keys), group, dtype=np.int32)))

    @property
    def _order(self) -> str:
        return "descending" if self.descending else "ascending"

    def kth(self) -> Any:
        """The ``top``-th key in page order among the matches read so far."""
        return _kth(self._keys, self.top, self.descending)

    def page(self, offset: int, limit: int) -> tuple[pa.Array, pa.ChunkedArray]:
        """The page's keys in page order, and the index of the row group of each."""
        keys = pa.chunked_array(self._keys, type=self._pk_type)
        table = pa.table({"k": keys, "g": pa.chunked_array(self._where, type=pa.int32())})
        if self.top < table.num_rows:
            # the top keys are those up to the top-th one (select_k on the key array alone
            # is ~10x faster than on the table)
            kth = _kth(keys, self.top, self.descending)
            keep = pc.greater_equal(keys, kth) if self.descending else pc.less_equal(keys, kth)
            table = table.filter(keep)
        table = table.sort_by([("k", self._order)]).slice(offset, limit)
        return table.column("k").combine_chunks(), table.column("g")


def _first_keys(key_pass: _KeyPass, groups: list[RowGroup], count_to: int | None) -> bool:
    """Read ``groups`` (sorted in page order) a wave at a time into ``key_pass``: at
    least until the ``top`` first matches are settled, and ``count_to`` matches are
    counted (every group when ``count_to`` is None). Says whether every group was read
    (the count is then the exact total)."""
    top, descending = key_pass.top, key_pass.descending
    i = 0
    wave_size = 1
    while i < len(groups):
        j = _wave_end(groups, i, descending, wave_size if count_to is not None else len(groups))
        key_pass.read(groups[i:j], i)
        wave_size = 2 * (j - i)  # still short of the count: read more at a time
        i = j
        if i < len(groups) and count_to is not None and key_pass.count >= max(top, count_to):
            kth = key_pass.kth()
            if (groups[i].hi < kth) if descending else (groups[i].lo > kth):
                break
    return i >= len(groups)


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
        (groups[g], keyed.filter(pc.equal(keyed["g"], g))["k"].combine_chunks())
        for g in sorted(set(page_groups.to_pylist()))
    ]
    if len(jobs) == 1:  # one group: its columns are decoded side by side
        parts = [_group_rows(snapshot, *jobs[0], pk, threads=True)]
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
    snapshot: Snapshot, group: RowGroup, keys: pa.Array, pk: str, threads: bool = False
) -> pa.Table:
    """The rows of one row group whose key is in ``keys``, in the dataset's schema.

    Decoded from the start of the group, stopping once every key was seen: rows are
    pk-ordered in the files, so an early page decodes the start of its groups only.
    The first batch is sized to reach the last key (``_prefix_rows``), so a page whose
    keys are spread decodes in one call rather than many small ones. Anything this
    cannot mirror exactly (a column neither in the file nor a partition key) goes
    through the dataset scanner instead.
    """
    part = group.fragment
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
            batch_size=_prefix_rows(
                group, keys, metadata.row_group(part.row_groups[0].id).num_rows
            ),
            row_groups=[part.row_groups[0].id],
            columns=columns,
            use_threads=threads,
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


def _prefix_rows(group: RowGroup, keys: pa.Array, num_rows: int) -> int:
    """How many leading rows of ``group`` likely hold every key: the largest key placed
    between the group's min and max key (keys are spread evenly over the rows of the
    pk-ordered files), plus a margin. An underestimate only costs another batch."""
    last = pc.max(keys).as_py()
    if not all(isinstance(v, int) for v in (last, group.lo, group.hi)) or group.hi <= group.lo:
        return max(num_rows, 1)
    fraction = min(1.0, max(0.0, (last - group.lo) / (group.hi - group.lo)))
    margin = num_rows // 50 + _FETCH_BATCH_ROWS
    return max(1, min(num_rows, int(fraction * num_rows) + margin))


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
