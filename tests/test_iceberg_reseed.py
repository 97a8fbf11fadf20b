"""A reseed of an existing Iceberg table without PyIceberg (``iceberg_commit._Reseed``):
the table it commits is the one PyIceberg's own path commits (snapshots, summaries,
versions, history expiry, files reclaimed), PyIceberg reads and commits on top of it,
a concurrent commit or a failure leaves no file behind, and anything unusual goes to
PyIceberg untouched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import (
    SCHEMA,
    SPEC,
    SPEC_V2,
    Boom,
    batches,
    by_pk,
    expected,
    failing,
    v2_batches,
)
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

import govlab.engines.iceberg_commit as iceberg_commit
from govlab.config import Settings
from govlab.engines.iceberg import IcebergEngine
from govlab.engines.iceberg_write import local_path
from govlab.errors import BadRequest
from govlab.policy.ast import TRUE

ROOT = Path(__file__).resolve().parent.parent
KEEP = iceberg_commit.KEEP_VERSIONS


def _catalog(root: Path) -> SqlCatalog:
    base = root / "iceberg"
    return SqlCatalog(
        "govlab", uri=f"sqlite:///{base / 'catalog.db'}", warehouse=(base / "warehouse").as_uri()
    )


def _table(root: Path) -> Table:
    return _catalog(root).load_table(("govlab", "people"))


def _files(root: Path) -> set[Path]:
    return {p for p in (root / "iceberg").rglob("*") if p.is_file() and ".db" not in p.name}


def _pyiceberg_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reseed through the PyIceberg path (as before the stdlib reseed)."""
    monkeypatch.setattr(iceberg_commit._Reseed, "plan", classmethod(lambda cls, *a: None))


def _fast(settings: Settings, n: int, seed: int) -> Any:
    info = iceberg_commit.seed_without_pyiceberg(settings, SPEC, batches(n, seed=seed))
    assert info is not None, "the reseed went to PyIceberg"
    return info


def _summary(snapshot: Any) -> dict[str, str]:
    summary = snapshot.summary
    if summary is None:
        return {}
    return {"operation": summary.operation.value, **summary.additional_properties}


def _shape(root: Path) -> dict[str, Any]:
    """What the table's history looks like, ids, paths and times left out."""
    table = _table(root)
    metadata = table.metadata
    ids = {s.snapshot_id: s.sequence_number for s in metadata.snapshots}
    files = _files(root)
    return {
        "snapshots": [
            (
                s.sequence_number,
                ids.get(s.parent_snapshot_id) if s.parent_snapshot_id is not None else None,
                s.summary.operation.value if s.summary else None,
                {k: v for k, v in _summary(s).items() if "size" not in k},
                [
                    (m.added_files_count, m.deleted_files_count, m.added_rows_count)
                    for m in s.manifests(table.io)
                ],
            )
            for s in metadata.snapshots
        ],
        "snapshot_log": [ids[e.snapshot_id] for e in metadata.snapshot_log],
        "metadata_log": len(metadata.metadata_log),
        "metadata_version": Path(table.metadata_location).name.split("-")[0],
        "last_sequence_number": metadata.last_sequence_number,
        "current": ids[metadata.current_snapshot_id],
        "refs": sorted(metadata.refs),
        "properties": dict(metadata.properties),
        "files": sorted(
            (p.suffix, p.name.endswith(".metadata.json")) for p in files if p.suffix != ".parquet"
        ),
        "data_files": len([p for p in files if p.suffix == ".parquet"]),
    }


