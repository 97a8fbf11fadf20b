"""The Daft execution backend on Daft's native runner: the same pages as the in-process
search for every role, query, order and format, from local tables and from tables on an
S3-compatible server; and the governed export (masks as Daft batch UDFs)."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from govlab.catalog import get_dataset
from govlab.config import ConfigError, Settings, worker_secret
from govlab.engines import FORMATS
from govlab.errors import AccessDenied
from govlab.execution.export import MANIFEST, export_parquet
from govlab.execution.objectstore import ObjectStore, publish
from govlab.keys import derive_keys
from govlab.masks import apply_mask
from govlab.policy import Principal
from govlab.policy.access import AccessControl, Action
from govlab.policy.compile import matches
from govlab.policy.store import PolicyStore
from govlab.search import GovernedSearch, SearchQuery
from tests.conftest import TEST_SECRET
from tests.target_helpers import totals_agree

pytest.importorskip("daft")

ATTRS = {"id": "C007", "allowed_regions": ["NE", "SW"], "region": "W"}
ROLES = ["admin", "data_modeler", "clinician", "analyst", "business_user"]
QUERIES = [
    ("", None, 1),
    ("asthma", None, 1),
    ("a", None, 2),  # broad: a second page
    ("a e", "-admitted_at", 1),  # two terms, another order
    ("NE", "region", 3),
    ("zzzz-no-such-thing", None, 1),
    ("ASTHMA", "-patient_id", 1),  # case, descending key
]


def pages_agree(mine: dict[str, Any], theirs: dict[str, Any], count_limit: int | None) -> None:
    """Same items, masks and versions; totals as ``totals_agree`` says."""
    for key in ("items", "maskedFields", "tableVersion", "policyVersion", "sort"):
        assert mine[key] == theirs[key], key
    totals_agree(mine, theirs, count_limit)


def compare(settings: Settings, dataset: str, fmt: str, role: str, query: SearchQuery) -> None:
    principal = Principal(role, ATTRS)
    inprocess = GovernedSearch(settings).search(dataset, fmt, principal, query)
    daft = GovernedSearch(dataclasses.replace(settings, execution="daft"))
    pages_agree(daft.search(dataset, fmt, principal, query), inprocess, settings.count_limit)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("role", ROLES)
def test_daft_pages_equal_inprocess_pages(seeded: Settings, fmt: str, role: str) -> None:
    for q, sort, page in QUERIES:
        compare(seeded, "healthcare", fmt, role, SearchQuery.parse(q, page, 7, sort))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dataset", ["ecommerce", "financial"])
def test_daft_pages_on_the_other_datasets(seeded: Settings, dataset: str, fmt: str) -> None:
    for role in ("admin", "analyst", "business_user"):
        for q, sort, page in QUERIES[:3]:
            compare(seeded, dataset, fmt, role, SearchQuery.parse(q, page, 5, sort))


@pytest.mark.parametrize("fmt", FORMATS)
def test_capped_count_is_a_lower_bound_in_both_backends(seeded: Settings, fmt: str) -> None:
    capped = dataclasses.replace(seeded, count_limit=50)
    for role in ("admin", "analyst"):
        for page in (1, 9):  # past the cap: counting goes on to the page
            query = SearchQuery.parse("", page, 10, None)
            compare(capped, "healthcare", fmt, role, query)
        exact = SearchQuery.parse("", 1, 10, None, exact_total=True)
        compare(capped, "healthcare", fmt, role, exact)
        compare(capped, "healthcare", fmt, role, SearchQuery.parse("", 1, 10, "-admitted_at"))


def test_daft_reads_the_version_the_inprocess_engine_pins(writable: Settings) -> None:
    """After a reseed the Daft search reads the new version, and an older pinned version
    stays readable (time travel) where the format keeps it."""
    from govlab.execution.sources import source
    from govlab.seeding import seed_table

    spec = get_dataset("healthcare")
    for fmt in FORMATS:
        before = source(fmt, writable).version("healthcare")
        seed_table("healthcare", "tiny", fmt, writable, 7)
        daft_source = source(fmt, writable)
        after = daft_source.version("healthcare")
        assert after > before
        new_rows = daft_source.frame(spec, after).sort("patient_id").limit(3).to_arrow()
        old_rows = daft_source.frame(spec, before).sort("patient_id").limit(3).to_arrow()
        assert new_rows.column("name") != old_rows.column("name"), fmt


def test_config_selects_the_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOVLAB_EXECUTION", "daft")
    assert Settings.from_env(tmp_path).execution == "daft"
    monkeypatch.setenv("GOVLAB_EXECUTION", "spark")
    with pytest.raises(ConfigError, match="GOVLAB_EXECUTION must be one of inprocess, daft"):
        Settings.from_env(tmp_path)
    monkeypatch.delenv("GOVLAB_EXECUTION")
    for bad in ("http://head:10001", "ray://head", "ray://:10001", "head:10001"):
        monkeypatch.setenv("GOVLAB_RAY_ADDRESS", bad)
        from govlab.config import check_environment

        with pytest.raises(ConfigError, match="GOVLAB_RAY_ADDRESS must be ray://host:port"):
            check_environment()
    monkeypatch.setenv("GOVLAB_RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setenv("GOVLAB_TABLES_URI", "/not/a/bucket")
    with pytest.raises(ConfigError, match="GOVLAB_TABLES_URI must be a bucket URI"):
        check_environment()


class _RefusingHead:
    """Stands in for ``daft`` at the one call a refused join makes: the real refusal
    takes the head's proxy about 30 s (tests/test_distributed.py has one)."""

    def __init__(self, refusals: int, error: type[Exception] = ConnectionAbortedError) -> None:
        self.refusals, self.error, self.joins = refusals, error, 0

    def set_runner_ray(self, address: str | None, noop_if_initialized: bool) -> None:
        self.joins += 1
        if self.joins <= self.refusals:
            raise self.error("Initialization failure from server")


