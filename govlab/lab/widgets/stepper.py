"""Stepper: the eight stages in order, as one widget over one ``LabState``.

A header names every stage (the current one highlighted, the unreachable ones disabled),
below it the current stage's panel, then Back and Next. Next stays disabled until the
current stage is complete, and the header cannot jump past an incomplete stage: the
rules are ``LabState.can_enter`` / ``next`` / ``back``, this class only shows them.

Above the header the API's start-up is shown as it happens (``ServerBanner``); stages
from Governance on need the API and load once it answers. From Validate on, a badge
says who the lab acts as, and Validate and Search compare roles side by side.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from govlab.generators import DATASETS, SIZES
from govlab.lab.views import DATASET_ABOUT, FORMAT_ABOUT, about_list, acting_badge
from govlab.lab.widgets._common import (
    AUTO_WIDTH,
    CSS,
    ClientCache,
    ClientFactory,
    classed,
    esc,
    toggle_class,
)
from govlab.lab.widgets.compare import CompareView
from govlab.lab.widgets.governance import GovernanceEditor, GovernancePreview
from govlab.lab.widgets.hydrate import HydrateView
from govlab.lab.widgets.legend import MaskLegend
from govlab.lab.widgets.role import RolePicker
from govlab.lab.widgets.search_table import SearchTable
from govlab.lab.widgets.server import ServerBanner, Starter
from govlab.lab.widgets.state import FORMAT_LABELS, STAGE_TITLES, STAGES, LabState
from govlab.lab.widgets.validate import ValidateView

#: Stages that talk to the API (they load once it answers).
API_STAGES = frozenset(STAGES[STAGES.index("governance") :])
STATIC_TEXT = (
    "govlab stepper: the eight-stage governance lab (dataset, size, format, governance, "
    "role, validate, hydrate, search). It is a live widget: run this cell in a kernel, or "
    "serve it with `make ui` (http://127.0.0.1:8866). A saved copy of the notebook cannot "
    "show it."
)


class Stepper(w.VBox):
    def __init__(
        self,
        client_factory: ClientFactory,
        state: LabState | None = None,
        poll_s: float = 0.25,
        start_server: Starter | None = None,
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
        self.server_banner = ServerBanner()
        self._build_header()
        self._build_choices()
        self._build_views(poll_s)
        self._build_panels()
        super().__init__(
            [
                w.HTML(CSS),
                self.server_banner,
                self.header,
                w.HBox([self.title, self.badge], layout=w.Layout(align_items="center")),
                self.panel,
                self.hint,
                classed(w.HBox([self.back_button, self.next_button]), "govlab-nav"),
            ]
        )
        classed(self, "govlab-lab")
        self._ready = True
        self._show()
        self.server_banner.start(start_server, self._api_up)

    # ------------------------------------------------------------------ building
    def _build_header(self) -> None:
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
        self.badge = classed(w.HTML(), "govlab-acting")
        self.hint = classed(w.HTML(), "govlab-hint")
        self.back_button = classed(w.Button(description="Back", icon="arrow-left"), "govlab-back")
        self.next_button = classed(
            w.Button(description="Next", icon="arrow-right", button_style="primary"),
            "govlab-next",
        )
        self.back_button.on_click(lambda _: self.back())
        self.next_button.on_click(lambda _: self.next())

    def _build_choices(self) -> None:
        s = self.state
        self.dataset_picker = classed(
            w.ToggleButtons(options=[(n, n) for n in DATASETS], value=s.dataset, style=AUTO_WIDTH),
            "govlab-dataset",
        )
        self.size_picker = classed(
            w.ToggleButtons(
                options=[(f"{n} ({rows:,} rows)", n) for n, rows in SIZES.items()],
                value=s.size,
                style=AUTO_WIDTH,
            ),
            "govlab-size",
        )
        self.format_picker = classed(
            w.ToggleButtons(
                options=[(label, f) for f, label in FORMAT_LABELS.items()], style=AUTO_WIDTH
            ),
            "govlab-format",
        )
        self.format_picker.value = s.format
        self.dataset_about = classed(w.HTML(), "govlab-dataset-about")
        self.format_about = classed(w.HTML(), "govlab-format-about")
        self.dataset_picker.observe(self._dataset_chosen, names="value")
        self.size_picker.observe(self._size_chosen, names="value")
        self.format_picker.observe(self._format_chosen, names="value")

    def _build_views(self, poll_s: float) -> None:
        s = self.state
        self.preview = GovernancePreview(s)
        self.editor = GovernanceEditor(s, self.clients, self.refresh, preview=self.preview)
        self.legend = MaskLegend()
        self.role_picker = RolePicker(s, self.refresh)
        self.validator = ValidateView(s, self.clients, self.refresh)
        self.hydrator = HydrateView(s, self.clients, self.refresh, poll_s=poll_s)
        self.validate_compare = CompareView(s, self.clients, "validate")
        self.search_compare = CompareView(s, self.clients, "search")
        self.table = SearchTable(s, self.clients, self.refresh, on_new_query=self._new_query)

    def _build_panels(self) -> None:
        self.panels: dict[str, w.Box] = {
            "dataset": w.VBox(
                [w.HTML("Which synthetic dataset?"), self.dataset_picker, self.dataset_about]
            ),
            "size": w.VBox([w.HTML("How many rows to generate?"), self.size_picker]),
            "format": w.VBox(
                [w.HTML("Which table format?"), self.format_picker, self.format_about]
            ),
            "governance": w.VBox(
                [
                    self.editor,
                    w.HTML("<b>Preview: what each role gets</b>"),
                    self.preview,
                    self.legend,
                ]
            ),
            "role": w.VBox([w.HTML("Act as which role, with which attributes?"), self.role_picker]),
            "validate": w.VBox([self.validator, self.validate_compare]),
            "hydrate": w.VBox([self.hydrator]),
            "search": w.VBox([self.table, self.search_compare]),
        }
        for name, panel in self.panels.items():
            classed(panel, "govlab-panel", f"govlab-panel-{name}")
        self.panel = classed(w.VBox(), "govlab-panel-host")

    # ------------------------------------------------------------------ the API
    @property
    def server(self) -> Any:
        """The API's handle once it answers (``server.stop()`` ends one this lab started)."""
        return self.server_banner.server

    @server.setter
    def server(self, value: Any) -> None:
        self.server_banner.server = value

    @property
    def api_ready(self) -> bool:
        return self.server_banner.ready.is_set()

    def _api_up(self) -> None:
        """The API answers now: load what the current stage was waiting for."""
        with self._lock:
            name = STAGES[self.state.stage]
            if name in API_STAGES:
                self._enter(name)
        self.refresh()

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
        if name in API_STAGES and not self.api_ready:
            return  # _api_up enters it again once the API answers
        {
            "governance": lambda: self.editor.load(),
            "role": self.role_picker.refresh,
            "validate": self._enter_validate,
            "hydrate": self._enter_hydrate,
            "search": self._enter_search,
        }.get(name, lambda: None)()

    def _enter_validate(self) -> None:
        """Run the dry run unless a fresh one is on screen: a seed since makes it stale."""
        s = self.state
        self.hydrator.refresh_table()
        if s.completed("validate") and not s.validation_stale():
            self.validator.render()
        else:
            self.validator.run()
        self.validate_compare.refresh_roles()
        self.validate_compare.run("")

    def _enter_hydrate(self) -> None:
        self.hydrator.refresh_table()
        self.hydrator.render()

    def _enter_search(self) -> None:
        s = self.state
        if s.completed("search"):
            self.table.render()
        else:
            self.table.load(1)
        self.search_compare.refresh_roles()
        self.search_compare.run(self.table.q.value)

    def _new_query(self, q: str) -> None:
        """A new query at Search: the comparison follows it (only while it is shown)."""
        if self.state.stage_name == "search" and self.state.last_page is not None:
            self.search_compare.run(q)
        elif self.state.last_page is None:
            self.search_compare.clear()

    # ------------------------------------------------------------------ view
    def refresh(self) -> None:
        if not self._ready:
            return
        with self._lock:
            s = self.state
            if not s.can_enter(s.stage):
                self._show()
                return
            for index, button in enumerate(self.stage_buttons):
                self._style_stage(index, button)
            name = s.stage_name
            self.title.value = (
                f'<h3 class="govlab-current" data-stage="{name}">'
                f"Step {s.stage + 1} of {len(STAGES)}: {STAGE_TITLES[name]}</h3>"
            )
            self.badge.value = acting_badge(s.role, s.attrs) if s.acting_shown else ""
            self.dataset_about.value = about_list(DATASET_ABOUT, s.dataset, {})
            self.format_about.value = about_list(FORMAT_ABOUT, s.format, FORMAT_LABELS)
            last = s.stage == len(STAGES) - 1
            complete = s.completed(s.stage)
            self.next_button.disabled = last or not complete
            self.back_button.disabled = s.stage == 0
            hint = "" if complete else self._hint(name)
            self.hint.value = f'<span class="govlab-hint-text">{esc(hint)}</span>' if hint else ""

    def _style_stage(self, index: int, button: w.Button) -> None:
        s = self.state
        name = STAGES[index]
        reachable = s.can_enter(index)
        done = s.completed(index)
        button.disabled = not reachable
        toggle_class(button, "govlab-stage-current", index == s.stage)
        toggle_class(button, "govlab-stage-done", done)
        button.button_style = (
            "primary" if index == s.stage else ("success" if done and reachable else "")
        )
        button.tooltip = f"{STAGE_TITLES[name]}: " + (
            "done" if done else ("to do" if reachable else "complete the steps before")
        )

    def _hint(self, name: str) -> str:
        s = self.state
        if name in API_STAGES and not self.api_ready:
            failed = self.server_banner.failed
            return f"The API is not answering: {failed}" if failed else "Waiting for the API."
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
            "hydrate": "Seed the table (or use an existing one of the chosen size) to continue.",
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

    # ------------------------------------------------------------------ a saved notebook
    def __repr__(self) -> str:
        """What a notebook keeps as text: a short explanation, not the widget tree."""
        return STATIC_TEXT

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = STATIC_TEXT
        return bundle
