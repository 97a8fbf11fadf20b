"""Security round 2: each leak or fail-open the outside review found, tried as it was
tried against the running service. Every test here failed on the code before the fix.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest

from govlab.config import Settings
from govlab.engines import get_engine
from govlab.errors import ConfigError
from govlab.generators import get_dataset
from govlab.keys import derive_keys
from govlab.masks import apply_mask, tokenize_value
from govlab.policy import Principal
from govlab.policy.access import PERMISSION, Action
from govlab.policy.ast import TRUE
from govlab.policy.attributes import InvalidAttribute
from govlab.service import api
from govlab.service.audit import AuditLog
from govlab.service.identity import ALGORITHM, ISSUER, mint_token, signing_key
from govlab.service.redis_server import free_port
from tests.api_helpers import ATTRS_NE, auth, make_client, poll_until, wait_healthy, worker
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
SECRET = TEST_SECRET.encode()


@pytest.fixture
def client(writable: Settings, redis_server):  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(claims: dict[str, Any], secret: bytes = SECRET) -> str:
    """A token signed with the real key: what an issuer with odd claims would send."""
    now = int(time.time())
    body = {"sub": "probe", "iss": ISSUER, "iat": now, "exp": now + 600, "attrs": {}, **claims}
    return jwt.encode(body, signing_key(secret), algorithm=ALGORITHM)


def install_policy(client, dataset: str, extra_roles: str) -> None:  # type: ignore[no-untyped-def]
    """Append roles to the shipped policy, as an editor would through the API."""
    text = client.get(f"/policies/{dataset}", headers=auth("admin")).json()["yaml"]
    put = client.put(
        f"/policies/{dataset}",
        content=text.rstrip("\n") + "\n" + extra_roles,
        headers={**auth("admin"), "Content-Type": "application/yaml"},
    )
    assert put.status_code == 200, put.text


def search(client, headers, dataset: str = "healthcare", **params: Any) -> httpx.Response:  # type: ignore[no-untyped-def]
    return client.get(
        "/search", params={"dataset": dataset, "format": "delta", **params}, headers=headers
    )


# ------------------------------------------------------------------ 1. detokenize bound
def test_a_token_from_another_dataset_does_not_redeem(client, raw_tables) -> None:  # type: ignore[no-untyped-def]
    """Financial SSN tokens, redeemed by healthcare's detokenizer: refused (was 200 + SSNs)."""
    fin = search(client, auth("admin"), "financial", pageSize=5).json()["items"]
    fin_tokens = [row["ssn"] for row in fin]
    cross = client.post(
        "/detokenize", json={"dataset": "healthcare", "tokens": fin_tokens}, headers=auth("admin")
    )
    assert cross.status_code == 422 and "not a valid token" in cross.json()["detail"]
    assert not any(row["ssn"] in cross.text for row in fin)
    # ...and the healthcare tokens redeem in healthcare, to the raw values
    rows = search(client, auth("admin"), pageSize=5).json()["items"]
    own = client.post(
        "/detokenize",
        json={"dataset": "healthcare", "tokens": [r["ssn"] for r in rows]},
        headers=auth("admin"),
    )
    raw = {r["patient_id"]: r["ssn"] for r in raw_tables["healthcare"].to_pylist()}
    assert own.status_code == 200
    assert own.json()["values"] == [raw[r["patient_id"]] for r in rows]


def test_a_token_opens_only_in_its_own_column_and_for_listed_columns(client) -> None:  # type: ignore[no-untyped-def]
    row = search(client, auth("admin"), "financial", pageSize=1).json()["items"][0]
    ssn_token, account_token = row["ssn"], row["account_number"]
    ok = client.post(
        "/detokenize",
        json={"dataset": "financial", "column": "account_number", "tokens": [account_token]},
        headers=auth("admin"),
    )
    assert ok.status_code == 200
    wrong_column = client.post(
        "/detokenize",
        json={"dataset": "financial", "column": "account_number", "tokens": [ssn_token]},
        headers=auth("admin"),
    )
    assert wrong_column.status_code == 422
    install_policy(
        client,
        "financial",
        "  - id: ssn_desk\n    can_detokenize: [ssn]\n    row_filter: 'true'\n"
        "    column_masks: {ssn: tokenize, account_number: tokenize}\n",
    )
    desk = auth("ssn_desk")
    assert (
        client.post(
            "/detokenize", json={"dataset": "financial", "tokens": [ssn_token]}, headers=desk
        ).status_code
        == 200
    )
    denied = client.post(
        "/detokenize",
        json={"dataset": "financial", "column": "account_number", "tokens": [account_token]},
        headers=desk,
    )
    assert denied.status_code == 403 and "may not detokenize 'account_number'" in denied.text
    unlisted = client.post(
        "/detokenize", json={"dataset": "financial", "tokens": [account_token]}, headers=desk
    )
    assert unlisted.status_code == 422


