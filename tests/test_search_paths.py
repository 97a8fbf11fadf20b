"""The key pass of the primary-key page (``search.paging.pk_page``, ``search.text_match``).

It evaluates the row filter itself (cheap conjuncts first, leaves on dictionary
columns once per entry, text on the rows left) and keeps only what the page and the
count need. These tests pin that it answers exactly what the plain answer is:

* pages and totals equal a pure-Python oracle over the generated rows, for every role
  (the clinician's ``clinician_id == ${user.id}`` with text, too), common, rare and
  absent terms, several terms, pages and both orders;
* masked columns are never searched: a value that only a masked column holds finds
  nothing, for every role;
* text matches as the Arrow target (``policy.to_arrow``, ASCII case folding) does, on
  plain and on dictionary arrays, with non-ASCII case-folding traps, and random
  filters select the rows Arrow's own filter selects;
* non-ASCII values written by every engine give the pages a full Arrow scan gives.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from govlab.config import Settings
from govlab.engines import FORMATS, get_engine
from govlab.generators import get_dataset
from govlab.generators.base import DatasetSpec
from govlab.policy import Principal, casefold
from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    NotIn,
    NotNull,
    Or,
    and_,
)
from govlab.policy.compile import matches, to_arrow
from govlab.search import GovernedSearch, SearchQuery, text_match
from govlab.search.paging import _first_keys, _KeyPass, key_plan, pk_page

SPEC = get_dataset("healthcare")
PK = SPEC.primary_key
PRINCIPALS = {
    "admin": Principal("admin"),
    "analyst": Principal("analyst", {"allowed_regions": ["NE", "SW"]}),
    "clinician": Principal("clinician", {"id": "C007"}),
    "business_user": Principal("business_user"),
}
# common, rare (a last name: about 1% of rows), absent, two terms, upper case,
# non-ASCII on ASCII data, a digit-only term
TERMS = ["", "asthma", "kowalski", "xylophone", "asthma follow", "ASTHMA", "é", "1"]
PAGES = [(1, 7), (3, 7), (40, 7)]


def _oracle_keys(rows: list[dict[str, Any]], plan: Any, q: str, descending: bool) -> list[int]:
    """Keys of the rows the role may see and every term matches, on unmasked
    searchable columns only, in page order (independent of the engines)."""
    searchable = [c for c in SPEC.searchable if c not in plan.masks]

    def visible(row: dict[str, Any]) -> bool:
        if not matches(plan.row_filter, row):
            return False
        return all(
            any(row[c] is not None and casefold.contains(str(row[c]), term) for c in searchable)
            for term in q.split()
        )

    return sorted((r[PK] for r in rows if visible(r)), reverse=descending)


@pytest.fixture(scope="module")
def healthcare_rows(raw_tables: dict[str, pa.Table]) -> list[dict[str, Any]]:
    return raw_tables["healthcare"].to_pylist()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("role", list(PRINCIPALS))
@pytest.mark.parametrize("q", TERMS)
def test_pages_and_totals_match_the_oracle(
    grouped: Path, healthcare_rows: list[dict[str, Any]], fmt: str, role: str, q: str
) -> None:
    searcher = GovernedSearch(Settings(data_dir=grouped, count_limit=None))
    principal = PRINCIPALS[role]
    for sort, (page, size) in itertools.product([None, f"-{PK}"], PAGES):
        query = SearchQuery(q=q, page=page, page_size=size, sort=sort)
        prepared = searcher.prepare("healthcare", fmt, principal, query)
        want = _oracle_keys(healthcare_rows, prepared.plan, q, descending=sort is not None)
        got = searcher.run(prepared)
        offset = (page - 1) * size
        assert [item[PK] for item in got["items"]] == want[offset : offset + size], (sort, page)
        assert got["total"] == len(want) and got["totalExact"] is True


def test_the_cases_cover_rare_absent_and_clinician_text(
    healthcare_rows: list[dict[str, Any]], seeded: Settings
) -> None:
    """The terms above mean what their comments say on the seeded rows."""
    searcher = GovernedSearch(seeded)
    counts = {}
    for role, q in [("admin", "kowalski"), ("admin", "xylophone"), ("clinician", "asthma")]:
        _, _, plan = searcher.plan("healthcare", PRINCIPALS[role])
        counts[(role, q)] = len(_oracle_keys(healthcare_rows, plan, q, False))
    assert 0 < counts[("admin", "kowalski")] <= 0.03 * len(healthcare_rows)
    assert counts[("admin", "xylophone")] == 0
    assert counts[("clinician", "asthma")] > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_counting_stops_early_with_the_same_pages(grouped: Path, fmt: str) -> None:
    """With a count limit, the clinician's text search has the exact pages and a total
    that is exact or a flagged lower bound."""
    limited = GovernedSearch(Settings(data_dir=grouped, count_limit=3))
    exact = GovernedSearch(Settings(data_dir=grouped, count_limit=None))
    for q in ("", "a", "e"):
        for page in (1, 2, 5):
            query = SearchQuery(q=q, page=page, page_size=2)
            got = limited.search("healthcare", fmt, PRINCIPALS["clinician"], query)
            want = exact.search("healthcare", fmt, PRINCIPALS["clinician"], query)
            assert got["items"] == want["items"]
            if got["totalExact"]:
                assert got["total"] == want["total"]
            else:
                assert (page - 1) * 2 + len(got["items"]) <= got["total"] <= want["total"]


# ---------------------------------------------------------------------- masked columns
def _only_in(rows: list[dict[str, Any]], column: str, others: list[str]) -> str:
    """A value of ``column`` that no other listed column of any row contains."""
    for row in rows:
        value = row[column]
        if value and not any(
            value.lower() in str(r[c]).lower() for r in rows for c in others if r[c]
        ):
            return str(value)
    raise AssertionError(f"no value of {column} is unique to it")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("role", list(PRINCIPALS))
def test_masked_columns_are_never_searched(
    seeded: Settings, healthcare_rows: list[dict[str, Any]], fmt: str, role: str
) -> None:
    searcher = GovernedSearch(seeded)
    principal = PRINCIPALS[role]
    _, _, plan = searcher.plan("healthcare", principal)
    masked = [c for c in SPEC.searchable if c in plan.masks]
    assert masked, f"{role} masks no searchable column"
    visible = [c for c in SPEC.searchable if c not in plan.masks]
    for column in masked:
        probe = _only_in(healthcare_rows, column, visible)
        query = SearchQuery(q=probe.split()[0] if column != "ssn" else probe, exact_total=True)
        want = _oracle_keys(healthcare_rows, plan, query.q, False)
        got = searcher.search("healthcare", fmt, principal, query)
        assert got["total"] == len(want)
        if column == "ssn":  # an SSN appears in no other column: nothing can match
            assert got["total"] == 0 and got["items"] == []
        masked_values = {row[column] for row in healthcare_rows}
        assert not any(item[column] in masked_values - {None} for item in got["items"])


# ---------------------------------------------------------------------- the evaluator
TRAPS = [
    "Straße",
    "STRASSE",
    "ǅemal",
    "İstanbul",
    "istanbul",
    "ſun",
    "Kelvin \u212a",
    "kelvin k",
    "\ufb01re",
    "FIRE",
    "émile",
    "ÉMILE",
    "",
    "plain ascii",
    "Asthma",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    None,
]
TRAP_TERMS = [
    "ß",
    "ss",
    "İ",
    "i",
    "ſ",
    "s",
    "K",
    "k",
    "\ufb01",
    "fi",
    "é",
    "É",
    "asth",
    "σ",
    "Σ",
    "1",
]


def _trap_batch(n: int = 400, seed: int = 3) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    plain = pa.array([TRAPS[i] for i in rng.integers(0, len(TRAPS), n)], pa.string())
    codes = pa.array(rng.integers(0, len(TRAPS), n), pa.int32())
    codes = pc.if_else(pa.array(rng.random(n) < 0.1), pa.scalar(None, pa.int32()), codes)
    vocab = pa.array([t if t is not None else "" for t in TRAPS], pa.string())
    coded = pa.DictionaryArray.from_arrays(codes, vocab)
    ints = pa.array(rng.integers(0, 10, n), pa.int64())
    ints = pc.if_else(pa.array(rng.random(n) < 0.2), pa.scalar(None, pa.int64()), ints)
    return pa.RecordBatch.from_arrays([plain, coded, ints], names=["p", "d", "n"])


def _arrow_true(expr: Expr, batch: pa.RecordBatch) -> np.ndarray:
    """Arrow's own answer: the rows its filter keeps (dictionary columns decoded)."""
    decoded = pa.table(
        {
            "p": batch.column("p"),
            "d": batch.column("d").cast(pa.string()),
            "n": batch.column("n"),
            "__row": pa.array(np.arange(batch.num_rows)),
        }
    )
    mask = np.zeros(batch.num_rows, dtype=bool)
    mask[decoded.filter(to_arrow(expr)).column("__row").to_numpy()] = True
    return mask


