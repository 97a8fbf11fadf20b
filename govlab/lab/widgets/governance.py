"""GovernanceEditor (the policy YAML, validated as you type) and GovernancePreview (what
each role of that text binds to: its row filter as SQL and the mask of each column).

The editor is enabled only when the server says the acting role may edit policies
(``canEdit`` of ``GET /policies/{dataset}``, i.e. the role's ``can_edit_policies``);
otherwise it is read-only and Save stays disabled. Saving is ``PUT /policies/{dataset}``,
which validates again: the server, not this view, is the authority.

For trainers: *What if?* sends the unsaved draft to ``POST /policies/{dataset}/whatif``
and shows, per role, rows and masked columns under the saved policy and under the
draft; *Reset to shipped* stores the shipped policy as a new revision (the API is
shared by every learner, so edits otherwise stay for all of them).
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w

from govlab.errors import GovlabError
from govlab.lab.views import whatif_table
from govlab.lab.widgets._common import (
    Callback,
    ClientFactory,
    classed,
    error_text,
    esc,
    failure_html,
)
from govlab.lab.widgets.state import STAGES, LabState


class GovernanceEditor(w.VBox):
    def __init__(
        self,
        state: LabState,
        client_factory: ClientFactory,
        on_change: Callback | None = None,
        preview: GovernancePreview | None = None,
    ) -> None:
        self.state = state
        self.client_factory = client_factory
        self.on_change = on_change
        self.preview = preview
        self.mode = classed(w.HTML(), "govlab-policy-mode")
        self.editor = classed(
            w.Textarea(
                rows=18,
                continuous_update=True,
                disabled=True,
                layout=w.Layout(width="auto", max_width="100%"),
                placeholder="the policy YAML",
            ),
            "govlab-policy-editor",
        )
        self.status = classed(w.HTML(), "govlab-policy-status")
        self.save = classed(
            w.Button(description="Save policy", icon="save", disabled=True), "govlab-policy-save"
        )
        self.revert = classed(
            w.Button(description="Revert", icon="undo", disabled=True), "govlab-policy-revert"
        )
        self.whatif_button = classed(
            w.Button(description="What if?", icon="balance-scale", disabled=True),
            "govlab-policy-whatif",
        )
        self.reset = classed(
            w.Button(description="Reset to shipped", icon="history", disabled=True),
            "govlab-policy-reset",
        )
        for button in (self.save, self.revert, self.whatif_button, self.reset):
            button.layout.width = "auto"
        self.shipped = classed(w.HTML(), "govlab-policy-shipped")
        self.whatif = classed(w.HTML(), "govlab-whatif")
        self.save.on_click(lambda _: self.save_policy())
        self.revert.on_click(lambda _: self.revert_policy())
        self.whatif_button.on_click(lambda _: self.run_whatif())
        self.reset.on_click(lambda _: self.reset_policy())
        self.editor.observe(self._edited, names="value")
        self._loading = False
        self._live_is_shipped: bool | None = None
        buttons = w.HBox([self.save, self.revert, self.whatif_button, self.reset])
        super().__init__(
            [self.mode, self.editor, buttons, self.status, self.shipped, self.whatif],
            layout=w.Layout(width="100%"),
        )
        classed(self, "govlab-governance-editor")

    # ------------------------------------------------------------------ server
    def load(self, force: bool = False) -> bool:
        """Read the live policy as the acting role; keep unsaved edits unless forced."""
        s = self.state
        if s.dataset is None:
            self._show_error("choose a dataset first")
            return False
        fresh = s.policy_dataset == s.dataset and s.policy_loaded_as == s.role
        if fresh and not force:
            self._render()
            return True
        client = self.client_factory(s.role, s.attrs)
        try:
            body = client.policy(s.dataset)
        except Exception as exc:
            s.policy_text = s.policy_saved_text = s.policy_dataset = None
            s.can_edit = False
            reason = error_text(exc, client.base_url)
            self._show_error(f"Cannot read the {s.dataset} policy as {s.role}. {reason}")
            return False
        s.policy_loaded(s.dataset, body["yaml"], body["policyVersion"], body["canEdit"], s.role)
        self._live_is_shipped = self._is_shipped(client, s.dataset)
        self.whatif.value = ""
        self._render()
        return True

    def _is_shipped(self, client: Any, dataset: str) -> bool | None:
        try:
            return bool(client.shipped_policy(dataset)["live"])
        except Exception:  # shown as "unknown"; the editor works without it
            return None

    def save_policy(self) -> bool:
        s = self.state
        if not (s.can_edit and s.policy_text is not None and s.dataset is not None):
            return False
        text = s.policy_text
        client = self.client_factory(s.role, s.attrs)
        try:
            body = client.put_policy(s.dataset, text)
        except Exception as exc:
            reasons = getattr(exc, "reasons", None) or []
            self._set_status(error_text(exc), [str(r) for r in reasons], ok=False)
            return False
        s.policy_saved(text, body["policyVersion"])
        self._live_is_shipped = self._is_shipped(client, s.dataset)
        self._render(saved=body.get("revision"))
        return True

    def reset_policy(self) -> bool:
        """Store the shipped policy as the next revision (an editor's act, on the server)."""
        s = self.state
        if not (s.can_edit and s.dataset is not None):
            return False
        client = self.client_factory(s.role, s.attrs)
        try:
            body = client.reset_policy(s.dataset)
        except Exception as exc:
            self._set_status(error_text(exc, client.base_url), [], ok=False)
            return False
        s.policy_saved(body["yaml"], body["policyVersion"])
        self._live_is_shipped = True
        self.whatif.value = ""
        self._render()
        self._set_status(
            f"Reset to the shipped policy: revision {body['revision']} "
            f"(version {body['policyVersion']}).",
            [],
            ok=True,
        )
        return True

    def run_whatif(self) -> dict[str, Any] | None:
        """Rows and masks per role, saved against the draft in the editor (nothing stored)."""
        s = self.state
        if not (s.can_edit and s.dataset is not None and s.policy_text and not s.policy_errors):
            return None
        client = self.client_factory(s.role, s.attrs)
        try:
            result = client.whatif(s.dataset, s.policy_text, s.format, s.role_attrs)
        except Exception as exc:
            self.whatif.value = failure_html(exc, client)
            return None
        note = ""
        if result.get("tableVersion") is None:
            note = f" No {s.format} table yet: rows are counted once it is hydrated."

        self.whatif.value = (
            f"<b>What if you saved this draft?</b> Per role, against the saved policy "
            f"(table version {esc(result.get('tableVersion'))}).{esc(note)}" + whatif_table(result)
        )
        return result

    def revert_policy(self) -> None:
        if self.state.policy_saved_text is not None:
            self.state.edit_policy(self.state.policy_saved_text)
            self._render()

    # ------------------------------------------------------------------ view
    def _edited(self, change: dict[str, Any]) -> None:
        if self._loading:
            return
        self.state.edit_policy(change["new"])
        self.whatif.value = ""  # it answered another draft
        self._render(from_editor=True)

    def _render(self, saved: int | None = None, from_editor: bool = False) -> None:
        s = self.state
        if not from_editor and s.policy_text is not None and self.editor.value != s.policy_text:
            self._loading = True
            try:
                self.editor.value = s.policy_text
            finally:
                self._loading = False
        self.editor.disabled = not s.can_edit
        self.mode.value = mode_html(s)
        # before the status: a reader who sees "Saved" must see the note it goes with
        # (each widget's update is its own message, applied in the order sent)
        self.shipped.value = self._shipped_html()
        if s.policy_errors:
            self._set_status("The policy is not valid:", s.policy_errors, ok=False)
        elif saved is not None:
            self._set_status(f"Saved as revision {saved} (version {s.policy_version}).", [], True)
        elif s.policy_dirty:
            self._set_status("Valid. Save it to continue, or Revert.", [], ok=True)
        else:
            self._set_status(f"Valid; the live policy (version {s.policy_version}).", [], True)
        self.save.disabled = not (s.can_edit and s.policy_dirty and not s.policy_errors)
        self.revert.disabled = not s.policy_dirty
        self.whatif_button.disabled = not (s.can_edit and s.policy_dirty and not s.policy_errors)
        self.reset.disabled = not s.can_edit or self._live_is_shipped is True
        if self.preview is not None:
            self.preview.refresh()
        if self.on_change is not None:
            self.on_change()

    def _shipped_html(self) -> str:
        if self._live_is_shipped is None:
            return ""
        if self._live_is_shipped:
            text = "The live policy is the shipped one (governance/)."
        else:
            text = "The live policy was edited; Reset to shipped restores governance/'s text."
        return f'<span class="govlab-shipped-note">{esc(text)}</span>'

    def _set_status(self, headline: str, reasons: list[str], ok: bool) -> None:
        cls = "govlab-policy-ok" if ok else "govlab-policy-errors"
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons)
        listed = f"<ul>{items}</ul>" if items else ""
        self.status.value = f'<div class="{cls}">{esc(headline)}{listed}</div>'

    def _show_error(self, message: str) -> None:
        self.editor.disabled = True
        self.save.disabled = self.revert.disabled = True
        self.whatif_button.disabled = self.reset.disabled = True
        self._set_status(message, [], ok=False)
        if self.preview is not None:
            self.preview.refresh()
        if self.on_change is not None:
            self.on_change()


