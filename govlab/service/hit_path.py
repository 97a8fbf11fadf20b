"""A search answered from the page cache before FastAPI sees the request.

A cache hit is a few microseconds of govlab's own work (a remembered token, a stat of
the policy and table files, a remembered grant, an HMAC, one Redis GET, one queued
audit record), so routing, dependency injection and parameter validation would be
most of its cost. :class:`CacheHitPath` answers first (``api.GovlabAPI``): for a
``GET /search`` whose parameters are in the plain form the route accepts unchanged
and whose page is cached, it sends the stored bytes itself, through the same
functions the route uses (``prepare`` and its authorization, ``page_key``,
``audit_search``). Everything else (a miss, a parameter FastAPI must validate, a
denial, demo headers, Redis trouble) is passed to the app untouched, which answers it
as it always has: the layer can only ever serve what the route would have served.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from govlab.catalog import DATASETS
from govlab.engines import FORMATS
from govlab.policy import Principal
from govlab.search import Prepared, SearchQuery
from govlab.service.cache import CachedPage, CacheStatus, lookup, page_key

if TYPE_CHECKING:
    from govlab.service.api import Services

log = logging.getLogger(__name__)


SEARCH_PATH = "/search"
DEFAULT_FORMAT = "delta"
MAX_Q = 200
MAX_SORT = 80
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 20
_PLAIN_INT = re.compile(r"[1-9][0-9]{0,6}")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
RESOLVED_KEPT = 4096
_KNOWN = frozenset({"dataset", "format", "q", "page", "pageSize", "sort", "exactTotal"})


@dataclass(frozen=True)
class SearchParams:
    dataset: str
    format: str
    q: str = ""
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort: str | None = None
    exact_total: bool = False

    def query(self) -> SearchQuery:
        return SearchQuery.parse(self.q, self.page, self.page_size, self.sort, self.exact_total)


def plain_params(query_string: bytes) -> SearchParams | None:
    """The parameters, if each is given at most once in a form the route takes as it is
    (same decoding as Starlette's); ``None`` leaves validation and its 422 to FastAPI."""
    given: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in _KNOWN:
            if name in given:
                return None
            given[name] = value
    dataset, fmt = given.get("dataset"), given.get("format", DEFAULT_FORMAT)
    if dataset not in DATASETS or fmt not in FORMATS:
        return None
    q, sort = given.get("q", ""), given.get("sort")
    if len(q) > MAX_Q or (sort is not None and len(sort) > MAX_SORT):
        return None
    page = _bounded_int(given.get("page"), 1, MAX_PAGE)
    size = _bounded_int(given.get("pageSize"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    exact = _BOOLS.get(given.get("exactTotal", "false"))
    if page is None or size is None or exact is None:
        return None
    return SearchParams(dataset, fmt, q, page, size, sort, exact)


def _bounded_int(text: str | None, default: int, most: int) -> int | None:
    if text is None:
        return default
    if not _PLAIN_INT.fullmatch(text):
        return None
    value = int(text)
    return value if value <= most else None


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of the one ``Authorization`` header, if that is its form.

    A request with an ``Origin`` header gets none: it goes through the app, so that
    cross-origin answers are decided by its CORS layer alone."""
    found = []
    for name, value in headers:
        if name == b"authorization":
            found.append(value)
        elif name == b"origin":
            return None
    if len(found) != 1:
        return None
    scheme, _, token = found[0].decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def lookup_hit(
    services: Services, prepared: Prepared, principal: Principal
) -> tuple[CachedPage | None, str, bool]:
    """The cached page (if any), its key, and whether Redis answered the lookup."""
    key = page_key(prepared, principal, services.searcher.keys)
    stored, reachable = lookup(services.cache, key)
    return stored, key, reachable


def search_audit_fields(
    services: Services, principal: Principal, prepared: Prepared
) -> dict[str, Any]:
    """What a search's audit record says of the request: who, what, under which filter."""
    return {
        "sub": principal.sub,
        "role": prepared.plan.role,
        "dataset": prepared.spec.name,
        "format": prepared.engine.name,
        **services.audit.query_fields(prepared.query.q),
        "filter": prepared.plan.filter_sql,
    }


def audit_search(
    services: Services, request: dict[str, Any], stored: CachedPage, status: CacheStatus
) -> None:
    """The search's audit record: what was decided and served, never a row value."""
    meta = stored.meta
    services.audit.record(
        "search",
        "ok",
        **request,
        policyVersion=meta["policyVersion"],
        tableVersion=meta["tableVersion"],
        maskedFields=meta["maskedFields"],
        rows=meta["rows"],
        total=meta["total"],
        totalExact=meta["totalExact"],
        cache=status,
    )


@dataclass(frozen=True)
class Resolved:
    """A search request resolved down to its page key (and its audit fields)."""

    principal: Principal
    prepared: Prepared
    key: str
    audit: dict[str, Any]


class CacheHitPath:
    """Serves ``GET /search`` cache hits; the app (``api.GovlabAPI``) does the rest."""

    def __init__(self, services: Services) -> None:
        self.services = services
        # called on the event loop only: no lock
        self._resolved: OrderedDict[tuple[bytes, str], Resolved] = OrderedDict()

    async def serve(self, scope: Scope, send: Send) -> bool:
        """Send the response if this request is a cache hit; whether it was."""
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != SEARCH_PATH:
            return False
        body = self.hit(scope)
        if body is None:
            return False
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-cache", b"HIT"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return True

    def hit(self, scope: Scope) -> bytes | None:
        """The response body when this request's page is cached, else ``None``."""
        started = time.perf_counter()
        services = self.services
        try:
            resolved = self.resolve(scope)
            if resolved is None:
                return None
            stored = lookup(services.cache, resolved.key)[0]
            if stored is None:
                return None
            took_ms = round((time.perf_counter() - started) * 1000, 2)
            audit_search(services, resolved.audit, stored, "hit")
            return stored.response("hit", took_ms)
        except Exception as exc:  # the app answers it, with its own error handling
            log.debug("cache-hit path passed %s to the app", type(exc).__name__)
            return None

    def resolve(self, scope: Scope) -> Resolved | None:
        """Who asks, the request prepared (and authorised), and its page key.

        A request repeated with the same query string and token is resolved once: while
        the token is unexpired and the policy and table it pinned are still the live
        ones (``GovernedSearch.is_current``: a few stats), the same answer holds.
        """
        token = bearer_token(scope.get("headers", []))
        if token is None:
            return None
        query_string = scope.get("query_string", b"")
        services = self.services
        known = self._resolved.get((query_string, token))
        if known is not None:
            services.tokens.verify(token)  # expiry, checked on every use
            if services.searcher.is_current(known.prepared):
                return known
        params = plain_params(query_string)
        if params is None:
            return None
        principal = services.tokens.verify(token)
        prepared = services.searcher.prepare(
            params.dataset, params.format, principal, params.query()
        )
        resolved = Resolved(
            principal,
            prepared,
            page_key(prepared, principal, services.searcher.keys),
            search_audit_fields(services, principal, prepared),
        )
        self._resolved[(query_string, token)] = resolved
        while len(self._resolved) > RESOLVED_KEPT:
            self._resolved.popitem(last=False)
        return resolved
