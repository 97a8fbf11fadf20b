"""ServerBanner: the start-up of the API, shown while it happens.

Starting ``govlab serve`` (API, worker, embedded Redis) takes seconds. The stepper is
displayed at once and this banner follows the start-up in a background thread: which
phase it is in, for how long, and, when it is up, who started it (a server this kernel
started ends with the kernel). Stages that need the API wait for ``ready``.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from govlab.lab.client import LocalServer, StatusFn
from govlab.lab.widgets._common import classed, esc

Starter = Callable[[StatusFn], LocalServer]
"""Starts (or finds) the API, reporting each phase; returns the server handle."""


class ServerBanner(w.HTML):
    def __init__(self) -> None:
        super().__init__()
        classed(self, "govlab-server")
        self.ready = threading.Event()  # the API answers
        self.settled = threading.Event()  # ... and the stage waiting for it has loaded
        self.failed: str | None = None
        self.server: LocalServer | None = None
        self.phases: list[str] = []
        self._started = time.monotonic()
        self._thread: threading.Thread | None = None

    def start(self, starter: Starter | None, on_ready: Callable[[], Any]) -> None:
        """Run ``starter`` in the background; None means the API is already there."""
        if starter is None:
            self.ready.set()
            self.settled.set()
            return
        self._show("checking", "Connecting to the govlab API ...")

        def progress(phase: str, message: str) -> None:
            if phase != "ready":  # "ready" is this banner's own, once the handle is known
                self._show(phase, message)

        def run() -> None:
            try:
                self.server = starter(progress)
            except Exception as exc:  # shown on the banner; the stages stay closed
                self.failed = str(exc)
                self._show("failed", f"The API could not be started: {exc}")
                self.settled.set()
                return
            if self.server.process is not None:
                atexit.register(self.server.stop)  # a clean kernel exit; else the watchdog
            self._show("ready", self._ready_text(self.server))
            self.ready.set()
            try:
                on_ready()
            finally:
                self.settled.set()

        self._thread = threading.Thread(target=run, name="govlab-api-start", daemon=True)
        self._thread.start()

    def wait(self, timeout_s: float = 90.0) -> bool:
        """Block until the API answers and the current stage has loaded (tests,
        scripts); False when it did not answer."""
        self.settled.wait(timeout_s)
        return self.ready.is_set()

    def _ready_text(self, server: LocalServer) -> str:
        if server.process is None:
            return f"The API at {server.url} is up (already running; not started by this lab)."
        steps = " -> ".join(dict.fromkeys(p for p in self.phases if p != "ready"))
        return (
            f"The API at {server.url} is up after {server.startup_s:.1f} s ({steps} -> ready): "
            f"started by this kernel (pid {server.pid}); it stops when the kernel stops."
        )

    def _show(self, phase: str, message: str) -> None:
        self.phases.append(phase)
        elapsed = time.monotonic() - self._started
        clock = f" ({elapsed:.0f} s)" if phase in ("checking", "starting") else ""
        pid = f' data-pid="{self.server.pid}"' if self.server and self.server.pid else ""
        self.value = (
            f'<div class="govlab-server-status govlab-server-{esc(phase)}" '
            f'data-phase="{esc(phase)}"{pid}>{esc(message)}{esc(clock)}</div>'
        )
