"""The pure-Python answer to a governed search, computed from generated rows.

Independent of the engines and of the search's own scan logic: it filters rows with
the policy evaluator, sorts in Python and masks the page with the mask functions.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from govlab import masks
from govlab.generators import get_dataset
from govlab.keys import derive_keys
from govlab.policy import Principal, casefold, compile_access
from govlab.policy.compile import matches
from govlab.search import to_json_rows


def oracle_page(
    table: pa.Table,
    loaded: Any,
    dataset: str,
    principal: Principal,
    q: str = "",
    page: int = 1,
    page_size: int = 20,
    secret: bytes = b"",
) -> dict[str, Any]:
    spec = get_dataset(dataset)
    plan = compile_access(loaded, spec, principal)
    searchable = [c for c in spec.searchable if c not in plan.masks]

    def visible(row: dict[str, Any]) -> bool:
        if not matches(plan.row_filter, row):
            return False
        return all(
            any(row[c] is not None and casefold.contains(str(row[c]), term) for c in searchable)
            for term in q.split()
        )

    rows = sorted((r for r in table.to_pylist() if visible(r)), key=lambda r: r[spec.primary_key])
    start = (page - 1) * page_size
    page_rows = pa.Table.from_pylist(rows[start : start + page_size], schema=spec.schema)
    masked = masks.mask_table(page_rows, plan.mask_plan, derive_keys(secret).masks, dataset)
    return {"items": to_json_rows(masked), "total": len(rows)}