@pytest.mark.parametrize("column", ["p", "d"])
@pytest.mark.parametrize("term", TRAP_TERMS)
def test_text_leaves_match_as_arrow_does(column: str, term: str) -> None:
    batch = _trap_batch()
    leaf = Contains(column, term)
    dictionary = frozenset({"d"})
    want = _arrow_true(leaf, batch)
    assert np.array_equal(text_match.true_mask(leaf, batch, None, dictionary), want)
    rows = np.arange(0, batch.num_rows, 3)
    assert np.array_equal(text_match.true_mask(leaf, batch, rows, dictionary), want[rows])


def _random_leaf(rng: np.random.Generator) -> Expr:
    kind = rng.integers(0, 7)
    column = ["p", "d"][rng.integers(0, 2)]
    value = TRAPS[rng.integers(0, len(TRAPS) - 1)]
    number = int(rng.integers(0, 10))
    leaves: list[Expr] = [
        Contains(column, TRAP_TERMS[rng.integers(0, len(TRAP_TERMS))]),
        Cmp(column, ["==", "!=", "<", ">="][rng.integers(0, 4)], value, pa.string()),
        In(column, (value, TRAPS[0]), pa.string()),
        NotIn(column, (value,), pa.string()),
        Cmp("n", ["==", "!=", "<", ">="][rng.integers(0, 4)], number, pa.int64()),
        IsNull(["p", "d", "n"][rng.integers(0, 3)]),
        NotNull(["p", "d", "n"][rng.integers(0, 3)]),
    ]
    return leaves[kind]


