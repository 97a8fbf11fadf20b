"""Shared fixtures and the behaviour every table engine must show.

``EngineContract`` holds the format-independent tests; each of test_delta_v4_io.py,
test_parquet_io.py and test_iceberg_io.py subclasses it with its own ``fmt`` and adds
what is specific to its format. The dataset here is a small one of our own (not the
real generators), with every column type the real datasets use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from govlab.config import Settings
from govlab.engines import FORMATS, get_engine
from govlab.engines.base import Engine
from govlab.errors import BadRequest, TableNotFound
from govlab.generators.base import REGIONS, DatasetSpec
from govlab.policy.ast import (
    FALSE,
    TRUE,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.compile import matches

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("region", pa.string()),
        pa.field("age", pa.int64()),
        pa.field("joined", pa.date32()),
        pa.field("last_seen", pa.timestamp("us")),
        pa.field("score", pa.float64()),
        pa.field("nickname", pa.string()),  # ~30% NULL
    ]
)
NICKNAMES = pa.array(["ace", "bo", "cy", "dee", "Ed"], type=pa.string())
EPOCH_2020 = 18_262  # days from 1970-01-01 to 2020-01-01


def _build_chunk(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
    nick = NICKNAMES.take(pa.array(rng.integers(0, len(NICKNAMES), n)))
    nick = pc.if_else(pa.array(rng.random(n) < 0.3), pa.scalar(None, pa.string()), nick)
    seconds = rng.integers(EPOCH_2020 * 86_400, (EPOCH_2020 + 1_000) * 86_400, n)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids),
            pc.binary_join_element_wise("user-", pc.cast(pa.array(ids), pa.string()), ""),
            pa.array(np.array(REGIONS)[rng.integers(0, len(REGIONS), n)], type=pa.string()),
            pa.array(rng.integers(18, 90, n), type=pa.int64()),
            pa.array((EPOCH_2020 + rng.integers(0, 1_000, n)).astype(np.int32), pa.date32()),
            pa.array(seconds * 1_000_000 + rng.integers(0, 1_000_000, n), pa.timestamp("us")),
            pa.array(np.round(rng.random(n) * 100, 3)),
            nick,
        ],
        schema=SCHEMA,
    )


SPEC = DatasetSpec(
    name="people",
    schema=SCHEMA,
    primary_key="id",
    searchable=("name", "nickname"),
    pii=("name",),
    partition_by="region",
    build_chunk=_build_chunk,
)


# The same dataset after a generator change: "nickname" dropped, "age" now float64.
SCHEMA_V2 = pa.schema(
    [f.with_type(pa.float64()) if f.name == "age" else f for f in SCHEMA if f.name != "nickname"]
)


SPEC_V2 = dataclasses.replace(
    SPEC, schema=SCHEMA_V2, build_chunk=lambda rng, start, n: _to_v2(_build_chunk(rng, start, n))
)


def _to_v2(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [batch.column(f.name).cast(f.type) for f in SCHEMA_V2], schema=SCHEMA_V2
    )


class Boom(RuntimeError):
    """Raised by a batch iterator mid-stream to simulate an interrupted seed."""


def batches(n: int, seed: int, rows_per_batch: int = 250) -> Iterator[pa.RecordBatch]:
    """The table as small batches in pk order (more batches than the real generator
    gives at this size, so streaming and chunking are exercised)."""
    for index, start in enumerate(range(0, n, rows_per_batch)):
        rng = np.random.default_rng([seed, index])
        yield _build_chunk(rng, start, min(rows_per_batch, n - start))


def v2_batches(n: int, seed: int) -> Iterator[pa.RecordBatch]:
    return map(_to_v2, batches(n, seed))


def failing(n: int, seed: int, fail_after: int) -> Iterator[pa.RecordBatch]:
    for index, batch in enumerate(batches(n, seed)):
        if index == fail_after:
            raise Boom("generator failed mid-stream")
        yield batch


def expected(n: int, seed: int) -> pa.Table:
    return pa.Table.from_batches(list(batches(n, seed)), schema=SCHEMA)


def by_pk(table: pa.Table) -> pa.Table:
    return table.sort_by("id") if "id" in table.column_names else table


def parquet_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet"))


# ----------------------------------------------------------------------- filters
D = dt.date(2021, 6, 1)
T = dt.datetime(2021, 1, 1, 12, 0, 0)

FILTERS: dict[str, Expr] = {
    "true": TRUE,
    "false": FALSE,
    "region_in_and_age": And(
        (In("region", ("NE", "W"), pa.string()), Cmp("age", ">=", 40, pa.int64()))
    ),
    "region_eq": Cmp("region", "==", "SE", pa.string()),
    "nickname_not_in": NotIn("nickname", ("ace", "bo"), pa.string()),
    "nickname_ne": Cmp("nickname", "!=", "cy", pa.string()),
    "nickname_is_null": IsNull("nickname"),
    "nickname_not_null_or_old": Or((NotNull("nickname"), Cmp("age", ">", 80, pa.int64()))),
    "date_and_timestamp": And(
        (Cmp("joined", "<", D, pa.date32()), Cmp("last_seen", ">=", T, pa.timestamp("us")))
    ),
    "score_or_pk": Or((Cmp("score", "<=", 10.5, pa.float64()), Cmp("id", "<", 50, pa.int64()))),
    "contains_ci": Contains("nickname", "E"),
    "contains_and_region_not_in": And(
        (Contains("name", "12"), NotIn("region", ("MW", "SW", "W"), pa.string()))
    ),
    "no_rows": Cmp("age", ">", 1_000, pa.int64()),
}


# ----------------------------------------------------------------------- contract
class EngineContract:
    fmt: str
    ROWS = 2_000
    PK_SORTED_FILES = True  # does the writer keep the stream's pk order inside files?

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(data_dir=tmp_path / "data")

    @pytest.fixture
    def engine(self, settings: Settings) -> Engine:
        return get_engine(self.fmt, settings)

    @pytest.fixture
    def seeded_table(self, engine: Engine) -> pa.Table:
        engine.write(SPEC, batches(self.ROWS, seed=1))
        return expected(self.ROWS, seed=1)

    # ---------------------------------------------------------------- basics
    def test_get_engine(self, settings: Settings) -> None:
        assert self.fmt in FORMATS
        assert get_engine(self.fmt, settings).name == self.fmt
        with pytest.raises(BadRequest, match="valid formats: delta, parquet, iceberg"):
            get_engine("orc", settings)

    def test_not_seeded(self, engine: Engine) -> None:
        assert not engine.exists("people")
        with pytest.raises(TableNotFound):
            engine.version("people")
        with pytest.raises(TableNotFound):
            engine.info("people")
        with pytest.raises(TableNotFound):
            engine.scan(SPEC, ["id"], TRUE)
        with pytest.raises(TableNotFound):
            engine.count(SPEC, TRUE)

    def test_roundtrip(self, engine: Engine) -> None:
        info = engine.write(SPEC, batches(self.ROWS, seed=1))
        assert (info.format, info.dataset, info.rows) == (self.fmt, "people", self.ROWS)
        assert info.version == engine.version("people") == engine.info("people").version
        assert engine.info("people").rows == self.ROWS
        assert engine.exists("people")
        result = engine.scan(SPEC, SCHEMA.names, TRUE)
        assert result.schema == SCHEMA
        assert by_pk(result).equals(expected(self.ROWS, seed=1))
        assert engine.count(SPEC, TRUE) == self.ROWS

    def test_projection_order_and_types(self, engine: Engine, seeded_table: pa.Table) -> None:
        columns = ["nickname", "last_seen", "id", "joined"]
        result = engine.scan(SPEC, columns, Cmp("region", "==", "NE", pa.string()))
        assert result.column_names == columns
        assert result.schema == pa.schema([SCHEMA.field(c) for c in columns])
        with pytest.raises(BadRequest):
            engine.scan(SPEC, ["id", "no_such_column"], TRUE)

    def test_empty_result_has_schema(self, engine: Engine, seeded_table: pa.Table) -> None:
        for expr in (FALSE, FILTERS["no_rows"]):
            result = engine.scan(SPEC, ["id", "region", "last_seen"], expr)
            assert result.num_rows == 0
            assert result.schema == pa.schema(
                [SCHEMA.field(c) for c in ("id", "region", "last_seen")]
            )
            assert engine.count(SPEC, expr) == 0

    @pytest.mark.parametrize("name", sorted(FILTERS))
    def test_filter_matches_oracle(self, engine: Engine, seeded_table: pa.Table, name: str) -> None:
        expr = FILTERS[name]
        want = [row for row in seeded_table.to_pylist() if matches(expr, row)]
        got = by_pk(engine.scan(SPEC, SCHEMA.names, expr)).to_pylist()
        assert got == want
        assert engine.count(SPEC, expr) == len(want)
        # the output need not contain the filter's columns
        narrow = engine.scan(SPEC, ["name", "id"], expr)
        assert narrow.column_names == ["name", "id"]
        assert sorted(narrow.column("id").to_pylist()) == [r["id"] for r in want]

    def test_null_semantics(self, engine: Engine, seeded_table: pa.Table) -> None:
        """NOT IN and != never select NULL (SQL semantics), even though the table has them."""
        assert seeded_table.column("nickname").null_count > 0
        for name in ("nickname_not_in", "nickname_ne"):
            result = engine.scan(SPEC, ["nickname"], FILTERS[name])
            assert result.num_rows > 0
            assert result.column("nickname").null_count == 0

    def test_progress_monotonic(self, engine: Engine) -> None:
        seen: list[int] = []
        engine.write(SPEC, batches(self.ROWS, seed=3), progress=seen.append)
        assert seen == sorted(seen)
        assert len(seen) == len(range(0, self.ROWS, 250))
        assert seen[-1] == self.ROWS

    # ---------------------------------------------------------------- versions
    def test_reseed_and_time_travel(self, engine: Engine) -> None:
        first = engine.write(SPEC, batches(1_000, seed=1)).version
        second = engine.write(SPEC, batches(700, seed=2)).version
        assert second > first
        assert engine.version("people") == second
        assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(700, seed=2))
        old = by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=first))
        assert old.equals(expected(1_000, seed=1))
        assert engine.count(SPEC, TRUE, version=first) == 1_000
        expr = FILTERS["region_in_and_age"]
        want = [r for r in expected(1_000, seed=1).to_pylist() if matches(expr, r)]
        assert by_pk(engine.scan(SPEC, SCHEMA.names, expr, version=first)).to_pylist() == want
        assert engine.count(SPEC, expr, version=first) == len(want)
        with pytest.raises(BadRequest):
            engine.scan(SPEC, ["id"], TRUE, version=second + 100)

    def test_reseed_with_changed_schema(self, engine: Engine) -> None:
        first = engine.write(SPEC, batches(600, seed=1)).version
        info = engine.write(SPEC_V2, v2_batches(400, seed=2))
        assert info.version > first
        assert info.rows == 400
        result = by_pk(engine.scan(SPEC_V2, SCHEMA_V2.names, TRUE))
        assert result.schema == SCHEMA_V2
        assert result.equals(pa.Table.from_batches(list(v2_batches(400, seed=2))))
        expr = Cmp("age", ">", 50.5, pa.float64())
        assert engine.count(SPEC_V2, expr) == sum(
            a > 50.5 for a in result.column("age").to_pylist()
        )
        # and the version keeps growing afterwards
        assert engine.write(SPEC_V2, v2_batches(10, seed=3)).version > info.version

    def test_interrupted_seed_keeps_previous_version(self, engine: Engine) -> None:
        before = engine.write(SPEC, batches(self.ROWS, seed=1))
        with pytest.raises(Boom):
            engine.write(SPEC, failing(self.ROWS, seed=2, fail_after=3))
        assert engine.version("people") == before.version
        assert engine.info("people").rows == self.ROWS
        assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(self.ROWS, seed=1))
        # and the table still accepts a new seed afterwards
        after = engine.write(SPEC, batches(500, seed=4))
        assert after.version > before.version
        assert engine.count(SPEC, TRUE) == 500

    def test_interrupted_first_seed_leaves_no_table(self, engine: Engine) -> None:
        with pytest.raises(Boom):
            engine.write(SPEC, failing(self.ROWS, seed=2, fail_after=2))
        assert not engine.exists("people")
        with pytest.raises(TableNotFound):
            engine.version("people")

    def test_concurrent_seeds_are_serialised(self, engine: Engine, settings: Settings) -> None:
        start = engine.write(SPEC, batches(300, seed=9)).version
        errors: list[BaseException] = []

        def seed(seed: int) -> None:
            try:  # separate engine objects, as two requests would have
                get_engine(self.fmt, settings).write(SPEC, batches(1_000, seed=seed))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=seed, args=(s,)) for s in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert engine.version("people") > start
        result = by_pk(engine.scan(SPEC, SCHEMA.names, TRUE))
        assert result.equals(expected(1_000, seed=1)) or result.equals(expected(1_000, seed=2))
        assert engine.count(SPEC, TRUE) == 1_000

    # ---------------------------------------------------------------- physical layout
    def test_row_groups_and_pk_order(self, engine: Engine, settings: Settings) -> None:
        """~64k-row row groups, and rows sorted by pk inside every data file."""
        n = 140_000
        engine.write(SPEC, batches(n, seed=5, rows_per_batch=20_000))
        files = parquet_files(settings.format_dir(self.fmt))
        assert files
        row_groups = []
        for path in files:
            meta = pq.ParquetFile(path).metadata
            row_groups += [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            ids = pq.read_table(path, columns=["id"]).column("id").to_numpy()
            if self.PK_SORTED_FILES:
                assert (np.diff(ids) > 0).all(), path
        assert max(row_groups) <= 65_536
        assert max(row_groups) > 20_000  # groups are not one per incoming batch
        assert engine.count(SPEC, TRUE) == n
