"""ValidateView: a dry run of ``GET /validate`` for the acting role: the rows left after
RLS, the bound row filter, the masked columns and a 5-row masked preview.

Before the first hydration there is no table to count; the view then reports the bound
filter and masks from the policy alone and says the row count waits for Hydrate.
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
    error_text,
    esc,
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
        try:
            result = self.client_factory(s.role, s.attrs).validate(s.dataset, s.format)
        except ApiError as exc:
            if exc.status != 404:
                return self._failed(error_text(exc))
            try:
                plan = s.plan_for(s.role, s.attrs)
            except GovlabError as bind_error:
                return self._failed(str(bind_error))
            result = {
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
        except Exception as exc:
            return self._failed(error_text(exc))
        s.set_validated(result)
        self.render()
        if self.on_change is not None:
            self.on_change()
        return result

    def _failed(self, message: str) -> None:
        self.state.validated = None
        self.state.validated_key = None
        self.render()
        self.error.value = f'<span class="govlab-error">{esc(message)}</span>'
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
        rows = result.get("rowsVisible")
        table = (
            f" (table version {esc(result['tableVersion'])})"
            if result.get("tableVersion") is not None
            else ""
        )
        self.rows_label.value = (
            f"Rows after RLS: <b>{rows:,}</b>{table}"
            if rows is not None
            else f"Rows after RLS: - <i>({esc(result.get('note', ''))})</i>"
        )
        self.filter_label.value = (
            f"Row filter for <b>{esc(result['role'])}</b>: "
            f'<code class="govlab-filter">{esc(result["rowFilter"])}</code>'
        )
        masked = result.get("maskedColumns", {})
        listed = ", ".join(f"<code>{esc(c)}</code> ({esc(m)})" for c, m in masked.items())
        self.masks_label.value = f"Masked columns: {listed or 'none'}"
        items = result.get("preview") or []
        self.preview.value = render_rows(items, masked) if items else ""
