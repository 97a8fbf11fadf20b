"""The export job: ``POST /export`` (can_export), progress through ``/progress``, the
masked Parquet written by a real RQ worker (Daft in its work horse) on a real Redis."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from govlab.config import Settings
from tests.api_helpers import auth, make_client, poll_until, worker

pytest.importorskip("daft")
ANALYST = {"allowed_regions": ["NE", "SW"]}


@pytest.fixture
def client(writable: Settings, redis_server):  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        yield c


def test_export_job_writes_the_masked_rows_with_progress(client, writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    headers = auth("analyst", ANALYST)
    response = client.post("/export", json={"dataset": "healthcare", "format": "iceberg"},
                           headers=headers)  # fmt: skip
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    queued = client.get("/progress", params={"jobId": job_id}, headers=headers).json()
    assert queued["status"] == "queued" and queued["kind"] == "export"
    with worker(writable, redis_server.url):
        seen = poll_until(client, job_id, headers, {"completed", "failed"}, timeout_s=300)
    final = seen[-1]
    assert final["status"] == "completed", final
    assert final["pct"] == 100 and final["exportPath"] == f"exports/{job_id}"
    search = client.get(
        "/search", params={"dataset": "healthcare", "format": "iceberg", "exactTotal": "true"},
        headers=headers,
    ).json()  # fmt: skip
    table = ds.dataset(writable.data_dir / final["exportPath"], format="parquet").to_table()
    assert table.num_rows == final["rowsWritten"] == search["total"] > 0
    first = table.sort_by("patient_id").slice(0, 1).to_pylist()[0]
    item = search["items"][0]
    assert first["patient_id"] == item["patient_id"]
    for column in search["maskedFields"]:  # the same masked values (keyed ones too)
        assert first[column] == item[column], column
    other = auth("clinician", {"id": "C007"})  # neither the requester nor an editor
    assert client.get("/progress", params={"jobId": job_id}, headers=other).status_code == 403


def test_export_needs_can_export(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/export", json={"dataset": "healthcare"}, headers=auth("clinician", {"id": "C007"})
    )
    assert response.status_code == 403
    assert "needs can_export" in response.json()["detail"]
    bad = client.post("/export", json={"dataset": "nope"}, headers=auth("analyst", ANALYST))
    assert bad.status_code == 422
