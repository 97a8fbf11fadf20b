"""Seeding jobs through the API and a real RQ worker process on a real Redis."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from govlab.config import Settings
from govlab.engines import get_engine
from govlab.generators import get_dataset
from govlab.policy.ast import TRUE
from tests.api_helpers import auth, kill_group, make_client, poll_until, worker


@pytest.fixture
def client(writable: Settings, redis_server):  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        yield c


def test_post_seed_returns_202_at_once_and_progress_reaches_100(
    client, writable, redis_server
) -> None:  # type: ignore[no-untyped-def]
    headers = auth("admin")
    before = client.get(
        "/search", params={"dataset": "ecommerce", "format": "parquet"}, headers=headers
    ).json()
    response = client.post(
        "/seed",
        json={"dataset": "ecommerce", "size": "small", "format": "parquet", "seed": 3},
        headers=headers,
    )
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    queued = client.get("/progress", params={"jobId": job_id}, headers=headers).json()
    assert queued["status"] == "queued"  # no worker yet: the request did not do the work
    with worker(writable, redis_server.url):
        seen = poll_until(client, job_id, headers, {"completed", "failed"})
    final = seen[-1]
    assert final["status"] == "completed", final
    pcts = [r["pct"] for r in seen]
    assert pcts == sorted(pcts) and pcts[-1] == 100
    assert final["rowsWritten"] == final["totalRows"] == 50_000
    assert final["tableVersion"] == before["tableVersion"] + 1
    after = client.get(
        "/search", params={"dataset": "ecommerce", "format": "parquet"}, headers=headers
    )
    assert after.json()["total"] == 50_000
    assert after.headers["X-Cache"] == "HIT"  # pre-warmed by the job


def test_unknown_job_is_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/progress", params={"jobId": "nope"}, headers=auth("admin"))
    assert response.status_code == 404


def test_seed_with_governance_config_needs_an_editor(client) -> None:  # type: ignore[no-untyped-def]
    policy = client.get("/policies/healthcare", headers=auth("admin")).json()["yaml"]
    body = {
        "dataset": "healthcare",
        "size": "tiny",
        "format": "delta",
        "governanceConfig": policy + "\n# edited\n",
    }
    denied = client.post("/seed", json=body, headers=auth("analyst", {"allowed_regions": ["NE"]}))
    assert denied.status_code == 403
    invalid = client.post(
        "/seed",
        json={**body, "governanceConfig": "version: 1\ndataset: healthcare\nroles: [{id: x}]"},
        headers=auth("admin"),
    )
    assert invalid.status_code == 422
    accepted = client.post("/seed", json=body, headers=auth("data_modeler"))
    assert accepted.status_code == 202
    assert client.get("/policies/healthcare", headers=auth("admin")).json()["revision"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"dataset": "nope", "size": "tiny", "format": "delta"},
        {"dataset": "healthcare", "size": "huge", "format": "delta"},
        {"dataset": "healthcare", "size": "tiny", "format": "orc"},
    ],
)
def test_bad_seed_requests_are_422(client, body) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/seed", json=body, headers=auth("admin"))
    assert response.status_code == 422 and "detail" in response.json()


def test_cancelling_a_queued_job_means_it_never_runs(client, writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    headers = auth("admin")
    version = get_engine("delta", writable).version("financial")
    job_id = client.post(
        "/seed", json={"dataset": "financial", "size": "small", "format": "delta"}, headers=headers
    ).json()["jobId"]
    assert client.delete(f"/jobs/{job_id}", headers=headers).json()["status"] == "cancelled"
    with worker(writable, redis_server.url):
        time.sleep(1.5)
    assert (
        client.get("/progress", params={"jobId": job_id}, headers=headers).json()["status"]
        == "cancelled"
    )
    assert get_engine("delta", writable).version("financial") == version


@pytest.mark.heavy
@pytest.mark.parametrize("fmt", ["delta", "parquet", "iceberg"])
def test_a_worker_killed_mid_write_leaves_the_old_version_intact(
    client, writable, redis_server, fmt
) -> None:  # type: ignore[no-untyped-def]
    headers = auth("admin")
    spec = get_dataset("healthcare")
    engine = get_engine(fmt, writable)
    version = engine.version("healthcare")
    job_id = client.post(
        "/seed", json={"dataset": "healthcare", "size": "medium", "format": fmt}, headers=headers
    ).json()["jobId"]
    with worker(writable, redis_server.url) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            record = client.get("/progress", params={"jobId": job_id}, headers=headers).json()
            if record["status"] == "running" and 0 < record["pct"] < 90:
                break
            assert record["status"] in ("queued", "running"), record
            time.sleep(0.01)
        kill_group(proc)
    assert engine.version("healthcare") == version
    table = engine.scan(spec, spec.schema.names, TRUE, version)
    assert table.num_rows == 1000
    assert engine.count(spec, TRUE) == 1000


@pytest.mark.heavy
def test_cancelling_a_running_job_keeps_the_old_version(client, writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    """5M rows, so the job is still running when the cancel lands (a 500k-row seed once
    finished in the moment between the test seeing it run and cancelling it); cancelled,
    it writes only its first batches."""
    headers = auth("admin")
    engine = get_engine("parquet", writable)
    version = engine.version("healthcare")
    job_id = client.post(
        "/seed",
        json={"dataset": "healthcare", "size": "large", "format": "parquet"},
        headers=headers,
    ).json()["jobId"]
    with worker(writable, redis_server.url):
        poll_until(client, job_id, headers, {"running"})
        client.delete(f"/jobs/{job_id}", headers=headers)
        final = poll_until(client, job_id, headers, {"cancelled", "completed", "failed"})[-1]
    assert final["status"] == "cancelled"
    assert final.get("rowsWritten", 0) < 5_000_000
    assert engine.version("healthcare") == version
    assert engine.count(get_dataset("healthcare"), TRUE) == 1000


def test_preload_imports_what_a_work_horse_would_import_per_job() -> None:
    """``govlab worker`` preloads before RQ forks a horse per job; without it every seed
    job would import delta-rs and PyIceberg again (most of a small seed's time)."""
    wanted = [
        "govlab.engines.delta",
        "govlab.engines.parquet",
        "govlab.engines.iceberg",
        "govlab.seeding",
        "sqlalchemy.dialects.sqlite",
    ]
    script = (
        "import sys; from govlab.engines import preload; "
        f"before = [m for m in {wanted!r} if m in sys.modules]; preload(); "
        f"print(before, [m for m in {wanted!r} if m not in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] []"
