"""Both ways a page of a governed search is read, behind one call: :func:`read_page`.

In primary-key order (the default sort) from the engine's Arrow snapshot: ``pk_page``
answers one page and the number of matches reading as little as it can:
row groups in key order, a key pass that evaluates the row filter on the few columns
it needs (``search.text_match``) and keeps only the keys that can still be on the page
with their row numbers, then whole rows decoded from the page's row groups only, up
to the page's last row in each. Imported by the search, not
by the write path (seeding never pays for the policy layer's imports).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from govlab.engines.arrow_dataset import normalise
from govlab.engines.snapshot import RowGroup, Snapshot, open_input
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import (
    FALSE,
    TRUE,
    AlwaysFalse,
    AlwaysTrue,
    Expr,
    and_,
    columns_of,
    in_,
)
from govlab.policy.compile import to_arrow
from govlab.search import text_match as _text

if TYPE_CHECKING:
    from govlab.engines.base import Engine
    from govlab.engines.vocabulary import Vocabulary

# Fetching a page's rows: rows decoded past the estimated last key, and the read
# buffer of each column.
_FETCH_MARGIN_ROWS = 256
_FETCH_BUFFER_BYTES = 64 * 1024
_FETCH_CODED_ROWS = 16_384  # from this many rows on, coded columns are read as codes
_FETCH_POOL_ROWS = 16_384  # from this many rows on, a page's row groups are read side by side
# Key passes over this few row groups match their batches on the calling thread.
_INLINE_GROUPS = 2
# A group read on the calling thread has its columns decoded side by side from this size.
_THREADED_GROUP_ROWS = 32_768
# Groups of at most this many rows are read on the pool and matched together on the
# calling thread, at most this many rows at a time (``_KeyPass._match_together``).
_TOGETHER_GROUP_ROWS = 16_384
_TOGETHER_ROWS = 262_144
_Job = tuple[int, Expr, list[str]]  # a live group's index, its bound filter, its columns
_Held = tuple[pa.Array, np.ndarray]  # a group's keys held, and their row numbers


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
      on the page are kept (``_KeyPass``). Where a column's row-group vocabulary is
      built (``engines.vocabulary``), its leaves are decided per group first: a group
      where the filter is FALSE is not read, and a decided leaf's column is not read.
    * Rows: only the row groups that hold the page's keys are read, by the row numbers
      the key pass found them at, each decoded up to the page's last row in it. Where
      the key pass could not tell row numbers (the scanner's path), by key, with the
      filter re-applied together with ``pk in keys``.
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
    keys, where, positions = key_pass.page(offset, limit)
    rows = (
        None
        if positions is None
        else _rows_by_position(snapshot, groups, spec, keys, where, positions)
    )
    if rows is None:
        rows = _page_rows(snapshot, groups, spec, key_pass.refilter(expr), keys, where)
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
        # each held key's row number in its group (None once some key came without)
        self._positions: list[pa.Array] | None = []
        self._pk_type = snapshot.dataset.schema.field(spec.primary_key).type
        self._bound: dict[tuple[Any, ...], Expr] = {}
        self._decided: list[_Decided] | None = None  # leaves the vocabularies decide

    def read(self, groups: list[RowGroup], first: int, keys: bool = True) -> None:
        """Add the matches of ``groups`` (``first`` is the index of ``groups[0]``); with
        ``keys`` False only count them (the page's keys are settled): the key column is
        not read, and a group the filter wholly selects is counted from its metadata."""
        plan = self.plan
        filters = [self._group_filter(g) for g in groups]
        live = [i for i, f in enumerate(filters) if not isinstance(f, AlwaysFalse)]
        if plan.filter is not None:
            self._read_groups(groups, first, filters, live, keys)
            return
        if not keys:
            subset = self.snapshot.subset([groups[i].fragment for i in live])
            self.count += subset.count_rows(filter=plan.scan_filter)
            return
        if not live:
            return
        dataset = self.snapshot.reader([groups[i] for i in live], plan.dictionary)
        # each batch says which fragment it came from as a column: cheaper than asking
        # Arrow for the fragment object (which rebuilds its row-group statistics)
        scanner = dataset.scanner(columns=[*plan.columns, _FRAGMENT], filter=plan.scan_filter)
        for batch in scanner.to_batches():
            for fragment, part in _by_fragment(batch):
                self._add(first + live[fragment], *self._top(part.column(0)))

    def _read_groups(
        self,
        groups: list[RowGroup],
        first: int,
        filters: list[Expr | None],
        live: list[int],
        keys: bool,
    ) -> None:
        """The plan's filter on each live group, a whole group per task: read and
        matched on the pool (both release the GIL), the answers added in group order.
        A group the filter wholly selects is counted from its metadata when only the
        count is wanted."""
        jobs: list[tuple[int, Expr, list[str]]] = []
        for i in live:
            row_filter = filters[i]
            assert row_filter is not None
            if not keys and isinstance(row_filter, AlwaysTrue):
                self.count += groups[i].rows
                continue
            columns = self._columns([row_filter])
            if not keys and columns[0] not in columns_of(row_filter):
                columns = columns[1:]  # counting needs no key
            jobs.append((i, row_filter, columns))
        if not jobs:
            return
        if len(jobs) > _INLINE_GROUPS and all(
            groups[i].rows <= _TOGETHER_GROUP_ROWS for i, _, _ in jobs
        ):
            self._match_together(groups, first, jobs, keys)
            return

        def match(job: _Job, threads: bool = False) -> tuple[int, _Held | None]:
            i, row_filter, columns = job
            return self._group_matches(groups[i], row_filter, columns, keys, threads)

        if len(jobs) <= _INLINE_GROUPS:  # a hand-off to the pool costs more than it saves
            # a big group's columns are decoded side by side instead
            answers = [match(job, groups[job[0]].rows >= _THREADED_GROUP_ROWS) for job in jobs]
        else:
            answers = list(_fetch_pool().map(match, jobs))
        for (i, _, _), (count, kept) in zip(jobs, answers, strict=True):
            if kept is None:
                self.count += count
            else:
                self._add(first + i, count, *kept)

    def _match_together(
        self, groups: list[RowGroup], first: int, jobs: list[_Job], keys: bool
    ) -> None:
        """``_read_groups`` for small groups: read side by side on the pool (decoding
        releases the GIL), then matched on this thread as one table per filter. Matching
        a few thousand rows is bound by Python's per-call costs, which threads do not
        share: at 50k rows in 5 groups, 3 ms matched group by group on the pool against
        2 ms matched together (and 9 against 6 ms for the whole pass)."""
        dictionary = self.plan.dictionary

        def read(job: _Job) -> pa.Table:
            return self._read(groups[job[0]], job[2])

        start = 0
        while start < len(jobs):
            end, rows = start, 0
            while end < len(jobs) and (end == start or rows < _TOGETHER_ROWS):
                rows += groups[jobs[end][0]].rows
                end += 1
            batch = jobs[start:end]
            tables = _on_pool(read, batch)
            same: dict[tuple[Expr, pa.Schema], list[int]] = {}
            for n, (job, table) in enumerate(zip(batch, tables, strict=True)):
                same.setdefault((job[1], table.schema), []).append(n)
            for (row_filter, _), members in same.items():
                parts = [tables[n] for n in members]
                together = pa.concat_tables(parts)
                mask = (
                    None
                    if isinstance(row_filter, AlwaysTrue)
                    else _text.true_mask(row_filter, together, None, dictionary)
                )
                offset = 0
                for n, part in zip(members, parts, strict=True):
                    size = part.num_rows
                    found = None if mask is None else mask[offset : offset + size]
                    offset += size
                    self._add_group(first + batch[n][0], part.column(0), found, keys)
            start = end

    def _add_group(
        self, where: int, keys: pa.ChunkedArray, found: np.ndarray | None, want_keys: bool
    ) -> None:
        """Count the ``keys`` ``found`` TRUE (every one when None) and, with
        ``want_keys``, hold the first ``top`` of them with their row numbers."""
        if not want_keys:
            self.count += len(keys) if found is None else int(found.sum())
            return
        self._add(where, *self._hold(keys.combine_chunks(), found))

    def _group_matches(
        self, group: RowGroup, row_filter: Expr, columns: list[str], keys: bool, threads: bool
    ) -> tuple[int, _Held | None]:
        """The number of rows of ``group`` matching ``row_filter``, and (with ``keys``)
        the first ``top`` of their keys in page order with their row numbers."""
        dictionary = self.plan.dictionary
        table = self._read(group, columns, threads)
        mask = None
        if not isinstance(row_filter, AlwaysTrue) and table.num_rows:
            # batch by batch: a table's chunks would be copied into one per column
            masks = [_text.true_mask(row_filter, b, None, dictionary) for b in table.to_batches()]
            mask = masks[0] if len(masks) == 1 else np.concatenate(masks)
        if not keys:
            return (table.num_rows if mask is None else int(mask.sum())), None
        count, held, positions = self._hold(table.column(0).combine_chunks(), mask)
        return count, (held, positions)

    def _read(self, group: RowGroup, columns: list[str], threads: bool = False) -> pa.Table:
        """``columns`` of ``group`` as the plan reads them (its dictionary columns as
        dictionaries); where the file does not store one, the scanner fills it in."""
        dictionary = self.plan.dictionary
        table = self.snapshot.read_group(group, columns, dictionary, threads)
        if table is None:
            table = self.snapshot.reader([group], dictionary).to_table(columns=columns)
        return table

    def _hold(self, keys: pa.Array, found: np.ndarray | None) -> tuple[int, pa.Array, np.ndarray]:
        """How many ``keys`` are ``found`` TRUE (all when None), and the ``top`` first of
        them in page order (no later one can be on the page) with their row numbers
        (their index in ``keys``)."""
        order = [("", self._order)]
        if found is None:
            count = len(keys)
            if count <= self.top:
                return count, keys, np.arange(count)
            best = pc.select_k_unstable(keys, k=self.top, sort_keys=order)
            return count, keys.take(best), best.to_numpy()
        at = np.flatnonzero(found)
        count = len(at)
        if count <= self.top:
            return count, keys.take(pa.array(at)), at
        held = keys.filter(pa.array(found))
        best = pc.select_k_unstable(held, k=self.top, sort_keys=order)
        return count, held.take(best), at[best.to_numpy()]

    def _top(self, keys: pa.Array) -> tuple[int, pa.Array]:
        """How many ``keys`` there are, and the ``top`` first of them in page order (no
        later one can be on the page)."""
        count = len(keys)
        if count > self.top:
            keys = keys.take(pc.select_k_unstable(keys, k=self.top, sort_keys=[("", self._order)]))
        return count, keys

    def refilter(self, expr: pc.Expression) -> Refilter:
        """How the rows a page reads from its groups are filtered again: by each group's
        bound filter on their plain values, once per distinct filter (a page's groups
        mostly share one; an Acero plan for 20 rows costs 0.5 ms), or by ``expr`` (the
        plan's whole filter, as Arrow's) when the scanner decides the plan."""

        def keep(groups: list[RowGroup], parts: list[pa.Table]) -> pa.Table:
            if self.plan.filter is None:
                return pa.concat_tables(parts).filter(expr)
            by_filter: dict[Expr | None, list[pa.Table]] = {}
            for group, part in zip(groups, parts, strict=True):
                by_filter.setdefault(self._group_filter(group), []).append(part)
            kept = []
            for row_filter, tables in by_filter.items():
                rows = pa.concat_tables(tables)
                if rows.num_rows and not isinstance(row_filter, AlwaysTrue):
                    assert row_filter is not None
                    batch = rows.combine_chunks().to_batches()[0]
                    mask = _text.true_mask(row_filter, batch, None, frozenset())
                    rows = rows.filter(pa.array(mask))
                kept.append(rows)
            return pa.concat_tables(kept)

        return keep

    def _group_filter(self, group: RowGroup) -> Expr | None:
        """The plan's filter with the group's partition values bound in (a filter on
        the partition column alone becomes TRUE for every group left to read), and
        the leaves its columns' vocabularies decide for the group (a term none of the
        group's names holds: FALSE, and `name` is not read)."""
        if self.plan.filter is None:
            return None
        fragment = group.fragment
        constants = ds.get_partition_keys(fragment.partition_expression)
        answers = self._vocabulary_answers(group)
        if not constants and not answers:
            return self.plan.filter
        key = (
            tuple(sorted(constants.items(), key=lambda item: item[0])),
            tuple(answers.items()),
        )
        cached = self._bound.get(key)
        if cached is None:
            cached = self.plan.filter
            if constants:
                schema = self.snapshot.dataset.schema
                cached = _text.bind_constants(cached, constants, schema)
            cached = _text.bind_leaves(cached, answers)
            self._bound[key] = cached
        return cached

    def _vocabulary_answers(self, group: RowGroup) -> dict[Expr, Expr]:
        """The leaves decided for ``group`` by their columns' vocabularies."""
        if self._decided is None:
            self._decided = self._decide_leaves()
        answers: dict[Expr, Expr] = {}
        for decided in self._decided:
            i = decided.vocabulary.index(group.fragment.path, group.id)
            if i is None:
                continue
            if not decided.some[i]:
                answers[decided.leaf] = FALSE
            elif decided.every[i]:
                answers[decided.leaf] = TRUE
        return answers

    def _decide_leaves(self) -> list[_Decided]:
        """Each leaf on a dictionary column whose vocabulary is built, with its
        verdict for every row group (once per search: a few distinct values each)."""
        assert self.plan.filter is not None
        decided = []
        for leaf in dict.fromkeys(_text.leaves(self.plan.filter)):
            if leaf.column not in self.plan.dictionary:
                continue
            vocabulary = self.snapshot.vocabulary(leaf.column)
            if vocabulary is not None:
                some, every = _text.vocabulary_verdicts(leaf, vocabulary)
                decided.append(_Decided(leaf, vocabulary, some, every))
        return decided

    def _columns(self, filters: Iterable[Expr | None]) -> list[str]:
        """The key, then every column a group's filter still needs, in schema order."""
        if self.plan.filter is None:
            return list(self.plan.columns)
        needed = set().union(*(columns_of(f) for f in filters if f is not None))
        pk = self.plan.columns[0]
        return [pk, *(c for c in self.plan.columns[1:] if c in needed)]

    def _add(
        self, group: int, count: int, keys: pa.Array, positions: np.ndarray | None = None
    ) -> None:
        self.count += count
        if len(keys) == 0:
            return
        if keys.type != self._pk_type:
            keys = keys.cast(self._pk_type)
        self._keys.append(keys)
        self._where.append(pa.array(np.full(len(keys), group, dtype=np.int32)))
        if positions is None:
            self._positions = None
        elif self._positions is not None:
            self._positions.append(pa.array(positions, pa.int64()))

    @property
    def _order(self) -> str:
        return "descending" if self.descending else "ascending"

    def kth(self) -> Any:
        """The ``top``-th key in page order among the matches read so far."""
        return _kth(self._keys, self.top, self.descending)

    def page(
        self, offset: int, limit: int
    ) -> tuple[pa.Array, pa.ChunkedArray, pa.ChunkedArray | None]:
        """The page's keys in page order, the index of the row group of each, and its
        row number in the group (None unless every key held came with one)."""
        keys = pa.chunked_array(self._keys, type=self._pk_type)
        columns = {"k": keys, "g": pa.chunked_array(self._where, type=pa.int32())}
        if self._positions is not None:
            columns["p"] = pa.chunked_array(self._positions, type=pa.int64())
        table = pa.table(columns)
        if self.top < table.num_rows:
            # the top keys are those up to the top-th one (select_k on the key array alone
            # is ~10x faster than on the table)
            kth = _kth(keys, self.top, self.descending)
            keep = pc.greater_equal(keys, kth) if self.descending else pc.less_equal(keys, kth)
            table = table.filter(keep)
        table = table.sort_by([("k", self._order)]).slice(offset, limit)
        positions = table.column("p") if "p" in table.column_names else None
        return table.column("k").combine_chunks(), table.column("g"), positions


@dataclass(frozen=True)
class _Decided:
    """A leaf's verdicts per row group of its column's vocabulary."""

    leaf: Expr
    vocabulary: Vocabulary
    some: np.ndarray  # may be TRUE on some row of the group
    every: np.ndarray  # TRUE on every row of the group


_FRAGMENT = "__fragment_index"  # Arrow's special column: the batch's fragment


def _in_schema(table: pa.Table, schema: pa.Schema, constants: dict[str, Any]) -> pa.Table | None:
    """``table``'s columns in ``schema`` (dictionaries decoded, types cast), partition
    columns filled in from ``constants``; None when a column is neither."""
    arrays = []
    names = set(table.column_names)
    for field in schema:
        if field.name in names:
            column = table.column(field.name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            arrays.append(column if column.type == field.type else column.cast(field.type))
        elif field.name in constants:
            arrays.append(pa.array([constants[field.name]] * table.num_rows, field.type))
        else:
            return None
    return pa.Table.from_arrays(arrays, schema=schema)


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


Refilter = Callable[[list[RowGroup], list[pa.Table]], pa.Table]


def _page_rows(
    snapshot: Snapshot,
    groups: list[RowGroup],
    spec: DatasetSpec,
    refilter: Refilter,
    page_keys: pa.Array,
    page_groups: pa.ChunkedArray,
) -> pa.Table:
    """Whole rows for the page's keys, in page order, read from their row groups only;
    the row filter is applied again to what is read (as a second scan would).

    The groups are read side by side on the pool only when there is enough to decode
    (a few hundred rows a group: handing them to the pool costs more than it saves)."""
    if len(page_keys) == 0:
        return spec.schema.empty_table()
    pk = spec.primary_key
    keyed = pa.table({"k": page_keys, "g": page_groups.combine_chunks()})
    jobs = []
    for g in sorted(set(page_groups.to_pylist())):
        keys = keyed.filter(pc.equal(keyed["g"], g))["k"].combine_chunks()
        jobs.append((groups[g], keys, _prefix_rows(groups[g], keys)))

    def fetch(job: tuple[RowGroup, pa.Array, int], threads: bool = False) -> pa.Table:
        group, keys, prefix = job
        return _group_rows(snapshot, group, keys, pk, prefix, threads)

    if len(jobs) == 1:  # one group: its columns are decoded side by side
        parts = [fetch(jobs[0], threads=jobs[0][2] >= _FETCH_CODED_ROWS)]
    elif sum(job[2] for job in jobs) < _FETCH_POOL_ROWS:
        parts = [fetch(job) for job in jobs]
    else:  # decoding releases the GIL: the page's row groups are read side by side
        parts = list(_fetch_pool().map(fetch, jobs))
    rows = normalise(refilter([job[0] for job in jobs], parts), spec.schema)
    positions = pc.index_in(page_keys, value_set=rows.column(pk))
    return rows.take(positions)


def _rows_by_position(
    snapshot: Snapshot,
    groups: list[RowGroup],
    spec: DatasetSpec,
    page_keys: pa.Array,
    page_groups: pa.ChunkedArray,
    positions: pa.ChunkedArray,
) -> pa.Table | None:
    """Whole rows for the page's keys, in page order, by their row numbers in their
    groups (found by the key pass on the same immutable files): each group decoded only
    up to the last of its page's rows, no key lookup, nothing filtered again. None when
    a group's file lacks a column that is not a partition value (``_page_rows`` then
    lets the scanner fill it in)."""
    if len(page_keys) == 0:
        return spec.schema.empty_table()
    schema = snapshot.dataset.schema
    where = page_groups.to_numpy()
    rows_at = positions.to_numpy()
    jobs = []
    for g in np.unique(where):
        group = groups[int(g)]
        stored = snapshot.file_columns(group.fragment)
        constants = ds.get_partition_keys(group.fragment.partition_expression)
        if any(n not in stored and n not in constants for n in schema.names):
            return None
        columns = [n for n in schema.names if n in stored]
        jobs.append((group, columns, constants, rows_at[where == g]))

    def fetch(job: tuple[RowGroup, list[str], dict[str, Any], np.ndarray]) -> pa.Table:
        group, columns, constants, at = job
        prefix = int(at.max()) + 1
        coded = _coded_columns(snapshot, columns, prefix)
        threads = prefix >= _FETCH_CODED_ROWS and len(jobs) == 1  # its columns side by side
        rows = _in_schema(_rows_at(group, columns, at, coded, threads), schema, constants)
        assert rows is not None  # every column stored or a partition value: checked
        return rows

    # decoding releases the GIL: past a few thousand rows, the groups side by side
    decoded = sum(int(job[3].max()) + 1 for job in jobs)
    parts = _on_pool(fetch, jobs) if decoded >= _FETCH_POOL_ROWS else [fetch(j) for j in jobs]
    rows = normalise(pa.concat_tables(parts), spec.schema)
    order = pc.index_in(page_keys, value_set=rows.column(spec.primary_key))
    return rows.take(order)


_pool: ThreadPoolExecutor | None = None
_pool_guard = threading.Lock()
_pool_workers = max(2, min(8, pa.cpu_count()))


def _fetch_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(_pool_workers, thread_name_prefix="govlab-fetch")
        return _pool


def _on_pool(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``work`` on each item, on the pool when a hand-off can pay for itself."""
    if len(items) <= 1:
        return [work(item) for item in items]
    return list(_fetch_pool().map(work, items))


def _rows_at(
    group: RowGroup,
    columns: list[str],
    positions: np.ndarray,
    coded: list[str] | None = None,
    threads: bool = False,
) -> pa.Table:
    """``columns`` (stored in the file) of ``group``'s rows at ``positions``, decoding
    the group only up to the last of them (``coded`` ones as dictionaries, ``threads``:
    the columns side by side)."""
    prefix = int(positions.max()) + 1
    with open_input(group.fragment) as source:
        reader = pq.ParquetFile(
            source,
            metadata=group.fragment.metadata,
            read_dictionary=coded or None,
            pre_buffer=False,
            buffer_size=_FETCH_BUFFER_BYTES,
        )
        batches = reader.iter_batches(
            batch_size=prefix, row_groups=[group.id], columns=columns, use_threads=threads
        )
        first = next(iter(batches))
    return pa.Table.from_batches([first]).take(pa.array(positions))


def _group_rows(
    snapshot: Snapshot, group: RowGroup, keys: pa.Array, pk: str, prefix: int, threads: bool
) -> pa.Table:
    """The rows of one row group whose key is in ``keys``, in the dataset's schema.

    Decoded from the start of the group, stopping once every key was seen: rows are
    pk-ordered in the files, so an early page decodes the start of its groups only.
    The first batch is ``prefix`` rows (``_prefix_rows``: sized to reach the last
    key), so a page whose keys are spread decodes in one call rather than many small
    ones. Anything this cannot mirror exactly (a column neither in the file nor a
    partition key) goes through the dataset scanner instead.
    """
    part = group.fragment
    schema = snapshot.dataset.schema
    metadata = part.metadata
    in_file = set(snapshot.file_columns(part))
    constants = ds.get_partition_keys(part.partition_expression)
    columns = [name for name in schema.names if name in in_file]
    missing = [name for name in schema.names if name not in in_file]
    if pk not in in_file or any(name not in constants for name in missing):
        return snapshot.subset([part]).to_table(filter=pc.field(pk).isin(keys), use_threads=False)
    remaining = set(keys.to_pylist())
    pieces: list[pa.RecordBatch] = []
    coded = _coded_columns(snapshot, columns, prefix)
    with open_input(part) as source:
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
            row_groups=[group.id],
            columns=columns,
            use_threads=threads,
        )
        for batch in batches:
            hits = batch.filter(pc.is_in(batch.column(pk), value_set=keys))
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


def _coded_columns(snapshot: Snapshot, columns: list[str], rows: int) -> list[str]:
    """The ``columns`` a fetch decoding ``rows`` rows reads as dictionaries: over many
    rows, dictionary-encoded columns stay codes until the rows kept are cast back; over
    a few, building the dictionary array costs more than it saves."""
    if rows < _FETCH_CODED_ROWS:
        return []
    schema = snapshot.dataset.schema
    return [
        n
        for n in columns
        if pa.types.is_string(schema.field(n).type) and snapshot.low_cardinality(n)
    ]


def _prefix_rows(group: RowGroup, keys: pa.Array) -> int:
    """How many leading rows of ``group`` likely hold every key: the largest key placed
    between the group's min and max key (keys are spread evenly over the rows of the
    pk-ordered files), plus a margin. An underestimate only costs another batch."""
    num_rows = group.rows
    last = pc.max(keys).as_py()
    if not all(isinstance(v, int) for v in (last, group.lo, group.hi)) or group.hi <= group.lo:
        return max(num_rows, 1)
    fraction = min(1.0, max(0.0, (last - group.lo) / (group.hi - group.lo)))
    margin = num_rows // 200 + _FETCH_MARGIN_ROWS
    return max(1, min(num_rows, int(fraction * num_rows) + margin))
