"""ValidateView: a dry run of ``GET /validate`` for the acting role: the rows left after
RLS out of the table's rows ("18 of 1,000 rows"), the bound row filter, the masked
columns and a 5-row masked preview.

Before the first hydration there is no table to count; the view then reports the bound
filter and masks from the policy alone and says the row count waits for Hydrate. A
validation remembers the table version it read: when the lab learns of a newer one (a
seed finished), the stepper runs it again on entering, so Back never shows "no table
yet" after a seed.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from govlab.errors import GovlabError
from govlab.lab.client import ApiError
from govlab.lab.widgets._common import (
    Callback,
    ClientFactory,
    classed,
    esc,
    failure_html,
    render_rows,
)
from govlab.lab.widgets.state import LabState


class ValidateView(w.VBox):
    def __init__(
        self, state: LabState, client_factory: ClientFactory, on_change: Callback | None = None
    ) -> None:
        self.state = state
        self.client_factory = client_factory
        self.on_change = on_change
        self.run_button = classed(
            w.Button(description="Validate", icon="check"), "govlab-validate-run"
        )
        self.run_button.on_click(lambda _: self.run())
        self.rows_label = classed(w.HTML(), "govlab-validate-rows")
        self.filter_label = classed(w.HTML(), "govlab-validate-filter")
        self.masks_label = classed(w.HTML(), "govlab-validate-masks")
        self.preview = classed(w.HTML(), "govlab-validate-preview")
        self.error = classed(w.HTML(), "govlab-validate-error")
        super().__init__(
            [
                self.run_button,
                self.error,
                self.rows_label,
                self.filter_label,
                self.masks_label,
                self.preview,
            ]
        )
        classed(self, "govlab-validate")
        self.render()

    def run(self) -> dict[str, Any] | None:
        s = self.state
        if s.dataset is None:
            return None
        client = self.client_factory(s.role, s.attrs)
        try:
            result = client.validate(s.dataset, s.format)
        except ApiError as exc:
            if exc.status != 404:
                return self._failed(failure_html(exc, client))
            result = self._without_table()
            if result is None:
                return None
            s.note_table(s.dataset, s.format, None)
        except Exception as exc:
            return self._failed(failure_html(exc, client))
        s.set_validated(result)
        self.render()
        if self.on_change is not None:
            self.on_change()
        return result

    def _without_table(self) -> dict[str, Any] | None:
        """No table yet: what the policy alone says (bound locally, like the preview)."""
        s = self.state
        try:
            plan = s.plan_for(s.role, s.attrs)
        except GovlabError as bind_error:
            return self._failed(f'<span class="govlab-error">{esc(bind_error)}</span>')
        return {
            "dataset": s.dataset,
            "format": s.format,
            "role": plan.role,
            "rowsVisible": None,
            "rowFilter": plan.filter_sql,
            "maskedColumns": {c: m.describe() for c, m in sorted(plan.masks.items())},
            "preview": [],
            "tableVersion": None,
            "policyVersion": s.policy_version,
            "note": f"no {s.format} table yet: Hydrate it to see rows",
        }

    def _failed(self, message_html: str) -> None:
        self.state.validated = None
        self.state.validated_key = None
        self.render()
        self.error.value = message_html
        if self.on_change is not None:
            self.on_change()
        return None

    def render(self) -> None:
        s = self.state
        self.error.value = ""
        result = s.validated if s.completed("validate") else None
        if result is None:
            self.rows_label.value = self.filter_label.value = ""
            self.masks_label.value = self.preview.value = ""
            return
        self.rows_label.value = rows_html(result, s.table())
        self.filter_label.value = (
            f"Row filter for <b>{esc(result['role'])}</b>: "
            f'<code class="govlab-filter">{esc(result["rowFilter"])}</code>'
        )
        masked = result.get("maskedColumns", {})
        listed = ", ".join(f"<code>{esc(c)}</code> ({esc(m)})" for c, m in masked.items())
        self.masks_label.value = f"Masked columns: {listed or 'none'}"
        items = result.get("preview") or []
        self.preview.value = render_rows(items, masked) if items else ""


def rows_html(result: dict[str, Any], table: dict[str, Any] | None) -> str:
    """``Rows after RLS: 18 of 1,000 (table version 0)``; the "of" only when the lab
    knows the size of that very table version."""
    rows = result.get("rowsVisible")
    if rows is None:
        return f"Rows after RLS: - <i>({esc(result.get('note', ''))})</i>"
    version = result.get("tableVersion")
    total = None
    if table and table.get("tableVersion") == version and table.get("rows") is not None:
        total = int(table["rows"])
    of = f" of {total:,}" if total is not None else ""
    return f"Rows after RLS: <b>{rows:,}</b>{of} rows (table version {esc(version)})"