def test_reseed_is_readable_by_sqlcatalog_and_reported_as_the_engine_does(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    first = iceberg_commit.seed_without_pyiceberg(settings, SPEC, batches(2_000, seed=1))
    assert first is not None and first.version == 1
    info = _fast(settings, 1_500, seed=2)
    assert (info.version, info.rows, info.details["operation"]) == (2, 1_500, "overwrite")

    table = _table(tmp_path)
    assert table.metadata_location == info.details["metadata_location"]
    assert by_pk(table.scan().to_arrow().cast(SCHEMA)).equals(expected(1_500, seed=2))
    previous = table.metadata.snapshots[0].snapshot_id
    old = table.scan(snapshot_id=previous).to_arrow().cast(SCHEMA)
    assert by_pk(old).equals(expected(2_000, seed=1))
    current = table.current_snapshot()
    assert current is not None and current.parent_snapshot_id == previous
    # the new files ADDED, the previous snapshot's DELETED (with their sequence number)
    entries = [
        e for m in current.manifests(table.io) for e in m.fetch_manifest_entry(table.io, False)
    ]
    statuses = {(e.status.name, e.sequence_number) for e in entries}
    assert statuses == {("ADDED", 2), ("DELETED", 1)}
    deleted = {e.data_file.file_path for e in entries if e.status.name == "DELETED"}
    assert deleted == {t.file.file_path for t in table.scan(snapshot_id=previous).plan_files()}

    # what the seed returns is what the engine reports
    engine = IcebergEngine(settings)
    assert info == engine.info("people")
    assert engine.version("people") == 2
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(1_500, seed=2))
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=1)).equals(expected(2_000, seed=1))
    assert engine.count(SPEC, TRUE, version=1) == 2_000
    row = _catalog_row(tmp_path)
    assert row == (info.details["metadata_location"], first.details["metadata_location"])


def _catalog_row(root: Path) -> tuple[str, str | None]:
    import sqlite3

    connection = sqlite3.connect(root / "iceberg" / "catalog.db")
    try:
        row = connection.execute(
            "SELECT metadata_location, previous_metadata_location FROM iceberg_tables"
        ).fetchone()
    finally:
        connection.close()
    return row[0], row[1]


def test_history_versions_and_files_match_the_pyiceberg_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seeds, once through PyIceberg and once without: the same versions,
    snapshots, summaries, manifests, logs and files on disk at every step, and time
    travel to every kept version."""
    seeds = KEEP + 3
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for i in range(seeds):
        rows = 300 + 50 * i
        with monkeypatch.context() as patch:
            _pyiceberg_only(patch)
            old = IcebergEngine(Settings(data_dir=theirs)).write(SPEC, batches(rows, seed=i))
        new = IcebergEngine(Settings(data_dir=ours)).write(SPEC, batches(rows, seed=i))
        assert (new.version, new.rows) == (old.version, old.rows) == (i + 1, rows)
        assert {k: v for k, v in new.details.items() if k not in _VARYING} == {
            k: v for k, v in old.details.items() if k not in _VARYING
        }
        assert _shape(ours) == _shape(theirs), i

    engine = IcebergEngine(Settings(data_dir=ours))
    kept = sorted(s.sequence_number for s in _table(ours).metadata.snapshots)
    assert kept == list(range(seeds - KEEP + 1, seeds + 1))
    for version in kept:
        rows = 300 + 50 * (version - 1)
        scanned = by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=version))
        assert scanned.equals(expected(rows, seed=version - 1)), version
    with pytest.raises(BadRequest, match="no version"):
        engine.scan(SPEC, ["id"], TRUE, version=kept[0] - 1)
    # data files of expired versions are gone, those of kept versions all there
    table = _table(ours)
    live = {
        local_path(t.file.file_path)
        for s in table.metadata.snapshots
        for t in table.scan(snapshot_id=s.snapshot_id).plan_files()
    }
    assert {str(p) for p in _files(ours) if p.suffix == ".parquet"} == live


_VARYING = ("catalog", "warehouse", "metadata_location", "snapshot_id")


def test_pyiceberg_and_stdlib_commits_interleave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reseeds alternate between the two paths, and a schema change (PyIceberg's
    staging table) is followed by stdlib reseeds of the new layout: versions only grow."""
    settings = Settings(data_dir=tmp_path)
    engine = IcebergEngine(settings)
    assert engine.write(SPEC, batches(400, seed=1)).version == 1
    assert _fast(settings, 500, seed=2).version == 2
    with monkeypatch.context() as patch:
        _pyiceberg_only(patch)
        assert engine.write(SPEC, batches(600, seed=3)).version == 3
    assert _fast(settings, 700, seed=4).version == 4
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=3)).equals(expected(600, seed=3))
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(700, seed=4))

    # a schema change: not for this module, PyIceberg replaces the table
    untouched = v2_batches(300, seed=5)
    assert iceberg_commit.seed_without_pyiceberg(settings, SPEC_V2, untouched) is None
    assert next(untouched).num_rows > 0  # nothing was read from it
    assert engine.write(SPEC_V2, v2_batches(300, seed=5)).version == 5
    info = iceberg_commit.seed_without_pyiceberg(settings, SPEC_V2, v2_batches(200, seed=6))
    assert info is not None and (info.version, info.rows) == (6, 200)
    assert info == engine.info("people")
    assert engine.scan(SPEC_V2, SPEC_V2.schema.names, TRUE).num_rows == 200
    assert engine.count(SPEC_V2, TRUE, version=5) == 300
    assert _table(tmp_path).scan().to_arrow().num_rows == 200


