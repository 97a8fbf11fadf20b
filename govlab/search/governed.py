"""The governed search: policy + principal -> filtered scan -> page -> masks.

Data flows one way. The row filter and the text match are pushed into the engine's
scan on raw values; only the page's rows are ever fully read; masks are computed from
those raw values once, as the last step. A masked column is never searched or sorted
on, so neither ``total`` nor the order of a page can reveal its raw values.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from govlab import masks
from govlab.config import Settings
from govlab.engines import get_engine
from govlab.engines.base import Engine
from govlab.errors import BadRequest
from govlab.freshness import FileMemo
from govlab.generators import DatasetSpec, get_dataset
from govlab.keys import DerivedKeys, derive_keys
from govlab.policy import AccessPlan, LoadedPolicy, Principal
from govlab.policy.access import AccessControl, Action, authorize
from govlab.policy.ast import Contains, Expr, and_, or_
from govlab.policy.store import PolicyStore
from govlab.search.paging import read_page

MAX_PAGE_SIZE = 200
MAX_QUERY_CHARS = 200
MAX_TERMS = 10
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class SearchQuery:
    """A validated, normalised request: equal queries are equal objects (cache keys)."""

    q: str = ""
    page: int = 1
    page_size: int = 20
    sort: str | None = None
    exact_total: bool = False

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.q.split())

    @classmethod
    def parse(
        cls,
        q: str | None,
        page: int,
        page_size: int,
        sort: str | None,
        exact_total: bool = False,
    ) -> SearchQuery:
        q = " ".join((q or "").split())
        if len(q) > MAX_QUERY_CHARS:
            raise BadRequest(f"q is longer than {MAX_QUERY_CHARS} characters")
        if len(q.split()) > MAX_TERMS:
            raise BadRequest(f"q has more than {MAX_TERMS} terms")
        if page < 1:
            raise BadRequest("page must be 1 or more")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        return cls(
            q=q, page=page, page_size=page_size, sort=(sort or None), exact_total=exact_total
        )


@dataclass(frozen=True)
class SortKey:
    column: str
    descending: bool

    @classmethod
    def resolve(cls, sort: str | None, spec: DatasetSpec, plan: AccessPlan) -> SortKey:
        """``col`` or ``-col``; masked or unknown columns are refused (order leaks values)."""
        if not sort:
            return cls(spec.primary_key, False)
        descending = sort.startswith("-")
        column = sort.lstrip("-+")
        if column not in spec.schema.names:
            raise BadRequest(f"cannot sort on unknown column {column!r}")
        if column in plan.masks:
            raise BadRequest(f"cannot sort on masked column {column!r}")
        if pa.types.is_nested(spec.schema.field(column).type):
            raise BadRequest(f"column {column!r} is not sortable")
        return cls(column, descending)


def text_filter(terms: tuple[str, ...], spec: DatasetSpec, plan: AccessPlan) -> Expr:
    """Every term must match some searchable column the role sees unmasked.

    With no such column a non-empty query matches nothing: searching masked raw values
    would let a caller probe them one substring at a time.
    """
    columns = [c for c in spec.searchable if c not in plan.masks]
    return and_(*(or_(*(Contains(c, term) for c in columns)) for term in terms))


@dataclass(frozen=True)
class Prepared:
    spec: DatasetSpec
    policy: LoadedPolicy
    plan: AccessPlan
    engine: Engine
    version: int
    sort: SortKey
    query: SearchQuery
    count_limit: int | None  # None: the total is counted exactly


class GovernedSearch:
    """Serves pages for one data root; policies come from its PolicyStore.

    The count strategy is the deployment's (``Settings.count_limit``): for the default
    (primary-key) order, matches are counted exactly up to that many; beyond it the page
    says ``totalExact: false`` and ``total`` is a lower bound, so a first page does not
    cost a scan of the whole table. Requests with ``exact_total`` get the exact count.
    """

    def __init__(self, settings: Settings, policies: PolicyStore | None = None) -> None:
        self.settings = settings
        self.policies = policies or PolicyStore(settings)
        self.access = AccessControl(self.policies)
        self._keys: DerivedKeys | None = None
        self._versions: FileMemo[tuple[str, str], int] = FileMemo()
        self._engines: dict[str, Engine] = {}
        self._witnesses: dict[tuple[str, str], tuple[Path, ...]] = {}

    @property
    def keys(self) -> DerivedKeys:
        if self._keys is None:
            self._keys = derive_keys(self.settings.secret_key())
        return self._keys

    def engine(self, fmt: str) -> Engine:
        if self.settings.execution == "daft":  # the same pages, computed by Daft
            from govlab.execution.sources import source

            return source(fmt, self.settings)  # type: ignore[return-value]
        engine = self._engines.get(fmt)
        if engine is None:  # engines keep no per-request state: one per format will do
            engine = self._engines[fmt] = get_engine(fmt, self.settings)
        return engine

    def plan(
        self,
        dataset: str,
        principal: Principal,
        policy: LoadedPolicy | None = None,
        action: Action = Action.SEARCH,
    ) -> tuple[DatasetSpec, LoadedPolicy, AccessPlan]:
        """The bound plan, decided by the one authorization layer (``policy.access``)."""
        spec = get_dataset(dataset)
        loaded = policy or self.current_policy(dataset)
        grant = authorize(loaded, principal, action, dataset)
        return spec, loaded, grant.bound_plan

    def current_policy(self, dataset: str) -> LoadedPolicy:
        return self.policies.current(dataset)

    def prepare(
        self,
        dataset: str,
        fmt: str,
        principal: Principal,
        query: SearchQuery,
        policy: LoadedPolicy | None = None,
    ) -> Prepared:
        """Everything a page depends on, resolved and checked before any scan.

        The cache keys pages by exactly these versions, so a reseed or a policy edit
        changes the key before a stale page could be served.
        """
        spec, loaded, plan = self.plan(dataset, principal, policy)
        engine = self.engine(fmt)
        version = self.version(engine, dataset)  # pinned: count and page read one snapshot
        sort = SortKey.resolve(query.sort, spec, plan)
        count_limit = None if query.exact_total else self.settings.count_limit
        return Prepared(spec, loaded, plan, engine, version, sort, query, count_limit)

    def version(self, engine: Engine, dataset: str) -> int:
        """The table's current version, re-read only when the engine's witness files
        change (a stat each otherwise: the cost of a cache hit's version check)."""
        key = (engine.name, dataset)
        files = self._witnesses.get(key)
        if files is None:
            name_files = getattr(engine, "version_witnesses", None)
            if name_files is None:  # a source that cannot name its files: read each time
                return engine.version(dataset)
            files = self._witnesses[key] = name_files(dataset)
        return self._versions.get(key, files, lambda: engine.version(dataset))

    def build_vocabularies(self, dataset: str, fmt: str) -> list[str]:
        """Build the current version's row-group vocabularies (``engines.vocabulary``)
        and wait for them; the columns built. Searches build them on first use in the
        background and never wait: this is for a warm-up after a seed, and for
        benchmarks that time searches with them built."""
        spec = get_dataset(dataset)
        engine = self.engine(fmt)
        snapshot = engine.snapshot(spec, self.version(engine, dataset))
        return [] if snapshot is None else snapshot.build_vocabularies()

    def is_current(self, prepared: Prepared) -> bool:
        """Whether the policy and table version ``prepared`` pinned are still the live
        ones, so that everything derived from it (its grant, its page key) still holds."""
        dataset = prepared.spec.name
        return self.current_policy(dataset) is prepared.policy and (
            self.version(prepared.engine, dataset) == prepared.version
        )

    def search(
        self,
        dataset: str,
        fmt: str,
        principal: Principal,
        query: SearchQuery,
        policy: LoadedPolicy | None = None,
    ) -> dict[str, Any]:
        return self.run(self.prepare(dataset, fmt, principal, query, policy))

    def run(self, prepared: Prepared) -> dict[str, Any]:
        started = time.perf_counter()
        spec, plan, engine, query = prepared.spec, prepared.plan, prepared.engine, prepared.query
        visible = and_(plan.row_filter, text_filter(query.terms, spec, plan))
        paged = getattr(engine, "page", None)  # a Daft source computes the page itself
        page = paged(prepared, visible) if paged else None
        if page is None:
            page = read_page(
                engine,
                spec,
                prepared.version,
                visible,
                (prepared.sort.column, prepared.sort.descending),
                (query.page - 1) * query.page_size,
                query.page_size,
                prepared.count_limit,
            )
        rows, total, exact = page.rows, page.total, page.exact
        masked = masks.mask_table(rows, plan.mask_plan, self.keys.masks, spec.name)
        return {
            "items": to_json_rows(masked),
            "page": query.page,
            "pageSize": query.page_size,
            "total": total,
            "totalExact": exact,
            "maskedFields": sorted(plan.masks),
            "sort": ("-" if prepared.sort.descending else "") + prepared.sort.column,
            "tableVersion": prepared.version,
            "policyVersion": prepared.policy.version,
            "role": plan.role,
            "engine": engine.name,
            "pushdown": True,
            "tookMs": round((time.perf_counter() - started) * 1000, 2),
        }

    def validate(
        self, dataset: str, fmt: str, principal: Principal, policy: LoadedPolicy | None = None
    ) -> dict[str, Any]:
        """Dry run for a role: what it would see, before it searches."""
        _, loaded, plan = self.plan(dataset, principal, policy, Action.VALIDATE)
        result = self.search(
            dataset,
            fmt,
            principal,
            SearchQuery(page_size=PREVIEW_ROWS, exact_total=True),
            policy=loaded,
        )
        return {
            "dataset": dataset,
            "format": fmt,
            "role": plan.role,
            "rowsVisible": result["total"],
            "rowFilter": plan.filter_sql,
            "maskedColumns": {c: m.describe() for c, m in sorted(plan.masks.items())},
            "preview": result["items"],
            "tableVersion": result["tableVersion"],
            "policyVersion": loaded.version,
        }


def to_json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Page rows as JSON-ready dicts: dates and timestamps become ISO strings."""
    return [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
