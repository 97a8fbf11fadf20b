"""The governed search's page computed by Daft (``GOVLAB_EXECUTION=daft``).

The same answer as the in-process path, from the same pinned version, with the same
two-phase plan:

1. **Count and keys.** Over the visible rows (row filter and text match, compiled by
   ``policy.to_daft``) Daft takes the page's keys as a top-k on the sort column and then
   the primary key. In the default (primary-key) order that same pass counts: it takes
   ``max(count_limit, offset + page size) + 1`` keys, and getting them all means the
   page says ``totalExact: false`` with that bound as ``total``, a lower bound as the
   in-process total is (which may stop later, at a row-group boundary). Filters on the
   partition column alone, other orders and ``exactTotal`` count every match.
2. **Rows.** Whole rows for those keys only (``pk in keys`` and the filter again),
   put in page order.

Masks are then applied to the page by the caller with ``govlab.masks``, on the driver:
a page is small, and no key ever goes to a worker. Errors from Daft are reported by
type only, since their text may quote a value.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from govlab import config
from govlab.errors import GovlabError
from govlab.execution.sources import DaftSource, import_daft
from govlab.policy.ast import AlwaysTrue, Expr, and_, columns_of, in_
from govlab.policy.compile import compile_to

if TYPE_CHECKING:
    from govlab.search import Prepared

_runner_lock = threading.Lock()
_runner: str | None = None


@dataclass(frozen=True)
class DaftPage:
    rows: pa.Table
    total: int
    exact: bool


class DaftFailed(GovlabError):
    """A Daft or Ray failure, named by type only (its message may carry data)."""


def ensure_runner() -> str:
    """Point Daft at its runner once per process: Ray when ``GOVLAB_RAY_ADDRESS`` is set
    (or this process already joined a Ray cluster), else the native runner."""
    global _runner
    with _runner_lock:
        if _runner is not None:
            return _runner
        daft = import_daft()
        address = config.ray_address()
        if address is None and _ray_initialized():
            daft.set_runner_ray(noop_if_initialized=True)
            _runner = "ray"
        elif address is not None:
            daft.set_runner_ray(address=address, noop_if_initialized=True)
            _runner = "ray"
        else:
            daft.set_runner_native()
            _runner = "native"
        return _runner


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
    if _capped(prepared, visible):
        keys, total, exact = _capped_keys(matched, prepared, top)
    else:
        total, exact = _count_all(matched.select(spec.primary_key), spec.primary_key), True
        keys = _page_keys(matched, spec.primary_key, sort.column, sort.descending, top)
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


def _capped_keys(matched: Any, prepared: Prepared, top: int) -> tuple[pa.Array, int, bool]:
    """One pass for count and keys: the first ``max(limit, top) + 1`` keys in page order.
    Fewer than that: every match was seen, the count is exact; else it is the bound."""
    assert prepared.count_limit is not None
    spec, sort = prepared.spec, prepared.sort
    bound = max(prepared.count_limit, top)
    keys = _page_keys(matched, spec.primary_key, sort.column, sort.descending, bound + 1)
    if len(keys) > bound:
        return keys.slice(0, top), bound, False
    return keys, len(keys), True


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
    wanted = in_(pk, tuple(keys.to_pylist()), spec.schema.field(pk).type)
    rows = where(frame, and_(wanted, visible)).to_arrow()  # the key first: it prunes
    rows = _as_schema(rows, spec.schema)
    positions = pc.index_in(keys, value_set=rows.column(pk))
    return rows.take(positions)


def _as_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    if table.schema == schema:
        return table
    arrays = [table.column(f.name).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