def test_concurrent_commit_is_refused_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits between this seed's files and its catalog swap: the
    compare-and-set fails, every file of this seed goes, the other commit stays."""
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 1_000, seed=1)
    _fast(settings, 800, seed=2)
    before = _files(tmp_path)
    write_metadata = iceberg_commit._Reseed._write_metadata
    racing: dict[str, str] = {}

    def race(self: Any, files: list, written: list[str]) -> Any:
        result = write_metadata(self, files, written)
        table = _table(tmp_path)
        with table.transaction() as tx:
            tx.set_properties({"other.writer": "yes"})
        racing["location"] = _table(tmp_path).metadata_location
        return result

    monkeypatch.setattr(iceberg_commit._Reseed, "_write_metadata", race)
    with pytest.raises(iceberg_commit.CommitConflict):
        iceberg_commit.seed_without_pyiceberg(settings, SPEC, batches(1_200, seed=3))
    assert _files(tmp_path) == before | {Path(local_path(racing["location"]))}
    table = _table(tmp_path)
    assert table.metadata_location == racing["location"]
    assert table.properties["other.writer"] == "yes"
    assert by_pk(table.scan().to_arrow().cast(SCHEMA)).equals(expected(800, seed=2))
    monkeypatch.undo()
    assert _fast(settings, 900, seed=4).version == 3  # and the next seed goes on top


@pytest.mark.parametrize("stage", ["batches", "manifest list", "catalog"])
def test_failed_reseed_leaves_no_file_and_the_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 1_000, seed=1)
    _fast(settings, 800, seed=2)
    before = _files(tmp_path)
    location = _table(tmp_path).metadata_location
    source = batches(3_000, seed=3)
    if stage == "batches":
        source = failing(3_000, seed=3, fail_after=6)
    elif stage == "manifest list":

        def broken_list(*args: Any) -> None:
            raise Boom("manifest list")

        monkeypatch.setattr(iceberg_commit, "_write_manifest_list", broken_list)
    else:

        def broken_swap(*args: Any) -> None:
            raise Boom("catalog")

        monkeypatch.setattr(iceberg_commit, "_swap_table", broken_swap)
    with pytest.raises(Boom):
        iceberg_commit.seed_without_pyiceberg(settings, SPEC, source)
    assert _files(tmp_path) == before
    assert _table(tmp_path).metadata_location == location
    engine = IcebergEngine(settings)
    assert engine.version("people") == 2
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(800, seed=2))
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=1)).equals(expected(1_000, seed=1))


def test_engine_write_of_an_existing_table_takes_this_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = IcebergEngine(Settings(data_dir=tmp_path))
    engine.write(SPEC, batches(300, seed=1))

    def no_catalog(self: Any) -> None:
        raise AssertionError("the reseed went through the SQL catalog")

    monkeypatch.setattr(IcebergEngine, "catalog", property(no_catalog))
    info = engine.write(SPEC, batches(400, seed=2))
    assert (info.version, info.rows) == (2, 400)
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(400, seed=2))


def test_stale_writer_properties_are_brought_up_to_date(tmp_path: Path) -> None:
    """As the PyIceberg path: a table created before a writer setting changed gets the
    current setting in the reseed's metadata, and its files are written with it."""
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 300, seed=1)
    with _table(tmp_path).transaction() as tx:
        tx.set_properties({"write.parquet.page-row-limit": "20000", "user.note": "kept"})
    info = _fast(settings, 300, seed=2)
    properties = _table(tmp_path).properties
    assert properties["write.parquet.page-row-limit"] == str(iceberg_commit.PAGE_ROW_LIMIT)
    assert properties["user.note"] == "kept"
    assert info.details["properties"] == dict(properties)