def _random_expr(rng: np.random.Generator, depth: int = 0) -> Expr:
    if depth >= 2 or rng.random() < 0.35:
        return _random_leaf(rng)
    children = tuple(_random_expr(rng, depth + 1) for _ in range(rng.integers(2, 4)))
    return And(children) if rng.random() < 0.5 else Or(children)


def test_random_filters_select_what_arrow_selects() -> None:
    rng = np.random.default_rng(11)
    batch = _trap_batch(600, seed=5)
    for _ in range(300):
        expr = _random_expr(rng)
        got = text_match.true_mask(expr, batch, None, frozenset({"d"}))
        assert np.array_equal(got, _arrow_true(expr, batch)), expr


def test_partition_values_decide_their_leaves() -> None:
    schema = pa.schema([("region", pa.string()), ("x", pa.int64())])
    expr = and_(In("region", ("NE", "SW"), pa.string()), Cmp("x", ">", 3, pa.int64()))
    assert text_match.bind_constants(expr, {"region": "NE"}, schema) == Cmp("x", ">", 3, pa.int64())
    assert isinstance(text_match.bind_constants(expr, {"region": "W"}, schema), AlwaysFalse)
    assert text_match.bind_constants(IsNull("region"), {"region": None}, schema) == AlwaysTrue()


