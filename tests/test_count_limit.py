"""The count strategy of the default (primary-key) order: exact up to a limit, then a
lower bound, with pages that are exactly the pages of an exact count.

The ``grouped`` tables are written with tiny row groups, so a tiny dataset has many
groups per partition, as a 5M-row table has: that is what lets counting stop early.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from govlab.config import Settings, count_limit_from_env
from govlab.engines import FORMATS
from govlab.lab.client import describe_total
from govlab.policy import Principal
from govlab.search import GovernedSearch, SearchQuery

LIMIT = 5
PAGE = 4
CASES = [
    # (role, query): a row filter on a non-partition column, a text match, both
    (Principal("clinician", {"id": "C007"}), ""),
    (Principal("admin"), "e"),
    (Principal("analyst", {"allowed_regions": ["NE", "SW", "W"]}), "a"),
]


def searchers(root: Path) -> tuple[GovernedSearch, GovernedSearch]:
    """(limited to LIMIT, always exact) over the same data root."""
    limited = GovernedSearch(Settings(data_dir=root, count_limit=LIMIT))
    exact = GovernedSearch(Settings(data_dir=root, count_limit=None))
    return limited, exact


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("principal", "q"), CASES)
@pytest.mark.parametrize("sort", [None, "-patient_id"])
def test_limited_count_is_a_lower_bound_over_the_same_pages(
    grouped: Path, fmt: str, principal: Principal, q: str, sort: str | None
) -> None:
    limited, exact = searchers(grouped)
    whole = exact.search("healthcare", fmt, principal, SearchQuery(q=q, sort=sort))
    assert whole["totalExact"] is True
    assert whole["total"] > 3 * LIMIT, "the case must have more matches than the limit"
    for page in (1, 2, LIMIT // PAGE + 3):  # the last one starts beyond the limit
        query = SearchQuery(q=q, page=page, page_size=PAGE, sort=sort)
        got = limited.search("healthcare", fmt, principal, query)
        want = exact.search("healthcare", fmt, principal, query)
        assert got["items"] == want["items"], page
        assert want["total"] == whole["total"]
        if got["totalExact"]:
            assert got["total"] == whole["total"]
        else:
            end = (page - 1) * PAGE + len(got["items"])
            assert max(LIMIT, end) <= got["total"] < whole["total"]
    first = limited.search(
        "healthcare", fmt, principal, SearchQuery(q=q, page_size=PAGE, sort=sort)
    )
    assert first["totalExact"] is False, "counting should stop early with many row groups"


@pytest.mark.parametrize("fmt", FORMATS)
def test_paging_to_the_end_with_a_limited_count_yields_every_match_once(
    grouped: Path, fmt: str
) -> None:
    limited, exact = searchers(grouped)
    principal, q = CASES[1]
    whole = exact.search("healthcare", fmt, principal, SearchQuery(q=q, page_size=200))
    ids: list[int] = []
    page = 1
    while True:
        query = SearchQuery(q=q, page=page, page_size=PAGE * 10)
        got = limited.search("healthcare", fmt, principal, query)
        if not got["items"]:
            assert got["totalExact"] is True and got["total"] == whole["total"]
            break
        ids += [row["patient_id"] for row in got["items"]]
        page += 1
    assert len(ids) == whole["total"] and ids == sorted(set(ids))


@pytest.mark.parametrize("fmt", FORMATS)
def test_exact_total_request_and_partition_filters_count_exactly(grouped: Path, fmt: str) -> None:
    limited, exact = searchers(grouped)
    principal, q = CASES[1]
    asked = limited.search("healthcare", fmt, principal, SearchQuery(q=q, exact_total=True))
    whole = exact.search("healthcare", fmt, principal, SearchQuery(q=q))
    assert asked["totalExact"] is True and asked["total"] == whole["total"]
    # a filter on the partition column alone is counted from metadata: exact and cheap
    broad = limited.search("healthcare", fmt, Principal("business_user"), SearchQuery())
    assert broad["totalExact"] is True and broad["total"] > LIMIT
    # validate reports the exact number of visible rows, whatever the limit
    clinician = CASES[0][0]
    report = limited.validate("healthcare", fmt, clinician)
    assert (
        report["rowsVisible"] == exact.search("healthcare", fmt, clinician, SearchQuery())["total"]
    )


def test_count_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVLAB_COUNT_LIMIT", raising=False)
    assert count_limit_from_env() == 10_000
    monkeypatch.setenv("GOVLAB_COUNT_LIMIT", "250")
    assert count_limit_from_env() == 250
    assert Settings.from_env("/tmp/x").count_limit == 250
    monkeypatch.setenv("GOVLAB_COUNT_LIMIT", "0")
    assert count_limit_from_env() is None
    for bad in ("ten", "-5", "1.5"):
        monkeypatch.setenv("GOVLAB_COUNT_LIMIT", bad)
        with pytest.raises(ValueError, match="GOVLAB_COUNT_LIMIT"):
            count_limit_from_env()


def test_describe_total() -> None:
    assert describe_total({"total": 10_000, "totalExact": False}) == "10,000+"
    assert describe_total({"total": 1234, "totalExact": True}) == "1,234"
    assert describe_total({"total": 7}) == "7"