@pytest.mark.parametrize(
    "properties",
    [{"write.summary.partition-limit": "10"}, {"write.metadata.compression-codec": "gzip"}],
)
def test_tables_with_other_metadata_settings_go_to_pyiceberg(
    tmp_path: Path, properties: dict[str, str]
) -> None:
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 300, seed=1)
    with _table(tmp_path).transaction() as tx:
        tx.set_properties(properties)
    untouched = batches(300, seed=2)
    assert iceberg_commit.seed_without_pyiceberg(settings, SPEC, untouched) is None
    assert next(untouched).num_rows > 0
    engine = IcebergEngine(settings)
    assert engine.write(SPEC, batches(300, seed=2)).version == 2
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(300, seed=2))


def test_avro_reader_reads_what_pyiceberg_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pyiceberg_only(monkeypatch)
    engine = IcebergEngine(Settings(data_dir=tmp_path))
    engine.write(SPEC, batches(300, seed=1))
    engine.write(SPEC, batches(400, seed=2))
    table = _table(tmp_path)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    meta, _, records = iceberg_commit.read_avro(snapshot.manifest_list)
    assert meta["snapshot-id"] == str(snapshot.snapshot_id).encode()
    theirs = snapshot.manifests(table.io)
    assert [r["manifest_path"] for r in records] == [m.manifest_path for m in theirs]
    for record, manifest in zip(records, theirs, strict=True):
        assert record["added_rows_count"] == manifest.added_rows_count
        assert record["deleted_rows_count"] == manifest.deleted_rows_count
        entries = iceberg_commit.read_avro(manifest.manifest_path)[2]
        expected_entries = manifest.fetch_manifest_entry(table.io, discard_deleted=False)
        assert [(e["status"], e["data_file"]["file_path"]) for e in entries] == [
            (e.status.value, e.data_file.file_path) for e in expected_entries
        ]
        ours = [{kv["key"]: kv["value"] for kv in e["data_file"]["lower_bounds"]} for e in entries]
        assert ours == [dict(e.data_file.lower_bounds) for e in expected_entries]


def test_entries_that_cannot_be_written_back_go_to_pyiceberg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current snapshot's entries are written back (DELETED) with this module's
    manifest schema: values that do not fit it (as a logical type read from another
    writer's manifest would be) send the reseed to PyIceberg before a batch is read."""
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 300, seed=1)
    read_avro = iceberg_commit.read_avro

    def foreign(path: str) -> Any:
        meta, schema, records = read_avro(path)
        for record in records:
            if "data_file" in record:
                bounds = record["data_file"]["lower_bounds"]
                record["data_file"]["lower_bounds"] = [
                    {"key": kv["key"], "value": kv["value"].hex()} for kv in bounds
                ]
        return meta, schema, records

    monkeypatch.setattr(iceberg_commit, "read_avro", foreign)
    untouched = batches(300, seed=2)
    assert iceberg_commit.seed_without_pyiceberg(settings, SPEC, untouched) is None
    assert next(untouched).num_rows > 0
    monkeypatch.undo()
    assert _fast(settings, 400, seed=2).version == 2


def test_unreadable_avro_is_a_value_error(tmp_path: Path) -> None:
    """What ``_Reseed.plan`` turns into the PyIceberg path: not Avro, or cut short."""
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 300, seed=1)
    manifest_list = _table(tmp_path).metadata.snapshots[0].manifest_list
    data = Path(local_path(manifest_list)).read_bytes()
    for name, content in [("text.avro", b"not avro"), ("cut.avro", data[: len(data) - 40])]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError):
            iceberg_commit.read_avro(str(path))


