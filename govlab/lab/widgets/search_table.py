"""SearchTable: one page of ``GET /search`` for the acting role, with masked cells marked,
page controls, the total the role may see, and the page cache's HIT / MISS / BYPASS.

Cells of masked columns carry ``class="govlab-masked"`` and ``title="masked: <mask>"``;
every value is HTML-escaped. The cache indicator is the server's ``strategy.cache``.
"""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as w

from govlab.lab.client import describe_total
from govlab.lab.widgets._common import (
    Callback,
    ClientFactory,
    classed,
    error_text,
    esc,
    render_rows,
)
from govlab.lab.widgets.state import LabState

CACHE_STATES = ("hit", "miss", "bypass")


class SearchTable(w.VBox):
    def __init__(
        self, state: LabState, client_factory: ClientFactory, on_change: Callback | None = None
    ) -> None:
        self.state = state
        self.client_factory = client_factory
        self.on_change = on_change
        self.q = classed(
            w.Text(
                value=state.search_q,
                placeholder="search terms, e.g. asthma",
                continuous_update=False,
            ),
            "govlab-search-q",
        )
        self.go = classed(w.Button(description="Search", icon="search"), "govlab-search-go")
        self.prev = classed(w.Button(description="Prev", icon="arrow-left"), "govlab-page-prev")
        self.next = classed(w.Button(description="Next", icon="arrow-right"), "govlab-page-next")
        self.page_label = classed(w.Label(""), "govlab-page")
        self.total = classed(w.Label(""), "govlab-total")
        self.cache = classed(w.HTML(""), "govlab-cache")
        self.took = classed(w.Label(""), "govlab-took")
        self.table = classed(w.HTML(""), "govlab-results")
        self.error = classed(w.HTML(""), "govlab-search-error")
        self.go.on_click(lambda _: self.search())
        self._typing = True
        self.q.observe(lambda _: self._typing and self.search(), names="value")
        self.prev.on_click(lambda _: self.prev_page())
        self.next.on_click(lambda _: self.next_page())
        super().__init__(
            [
                w.HBox([self.q, self.go]),
                w.HBox([self.prev, self.page_label, self.next, self.total, self.cache, self.took]),
                self.error,
                self.table,
            ]
        )
        classed(self, "govlab-search")
        self.render()

    # ------------------------------------------------------------------ actions
    def search(self, q: str | None = None) -> dict[str, Any] | None:
        """A new query starts at page 1."""
        if q is not None and q != self.q.value:
            self._typing = False
            try:
                self.q.value = q
            finally:
                self._typing = True
        return self.load(1)

    def next_page(self) -> dict[str, Any] | None:
        if not self.more_pages:
            return None
        return self.load(self.state.search_page + 1)

    def prev_page(self) -> dict[str, Any] | None:
        if self.state.search_page <= 1:
            return None
        return self.load(self.state.search_page - 1)

    def load(self, page: int) -> dict[str, Any] | None:
        s = self.state
        if s.dataset is None:
            return None
        s.search_q = self.q.value
        try:
            result = self.client_factory(s.role, s.attrs).search(
                s.dataset, s.format, q=s.search_q, page=page, page_size=s.page_size
            )
        except Exception as exc:
            self.error.value = f'<span class="govlab-error">{esc(error_text(exc))}</span>'
            return None
        cache = str(result.get("strategy", {}).get("cache", "bypass")).lower()
        s.set_page(result, cache)
        self.error.value = ""
        self.render()
        if self.on_change is not None:
            self.on_change()
        return result

    # ------------------------------------------------------------------ view
    @property
    def pages(self) -> int:
        page = self.state.last_page
        if not page:
            return 1
        return max(1, math.ceil(page["total"] / max(1, page["pageSize"])))

    @property
    def more_pages(self) -> bool:
        """Whether Next can lead somewhere: beyond the known pages, a lower-bound total
        (counting stopped at the server's limit) means more rows may follow."""
        page = self.state.last_page or {}
        if not page:
            return False
        if page["page"] < self.pages:
            return True
        return not page.get("totalExact", True) and len(page["items"]) == page["pageSize"]

    def masked_columns(self) -> dict[str, str]:
        """Masked column -> its mask, for the cell titles; the server's list decides which."""
        page = self.state.last_page or {}
        described = self.state.mask_descriptions()
        return {c: described.get(c, "masked") for c in page.get("maskedFields", [])}

    def render(self) -> None:
        s = self.state
        page = s.last_page if s.completed("search") else None
        if page is None:
            self.page_label.value = ""
            self.total.value = ""
            self.took.value = ""
            self.cache.value = ""
            self.table.value = ""
            self.prev.disabled = self.next.disabled = True
            return
        of = f"{self.pages:,}" + ("" if page.get("totalExact", True) else "+")
        self.page_label.value = f"page {page['page']} of {of}"
        self.total.value = f"{describe_total(page)} rows"
        self.took.value = f"{page.get('tookMs', 0)} ms"
        cache = s.last_cache if s.last_cache in CACHE_STATES else "bypass"
        self.cache.value = (
            f'<span class="govlab-cache-{cache}" title="Redis page cache">'
            f"cache: {cache.upper()}</span>"
        )
        self.prev.disabled = page["page"] <= 1
        self.next.disabled = not self.more_pages
        self.table.value = render_rows(page["items"], self.masked_columns())
