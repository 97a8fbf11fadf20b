"""The key pass's whole-buffer text matcher (``search.text_match.contains_mask``).

Plain text columns are matched on their folded data buffer at once and each
occurrence given its row by the offsets; these tests pin that to Arrow's own
``match_substring`` over the folded values (what ``policy.to_arrow`` compiles a text
leaf to) on the cases a buffer search can get wrong: a match across two values, values
that are empty or NULL, arrays that are slices of a bigger buffer, both offset widths,
dictionary codes with NULLs, and characters whose case mappings differ between engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from govlab.engines.snapshot import Snapshot
from govlab.generators import get_dataset
from govlab.policy.ast import Cmp, Contains, and_, or_
from govlab.policy.casefold import fold, has_ascii_letter
from govlab.policy.compile import matches
from govlab.search.paging import pk_page
from govlab.search.text_match import contains, contains_mask

SPEC = get_dataset("healthcare")
PK = SPEC.primary_key

TRICKY = "aAbB \u00e9\u00c9\u00dfİıKkſsS\u212a-%"
VALUES = st.lists(st.one_of(st.none(), st.text(alphabet=TRICKY, max_size=6)), max_size=25)
TERMS = st.text(alphabet=TRICKY, min_size=1, max_size=4)


def _arrow(values: pa.Array, term: str) -> pa.Array:
    """Arrow's answer: ``match_substring`` over the ASCII-folded values."""
    if not has_ascii_letter(term):
        return pc.match_substring(values, term)
    return pc.match_substring(pc.ascii_lower(values), fold(term))


def _true(mask: pa.Array) -> np.ndarray:
    flags: np.ndarray = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return flags


@settings(max_examples=300, deadline=None)
@given(
    values=VALUES,
    term=TERMS,
    large=st.booleans(),
    window=st.tuples(st.integers(0, 25), st.integers(0, 25)),
)
def test_buffer_matcher_equals_arrow(
    values: list[str | None], term: str, large: bool, window: tuple[int, int]
) -> None:
    array = pa.array(values, pa.large_string() if large else pa.string())
    start = min(window[0], len(array))
    array = array.slice(start, window[1])  # offsets that do not start at 0
    want = _arrow(array, term)
    assert np.array_equal(contains_mask(array, term), _true(want))
    assert contains(array, term).equals(want)
    encoded = array.dictionary_encode()
    assert np.array_equal(contains_mask(encoded, term), _true(want))


@pytest.mark.parametrize(
    ("values", "term", "want"),
    [
        (["ab", "cd"], "bc", [False, False]),  # across two values: no match
        (["", "abc", "", "xbc"], "bc", [False, True, False, True]),
        (["ASTHMA", "asthma", "Asthmatic", None], "AsThMa", [True, True, True, False]),
        (["aaaa", "aa", "a"], "aaa", [True, False, False]),  # overlapping occurrences
        (["\u212aelvin", "kelvin"], "k", [False, True]),  # one byte: Arrow's kernel
        (["\u212aelvin", "kelvin"], "ke", [False, True]),  # the Kelvin sign is not K
    ],
)
def test_buffer_matcher_cases(values: list[str | None], term: str, want: list[bool]) -> None:
    assert contains_mask(pa.array(values, pa.string()), term).tolist() == want


def test_dictionary_with_null_codes_and_no_entries() -> None:
    indices = pa.array([0, None, 1, 0], pa.int32())
    encoded = pa.DictionaryArray.from_arrays(indices, pa.array(["xAb", "b"]))
    assert contains_mask(encoded, "ab").tolist() == [True, False, False, True]
    no_codes = pa.array([None, None], pa.int32())
    empty = pa.DictionaryArray.from_arrays(no_codes, pa.array([], pa.string()))
    assert contains_mask(empty, "ab").tolist() == [False, False]