def test_reseed_imports_neither_pyiceberg_nor_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from govlab.config import Settings\n"
        "from govlab.seeding import seed_table\n"
        f"settings = Settings.from_env({str(tmp_path)!r})\n"
        "info = seed_table('healthcare', 'tiny', 'iceberg', settings, seed=int(sys.argv[1]))\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pyiceberg', 'sqlalchemy')]\n"
        "print(json.dumps([info.version, info.rows, sorted(heavy)]))\n"
    )
    for run in (1, 2, 3):
        out = subprocess.run(
            [sys.executable, "-c", code, str(run)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        version, rows, heavy = json.loads(out.stdout.strip().splitlines()[-1])
        assert (version, rows, heavy) == (run, 1_000, [])
    table = _catalog(tmp_path).load_table(("govlab", "healthcare"))
    assert table.scan().to_arrow().num_rows == 1_000
    assert [s.sequence_number for s in table.metadata.snapshots] == [1, 2, 3]


def _metadata_dir(root: Path) -> Path:
    return root / "iceberg" / "warehouse" / "govlab" / "people" / "metadata"


def _referenced_avro(root: Path) -> set[str]:
    """The manifest lists of the kept snapshots and the manifests they name (PyIceberg's
    reading of the current metadata)."""
    table = _table(root)
    return {
        local_path(path)
        for s in table.metadata.snapshots
        for path in (s.manifest_list, *(m.manifest_path for m in s.manifests(table.io)))
    }


def _rows(version: int) -> int:
    return 300 + 50 * (version - 1)


@pytest.mark.parametrize("path", ["pyiceberg", "stdlib"])
def test_expired_snapshots_leave_no_manifest_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """After KEEP + 3 reseeds, the metadata directory holds the Avro files the kept
    snapshots reference and nothing else (their manifest lists and manifests), every
    kept version scans through govlab and through SqlCatalog (by snapshot id), and a
    reader that held an older kept version before the last reseeds still reads it."""
    if path == "pyiceberg":
        _pyiceberg_only(monkeypatch)
    settings = Settings(data_dir=tmp_path)
    engine = IcebergEngine(settings)
    seeds = KEEP + 3
    held: Any = None
    for i in range(seeds):
        engine.write(SPEC, batches(_rows(i + 1), seed=i))
        on_disk = {str(p) for p in _metadata_dir(tmp_path).glob("*.avro")}
        assert on_disk == _referenced_avro(tmp_path), i
        if i + 1 == KEEP + 1:  # a reader of the table as it was two reseeds ago
            held = _table(tmp_path)
            held_dataset = engine.snapshot(SPEC, version=KEEP - 1)

    table = _table(tmp_path)
    kept = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0)
    assert [s.sequence_number for s in kept] == list(range(seeds - KEEP + 1, seeds + 1))
    # per kept snapshot: its manifest list and the two manifests of its overwrite (the
    # first's DELETED manifest is still listed, so still there)
    assert len(list(_metadata_dir(tmp_path).glob("*.avro"))) == 3 * KEEP
    assert len(list(_metadata_dir(tmp_path).glob("*.metadata.json"))) == KEEP + 1
    for snapshot in kept:
        version = snapshot.sequence_number
        want = expected(_rows(version), seed=version - 1)
        assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE, version=version)).equals(want)
        scanned = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().cast(SCHEMA)
        assert by_pk(scanned).equals(want), version

    # the held reader: its metadata file is gone from the log, not its kept snapshots
    assert held is not None and held_dataset is not None
    ids = {s.sequence_number: s.snapshot_id for s in held.metadata.snapshots}
    for version in range(seeds - KEEP + 1, KEEP + 2):
        scanned = held.scan(snapshot_id=ids[version]).to_arrow().cast(SCHEMA)
        assert by_pk(scanned).equals(expected(_rows(version), seed=version - 1)), version
    held_rows = held_dataset.dataset.to_table()
    assert by_pk(held_rows).equals(expected(_rows(KEEP - 1), seed=KEEP - 2))


