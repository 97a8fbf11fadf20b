"""Both ways a page of a governed search is read, behind one call: :func:`read_page`.

In primary-key order (the default sort) from the engine's Arrow snapshot: ``pk_page``
answers one page and the number of matches reading as little as it can:
row groups in key order, a key pass that evaluates the row filter on the few columns
it needs (``search.text_match``) and keeps only the keys that can still be on the page,
then whole rows decoded from the page's row groups only. Imported by the search, not
by the write path (seeding never pays for the policy layer's imports).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from govlab.engines.arrow_dataset import normalise
from govlab.engines.snapshot import RowGroup, Snapshot
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import AlwaysFalse, AlwaysTrue, Expr, and_, columns_of, in_
from govlab.policy.compile import to_arrow
from govlab.search import text_match as _text

if TYPE_CHECKING:
    from govlab.engines.base import Engine

# Fetching a page's rows: rows decoded past the estimated last key, and the read
# buffer of each column.
_FETCH_MARGIN_ROWS = 256
_FETCH_BUFFER_BYTES = 64 * 1024
_FETCH_CODED_ROWS = 16_384  # from this many rows on, coded columns are read as codes
# Key passes over this few row groups match their batches on the calling thread.
_INLINE_GROUPS = 2


# ---------------------------------------------------------------------- one call
@dataclass(frozen=True)
class PkPage:
    """A page's raw rows (masks come later) and the number of matches."""

    rows: pa.Table
    total: int
    exact: bool  # False: ``total`` is a lower bound (counting stopped at the count limit)


def read_page(
    engine: Engine,
    spec: DatasetSpec,
    version: int,
    visible: Expr,
    sort: tuple[str, bool],
    offset: int,
    limit: int,
    count_limit: int | None,
) -> PkPage:
    """The page of rows matching ``visible`` in ``sort`` order (column, descending).

    In key order from the engine's snapshot when it has one (stops early, counts up to
    ``count_limit``); otherwise, and for every other sort, in two steps: the key and
    sort columns of every match, then whole rows for the page's keys only. Both give
    the same rows; only the first may report a lower bound.
    """
    column, descending = sort
    if column == spec.primary_key:
        snapshot = engine.snapshot(spec, version)
        page = (
            None
            if snapshot is None
            else pk_page(snapshot, spec, visible, descending, offset, limit, count_limit)
        )
        if page is not None:
            return page
    keys, total = _sorted_keys(engine, spec, version, visible, sort, offset, limit)
    return PkPage(_rows_of_keys(engine, spec, version, visible, keys), total, True)


def _sorted_keys(
    engine: Engine,
    spec: DatasetSpec,
    version: int,
    visible: Expr,
    sort: tuple[str, bool],
    offset: int,
    limit: int,
) -> tuple[pa.Array, int]:
    """Step one reads only the key and sort columns of every visible row."""
    pk = spec.primary_key
    column, descending = sort
    keys = engine.scan(spec, list(dict.fromkeys([column, pk])), visible, version)
    order = "descending" if descending else "ascending"
    sort_keys = [(column, order)] + ([(pk, "ascending")] if column != pk else [])
    total = keys.num_rows
    if offset >= total:
        return pa.array([], spec.schema.field(pk).type), total
    top = offset + limit
    if top < total:
        keys = keys.take(pc.select_k_unstable(keys, k=top, sort_keys=sort_keys))
    ordered = keys.sort_by(sort_keys)
    return ordered.column(pk).slice(offset, limit).combine_chunks(), total


def _rows_of_keys(
    engine: Engine, spec: DatasetSpec, version: int, visible: Expr, page_keys: pa.Array
) -> pa.Table:
    """Step two reads whole rows for the page only, re-applying the row filter."""
    pk = spec.primary_key
    if len(page_keys) == 0:
        return spec.schema.empty_table()
    wanted = in_(pk, tuple(page_keys.to_pylist()), spec.schema.field(pk).type)
    rows = engine.scan(spec, spec.schema.names, and_(visible, wanted), version)
    positions = pc.index_in(page_keys, value_set=rows.column(pk))
    return rows.take(positions)


# ---------------------------------------------------------------------- pk-ordered page


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


