"""Comparing roles: which roles to put side by side, which record to show column by
column, and what each role sees of it. Plain data, no ipywidgets, no HTTP.

Every value here comes from a page the API served to that role with that role's own
token (``RoleView.page``): a raw value appears only for a role whose policy leaves the
column unmasked, because the server sent it raw to that role. Nothing is unmasked or
derived on the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from govlab.lab.views import RecordCell, cell_text

#: Roles compared at once: two or three fit side by side on a page.
MAX_COMPARED = 3
#: Rows each compared role's page holds (the record is looked for in these): the API's
#: largest page, so that at the tiny size every role's matches are all there.
COMPARE_PAGE_SIZE = 200
#: Rows of each role shown in the side-by-side tables.
SHOWN_ROWS = 5


Plans = Mapping[str, tuple[str, frozenset[str]]]
"""role -> (bound row filter as SQL, masked columns)."""


@dataclass
class RoleView:
    """What one role got from the API: its dry run and its page for the query."""

    role: str
    attrs: dict[str, Any] = field(default_factory=dict)
    visible: int | None = None  # rows after RLS (validate), None without a table
    filter: str | None = None
    masks: dict[str, str] = field(default_factory=dict)
    page: dict[str, Any] | None = None
    error: str | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return list((self.page or {}).get("items", []))

    @property
    def matches(self) -> int | None:
        return None if self.page is None else int(self.page["total"])

    @property
    def exact(self) -> bool:
        return bool((self.page or {}).get("totalExact", True))


def default_roles(roles: Sequence[str], acting: str, plans: Plans) -> list[str]:
    """The acting role, then the roles that differ most: first those with another row
    filter, then those with other masks (``plans``: role -> (bound filter, masked
    columns); roles missing from it cannot bind and are left out)."""
    chosen = [acting] if acting in plans else []
    for differs in (_other_filter, _other_masks):
        for role in roles:
            if len(chosen) >= MAX_COMPARED:
                return chosen
            if role not in chosen and role in plans and differs(plans, role, chosen):
                chosen.append(role)
    return chosen


def _other_filter(plans: Plans, role: str, chosen: list[str]) -> bool:
    return all(plans[role][0] != plans[c][0] for c in chosen)


def _other_masks(plans: Plans, role: str, chosen: list[str]) -> bool:
    return all(plans[role] != plans[c] for c in chosen)


def choose_record(views: Sequence[RoleView], pk: str, acting: str) -> Any | None:
    """A key of the acting role's rows (else of any compared role) that the most other
    compared roles also have on their pages, the smallest among equals: the record then
    shows as many roles' views of it as the pages allow."""
    with_pages = [v for v in views if v.page is not None and v.error is None]
    if not with_pages:
        return None
    keys = [{row[pk] for row in v.items} for v in with_pages]
    own = [v for v in with_pages if v.role == acting] or with_pages
    candidates = sorted({row[pk] for v in own for row in v.items})
    if not candidates:
        return None
    return max(candidates, key=lambda k: (sum(k in found for found in keys), -_rank(k)))


def _rank(key: Any) -> float:
    """Smaller keys first among equals (keys are integers in every dataset)."""
    return float(key) if isinstance(key, int | float) else 0.0


def record_cells(
    views: Sequence[RoleView], pk: str, key: Any, columns: Sequence[str], hidden_text: str
) -> dict[str, dict[str, RecordCell]]:
    """role -> column -> what that role was served of the record ``pk == key``."""
    return {v.role: _cells_for(v, pk, key, columns, hidden_text) for v in views}


def _cells_for(
    view: RoleView, pk: str, key: Any, columns: Sequence[str], hidden_text: str
) -> dict[str, RecordCell]:
    row = next((r for r in view.items if r.get(pk) == key), None)
    if row is None:
        kind = "hidden" if _surely_absent(view, pk, key) else "unknown"
        text = hidden_text if kind == "hidden" else "not on the rows read"
        return {c: RecordCell(kind, text) for c in columns}
    return {
        c: RecordCell("masked", cell_text(row.get(c)), view.masks[c])
        if c in view.masks
        else RecordCell("raw", cell_text(row.get(c)))
        for c in columns
    }


def _surely_absent(view: RoleView, pk: str, key: Any) -> bool:
    """Pages come in primary-key order: a key below the page's last one, or a page that
    holds every match, would have been on it."""
    page = view.page
    if page is None or view.error is not None:
        return False
    items = view.items
    complete = page.get("page") == 1 and view.exact and int(page["total"]) <= len(items)
    return complete or (bool(items) and items[-1][pk] > key)


def unsearched(searchable: Sequence[str], masks: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(searched, not searched): a masked column is never matched against ``q``."""
    searched = [c for c in searchable if c not in masks]
    return searched, [c for c in searchable if c in masks]
