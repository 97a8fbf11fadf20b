"""Iceberg engine (PyIceberg + SQLite SqlCatalog): the shared contract plus catalog,
partitioning and one-snapshot-per-seed checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from engine_fixtures import (
    SCHEMA,
    SPEC,
    SPEC_V2,
    Boom,
    EngineContract,
    batches,
    by_pk,
    expected,
    failing,
    v2_batches,
)

import govlab.engines.iceberg as iceberg_module
import govlab.engines.iceberg_write as iceberg_write
from govlab.config import Settings
from govlab.engines.iceberg import IcebergEngine, iceberg_schema
from govlab.errors import BadRequest
from govlab.policy.ast import TRUE, And, Contains, NotIn


class TestIcebergContract(EngineContract):
    fmt = "iceberg"


@pytest.fixture
def engine(tmp_path: Path) -> IcebergEngine:
    return IcebergEngine(Settings(data_dir=tmp_path))


def _data_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "iceberg" / "warehouse").rglob("*.parquet"))


def test_catalog_warehouse_and_partitioning(engine: IcebergEngine, tmp_path: Path) -> None:
    info = engine.write(SPEC, batches(1_000, seed=1))
    assert (tmp_path / "iceberg" / "catalog.db").is_file()
    assert Path(info.location).is_relative_to(tmp_path / "iceberg" / "warehouse")
    assert info.details["identifier"] == "govlab.people"
    assert info.details["partition_spec"] == [
        {"name": "region", "transform": "identity", "source_id": 3}
    ]
    table = engine.catalog.load_table(("govlab", "people"))
    assert [f.name for f in table.spec().fields] == ["region"]
    assert table.sort_order().fields[0].source_id == table.schema().find_field("id").field_id
    assert table.properties["write.parquet.row-group-limit"] == "65536"
    assert {p.parent.name for p in _data_files(tmp_path)} == {
        f"region={r}" for r in ("MW", "NE", "SE", "SW", "W")
    }
    assert info.rows == 1_000
    assert info.version == 1


def test_schema_mapping_round_trips_to_spec(engine: IcebergEngine) -> None:
    ice, arrow = iceberg_schema(SCHEMA)
    assert [f.field_id for f in ice.fields] == list(range(1, len(SCHEMA) + 1))
    assert str(ice.find_field("last_seen").field_type) == "timestamp"
    assert not any(f.required for f in ice.fields)
    assert arrow.names == SCHEMA.names
    engine.write(SPEC, batches(300, seed=1))
    assert engine.scan(SPEC, SCHEMA.names, TRUE).schema == SCHEMA  # nullability included


def _small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Data files of 100 rows: a seed of a few thousand rows writes many of them."""
    monkeypatch.setitem(iceberg_module.TABLE_PROPERTIES, "write.parquet.row-group-limit", "100")
    monkeypatch.setattr(iceberg_write, "FILE_ROW_GROUPS", 1)


def test_one_snapshot_per_seed_even_with_many_chunks(
    engine: IcebergEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _small_files(monkeypatch)  # ~4 files per partition for 2000 rows
    first = engine.write(SPEC, batches(2_000, seed=1))
    assert len(_data_files(tmp_path)) > 10
    second = engine.write(SPEC, batches(1_500, seed=2))
    assert (first.version, second.version) == (1, 2)
    table = engine.catalog.load_table(("govlab", "people"))
    assert [s.sequence_number for s in table.metadata.snapshots] == [1, 2]
    assert second.details["operation"] == "overwrite"
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(1_500, seed=2))
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=1)).equals(expected(2_000, seed=1))
    assert engine.count(SPEC, TRUE, version=1) == 2_000


def test_interrupted_multi_chunk_seed_keeps_snapshot_and_deletes_its_files(
    engine: IcebergEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_files(monkeypatch)
    engine.write(SPEC, batches(1_000, seed=1))
    files_before = _data_files(tmp_path)
    # fails after 6 batches of 250 rows: several files were already written
    with pytest.raises(Boom):
        engine.write(SPEC, failing(3_000, seed=2, fail_after=6))
    assert _data_files(tmp_path) == files_before
    assert engine.version("people") == 1
    table = engine.catalog.load_table(("govlab", "people"))
    assert len(table.metadata.snapshots) == 1
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(1_000, seed=1))


