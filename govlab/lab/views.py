"""HTML the lab shows, as plain functions (no ipywidgets): the widgets put it in their
``HTML`` views and the training notebooks display it directly (``RoleTable``, ``Tree``).

Every value is HTML-escaped, and every masked cell is marked by class and title
(``td.govlab-masked``, ``title="masked: <mask>"``). The CSS lives here too, so a
notebook that shows these tables shows them styled as in the stepper.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from govlab.engines import FORMAT_DEFS

#: One line per dataset and per format, as the Dataset and Format stages show them.
DATASET_ABOUT: dict[str, str] = {
    "healthcare": "patients: name, SSN, date of birth, address, insurance id; "
    "clinicians see their own patients, analysts their regions",
    "ecommerce": "orders: customer name, email, phone, card number, address; "
    "support agents see their region",
    "financial": "accounts: holder, SSN, account number, balances and transactions; "
    "risk officers see their regions",
}
#: The formats' one-liners come from their registry (``govlab.engines.FORMAT_DEFS``).
FORMAT_ABOUT: dict[str, str] = {name: d.description for name, d in FORMAT_DEFS.items()}
#: What the page cache said about a search, in one line each.
CACHE_MEANING: dict[str, str] = {
    "hit": "the masked page came from the Redis page cache",
    "miss": "read from the table, masked, then stored in Redis",
    "bypass": "Redis unreachable: read from the table, nothing stored",
}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def cell_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# ---------------------------------------------------------------------- rows
def render_rows(
    items: list[dict[str, Any]],
    masked: Mapping[str, str],
    columns: Iterable[str] | None = None,
    table_class: str = "govlab-rows",
) -> str:
    """Rows as an HTML table; every value escaped, masked cells marked by class and title.

    A masked column's header carries the mask's name in a small tag, so a reader sees
    *how* it is masked without hovering."""
    cols = list(columns) if columns is not None else (list(items[0]) if items else [])
    if not cols or not items:
        return f'<table class="{table_class} govlab-empty"><tr><td>no rows</td></tr></table>'
    head = "".join(_header(c, masked.get(c)) for c in cols)
    body = "".join("<tr>" + "".join(_cell(row, c, masked) for c in cols) + "</tr>" for row in items)
    return (
        f'<table class="{table_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _header(column: str, mask: str | None) -> str:
    if mask is None:
        return f'<th data-col="{esc(column)}">{esc(column)}</th>'
    return (
        f'<th class="govlab-masked-col" data-col="{esc(column)}" title="masked: {esc(mask)}">'
        f'{esc(column)} <span class="govlab-mask-tag">{esc(mask)}</span></th>'
    )


def _cell(row: Mapping[str, Any], column: str, masked: Mapping[str, str]) -> str:
    value = row.get(column)
    classes = []
    title = ""
    if column in masked:
        classes.append("govlab-masked")
        title = f' title="masked: {esc(masked[column])}"'
    if value is None:
        classes.append("govlab-null")
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f'<td{attr} data-col="{esc(column)}"{title}>{esc(cell_text(value))}</td>'


# ---------------------------------------------------------------------- one-liners
def about_list(about: Mapping[str, str], chosen: str | None, labels: Mapping[str, str]) -> str:
    """Each option in one line; the chosen one marked (``li.govlab-chosen``)."""
    items = "".join(_about_item(name, text, name == chosen, labels) for name, text in about.items())
    return f'<ul class="govlab-about">{items}</ul>'


def _about_item(name: str, text: str, chosen: bool, labels: Mapping[str, str]) -> str:
    cls = ' class="govlab-chosen"' if chosen else ""
    label = esc(labels.get(name, name))
    return f'<li data-option="{esc(name)}"{cls}><b>{label}</b>: {esc(text)}</li>'


def cache_legend() -> str:
    """HIT / MISS / BYPASS in one line, each in its indicator's colour."""
    parts = " · ".join(
        f'<span class="govlab-cache-{state}">{state.upper()}</span>: {esc(meaning)}'
        for state, meaning in CACHE_MEANING.items()
    )
    return f'<span class="govlab-cache-legend-text">{parts}</span>'


