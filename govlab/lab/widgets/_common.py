"""What the views share: the client factory type, HTML rendering of rows, the CSS."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ipywidgets as w

from govlab.lab.client import ApiError, GovlabClient

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


def error_text(exc: Exception) -> str:
    """A message for the page: the server's detail, never a traceback."""
    if isinstance(exc, ApiError):
        return f"{exc.status}: {exc.detail}"
    return f"{type(exc).__name__}: {exc}"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def classed(widget: w.DOMWidget, *classes: str) -> Any:
    for name in classes:
        widget.add_class(name)
    return widget


def render_rows(
    items: list[dict[str, Any]],
    masked: Mapping[str, str],
    columns: Iterable[str] | None = None,
    table_class: str = "govlab-rows",
) -> str:
    """Rows as an HTML table; every value escaped, masked cells marked by class and title."""
    cols = list(columns) if columns is not None else (list(items[0]) if items else [])
    if not cols:
        return f'<table class="{table_class} govlab-empty"><tr><td>no rows</td></tr></table>'
    head = "".join(
        f'<th class="govlab-masked-col" data-col="{esc(c)}" title="masked: {esc(masked[c])}">'
        f"{esc(c)} &#128274;</th>"
        if c in masked
        else f'<th data-col="{esc(c)}">{esc(c)}</th>'
        for c in cols
    )
    body = []
    for row in items:
        cells = []
        for c in cols:
            value = row.get(c)
            classes = []
            title = ""
            if c in masked:
                classes.append("govlab-masked")
                title = f' title="masked: {esc(masked[c])}"'
            if value is None:
                classes.append("govlab-null")
            text = "null" if value is None else _cell_text(value)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f'<td{attr} data-col="{esc(c)}"{title}>{esc(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="{table_class}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _cell_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


CSS = """
<style>
.govlab-lab { font-family: system-ui, sans-serif; }
.govlab-header .widget-button { margin-right: 2px; }
.govlab-stage-current { font-weight: bold; }
.govlab-rows, .govlab-preview-table, .govlab-legend-table {
  border-collapse: collapse; font-size: 12px; margin: 4px 0;
}
.govlab-rows th, .govlab-rows td,
.govlab-preview-table th, .govlab-preview-table td,
.govlab-legend-table th, .govlab-legend-table td {
  border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top;
}
.govlab-rows td.govlab-masked { background: #fff4e0; color: #8a5300; font-family: monospace; }
.govlab-rows th.govlab-masked-col { background: #ffe8c2; }
.govlab-rows td.govlab-null { color: #999; font-style: italic; }
.govlab-policy-editor textarea { font-family: monospace; font-size: 12px; }
.govlab-policy-errors { color: #b00020; }
.govlab-policy-ok { color: #1b5e20; }
.govlab-cache-hit { color: #1b5e20; font-weight: bold; }
.govlab-cache-miss { color: #8a5300; font-weight: bold; }
.govlab-cache-bypass { color: #b00020; font-weight: bold; }
.govlab-error { color: #b00020; }
code.govlab-filter { background: #f3f3f3; padding: 1px 4px; }
</style>
"""