# ------------------------------------------------------------------ 2. attribute values
CLEARED = (
    "  - id: cleared\n"
    "    row_filter: 'not (${user.clearance} < 3)'\n"
    "    column_masks: {ssn: redact_full}\n"
)


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"clearance": float("nan")}, "not a finite number"),
        ({"clearance": float("inf")}, "not a finite number"),
        ({"clearance": 10**400}, "outside 64 bits"),
        ({"clearance": "\ud800"}, "lone surrogate"),
        ({"clearance": [float("nan")]}, "not a finite number"),
        ({"clearance": {"nested": 1}}, "unsupported type"),
    ],
)
def test_an_unrepresentable_attribute_is_refused_not_folded(client, attrs, reason) -> None:  # type: ignore[no-untyped-def]
    """``not (NaN < 3)`` is true: a signed NaN used to open every row."""
    install_policy(client, "healthcare", CLEARED)
    token = signed({"role": "cleared", "attrs": attrs})
    response = search(client, bearer(token))
    assert response.status_code == 403, response.text
    assert reason in response.json()["detail"]
    assert (
        search(client, bearer(signed({"role": "cleared", "attrs": {"clearance": 1}}))).json()[
            "total"
        ]
        == 0
    )
    assert (
        search(client, bearer(signed({"role": "cleared", "attrs": {"clearance": 5}}))).json()[
            "total"
        ]
        == 1000
    )


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), 2**64, "a\ud800b", b"bytes"])
def test_tokens_with_unrepresentable_attributes_are_never_minted(value: Any) -> None:
    with pytest.raises(InvalidAttribute):
        mint_token(SECRET, "cleared", {"clearance": value})


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity"])
def test_govlab_token_refuses_nan_attributes(raw: str, capsys: pytest.CaptureFixture[str]) -> None:
    from govlab.cli import main

    code = main(["token", "--role", "cleared", "--attr", f"clearance={raw}"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.strip() == "govlab: --attr clearance: NaN and Infinity are not accepted"


@pytest.mark.parametrize("exp", ["99999999999", None, True, [1]])
def test_exp_must_be_a_number(client, exp) -> None:  # type: ignore[no-untyped-def]
    response = search(client, bearer(signed({"role": "admin", "exp": exp})))
    assert response.status_code == 401


# ------------------------------------------------------------------ 3. audit
def test_audit_is_scoped_to_its_dataset_and_keeps_no_search_text(client) -> None:  # type: ignore[no-untyped-def]
    search(client, auth("analyst", ATTRS_NE), q="Smith")
    search(client, auth("admin"), "ecommerce", q="Visa")
    search(client, auth("intruder"), "ecommerce")  # a denial, filed under ecommerce
    health = client.get("/audit", params={"dataset": "healthcare"}, headers=auth("admin")).json()
    commerce = client.get("/audit", params={"dataset": "ecommerce"}, headers=auth("admin")).json()
    assert {e.get("dataset") for e in health["entries"]} == {"healthcare"}
    assert {e.get("dataset") for e in commerce["entries"]} == {"ecommerce"}
    assert any(e["event"] == "denial" for e in commerce["entries"])
    assert "Smith" not in json.dumps(health) and "Visa" not in json.dumps(commerce)
    mine = next(e for e in health["entries"] if e["event"] == "search")
    assert mine["qLength"] == 5 and re.fullmatch(r"[0-9a-f]{16}", mine["qFingerprint"])
    assert mine["qFingerprint"] != hashlib.sha256(b"Smith").hexdigest()[:16]  # keyed


def test_audit_readers_are_named_by_the_policy(client) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.get(
            "/audit", params={"dataset": "healthcare"}, headers=auth("analyst", ATTRS_NE)
        ).status_code
        == 403
    )
    install_policy(
        client,
        "healthcare",
        "  - id: auditor\n    can_read_audit: true\n    row_filter: 'false'\n"
        "  - id: quiet_editor\n    can_edit_policies: true\n    can_read_audit: false\n"
        "    row_filter: 'true'\n",
    )
    assert (
        client.get("/audit", params={"dataset": "healthcare"}, headers=auth("auditor")).status_code
        == 200
    )
    denied = client.get("/audit", params={"dataset": "healthcare"}, headers=auth("quiet_editor"))
    assert denied.status_code == 403 and "can_read_audit" in denied.json()["detail"]


@pytest.mark.parametrize(("mode", "kept"), [("full", {"q": "Smith"}), ("none", {})])
def test_audit_query_modes(tmp_path: Path, mode: str, kept: dict[str, Any]) -> None:
    log = AuditLog(tmp_path / "a.jsonl", None, derive_keys(SECRET), mode)  # type: ignore[arg-type]
    assert log.query_fields("Smith") == kept


def test_no_audit_record_is_lost_on_a_clean_stop(writable: Settings, redis_server) -> None:  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        for i in range(40):
            search(c, auth("admin"), q=f"term{i}")
    lines = (writable.data_dir / "audit" / "audit.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["event"] == "search" for line in lines) == 40


# ------------------------------------------------------------------ 4. jobs
SEEDING_ANALYST = "  - id: loader\n    can_seed: true\n    row_filter: 'false'\n"


def test_only_roles_with_can_seed_may_seed(client) -> None:  # type: ignore[no-untyped-def]
    body = {"dataset": "healthcare", "size": "large", "format": "delta"}
    for headers in (auth("analyst", ATTRS_NE), auth("clinician", {"id": "C007"}), auth("nobody")):
        response = client.post("/seed", json=body, headers=headers)
        assert response.status_code == 403, response.text
    assert "can_seed" in client.post("/seed", json=body, headers=auth("business_user")).text
    assert (
        client.post("/seed", json={**body, "size": "tiny"}, headers=auth("admin")).status_code
        == 202
    )


def test_a_job_is_read_and_cancelled_only_by_its_requester_or_an_editor(client) -> None:  # type: ignore[no-untyped-def]
    install_policy(client, "healthcare", SEEDING_ANALYST)
    owner = bearer(mint_token(SECRET, "loader", {}, "alice"))
    other_loader = bearer(mint_token(SECRET, "loader", {}, "bob"))
    job_id = client.post(
        "/seed", json={"dataset": "healthcare", "size": "tiny"}, headers=owner
    ).json()["jobId"]
    for stranger in (other_loader, auth("nobody"), auth("analyst", ATTRS_NE)):
        assert (
            client.get("/progress", params={"jobId": job_id}, headers=stranger).status_code == 403
        )
        assert client.delete(f"/jobs/{job_id}", headers=stranger).status_code == 403
    record = client.get("/progress", params={"jobId": job_id}, headers=owner).json()
    assert record["status"] == "queued" and "requestedRole" not in record
    assert (
        client.get("/progress", params={"jobId": job_id}, headers=auth("data_modeler")).status_code
        == 200
    )
    assert client.delete(f"/jobs/{job_id}", headers=owner).json()["status"] == "cancelled"
    # an editor of another dataset is no editor of this job
    ecommerce_admin_job = client.post(
        "/seed", json={"dataset": "ecommerce", "size": "tiny"}, headers=auth("admin")
    ).json()["jobId"]
    assert (
        client.get("/progress", params={"jobId": ecommerce_admin_job}, headers=owner).status_code
        == 403
    )


# ------------------------------------------------------------------ 5 and 6. keys
def test_rotating_the_secret_misses_the_cache(writable: Settings, redis_server) -> None:  # type: ignore[no-untyped-def]
    params = {"dataset": "healthcare", "format": "delta", "pageSize": 3}
    with make_client(writable, redis_server.url) as c:
        first = c.get("/search", params=params, headers=auth("data_modeler"))
        assert (
            c.get("/search", params=params, headers=auth("data_modeler")).headers["X-Cache"]
            == "HIT"
        )
    rotated = TEST_SECRET + "-rotated"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOVLAB_SECRET", rotated)
        with make_client(writable, redis_server.url) as c:
            token = mint_token(rotated.encode(), "data_modeler", {}, "dm")
            after = c.get("/search", params=params, headers=bearer(token))
    assert after.status_code == 200 and after.headers["X-Cache"] == "MISS"
    assert [r["ssn"] for r in after.json()["items"]] != [r["ssn"] for r in first.json()["items"]]


def test_every_key_is_derived_apart_and_none_is_the_secret() -> None:
    keys = derive_keys(SECRET)
    all_keys = [keys.jwt, keys.masks.hash, keys.masks.tokenize, keys.audit, keys.cache]
    assert len(set(all_keys)) == 5 and SECRET not in all_keys
    old_jwt = hmac.new(SECRET, b"govlab-jwt-signing", hashlib.sha256).digest()
    hashed_label = apply_mask("hash", {}, _arr("govlab-jwt-signing"), keys.masks)[0].as_py()
    assert hashed_label not in (old_jwt.hex(), keys.jwt.hex())
    assert not keys.jwt.hex().startswith(hashed_label[:16])
    assert len(hashed_label) == 32  # >= 96 bits
    assert tokenize_value("x", keys.masks, "healthcare", "ssn").startswith("tok_")


def test_a_short_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVLAB_SECRET", "x" * 31)
    with pytest.raises(ConfigError, match="at least 32"):
        Settings(data_dir=tmp_path).secret_key()


def _arr(value: str):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    return pa.array([value])


# ------------------------------------------------------------------ one authorization layer
def test_management_actions_need_no_row_filter_attributes(client) -> None:  # type: ignore[no-untyped-def]
    """A clinician token without ``id`` may read the policy (it was 403); it still may
    not search, because search binds the row filter."""
    no_id = auth("clinician")
    assert client.get("/policies/healthcare", headers=no_id).status_code == 200
    assert client.get("/policies/healthcare", headers=no_id).json()["canEdit"] is False
    denied = search(client, no_id)
    assert denied.status_code == 403 and "'id' is required" in denied.json()["detail"]


def test_no_http_handler_decides_access_itself() -> None:
    source = (ROOT / "govlab" / "service" / "api.py").read_text()
    assert not re.search(
        r"can_(edit_policies|detokenize|seed|read_audit)|\.reads_audit|\.seeds", source
    )
    assert set(PERMISSION) == set(Action)  # every action has a documented permission
    readme = (ROOT / "README.md").read_text()
    for action in Action:
        assert f"`{action.value}`" in readme, action


def test_principal_refuses_bad_names() -> None:
    for role in ("", "a b", "x" * 65, "r\ud800"):
        with pytest.raises(InvalidAttribute.__mro__[1]):  # AccessDenied
            Principal(role)
    with pytest.raises(InvalidAttribute):
        Principal("admin", {"1bad": 1})


# ------------------------------------------------------------------ 8. Redis outage
def test_job_endpoints_answer_503_while_redis_is_down(seeded: Settings) -> None:
    port = free_port()  # nothing listens there
    with make_client(seeded, f"redis://127.0.0.1:{port}/0") as c:
        seed = c.post("/seed", json={"dataset": "healthcare"}, headers=auth("admin"))
        progress = c.get("/progress", params={"jobId": "x" * 32}, headers=auth("admin"))
        cancel = c.delete("/jobs/" + "x" * 32, headers=auth("admin"))
        found = search(c, auth("admin"))
    for response in (seed, progress, cancel):
        assert response.status_code == 503, response.text
        assert "Redis is not answering" in response.json()["detail"]
    assert found.status_code == 200 and found.headers["X-Cache"] == "BYPASS"


# ------------------------------------------------------------------ 9. dead workers
@pytest.mark.heavy
def test_a_killed_work_horse_is_reported_failed(client, writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    headers = auth("admin")
    engine = get_engine("parquet", writable)
    version = engine.version("healthcare")
    job_id = client.post(
        "/seed",
        json={"dataset": "healthcare", "size": "medium", "format": "parquet"},
        headers=headers,
    ).json()["jobId"]
    with worker(writable, redis_server.url) as proc:
        poll_until(client, job_id, headers, {"running"}, timeout_s=60)
        horses = psutil.Process(proc.pid).children()
        assert horses, "RQ forks a work horse per job"
        for horse in horses:
            os.kill(horse.pid, signal.SIGKILL)
        final = poll_until(client, job_id, headers, {"failed", "completed"}, timeout_s=30)[-1]
    assert final["status"] == "failed", final
    assert "worker" in final["error"]
    assert engine.version("healthcare") == version
    assert engine.count(get_dataset("healthcare"), TRUE) == 1000


@pytest.mark.heavy
def test_a_job_whose_worker_vanished_fails_within_the_stale_limit(
    writable: Settings, redis_server, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GOVLAB_JOB_STALE_S", "3")
    headers = auth("admin")
    with make_client(writable, redis_server.url) as c:
        job_id = c.post(
            "/seed",
            json={"dataset": "healthcare", "size": "medium", "format": "delta"},
            headers=headers,
        ).json()["jobId"]
        with worker(writable, redis_server.url) as proc:
            poll_until(c, job_id, headers, {"running"}, timeout_s=60)
            horses = psutil.Process(proc.pid).children()
            os.kill(proc.pid, signal.SIGKILL)  # the worker first: nobody tells RQ
            for horse in horses:
                os.kill(horse.pid, signal.SIGKILL)
        # the whole worker (and its horse) is gone: nothing will ever write this record
        started = time.monotonic()
        final = poll_until(c, job_id, headers, {"failed", "completed"}, timeout_s=30)[-1]
    assert final["status"] == "failed" and time.monotonic() - started < 20
    assert "no sign of life" in final["error"] or "worker" in final["error"]


# ------------------------------------------------------------------ 10. server logs
@pytest.mark.heavy
def test_server_log_has_no_query_strings_and_no_tracebacks(
    seeded: Settings, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "GOVLAB_SECRET": TEST_SECRET, "REDIS_URL": ""}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "govlab.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "0",
                "--access-log",
                "--data-dir",
                str(seeded.data_dir),
            ],
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base)
            secret_q = "Zyxwvutsrq"
            admin = auth("admin")
            calls = [
                ("GET", "/search", {"dataset": "healthcare", "q": secret_q}, admin),
                (
                    "GET",
                    "/search",
                    {"dataset": "healthcare", "q": secret_q},
                    {"Authorization": "Bearer x"},
                ),
                ("GET", "/search", {"dataset": "nope", "q": secret_q}, admin),
                (
                    "GET",
                    "/search",
                    {"dataset": "healthcare", "sort": "ssn"},
                    auth("analyst", ATTRS_NE),
                ),
                ("GET", "/progress", {"jobId": "missing-" + secret_q}, admin),
                ("GET", "/search", {"dataset": "healthcare"}, auth("clinician")),
            ]
            statuses = [
                httpx.request(m, base + p, params=q, headers=h, timeout=30).status_code
                for m, p, q, h in calls
            ]
            assert statuses == [200, 401, 422, 422, 404, 403]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text = log_path.read_text()
    assert "GET /search HTTP/1.1" in text  # the access log is on, path only
    assert secret_q not in text and "?" not in re.sub(r"[^\n]*WARNING[^\n]*", "", text)
    assert "Traceback" not in text


# ------------------------------------------------------------------ 11. one name for the URL
def test_one_name_for_the_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from govlab.lab.client import GovlabClient

    monkeypatch.setenv("GOVLAB_API_URL", "http://127.0.0.1:9")
    assert GovlabClient().base_url == "http://127.0.0.1:9"
    used = subprocess.run(
        ["git", "grep", "-l", "GOVLAB_URL\\b", "--", "govlab", "docker", "examples", "README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    assert used == ""


def test_access_log_filter_strips_the_query() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/search?q=Jane+Doe&dataset=healthcare", "1.1", 200),
        None,
    )
    assert api.PathOnlyAccessLog().filter(record)
    assert record.getMessage() == '127.0.0.1:1 - "GET /search HTTP/1.1" 200'