def test_key_pass_reads_a_file_without_a_column_through_the_scanner(
    raw_tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    """A row group read directly by its file's reader (``Snapshot.read_group``) must
    give what the scanner gives: where the file lacks a column (added later), the
    scanner fills it in with NULLs and the key pass falls back to it for that group."""
    table = raw_tables["healthcare"].sort_by(PK)
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), tmp_path / "a.parquet", row_group_size=40)
    pq.write_table(table.slice(half).drop_columns(["name"]), tmp_path / "b.parquet")
    dataset = ds.dataset(
        [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], schema=SPEC.schema
    )
    rows = table.slice(0, half).to_pylist() + [
        {**row, "name": None} for row in table.slice(half).to_pylist()
    ]
    for row_filter in [
        or_(Contains("name", "kowalski"), Contains("notes", "asthma")),
        and_(Cmp("clinician_id", "==", "C007", pa.string()), Contains("name", "a")),
        Contains("address", "St"),
    ]:
        want = [r[PK] for r in rows if matches(row_filter, r)]
        for offset in (0, 30):
            page = pk_page(Snapshot(dataset), SPEC, row_filter, False, offset, 20)
            assert page is not None
            assert page.rows.column(PK).to_pylist() == want[offset : offset + 20]
            assert page.total == len(want) and page.exact


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
@pytest.mark.parametrize("role", ["admin", "analyst", "clinician"])
def test_pages_fetched_after_the_key_pass_match_the_oracle(
    grouped: Path,
    raw_tables: dict[str, pa.Table],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    role: str,
) -> None:
    """Where the key pass cannot tell row numbers (the scanner's path), a page's rows
    are found again by key in their groups: the same pages as the oracle."""
    from govlab.search import paging
    from tests.test_search_paths import test_pages_and_totals_match_the_oracle

    monkeypatch.setattr(paging, "_rows_by_position", lambda *args: None)
    rows = raw_tables["healthcare"].to_pylist()
    for q in ["", "asthma", "kowalski", "ASTHMA"]:
        test_pages_and_totals_match_the_oracle(grouped, rows, fmt, role, q)


@pytest.mark.parametrize(
    ("together_group_rows", "together_rows"),
    [(0, 262_144), (16_384, 100), (16_384, 262_144)],
    ids=["group-by-group", "together-in-batches", "together"],
)
def test_groups_matched_together_or_one_by_one_page_alike(
    grouped: Path,
    raw_tables: dict[str, pa.Table],
    monkeypatch: pytest.MonkeyPatch,
    together_group_rows: int,
    together_rows: int,
) -> None:
    """Small row groups are matched as one table per filter (in batches of at most
    ``_TOGETHER_ROWS`` rows): the same pages and totals as the oracle, whichever way
    the groups are read."""
    from govlab.search import paging
    from tests.test_search_paths import test_pages_and_totals_match_the_oracle

    monkeypatch.setattr(paging, "_TOGETHER_GROUP_ROWS", together_group_rows)
    monkeypatch.setattr(paging, "_TOGETHER_ROWS", together_rows)
    rows = raw_tables["healthcare"].to_pylist()
    for fmt, role, q in [
        ("parquet", "admin", "kowalski"),
        ("delta", "clinician", "asthma"),
        ("iceberg", "analyst", "a"),
        ("parquet", "business_user", ""),
    ]:
        test_pages_and_totals_match_the_oracle(grouped, rows, fmt, role, q)


def test_page_rows_are_decoded_by_row_number_up_to_the_last_one(
    grouped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key pass keeps each key's row number: a page decodes its groups only up to
    its last row there (rows are in key order), and a term in no row decodes none."""
    from govlab.config import Settings
    from govlab.search import GovernedSearch, SearchQuery, paging
    from tests.test_search_paths import PRINCIPALS

    calls: list[tuple[int, int, list[str]]] = []
    rows_at = paging._rows_at

    def recorded(group: Any, columns: list[str], positions: Any, *args: Any) -> pa.Table:
        calls.append((group.rows, int(positions.max()), columns))
        return rows_at(group, columns, positions, *args)

    monkeypatch.setattr(paging, "_rows_at", recorded)
    searcher = GovernedSearch(Settings(data_dir=grouped, count_limit=None))
    admin = PRINCIPALS["admin"]
    for fmt in ("delta", "parquet", "iceberg"):
        calls.clear()
        none = searcher.search("healthcare", fmt, admin, SearchQuery(q="xylophone", page_size=5))
        assert none["total"] == 0 and calls == []
        got = searcher.search("healthcare", fmt, admin, SearchQuery(q="e", page_size=5))
        assert len(got["items"]) == 5 and calls
        assert all(last < rows - 1 for rows, last, _ in calls)  # a prefix, not the group
        assert all({"patient_id", "ssn", "name"} <= set(columns) for _, _, columns in calls)
