"""The Redis page cache: masked pages only, keyed so no principal gets another's page.

The key hashes every input a page depends on: dataset, format, table version, policy
version, role, the canonical attribute set, the normalised query, sort, page and page
size. A reseed or a policy edit changes a version, so old pages become unreachable at
once (and expire by TTL). Redis trouble never fails a search: it is served from the
tables with ``cache: "bypass"``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import redis

from govlab.policy import Principal
from govlab.search import GovernedSearch, Prepared, SearchQuery

log = logging.getLogger(__name__)

CacheStatus = Literal["hit", "miss", "bypass"]
KEY_PREFIX = "govlab:page:"
DEFAULT_TTL_S = 300


def cache_ttl() -> int:
    return int(os.environ.get("GOVLAB_CACHE_TTL", DEFAULT_TTL_S))


def page_key(prepared: Prepared, principal: Principal) -> str:
    parts = {
        "dataset": prepared.spec.name,
        "format": prepared.engine.name,
        "table": prepared.version,
        "policy": prepared.policy.version,
        "role": prepared.plan.role,
        "attrs": principal.attrs,
        "q": prepared.query.q.lower(),
        "sort": [prepared.sort.column, prepared.sort.descending],
        "page": prepared.query.page,
        "size": prepared.query.page_size,
        "countLimit": prepared.count_limit,
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return KEY_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class PageCache:
    client: redis.Redis | None
    ttl_s: int = DEFAULT_TTL_S

    def get(self, key: str) -> dict[str, Any] | None:
        if self.client is None:
            raise redis.ConnectionError("no cache client")
        raw = self.client.get(key)
        return None if raw is None else json.loads(raw)

    def put(self, key: str, page: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.set(key, json.dumps(page, separators=(",", ":")), ex=self.ttl_s)


def cached_search(
    searcher: GovernedSearch,
    cache: PageCache,
    dataset: str,
    fmt: str,
    principal: Principal,
    query: SearchQuery,
) -> tuple[dict[str, Any], CacheStatus]:
    """Serve a page from the cache when the exact same principal asked the same thing."""
    prepared = searcher.prepare(dataset, fmt, principal, query)
    return cached_run(searcher, cache, prepared, principal)


def cached_run(
    searcher: GovernedSearch, cache: PageCache, prepared: Prepared, principal: Principal
) -> tuple[dict[str, Any], CacheStatus]:
    """The cache around ``searcher.run`` for a request already prepared (and checked)."""
    key = page_key(prepared, principal)
    try:
        page = cache.get(key)
    except redis.RedisError as exc:
        log.warning("page cache unavailable (%s); serving from the tables", type(exc).__name__)
        return searcher.run(prepared), "bypass"
    if page is not None:
        return page, "hit"
    page = searcher.run(prepared)
    try:
        cache.put(key, page)
    except redis.RedisError as exc:
        log.warning("page cache write failed (%s)", type(exc).__name__)
        return page, "bypass"
    return page, "miss"
