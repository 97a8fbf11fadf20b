"""A new Iceberg table's first seed without PyIceberg (``engines.iceberg_commit``): the
table it commits is one PyIceberg's SqlCatalog loads, scans and commits on top of,
with the statistics PyIceberg's own writer computes; a failure or a concurrent
creation leaves no file behind."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engine_fixtures import SCHEMA, SPEC, Boom, batches, by_pk, expected, failing
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)

import govlab.engines.iceberg_commit as iceberg_commit
from govlab.config import Settings
from govlab.engines.iceberg import IcebergEngine, iceberg_schema
from govlab.engines.iceberg_write import local_path
from govlab.policy.ast import TRUE

ROOT = Path(__file__).resolve().parent.parent


def _catalog(tmp_path: Path) -> SqlCatalog:
    root = tmp_path / "iceberg"
    return SqlCatalog(
        "govlab", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=(root / "warehouse").as_uri()
    )


def _files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "iceberg").rglob("*") if p.is_file() and p.suffix != ".db")


def test_first_seed_is_readable_by_sqlcatalog_with_pyiceberg_statistics(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    info = iceberg_commit.seed_new_table(settings, SPEC, batches(2_000, seed=1))
    assert info is not None and (info.version, info.rows) == (1, 2_000)

    table = _catalog(tmp_path).load_table(("govlab", "people"))
    assert table.metadata_location == info.details["metadata_location"]
    assert by_pk(table.scan().to_arrow().cast(SCHEMA)).equals(expected(2_000, seed=1))
    assert table.scan(row_filter="region == 'NE'").to_arrow().num_rows == (
        expected(2_000, seed=1).column("region").to_pylist().count("NE")
    )
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.sequence_number == 1
    assert snapshot.summary is not None and snapshot.summary["total-records"] == "2000"
    assert table.sort_order().fields[0].source_id == 1
    assert table.schema() == iceberg_schema(SCHEMA)[0]
    assert table.properties["write.parquet.row-group-limit"] == "65536"

    # every manifest entry carries what PyIceberg computes from the file itself
    plan = compute_statistics_plan(table.schema(), table.properties)
    mapping = parquet_path_to_id_mapping(table.schema())
    tasks = list(table.scan().plan_files())
    assert {t.file.partition[0] for t in tasks} == {"MW", "NE", "SE", "SW", "W"}
    for task in tasks:
        entry = task.file
        path = local_path(entry.file_path)
        assert entry.file_size_in_bytes == Path(path).stat().st_size
        stats = data_file_statistics_from_parquet_metadata(pq.read_metadata(path), plan, mapping)
        ours = {
            "record_count": entry.record_count,
            "column_sizes": dict(entry.column_sizes),
            "value_counts": dict(entry.value_counts),
            "null_value_counts": dict(entry.null_value_counts),
            "lower_bounds": dict(entry.lower_bounds),
            "upper_bounds": dict(entry.upper_bounds),
            "split_offsets": entry.split_offsets,
        }
        theirs = stats.to_serialized_dict()
        assert ours == {key: theirs[key] for key in ours}

    # the engine reads it, and PyIceberg commits the next seed on top of it
    engine = IcebergEngine(settings)
    assert engine.version("people") == 1
    assert engine.count(SPEC, TRUE) == 2_000
    second = engine.write(SPEC, batches(500, seed=2))
    assert (second.version, second.details["operation"]) == (2, "overwrite")
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=1)).equals(expected(2_000, seed=1))
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(500, seed=2))


def test_engine_write_of_a_new_table_takes_this_path(tmp_path: Path) -> None:
    info = IcebergEngine(Settings(data_dir=tmp_path)).write(SPEC, batches(300, seed=1))
    details = _catalog(tmp_path).load_table(("govlab", "people"))
    assert info.details["snapshot_id"] == details.metadata.current_snapshot_id
    assert info.details["sort_order"] == str(details.sort_order())
    assert info.details["properties"] == dict(details.properties)


def test_manifests_have_the_schemas_and_header_pyiceberg_writes(tmp_path: Path) -> None:
    """The manifest list and manifest (written with fastavro): Iceberg's Avro schemas
    with their field ids, the header keys PyIceberg writes, deflate, one block, the
    manifest length the list records; PyIceberg's own Avro reader reads them."""
    settings = Settings(data_dir=tmp_path)
    assert iceberg_commit.seed_new_table(settings, SPEC, batches(2_000, seed=1)) is not None
    table = _catalog(tmp_path).load_table(("govlab", "people"))
    snapshot = table.current_snapshot()
    assert snapshot is not None
    meta, schema, records = iceberg_commit.read_avro(snapshot.manifest_list)
    assert schema == iceberg_commit._MANIFEST_FILE_SCHEMA
    assert json.loads(meta.pop("avro.schema")) == schema
    assert meta == {
        "snapshot-id": str(snapshot.snapshot_id).encode(),
        "parent-snapshot-id": b"null",
        "sequence-number": b"1",
        "format-version": b"2",
        "avro.codec": b"deflate",
    }
    (record,) = records
    manifest = Path(local_path(record["manifest_path"]))
    assert record["manifest_length"] == manifest.stat().st_size
    meta, schema, entries = iceberg_commit.read_avro(record["manifest_path"])
    assert schema == iceberg_commit._manifest_entry_schema("region", "string")
    assert json.loads(meta.pop("avro.schema")) == schema
    assert json.loads(meta.pop("schema"))["fields"][0] == {
        "id": 1,
        "name": "id",
        "type": "long",
        "required": False,
    }
    assert json.loads(meta.pop("partition-spec")) == [
        {"source-id": 3, "field-id": 1000, "transform": "identity", "name": "region"}
    ]
    assert meta == {
        "partition-spec-id": b"0",
        "format-version": b"2",
        "content": b"data",
        "avro.codec": b"deflate",
    }
    data = manifest.read_bytes()
    assert data.count(data[-16:]) == 2  # the sync marker: after the header and one block
    (theirs,) = snapshot.manifests(table.io)
    assert [e.data_file.file_path for e in theirs.fetch_manifest_entry(table.io)] == [
        e["data_file"]["file_path"] for e in entries
    ]