# ---------------------------------------------------------------------- the key pass
def test_low_cardinality_columns_are_read_as_dictionaries(seeded: Settings) -> None:
    for fmt in FORMATS:
        snapshot = get_engine(fmt, seeded).snapshot(SPEC)
        terms = Or(tuple(Contains(c, "asthma") for c in ("name", "condition", "notes")))
        visible = and_(Cmp("clinician_id", "==", "C007", pa.string()), terms)
        plan = key_plan(snapshot, SPEC, visible)
        assert plan.filter == visible and plan.scan_filter is None
        assert {"clinician_id", "condition", "notes"} <= plan.dictionary, fmt
        assert PK not in plan.dictionary and SPEC.partition_by not in plan.dictionary


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_key_pass_keeps_only_what_the_page_needs(grouped: Path, fmt: str) -> None:
    snapshot = get_engine(fmt, Settings(data_dir=grouped)).snapshot(SPEC)
    visible = Or(tuple(Contains(c, "e") for c in ("name", "condition", "notes")))
    groups = snapshot.row_groups(PK, to_arrow(visible))
    assert groups is not None
    groups.sort(key=lambda g: g.lo)
    key_pass = _KeyPass(snapshot, SPEC, visible, descending=False, top=3)
    assert _first_keys(key_pass, groups, None) is True
    everything = snapshot.dataset.to_table(columns=[PK], filter=to_arrow(visible))
    assert key_pass.count == everything.num_rows > 10 * 3
    held = sum(len(k) for k in key_pass._keys)
    assert held <= 3 * len(groups) and held < key_pass.count
    # once the page's keys were settled, the other groups were only counted
    assert len({g for where in key_pass._where for g in where.to_pylist()}) < len(groups)
    keys, _, _ = key_pass.page(0, 3)
    assert keys.to_pylist() == sorted(everything.column(PK).to_pylist())[:3]


# ---------------------------------------------------------------------- non-ASCII data
WORDS = pa.array(
    ["Ärztin", "Straße", "İzmir", "ǆungla", "Ωmega", "\u212aelvin", "naïve café", "ﬁx", None],
    pa.string(),
)
UNICODE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("region", pa.string()),
        ("word", pa.string()),  # few distinct values: stored and read as a dictionary
        ("text", pa.string()),  # unique values: plain
    ]
)


def _unicode_chunk(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    word = WORDS.take(pa.array(rng.integers(0, len(WORDS), n)))
    noise = pa.array(["".join(rng.choice(list("abcdefgh0123"), 600)) for _ in range(n)])
    text = pc.binary_join_element_wise(  # long, unique, incompressible: read plain
        WORDS.fill_null("ø").take(pa.array(rng.integers(0, len(WORDS), n))),
        pc.cast(pa.array(np.arange(start, start + n)), pa.string()),
        noise,
        " #",
    )
    regions = pa.array(np.array(["NE", "SW", "W"])[rng.integers(0, 3, n)])
    ids = pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64))
    return pa.RecordBatch.from_arrays([ids, regions, word, text], schema=UNICODE_SCHEMA)


UNICODE_SPEC = DatasetSpec(
    name="unicode_people",
    schema=UNICODE_SCHEMA,
    primary_key="id",
    searchable=("word", "text"),
    pii=(),
    partition_by="region",
    build_chunk=_unicode_chunk,
)
UNICODE_TERMS = ["ä", "Ä", "ss", "ß", "i̇", "İ", "ǅ", "ω", "k", "\u212a", "ï", "fi", "ﬁ", "é", "#1"]


def _unicode_batches() -> Iterator[pa.RecordBatch]:
    for i in range(6):
        yield _unicode_chunk(np.random.default_rng([7, i]), i * 50, 50)


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_ascii_values_page_as_a_full_scan_does(tmp_path: Path, fmt: str) -> None:
    engine = get_engine(fmt, Settings(data_dir=tmp_path))
    engine.write(UNICODE_SPEC, _unicode_batches())
    snapshot = engine.snapshot(UNICODE_SPEC)
    region = In("region", ("NE", "W"), pa.string())
    probe = Or((Contains("word", "a"), Contains("text", "a")))
    assert key_plan(snapshot, UNICODE_SPEC, probe).dictionary == {"word"}
    for term, descending in itertools.product(UNICODE_TERMS, [False, True]):
        text = Or((Contains("word", term), Contains("text", term)))
        for visible in (text, and_(region, text)):
            want = snapshot.dataset.to_table(columns=["id"], filter=to_arrow(visible))
            keys = sorted(want.column("id").to_pylist(), reverse=descending)
            page = pk_page(snapshot, UNICODE_SPEC, visible, descending, 2, 5, None)
            assert page is not None
            assert page.rows.column("id").to_pylist() == keys[2:7], (term, visible)
            assert page.total == len(keys) and page.exact
