"""The cache-hit path (issue 11): hits answered before FastAPI, by the route's own
functions, and never staler than the route: policy edits, reseeds, expired tokens and
parameters FastAPI must validate all reach the app. Also the pieces it stands on: the
stat-validated memos, remembered tokens and grants, and the buffered audit writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis

from govlab import freshness
from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.keys import derive_keys
from govlab.policy import Principal
from govlab.policy.access import Action, authorize
from govlab.policy.store import PolicyStore
from govlab.seeding import seed_table
from govlab.service import api, identity
from govlab.service.audit import AuditLog, stream_of
from govlab.service.hit_path import plain_params
from govlab.service.identity import InvalidToken, TokenVerifier, mint_token
from govlab.service.redis_server import free_port
from tests.api_helpers import ATTRS_NE, auth, make_client, token, wait_healthy
from tests.conftest import TEST_SECRET

SEARCH = {"dataset": "healthcare", "format": "delta", "q": "a", "pageSize": 10}


@pytest.fixture
def client(writable: Settings, redis_server):  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        yield c


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file looks older than the racy window, so the memos trust their stats."""
    real = time.time
    monkeypatch.setattr(freshness, "now", lambda: real() + 3600)


def _route_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the route's page lookup fail: a 200 can then only come from the hit path."""

    async def refuse(*_: Any) -> Any:
        raise AssertionError("the route ran")

    monkeypatch.setattr(api, "_cached_page", refuse)


def _without_took(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "tookMs"}


