"""The Redis page cache: masked pages only, keyed so no principal gets another's page.

The key is an HMAC (under the HKDF-derived cache key) of every input a page depends
on: dataset, format, table version, policy version, role, the canonical attribute set,
the normalised query, sort, page and page size, and a fingerprint of the masking keys.
A reseed, a policy edit or a key rotation changes an input, so old pages become
unreachable at once (and expire by TTL); a key name reveals none of its inputs.
Redis trouble never fails a search: it is served from the tables with
``cache: "bypass"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import redis

from govlab.config import cache_ttl
from govlab.keys import DerivedKeys
from govlab.policy import Principal
from govlab.search import GovernedSearch, Prepared, SearchQuery

log = logging.getLogger(__name__)

CacheStatus = Literal["hit", "miss", "bypass"]
KEY_PREFIX = "govlab:page:"
DEFAULT_TTL_S = 300
__all__ = ["CacheStatus", "PageCache", "cache_ttl", "cached_run", "cached_search", "page_key"]


def page_key(prepared: Prepared, principal: Principal, keys: DerivedKeys) -> str:
    parts = {
        "masks": keys.mask_fingerprint,
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
    digest = hmac.new(keys.cache, canonical.encode(), hashlib.sha256).hexdigest()
    return KEY_PREFIX + digest


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
    key = page_key(prepared, principal, searcher.keys)
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
