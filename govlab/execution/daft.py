"""The governed search's page computed by Daft (``GOVLAB_EXECUTION=daft``).

The same answer as the in-process path, from the same pinned version, with the same
two-phase plan:

1. **Count and keys.** Over the visible rows (row filter and text match, compiled by
   ``policy.to_daft``) Daft takes the page's keys as a top-k on the sort column and then
   the primary key. In the default (primary-key) order that same pass counts: it takes
   ``max(count_limit, offset + page size) + 1`` keys, and getting them all means the
   page says ``totalExact: false`` with that bound as ``total``, a lower bound as the
   in-process total is (which may stop later, at a row-group boundary). Filters on the
   partition column alone, other orders and ``exactTotal`` count every match (from
   file metadata where that is exact). In key order the keys are first looked for in a
   window of the key range (``_first_keys``), so Daft skips the row groups beyond it
   by their statistics, as the in-process engine does.
2. **Rows.** Whole rows for those keys only (``pk in keys`` and the filter again),
   put in page order.

Masks are then applied to the page by the caller with ``govlab.masks``, on the driver:
a page is small, and no key ever goes to a worker. Errors from Daft are reported by
type only, since their text may quote a value.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from govlab import config
from govlab.errors import GovlabError
from govlab.execution.sources import DaftSource, import_daft
from govlab.policy.ast import AlwaysTrue, Cmp, Expr, and_, columns_of, in_
from govlab.policy.compile import compile_to

if TYPE_CHECKING:
    from govlab.search import Prepared

log = logging.getLogger(__name__)

_runner_lock = threading.Lock()
_runner: str | None = None
RAY_JOIN_ATTEMPTS = 3
RAY_JOIN_BACKOFF_S = 1.0


@dataclass(frozen=True)
class DaftPage:
    rows: pa.Table
    total: int
    exact: bool


class DaftFailed(GovlabError):
    """A Daft or Ray failure, named by type only (its message may carry data)."""


def ensure_runner() -> str:
    """Point Daft at its runner once per process: Ray when ``GOVLAB_RAY_ADDRESS`` is set
    (or this process already joined a Ray cluster), else the native runner. Daft fixes
    its runner at the first query: a process that already ran Daft natively keeps that
    runner, and asking it for Ray then is an error rather than a silent local run."""
    global _runner
    with _runner_lock:
        if _runner is not None:
            return _runner
        daft = import_daft()
        address = config.ray_address()
        wanted = "ray" if address is not None or _ray_initialized() else "native"
        try:
            if wanted == "ray":
                _join_ray(daft, address)
            else:
                daft.set_runner_native()
        except Exception as exc:
            if "more than once" not in str(exc):
                raise
            current = str(daft.get_or_infer_runner_type())
            if current != wanted:
                raise DaftFailed(
                    f"Daft already runs on its {current} runner in this process; "
                    f"GOVLAB_RAY_ADDRESS needs a process that has not run Daft yet"
                ) from None
        _runner = wanted
        return _runner


def _join_ray(daft: Any, address: str | None) -> None:
    """Join the cluster, again after a refused start: the head's client proxy starts one
    server per driver, and on a busy head that start can fail once
    (``ConnectionAbortedError``, "Starting Ray client server failed") while the next
    succeeds. Bounded in attempts; an unreachable head is not retried (Ray's client has
    waited for it already)."""
    for attempt in range(1, RAY_JOIN_ATTEMPTS + 1):
        try:
            daft.set_runner_ray(address=address, noop_if_initialized=True)
            return
        except ConnectionAbortedError:
            if attempt == RAY_JOIN_ATTEMPTS:
                raise DaftFailed(
                    f"the Ray cluster refused this driver {attempt} times "
                    "(its client server did not start)"
                ) from None
            log.warning("the Ray cluster refused this driver (attempt %d); retrying", attempt)
            time.sleep(RAY_JOIN_BACKOFF_S * attempt)


def _ray_initialized() -> bool:
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def page(prepared: Prepared, visible: Expr) -> DaftPage:
    """The page of ``prepared`` (a search prepared against a ``DaftSource``)."""
    ensure_runner()
    try:
        return _page(prepared, visible)
    except GovlabError:
        raise
    except Exception as exc:  # Daft and Ray errors can quote values: keep the type only
        raise DaftFailed(f"the Daft backend failed ({type(exc).__name__})") from None


def _page(prepared: Prepared, visible: Expr) -> DaftPage:
    spec, sort, query = prepared.spec, prepared.sort, prepared.query
    source = prepared.engine
    if not isinstance(source, DaftSource):
        raise TypeError("a Daft page needs a search prepared with a DaftSource")
    frame = source.frame(spec, prepared.version)
    matched = where(frame, visible)
    offset = (query.page - 1) * query.page_size
    top = offset + query.page_size
    capped = _capped(prepared, visible)
    bound = max(prepared.count_limit or 0, top)
    need = bound + 1 if capped else top
    if sort.column == spec.primary_key:
        keys = _first_keys(frame, matched, source, prepared, need)
    else:
        keys = _page_keys(matched, spec.primary_key, sort.column, sort.descending, need)
    if capped:
        total, exact = (bound, False) if len(keys) > bound else (len(keys), True)
    else:
        total, exact = _count(frame, matched, visible, prepared), True
    page_keys = keys.slice(offset, query.page_size) if offset < len(keys) else keys.slice(0, 0)
    if len(page_keys) == 0:
        return DaftPage(spec.schema.empty_table(), total, exact)
    rows = _page_rows(frame, spec, visible, page_keys)
    return DaftPage(rows, total, exact)


def _capped(prepared: Prepared, visible: Expr) -> bool:
    """The default (primary-key) order counts up to the limit, except when the filter
    only reads the partition column (then the count is exact, as in process)."""
    spec = prepared.spec
    partition_only = columns_of(visible) <= {spec.partition_by}
    pk_order = prepared.sort.column == spec.primary_key
    return prepared.count_limit is not None and pk_order and not partition_only


def _count(frame: Any, matched: Any, visible: Expr, prepared: Prepared) -> int:
    """Every match. From file metadata when nothing or only partitions are filtered
    (Delta and Parquet; Daft's Iceberg count ignores a partition filter: aggregated)."""
    pk = prepared.spec.primary_key
    if isinstance(visible, AlwaysTrue):
        return int(frame.count_rows())
    partition_only = columns_of(visible) <= {prepared.spec.partition_by}
    if partition_only and prepared.engine.name != "iceberg":
        return int(matched.count_rows())
    return _count_all(matched.select(pk), pk)


# ---------------------------------------------------------------------- key windows
#: Key windows tried before a full top-k: each ``WINDOW_GROWTH`` times the last.
MAX_WINDOWS = 6
WINDOW_GROWTH = 4
WINDOW_SLACK = 4  # the first window holds this many times the keys needed, if spread evenly
_ranges: dict[tuple[str, str, int], tuple[int, int, int]] = {}
_ranges_lock = threading.Lock()


def _first_keys(
    frame: Any, matched: Any, source: DaftSource, prepared: Prepared, need: int
) -> pa.Array:
    """The first ``need`` matching keys in primary-key order, reading a window of keys
    first. Files keep rows in key order, so ``pk < lo + width`` lets Daft skip every row
    group beyond the window by its statistics; when the window holds ``need`` matches
    they are the first ``need`` overall (every key outside it comes later). Otherwise a
    wider window, and after ``MAX_WINDOWS`` the whole table. Only for integer keys."""
    spec, sort = prepared.spec, prepared.sort
    pk = spec.primary_key
    full = partial(_page_keys, matched, pk, pk, sort.descending)
    if not pa.types.is_integer(spec.schema.field(pk).type):
        return full(need)
    lo, hi, rows = _key_range(frame, source, prepared)
    if rows == 0:
        return full(need)
    daft = import_daft()
    width = max(need, WINDOW_SLACK * need * max(1, (hi - lo + 1) // rows))
    for _ in range(MAX_WINDOWS):
        if width > hi - lo:
            break
        edge = daft.col(pk) > hi - width if sort.descending else daft.col(pk) < lo + width
        keys = _page_keys(matched.where(edge), pk, pk, sort.descending, need)
        if len(keys) >= need:
            return keys
        width *= WINDOW_GROWTH
    return full(need)


def _key_range(frame: Any, source: DaftSource, prepared: Prepared) -> tuple[int, int, int]:
    """(min key, max key, rows) of the pinned version, from statistics, once per version."""
    cache_key = (source.fmt, source.location(prepared.spec.name), prepared.version)
    with _ranges_lock:
        known = _ranges.get(cache_key)
    if known is not None:
        return known
    daft = import_daft()
    pk = prepared.spec.primary_key
    stats = frame.agg(daft.col(pk).min().alias("lo"), daft.col(pk).max().alias("hi"))
    lo, hi = stats.to_pydict()["lo"][0], stats.to_pydict()["hi"][0]
    found = (0, 0, 0) if lo is None else (int(lo), int(hi), int(frame.count_rows()))
    with _ranges_lock:
        if len(_ranges) > 256:
            _ranges.clear()
        _ranges[cache_key] = found
    return found


def where(frame: Any, expr: Expr) -> Any:
    """``frame`` filtered by a bound filter (a TRUE filter adds no step to the plan)."""
    if isinstance(expr, AlwaysTrue):
        return frame
    return frame.where(compile_to("daft", expr))


def _count_all(keys: Any, pk: str) -> int:
    """Every matching row, counted by an aggregation. Not ``count_rows()``: Daft 0.7.26
    answers that from Iceberg metadata with a partition filter ignored (1,000 rows
    counted where 393 match; tests/test_daft.py checks the analyst's regions)."""
    daft = import_daft()
    counted = keys.agg(daft.col(pk).count("all").alias("n")).to_pydict()["n"]
    return int(counted[0]) if counted else 0


def _page_keys(matched: Any, pk: str, column: str, descending: bool, top: int) -> pa.Array:
    """The first ``top`` keys in page order: a top-k on (sort column, pk)."""
    by = [column] if column == pk else [column, pk]
    order = [descending] if column == pk else [descending, False]
    head = matched.select(*dict.fromkeys([column, pk])).sort(by, desc=order).limit(top)
    return head.to_arrow().column(pk).combine_chunks()


def _page_rows(frame: Any, spec: Any, visible: Expr, keys: pa.Array) -> pa.Table:
    """Whole rows for the page's keys only, in the keys' order."""
    pk = spec.primary_key
    dtype = spec.schema.field(pk).type
    listed = keys.to_pylist()
    # the key range first: Daft skips row groups by their statistics on it (not on IN)
    span = and_(Cmp(pk, ">=", min(listed), dtype), Cmp(pk, "<=", max(listed), dtype))
    rows = where(frame, and_(span, in_(pk, tuple(listed), dtype), visible)).to_arrow()
    rows = _as_schema(rows, spec.schema)
    positions = pc.index_in(keys, value_set=rows.column(pk))
    return rows.take(positions)


def _as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema == schema:
        return table
    arrays = [table.column(f.name).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
