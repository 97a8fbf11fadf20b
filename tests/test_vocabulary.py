"""Row-group vocabularies (``engines.vocabulary``): what each group's dictionary-encoded
columns can hold, and the key pass deciding leaves from them.

A vocabulary may only ever skip a row group or a column the filter cannot need: every
page and total stays what the full scan gives, for every role, term, format and filter
shape (including NULLs and chunks whose dictionary fell back to plain pages).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from govlab.config import Settings
from govlab.engines import FORMATS, get_engine
from govlab.engines import snapshot as snapshot_module
from govlab.engines.snapshot import Snapshot, open_input
from govlab.engines.vocabulary import Vocabulary, build_vocabulary
from govlab.generators import get_dataset
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import And, Cmp, Contains, Expr, In, Or, and_, or_
from govlab.policy.compile import to_arrow
from govlab.search import GovernedSearch, SearchQuery, paging
from tests import test_search_paths as search_paths
from tests.test_search_paths import PRINCIPALS, _random_expr, _trap_batch

SPEC = get_dataset("healthcare")
PK = SPEC.primary_key


@pytest.fixture
def built_at_once(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every vocabulary a search asks for is built before it answers (whatever the
    table's size); returns the columns asked for."""
    asked: list[str] = []
    build = Snapshot.vocabulary

    def vocabulary(self: Snapshot, column: str, wait: bool = False) -> Vocabulary | None:
        asked.append(column)
        return build(self, column, wait=True)

    monkeypatch.setattr(Snapshot, "vocabulary", vocabulary)
    return asked


@pytest.fixture
def names_coded(monkeypatch: pytest.MonkeyPatch) -> None:
    """`name` read as a dictionary too, as at 5M rows (in 40-row groups nearly every
    name is distinct, and the key pass reads them plain)."""
    coded = {"name", "condition", "notes", "clinician_id"}
    monkeypatch.setattr(Snapshot, "low_cardinality", lambda self, column: column in coded)


def _group_values(fragment: ds.ParquetFileFragment, group: int, column: str) -> pa.Array:
    with open_input(fragment) as source:
        return pq.ParquetFile(source).read_row_group(group, columns=[column]).column(0)