def timing_text(server_ms: float | None, round_trip_ms: float | None) -> str:
    """``server 2.3 ms · round trip 9.8 ms``: what the API spent and what the lab waited."""
    parts = []
    if server_ms is not None:
        parts.append(f"server {server_ms:,.1f} ms")
    if round_trip_ms is not None:
        parts.append(f"round trip {round_trip_ms:,.1f} ms")
    return " · ".join(parts)


def acting_badge(role: str, attrs: Mapping[str, Any]) -> str:
    """``acting as clinician (id=C007)``."""
    shown = ", ".join(f"{k}={_attr(v)}" for k, v in sorted(attrs.items()))
    suffix = f" ({shown})" if shown else ""
    return (
        f'<span class="govlab-acting-badge" data-role="{esc(role)}">acting as '
        f"<b>{esc(role)}</b>{esc(suffix)}</span>"
    )


def _attr(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------------- comparisons
@dataclasses.dataclass(frozen=True)
class Bar:
    """One role's row of the bar chart: ``value`` of ``of`` (rows visible of the table,
    or matches of the rows visible)."""

    role: str
    value: int | None
    of: int | None = None
    exact: bool = True
    label: str = ""


def bar_chart(bars: Sequence[Bar], caption: str) -> str:
    """Horizontal bars scaled to the largest ``of`` (else value); labelled with numbers."""
    scale = max([b.of or 0 for b in bars] + [b.value or 0 for b in bars] + [1])
    rows = "".join(_bar_row(b, scale) for b in bars)
    return (
        f'<div class="govlab-bars"><div class="govlab-bars-caption">{esc(caption)}</div>'
        f"<table>{rows}</table></div>"
    )


def _bar_row(bar: Bar, scale: int) -> str:
    value = bar.value or 0
    inner = 100 * value / scale
    outer = 100 * (bar.of if bar.of is not None else value) / scale
    return (
        f'<tr class="govlab-bar" data-role="{esc(bar.role)}" data-value="{esc(bar.value)}"'
        f' data-of="{esc(bar.of)}"><th>{esc(bar.role)}</th>'
        f'<td class="govlab-bar-track"><div class="govlab-bar-of" style="width:{outer:.1f}%">'
        f'<div class="govlab-bar-value" style="width:{_share(inner, outer):.1f}%"></div>'
        f'</div></td><td class="govlab-bar-label">{esc(bar.label)}</td></tr>'
    )


def _share(inner: float, outer: float) -> float:
    return 0.0 if outer <= 0 else min(100.0, 100 * inner / outer)


def count_text(value: int | None, exact: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:,}" + ("" if exact else "+")


@dataclasses.dataclass(frozen=True)
class RecordCell:
    """What one role sees of one column of the chosen record."""

    kind: str  # raw | masked | hidden | unknown
    text: str = ""
    mask: str | None = None


def record_table(
    pk: str, key: Any, roles: Sequence[str], columns: Sequence[str], cells: Mapping[str, Any]
) -> str:
    """Column by column, what each role sees of one record: raw (``td.govlab-raw``),
    masked (``td.govlab-masked``), or not visible to that role (``td.govlab-hidden``)."""
    head = "".join(f'<th data-role="{esc(r)}">{esc(r)}</th>' for r in roles)
    body = "".join(
        f'<tr data-col="{esc(c)}"><th>{esc(c)}</th>'
        + "".join(_record_cell(r, cells[r][c]) for r in roles)
        + "</tr>"
        for c in columns
    )
    return (
        f'<table class="govlab-record-table" data-key="{esc(key)}"><thead><tr>'
        f"<th>{esc(pk)} = {esc(key)}</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _record_cell(role: str, cell: RecordCell) -> str:
    """A raw value only ever comes from a page the API served to that very role."""
    if cell.kind == "raw":
        return f'<td class="govlab-raw" data-role="{esc(role)}" title="raw">{esc(cell.text)}</td>'
    if cell.kind == "masked":
        return (
            f'<td class="govlab-masked" data-role="{esc(role)}" title="masked: {esc(cell.mask)}">'
            f"{esc(cell.text)}</td>"
        )
    return f'<td class="govlab-{cell.kind}" data-role="{esc(role)}">{esc(cell.text)}</td>'


def whatif_table(result: Mapping[str, Any]) -> str:
    """Saved against draft, per role: rows and masked columns, changes marked."""
    body = "".join(_whatif_row(r) for r in result.get("roles", []))
    return (
        '<table class="govlab-whatif-table"><thead><tr><th>role</th><th>rows saved</th>'
        "<th>rows draft</th><th>row filter (draft)</th><th>columns that change</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _whatif_row(row: Mapping[str, Any]) -> str:
    saved, draft = row.get("saved", {}), row.get("draft", {})
    rows_changed = saved.get("rows") != draft.get("rows")
    changes = mask_changes(saved.get("masks", {}), draft.get("masks", {}))
    changed = rows_changed or changes or saved.get("filter") != draft.get("filter")
    cls = ' class="govlab-whatif-changed"' if changed else ""
    filt = draft.get("filter") or draft.get("error", "")
    listed = "<br>".join(esc(c) for c in changes) or "none"
    return (
        f'<tr data-role="{esc(row["role"])}"{cls}><td><b>{esc(row["role"])}</b></td>'
        f'<td class="govlab-whatif-saved">{esc(_rows(saved))}</td>'
        f'<td class="govlab-whatif-draft">{esc(_rows(draft))}</td>'
        f"<td><code>{esc(filt)}</code></td>"
        f'<td class="govlab-whatif-columns">{listed}</td></tr>'
    )


def _rows(side: Mapping[str, Any]) -> str:
    if "error" in side:
        return "denied"
    return count_text(side.get("rows"))


def mask_changes(saved: Mapping[str, str], draft: Mapping[str, str]) -> list[str]:
    """``name: redact_full -> raw`` for every column whose mask differs."""
    columns = sorted(set(saved) | set(draft))
    return [
        f"{c}: {saved.get(c, 'raw')} -> {draft.get(c, 'raw')}"
        for c in columns
        if saved.get(c) != draft.get(c)
    ]


# ---------------------------------------------------------------------- notebooks
class RoleTable:
    """A page of one role's rows for a notebook: an HTML table with masked cells marked
    (``_repr_html_``) and a short text form for plain-text readers."""

    def __init__(
        self, title: str, items: list[dict[str, Any]], masked: Mapping[str, str], columns=None
    ) -> None:
        self.title = title
        self.items = items
        self.masked = dict(masked)
        self.columns = list(columns) if columns is not None else None

    def _repr_html_(self) -> str:
        table = render_rows(self.items, self.masked, self.columns)
        return f'{CSS}<div class="govlab-role-table"><b>{esc(self.title)}</b>{table}</div>'

    def __repr__(self) -> str:
        masked = ", ".join(f"{c}={m}" for c, m in sorted(self.masked.items())) or "none"
        return f"{self.title}: {len(self.items)} rows shown; masked: {masked}"


class Tree:
    """A dataclass tree (a filter's AST) drawn as nested lists, and as text lines."""

    def __init__(self, node: Any, title: str = "") -> None:
        self.node = node
        self.title = title

    def _repr_html_(self) -> str:
        title = f"<b>{esc(self.title)}</b>" if self.title else ""
        return f'{CSS}<div class="govlab-tree">{title}<ul>{_tree_html(self.node)}</ul></div>'

    def __repr__(self) -> str:
        return "\n".join(([self.title] if self.title else []) + _tree_lines(self.node, ""))


def _children(node: Any) -> tuple[str, list[tuple[str, Any]], list[str]]:
    """(label, child nodes with their field names, leaf fields as text)."""
    label = type(node).__name__
    nodes: list[tuple[str, Any]] = []
    leaves: list[str] = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        items = value if isinstance(value, tuple | list) else [value]
        if items and all(dataclasses.is_dataclass(v) for v in items):
            nodes += [(f.name, v) for v in items]
        else:
            leaves.append(f"{f.name}={_leaf(value)}")
    return label, nodes, leaves


def _leaf(value: Any) -> str:
    return str(value) if not isinstance(value, str) else repr(value)


def _tree_html(node: Any, field: str = "") -> str:
    if not dataclasses.is_dataclass(node):
        return f"<li>{esc(_leaf(node))}</li>"
    label, nodes, leaves = _children(node)
    name = f'<span class="govlab-tree-field">{esc(field)}:</span> ' if field else ""
    detail = f' <span class="govlab-tree-leaf">{esc(", ".join(leaves))}</span>' if leaves else ""
    inner = "".join(_tree_html(child, f) for f, child in nodes)
    sub = f"<ul>{inner}</ul>" if inner else ""
    return f'<li>{name}<span class="govlab-tree-node">{esc(label)}</span>{detail}{sub}</li>'


def _tree_lines(node: Any, indent: str) -> list[str]:
    label, nodes, leaves = _children(node)
    lines = [label + (f" ({', '.join(leaves)})" if leaves else "")]
    for i, (name, child) in enumerate(nodes):
        last = i == len(nodes) - 1
        sub = _tree_lines(child, "")
        lines.append(f"{'└── ' if last else '├── '}{name}: {sub[0]}")
        lines += [("    " if last else "│   ") + line for line in sub[1:]]
    return [indent + line for line in lines]


CSS = """<style>
.govlab-lab, .govlab-role-table, .govlab-tree { font-family: system-ui, sans-serif; }
.govlab-rows, .govlab-preview-table, .govlab-legend-table, .govlab-record-table,
.govlab-whatif-table { border-collapse: collapse; font-size: 12px; margin: 4px 0; }
.govlab-rows th, .govlab-rows td, .govlab-preview-table th, .govlab-preview-table td,
.govlab-legend-table th, .govlab-legend-table td, .govlab-record-table th,
.govlab-record-table td, .govlab-whatif-table th, .govlab-whatif-table td {
  border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top;
}
.govlab-rows td.govlab-masked, .govlab-record-table td.govlab-masked {
  background: #fff4e0; color: #8a5300; font-family: monospace;
}
.govlab-rows th.govlab-masked-col { background: #ffe8c2; }
.govlab-mask-tag { font-size: 10px; font-weight: normal; color: #8a5300;
  border: 1px solid #e0b060; border-radius: 3px; padding: 0 3px; }
.govlab-rows td.govlab-null { color: #999; font-style: italic; }
.govlab-record-table td.govlab-raw { background: #e8f5e9; color: #1b5e20; font-family: monospace; }
.govlab-record-table td.govlab-hidden, .govlab-record-table td.govlab-unknown {
  color: #777; font-style: italic; }
.govlab-whatif-changed { background: #fff8c4; }
.govlab-bars table { border-collapse: collapse; font-size: 12px; }
.govlab-bars th { text-align: right; padding: 2px 8px 2px 0; font-weight: normal; }
.govlab-bars-caption { font-size: 12px; color: #555; margin: 4px 0; }
.govlab-bar-track { width: 320px; padding: 2px 0; }
.govlab-bar-of { background: #c5d9f1; height: 14px; min-width: 1px; }
.govlab-bar-value { background: #1f5fa8; height: 14px; }
.govlab-bar-label { padding-left: 8px; white-space: nowrap; }
.govlab-tree ul { list-style: none; margin: 0; padding-left: 18px;
  border-left: 1px dotted #999; }
.govlab-tree-node { font-weight: bold; color: #1f5fa8; }
.govlab-tree-field { color: #777; }
.govlab-tree-leaf { font-family: monospace; font-size: 12px; }
</style>"""
