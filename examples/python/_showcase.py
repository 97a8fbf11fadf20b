"""What the Python examples share: the rows they load, the two principals they search
as, and the printing of two roles' views of one dataset side by side.

A "view" is one governed search page (the dict ``GovernedSearch.search`` returns, or the
JSON body of ``GET /search``) plus a label. The printing never reads raw data: every
value printed is a value the role was served, already masked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from govlab.config import Settings
from govlab.errors import GovlabError
from govlab.generators import get_dataset, iter_batches
from govlab.policy import Principal
from govlab.search import GovernedSearch, SearchQuery

MAX_CELL = 34
DATASET = "healthcare"
CLINICIAN_ID = "C007"
# (label, role, attributes): the two principals every example searches as. In the API
# they are signed token claims; in-process they are govlab.policy.Principal objects.
PRINCIPALS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (f"clinician (id={CLINICIAN_ID})", "clinician", {"id": CLINICIAN_ID}),
    ("business_user", "business_user", {}),
)


def build_admissions(n_rows: int, seed: int = 42) -> pa.Table:
    """``n_rows`` generated admissions plus three written by hand, as one Arrow table in
    govlab's healthcare schema (the schema the policy in governance/healthcare.yaml binds).

    The generated part comes from govlab's deterministic generator; the hand-written
    rows show the schema an external producer has to match.
    """
    spec = get_dataset(DATASET)
    generated = pa.Table.from_batches(list(iter_batches(spec, n_rows, seed)), schema=spec.schema)
    first = n_rows + 1
    by_hand = pa.table(
        {
            "patient_id": [first, first + 1, first + 2],
            "name": ["Ada Quinn", "Bo Lindqvist", "Cy Mensah"],
            "ssn": ["123-45-6789", "987-65-4320", "555-12-3456"],
            "dob": [dt.date(1984, 7, 2), dt.date(1990, 1, 15), dt.date(1975, 11, 30)],
            "address": [
                "12 Oak St, Springfield, IL 62704",
                "9 Elm Ave, Hartford, CT 06103",
                "410 Pine Rd, Boston, MA 02118",
            ],
            "region": ["NE", "NE", "NE"],
            "condition": ["asthma", "asthma", "migraine"],
            "clinician_id": [CLINICIAN_ID, CLINICIAN_ID, "C003"],
            "admitted_at": [
                dt.datetime(2025, 3, 1, 9, 30),
                dt.datetime(2025, 3, 2, 14, 5),
                dt.datetime(2025, 3, 3, 8, 0),
            ],
            "notes": ["hand-entered: asthma follow-up", "hand-entered: inhaler refill", None],
            "insurance_id": ["AET-000000001", None, "UHC-000000003"],
        },
        schema=spec.schema,
    )
    return pa.concat_tables([generated, by_hand])


@dataclass
class View:
    label: str
    page: Mapping[str, Any]
    masks: Mapping[str, str] = field(default_factory=dict)  # column -> mask description

    @property
    def total(self) -> int:
        return int(self.page["total"])

    @property
    def masked(self) -> list[str]:
        return list(self.page["maskedFields"])

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.page["items"])


def cell(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(header)
    ]
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_summary(views: Sequence[View]) -> None:
    """Rows visible (RLS) and masked fields (CLS) per role: the lines tests look for."""
    print("Row-level security (rows each role may see) and column masks:")
    for view in views:
        masked = ", ".join(view.masked) or "(none)"
        print(f"  {view.label}: {view.total} rows visible; masked: {masked}")
    if len(views) == 2:
        a, b = views
        only_a = sorted(set(a.masked) - set(b.masked))
        only_b = sorted(set(b.masked) - set(a.masked))
        print(f"  masked only for {a.label}: {', '.join(only_a) or '(none)'}")
        print(f"  masked only for {b.label}: {', '.join(only_b) or '(none)'}")
    print()


def print_masks(views: Sequence[View], columns: Sequence[str]) -> None:
    if not any(view.masks for view in views):
        return
    print("Column masks per role:")
    rows = [[c, *(v.masks.get(c, "-") for v in views)] for c in columns]
    print_table(["column", *(v.label for v in views)], rows)
    print()


def print_rows_side_by_side(views: Sequence[View], n_rows: int) -> None:
    """The first rows of each role's page, one column per (role, row)."""
    header = ["column"]
    records: list[dict[str, Any]] = []
    for view in views:
        for i, item in enumerate(view.items[:n_rows], start=1):
            header.append(f"{view.label} #{i}")
            records.append(item)
    if not records:
        print("(no rows to show)\n")
        return
    columns = list(dict.fromkeys(c for r in records for c in r))
    print(f"First {n_rows} row(s) of each role's page:")
    print_table(header, [[c, *(r.get(c) for r in records)] for c in columns])
    print()


