"""SearchTable: one page of ``GET /search`` for the acting role, with masked cells marked,
page controls, the total the role may see, and the page cache's HIT / MISS / BYPASS with
a one-line legend and labelled times (what the server spent, what the lab waited).

Cells of masked columns carry ``class="govlab-masked"`` and ``title="masked: <mask>"``;
every value is HTML-escaped. The cache indicator is the server's ``strategy.cache``.

A failed search clears the previous page, total and page controls and says what failed
in words. A search that finds nothing says why when the policy explains it: the query
is matched only against columns the role sees unmasked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from govlab.lab.client import describe_total
from govlab.lab.views import cache_legend, timing_text
from govlab.lab.widgets._common import (
    Callback,
    ClientFactory,
    classed,
    esc,
    failure_html,
    render_rows,
)
from govlab.lab.widgets.state import LabState

CACHE_STATES = ("hit", "miss", "bypass")


class SearchTable(w.VBox):
    def __init__(
        self,
        state: LabState,
        client_factory: ClientFactory,
        on_change: Callback | None = None,
        on_new_query: Callable[[str], None] | None = None,
    ) -> None:
        self.state = state
        self.client_factory = client_factory
        self.on_change = on_change
        self.on_new_query = on_new_query
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
        self.legend = classed(w.HTML(cache_legend()), "govlab-cache-legend")
        self.explain = classed(w.HTML(""), "govlab-search-explain")
        self.table = classed(w.HTML(""), "govlab-results")
        self.error = classed(w.HTML(""), "govlab-search-error")
        self.round_trip_ms: float | None = None
        self.go.on_click(lambda _: self.search())
        self._typing = True
        self.q.observe(lambda _: self._typing and self.search(), names="value")
        self.prev.on_click(lambda _: self.prev_page())
        self.next.on_click(lambda _: self.next_page())
        super().__init__(
            [
                w.HBox([self.q, self.go]),
                w.HBox([self.prev, self.page_label, self.next, self.total, self.cache, self.took]),
                self.legend,
                self.error,
                self.explain,
                self.table,
            ]
        )
        classed(self, "govlab-search")
        self.render()

    # ------------------------------------------------------------------ actions
    def search(self, q: str | None = None) -> dict[str, Any] | None:
        """A new query starts at page 1 (and the role comparison follows it)."""
        if q is not None and q != self.q.value:
            self._typing = False
            try:
                self.q.value = q
            finally:
                self._typing = True
        result = self.load(1)
        if self.on_new_query is not None:
            self.on_new_query(self.q.value)
        return result

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
        client = self.client_factory(s.role, s.attrs)
        started = time.perf_counter()
        try:
            result = client.search(
                s.dataset, s.format, q=s.search_q, page=page, page_size=s.page_size
            )
        except Exception as exc:
            return self._failed(failure_html(exc, client))
        self.round_trip_ms = (time.perf_counter() - started) * 1000
        cache = str(result.get("strategy", {}).get("cache", "bypass")).lower()
        s.set_page(result, cache)
        self.error.value = ""
        self.render()
        self._changed()
        return result

    def _failed(self, message_html: str) -> None:
        """Nothing of the previous search stays: no rows, no total, no enabled Next."""
        self.state.clear_page()
        self.round_trip_ms = None
        self.render()
        self.error.value = message_html
        self._changed()
        return None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

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
            for label in (self.page_label, self.total, self.took):
                label.value = ""
            self.cache.value = self.table.value = self.explain.value = ""
            self.prev.disabled = self.next.disabled = True
            return
        of = f"{self.pages:,}" + ("" if page.get("totalExact", True) else "+")
        self.page_label.value = f"page {page['page']} of {of}"
        self.total.value = f"{describe_total(page)} rows"
        self.took.value = timing_text(page.get("tookMs"), self.round_trip_ms)
        cache = s.last_cache if s.last_cache in CACHE_STATES else "bypass"
        self.cache.value = (
            f'<span class="govlab-cache-{cache}" title="Redis page cache">'
            f"cache: {cache.upper()}</span>"
        )
        self.prev.disabled = page["page"] <= 1
        self.next.disabled = not self.more_pages
        self.explain.value = explain_html(s, page)
        self.table.value = render_rows(page["items"], self.masked_columns())


def explain_html(s: LabState, page: dict[str, Any]) -> str:
    """Why a search found nothing, when the policy is why: the query is matched only
    against columns this role sees unmasked (a masked column is never searched)."""
    if page.get("total") or not s.search_q.strip():
        return ""
    searched, skipped = s.search_columns()
    if not skipped:
        return ""
    names = ", ".join(f"<code>{esc(c)}</code>" for c in skipped)
    verb = "is" if len(skipped) == 1 else "are"
    only = ", ".join(esc(c) for c in searched) or "no column"
    return (
        f'<div class="govlab-explain">No rows for <b>{esc(s.search_q)}</b> as '
        f"<b>{esc(s.role)}</b>. {names} {verb} masked for {esc(s.role)} and {verb} not "
        f"searched: the query is matched only against {only}. Compare roles below to see "
        "who finds it.</div>"
    )