def test_both_paths_keep_the_same_metadata_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same reseeds through each path: as many manifest lists, manifests and
    metadata JSON files, at every step."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for i in range(KEEP + 3):
        with monkeypatch.context() as patch:
            _pyiceberg_only(patch)
            IcebergEngine(Settings(data_dir=theirs)).write(SPEC, batches(200, seed=i))
        IcebergEngine(Settings(data_dir=ours)).write(SPEC, batches(200, seed=i))
        counts = [
            (
                len(list(_metadata_dir(root).glob("snap-*.avro"))),
                len(list(_metadata_dir(root).glob("*-m*.avro"))),
                len(list(_metadata_dir(root).glob("*.metadata.json"))),
            )
            for root in (ours, theirs)
        ]
        assert counts[0] == counts[1], i
    assert counts[0] == (KEEP, 2 * KEEP, KEEP + 1)


@pytest.mark.parametrize("path", ["pyiceberg", "stdlib"])
def test_failed_reclaim_is_logged_and_the_seed_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Deleting expired files is housekeeping after the commit: when it fails, the
    seed is committed all the same and the failure is logged."""
    if path == "pyiceberg":
        _pyiceberg_only(monkeypatch)
    engine = IcebergEngine(Settings(data_dir=tmp_path))
    for i in range(KEEP):
        engine.write(SPEC, batches(200, seed=i))
    expiring = _table(tmp_path).metadata.snapshots[0]
    expired_list = Path(local_path(expiring.manifest_list))

    def unreadable(*args: Any) -> list[str]:
        raise OSError("disk on fire")

    monkeypatch.setattr(iceberg_commit, "expired_files", unreadable)
    with caplog.at_level("WARNING", logger="govlab.engines.iceberg_commit"):
        info = engine.write(SPEC, batches(300, seed=KEEP))
    assert (info.version, info.rows) == (KEEP + 1, 300)
    assert "disk on fire" in caplog.text
    assert expired_list.exists()  # left behind, nothing else went wrong
    table = _table(tmp_path)
    assert expiring.snapshot_id not in {s.snapshot_id for s in table.metadata.snapshots}
    assert by_pk(engine.scan(SPEC, SCHEMA.names, TRUE)).equals(expected(300, seed=KEEP))
    assert engine.count(SPEC, TRUE, version=2) == 200


def test_expired_files_spare_what_a_kept_snapshot_reaches(tmp_path: Path) -> None:
    """``expired_files``: an expired snapshot's manifest list, its manifests and their
    live data files, except what a kept snapshot names: a manifest list or manifest
    both name, a data file live in a kept manifest too."""
    settings = Settings(data_dir=tmp_path)
    _fast(settings, 300, seed=1)
    _fast(settings, 300, seed=2)
    table = _table(tmp_path)
    first, second = table.metadata.snapshots
    first_data = {t.file.file_path for t in table.scan(snapshot_id=first.snapshot_id).plan_files()}
    [first_manifest] = [m.manifest_path for m in first.manifests(table.io)]
    files = iceberg_commit.expired_files([first.manifest_list], [second.manifest_list])
    assert set(files) == first_data | {first_manifest, first.manifest_list}
    assert files[-1] == first.manifest_list  # data files first, the list last
    assert iceberg_commit.expired_files([second.manifest_list], [second.manifest_list]) == []

    def copy(source: str, name: str, replace: dict[str, str] | None = None) -> str:
        meta, schema, records = iceberg_commit.read_avro(source)
        for record in records:
            if replace and record.get("manifest_path") in replace:
                record["manifest_path"] = replace[record["manifest_path"]]
        target = str(tmp_path / name)
        header = {k: v.decode() for k, v in meta.items() if not k.startswith("avro.")}
        iceberg_commit.write_avro(target, schema, header, records)
        return target

    # a kept snapshot listing the expired one's manifest: only the list goes
    shared_list = copy(first.manifest_list, "shared-list.avro")
    assert iceberg_commit.expired_files([first.manifest_list], [shared_list]) == [
        first.manifest_list
    ]
    # a kept manifest listing the same data files live: they stay
    manifest_copy = copy(first_manifest, "manifest-copy.avro")
    kept_list = copy(first.manifest_list, "kept-list.avro", {first_manifest: manifest_copy})
    assert iceberg_commit.expired_files([first.manifest_list], [kept_list]) == [
        first_manifest,
        first.manifest_list,
    ]
