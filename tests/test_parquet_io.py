"""Hive-partitioned Parquet engine: the shared contract plus the CURRENT-pointer layout."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_fixtures import SCHEMA, SPEC, Boom, EngineContract, batches, by_pk, expected, failing

from govlab.config import Settings
from govlab.engines.parquet import ParquetEngine
from govlab.policy.ast import TRUE


class TestParquetContract(EngineContract):
    fmt = "parquet"


@pytest.fixture
def engine(tmp_path: Path) -> ParquetEngine:
    return ParquetEngine(Settings(data_dir=tmp_path))


def _root(engine: ParquetEngine) -> Path:
    return engine.path("people")


def _entries(engine: ParquetEngine) -> list[str]:
    return sorted(p.name for p in _root(engine).iterdir())


def test_layout_hive_partitions_and_pointer(engine: ParquetEngine) -> None:
    info = engine.write(SPEC, batches(1_000, seed=1))
    root = _root(engine)
    assert info.version == 1
    assert (root / "CURRENT").read_text().strip() == "v1"
    assert _entries(engine) == ["CURRENT", "v1"]
    partitions = sorted(p.name for p in (root / "v1").iterdir() if p.is_dir())
    assert partitions == [f"region={r}" for r in ("MW", "NE", "SE", "SW", "W")]
    assert json.loads((root / "v1" / "_govlab.json").read_text())["rows"] == 1_000
    # files hold every column but the partition column, which lives in the path
    some_file = next((root / "v1" / "region=NE").glob("*.parquet"))
    assert "region" not in pq.read_schema(some_file).names
    # reading gives the spec's schema exactly (column order included)
    assert engine.scan(SPEC, SCHEMA.names, TRUE).schema == SCHEMA


def test_reseed_swaps_pointer_and_prunes_old_versions(engine: ParquetEngine) -> None:
    for seed in (1, 2, 3):
        engine.write(SPEC, batches(400 + seed, seed=seed))
    assert engine.version("people") == 3
    assert _entries(engine) == ["CURRENT", "v2", "v3"]  # v1 pruned, previous kept
    assert engine.info("people").details["versions_on_disk"] == [2, 3]
    assert engine.count(SPEC, TRUE) == 403
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=2)).equals(expected(402, seed=2))


def test_interrupted_seed_leaves_old_version_and_no_partial_directory(
    engine: ParquetEngine,
) -> None:
    engine.write(SPEC, batches(1_000, seed=1))
    engine.write(SPEC, batches(900, seed=2))
    with pytest.raises(Boom):
        engine.write(SPEC, failing(2_000, seed=3, fail_after=5))
    assert _entries(engine) == ["CURRENT", "v1", "v2"]
    assert (_root(engine) / "CURRENT").read_text().strip() == "v2"
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(900, seed=2))
    # the next seed continues the numbering
    assert engine.write(SPEC, batches(10, seed=4)).version == 3


def test_failing_progress_callback_aborts_cleanly(engine: ParquetEngine) -> None:
    engine.write(SPEC, batches(500, seed=1))

    def progress(rows: int) -> None:
        if rows > 700:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.write(SPEC, batches(2_000, seed=2), progress=progress)
    assert _entries(engine) == ["CURRENT", "v1"]
    assert engine.count(SPEC, TRUE) == 500


def test_leftovers_of_a_killed_seed_are_cleaned(engine: ParquetEngine) -> None:
    """A process killed mid-seed (no except clause ran) leaves a temporary directory, or a
    renamed version directory that CURRENT never pointed at; the next seed removes both."""
    engine.write(SPEC, batches(300, seed=1))
    root = _root(engine)
    (root / ".tmp-v2-deadbeef" / "region=NE").mkdir(parents=True)
    (root / "v2" / "region=NE").mkdir(parents=True)  # renamed, never published
    assert engine.version("people") == 1
    assert engine.count(SPEC, TRUE) == 300
    info = engine.write(SPEC, batches(200, seed=2))
    assert info.version == 2
    assert _entries(engine) == ["CURRENT", "v1", "v2"]
    assert engine.count(SPEC, TRUE) == 200


def test_partition_column_null_and_types(engine: ParquetEngine) -> None:
    """Partition values round-trip with the spec's type, NULL partition included."""
    table = expected(50, seed=1)
    regions = table.column("region").to_pylist()
    regions[3] = None
    table = table.set_column(2, SCHEMA.field("region"), pa.array(regions, pa.string()))
    engine.write(SPEC, table.to_batches(max_chunksize=20))
    result = by_pk(engine.scan(SPEC, SCHEMA.names, TRUE))
    assert result.equals(table)
