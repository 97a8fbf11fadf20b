"""The classroom's routes (govlab.service.lab_api) on a real Redis: table size for
operators, the policy what-if for editors, reset to the shipped policy, the shipped text.
Every refusal is the one authorization layer's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from govlab.config import DEFAULT_GOVERNANCE_DIR, Settings
from govlab.service.redis_server import EmbeddedRedis
from tests.api_helpers import ATTRS_NE, auth, make_client

SHIPPED = (DEFAULT_GOVERNANCE_DIR / "healthcare.yaml").read_text(encoding="utf-8")
LAB_ATTRS = {"clinician": {"id": "C007"}, "analyst": {"allowed_regions": ["NE", "SW"]}}


@pytest.fixture
def client(writable: Settings, redis_server: EmbeddedRedis) -> Iterator[TestClient]:
    with make_client(writable, redis_server.url) as c:
        yield c


def _edited(text: str, role: str, **changes: Any) -> str:
    document = yaml.safe_load(text)
    entry = next(r for r in document["roles"] if r["id"] == role)
    entry.update(changes)
    return yaml.safe_dump(document, sort_keys=False)


def _rows(client: TestClient, role: str, attrs: dict[str, Any] | None = None) -> int:
    params = {"dataset": "healthcare", "format": "delta"}
    return client.get("/validate", params=params, headers=auth(role, attrs)).json()["rowsVisible"]


# ---------------------------------------------------------------------- /tables
def test_table_info_for_operators_only(client: TestClient) -> None:
    ok = client.get("/tables/healthcare", params={"format": "iceberg"}, headers=auth("admin"))
    assert ok.status_code == 200
    body = ok.json()
    assert body == {
        "dataset": "healthcare",
        "format": "iceberg",
        "rows": 1000,
        "tableVersion": body["tableVersion"],
        "size": "tiny",
    }
    assert isinstance(body["tableVersion"], int)
    denied = client.get("/tables/healthcare", headers=auth("analyst", ATTRS_NE))
    assert denied.status_code == 403 and "can_seed" in denied.json()["detail"]
    assert client.get("/tables/healthcare").status_code == 401


def test_table_info_404_without_a_table(tmp_path: Any, redis_server: EmbeddedRedis) -> None:
    with make_client(Settings(data_dir=tmp_path), redis_server.url) as c:
        missing = c.get("/tables/financial", headers=auth("admin"))
    assert missing.status_code == 404


# ---------------------------------------------------------------------- what-if
def test_whatif_counts_rows_per_role_against_the_saved_policy(client: TestClient) -> None:
    draft = _edited(
        SHIPPED,
        "business_user",
        row_filter="region in ['NE', 'SE', 'MW', 'W']",
        column_masks={"ssn": "null", "dob": "year_only", "insurance_id": "null"},
    )
    body = {"yaml": draft, "format": "delta", "attrs": LAB_ATTRS}
    before_policy = client.get("/policies/healthcare", headers=auth("admin")).json()
    answer = client.post("/policies/healthcare/whatif", json=body, headers=auth("data_modeler"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    roles = {r["role"]: r for r in result["roles"]}
    assert list(roles) == ["admin", "data_modeler", "clinician", "analyst", "business_user"]
    business = roles["business_user"]
    # the saved side is what /validate answers business_user today; the draft sees more
    assert business["saved"]["rows"] == _rows(client, "business_user")
    assert business["draft"]["rows"] > business["saved"]["rows"]
    assert "'W'" in business["draft"]["filter"]
    assert set(business["saved"]["masks"]) - set(business["draft"]["masks"]) == {
        "name",
        "address",
        "notes",
    }
    clinician = roles["clinician"]
    assert clinician["saved"] == clinician["draft"]
    assert clinician["saved"]["rows"] == _rows(client, "clinician", LAB_ATTRS["clinician"])
    assert result["savedVersion"] == before_policy["policyVersion"]
    assert result["draftVersion"] != result["savedVersion"]
    # nothing was stored, and no row value is in the answer
    assert client.get("/policies/healthcare", headers=auth("admin")).json() == before_policy
    assert "items" not in answer.text and "preview" not in answer.text


def test_whatif_reports_roles_that_cannot_bind(client: TestClient) -> None:
    body = {"yaml": SHIPPED, "attrs": {}}  # the clinician's filter needs ${user.id}
    result = client.post("/policies/healthcare/whatif", json=body, headers=auth("admin")).json()
    clinician = next(r for r in result["roles"] if r["role"] == "clinician")
    assert "id" in clinician["draft"]["error"] and "rows" not in clinician["draft"]


def test_whatif_needs_an_editor_and_a_valid_draft(client: TestClient) -> None:
    body = {"yaml": SHIPPED, "attrs": LAB_ATTRS}
    denied = client.post("/policies/healthcare/whatif", json=body, headers=auth("clinician", {}))
    assert denied.status_code == 403 and "can_edit_policies" in denied.json()["detail"]
    broken = {"yaml": SHIPPED.replace("ssn: tokenize", "ssn: scramble")}
    bad = client.post("/policies/healthcare/whatif", json=broken, headers=auth("admin"))
    assert bad.status_code == 422 and "scramble" in bad.text


def test_whatif_without_a_table_still_compares_filters_and_masks(
    tmp_path: Any, redis_server: EmbeddedRedis
) -> None:
    with make_client(Settings(data_dir=tmp_path), redis_server.url) as c:
        body = {"yaml": SHIPPED, "attrs": LAB_ATTRS}
        result = c.post("/policies/healthcare/whatif", json=body, headers=auth("admin")).json()
    assert result["tableVersion"] is None
    admin = next(r for r in result["roles"] if r["role"] == "admin")
    assert admin["draft"]["rows"] is None and admin["draft"]["filter"] == "TRUE"


# ---------------------------------------------------------------------- reset
def test_reset_restores_the_shipped_policy_as_a_new_revision(client: TestClient) -> None:
    edited = _edited(SHIPPED, "analyst", column_masks={"ssn": "redact_full"})
    put = client.put(
        "/policies/healthcare",
        content=edited,
        headers={**auth("admin"), "Content-Type": "application/yaml"},
    )
    assert put.status_code == 200
    shipped = client.get("/policies/healthcare/shipped", headers=auth("analyst", ATTRS_NE))
    assert shipped.status_code == 200
    assert shipped.json() == {"dataset": "healthcare", "yaml": SHIPPED, "live": False}

    refused = client.post("/policies/healthcare/reset", headers=auth("analyst", ATTRS_NE))
    assert refused.status_code == 403
    reset = client.post("/policies/healthcare/reset", headers=auth("data_modeler"))
    assert reset.status_code == 200
    assert reset.json()["revision"] == put.json()["revision"] + 1
    live = client.get("/policies/healthcare", headers=auth("admin")).json()
    assert live["yaml"] == SHIPPED and live["policyVersion"] == reset.json()["policyVersion"]
    assert client.get("/policies/healthcare/shipped", headers=auth("admin")).json()["live"]
    audit = client.get("/audit", params={"dataset": "healthcare"}, headers=auth("admin")).json()
    assert any(e.get("via") == "reset" for e in audit["entries"])
