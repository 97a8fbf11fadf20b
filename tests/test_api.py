"""The HTTP API on a real Redis: cache keying and isolation, identity, policies,
bad input, degradation, audit. Seeding jobs are in test_jobs.py."""

from __future__ import annotations

import json
import time

import pytest
import redis

from govlab import freshness
from govlab.config import Settings
from govlab.seeding import seed_table
from govlab.service.redis_server import start_embedded
from tests.api_helpers import ATTRS_NE, ATTRS_SW, auth, make_client, token

SEARCH = {"dataset": "healthcare", "format": "delta", "q": "", "pageSize": 50}


@pytest.fixture
def client(writable: Settings, redis_server):  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url) as c:
        yield c


def test_search_misses_then_hits_with_the_same_page(client) -> None:  # type: ignore[no-untyped-def]
    headers = auth("analyst", ATTRS_NE)
    first = client.get("/search", params=SEARCH, headers=headers)
    second = client.get("/search", params=SEARCH, headers=headers)
    assert first.status_code == second.status_code == 200
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert (
        first.json()["strategy"]["cache"] == "miss" and second.json()["strategy"]["cache"] == "hit"
    )
    assert first.json()["items"] == second.json()["items"]
    assert first.json()["strategy"]["engine"] == "delta"


def test_a_lower_bound_total_is_flagged_and_exact_total_is_a_separate_page(
    grouped, redis_server
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=grouped, count_limit=5)
    params = {**SEARCH, "q": "e", "pageSize": 10}
    with make_client(settings, redis_server.url) as c:
        headers = auth("admin")
        bound = c.get("/search", params=params, headers=headers)
        exact = c.get("/search", params={**params, "exactTotal": "true"}, headers=headers)
        again = c.get("/search", params={**params, "exactTotal": "true"}, headers=headers)
        assert bound.json()["totalExact"] is False and exact.json()["totalExact"] is True
        assert 10 <= bound.json()["total"] < exact.json()["total"]
        assert bound.json()["items"] == exact.json()["items"]
        # the exact count is not served from the lower-bound page's cache entry
        assert (bound.headers["X-Cache"], exact.headers["X-Cache"]) == ("MISS", "MISS")
        assert again.headers["X-Cache"] == "HIT" and again.json()["total"] == exact.json()["total"]


def test_principals_with_different_attributes_never_share_a_page(client) -> None:  # type: ignore[no-untyped-def]
    ne = client.get("/search", params=SEARCH, headers=auth("analyst", ATTRS_NE)).json()
    sw = client.get("/search", params=SEARCH, headers=auth("analyst", ATTRS_SW))
    assert sw.headers["X-Cache"] == "MISS"
    assert {r["region"] for r in ne["items"]} == {"NE"}
    assert {r["region"] for r in sw.json()["items"]} == {"SW"}


def test_admin_and_restricted_users_never_receive_each_others_pages(client) -> None:  # type: ignore[no-untyped-def]
    clinician = auth("clinician", {"id": "C007"})
    for _ in range(2):
        restricted = client.get("/search", params=SEARCH, headers=clinician).json()
        admin = client.get("/search", params=SEARCH, headers=auth("admin")).json()
        assert {r["clinician_id"] for r in restricted["items"]} == {"C007"}
        assert admin["total"] == 1000 and restricted["total"] < 100
        assert all(r["ssn"] == "*****" for r in restricted["items"])
        assert all(r["ssn"].startswith("tok_") for r in admin["items"])


def test_cache_holds_only_masked_pages(client, redis_server, raw_tables) -> None:  # type: ignore[no-untyped-def]
    client.get("/search", params=SEARCH, headers=auth("analyst", ATTRS_NE))
    r = redis.Redis.from_url(redis_server.url)
    cached = b"".join(r.get(k) or b"" for k in r.scan_iter("govlab:page:*")).decode()
    assert cached
    for ssn in raw_tables["healthcare"].column("ssn").to_pylist():
        assert ssn not in cached


@pytest.mark.parametrize("files_settled", [False, True])
def test_a_policy_edit_invalidates_cached_pages(  # type: ignore[no-untyped-def]
    client, writable, monkeypatch, files_settled
) -> None:
    if files_settled:  # the memos trust their stats: the edit must still be seen at once
        real = time.time
        monkeypatch.setattr(freshness, "now", lambda: real() + 3600)
    headers = auth("analyst", ATTRS_NE)
    client.get("/search", params=SEARCH, headers=headers)
    before = client.get("/search", params=SEARCH, headers=headers)
    assert before.headers["X-Cache"] == "HIT"
    text = client.get("/policies/healthcare", headers=auth("admin")).json()["yaml"]
    edited = text.replace(
        "column_masks: {ssn: hash, name: initials,",
        "column_masks: {ssn: redact_full, name: initials,",
    )
    assert edited != text
    put = client.put(
        "/policies/healthcare",
        content=edited,
        headers={**auth("admin"), "Content-Type": "application/yaml"},
    )
    assert put.status_code == 200, put.text
    after = client.get("/search", params=SEARCH, headers=headers)
    assert after.headers["X-Cache"] == "MISS"
    assert (
        after.json()["policyVersion"]
        == put.json()["policyVersion"]
        != before.json()["policyVersion"]
    )
    assert {r["ssn"] for r in after.json()["items"]} == {"*****"}