def test_joining_ray_is_attempted_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from govlab.execution import daft as on_daft

    monkeypatch.setattr(on_daft, "RAY_JOIN_BACKOFF_S", 0.0)
    head = _RefusingHead(refusals=2)
    on_daft._join_ray(head, "ray://127.0.0.1:1")
    assert head.joins == 3
    head = _RefusingHead(refusals=5)
    with pytest.raises(on_daft.DaftFailed, match="refused this driver 3 times"):
        on_daft._join_ray(head, "ray://127.0.0.1:1")
    assert head.joins == on_daft.RAY_JOIN_ATTEMPTS == 3
    head = _RefusingHead(refusals=1, error=ConnectionError)  # unreachable or bad token
    with pytest.raises(ConnectionError):
        on_daft._join_ray(head, "ray://127.0.0.1:1")
    assert head.joins == 1


# ---------------------------------------------------------------- object storage
@pytest.mark.parametrize("fmt", FORMATS)
def test_daft_pages_from_the_s3_server_equal_local_pages(
    seeded: Settings, s3_env: str, tmp_path: Path, fmt: str
) -> None:
    """The table published to the S3 server (127.0.0.1) is read there by Daft; its pages
    equal the in-process pages of the local table it came from."""
    settings = Settings(data_dir=tmp_path / "data")
    shutil.copytree(seeded.data_dir, settings.data_dir)
    store = ObjectStore.from_env()
    assert store is not None and store.uri == s3_env
    version = publish(settings, fmt, "healthcare", store)
    daft = GovernedSearch(dataclasses.replace(settings, execution="daft"))
    assert daft.engine(fmt).version("healthcare") == version
    for role in ROLES:
        for q, sort, page in QUERIES[:4]:
            query = SearchQuery.parse(q, page, 7, sort)
            principal = Principal(role, ATTRS)
            local = GovernedSearch(settings).search("healthcare", fmt, principal, query)
            remote = daft.search("healthcare", fmt, principal, query)
            assert remote["tableVersion"] == version
            for key in ("items", "total", "totalExact", "maskedFields"):
                assert remote[key] == local[key], (role, q, key)