# ---------------------------------------------------------------------- key pass
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

    def read(self, groups: list[RowGroup], first: int, keys: bool = True) -> None:
        """Add the matches of ``groups`` (``first`` is the index of ``groups[0]``); with
        ``keys`` False only count them (the page's keys are settled): the key column is
        not read, and a group the filter wholly selects is counted from its metadata."""
        plan = self.plan
        filters = [self._group_filter(g) for g in groups]
        live = [i for i, f in enumerate(filters) if not isinstance(f, AlwaysFalse)]
        if not keys:
            self._count_only(groups, filters, live)
            return
        if not live:
            return
        columns = self._columns(filters)
        dataset = self.snapshot.reader([groups[i] for i in live], plan.dictionary)
        # each batch says which fragment it came from as a column: cheaper than asking
        # Arrow for the fragment object (which rebuilds its row-group statistics)
        scanner = dataset.scanner(columns=[*columns, _FRAGMENT], filter=plan.scan_filter)
        jobs = (
            (first + live[fragment], part, filters[live[fragment]])
            for batch in scanner.to_batches()
            for fragment, part in _by_fragment(batch)
        )
        if len(live) <= _INLINE_GROUPS:  # a hand-off to the pool costs more than it saves
            for group, part, row_filter in jobs:
                self._add(group, self._matching_keys(part, row_filter))
            return
        pool = _fetch_pool()
        pending: deque[tuple[int, Future[pa.Array]]] = deque()
        # batches are matched on the pool (Arrow compute releases the GIL), a few at a time
        for group, part, row_filter in jobs:
            pending.append((group, pool.submit(self._matching_keys, part, row_filter)))
            if len(pending) > 2 * _pool_workers:
                done, job = pending.popleft()
                self._add(done, job.result())
        while pending:
            done, job = pending.popleft()
            self._add(done, job.result())

    def _count_only(
        self, groups: list[RowGroup], filters: list[Expr | None], live: list[int]
    ) -> None:
        plan = self.plan
        if plan.filter is None:  # the scanner's filter: Arrow counts
            subset = self.snapshot.subset([groups[i].fragment for i in live])
            self.count += subset.count_rows(filter=plan.scan_filter)
            return
        whole = [i for i in live if isinstance(filters[i], AlwaysTrue)]
        self.count += sum(groups[i].rows for i in whole)
        rest = [i for i in live if not isinstance(filters[i], AlwaysTrue)]
        if not rest:
            return
        columns = self._columns([filters[i] for i in rest])[1:]  # without the key
        dataset = self.snapshot.reader([groups[i] for i in rest], plan.dictionary)
        distinct = {filters[i] for i in rest}
        if len(distinct) == 1:  # one filter for all: no need to know each batch's group
            (row_filter,) = distinct
            assert row_filter is not None
            for batch in dataset.to_batches(columns=columns):
                self.count += int(_text.true_mask(row_filter, batch, None, plan.dictionary).sum())
            return
        scanner = dataset.scanner(columns=[*columns, _FRAGMENT])
        for batch in scanner.to_batches():
            for fragment, part in _by_fragment(batch):
                row_filter = filters[rest[fragment]]
                assert row_filter is not None
                self.count += int(_text.true_mask(row_filter, part, None, plan.dictionary).sum())

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

    def _add(self, group: int, keys: pa.Array) -> None:
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


_FRAGMENT = "__fragment_index"  # Arrow's special column: the batch's fragment


def _by_fragment(batch: pa.RecordBatch) -> list[tuple[int, pa.RecordBatch]]:
    """The batch without its fragment-index column, per fragment (a scanner batch comes
    from one fragment; should one ever mix them, its rows are split by fragment)."""
    index = batch.column(batch.num_columns - 1)
    data = batch.select(range(batch.num_columns - 1))
    if data.num_rows == 0:
        return []
    low, high = pc.min_max(index).values()
    if low.as_py() == high.as_py():
        return [(low.as_py(), data)]
    return [
        (fragment, data.filter(pc.equal(index, fragment)))
        for fragment in pc.unique(index).to_pylist()
    ]


def _first_keys(key_pass: _KeyPass, groups: list[RowGroup], count_to: int | None) -> bool:
    """Read ``groups`` (sorted in page order) a wave at a time into ``key_pass``: at
    least until the ``top`` first matches are settled, and ``count_to`` matches are
    counted (every group when ``count_to`` is None). Says whether every group was read
    (the count is then the exact total)."""
    top, descending = key_pass.top, key_pass.descending
    i = 0
    wave_size = 1
    keys = True  # False once no unread group can hold one of the page's keys
    while i < len(groups):
        if not keys and count_to is None:  # only the count is left: read the rest at once
            key_pass.read(groups[i:], i, keys=False)
            return True
        j = _wave_end(groups, i, descending, wave_size)
        key_pass.read(groups[i:j], i, keys=keys)
        wave_size = 2 * (j - i)  # still short: read more at a time
        i = j
        if i < len(groups) and keys and key_pass.count >= top:
            kth = key_pass.kth()
            keys = not ((groups[i].hi < kth) if descending else (groups[i].lo > kth))
        if i < len(groups) and not keys and count_to is not None and key_pass.count >= count_to:
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
        parts = [_group_rows(snapshot, jobs[0][0], jobs[0][1], pk, threads=True)]
    else:  # decoding releases the GIL: the page's row groups are read side by side
        parts = list(_fetch_pool().map(lambda job: _group_rows(snapshot, job[0], job[1], pk), jobs))
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
    row_group = group.id
    prefix = _prefix_rows(group, keys, metadata.row_group(row_group).num_rows)
    # over many rows, dictionary-encoded columns stay codes until the rows kept are cast
    # back; over a few, building the dictionary array costs more than it saves
    coded = []
    if prefix >= _FETCH_CODED_ROWS:
        coded = [
            name
            for name in columns
            if pa.types.is_string(schema.field(name).type) and snapshot.low_cardinality(name)
        ]
    with part.filesystem.open_input_file(part.path) as source:
        # pages are read as they are decoded: pre-buffering would copy the group's
        # every column chunk (megabytes) to fetch a few hundred rows
        reader = pq.ParquetFile(
            source,
            metadata=metadata,
            read_dictionary=coded,
            pre_buffer=False,
            buffer_size=_FETCH_BUFFER_BYTES,
        )
        batches = reader.iter_batches(
            batch_size=prefix,
            row_groups=[row_group],
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
    margin = num_rows // 200 + _FETCH_MARGIN_ROWS
    return max(1, min(num_rows, int(fraction * num_rows) + margin))
