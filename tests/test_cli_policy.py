"""The ``govlab policy validate|explain`` commands, run in-process through ``main``.

Errors a caller can fix print exactly one ``govlab:`` line on stderr (no traceback, no
data value) and exit 2 (invalid policy), 3 (access denied) or 1 (anything else).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from govlab.cli import EXIT_DENIED, EXIT_ERROR, EXIT_INVALID, main, parse_attrs
from govlab.errors import GovlabError

ROOT = Path(__file__).resolve().parent.parent
HEALTHCARE = "governance/healthcare.yaml"
VALID_ROLE = "version: 1\ndataset: healthcare\nroles:\n  - id: a\n    row_filter: 'true'\n"


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("govlab:"), err
    assert "Traceback" not in err
    return lines[0]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------- validate


@pytest.mark.parametrize("dataset", ["healthcare", "ecommerce", "financial"])
def test_validate_shipped_policy(dataset: str, capsys) -> None:
    code, out, err = run(capsys, "policy", "validate", f"governance/{dataset}.yaml")
    assert code == 0
    assert err == ""
    assert "valid" in out
    assert f"valid policy for {dataset}" in out
    assert "roles: admin, data_modeler" in out


def test_validate_reports_the_content_version(capsys, tmp_path: Path) -> None:
    _, first, _ = run(capsys, "policy", "validate", write(tmp_path, VALID_ROLE))
    _, same, _ = run(capsys, "policy", "validate", write(tmp_path, VALID_ROLE))
    _, edited, _ = run(capsys, "policy", "validate", write(tmp_path, VALID_ROLE + "# edit\n"))
    version = first.split("(version ")[1].split(";")[0]
    assert len(version) == 12
    assert f"(version {version};" in same
    assert f"(version {version};" not in edited


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (VALID_ROLE.replace("'true'", "\"regoin == 'NE'\""), "unknown column 'regoin'"),
        (VALID_ROLE.replace("'true'", "'region = 1'"), "=="),
        (VALID_ROLE.replace("'true'", '"region == \'NE"'), "position"),
        (VALID_ROLE.replace("    row_filter: 'true'\n", ""), "row_filter"),
        (VALID_ROLE + "    colum_masks: {ssn: hash}\n", "colum_masks"),
        (VALID_ROLE + "    column_masks: {ssn: scramble}\n", "unknown mask"),
        (VALID_ROLE + "    column_masks: {patient_id: hash}\n", "primary key"),
        (VALID_ROLE + "    column_masks: {name: year_only}\n", "year_only"),
        (VALID_ROLE + "  - id: a\n    row_filter: 'false'\n", "twice"),
        (VALID_ROLE.replace("healthcare", "nope"), "nope"),
        ("dataset: healthcare\nroles: [\n", "YAML"),
        ('!!python/object/apply:os.system ["echo hi"]\n', "YAML"),
        ("- a\n- b\n", "mapping"),
    ],
)
def test_validate_invalid_policy_exits_2_with_one_line(
    text: str, fragment: str, capsys, tmp_path: Path
) -> None:
    code, out, err = run(capsys, "policy", "validate", write(tmp_path, text))
    assert out == ""
    line = one_error_line(err)
    if "nope" in text:
        # An unknown dataset is a bad request, not a bad policy.
        assert code == EXIT_ERROR
    else:
        assert code == EXIT_INVALID
        assert line.startswith("govlab: invalid policy:")
    assert fragment in line


def test_validate_puts_every_reason_on_the_one_line(capsys, tmp_path: Path) -> None:
    text = VALID_ROLE.replace("'true'", "'nope == 1'") + "    column_masks: {ghost: hash}\n"
    code, _, err = run(capsys, "policy", "validate", write(tmp_path, text))
    assert code == EXIT_INVALID
    line = one_error_line(err)
    assert "unknown column 'nope'" in line
    assert "'ghost'" in line


def test_validate_missing_file(capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, "policy", "validate", str(tmp_path / "absent.yaml"))
    assert code == EXIT_ERROR
    assert out == ""
    assert "no such file" in one_error_line(err)


def test_yaml_tag_is_not_executed(capsys, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f'!!python/object/apply:os.system ["touch {marker}"]\n'
    code, _, err = run(capsys, "policy", "validate", write(tmp_path, text))
    assert code == EXIT_INVALID
    one_error_line(err)
    assert not marker.exists()


# ---------------------------------------------------------------------------- explain


def test_explain_analyst(capsys) -> None:
    code, out, err = run(
        capsys,
        "policy",
        "explain",
        HEALTHCARE,
        "--role",
        "analyst",
        "--attr",
        'allowed_regions=["NE","SW"]',
    )
    assert code == 0
    assert err == ""
    assert "\"region\" IN ('NE', 'SW')" in out
    assert out.splitlines() == [
        "role:       analyst",
        "row filter: \"region\" IN ('NE', 'SW')",
        "masks:",
        "  address: city_only",
        "  dob: year_only",
        "  insurance_id: hash",
        "  name: initials",
        "  ssn: hash",
    ]


def test_explain_clinician_shows_mask_parameters(capsys) -> None:
    code, out, _ = run(
        capsys, "policy", "explain", HEALTHCARE, "--role", "clinician", "--attr", "id=C014"
    )
    assert code == 0
    assert "row filter: \"clinician_id\" = 'C014'" in out
    assert "  insurance_id: redact_part(keep=4)" in out
    assert "  ssn: redact_full" in out


def test_explain_role_without_attributes(capsys) -> None:
    code, out, _ = run(capsys, "policy", "explain", HEALTHCARE, "--role", "admin")
    assert code == 0
    assert "row filter: TRUE" in out
    assert "  ssn: tokenize" in out
    code, out, _ = run(
        capsys, "policy", "explain", "governance/financial.yaml", "--role", "business_user"
    )
    assert code == 0
    assert "row filter: \"risk_rating\" <> 'high'" in out


def test_explain_role_without_masks(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "policy", "explain", write(tmp_path, VALID_ROLE), "--role", "a")
    assert code == 0
    assert out.splitlines()[-1] == "masks:      (none)"


def test_explain_injected_attribute_is_one_quoted_literal(capsys) -> None:
    code, out, _ = run(
        capsys, "policy", "explain", HEALTHCARE, "--role", "clinician", "--attr", "id=x' OR '1'='1"
    )
    assert code == 0
    assert "row filter: \"clinician_id\" = 'x'' OR ''1''=''1'" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--role", "nobody"], "'nobody'"),
        (["--role", "ANALYST", "--attr", 'allowed_regions=["NE"]'], "'ANALYST'"),
        (["--role", "analyst"], "'allowed_regions'"),
        (["--role", "analyst", "--attr", "allowed_region=[]"], "'allowed_regions'"),
        (["--role", "analyst", "--attr", "allowed_regions=NE"], "list"),
        (["--role", "analyst", "--attr", "allowed_regions=[1, 2]"], "wrong type"),
        (["--role", "analyst", "--attr", "allowed_regions=null"], "missing"),
        (["--role", "clinician"], "'id'"),
        (["--role", "clinician", "--attr", "id=7"], "wrong type"),
        (["--role", "clinician", "--attr", "id=true"], "wrong type"),
        (["--role", "clinician", "--attr", 'id=["C014"]'], "single value"),
    ],
)
def test_explain_denied_exits_3_with_one_line(args: list[str], fragment: str, capsys) -> None:
    code, out, err = run(capsys, "policy", "explain", HEALTHCARE, *args)
    assert code == EXIT_DENIED
    assert out == ""
    line = one_error_line(err)
    assert line.startswith("govlab: access denied:")
    assert fragment in line


def test_explain_denial_does_not_echo_the_attribute(capsys) -> None:
    code, _, err = run(
        capsys, "policy", "explain", HEALTHCARE, "--role", "clinician", "--attr", "id=987654321"
    )
    assert code == EXIT_DENIED
    assert "987654321" not in err


def test_explain_invalid_policy_exits_2(capsys, tmp_path: Path) -> None:
    path = write(tmp_path, VALID_ROLE.replace("'true'", "'nope == 1'"))
    code, out, err = run(capsys, "policy", "explain", path, "--role", "a")
    assert code == EXIT_INVALID
    assert out == ""
    one_error_line(err)


def test_explain_malformed_attr_exits_1(capsys) -> None:
    code, out, err = run(
        capsys, "policy", "explain", HEALTHCARE, "--role", "admin", "--attr", "no-equals-sign"
    )
    assert code == EXIT_ERROR
    assert out == ""
    assert "KEY=VALUE" in one_error_line(err)


def test_parse_attrs_json_or_text() -> None:
    assert parse_attrs(["a=7", "b=[1, 2]", "c=true", "d=C014", "e=", 'f="7"', "g=x=y"]) == {
        "a": 7,
        "b": [1, 2],
        "c": True,
        "d": "C014",
        "e": "",
        "f": "7",
        "g": "x=y",
    }
    assert parse_attrs(None) == {}
    with pytest.raises(GovlabError):
        parse_attrs(["=7"])


# ---------------------------------------------------------------------------- known bugs


def test_bug_validate_literal_type_mismatch_exits_2(capsys, tmp_path: Path) -> None:
    path = write(tmp_path, VALID_ROLE.replace("'true'", "\"'a' == 1\""))
    code, _, err = run(capsys, "policy", "validate", path)
    assert code == EXIT_INVALID
    one_error_line(err)


def test_bug_validate_column_in_list_exits_2(capsys, tmp_path: Path) -> None:
    path = write(tmp_path, VALID_ROLE.replace("'true'", "'region in [clinician_id]'"))
    code, _, err = run(capsys, "policy", "validate", path)
    assert code == EXIT_INVALID
    one_error_line(err)


def test_bug_validate_deeply_nested_filter_does_not_crash(capsys, tmp_path: Path) -> None:
    nested = "(" * 300 + "true" + ")" * 300
    path = write(tmp_path, VALID_ROLE.replace("'true'", f"'{nested}'"))
    code, _, _ = run(capsys, "policy", "validate", path)
    assert code in (0, EXIT_INVALID)


def test_bug_explain_nul_attribute_does_not_crash(capsys) -> None:
    code, _, err = run(
        capsys, "policy", "explain", HEALTHCARE, "--role", "clinician", "--attr", 'id="C0\\u00001"'
    )
    assert code in (0, EXIT_DENIED)
    if code:
        one_error_line(err)
