"""Delta Lake 4 engine (delta-rs): the shared contract plus protocol and cleanup checks."""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable
from engine_fixtures import SPEC, Boom, EngineContract, batches, failing, parquet_files
import pytest

import govlab.engines.delta as delta_module
from govlab.engines.delta import DeltaEngine


class TestDeltaContract(EngineContract):
    fmt = "delta"
    # delta-rs writes partitions from parallel streams: batches interleave in a file.
    PK_SORTED_FILES = False


def test_protocol_is_reader3_writer7_with_table_features(tmp_path):
    from govlab.config import Settings

    engine = DeltaEngine(Settings(data_dir=tmp_path))
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
    # a reseed keeps the protocol and the configuration
    again = engine.write(SPEC, batches(200, seed=2))
    assert again.details["protocol"] == protocol
    assert again.details["configuration"] == info.details["configuration"]
    table = DeltaTable(info.location)
    assert table.schema().to_arrow().field("last_seen") is not None
    assert table.metadata().partition_columns == ["region"]
    assert (tmp_path / "delta" / "people" / "region=NE").is_dir()


def test_interrupted_seed_leaves_no_orphan_files(tmp_path, monkeypatch):
    from govlab.config import Settings

    # small target files so delta-rs has flushed data files before the failure
    monkeypatch.setattr(delta_module, "TARGET_FILE_SIZE", 200_000)
    engine = DeltaEngine(Settings(data_dir=tmp_path))
    engine.write(SPEC, batches(2_000, seed=1))
    root = tmp_path / "delta" / "people"
    before = parquet_files(root)
    log_before = sorted((root / "_delta_log").iterdir())
    big = (b for b in batches(150_000, seed=2, rows_per_batch=30_000))

    def broken():
        for i, batch in enumerate(big):
            if i == 4:
                raise Boom("mid-stream")
            yield batch

    with pytest.raises(Boom):
        engine.write(SPEC, broken())
    assert parquet_files(root) == before
    assert sorted((root / "_delta_log").iterdir()) == log_before
    assert engine.count(SPEC, _true()) == 2_000


def test_failing_first_seed_removes_directory(tmp_path):
    from govlab.config import Settings

    engine = DeltaEngine(Settings(data_dir=tmp_path))
    with pytest.raises(Boom):
        engine.write(SPEC, failing(1_000, seed=1, fail_after=1))
    assert not (tmp_path / "delta" / "people").exists()


def _true():
    from govlab.policy.ast import TRUE

    return TRUE


def test_scan_is_not_fooled_by_dictionary_partitions(tmp_path):
    """The partition column comes back as plain string, like every other format."""
    from govlab.config import Settings
    from govlab.policy.ast import In

    engine = DeltaEngine(Settings(data_dir=tmp_path))
    engine.write(SPEC, batches(300, seed=1))
    result = engine.scan(SPEC, ["region"], In("region", ("NE", "SE"), pa.string()))
    assert result.schema.field("region").type == pa.string()
    assert set(result.column("region").to_pylist()) <= {"NE", "SE"}
