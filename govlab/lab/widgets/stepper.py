"""Stepper: the eight stages in order, as one widget over one ``LabState``.

A header names every stage (the current one highlighted, the unreachable ones disabled),
below it the current stage's panel, then Back and Next. Next stays disabled until the
current stage is complete, and the header cannot jump past an incomplete stage: the
rules are ``LabState.can_enter`` / ``next`` / ``back``, this class only shows them.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from govlab.generators import DATASETS, SIZES
from govlab.lab.widgets._common import CSS, ClientCache, ClientFactory, classed, esc
from govlab.lab.widgets.governance import GovernanceEditor, GovernancePreview
from govlab.lab.widgets.hydrate import HydrateView
from govlab.lab.widgets.legend import MaskLegend
from govlab.lab.widgets.role import RolePicker
from govlab.lab.widgets.search_table import SearchTable
from govlab.lab.widgets.state import FORMAT_LABELS, STAGE_TITLES, STAGES, LabState
from govlab.lab.widgets.validate import ValidateView


class Stepper(w.VBox):
    def __init__(
        self,
        client_factory: ClientFactory,
        state: LabState | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.state = state if state is not None else LabState()
        self.clients = (
            client_factory
            if isinstance(client_factory, ClientCache)
            else ClientCache(client_factory)
        )
        self._ready = False
        self._lock = threading.RLock()
        self._shown: int | None = None
        s = self.state

        # -- header and navigation
        self.stage_buttons: list[w.Button] = []
        for index, name in enumerate(STAGES):
            button = classed(
                w.Button(description=f"{index + 1}. {STAGE_TITLES[name]}"),
                "govlab-stage",
                f"govlab-stage-{name}",
            )
            button.on_click(lambda _, i=index: self.go(i))
            self.stage_buttons.append(button)
        self.header = classed(w.HBox(self.stage_buttons), "govlab-header")
        self.title = classed(w.HTML(), "govlab-stage-title")
        self.hint = classed(w.HTML(), "govlab-hint")
        self.back_button = classed(w.Button(description="Back", icon="arrow-left"), "govlab-back")
        self.next_button = classed(
            w.Button(description="Next", icon="arrow-right", button_style="primary"),
            "govlab-next",
        )
        self.back_button.on_click(lambda _: self.back())
        self.next_button.on_click(lambda _: self.next())

        # -- the stages' views
        self.dataset_picker = classed(
            w.ToggleButtons(options=[(n, n) for n in DATASETS], value=s.dataset),
            "govlab-dataset",
        )
        self.size_picker = classed(
            w.ToggleButtons(
                options=[(f"{n} ({rows:,} rows)", n) for n, rows in SIZES.items()], value=s.size
            ),
            "govlab-size",
        )
        self.format_picker = classed(
            w.ToggleButtons(options=[(label, f) for f, label in FORMAT_LABELS.items()]),
            "govlab-format",
        )
        self.format_picker.value = s.format
        self.dataset_picker.observe(self._dataset_chosen, names="value")
        self.size_picker.observe(self._size_chosen, names="value")
        self.format_picker.observe(self._format_chosen, names="value")

        self.preview = GovernancePreview(s)
        self.editor = GovernanceEditor(s, self.clients, self.refresh, preview=self.preview)
        self.legend = MaskLegend()
        self.role_picker = RolePicker(s, self.refresh)
        self.validator = ValidateView(s, self.clients, self.refresh)
        self.hydrator = HydrateView(s, self.clients, self.refresh, poll_s=poll_s)
        self.table = SearchTable(s, self.clients, self.refresh)

        self.panels: dict[str, w.Box] = {
            "dataset": w.VBox([w.HTML("Which synthetic dataset?"), self.dataset_picker]),
            "size": w.VBox([w.HTML("How many rows to generate?"), self.size_picker]),
            "format": w.VBox([w.HTML("Which table format?"), self.format_picker]),
            "governance": w.VBox(
                [
                    self.editor,
                    w.HTML("<b>Preview: what each role gets</b>"),
                    self.preview,
                    self.legend,
                ]
            ),
            "role": w.VBox([w.HTML("Act as which role, with which attributes?"), self.role_picker]),
            "validate": w.VBox([self.validator]),
            "hydrate": w.VBox([self.hydrator]),
            "search": w.VBox([self.table]),
        }
        for name, panel in self.panels.items():
            classed(panel, "govlab-panel", f"govlab-panel-{name}")
        self.panel = classed(w.VBox(), "govlab-panel-host")

        super().__init__(
            [
                w.HTML(CSS),
                self.header,
                self.title,
                self.panel,
                self.hint,
                classed(w.HBox([self.back_button, self.next_button]), "govlab-nav"),
            ]
        )
        classed(self, "govlab-lab")
        self._ready = True
        self._show()

    # ------------------------------------------------------------------ navigation
    def next(self) -> bool:
        """Go to the next stage; False (and nothing changes) while this one is incomplete."""
        moved = self.state.next()
        self._show()
        return moved

    def back(self) -> bool:
        moved = self.state.back()
        self._show()
        return moved

    def go(self, stage: int | str) -> bool:
        """Jump to a stage; False unless every stage before it is complete."""
        moved = self.state.go(stage)
        self._show()
        return moved

    @property
    def current(self) -> str:
        return self.state.stage_name

    def _show(self) -> None:
        """Put the current stage's panel in place; entering a stage loads what it needs."""
        with self._lock:
            self.state.clamp()
            index = self.state.stage
            if index != self._shown:
                self._shown = index
                name = STAGES[index]
                self.panel.children = [self.panels[name]]
                self._enter(name)
        self.refresh()

    def _enter(self, name: str) -> None:
        s = self.state
        if name == "governance":
            self.editor.load()
        elif name == "role":
            self.role_picker.refresh()
        elif name == "validate":
            if s.completed("validate"):
                self.validator.render()
            else:
                self.validator.run()
        elif name == "hydrate":
            self.hydrator.render()
        elif name == "search":
            if s.completed("search"):
                self.table.render()
            else:
                self.table.load(1)

    # ------------------------------------------------------------------ view
    def refresh(self) -> None:
        if not self._ready:
            return
        with self._lock:
            s = self.state
            if not s.can_enter(s.stage):
                self._show()
                return
            for index, (name, button) in enumerate(zip(STAGES, self.stage_buttons, strict=True)):
                reachable = s.can_enter(index)
                done = s.completed(index)
                button.disabled = not reachable
                _toggle(button, "govlab-stage-current", index == s.stage)
                _toggle(button, "govlab-stage-done", done)
                button.button_style = (
                    "primary" if index == s.stage else ("success" if done and reachable else "")
                )
                button.tooltip = f"{STAGE_TITLES[name]}: " + (
                    "done" if done else ("to do" if reachable else "complete the steps before")
                )
            name = s.stage_name
            self.title.value = (
                f'<h3 class="govlab-current" data-stage="{name}">'
                f"Step {s.stage + 1} of {len(STAGES)}: {STAGE_TITLES[name]}</h3>"
            )
            last = s.stage == len(STAGES) - 1
            complete = s.completed(s.stage)
            self.next_button.disabled = last or not complete
            self.back_button.disabled = s.stage == 0
            hint = "" if complete else self._hint(name)
            self.hint.value = f'<span class="govlab-hint-text">{esc(hint)}</span>' if hint else ""

    def _hint(self, name: str) -> str:
        s = self.state
        if name == "governance":
            if s.policy_text is None:
                return "The policy could not be loaded."
            if s.policy_errors:
                return "Fix the policy to continue."
            if s.policy_dirty:
                return "Save or revert your edits to continue."
        if name == "role":
            return s.role_problem() or ""
        return {
            "dataset": "Choose a dataset to continue.",
            "size": "Choose a size to continue.",
            "validate": "Run Validate to continue.",
            "hydrate": "Seed the table (or use the existing one) to continue.",
            "search": "Run a search.",
        }.get(name, "")

    # ------------------------------------------------------------------ choices
    def _dataset_chosen(self, change: dict[str, Any]) -> None:
        self.state.set_dataset(change["new"])
        self.refresh()

    def _size_chosen(self, change: dict[str, Any]) -> None:
        self.state.set_size(change["new"])
        self.refresh()

    def _format_chosen(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.state.set_format(change["new"])
        self.refresh()


def _toggle(widget: w.DOMWidget, cls: str, on: bool) -> None:
    if on and cls not in widget._dom_classes:
        widget.add_class(cls)
    elif not on and cls in widget._dom_classes:
        widget.remove_class(cls)
