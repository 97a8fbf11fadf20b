"""Delta Lake 4 engine (delta-rs): the shared contract plus protocol and cleanup checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from engine_fixtures import SPEC, Boom, EngineContract, batches, failing, parquet_files

import govlab.engines.delta as delta_module
from govlab.config import Settings
from govlab.engines.delta import DeltaEngine
from govlab.policy.ast import TRUE, In


class TestDeltaContract(EngineContract):
    fmt = "delta"
    # delta-rs writes partitions from parallel streams: batches interleave in a file.
    PK_SORTED_FILES = False


@pytest.fixture
def engine(tmp_path: Path) -> DeltaEngine:
    return DeltaEngine(Settings(data_dir=tmp_path))


def test_protocol_is_reader3_writer7_with_table_features(
    engine: DeltaEngine, tmp_path: Path
) -> None:
    info = engine.write(SPEC, batches(500, seed=1))
    protocol = info.details["protocol"]
    assert (protocol["min_reader_version"], protocol["min_writer_version"]) == (3, 7)
    assert "timestampNtz" in protocol["reader_features"]
    assert {"timestampNtz", "changeDataFeed"} <= set(protocol["writer_features"])
    features = set(protocol["reader_features"]) | set(protocol["writer_features"])
    assert not features & {"deletionVectors", "columnMapping"}
    assert info.details["configuration"]["delta.enableChangeDataFeed"] == "true"
    assert info.details["partition_by"] == ["region"]
    assert info.location == str(tmp_path / "delta" / "people")
    assert (tmp_path / "delta" / "people" / "region=NE").is_dir()
    # the table itself (not just our report of it) says so
    table = DeltaTable(info.location)
    assert table.protocol().min_reader_version == 3
    assert table.metadata().partition_columns == ["region"]
    types = {f.name: f.type.type for f in table.schema().fields}
    assert types["last_seen"] == "timestamp_ntz"  # what brings in the timestampNtz feature
    # a reseed keeps the protocol and the configuration
    again = engine.write(SPEC, batches(200, seed=2))
    assert again.details["protocol"] == protocol
    assert again.details["configuration"] == info.details["configuration"]


def test_interrupted_seed_leaves_no_orphan_files(
    engine: DeltaEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small target files, so delta-rs has flushed data files before the failure
    monkeypatch.setattr(delta_module, "TARGET_FILE_SIZE", 200_000)
    engine.write(SPEC, batches(2_000, seed=1))
    root = tmp_path / "delta" / "people"
    before = parquet_files(root)
    log_before = sorted((root / "_delta_log").iterdir())

    def broken():
        for i, batch in enumerate(batches(150_000, seed=2, rows_per_batch=30_000)):
            if i == 4:
                raise Boom("mid-stream")
            yield batch

    with pytest.raises(Boom):
        engine.write(SPEC, broken())
    assert parquet_files(root) == before
    assert sorted((root / "_delta_log").iterdir()) == log_before
    assert engine.count(SPEC, TRUE) == 2_000


def test_failing_first_seed_removes_directory(engine: DeltaEngine, tmp_path: Path) -> None:
    with pytest.raises(Boom):
        engine.write(SPEC, failing(1_000, seed=1, fail_after=1))
    assert not (tmp_path / "delta" / "people").exists()


def test_partition_column_reads_back_as_plain_string(engine: DeltaEngine) -> None:
    engine.write(SPEC, batches(300, seed=1))
    result = engine.scan(SPEC, ["region"], In("region", ("NE", "SE"), pa.string()))
    assert result.schema.field("region").type == pa.string()
    assert set(result.column("region").to_pylist()) == {"NE", "SE"}
