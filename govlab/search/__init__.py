"""The governed search: policy + principal -> bound filter -> page -> masks.

``governed`` (prepare: authorize, pin the table version, resolve the sort; run: page,
mask, serialise), ``paging`` (both page paths: the primary-key page read from the
engine's Arrow snapshot, stopping early, and the two-step sorted page), ``text_match``
(the key pass's filter evaluation, cheapest part first, dictionary-aware). The page
cache is the service's (``govlab.service.cache``): it needs Redis.
"""

from govlab.search.governed import (
    MAX_PAGE_SIZE,
    GovernedSearch,
    Prepared,
    SearchQuery,
    SortKey,
    text_filter,
    to_json_rows,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "GovernedSearch",
    "Prepared",
    "SearchQuery",
    "SortKey",
    "text_filter",
    "to_json_rows",
]