def test_publishing_again_makes_a_new_version_on_the_store(
    seeded: Settings, s3_env: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    shutil.copytree(seeded.data_dir, settings.data_dir)
    store = ObjectStore.from_env()
    assert store is not None
    for fmt in FORMATS:
        first = publish(settings, fmt, "healthcare", store)
        second = publish(settings, fmt, "healthcare", store)
        assert second > first, fmt


# ---------------------------------------------------------------- export
def _grant(settings: Settings, role: str = "analyst", attrs: dict[str, Any] | None = None) -> Any:
    principal = Principal(role, ATTRS if attrs is None else attrs)
    return AccessControl(PolicyStore(settings)).authorize(principal, Action.EXPORT, "healthcare")


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_holds_exactly_the_visible_rows_masked_by_govlab_masks(
    seeded: Settings, raw_tables: dict[str, pa.Table], tmp_path: Path, fmt: str
) -> None:
    grant = _grant(seeded)
    plan = grant.bound_plan
    progress: list[tuple[int, int]] = []
    target = tmp_path / "out"
    result = export_parquet(seeded, grant, fmt, str(target), lambda d, t: progress.append((d, t)))
    exported = ds.dataset(target, format="parquet").to_table().sort_by("patient_id")
    spec = get_dataset("healthcare")
    raw = raw_tables["healthcare"]
    visible = raw.filter(pa.array([matches(plan.row_filter, r) for r in raw.to_pylist()]))
    visible = visible.sort_by("patient_id")
    assert exported.num_rows == visible.num_rows == result.rows > 0
    assert exported.column_names == spec.schema.names
    keys = derive_keys(TEST_SECRET.encode()).masks
    for column in spec.schema.names:
        if column in plan.masks:
            mask = plan.masks[column]
            want = apply_mask(
                mask.type, mask.params, visible.column(column), keys,
                dataset="healthcare", column=column,
            )  # fmt: skip
            assert exported.column(column).to_pylist() == want.to_pylist(), column
        else:
            assert exported.column(column).to_pylist() == visible.column(column).to_pylist()
    assert progress[-1] == (result.rows, result.rows)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["rows"] == result.rows and manifest["role"] == "analyst"
    assert sorted(manifest["masked"]) == sorted(plan.masks)


def test_no_raw_masked_value_leaves_by_the_export(
    seeded: Settings, raw_tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    grant = _grant(seeded)
    target = tmp_path / "out"
    export_parquet(seeded, grant, "delta", str(target))
    raw = raw_tables["healthcare"]
    blob = b"".join(p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file())
    for column in grant.bound_plan.masks:
        for value in raw.column(column).to_pylist()[:200]:
            text = value.isoformat() if hasattr(value, "isoformat") else str(value)
            if len(text) >= 6:  # short values occur by chance in any binary
                assert text.encode() not in blob, column
    names = [p.name for p in target.rglob("*")]
    assert all("region=" not in n for n in names)  # no raw value in a path


def test_export_needs_can_export_and_the_filters_attributes(
    seeded: Settings, tmp_path: Path
) -> None:
    with pytest.raises(AccessDenied, match="needs can_export"):
        _grant(seeded, "clinician")
    with pytest.raises(AccessDenied):
        _grant(seeded, "analyst", {})
    search_grant = AccessControl(PolicyStore(seeded)).authorize(
        Principal("analyst", ATTRS), Action.SEARCH, "healthcare"
    )
    with pytest.raises(AccessDenied):
        export_parquet(seeded, search_grant, "delta", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_export_refuses_an_existing_target_and_leaves_nothing_on_failure(
    seeded: Settings, tmp_path: Path
) -> None:
    grant = _grant(seeded)
    existing = tmp_path / "exists"
    existing.mkdir()
    with pytest.raises(FileExistsError):
        export_parquet(seeded, grant, "delta", str(existing))
    broken = dataclasses.replace(seeded, data_dir=tmp_path / "empty")
    with pytest.raises(Exception):  # noqa: B017 - no table: nothing may be left behind
        export_parquet(broken, grant, "delta", str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


def test_the_mask_udf_carries_no_key(seeded: Settings) -> None:
    """The Daft plan (as pickled for workers) names masks, never keys or the secret."""
    import daft

    from govlab.execution.export import _projection

    grant = _grant(seeded)
    spec = get_dataset("healthcare")
    projection = _projection(spec.schema, grant.bound_plan.mask_plan, "healthcare", seeded.data_dir)
    frame = daft.from_pydict({c: [] for c in spec.schema.names}).select(*projection)
    plan = io.StringIO()
    frame.explain(show_all=True, file=plan)
    blob = pickle.dumps(projection) + plan.getvalue().encode()
    for mask in grant.bound_plan.masks.values():  # the masks are named, so they travel
        assert mask.type.encode() in blob
    keys = derive_keys(TEST_SECRET.encode()).masks
    for secret in (TEST_SECRET.encode(), keys.hash, keys.tokenize):
        assert secret not in blob


def test_a_worker_without_the_secret_fails_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GOVLAB_SECRET")
    with pytest.raises(ConfigError, match="not set on this worker"):
        worker_secret(tmp_path)
    assert not (tmp_path / "secret.key").exists()  # never generated on a worker
    monkeypatch.setenv("GOVLAB_SECRET", TEST_SECRET)
    assert worker_secret(tmp_path) == TEST_SECRET.encode()


def test_cli_export(seeded: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from govlab.cli import main

    target = tmp_path / "cli-out"
    args = ["export", "--dataset", "healthcare", "--format", "parquet", "--role", "analyst"]
    args += ["--attr", 'allowed_regions=["NE"]', "--out", str(target)]
    assert main([*args, "--data-dir", str(seeded.data_dir)]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["rows"] == ds.dataset(target, format="parquet").count_rows() > 0
    assert "govlab: exported" in err
    denied = ["export", "--dataset", "healthcare", "--role", "clinician", "--attr", "id=C007"]
    denied += ["--out", str(tmp_path / "no"), "--data-dir", str(seeded.data_dir)]
    assert main(denied) == 3
    assert "needs can_export" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", FORMATS)
def test_key_windows_find_the_same_first_keys(seeded: Settings, fmt: str) -> None:
    """Small count limits make the key-window path run (a window of the key range,
    widened when it holds too few matches, then the whole table), in both directions,
    for dense, sparse and absent matches."""
    from govlab.execution import daft as backend

    for limit in (5, 50):
        capped = dataclasses.replace(seeded, count_limit=limit)
        for sort in (None, "-patient_id"):
            for role, q in (("admin", ""), ("admin", "asthma"), ("clinician", "asthma"),
                            ("analyst", "e"), ("admin", "zzzz-none")):  # fmt: skip
                for page in (1, 3):
                    compare(capped, "healthcare", fmt, role, SearchQuery.parse(q, page, 7, sort))
    assert backend._ranges  # the key range was read (and cached) for the windows


def test_export_from_and_to_the_s3_server(
    seeded: Settings, s3_env: str, tmp_path: Path, raw_tables: dict[str, pa.Table]
) -> None:
    """Tables on the S3 server, the export target a prefix there: the files, then the
    manifest, land on the server."""
    import pyarrow.fs as pafs

    settings = Settings(data_dir=tmp_path / "data")
    shutil.copytree(seeded.data_dir, settings.data_dir)
    store = ObjectStore.from_env()
    assert store is not None
    publish(settings, "parquet", "healthcare", store)
    target = s3_env + "/exports/analyst"
    result = export_parquet(settings, _grant(settings), "parquet", target)
    filesystem, root = store.arrow_filesystem()
    path = root + "/exports/analyst"
    assert filesystem.get_file_info(path + "/" + MANIFEST).type == pafs.FileType.File
    table = ds.dataset(path, filesystem=filesystem, format="parquet").to_table()
    assert table.num_rows == result.rows > 0
    raw_ssn = set(raw_tables["healthcare"].column("ssn").to_pylist())
    assert set(table.column("ssn").to_pylist()).isdisjoint(raw_ssn)
