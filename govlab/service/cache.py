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

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import redis

from govlab.config import cache_ttl
from govlab.keys import DerivedKeys
from govlab.policy import Principal
from govlab.policy.casefold import fold
from govlab.search import GovernedSearch, Prepared, SearchQuery

log = logging.getLogger(__name__)

CacheStatus = Literal["hit", "miss", "bypass"]
KEY_PREFIX = "govlab:page:"
DEFAULT_TTL_S = 300
__all__ = [
    "CacheStatus",
    "CachedPage",
    "PageCache",
    "cache_ttl",
    "cached_page",
    "cached_run",
    "cached_search",
    "compute_and_store",
    "lookup",
    "page_key",
]


def page_key(prepared: Prepared, principal: Principal, keys: DerivedKeys) -> str:
    parts = {
        "masks": keys.mask_fingerprint,
        "dataset": prepared.spec.name,
        "format": prepared.engine.name,
        "table": prepared.version,
        "policy": prepared.policy.version,
        "role": prepared.plan.role,
        "attrs": principal.attrs,
        "q": fold(prepared.query.q),  # equal keys exactly for queries that match alike
        "sort": [prepared.sort.column, prepared.sort.descending],
        "page": prepared.query.page,
        "size": prepared.query.page_size,
        "countLimit": prepared.count_limit,
    }
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return KEY_PREFIX + hmac.digest(keys.cache, canonical.encode(), "sha256").hex()


#: Fields of a page that describe how it was computed, not what it holds: kept beside
#: the body (for the audit and ``strategy``), not in it.
_COMPUTED = ("engine", "pushdown", "tookMs")
_AUDITED = ("role", "policyVersion", "tableVersion", "maskedFields", "total", "totalExact")


@dataclass(frozen=True)
class CachedPage:
    """A page as stored: the response body's bytes and the few facts the audit needs.

    A cache hit is served as these bytes, never decoded and re-encoded: ``body`` is the
    public page as JSON without its closing brace, and :meth:`response` appends the
    per-request ``strategy`` and ``tookMs``.
    """

    meta: dict[str, Any]
    body: bytes

    @classmethod
    def of(cls, page: dict[str, Any]) -> CachedPage:
        public = {k: v for k, v in page.items() if k not in _COMPUTED}
        meta = {k: page[k] for k in _AUDITED}
        meta |= {"rows": len(page["items"]), "engine": page["engine"], "pushdown": page["pushdown"]}
        return cls(meta, json.dumps(public, separators=(",", ":")).encode()[:-1])

    def to_bytes(self) -> bytes:
        return json.dumps(self.meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedPage:
        meta, _, body = raw.partition(b"\n")  # compact JSON has no raw newline
        return cls(json.loads(meta), body)

    def page(self) -> dict[str, Any]:
        """The page as a dict, for in-process callers (the notebooks, the pre-warmer)."""
        page = json.loads(self.body + b"}")
        return page | {"engine": self.meta["engine"], "pushdown": self.meta["pushdown"]}

    def response(self, status: CacheStatus, took_ms: float) -> bytes:
        strategy = {
            "cache": status,
            "engine": self.meta["engine"],
            "pushdown": self.meta["pushdown"],
        }
        tail = {"strategy": strategy, "tookMs": took_ms}
        return self.body + b"," + json.dumps(tail, separators=(",", ":")).encode()[1:]


@dataclass
class PageCache:
    client: redis.Redis | None
    ttl_s: int = DEFAULT_TTL_S

    def get(self, key: str) -> CachedPage | None:
        if self.client is None:
            raise redis.ConnectionError("no cache client")
        raw = self.client.get(key)
        return None if raw is None else CachedPage.from_bytes(raw)

    def put(self, key: str, page: CachedPage) -> None:
        if self.client is not None:
            self.client.set(key, page.to_bytes(), ex=self.ttl_s)


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
    page, status = cached_page(searcher, cache, prepared, principal)
    return page.page(), status


def cached_page(
    searcher: GovernedSearch, cache: PageCache, prepared: Prepared, principal: Principal
) -> tuple[CachedPage, CacheStatus]:
    """The stored form of the page: what the API sends as bytes on a hit."""
    key = page_key(prepared, principal, searcher.keys)
    hit, reachable = lookup(cache, key)
    if hit is not None:
        return hit, "hit"
    return compute_and_store(searcher, cache, prepared, key, reachable)


def lookup(cache: PageCache, key: str) -> tuple[CachedPage | None, bool]:
    """The stored page, if any, and whether Redis answered at all."""
    try:
        return cache.get(key), True
    except redis.RedisError as exc:
        log.warning("page cache unavailable (%s); serving from the tables", type(exc).__name__)
        return None, False


def compute_and_store(
    searcher: GovernedSearch, cache: PageCache, prepared: Prepared, key: str, reachable: bool
) -> tuple[CachedPage, CacheStatus]:
    """A miss: run the search, store the page (when Redis answered the lookup)."""
    page = CachedPage.of(searcher.run(prepared))
    if not reachable:
        return page, "bypass"
    try:
        cache.put(key, page)
    except redis.RedisError as exc:
        log.warning("page cache write failed (%s)", type(exc).__name__)
        return page, "bypass"
    return page, "miss"