def test_existing_table_is_left_to_pyiceberg(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert iceberg_commit.seed_new_table(settings, SPEC, batches(100, seed=1)) is not None
    untouched = batches(100, seed=2)
    assert iceberg_commit.seed_new_table(settings, SPEC, untouched) is None
    assert next(untouched).num_rows == 100  # nothing was read from it


def test_failed_first_seed_leaves_no_file_and_no_table(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(Boom):
        iceberg_commit.seed_new_table(settings, SPEC, failing(3_000, seed=1, fail_after=6))
    assert _files(tmp_path) == []
    catalog_file = tmp_path / "iceberg" / "catalog.db"
    assert not catalog_file.exists() or not _catalog(tmp_path).table_exists(("govlab", "people"))
    info = iceberg_commit.seed_new_table(settings, SPEC, batches(300, seed=1))
    assert info is not None and info.version == 1


def test_concurrent_creation_is_refused_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer creates the table between the data files and the commit: the
    catalog insert fails, the other table stays, every file of this seed goes."""
    settings = Settings(data_dir=tmp_path)
    other = tmp_path / "other"
    assert iceberg_commit.seed_new_table(Settings(data_dir=other), SPEC, batches(100, seed=9))
    other_location = (
        sqlite3.connect(other / "iceberg" / "catalog.db")
        .execute("SELECT metadata_location FROM iceberg_tables")
        .fetchone()[0]
    )
    write_metadata = iceberg_commit._NewTable.write_metadata

    def racing(self: iceberg_commit._NewTable, files: list, written: list[str]) -> str:
        location = write_metadata(self, files, written)
        iceberg_commit._insert_table(tmp_path / "iceberg" / "catalog.db", "people", other_location)
        return location

    monkeypatch.setattr(iceberg_commit._NewTable, "write_metadata", racing)
    with pytest.raises(iceberg_commit.CommitConflict):
        iceberg_commit.seed_new_table(settings, SPEC, batches(1_000, seed=1))
    assert _files(tmp_path) == []
    table = _catalog(tmp_path).load_table(("govlab", "people"))
    assert table.metadata_location == other_location


def test_type_mapping_matches_pyiceberg_schema() -> None:
    types = [
        pa.bool_(),
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
        pa.int64(),
        pa.float16(),
        pa.float32(),
        pa.float64(),
        pa.string(),
        pa.large_string(),
        pa.binary(),
        pa.large_binary(),
        pa.date32(),
        pa.timestamp("ms"),
        pa.timestamp("us", tz="Europe/Paris"),
        pa.time64("us"),
        pa.decimal128(12, 3),
    ]
    schema = pa.schema([pa.field(f"c{i}", t) for i, t in enumerate(types)])
    ice, arrow = iceberg_schema(schema)
    ours = [iceberg_commit.iceberg_type(t) for t in types]
    assert [name for name, _ in ours] == [str(f.field_type) for f in ice.fields]
    assert [written for _, written in ours] == arrow.types


def test_unsupported_partition_type_goes_through_pyiceberg(tmp_path: Path) -> None:
    spec = dataclasses.replace(SPEC, partition_by="joined")  # a date partition
    assert not iceberg_commit.supported(spec)
    assert iceberg_commit.seed_new_table(Settings(data_dir=tmp_path), spec, iter(())) is None


def test_first_seed_imports_neither_pyiceberg_nor_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from govlab.config import Settings\n"
        "from govlab.seeding import seed_table\n"
        f"settings = Settings.from_env({str(tmp_path)!r})\n"
        "info = seed_table('healthcare', 'tiny', 'iceberg', settings)\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pyiceberg', 'sqlalchemy')]\n"
        "print(json.dumps([info.version, info.rows, sorted(heavy)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    version, rows, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert (version, rows, heavy) == (1, 1_000, [])
    assert (
        _catalog(tmp_path).load_table(("govlab", "healthcare")).scan().to_arrow().num_rows == 1_000
    )