def print_same_record(
    key: str, value: Any, records: Sequence[tuple[str, Mapping[str, Any] | None]]
) -> None:
    """One record as each role is served it (None: the role may not see it)."""
    print(f"The same record ({key}={value}) as each role sees it:")
    columns = list(dict.fromkeys(c for _, r in records if r for c in r))
    rows = [[c, *((r.get(c) if r else "(row not visible)") for _, r in records)] for c in columns]
    print_table(["column", *(label for label, _ in records)], rows)
    print()


def find_by_key(
    fetch_page: Callable[[int], Mapping[str, Any]], key: str, value: Any, max_pages: int = 10
) -> dict[str, Any] | None:
    """Page through a role's results sorted by ``key`` ascending until ``value`` shows up.

    ``fetch_page(n)`` returns page n of the role's search sorted by the primary key; the
    role's own row filter decides whether the record is there at all.
    """
    for page_number in range(1, max_pages + 1):
        page = fetch_page(page_number)
        for item in page["items"]:
            if item[key] == value:
                return dict(item)
            if item[key] > value:
                return None
        if page_number * int(page["pageSize"]) >= int(page["total"]):
            return None
    return None


def problems_with(views: Sequence[View]) -> list[str]:
    """What would make the comparison meaningless: a role that sees nothing, or a
    clinician page holding another clinician's patients (the row filter binds ``id``)."""
    problems = [f"{v.label} sees no rows" for v in views if v.total == 0]
    for view in views:
        if view.label.startswith("clinician"):
            others = {i.get("clinician_id") for i in view.items} - {CLINICIAN_ID}
            if others:
                problems.append(f"{view.label} was served rows of other clinicians")
    return problems


def search_in_process(settings: Settings, fmt: str, q: str, page_size: int, n_rows: int) -> int:
    """Search ``fmt``'s healthcare table in-process as both principals and print the
    differences; returns the exit status (1 when the comparison shows a problem)."""
    searcher = GovernedSearch(settings)
    spec = get_dataset(DATASET)
    views, principals = [], []
    for label, role, attrs in PRINCIPALS:
        principal = Principal(role=role, attrs=attrs, sub=f"{role}-example")
        principals.append(principal)
        page = searcher.search(DATASET, fmt, principal, SearchQuery.parse(q, 1, page_size, None))
        plan = searcher.plan(DATASET, principal)[2]
        masks = {column: mask.describe() for column, mask in plan.masks.items()}
        views.append(View(label, page, masks))

    print(f"== {DATASET} / {fmt}, q={q!r} ==")
    print_summary(views)
    print_masks(views, spec.schema.names)
    print_rows_side_by_side(views, n_rows)

    clinician, business = views
    if clinician.items:
        key = spec.primary_key
        value = clinician.items[0][key]

        def business_page(number: int) -> dict[str, Any]:
            query = SearchQuery.parse(q, number, 200, key)
            return searcher.search(DATASET, fmt, principals[1], query)

        same = find_by_key(business_page, key, value)
        print_same_record(
            key, value, [(clinician.label, clinician.items[0]), (business.label, same)]
        )

    problems = problems_with(views)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def example_parser(description: str) -> argparse.ArgumentParser:
    """The options every in-process loading example shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", help="govlab data root (default: GOVLAB_DATA_DIR or temp)")
    parser.add_argument("--rows", type=int, default=2_000, help="generated rows (default 2000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("-q", "--q", default="", help="search text (default: every row)")
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--show-rows", type=int, default=2, help="rows per role to print")
    parser.add_argument("--keep", action="store_true", help="keep a temporary data root")
    return parser


def run_loading_example(
    args: argparse.Namespace, fmt: str, load: Callable[[Settings, Path], None]
) -> int:
    """Data root (a temporary one unless given), ``load(settings, staging_dir)`` to build
    and register the table, then the in-process search as each role; exit code."""
    data_dir = args.data_dir or os.environ.get("GOVLAB_DATA_DIR")
    temporary = data_dir is None
    settings = Settings.from_env(data_dir or tempfile.mkdtemp(prefix=f"govlab-{fmt}-example-"))
    print(f"data root: {settings.data_dir}\n")
    try:
        with tempfile.TemporaryDirectory(prefix=f"incoming-{fmt}-") as staging:
            load(settings, Path(staging))
        return search_in_process(settings, fmt, args.q, args.page_size, args.show_rows)
    except GovlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary and not args.keep:
            shutil.rmtree(settings.data_dir, ignore_errors=True)
        elif temporary:
            print(f"kept data root {settings.data_dir}")
