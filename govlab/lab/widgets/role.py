"""RolePicker: who the lab acts as from here on, and the attributes their token carries.

The roles offered are the ones the (saved) policy defines, each with the policy's
``description`` of it. Attributes are a JSON object per role, pre-filled from
``DEFAULT_ATTRS``; the row filter bound to them is shown at once, and a role whose filter
cannot bind (a missing or mistyped attribute) cannot go on.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w

from govlab.errors import GovlabError
from govlab.lab.widgets._common import Callback, classed, esc
from govlab.lab.widgets.state import LabState


class RolePicker(w.VBox):
    def __init__(self, state: LabState, on_change: Callback | None = None) -> None:
        self.state = state
        self.on_change = on_change
        self.role = classed(w.Dropdown(description="Role", options=[]), "govlab-role")
        self.attrs = classed(
            w.Text(
                description="Attributes",
                placeholder='{"allowed_regions": ["NE"]}',
                continuous_update=True,
                layout=w.Layout(width="60%"),
            ),
            "govlab-attrs",
        )
        self.about = classed(w.HTML(), "govlab-role-about")
        self.bound = classed(w.HTML(), "govlab-role-filter")
        self._syncing = False
        self.role.observe(self._role_changed, names="value")
        self.attrs.observe(self._attrs_changed, names="value")
        super().__init__([self.role, self.about, self.attrs, self.bound])
        classed(self, "govlab-role-picker")
        self.refresh()

    def refresh(self) -> None:
        s = self.state
        roles = s.policy_roles()
        if roles and s.role not in roles:
            s.set_role(roles[0])
        self._syncing = True
        try:
            self.role.options = roles
            self.role.value = s.role if s.role in roles else None
            self.attrs.value = s.attrs_text()
        finally:
            self._syncing = False
        self._render()

    def select(self, role: str, attrs: dict[str, Any] | None = None) -> None:
        """Programmatic choice (notebooks, tests): the same path as the widgets."""
        self.role.value = role
        if attrs is not None:
            self.attrs.value = json.dumps(attrs)

    def _role_changed(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        self.state.set_role(change["new"])
        self._syncing = True
        try:
            self.attrs.value = self.state.attrs_text()
        finally:
            self._syncing = False
        self._render()

    def _attrs_changed(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self.state.set_attrs_text(change["new"])
        self._render()

    def _render(self) -> None:
        s = self.state
        about = s.role_description()
        self.about.value = (
            f'<span class="govlab-role-description">{esc(about)}</span>' if about else ""
        )
        problem = s.role_problem()
        if problem is not None:
            self.bound.value = f'<span class="govlab-error">{esc(problem)}</span>'
        else:
            try:
                plan = s.plan_for(s.role, s.attrs)
            except GovlabError as exc:  # role_problem said it binds; be safe anyway
                self.bound.value = f'<span class="govlab-error">{esc(exc)}</span>'
            else:
                masks = ", ".join(f"{c}: {m.describe()}" for c, m in sorted(plan.masks.items()))
                self.bound.value = (
                    f'Rows: <code class="govlab-filter">{esc(plan.filter_sql)}</code><br>'
                    f"Masks: {esc(masks or 'none')}"
                )
        if self.on_change is not None:
            self.on_change()
