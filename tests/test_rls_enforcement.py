"""Row- and column-level security as the governed search enforces it, in every format.

One oracle, many engines: every role of every shipped policy gets the same page and
total from Delta, Parquet and Iceberg, equal to the pure-Python evaluator's answer.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.errors import AccessDenied, BadRequest
from govlab.generators import DATASETS, get_dataset
from govlab.policy import Principal
from govlab.policy.store import PolicyStore
from govlab.search import GovernedSearch, SearchQuery
from tests.conftest import TEST_SECRET
from tests.oracle import oracle_page

ATTRS = {"id": "C007", "allowed_regions": ["NE", "SW"], "region": "W"}
QUERIES = {
    "healthcare": ["", "asthma", "follow", "new orleans", "zzzz-no-match"],
    "ecommerce": ["", "jacket", "clothing example"],
    "financial": ["", "north", "oklahoma city"],
}


def _roles(dataset: str, settings: Settings) -> list[str]:
    return [r.id for r in PolicyStore(settings).current(dataset).policy.roles]


def _cases() -> list[tuple[str, str]]:
    return [(dataset, q) for dataset, qs in QUERIES.items() for q in qs]


@pytest.mark.parametrize(("dataset", "q"), _cases())
def test_every_role_gets_the_oracle_page_in_every_format(
    seeded: Settings, raw_tables: dict[str, pa.Table], dataset: str, q: str
) -> None:
    searcher = GovernedSearch(seeded)
    loaded = searcher.policies.current(dataset)
    for role in _roles(dataset, seeded):
        principal = Principal(role, ATTRS)
        expected = oracle_page(
            raw_tables[dataset],
            loaded,
            dataset,
            principal,
            q=q,
            page=2 if not q else 1,
            page_size=7,
            secret=TEST_SECRET.encode(),
        )
        for fmt in FORMATS:
            page = searcher.search(
                dataset, fmt, principal, SearchQuery(q=q, page=2 if not q else 1, page_size=7)
            )
            assert page["total"] == expected["total"], (role, fmt)
            assert page["items"] == expected["items"], (role, fmt)


def test_roles_see_different_rows_and_masks(seeded: Settings) -> None:
    searcher = GovernedSearch(seeded)
    query = SearchQuery(q="asthma", page_size=200)
    clinician = searcher.search(
        "healthcare", "delta", Principal("clinician", {"id": "C007"}), query
    )
    business = searcher.search("healthcare", "delta", Principal("business_user"), query)
    admin = searcher.search("healthcare", "delta", Principal("admin"), query)
    assert 0 < clinician["total"] < business["total"] < admin["total"]
    assert {r["clinician_id"] for r in clinician["items"]} == {"C007"}
    assert {r["region"] for r in business["items"]} <= {"NE", "SE", "MW"}
    assert all(r["ssn"] == "*****" for r in clinician["items"])
    assert all(r["ssn"] is None for r in business["items"])
    assert all(r["ssn"].startswith("tok_") for r in admin["items"])


def test_pages_tile_the_result_without_gaps_or_repeats(seeded: Settings) -> None:
    searcher = GovernedSearch(seeded)
    principal = Principal("analyst", ATTRS)
    whole = searcher.search("healthcare", "parquet", principal, SearchQuery(page_size=200))
    ids: list[int] = []
    for page in range(1, whole["total"] // 50 + 2):
        result = searcher.search(
            "healthcare", "parquet", principal, SearchQuery(page=page, page_size=50)
        )
        assert result["total"] == whole["total"]
        ids.extend(r["patient_id"] for r in result["items"])
    assert len(ids) == whole["total"] and ids == sorted(ids) and len(set(ids)) == len(ids)
    beyond = searcher.search(
        "healthcare", "parquet", principal, SearchQuery(page=999, page_size=50)
    )
    assert beyond["items"] == [] and beyond["total"] == whole["total"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sort_descending_on_an_unmasked_column(seeded: Settings, fmt: str) -> None:
    page = GovernedSearch(seeded).search(
        "ecommerce", fmt, Principal("business_user"), SearchQuery(sort="-amount", page_size=30)
    )
    amounts = [r["amount"] for r in page["items"]]
    assert amounts == sorted(amounts, reverse=True) and len(amounts) == 30


def test_masked_or_unknown_sort_column_is_refused(seeded: Settings) -> None:
    searcher = GovernedSearch(seeded)
    with pytest.raises(BadRequest, match="masked column 'ssn'"):
        searcher.search("healthcare", "delta", Principal("analyst", ATTRS), SearchQuery(sort="ssn"))
    with pytest.raises(BadRequest, match="unknown column"):
        searcher.search(
            "healthcare", "delta", Principal("analyst", ATTRS), SearchQuery(sort="-nope")
        )


def test_masked_columns_are_never_searched(
    seeded: Settings, raw_tables: dict[str, pa.Table]
) -> None:
    """An analyst cannot find a row by a raw SSN (or a name) that they only see masked."""
    row = raw_tables["healthcare"].slice(0, 1).to_pylist()[0]
    searcher = GovernedSearch(seeded)
    admin = searcher.search(
        "healthcare", "delta", Principal("data_modeler"), SearchQuery(q=row["ssn"])
    )
    assert admin["total"] == 0  # ssn is masked (hash) for data_modeler too
    by_ssn = searcher.search(
        "healthcare",
        "delta",
        Principal("analyst", {"allowed_regions": [row["region"]]}),
        SearchQuery(q=row["ssn"]),
    )
    by_name = searcher.search(
        "healthcare",
        "delta",
        Principal("analyst", {"allowed_regions": [row["region"]]}),
        SearchQuery(q=row["name"]),
    )
    assert by_ssn["total"] == 0 and by_name["total"] == 0
    clinician = searcher.search(
        "healthcare",
        "delta",
        Principal("clinician", {"id": row["clinician_id"]}),
        SearchQuery(q=row["name"]),
    )
    assert clinician["total"] >= 1  # name is not masked for clinicians


@pytest.mark.parametrize("injected", ["x' OR '1'='1", "1 OR 1=1", "C007' --", '" or ""="'])
@pytest.mark.parametrize("fmt", FORMATS)
def test_attribute_injection_matches_nothing(seeded: Settings, injected: str, fmt: str) -> None:
    page = GovernedSearch(seeded).search(
        "healthcare", fmt, Principal("clinician", {"id": injected}), SearchQuery()
    )
    assert page["total"] == 0 and page["items"] == []


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        (Principal("intern"), "role 'intern' is not defined"),
        (Principal("clinician"), "attribute 'id' is required"),
        (Principal("clinician", {"id": ["C007"]}), "must be a single value"),
        (Principal("analyst", {"allowed_regions": "NE"}), "must be a list"),
        (Principal("clinician", {"id": 7}), "wrong type"),
    ],
)
def test_fail_closed_principals_are_denied(
    seeded: Settings, principal: Principal, message: str
) -> None:
    with pytest.raises(AccessDenied, match=message):
        GovernedSearch(seeded).search("healthcare", "delta", principal, SearchQuery())


def test_validate_reports_rows_masks_and_a_masked_preview(seeded: Settings) -> None:
    result = GovernedSearch(seeded).validate("healthcare", "iceberg", Principal("analyst", ATTRS))
    assert result["rowFilter"] == "\"region\" IN ('NE', 'SW')"
    assert result["maskedColumns"]["ssn"] == "hash" and len(result["preview"]) == 5
    assert all(r["region"] in ("NE", "SW") for r in result["preview"])
    assert 0 < result["rowsVisible"] < 1000


def _raw_masked_values(raw: pa.Table, dataset: str, masked: list[str]) -> set[str]:
    values: set[str] = set()
    for column in masked:
        for v in raw.column(column).to_pylist():
            if v is not None:
                text = v.isoformat() if hasattr(v, "isoformat") else str(v)
                if len(text) >= 6:
                    values.add(text)
    return values


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dataset=st.sampled_from(sorted(DATASETS)),
    fmt=st.sampled_from(FORMATS),
    role_index=st.integers(0, 4),
    q=st.sampled_from(["", "a", "e", "st", "asthma", "1", "-", "@", "example", "north"]),
    page=st.integers(1, 3),
    page_size=st.sampled_from([1, 5, 37, 200]),
)
def test_no_raw_masked_value_leaves_in_any_result(
    seeded: Settings,
    raw_tables: dict[str, pa.Table],
    dataset: str,
    fmt: str,
    role_index: int,
    q: str,
    page: int,
    page_size: int,
) -> None:
    searcher = GovernedSearch(seeded)
    roles = _roles(dataset, seeded)
    principal = Principal(roles[role_index % len(roles)], ATTRS)
    result: dict[str, Any] = searcher.search(
        dataset, fmt, principal, SearchQuery(q=q, page=page, page_size=page_size)
    )
    dumped = json.dumps(result)
    for raw in _raw_masked_values(raw_tables[dataset], dataset, result["maskedFields"]):
        assert raw not in dumped
    spec = get_dataset(dataset)
    assert set(result["maskedFields"]) <= set(spec.schema.names)
