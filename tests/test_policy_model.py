"""The policy YAML model and compile_access: roles, masks, permissions."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from govlab.errors import AccessDenied, PolicyError
from govlab.generators import get_dataset
from govlab.policy import (
    LoadedPolicy,
    Principal,
    compile_access,
    load_policy,
    parse_policy,
    validate_policy,
)
from govlab.policy.ast import (
    FALSE,
    TRUE,
    And,
    Cmp,
    In,
    Not,
    NotIn,
    NotNull,
)
from tests.policy_helpers import (
    GOVERNANCE,
    HEALTHCARE,
    HEALTHCARE_TEXT,
    check,
    role_yaml,
    walk,
)

# ============================================================================ policy model


@pytest.mark.parametrize("path", sorted(GOVERNANCE.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_policies_validate(path: Path) -> None:
    loaded = load_policy(path)
    assert loaded.policy.dataset == path.stem
    assert validate_policy(loaded, get_dataset(path.stem)) is loaded
    assert {"admin", "analyst", "business_user"} <= {r.id for r in loaded.policy.roles}


def test_shipped_policies_exist_for_every_dataset() -> None:
    assert {p.stem for p in GOVERNANCE.glob("*.yaml")} == {"healthcare", "ecommerce", "financial"}


def test_role_without_row_filter_is_rejected() -> None:
    with pytest.raises(PolicyError, match="row_filter") as exc:
        check(role_yaml("  - id: a\n    column_masks: {ssn: hash}\n"))
    assert any("row_filter" in r for r in exc.value.reasons)


@pytest.mark.parametrize(("yaml_value", "expected"), [("true", "true"), ("false", "false")])
def test_yaml_boolean_row_filter(yaml_value: str, expected: str) -> None:
    loaded = check(role_yaml(f"  - id: a\n    row_filter: {yaml_value}\n"))
    assert loaded.policy.roles[0].row_filter == expected
    plan = compile_access(loaded, HEALTHCARE, Principal("a"))
    assert plan.row_filter == (TRUE if yaml_value == "true" else FALSE)


@pytest.mark.parametrize("value", ["null", "5", "[a]"])
def test_row_filter_must_be_text(value: str) -> None:
    with pytest.raises(PolicyError, match="row_filter"):
        check(role_yaml(f"  - id: a\n    row_filter: {value}\n"))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (role_yaml("  - id: a\n    row_filter: 'true'\n    colum_masks: {ssn: hash}\n"),
         "colum_masks"),
        (role_yaml("  - id: a\n    row_filter: 'true'\n    rowfilter: 'x'\n"), "rowfilter"),
        (role_yaml("  - id: a\n    row_filter: 'true'\n") + "owner: me\n", "owner"),
        ("dataset: healthcare\nrole:\n  - id: a\n    row_filter: 'true'\n", "role"),
        (role_yaml(""), "roles"),
        ("dataset: healthcare\nroles: []\n", "roles"),
        (role_yaml("  - id: 'a b'\n    row_filter: 'true'\n"), "id"),
        (role_yaml("  - row_filter: 'true'\n"), "id"),
        ("roles:\n  - id: a\n    row_filter: 'true'\n", "dataset"),
    ],
)  # fmt: skip
def test_unknown_or_missing_keys_are_rejected(text: str, pattern: str) -> None:
    with pytest.raises(PolicyError, match=pattern):
        check(text)


def test_duplicate_role_id_is_rejected() -> None:
    body = "  - id: a\n    row_filter: 'true'\n  - id: b\n    row_filter: 'true'\n"
    with pytest.raises(PolicyError, match=r"'a'.*twice"):
        check(role_yaml(body + "  - id: a\n    row_filter: 'false'\n"))


def test_mask_forms() -> None:
    loaded = check(
        role_yaml(
            "  - id: a\n    row_filter: 'true'\n    column_masks:\n"
            "      ssn: hash\n      name: {type: redact_part, keep: 2}\n      notes: null\n"
            "      insurance_id: {type: redact_part}\n"
        )
    )
    masks = loaded.policy.roles[0].column_masks
    assert {c: (m.type, m.params) for c, m in masks.items()} == {
        "ssn": ("hash", {}),
        "name": ("redact_part", {"keep": 2}),
        "notes": ("null", {}),
        "insurance_id": ("redact_part", {}),
    }
    assert masks["name"].describe() == "redact_part(keep=2)"
    assert masks["ssn"].describe() == "hash"


def test_null_column_masks_means_none() -> None:
    loaded = check(role_yaml("  - id: a\n    row_filter: 'true'\n    column_masks: null\n"))
    assert loaded.policy.roles[0].column_masks == {}


@pytest.mark.parametrize(
    ("masks", "pattern"),
    [
        ("{ssn: scramble}", "unknown mask 'scramble'"),
        ("{ssn: {keep: 2}}", "type"),
        ("{nope: hash}", "unknown column 'nope'"),
        ("{name: year_only}", "'name'.*year_only"),
        ("{dob: initials}", "'dob'.*initials"),
        ("{patient_id: hash}", "primary key 'patient_id'"),
        ("{ssn: {type: hash, keep: 2}}", "no parameter 'keep'"),
        ("{ssn: {type: redact_part, keep: -1}}", "keep"),
        ("{ssn: {type: redact_part, keep: true}}", "keep"),
        ("{ssn: {type: redact_part, keep: '2'}}", "keep"),
    ],
)
def test_bad_masks_are_rejected(masks: str, pattern: str) -> None:
    with pytest.raises(PolicyError, match=pattern):
        check(role_yaml(f"  - id: a\n    row_filter: 'true'\n    column_masks: {masks}\n"))


def test_policy_for_another_dataset_is_rejected() -> None:
    text = (GOVERNANCE / "ecommerce.yaml").read_text(encoding="utf-8")
    with pytest.raises(PolicyError, match=r"'ecommerce'.*'healthcare'"):
        check(text, "healthcare")


@pytest.mark.parametrize(
    "text",
    [
        "dataset: healthcare\nroles: [\n",
        "dataset: [healthcare\n",
        "\tdataset: healthcare\n",
        "- just\n- a list\n",
        "just a string",
        "",
        "42",
    ],
)
def test_invalid_yaml_is_rejected(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)


@pytest.mark.parametrize(
    "tagged",
    [
        '!!python/object/apply:os.system ["echo hi > {marker}"]',
        'dataset: !!python/object/apply:os.system ["echo hi > {marker}"]\nroles: []',
        "roles:\n  - !!python/object/new:os.system\n    args: ['echo hi > {marker}']\n",
    ],
)
def test_yaml_python_tags_are_rejected_not_executed(tagged: str, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    with pytest.raises(PolicyError, match="YAML"):
        parse_policy(tagged.format(marker=marker))
    assert not marker.exists()


def test_oversized_policy_is_rejected() -> None:
    with pytest.raises(PolicyError, match="larger"):
        parse_policy(HEALTHCARE_TEXT + "#" * 300_000)


def test_all_reasons_are_reported_at_once() -> None:
    text = role_yaml(
        '  - id: a\n    row_filter: "nope == 1"\n    column_masks: {name: year_only}\n'
        "  - id: b\n    row_filter: 'true'\n    column_masks: {ghost: hash}\n",
        dataset="healthcare",
    )
    with pytest.raises(PolicyError) as exc:
        check(text)
    reasons = exc.value.reasons
    assert len(reasons) == 3
    assert any("'a'" in r and "unknown column 'nope'" in r for r in reasons)
    assert any("'a'" in r and "year_only" in r for r in reasons)
    assert any("'b'" in r and "'ghost'" in r for r in reasons)
    for r in reasons:
        assert r in str(exc.value)


def test_model_errors_are_reported_at_once() -> None:
    text = role_yaml("  - id: a\n    colum_masks: {}\n")
    with pytest.raises(PolicyError) as exc:
        check(text)
    assert len(exc.value.reasons) == 2
    assert any("row_filter" in r for r in exc.value.reasons)
    assert any("colum_masks" in r for r in exc.value.reasons)


def test_dataset_mismatch_and_role_problems_reported_together() -> None:
    text = role_yaml("  - id: a\n    row_filter: 'nope == 1'\n", dataset="ecommerce")
    with pytest.raises(PolicyError) as exc:
        check(text, "healthcare")
    assert len(exc.value.reasons) == 2


# ============================================================================ compile_access


@pytest.fixture(scope="module")
def healthcare_policy() -> LoadedPolicy:
    return validate_policy(load_policy(GOVERNANCE / "healthcare.yaml"), HEALTHCARE)


def test_compile_unknown_role_is_denied(healthcare_policy) -> None:
    with pytest.raises(AccessDenied, match="'nobody'"):
        compile_access(healthcare_policy, HEALTHCARE, Principal("nobody"))
    with pytest.raises(AccessDenied):
        compile_access(healthcare_policy, HEALTHCARE, Principal("Admin"))


def test_compile_analyst_plan(healthcare_policy) -> None:
    plan = compile_access(
        healthcare_policy, HEALTHCARE, Principal("analyst", {"allowed_regions": ["NE", "SW"]})
    )
    assert plan.role == "analyst"
    assert plan.row_filter == In("region", ("NE", "SW"), pa.string())
    assert plan.filter_sql == "\"region\" IN ('NE', 'SW')"
    assert plan.mask_plan == {
        "ssn": ("hash", {}),
        "name": ("initials", {}),
        "dob": ("year_only", {}),
        "address": ("city_only", {}),
        "insurance_id": ("hash", {}),
    }
    assert not plan.can_edit_policies
    assert not plan.can_detokenize


def test_compile_admin_and_clinician_plans(healthcare_policy) -> None:
    admin = compile_access(healthcare_policy, HEALTHCARE, Principal("admin"))
    assert admin.row_filter == TRUE
    assert admin.can_edit_policies and admin.can_detokenize
    assert admin.mask_plan == {"ssn": ("tokenize", {})}

    clinician = compile_access(healthcare_policy, HEALTHCARE, Principal("clinician", {"id": "C7"}))
    assert clinician.row_filter == Cmp("clinician_id", "==", "C7", pa.string())
    assert clinician.mask_plan["insurance_id"] == ("redact_part", {"keep": 4})
    for attrs in ({}, {"id": 7}, {"id": ["C7"]}, {"id": None}):
        with pytest.raises(AccessDenied):
            compile_access(healthcare_policy, HEALTHCARE, Principal("clinician", attrs))


def test_compile_plan_filter_is_nnf() -> None:
    financial = get_dataset("financial")
    loaded = validate_policy(load_policy(GOVERNANCE / "financial.yaml"), financial)
    plan = compile_access(loaded, financial, Principal("business_user"))
    assert plan.row_filter == Cmp("risk_rating", "!=", "high", pa.string())
    assert plan.filter_sql == "\"risk_rating\" <> 'high'"
    text = role_yaml('  - id: a\n    row_filter: "not (region in ${user.r} or notes is null)"\n')
    plan = compile_access(check(text), HEALTHCARE, Principal("a", {"r": ["NE", "SE"]}))
    assert plan.row_filter == And((NotIn("region", ("NE", "SE"), pa.string()), NotNull("notes")))
    assert not any(isinstance(n, Not) for n in walk(plan.row_filter))


def test_loaded_policy_version_tracks_the_text() -> None:
    a = parse_policy(HEALTHCARE_TEXT)
    assert a.version == parse_policy(HEALTHCARE_TEXT).version
    assert len(a.version) == 12
    assert int(a.version, 16) >= 0
    assert parse_policy(HEALTHCARE_TEXT + "# edited\n").version != a.version
    changed = HEALTHCARE_TEXT.replace("'NE', 'SE', 'MW'", "'NE', 'SE'")
    assert changed != HEALTHCARE_TEXT
    assert parse_policy(changed).version != a.version


def test_bug_nul_in_attribute_breaks_filter_sql(healthcare_policy) -> None:
    try:
        plan = compile_access(
            healthcare_policy, HEALTHCARE, Principal("clinician", {"id": "C0\x001"})
        )
    except AccessDenied:
        return
    assert plan.filter_sql