# ------------------------------------------------------------------ the path itself
def test_a_hit_skips_the_app_and_answers_as_the_route_does(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    headers = auth("analyst", ATTRS_NE)
    assert client.get("/search", params=SEARCH, headers=headers).headers["X-Cache"] == "MISS"
    by_route = client.get("/search", params=SEARCH, headers={**headers, "Origin": "http://x"})
    assert by_route.headers["X-Cache"] == "HIT"  # an Origin sends it through the app
    _route_forbidden(monkeypatch)
    fast = client.get("/search", params=SEARCH, headers=headers)
    assert fast.status_code == 200 and fast.headers["X-Cache"] == "HIT"
    assert fast.headers["content-type"] == "application/json"
    assert _without_took(fast.json()) == _without_took(by_route.json())
    assert (
        client.get("/search", params=SEARCH, headers={**headers, "Origin": "x"}).status_code == 500
    )


@pytest.mark.parametrize(
    "query",
    [
        b"dataset=healthcare&page=0",
        b"dataset=healthcare&page=01",
        b"dataset=healthcare&page=1000001",
        b"dataset=healthcare&pageSize=201",
        b"dataset=healthcare&pageSize=-1",
        b"dataset=healthcare&exactTotal=maybe",
        b"dataset=healthcare&exactTotal=True",
        b"dataset=healthcare&page=1&page=2",
        b"dataset=healthcare&dataset=finance",
        b"dataset=nope",
        b"format=delta",
        b"dataset=healthcare&format=orc",
        b"dataset=healthcare&q=" + b"x" * 201,
        b"dataset=healthcare&sort=" + b"s" * 81,
    ],
)
def test_parameters_fastapi_must_judge_are_left_to_it(query: bytes) -> None:
    assert plain_params(query) is None


def test_plain_parameters_are_read_as_the_route_reads_them() -> None:
    params = plain_params(b"dataset=healthcare&q=J%C3%BCrgen+x&page=3&pageSize=7&exactTotal=1&x=1")
    assert params is not None
    assert (params.dataset, params.format, params.q, params.page) == (
        "healthcare",
        "delta",
        "Jürgen x",
        3,
    )
    assert (params.page_size, params.sort, params.exact_total) == (7, None, True)


@pytest.mark.parametrize(
    "params, status",
    [
        ({**SEARCH, "page": "0"}, 422),
        ({**SEARCH, "pageSize": "500"}, 422),
        ({**SEARCH, "exactTotal": "maybe"}, 422),
        ({**SEARCH, "dataset": "nope"}, 422),
        ({**SEARCH, "sort": "ssn"}, 422),  # a masked column: refused by the search layer
    ],
)
def test_bad_requests_get_the_routes_answer(client, params, status) -> None:  # type: ignore[no-untyped-def]
    headers = auth("analyst", ATTRS_NE)
    client.get("/search", params=SEARCH, headers=headers)
    response = client.get("/search", params=params, headers=headers)
    assert response.status_code == status and "detail" in response.json()


def test_a_hit_is_audited_like_a_route_hit(client, writable) -> None:  # type: ignore[no-untyped-def]
    headers = auth("analyst", ATTRS_NE)
    for extra in ({}, {}, {"Origin": "http://x"}):
        client.get("/search", params=SEARCH, headers={**headers, **extra})
    client.app.state.services.audit.flush()
    path = writable.data_dir / "audit" / "audit.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()][-3:]
    assert [r["cache"] for r in records] == ["miss", "hit", "hit"]
    fast, routed = records[1], records[2]
    drop = {"time", "cache"}
    assert {k: v for k, v in fast.items() if k not in drop} == {
        k: v for k, v in routed.items() if k not in drop
    }
    assert fast["qFingerprint"] and "q" not in fast and fast["filter"]


# ------------------------------------------------------------------ never staler than the route
def test_a_remembered_request_sees_the_shipped_policy_edited_in_place(
    writable, redis_server, settled, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    governance = tmp_path / "governance"
    governance.mkdir()
    shipped = Path(PolicyStore(writable).governance_dir) / "healthcare.yaml"
    (governance / "healthcare.yaml").write_text(shipped.read_text())
    monkeypatch.setenv("GOVLAB_GOVERNANCE_DIR", str(governance))
    with make_client(writable, redis_server.url) as c:
        headers = auth("analyst", ATTRS_NE)
        c.get("/search", params=SEARCH, headers=headers)
        assert c.get("/search", params=SEARCH, headers=headers).headers["X-Cache"] == "HIT"
        text = (governance / "healthcare.yaml").read_text()
        time.sleep(0.02)  # past the file-system clock's tick
        with (governance / "healthcare.yaml").open("w") as fh:  # in place: same inode
            fh.write(
                text.replace("{ssn: hash, name: initials,", "{ssn: redact_full, name: initials,")
            )
        after = c.get("/search", params=SEARCH, headers=headers)
        assert after.headers["X-Cache"] == "MISS"
        assert {r["ssn"] for r in after.json()["items"]} == {"*****"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_remembered_request_sees_a_reseed(client, writable, settled, fmt) -> None:  # type: ignore[no-untyped-def]
    params = {**SEARCH, "format": fmt}
    headers = auth("admin")
    first = client.get("/search", params=params, headers=headers).json()
    assert client.get("/search", params=params, headers=headers).headers["X-Cache"] == "HIT"
    time.sleep(0.02)
    seed_table("healthcare", "tiny", fmt, writable, seed=7)
    after = client.get("/search", params=params, headers=headers)
    assert after.headers["X-Cache"] == "MISS"
    assert after.json()["tableVersion"] != first["tableVersion"]
    assert after.json()["items"] != first["items"]


def _expiry(token: str) -> float:
    """The token's ``exp`` claim, read without checking it (the test moves the clock)."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def test_a_remembered_token_is_refused_once_it_expires(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The remembered token's clock is moved past its expiry rather than slept past: a
    one-second token could expire between the two first requests on a loaded machine."""
    tok = token("analyst", ATTRS_NE, ttl_s=600)
    headers = {"Authorization": f"Bearer {tok}"}
    statuses = [client.get("/search", params=SEARCH, headers=headers) for _ in range(2)]
    assert [r.headers.get("X-Cache") for r in statuses] == ["MISS", "HIT"]
    expires = _expiry(tok)
    monkeypatch.setattr(identity, "now", lambda: expires)
    response = client.get("/search", params=SEARCH, headers=headers)
    assert response.status_code == 401 and response.json()["detail"] == "token expired"


def test_fresh_and_remembered_tokens_expire_on_one_clock(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tok = mint_token(TEST_SECRET.encode(), "analyst", ATTRS_NE, "u", 600)
    expires = _expiry(tok)
    remembering = TokenVerifier(TEST_SECRET.encode())
    assert remembering.verify(tok).role == "analyst"
    monkeypatch.setattr(identity, "now", lambda: expires - 0.5)
    assert remembering.verify(tok).role == "analyst"
    assert identity.verify_token(TEST_SECRET.encode(), tok).role == "analyst"
    monkeypatch.setattr(identity, "now", lambda: expires)
    for verify in (remembering.verify, TokenVerifier(TEST_SECRET.encode()).verify):
        with pytest.raises(InvalidToken, match="token expired"):
            verify(tok)


def test_a_forged_token_is_never_remembered() -> None:
    verifier = TokenVerifier(TEST_SECRET.encode())
    good = mint_token(TEST_SECRET.encode(), "analyst", ATTRS_NE, "u", 600)
    forged = good[:-2] + ("AA" if good[-2:] != "AA" else "BB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
    assert verifier.verify(good) is verifier.verify(good)
    assert list(verifier._known) == [good]


# ------------------------------------------------------------------ the memos
def test_a_file_memo_recomputes_while_files_are_fresh_and_after_any_change(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_text("one")
    memo: freshness.FileMemo[str, str] = freshness.FileMemo()
    reads: list[str] = []

    def read() -> str:
        reads.append(path.read_text())
        return reads[-1]

    assert [memo.get("k", (path,), read) for _ in range(2)] == ["one", "one"]
    assert len(reads) == 2  # just written: not trusted yet
    real = time.time
    monkeypatch.setattr(freshness, "now", lambda: real() + 3600)
    assert [memo.get("k", (path,), read) for _ in range(3)] == ["one"] * 3
    assert len(reads) == 3  # settled: one more read, then the stat suffices
    path.write_text("two!")
    assert memo.get("k", (path,), read) == "two!"
    path.unlink()
    with pytest.raises(FileNotFoundError):
        memo.get("k", (path,), read)


def test_settled_needs_every_time_older_than_the_racy_window() -> None:
    now = time.time()
    old = int((now - 10) * 1e9)
    fresh = int((now - 0.5) * 1e9)
    assert freshness.settled(((1, 2, old, old), None), now)
    assert not freshness.settled(((1, 2, old, fresh),), now)
    assert not freshness.settled(((1, 2, fresh, old),), now)


def test_grants_are_reused_only_for_the_same_policy_principal_and_action(writable) -> None:  # type: ignore[no-untyped-def]
    store = PolicyStore(writable)
    policy = store.current("healthcare")
    ne = Principal("analyst", ATTRS_NE, "u")
    grant = authorize(policy, ne, Action.SEARCH, "healthcare")
    assert (
        authorize(policy, Principal("analyst", ATTRS_NE, "u"), Action.SEARCH, "healthcare") is grant
    )
    assert (
        authorize(policy, Principal("analyst", ATTRS_NE, "v"), Action.SEARCH, "healthcare")
        is not grant
    )
    assert authorize(policy, ne, Action.VALIDATE, "healthcare") is not grant
    sw = authorize(
        policy, Principal("analyst", {"allowed_regions": ["SW"]}, "u"), Action.SEARCH, "healthcare"
    )
    assert sw.bound_plan.filter_sql != grant.bound_plan.filter_sql
    same_text = type(policy)(policy.policy, policy.text)
    assert authorize(same_text, ne, Action.SEARCH, "healthcare").policy is same_text
    # 1 and true are different attribute values: never one remembered grant for both
    one = Principal("analyst", {**ATTRS_NE, "extra": 1}, "u")
    true = Principal("analyst", {**ATTRS_NE, "extra": True}, "u")
    assert authorize(policy, one, Action.SEARCH, "healthcare").principal.attrs["extra"] == 1
    assert authorize(policy, true, Action.SEARCH, "healthcare").principal.attrs["extra"] is True


# ------------------------------------------------------------------ the audit writer
def test_the_audit_writer_loses_nothing_on_a_clean_stop(tmp_path, redis_server) -> None:  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_server.url)
    dataset = f"hitpath-{uuid.uuid4().hex[:8]}"
    log = AuditLog(tmp_path / "audit.jsonl", client, derive_keys(TEST_SECRET.encode()))

    def burst(worker: int) -> None:
        for n in range(250):
            log.record("search", "ok", dataset=dataset, worker=worker, n=n)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert len(records) == 1000
    for w in range(4):  # each writer's records in the order it made them
        assert [r["n"] for r in records if r["worker"] == w] == list(range(250))
    assert client.xlen(stream_of(dataset)) == 1000
    log.record("search", "ok", dataset=dataset, worker=9, n=0)  # still usable after close
    assert log.recent(dataset, 1)[0]["worker"] == 9


def test_a_served_api_keeps_every_audit_record_through_sigterm(writable) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "GOVLAB_SECRET": TEST_SECRET, "REDIS_URL": ""}
    cmd = [sys.executable, "-m", "govlab.cli", "serve", "--port", str(port), "--workers", "0"]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(writable.data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sub = f"stop-{uuid.uuid4().hex[:8]}"
    tok = mint_token(TEST_SECRET.encode(), "analyst", ATTRS_NE, sub, 600)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        with httpx.Client(timeout=30) as http:
            statuses = [
                http.get(
                    f"{base}/search", params=SEARCH, headers={"Authorization": f"Bearer {tok}"}
                ).headers.get("X-Cache")
                for _ in range(40)
            ]
        assert statuses[0] == "MISS" and set(statuses[1:]) == {"HIT"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    path = writable.data_dir / "audit" / "audit.jsonl"
    mine = [json.loads(line) for line in path.read_text().splitlines() if sub in line]
    assert len(mine) == 40 and [r["cache"] for r in mine].count("hit") == 39