def test_interrupted_first_seed_creates_no_table(engine: IcebergEngine) -> None:
    with pytest.raises(Boom):
        engine.write(SPEC, failing(1_000, seed=1, fail_after=2))
    assert not engine.catalog.table_exists(("govlab", "people"))


def test_exact_filter_applied_after_superset_scan(engine: IcebergEngine) -> None:
    """Contains cannot be pushed into PyIceberg (it scans a superset); the engine must
    still return only exact matches, with NOT IN rejecting NULL."""
    engine.write(SPEC, batches(1_000, seed=1))
    expr = And((Contains("nickname", "D"), NotIn("region", ("NE", "SE"), pa.string())))
    result = engine.scan(SPEC, ["id", "nickname"], expr)
    assert result.num_rows > 0
    assert set(result.column("nickname").to_pylist()) == {"dee", "Ed"}
    assert engine.count(SPEC, expr) == result.num_rows


def test_second_engine_shares_catalog(engine: IcebergEngine, tmp_path: Path) -> None:
    engine.write(SPEC, batches(100, seed=1))
    other = IcebergEngine(Settings(data_dir=tmp_path))
    assert other.version("people") == engine.version("people")
    assert other.count(SPEC, TRUE) == 100


def test_schema_change_replaces_table_via_staging(engine: IcebergEngine, tmp_path: Path) -> None:
    first = engine.write(SPEC, batches(500, seed=1))
    old_location = Path(first.location)

    def broken():
        yield from v2_batches(300, seed=2)
        raise Boom("mid-stream")

    with pytest.raises(Boom):  # a failed re-seed with the new schema changes nothing
        engine.write(SPEC_V2, broken())
    assert engine.version("people") == first.version
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(500, seed=1))
    assert [t[1] for t in engine.catalog.list_tables("govlab")] == ["people"]

    info = engine.write(SPEC_V2, v2_batches(300, seed=2))
    assert info.version == first.version + 1
    assert [t[1] for t in engine.catalog.list_tables("govlab")] == ["people"]
    assert not old_location.exists()
    assert engine.info("people").details["properties"]["govlab.version-offset"] == "1"


def test_reseeds_keep_a_bounded_history_and_reclaim_expired_files(
    engine: IcebergEngine, tmp_path: Path
) -> None:
    """Each reseed keeps the last KEEP_VERSIONS snapshots, lists only live manifests,
    and deletes the data files, manifests, manifest lists and metadata JSON of what it
    expired: seeds do not slow down, and the warehouse does not grow, with the number
    of reseeds."""
    keep = iceberg_module.KEEP_VERSIONS
    seeds = keep + 3
    files_per_version = {}
    for i in range(seeds):
        info = engine.write(SPEC, batches(200, seed=i))
        table = engine.catalog.load_table(("govlab", "people"))
        files_per_version[info.version] = {t.file.file_path for t in table.scan().plan_files()}
    table = engine.catalog.load_table(("govlab", "people"))
    versions = sorted(s.sequence_number for s in table.metadata.snapshots)
    assert versions == list(range(seeds - keep + 1, seeds + 1))
    assert len(table.current_snapshot().manifests(table.io)) <= 2
    on_disk = {f"file://{p}" for p in _data_files(tmp_path)} | {
        str(p) for p in _data_files(tmp_path)
    }
    for version, paths in files_per_version.items():
        kept = version in versions
        assert all((p in on_disk) == kept for p in paths), version
    oldest = engine.scan(SPEC, ["id"], TRUE, version=versions[0])
    assert by_pk(oldest).num_rows == 200
    with pytest.raises(BadRequest, match="no version"):
        engine.scan(SPEC, ["id"], TRUE, version=versions[0] - 1)
    metadata_files = list((tmp_path / "iceberg" / "warehouse").rglob("*.metadata.json"))
    assert len(metadata_files) <= keep + 1
    # manifest lists and manifests: those of the kept snapshots only
    referenced = {
        iceberg_write.local_path(path)
        for s in table.metadata.snapshots
        for path in (s.manifest_list, *(m.manifest_path for m in s.manifests(table.io)))
    }
    avro = {str(p) for p in (tmp_path / "iceberg" / "warehouse").rglob("*.avro")}
    assert avro == referenced
