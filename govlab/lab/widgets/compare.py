"""CompareView: the same query for two or three roles, side by side.

For each compared role the view asks the API with *that role's own token*: ``/validate``
(rows visible, bound filter, masks) and ``/search`` (its page for the query). It shows

* a bar chart of rows visible per role (of the table's rows; at Search, the matches of
  the rows visible),
* each role's first rows, masked cells marked, next to each other,
* one record column by column: the raw value where that role's policy leaves the
  column unmasked (as the server sent it to that role), the masked value where it does
  not, or that the role cannot see the row at all.

Nothing is unmasked on the client: a raw value on screen is one the API served raw.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from govlab.errors import GovlabError
from govlab.generators import DATASETS
from govlab.lab.client import ApiError
from govlab.lab.compare import (
    COMPARE_PAGE_SIZE,
    MAX_COMPARED,
    SHOWN_ROWS,
    RoleView,
    choose_record,
    record_cells,
)
from govlab.lab.views import Bar, bar_chart, count_text, record_table
from govlab.lab.widgets._common import ClientFactory, classed, error_text, esc, render_rows
from govlab.lab.widgets.state import LabState


class CompareView(w.VBox):
    """``mode`` is ``validate`` (every row, no query) or ``search`` (the current query)."""

    def __init__(self, state: LabState, client_factory: ClientFactory, mode: str) -> None:
        self.state = state
        self.client_factory = client_factory
        self.mode = mode
        self.views: list[RoleView] = []
        self.query = ""
        self.picker = classed(
            w.SelectMultiple(options=[], rows=5, description="Roles"), "govlab-compare-roles"
        )
        self.run_button = classed(
            w.Button(description="Compare roles", icon="columns", layout=w.Layout(width="auto")),
            "govlab-compare-run",
        )
        self.note = classed(w.HTML(), "govlab-compare-note")
        self.bars = classed(w.HTML(), "govlab-compare-bars")
        self.sides = classed(w.HTML(), "govlab-compare-sides-host")
        self.record = classed(w.HTML(), "govlab-record")
        self.run_button.on_click(lambda _: self.run())
        self._syncing = False
        self.picker.observe(self._picked, names="value")
        title = w.HTML(
            "<b>Compare roles</b>: the same "
            + ("query" if mode == "search" else "table")
            + f" for up to {MAX_COMPARED} roles, each asked with its own token."
        )
        controls = w.HBox([self.picker, self.run_button])
        super().__init__([title, controls, self.note, self.bars, self.sides, self.record])
        classed(self, "govlab-compare", f"govlab-compare-{mode}")

    # ------------------------------------------------------------------ roles
    def refresh_roles(self) -> None:
        """Offer the roles that bind with the lab's attributes; keep the learner's pick."""
        s = self.state
        options = list(s.plans())
        chosen = [r for r in s.roles_to_compare() if r in options]
        self._syncing = True
        try:
            self.picker.options = options
            self.picker.value = tuple(chosen)
        finally:
            self._syncing = False

    def _picked(self, change: dict[str, Any]) -> None:
        """A learner's pick is remembered (until the acting role changes)."""
        if not self._syncing:
            self.state.compare_roles = list(change["new"]) or None

    def selected(self) -> list[str]:
        """The roles to compare, at most MAX_COMPARED."""
        return self.state.roles_to_compare()[:MAX_COMPARED]

    # ------------------------------------------------------------------ run
    def run(self, q: str | None = None) -> list[RoleView]:
        """Ask the API as each compared role; render everything from its answers."""
        s = self.state
        if s.dataset is None:
            return []
        if q is not None:
            self.query = q if self.mode == "search" else ""
        roles = self.selected()
        self.views = [self._ask(role) for role in roles]
        too_many = len(self.state.compare_roles or []) > MAX_COMPARED
        self.note.value = (
            f"Showing the first {MAX_COMPARED} roles picked." if too_many else ""
        ) + self._errors_html()
        self.render()
        return self.views

    def _ask(self, role: str) -> RoleView:
        s = self.state
        assert s.dataset is not None
        attrs = dict(s.role_attrs.get(role, {}))
        client = self.client_factory(role, attrs)
        view = RoleView(role, attrs)
        try:
            self._dry_run(client, view)
            if view.visible is not None:
                view.page = client.search(
                    s.dataset, s.format, q=self.query, page=1, page_size=COMPARE_PAGE_SIZE
                )
        except Exception as exc:
            view.error = error_text(exc, client.base_url)
        return view

    def _dry_run(self, client: Any, view: RoleView) -> None:
        """Rows visible, filter and masks from ``/validate``; without a table (404) the
        filter and masks come from the policy and there are no rows to show."""
        s = self.state
        assert s.dataset is not None
        try:
            result = client.validate(s.dataset, s.format)
        except ApiError as exc:
            if exc.status != 404:
                raise
            try:
                plan = s.plan_for(view.role, view.attrs)
            except GovlabError as bind_error:
                view.error = str(bind_error)
                return
            view.filter = plan.filter_sql
            view.masks = {c: m.describe() for c, m in sorted(plan.masks.items())}
            return
        view.visible = int(result["rowsVisible"])
        view.filter = result["rowFilter"]
        view.masks = dict(result.get("maskedColumns", {}))

    def _errors_html(self) -> str:
        failed = [v for v in self.views if v.error]
        items = "".join(f"<li><b>{esc(v.role)}</b>: {esc(v.error)}</li>" for v in failed)
        return f'<ul class="govlab-error">{items}</ul>' if items else ""

    # ------------------------------------------------------------------ view
    def clear(self) -> None:
        self.views = []
        self.bars.value = self.sides.value = self.record.value = self.note.value = ""

    def render(self) -> None:
        ok = [v for v in self.views if v.error is None]
        self.bars.value = bar_chart(self._bars(ok), self._caption()) if ok else ""
        self.sides.value = self._sides_html(ok)
        self.record.value = self._record_html(ok)

    def _caption(self) -> str:
        if self.mode == "search":
            q = self.query or "(every row)"
            return f"Dark: rows matching {q!r}; light: rows the role may see at all."
        return "Dark: rows the role may see after its row filter; light: the table's rows."

    def _bars(self, views: list[RoleView]) -> list[Bar]:
        table = self.state.table() or {}
        total = table.get("rows")
        bars = []
        for v in views:
            if self.mode == "search":
                label = f"{count_text(v.matches, v.exact)} of {count_text(v.visible)} visible"
                bars.append(Bar(v.role, v.matches, v.visible, v.exact, label))
            else:
                of = f" of {total:,}" if total is not None else ""
                bars.append(Bar(v.role, v.visible, total, True, f"{count_text(v.visible)}{of}"))
        return bars

    def _sides_html(self, views: list[RoleView]) -> str:
        panels = "".join(self._side(v) for v in views)
        return f'<div class="govlab-compare-sides">{panels}</div>' if panels else ""

    def _side(self, v: RoleView) -> str:
        attrs = ", ".join(f"{k}={val}" for k, val in sorted(v.attrs.items()))
        shown = v.items[:SHOWN_ROWS]
        rows = render_rows(shown, v.masks) if v.page is not None else "<i>no table yet</i>"
        masked = ", ".join(sorted(v.masks)) or "none"
        return (
            f'<div class="govlab-compare-side" data-role="{esc(v.role)}">'
            f"<h4>{esc(v.role)}{' (' + esc(attrs) + ')' if attrs else ''}</h4>"
            f'<div><code class="govlab-filter">{esc(v.filter)}</code></div>'
            f'<div class="govlab-compare-counts">{esc(self._counts(v))}</div>'
            f"<div>masked: {esc(masked)}</div>{rows}</div>"
        )

    def _counts(self, v: RoleView) -> str:
        if self.mode == "search":
            return f"{count_text(v.matches, v.exact)} match; {count_text(v.visible)} visible"
        return f"{count_text(v.visible)} rows visible"

    def _record_html(self, views: list[RoleView]) -> str:
        s = self.state
        if s.dataset is None or not views:
            return ""
        spec = DATASETS[s.dataset]
        key = choose_record(views, spec.primary_key, s.role)
        if key is None:
            return ""
        hidden = "not in this role's results" if self.mode == "search" else "row filtered out"
        cells = record_cells(views, spec.primary_key, key, spec.schema.names, hidden)
        roles = [v.role for v in views]
        return (
            "<b>One record, column by column</b>: green is raw (the role's policy leaves "
            "the column unmasked, so the API sent it raw to that role), amber is masked."
            + record_table(spec.primary_key, key, roles, spec.schema.names, cells)
        )
