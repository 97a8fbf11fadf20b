"""``govlab demo``: seed a tiny table, then show what each role of its policy sees.

It runs the real path end to end (policy, signed-in principals, pushed-down scan,
masks, the Redis page cache on an embedded server) and prints it for a human.
"""

from __future__ import annotations

from typing import Any

from govlab.config import Settings
from govlab.lab.client import describe_total
from govlab.lab.widgets.state import DEFAULT_ATTRS  # the lab's own example attributes
from govlab.policy import Principal
from govlab.search import GovernedSearch, SearchQuery
from govlab.seeding import seed_table
from govlab.service.cache import PageCache, cached_search
from govlab.service.redis_server import redis_url

SHOWN_ROWS = 3


def run_demo(
    settings: Settings, dataset: str = "healthcare", fmt: str = "delta", q: str = "asthma"
) -> list[dict[str, Any]]:
    """Returns one summary per role (and prints them)."""
    import redis

    info = seed_table(dataset, "tiny", fmt, settings)
    print(f"seeded {dataset} tiny as {fmt}: {info.rows} rows, table version {info.version}")
    client = redis.Redis.from_url(redis_url(settings))
    searcher = GovernedSearch(settings)
    cache = PageCache(client, ttl_s=60)
    summaries = []
    for role in searcher.policies.current(dataset).policy.roles:
        principal = Principal(role.id, DEFAULT_ATTRS.get(role.id, {}), sub=f"demo-{role.id}")
        query = SearchQuery(q=q, page_size=SHOWN_ROWS)
        page, first = cached_search(searcher, cache, dataset, fmt, principal, query)
        _, second = cached_search(searcher, cache, dataset, fmt, principal, query)
        summaries.append(_print_role(role.id, principal, page, q, (first, second)))
    return summaries


def _print_role(
    role: str, principal: Principal, page: dict[str, Any], q: str, cache: tuple[str, str]
) -> dict[str, Any]:
    attrs = f" {dict(principal.attrs)}" if principal.attrs else ""
    print(
        f"\n== {role}{attrs}: {describe_total(page)} rows match {q!r}; "
        f"masked: {', '.join(page['maskedFields']) or 'nothing'}; cache {cache[0]} then {cache[1]}"
    )
    columns = [c for c in page["items"][0]] if page["items"] else []
    shown = [c for c in columns if c in ("name", "ssn", "dob", "address", "region", "clinician_id")]
    for row in page["items"]:
        print("   " + " | ".join(f"{c}={row[c]}" for c in shown))
    return {"role": role, "total": page["total"], "masked": page["maskedFields"], "cache": cache}