# ---------------------------------------------------------------------- the vocabulary
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_group_holds_exactly_the_values_its_bits_say(grouped: Path, fmt: str) -> None:
    snapshot = get_engine(fmt, Settings(data_dir=grouped)).snapshot(SPEC)
    assert snapshot is not None
    for column in ("name", "condition", "notes", "clinician_id"):
        vocabulary = snapshot.vocabulary(column, wait=True)
        assert vocabulary is not None
        assert len(set(vocabulary.values.to_pylist())) == len(vocabulary.values)
        fragments = list(snapshot.dataset.get_fragments())
        assert len(vocabulary.groups) == sum(f.metadata.num_row_groups for f in fragments) > 10
        for fragment in fragments:
            for group in range(fragment.metadata.num_row_groups):
                values = _group_values(fragment, group, column)
                i = vocabulary.index(fragment.path, group)
                assert i is not None
                marked = pc.is_in(vocabulary.values, value_set=values.drop_null())
                held = vocabulary.groups_holding(marked.to_numpy(zero_copy_only=False))
                assert held[i], (column, group)
                only_others = ~marked.to_numpy(zero_copy_only=False)
                bits = np.unpackbits(vocabulary.postings[:, i // 8 : i // 8 + 1], axis=1)
                in_group = bits[:, i % 8].astype(bool)
                assert not (in_group & only_others).any(), "a value the group lacks"
                assert vocabulary.nulls[i] == (values.null_count > 0)


def test_a_dictionary_that_fell_back_to_plain_pages_is_still_complete(tmp_path: Path) -> None:
    """Past the writer's dictionary page limit the rest of a chunk is stored plain:
    the vocabulary still holds every value (read whole, re-encoded by the reader)."""
    values = pa.array([f"value-{i % 3000:05d}" for i in range(9000)] + [None] * 10)
    table = pa.table({"id": np.arange(len(values)), "v": values})
    path = tmp_path / "fallback.parquet"
    pq.write_table(table, path, row_group_size=4000, dictionary_pagesize_limit=2048)
    metadata = pq.ParquetFile(path).metadata
    encodings = metadata.row_group(0).column(1).encodings
    assert "PLAIN" in encodings or "PLAIN_DICTIONARY" in encodings
    vocabulary = build_vocabulary(ds.dataset(path).get_fragments(), "v")
    assert vocabulary is not None
    assert set(vocabulary.values.to_pylist()) == set(values.drop_null().to_pylist())
    for group in range(metadata.num_row_groups):
        stored = pq.ParquetFile(path).read_row_group(group, columns=["v"]).column(0)
        marked = pc.is_in(vocabulary.values, value_set=stored.drop_null())
        bits = np.unpackbits(vocabulary.postings, axis=1)[:, group].astype(bool)
        assert np.array_equal(bits, marked.to_numpy(zero_copy_only=False)), group


def test_no_vocabulary_when_a_file_lacks_the_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "v": ["a", "b"]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [3]}), tmp_path / "b.parquet")
    fragments = ds.dataset(
        [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")],
        schema=pa.schema([("id", pa.int64()), ("v", pa.string())]),
    ).get_fragments()
    assert build_vocabulary(fragments, "v") is None


def test_small_versions_build_nothing_unasked_and_big_ones_in_the_background(
    grouped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = get_engine("parquet", Settings(data_dir=grouped)).snapshot(SPEC)
    assert shared is not None
    snapshot = Snapshot(shared.dataset)  # not the engines' (other tests built theirs)
    assert snapshot.vocabulary("condition") is None
    assert "condition" not in snapshot._vocabularies  # nothing started below the size
    monkeypatch.setattr(snapshot_module, "_VOCABULARY_MIN_ROWS", 0)
    snapshot.vocabulary("condition")  # starts the build, answers at once
    future = snapshot._vocabularies["condition"]
    built = future.result(timeout=60)
    assert built is not None and snapshot.vocabulary("condition") is built


def test_a_failed_build_only_means_no_vocabulary(
    grouped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = get_engine("delta", Settings(data_dir=grouped)).snapshot(SPEC)
    assert shared is not None
    snapshot = Snapshot(shared.dataset)

    def broken(fragments: Any, column: str) -> Vocabulary | None:
        raise RuntimeError("a bug in the builder")

    monkeypatch.setattr("govlab.engines.vocabulary.build_vocabulary", broken)
    assert snapshot.vocabulary("condition", wait=True) is None
    visible = Contains("condition", "asthma")
    page = paging.pk_page(snapshot, SPEC, visible, False, 0, 5, None)
    assert page is not None and page.total > 0


# ---------------------------------------------------------------------- the key pass
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("role", list(PRINCIPALS))
def test_pages_with_vocabularies_match_the_oracle(
    grouped: Path,
    raw_tables: dict[str, pa.Table],
    built_at_once: list[str],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    large: bool,
    role: str,
) -> None:
    if large:  # as at 5M rows: names coded, groups matched one by one
        monkeypatch.setattr(paging, "_TOGETHER_GROUP_ROWS", 0)
        coded = {"name", "condition", "notes", "clinician_id"}
        monkeypatch.setattr(Snapshot, "low_cardinality", lambda self, column: column in coded)
    rows = raw_tables["healthcare"].to_pylist()
    for q in ["", "asthma", "kowalski", "xylophone", "asthma follow", "C007", "é"]:
        search_paths.test_pages_and_totals_match_the_oracle(grouped, rows, fmt, role, q)
    assert built_at_once  # the vocabularies were asked for


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The columns of every row group the key pass reads."""
    reads: list[list[str]] = []
    read_group = Snapshot.read_group

    def counted(self: Snapshot, group: Any, columns: list[str], *args: Any) -> Any:
        reads.append(list(columns))
        return read_group(self, group, columns, *args)

    monkeypatch.setattr(Snapshot, "read_group", counted)
    return reads


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.usefixtures("names_coded")
def test_the_vocabularies_decide_what_the_key_pass_reads(
    grouped: Path, built_at_once: list[str], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """A term no group holds reads no group; a term no name holds ("asthma", a
    condition) reads no name."""
    searcher = GovernedSearch(Settings(data_dir=grouped, count_limit=None))
    reads = _reads(monkeypatch)
    clinician = PRINCIPALS["clinician"]
    got = searcher.search("healthcare", fmt, clinician, SearchQuery(q="xylophone", page_size=5))
    assert got["total"] == 0 and got["items"] == [] and got["totalExact"]
    assert reads == []
    assert {"name", "condition", "notes"} <= set(built_at_once)
    query = SearchQuery(q="asthma", page=2, page_size=1)
    got = searcher.search("healthcare", fmt, clinician, query)
    assert got["total"] >= 2 and len(got["items"]) == 1
    assert reads and all("name" not in columns for columns in reads)
    assert any("condition" in columns for columns in reads)


@pytest.mark.usefixtures("names_coded")
def test_masked_columns_are_never_looked_up(
    grouped: Path, built_at_once: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyst sees names as initials: a search never consults `name`'s values."""
    searcher = GovernedSearch(Settings(data_dir=grouped, count_limit=None))
    query = SearchQuery(q="kowalski", page=1, page_size=5)
    got = searcher.search("healthcare", "parquet", PRINCIPALS["analyst"], query)
    assert got["total"] == 0
    assert "name" not in built_at_once


# ---------------------------------------------------------------------- any filter shape
TRAP_SPEC_SCHEMA = pa.schema(
    [("id", pa.int64()), ("p", pa.string()), ("d", pa.string()), ("n", pa.int64())]
)


def _trap_table(tmp_path: Path) -> ds.FileSystemDataset:
    """The search tests' trap rows (NULLs, empty strings, non-ASCII, look-alikes) in
    groups of 50 rows, dictionary-encoded, each group with its own values of `d`."""
    batch = _trap_batch(600, seed=5)
    table = pa.table({"p": batch.column("p"), "d": batch.column("d").cast(pa.string())})
    table = table.append_column("n", batch.column("n")).sort_by([("d", "ascending")])
    # keys in `d` order: each group holds a few of `d`'s values, and all sorts of `p`
    table = table.add_column(0, "id", pa.array(np.arange(1, table.num_rows + 1)))
    path = tmp_path / "traps.parquet"
    pq.write_table(table, path, row_group_size=50, use_dictionary=["d", "p"])
    return ds.dataset(path, schema=TRAP_SPEC_SCHEMA)


def test_random_filters_page_the_same_with_vocabularies(tmp_path: Path) -> None:
    spec = DatasetSpec(
        name="traps",
        schema=TRAP_SPEC_SCHEMA,
        primary_key="id",
        searchable=("p", "d"),
        pii=(),
        partition_by="region",
        build_chunk=lambda rng, start, n: pa.RecordBatch.from_pylist([]),
    )
    dataset = _trap_table(tmp_path)
    with_vocabulary, without = Snapshot(dataset), Snapshot(dataset)
    for column in ("p", "d"):
        assert with_vocabulary.vocabulary(column, wait=True) is not None
    without.vocabulary = lambda column, wait=False: None  # type: ignore[method-assign]
    rng = np.random.default_rng(17)
    decided = 0
    for _ in range(80):
        expr: Expr = _random_expr(rng)
        if rng.random() < 0.5:  # a selective conjunct, as a role's row filter
            expr = and_(Cmp("n", ">", int(rng.integers(0, 10)), pa.int64()), expr)
        want = dataset.to_table(columns=["id"], filter=to_arrow(expr)).column("id").to_pylist()
        for descending, offset in itertools.product([False, True], [0, 30]):
            keys = sorted(want, reverse=descending)[offset : offset + 10]
            for snapshot in (with_vocabulary, without):
                page = paging.pk_page(snapshot, spec, expr, descending, offset, 10, None)
                assert page is not None
                assert page.rows.column("id").to_pylist() == keys, expr
                assert page.total == len(want) and page.exact
        key_pass = paging._KeyPass(with_vocabulary, spec, expr, False, 10)
        groups = with_vocabulary.row_groups("id", to_arrow(expr)) or []
        decided += sum(key_pass._group_filter(g) != key_pass.plan.filter for g in groups)
    assert decided > 300  # the vocabularies did decide leaves


def test_leaves_are_replaced_only_where_decided() -> None:
    from govlab.policy.ast import FALSE, TRUE
    from govlab.search.text_match import bind_leaves, leaves

    term = Contains("name", "kowalski")
    region = In("region", ("NE", "SW"), pa.string())
    expr = And((region, Or((term, Contains("notes", "x")))))
    assert list(leaves(expr)) == [region, term, Contains("notes", "x")]
    assert bind_leaves(expr, {term: FALSE}) == and_(region, Contains("notes", "x"))
    assert bind_leaves(expr, {term: TRUE}) == region
    assert bind_leaves(expr, {region: FALSE}) == FALSE
    assert bind_leaves(or_(term, region), {}) == or_(term, region)


def test_a_warm_up_builds_what_searches_would(
    grouped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searcher = GovernedSearch(Settings(data_dir=grouped))
    assert searcher.build_vocabularies("healthcare", "parquet") == []  # too small
    monkeypatch.setattr(snapshot_module, "_VOCABULARY_MIN_ROWS", 0)
    for fmt in FORMATS:
        built = searcher.build_vocabularies("healthcare", fmt)
        assert {"condition", "notes", "clinician_id"} <= set(built), fmt
        assert not {PK, "address", "ssn"} & set(built)  # unique values: no vocabulary
        snapshot = searcher.engine(fmt).snapshot(SPEC)
        assert snapshot is not None and snapshot.vocabulary("condition") is not None
