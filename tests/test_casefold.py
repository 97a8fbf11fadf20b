"""What case-insensitive means, identically in every target (``policy/casefold.py``).

ASCII letters fold, every other character only matches itself. The oracle, the Arrow
expression, the in-process key-pass matcher (``search.text_match.contains``), Daft and the
exported SQL on DuckDB and SQLite must select the same rows for the same term, on
text full of characters whose Unicode case mappings differ between engines.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govlab.policy import casefold
from govlab.policy.ast import Contains
from govlab.policy.compile import matches, to_arrow
from govlab.search.text_match import contains as key_pass_contains
from tests.target_helpers import daft_ids, duckdb_ids, sqlite_export_ids, text_rows

# Characters whose lower/upper/fold mappings differ between Python, Rust, ICU, RE2,
# utf8proc and Java: German sharp s (and its capital), Turkish dotted/dotless i, Greek
# sigma (final form), Kelvin sign, long s, accented Latin, plus plain ASCII.
TRICKY = "ß\u1e9eİıiI\u212akſsSΣσςÉéÜüAaZz -_%\\'\""
VALUES = st.lists(st.one_of(st.none(), st.text(alphabet=TRICKY, max_size=8)), max_size=12)
TERMS = st.text(alphabet=TRICKY, min_size=1, max_size=3)


def every_target(values: list[str | None], term: str) -> dict[str, set[int]]:
    table, con, rows = text_rows(values)
    expr = Contains("s", term)
    arrow = set(table.filter(to_arrow(expr))["id"].to_pylist())
    mask = key_pass_contains(table.column("s").combine_chunks(), term)
    key_pass = {i for i, hit in enumerate(mask.to_pylist()) if hit}
    return {
        "oracle": {r["id"] for r in rows if matches(expr, r)},
        "arrow": arrow,
        "key_pass": key_pass,
        "daft": daft_ids(expr, table),
        "duckdb": duckdb_ids(expr, table),
        "sqlite": sqlite_export_ids(expr, con),
    }


@pytest.mark.parametrize(
    ("value", "term", "found"),
    [
        ("Straße", "STRASSE", False),  # no expansion of ß
        ("Straße", "straße", True),
        ("STRAẞE", "straße", False),  # capital sharp s is another character
        ("İstanbul", "istanbul", False),  # İ is not I
        ("İstanbul", "STANBUL", True),
        ("ıi", "I", True),  # the ASCII i only
        ("ΣΑΣ", "σας", False),  # Greek does not fold
        ("\u212a", "k", False),  # Kelvin sign
        ("ſ", "s", False),  # long s
        ("MÜLLER", "müller", False),  # the price of ASCII folding
        ("Müller", "MÜLLER", False),
        ("Müller", "mÜLLER", False),
        ("Müller", "mü", True),
        ("50%_off", "%_O", True),  # LIKE wildcards are plain characters
        ("a\\b", "A\\B", True),
    ],
)
def test_case_folding_examples(value: str, term: str, found: bool) -> None:
    assert casefold.contains(value, term) is found
    results = every_target([value, None], term)
    for target, ids in results.items():
        assert ids == ({0} if found else set()), target


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=VALUES, term=TERMS)
def test_property_every_target_folds_case_like_the_oracle(values, term) -> None:
    results = every_target(values, term)
    expected = results.pop("oracle")
    for target, ids in results.items():
        assert ids == expected, (target, values, term)


def test_ascii_folding_is_length_preserving_and_idempotent() -> None:
    for text in ["", "ABC", "ßİΣ", "MiXeD 123"]:
        folded = casefold.fold(text)
        assert len(folded) == len(text)
        assert casefold.fold(folded) == folded
    assert casefold.fold("AZaz[@`{") == "azaz[@`{"
    assert not casefold.has_ascii_letter("ßİ 12")
    assert casefold.has_ascii_letter("ßa")


def test_key_pass_matcher_on_dictionary_values() -> None:
    values = pa.array(["İx", "ix", "IX", None]).dictionary_encode()
    assert key_pass_contains(values, "IX").to_pylist() == [False, True, True, None]


def test_the_page_cache_key_folds_exactly_as_the_search_does(seeded) -> None:  # type: ignore[no-untyped-def]
    """Two queries share a cached page only when they match the same rows: ASCII case
    does not matter, any other character does (``MÜLLER`` is not ``müller``)."""
    from govlab.keys import derive_keys
    from govlab.policy import Principal
    from govlab.search import GovernedSearch, SearchQuery
    from govlab.service.cache import page_key
    from tests.conftest import TEST_SECRET

    searcher = GovernedSearch(seeded)
    keys = derive_keys(TEST_SECRET.encode())

    def key(q: str) -> str:
        prepared = searcher.prepare("healthcare", "delta", Principal("admin"), SearchQuery(q=q))
        return page_key(prepared, Principal("admin"), keys)

    assert key("MULLER") == key("muller") == key("MuLlEr")
    assert key("MÜLLER") != key("müller")
    assert key("İx") != key("ix")
