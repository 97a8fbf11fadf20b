"""The policy store: revisions on disk, atomic writes, edits only through a grant."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from govlab.config import Settings
from govlab.errors import AccessDenied, BadRequest, PolicyError
from govlab.policy import (
    Principal,
    compile_access,
    load_policy,
)
from govlab.policy.access import AccessControl, Action, Grant
from govlab.policy.ast import (
    Cmp,
)
from govlab.policy.store import PolicyStore
from tests.policy_helpers import (
    GOVERNANCE,
    HEALTHCARE,
    HEALTHCARE_TEXT,
)

# ============================================================================ PolicyStore

EDIT_V1 = HEALTHCARE_TEXT.replace("'NE', 'SE', 'MW'", "'NE'")
EDIT_V2 = HEALTHCARE_TEXT.replace("'NE', 'SE', 'MW'", "'SE'")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PolicyStore:
    monkeypatch.delenv("GOVLAB_GOVERNANCE_DIR", raising=False)
    return PolicyStore(Settings(data_dir=tmp_path))


def edit(store: PolicyStore, dataset: str = "healthcare") -> Grant:
    """An editor's grant: the only key that opens ``PolicyStore.put``."""
    return AccessControl(store).authorize(Principal("admin"), Action.EDIT_POLICY, dataset)


def test_store_put_needs_an_edit_grant_for_that_dataset(store: PolicyStore) -> None:
    access = AccessControl(store)
    with pytest.raises(AccessDenied, match="grant is for search"):
        store.put(access.authorize(Principal("admin"), Action.SEARCH, "healthcare"), EDIT_V1)
    with pytest.raises(AccessDenied, match="not defined in the healthcare policy"):
        access.authorize(Principal("data_steward_typo"), Action.EDIT_POLICY, "healthcare")
    with pytest.raises(AccessDenied, match="needs can_edit_policies"):
        access.authorize(Principal("clinician", {"id": "C007"}), Action.EDIT_POLICY, "healthcare")
    with pytest.raises(TypeError, match="authorize only"):
        Grant(Principal("admin"), Action.EDIT_POLICY, "healthcare", store.current("healthcare"),
              store.current("healthcare").policy.roles[0])  # fmt: skip
    assert store.revisions("healthcare") == []


def policy_files(tmp_path: Path) -> list[str]:
    folder = tmp_path / "policies" / "healthcare"
    return sorted(p.name for p in folder.glob("*.yaml")) if folder.exists() else []


def test_store_falls_back_to_the_shipped_policy(store: PolicyStore, tmp_path: Path) -> None:
    current = store.current("healthcare")
    assert current.text == HEALTHCARE_TEXT
    assert current.version == load_policy(GOVERNANCE / "healthcare.yaml").version
    assert store.revisions("healthcare") == []
    assert store.current("financial").policy.dataset == "financial"


def test_store_put_creates_numbered_revisions(store: PolicyStore, tmp_path: Path) -> None:
    number, loaded = store.put(edit(store), EDIT_V1)
    assert number == 1
    assert loaded.text == EDIT_V1
    assert store.current("healthcare").version == loaded.version
    number, loaded2 = store.put(edit(store), EDIT_V2)
    assert number == 2
    current = store.current("healthcare")
    assert current.text == EDIT_V2
    assert current.version == loaded2.version != loaded.version
    assert [r.number for r in store.revisions("healthcare")] == [1, 2]
    assert policy_files(tmp_path) == ["v1.yaml", "v2.yaml"]
    assert (tmp_path / "policies" / "healthcare" / "v1.yaml").read_text() == EDIT_V1
    plan = compile_access(current, HEALTHCARE, Principal("business_user"))
    assert plan.row_filter == Cmp("region", "==", "SE", pa.string())


@pytest.mark.parametrize(
    "bad",
    [
        HEALTHCARE_TEXT.replace("region in ['NE', 'SE', 'MW']", "regoin == 'NE'"),
        HEALTHCARE_TEXT.replace("column_masks: {ssn: tokenize}", "colum_masks: {ssn: tokenize}"),
        HEALTHCARE_TEXT.replace("dataset: healthcare", "dataset: financial"),
        "dataset: healthcare\nroles: [\n",
        '!!python/object/apply:os.system ["echo hi"]\n',
    ],
)
def test_store_invalid_put_changes_nothing(bad: str, store: PolicyStore, tmp_path: Path) -> None:
    assert bad != HEALTHCARE_TEXT
    store.put(edit(store), EDIT_V1)
    before = store.current("healthcare").version
    with pytest.raises(PolicyError):
        store.put(edit(store), bad)
    assert store.current("healthcare").version == before
    assert policy_files(tmp_path) == ["v1.yaml"]
    leftovers = [p.name for p in (tmp_path / "policies" / "healthcare").iterdir()]
    assert not [n for n in leftovers if n.startswith(".tmp-")]


def test_store_invalid_first_put_creates_no_revision(store: PolicyStore, tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        store.put(edit(store), "dataset: healthcare\nroles: []\n")
    assert policy_files(tmp_path) == []
    assert store.current("healthcare").text == HEALTHCARE_TEXT


@pytest.mark.parametrize("dataset", ["nope", "../healthcare", "", "Healthcare"])
def test_store_unknown_dataset_is_a_bad_request(dataset: str, store: PolicyStore) -> None:
    with pytest.raises(BadRequest, match="unknown dataset"):
        store.current(dataset)
    with pytest.raises(BadRequest):
        store.revisions(dataset)
    with pytest.raises(BadRequest):
        edit(store, dataset)
