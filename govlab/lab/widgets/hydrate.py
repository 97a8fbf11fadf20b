"""HydrateView: start a seed job (``POST /seed``) and follow it (``GET /progress``) from a
background thread, so neither the kernel nor the page ever waits on it.

The thread only reads progress and sets widget values (safe in ipywidgets 8); the
progress bar shows the job's ``pct``, the label its rows, rate and ETA. ``wait_done``
blocks the caller (a test, a script) until the job ends.

The view says what table exists (``GET /tables``, asked as the seeding role: "existing
table: 50,000 rows, version 3"); "Use existing table" continues without reseeding only
when that table has the chosen size, otherwise the learner seeds.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as w

from govlab.generators import SIZES
from govlab.lab.client import ApiError
from govlab.lab.widgets._common import Callback, ClientFactory, classed, esc, failure_html
from govlab.lab.widgets.state import TERMINAL_JOB_STATES, LabState

BAR_STYLES = {"completed": "success", "failed": "danger", "cancelled": "warning"}


def describe_progress(record: dict[str, Any]) -> str:
    """One line: status, rows written of total, rate, ETA (and the error when failed)."""
    status = record.get("status", "?")
    parts = [str(status)]
    total = record.get("totalRows") or 0
    written = record.get("rowsWritten") or 0
    if total:
        parts.append(f"{written:,} / {total:,} rows")
    elif written:
        parts.append(f"{written:,} rows")
    if status == "running" and record.get("rowsPerSec"):
        parts.append(f"{record['rowsPerSec']:,} rows/s")
        if record.get("etaSeconds") is not None:
            parts.append(f"ETA {record['etaSeconds']:.0f} s")
    if status == "completed" and record.get("tableVersion") is not None:
        parts.append(f"table version {record['tableVersion']}")
    if record.get("error"):
        parts.append(str(record["error"]))
    return " · ".join(parts)


class HydrateView(w.VBox):
    def __init__(
        self,
        state: LabState,
        client_factory: ClientFactory,
        on_change: Callback | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.state = state
        self.client_factory = client_factory
        self.on_change = on_change
        self.poll_s = poll_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.summary = classed(w.HTML(), "govlab-hydrate-summary")
        self.start_button = classed(
            w.Button(description="Start seeding", icon="play", button_style="primary"),
            "govlab-hydrate-start",
        )
        self.cancel_button = classed(
            w.Button(description="Cancel", icon="stop", disabled=True), "govlab-hydrate-cancel"
        )
        self.existing_button = classed(
            w.Button(
                description="Use existing table", disabled=True, layout=w.Layout(width="auto")
            ),
            "govlab-hydrate-existing",
        )
        self.table_label = classed(w.HTML(), "govlab-hydrate-table")
        self.bar = classed(
            w.IntProgress(value=0, min=0, max=100, description="0%"), "govlab-hydrate-progress"
        )
        self.label = classed(w.HTML(), "govlab-hydrate-status")
        self.start_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.existing_button.on_click(lambda _: self.use_existing())
        super().__init__(
            [
                self.summary,
                self.table_label,
                w.HBox([self.start_button, self.cancel_button, self.existing_button]),
                self.bar,
                self.label,
            ]
        )
        classed(self, "govlab-hydrate")
        self.render()

    # ------------------------------------------------------------------ actions
    def refresh_table(self) -> dict[str, Any] | None:
        """Ask the API what table exists for this dataset and format (as the seeding
        role: its size is an operator's business). Unknown stays unknown on refusal."""
        s = self.state
        if s.dataset is None:
            return None
        role = s.seeding_role()
        client = self.client_factory(role, s.role_attrs.get(role, {}))
        try:
            info = client.table_info(s.dataset, s.format)
        except ApiError as exc:
            if exc.status == 404:
                s.note_table(s.dataset, s.format, None)
            return None
        except Exception as exc:
            self.label.value = failure_html(exc, client)
            return None
        s.note_table(s.dataset, s.format, info)
        return info

    def start(self) -> str | None:
        """Queue the seed job and follow it in the background; returns the job id."""
        s = self.state
        with self._lock:
            if self.running or s.dataset is None or s.size is None:
                return None
            role = s.seeding_role()
            client = self.client_factory(role, s.role_attrs.get(role, {}))
            try:
                job_id = client.seed(s.dataset, s.size, s.format)
            except Exception as exc:
                self.label.value = failure_html(exc, client)
                return None
            s.job_started(job_id, role)
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._follow, args=(client, job_id), name=f"govlab-hydrate-{job_id}"
            )
            self._thread.daemon = True
            self._thread.start()
        self.render()
        return job_id

    def cancel(self) -> dict[str, Any] | None:
        s = self.state
        if s.job_id is None or not s.job_running:
            return None
        role = s.job_role or s.role
        client = self.client_factory(role, s.role_attrs.get(role, {}))
        try:
            return client.cancel(s.job_id)
        except Exception as exc:
            self.label.value = failure_html(exc, client)
            return None

    def use_existing(self) -> bool:
        done = self.state.use_existing_table()
        self.render()
        self._changed()
        return done

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_done(self, timeout: float = 120.0) -> dict[str, Any] | None:
        """Block until the followed job ends; TimeoutError if it is still going."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"seed job still {self.state.progress} after {timeout} s")
        return self.state.progress

    def stop(self) -> None:
        """Stop following (the job itself goes on; see ``cancel``)."""
        self._stop.set()

    # ------------------------------------------------------------------ the thread
    def _follow(self, client: Any, job_id: str) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                record = client.progress(job_id)
            except Exception as exc:
                failures += 1
                if failures >= 20:
                    self.label.value = "Lost the seed job. " + failure_html(exc, client)
                    return
            else:
                failures = 0
                self.state.job_progress(job_id, record)
                self.render()
                if record.get("status") in TERMINAL_JOB_STATES:
                    self._changed()
                    return
            self._stop.wait(self.poll_s)

    # ------------------------------------------------------------------ view
    def render(self) -> None:
        s = self.state
        self.summary.value = (
            f"Seed <b>{esc(s.dataset)}</b>, <b>{esc(s.size)}</b>, as <b>{esc(s.format)}</b>: "
            "a new table version, written atomically by the worker."
        )
        record = s.progress if s.job_key == s.table_key() else None
        running = s.job_running and s.job_key == s.table_key()
        self.start_button.disabled = running
        self.cancel_button.disabled = not running
        self.existing_button.disabled = running or not s.existing_matches_size()
        self.table_label.value = table_html(s)
        if record is None:
            self.bar.value = 0
            self.bar.description = "0%"
            self.bar.bar_style = ""
            self.label.value = (
                "Using the existing table." if s.existing_key == s.table_key() else "Not started."
            )
            return
        pct = max(0, min(100, round(float(record.get("pct") or 0))))
        self.bar.value = pct
        self.bar.description = f"{pct}%"
        self.bar.bar_style = BAR_STYLES.get(str(record.get("status")), "info")
        self.label.value = esc(describe_progress(record))

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def table_html(s: LabState) -> str:
    """What exists, and whether it will do: only a table of the chosen size may be used."""
    if not s.table_known() or s.size is None:
        return ""
    table = s.table()
    if table is None:
        return f"No {esc(s.format)} table of {esc(s.dataset)} yet: seed one."
    rows = table.get("rows")
    exists = (
        f"Existing table: <b>{rows:,} rows</b>, version {esc(table['tableVersion'])}"
        if rows is not None
        else f"Existing table: version {esc(table['tableVersion'])}"
    )
    if s.existing_matches_size():
        return f"{exists}, the size you chose: use it, or seed a new version."
    wanted = f"{s.size} ({SIZES[s.size]:,} rows)"
    return (
        f'<span class="govlab-hydrate-mismatch">{exists}; you chose {esc(wanted)}: '
        "seed to continue.</span>"
    )
