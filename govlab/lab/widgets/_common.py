"""What the views share: the client factory type, errors in words, the CSS.

HTML rendering itself is ``govlab.lab.views`` (no ipywidgets), shared with the notebooks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from govlab.lab.client import GovlabClient, describe_failure
from govlab.lab.views import CSS as VIEWS_CSS
from govlab.lab.views import esc, render_rows

__all__ = [
    "CSS",
    "ClientCache",
    "ClientFactory",
    "classed",
    "error_text",
    "esc",
    "failure_html",
    "render_rows",
    "toggle_class",
]

ClientFactory = Callable[[str, Mapping[str, Any]], GovlabClient]
"""(role, attrs) -> a client whose token carries that role and those attributes."""

Callback = Callable[[], None]

#: Clients are reused for this long; tokens minted by ``GovlabClient.for_role`` last an hour.
CLIENT_MAX_AGE_S = 30 * 60


class ClientCache:
    """One client per (role, attributes), renewed before its token expires. Thread-safe."""

    def __init__(self, factory: ClientFactory, max_age_s: float = CLIENT_MAX_AGE_S) -> None:
        self.factory = factory
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], tuple[float, GovlabClient]] = {}

    def __call__(self, role: str, attrs: Mapping[str, Any]) -> GovlabClient:
        key = (role, json.dumps(attrs, sort_keys=True))
        now = time.monotonic()
        with self._lock:
            hit = self._clients.get(key)
            if hit is not None and now - hit[0] < self.max_age_s:
                return hit[1]
            client = self.factory(role, attrs)
            self._clients[key] = (now, client)
            return client


def error_text(exc: BaseException, base_url: str | None = None) -> str:
    """A message for the page, in words: never a repr or a traceback."""
    return describe_failure(exc, base_url)


def failure_html(exc: BaseException, client: GovlabClient | None = None) -> str:
    """The failure as the error line every view shows (``span.govlab-error``)."""
    text = error_text(exc, client.base_url if client is not None else None)
    return f'<span class="govlab-error">{esc(text)}</span>'


def classed(widget: w.DOMWidget, *classes: str) -> Any:
    for name in classes:
        widget.add_class(name)
    return widget


def toggle_class(widget: w.DOMWidget, cls: str, on: bool) -> None:
    if on and cls not in widget._dom_classes:
        widget.add_class(cls)
    elif not on and cls in widget._dom_classes:
        widget.remove_class(cls)


#: ToggleButtons sized to their labels ("small (50,000 rows)" is not cut off).
AUTO_WIDTH = {"button_width": "auto"}

CSS = (
    VIEWS_CSS
    + """
<style>
.govlab-header .widget-button { margin-right: 2px; }
.govlab-stage-current { font-weight: bold; }
.govlab-lab .widget-toggle-button { padding: 0 12px; }
.govlab-lab .widget-toggle-button.mod-active {
  background: #1f5fa8; color: #fff; font-weight: bold; box-shadow: inset 0 0 0 2px #0d3b70;
}
.govlab-lab .widget-button, .govlab-lab .widget-toggle-button { overflow: visible; }
.govlab-policy-editor { box-sizing: border-box; max-width: 100%; margin-right: 0; }
.govlab-policy-editor textarea {
  box-sizing: border-box; width: 100%; font-family: monospace; font-size: 12px;
}
.govlab-policy-errors { color: #b00020; }
.govlab-policy-ok { color: #1b5e20; }
.govlab-cache-hit { color: #1b5e20; font-weight: bold; }
.govlab-cache-miss { color: #8a5300; font-weight: bold; }
.govlab-cache-bypass { color: #b00020; font-weight: bold; }
.govlab-cache-legend, .govlab-took { font-size: 12px; color: #444; }
.govlab-error { color: #b00020; font-weight: bold; }
.govlab-explain { background: #fff8c4; padding: 4px 8px; border-left: 3px solid #e0b000; }
code.govlab-filter { background: #f3f3f3; padding: 1px 4px; }
.govlab-acting-badge { background: #1f5fa8; color: #fff; border-radius: 10px;
  padding: 2px 10px; font-size: 12px; }
.govlab-server { font-size: 12px; padding: 4px 8px; border-radius: 4px; }
.govlab-server-starting, .govlab-server-waiting, .govlab-server-checking {
  background: #e8f0fe; }
.govlab-server-ready, .govlab-server-reused { background: #e8f5e9; }
.govlab-server-failed { background: #fde7e9; color: #b00020; }
.govlab-about { margin: 4px 0; padding-left: 18px; font-size: 13px; }
.govlab-about li.govlab-chosen { background: #e8f0fe; }
.govlab-role-description { font-style: italic; color: #333; }
.govlab-compare-sides { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr));
  gap: 8px; }
.govlab-compare-side { overflow-x: auto; border: 1px solid #ddd; padding: 4px; }
.govlab-compare-side .govlab-rows td, .govlab-compare-side .govlab-rows th {
  white-space: nowrap; }
.govlab-compare-side h4 { margin: 2px 0; }
</style>
"""
)