def test_a_reseed_invalidates_cached_pages(client, writable) -> None:  # type: ignore[no-untyped-def]
    headers = auth("admin")
    first = client.get("/search", params=SEARCH, headers=headers).json()
    seed_table("healthcare", "tiny", "delta", writable, seed=7)
    after = client.get("/search", params=SEARCH, headers=headers)
    assert after.headers["X-Cache"] == "MISS"
    assert after.json()["tableVersion"] == first["tableVersion"] + 1
    assert after.json()["items"] != first["items"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Basic YWRtaW46YWRtaW4=",
        f"Bearer {token('admin', secret='some-other-secret')}",
        "Bearer " + token("admin").rsplit(".", 1)[0] + ".forgedsignature",
    ],
)
def test_missing_or_forged_tokens_are_401(client, authorization) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/search", params=SEARCH, headers=headers)
    assert response.status_code == 401
    assert "items" not in response.json()


def test_an_expired_token_is_401(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from govlab.service import identity
    from tests.conftest import TEST_SECRET

    expired = identity.mint_token(TEST_SECRET.encode(), "admin", {}, "x", ttl_s=1)
    monkeypatch.setattr(identity, "now", lambda: time.time() + 1)
    response = client.get("/search", params=SEARCH, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["detail"] == "token expired"


def test_a_role_absent_from_the_policy_is_403(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/search", params=SEARCH, headers=auth("superuser"))
    assert response.status_code == 403
    assert "not defined" in response.json()["detail"]


def test_spoofed_headers_are_ignored_without_demo_auth(client) -> None:  # type: ignore[no-untyped-def]
    spoof = {"X-User-Role": "admin", "X-User-Context": "{}"}
    assert client.get("/search", params=SEARCH, headers=spoof).status_code == 401
    analyst = client.get("/search", params=SEARCH, headers={**spoof, **auth("analyst", ATTRS_NE)})
    assert {r["region"] for r in analyst.json()["items"]} == {"NE"}  # the token wins
    assert client.get("/health").json()["demoAuth"] is False


def test_demo_auth_accepts_headers_and_says_so(writable, redis_server) -> None:  # type: ignore[no-untyped-def]
    with make_client(writable, redis_server.url, demo_auth=True) as demo:
        headers = {"X-User-Role": "analyst", "X-User-Context": json.dumps(ATTRS_SW)}
        response = demo.get("/search", params=SEARCH, headers=headers)
        assert response.status_code == 200
        assert {r["region"] for r in response.json()["items"]} == {"SW"}
        assert demo.get("/health").json()["demoAuth"] is True


def test_a_non_editor_cannot_put_a_policy(client) -> None:  # type: ignore[no-untyped-def]
    before = client.get("/policies/healthcare", headers=auth("analyst", ATTRS_NE)).json()
    response = client.put(
        "/policies/healthcare",
        content="version: 1\ndataset: healthcare\nroles: []\n",
        headers={**auth("analyst", ATTRS_NE), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 403
    after = client.get("/policies/healthcare", headers=auth("admin")).json()
    assert after["policyVersion"] == before["policyVersion"] and after["revision"] == 0


def test_an_invalid_policy_is_rejected_and_the_old_one_stays_live(client) -> None:  # type: ignore[no-untyped-def]
    live = client.get("/policies/healthcare", headers=auth("admin")).json()
    bad = live["yaml"].replace(
        'row_filter: "region in ${user.allowed_regions}"',
        'row_filter: "regoin in ${user.allowed_regions}"',
    )
    assert bad != live["yaml"]
    response = client.put(
        "/policies/healthcare",
        content=bad,
        headers={**auth("admin"), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 422
    assert any("unknown column 'regoin'" in r for r in response.json()["reasons"])
    assert (
        client.get("/policies/healthcare", headers=auth("admin")).json()["policyVersion"]
        == live["policyVersion"]
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dataset": "../../etc"}, "healthcare"),
        ({"dataset": "healthcare", "format": "csv"}, "delta"),
        ({"dataset": "healthcare", "page": 0}, "page"),
        ({"dataset": "healthcare", "pageSize": 0}, "pageSize"),
        ({"dataset": "healthcare", "pageSize": 201}, "pageSize"),
        ({"dataset": "healthcare", "q": "x" * 201}, "q"),
        ({"dataset": "healthcare", "sort": "ssn"}, "masked column 'ssn'"),
        ({"dataset": "healthcare", "sort": "nope"}, "unknown column"),
    ],
)
def test_bad_search_input_is_422_with_a_message(client, params, message) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/search", params=params, headers=auth("analyst", ATTRS_NE))
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert "Traceback" not in response.text


def test_redis_going_away_degrades_to_bypass(writable) -> None:  # type: ignore[no-untyped-def]
    server = start_embedded(writable.data_dir / "private-redis")
    with make_client(writable, server.url) as c:
        headers = auth("analyst", ATTRS_NE)
        assert c.get("/search", params=SEARCH, headers=headers).headers["X-Cache"] == "MISS"
        assert c.get("/health").json()["status"] == "ok"
        server.stop()
        response = c.get("/search", params=SEARCH, headers=headers)
        assert response.status_code == 200
        assert (
            response.headers["X-Cache"] == "BYPASS"
            and response.json()["strategy"]["cache"] == "bypass"
        )
        assert {r["region"] for r in response.json()["items"]} == {"NE"}
        health = c.get("/health").json()
        assert health["status"] == "degraded" and health["redis"] == "unreachable"


def test_validate_is_a_dry_run_for_the_callers_role(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(
        "/validate",
        params={"dataset": "healthcare", "format": "iceberg"},
        headers=auth("clinician", {"id": "C007"}),
    )
    body = response.json()
    assert response.status_code == 200
    assert body["rowFilter"] == "\"clinician_id\" = 'C007'"
    assert body["maskedColumns"]["ssn"] == "redact_full"
    assert all(r["clinician_id"] == "C007" and r["ssn"] == "*****" for r in body["preview"])


def test_detokenize_only_for_roles_that_may(client, raw_tables) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/search", params={**SEARCH, "pageSize": 3}, headers=auth("admin")).json()
    tokens = [r["ssn"] for r in page["items"]]
    body = {"dataset": "healthcare", "tokens": tokens}
    response = client.post("/detokenize", json=body, headers=auth("admin"))
    assert response.status_code == 200
    raw = {r["patient_id"]: r["ssn"] for r in raw_tables["healthcare"].to_pylist()}
    assert response.json()["values"] == [raw[r["patient_id"]] for r in page["items"]]
    assert client.post("/detokenize", json=body, headers=auth("data_modeler")).status_code == 403
    bogus = client.post(
        "/detokenize", json={"dataset": "healthcare", "tokens": ["tok_AAAA"]}, headers=auth("admin")
    )
    assert bogus.status_code == 422


def test_audit_records_searches_and_denials_for_editors_only(client, writable) -> None:  # type: ignore[no-untyped-def]
    client.get("/search", params={**SEARCH, "q": "asthma"}, headers=auth("analyst", ATTRS_NE))
    client.get("/search", params=SEARCH, headers=auth("intruder"))
    assert (
        client.get(
            "/audit", params={"dataset": "healthcare"}, headers=auth("analyst", ATTRS_NE)
        ).status_code
        == 403
    )
    entries = client.get("/audit", params={"dataset": "healthcare"}, headers=auth("admin")).json()[
        "entries"
    ]
    search = next(e for e in entries if e["event"] == "search")
    assert search["role"] == "analyst" and search["filter"] == "\"region\" = 'NE'"
    assert "ssn" in search["maskedFields"] and search["qLength"] == len("asthma")
    assert "q" not in search and "asthma" not in json.dumps(entries)  # fingerprinted
    assert any(e["event"] == "denial" for e in entries)
    lines = (writable.data_dir / "audit" / "audit.jsonl").read_text().splitlines()
    assert len(lines) >= 3 and all(json.loads(line)["time"] for line in lines)


def test_health_reports_versions(client) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["redis"] == "ok"
    assert set(body["versions"]) >= {"deltalake", "pyarrow", "pyiceberg"}


def test_a_cache_hit_is_served_as_the_stored_bytes(client, redis_server) -> None:  # type: ignore[no-untyped-def]
    """No decode/re-encode on a hit: the body is the stored page plus this request's
    ``strategy`` and ``tookMs``."""
    import redis

    headers = auth("analyst", ATTRS_NE)
    miss = client.get("/search", params=SEARCH, headers=headers)
    hit = client.get("/search", params=SEARCH, headers=headers)
    r = redis.Redis.from_url(redis_server.url)
    (key,) = r.keys("govlab:page:*")
    _, _, stored_body = r.get(key).partition(b"\n")
    assert hit.content.startswith(stored_body + b',"strategy":{"cache":"hit"')
    strip = ("strategy", "tookMs")
    assert {k: v for k, v in hit.json().items() if k not in strip} == {
        k: v for k, v in miss.json().items() if k not in strip
    }
    assert hit.json()["strategy"] == {**miss.json()["strategy"], "cache": "hit"}
    assert hit.headers["content-type"] == "application/json"