class GovernancePreview(w.VBox):
    """Per role of the editor's policy: the row filter bound to that role's attributes
    (as SQL text) and the mask per column. Computed locally, so it follows every edit."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.table = classed(w.HTML(), "govlab-preview")
        super().__init__([self.table])
        classed(self, "govlab-governance-preview")
        self.refresh()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per role: id, description, canEdit, attrs, filter (SQL) or error, masks."""
        s = self.state
        loaded = s.parsed_policy()
        if loaded is None:
            return []
        out = []
        for role in loaded.policy.roles:
            attrs = s.role_attrs.get(role.id, {})
            row: dict[str, Any] = {
                "role": role.id,
                "description": role.description or "",
                "canEdit": role.can_edit_policies,
                "attrs": attrs,
                "masks": {c: m.describe() for c, m in sorted(role.column_masks.items())},
            }
            try:
                row["filter"] = s.plan_for(role.id, attrs).filter_sql
            except GovlabError as exc:
                row["error"] = str(exc)
            out.append(row)
        return out

    def refresh(self) -> None:
        rows = self.rows()
        if not rows:
            msg = "no valid policy to preview" if self.state.policy_text else "no policy loaded"
            self.table.value = f'<div class="govlab-preview-empty">{esc(msg)}</div>'
            return
        body = []
        for row in rows:
            if "filter" in row:
                bound = f'<code class="govlab-filter">{esc(row["filter"])}</code>'
            else:
                bound = f'<span class="govlab-error">denied: {esc(row["error"])}</span>'
            masks = "<br>".join(f"<code>{esc(c)}</code>: {esc(m)}" for c, m in row["masks"].items())
            attrs = esc(json.dumps(row["attrs"])) if row["attrs"] else "-"
            edit = "yes" if row["canEdit"] else "no"
            body.append(
                f'<tr data-role="{esc(row["role"])}"><td><b>{esc(row["role"])}</b><br>'
                f'<span class="govlab-role-description">{esc(row["description"])}</span></td>'
                f"<td>{edit}</td><td>{attrs}</td><td>{bound}</td><td>{masks or '-'}</td></tr>"
            )
        self.table.value = (
            '<table class="govlab-preview-table"><thead><tr><th>role</th><th>edits</th>'
            "<th>attributes</th><th>row filter (bound)</th><th>column masks</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )


def mode_html(s: LabState) -> str:
    """Who edits: before the Role stage the lab reads and edits as its default role
    (admin); saying "Editing as admin" then would suggest a choice nobody made."""
    role = esc(s.role)
    step = STAGES.index("role") + 1
    if not s.role_chosen:
        verb = "edits" if s.can_edit else "reads"
        return (
            f'<span class="govlab-editable">The lab {verb} the policy as <b>{role}</b>, its '
            f"default policy editor; you choose who you act as at step {step} (Role).</span>"
        )
    if s.can_edit:
        return (
            f'<span class="govlab-editable">Editing as <b>{role}</b> '
            "(this role has <code>can_edit_policies</code>).</span>"
        )
    return (
        f'<span class="govlab-readonly">Read-only: role <b>{role}</b> may not edit '
        "policies (no <code>can_edit_policies</code>).</span>"
    )
