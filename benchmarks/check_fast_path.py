"""Check that the pk-ordered page path returns exactly what the general path returns.

    python -m benchmarks.check_fast_path --data-dir datasets/generated/bench/small

For every format seeded under the data dir, every (role, query, page, sort) case below
is served twice by ``GovernedSearch``: once normally (the fast ``pk_page`` path where it
applies) and once with that path switched off (full key scan + select_k + a second scan).
The pages, totals and everything else in the answer must be identical, with the exact
count asked for. The fast path's default answer (the count may stop at the count limit)
must have the same items, and a total that is the exact one or a lower bound flagged
``totalExact: false`` that reaches the end of the page. Exit code 1 on any difference.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from govlab.config import Settings
from govlab.engines import FORMATS, get_engine
from govlab.errors import GovlabError
from govlab.policy import Principal
from govlab.search import GovernedSearch, SearchQuery

PRINCIPALS = [
    Principal("admin"),
    Principal("analyst", {"allowed_regions": ["NE", "SW"]}),
    Principal("analyst", {"allowed_regions": []}),
    Principal("clinician", {"id": "C007"}),
    Principal("business_user"),
    Principal("data_modeler"),
]
QUERIES = ["", "asthma", "kowalski", "follow", "new orleans", "zzzz-no-match", "a", "St", "K", "é"]
PAGES = [(1, 20), (2, 7), (50, 20), (3, 200), (10_000, 20)]
SORTS = [None, "-patient_id", "patient_id", "admitted_at"]


def _answer(
    searcher: GovernedSearch, dataset: str, fmt: str, principal: Principal, query: SearchQuery
) -> object:
    """The page without its timing, or the refusal (a masked sort column, ...)."""
    try:
        page = searcher.search(dataset, fmt, principal, query)
    except GovlabError as exc:
        return (type(exc).__name__, str(exc))
    page.pop("tookMs")
    return page


def consistent_total(page: dict[str, Any], exact_total: int) -> bool:
    """A default page's total is the exact total, or a lower bound flagged as one that
    reaches at least the end of the page (``benchmarks.run`` checks the same)."""
    if page.get("totalExact", True):
        return page["total"] == exact_total
    end = (page["page"] - 1) * page["pageSize"] + len(page["items"])
    return end <= page["total"] <= exact_total


def _same_page_bounded_total(default: object, exact: object) -> bool:
    if not isinstance(default, dict) or not isinstance(exact, dict):
        return default == exact
    return default["items"] == exact["items"] and consistent_total(default, exact["total"])


class _WithoutSnapshot:
    """An engine without its Arrow snapshot: ``paging.read_page`` then takes the
    general path (every match's key and sort columns, then the page's rows by key)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def snapshot(self, spec: Any, version: int | None = None) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--dataset", default="healthcare")
    args = parser.parse_args(argv)

    settings = Settings.from_env(args.data_dir)
    fast = GovernedSearch(settings)
    general = GovernedSearch(settings)
    general.engine = lambda fmt: _WithoutSnapshot(fast.engine(fmt))  # type: ignore[method-assign]
    cases = mismatches = 0
    spent = {"fast": 0.0, "general": 0.0}
    for fmt in FORMATS:
        if not get_engine(fmt, settings).exists(args.dataset):
            continue
        for principal, q, (page, size), sort in itertools.product(
            PRINCIPALS, QUERIES, PAGES, SORTS
        ):
            query = SearchQuery.parse(q, page, size, sort, exact_total=True)
            t0 = time.perf_counter()
            a = _answer(fast, args.dataset, fmt, principal, query)
            t1 = time.perf_counter()
            b = _answer(general, args.dataset, fmt, principal, query)
            spent["fast"] += t1 - t0
            spent["general"] += time.perf_counter() - t1
            default = _answer(
                fast, args.dataset, fmt, principal, SearchQuery.parse(q, page, size, sort)
            )
            cases += 1
            if a != b or not _same_page_bounded_total(default, b):
                mismatches += 1
                print(f"MISMATCH {fmt} {principal.role} {principal.attrs} q={q!r} {page}/{size}")
    print(
        f"{cases} cases, {mismatches} mismatches "
        f"(fast path {spent['fast']:.1f} s, general path {spent['general']:.1f} s)"
    )
    return 1 if mismatches or not cases else 0


if __name__ == "__main__":
    raise SystemExit(main())
