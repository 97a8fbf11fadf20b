"""The ``govlab`` command end to end: seed, search, token; errors as one stderr line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from govlab.cli import main
from govlab.config import Settings
from govlab.service.identity import verify_token
from tests.conftest import TEST_SECRET


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_then_search_as_two_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    code, out, _ = run(
        capsys,
        "seed",
        "--dataset",
        "healthcare",
        "--size",
        "tiny",
        "--format",
        "iceberg",
        "--data-dir",
        data,
    )
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["rows"] == 1000
    code, out, _ = run(
        capsys,
        "search",
        "--dataset",
        "healthcare",
        "--format",
        "iceberg",
        "--role",
        "analyst",
        "--attr",
        'allowed_regions=["NE","SW"]',
        "-q",
        "asthma",
        "--data-dir",
        data,
    )
    page = json.loads(out)
    assert code == 0 and page["total"] > 0
    assert {r["region"] for r in page["items"]} <= {"NE", "SW"}
    assert all("asthma" in (r["condition"] + (r["notes"] or "")) for r in page["items"])
    code, out, _ = run(
        capsys,
        "search",
        "--dataset",
        "healthcare",
        "--format",
        "iceberg",
        "--role",
        "clinician",
        "--attr",
        "id=C007",
        "--page-size",
        "200",
        "--data-dir",
        data,
    )
    assert {r["clinician_id"] for r in json.loads(out)["items"]} == {"C007"}


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--role", "intern"], 3, "not defined"),
        (["--role", "clinician"], 3, "attribute 'id'"),
        (
            ["--role", "analyst", "--attr", "allowed_regions=[]", "--sort", "ssn"],
            1,
            "masked column",
        ),
        (["--role", "admin", "--page-size", "500"], 1, "pageSize"),
        (["--role", "admin", "--format", "orc"], 1, "valid formats"),
    ],
)
def test_search_errors_are_one_line_on_stderr(
    seeded: Settings, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, needle: str
) -> None:
    base = [
        "search",
        "--dataset",
        "healthcare",
        "--format",
        "delta",
        "--data-dir",
        str(seeded.data_dir),
    ]
    got, out, err = run(capsys, *base, *argv)
    assert got == code and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("govlab:") and needle in err


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GOVLAB_COUNT_LIMIT", "lots", "GOVLAB_COUNT_LIMIT must be a whole number"),
        ("GOVLAB_CACHE_TTL", "5m", "GOVLAB_CACHE_TTL must be a whole number (seconds)"),
        ("GOVLAB_CACHE_TTL", "0", "GOVLAB_CACHE_TTL must be between 1 and"),
        ("PORT_DELTA_API", "abc", "PORT_DELTA_API must be a whole number"),
        ("PORT_DELTA_API", "70000", "PORT_DELTA_API must be between 1 and 65535"),
        ("GOVLAB_API_URL", "localhost:8000", "GOVLAB_API_URL must start with http://"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must start with redis://"),
        ("GOVLAB_DEMO_AUTH", "maybe", "GOVLAB_DEMO_AUTH must be 1 or 0"),
        ("GOVLAB_AUDIT_QUERY", "raw", "GOVLAB_AUDIT_QUERY must be one of fingerprint, full"),
        ("GOVLAB_JOB_STALE_S", "-1", "GOVLAB_JOB_STALE_S must be between 1 and"),
        ("GOVLAB_CORS_ORIGINS", "*", "GOVLAB_CORS_ORIGINS must list origins"),
        ("GOVLAB_SECRET", "short", "GOVLAB_SECRET is 5 bytes; the deployment secret needs"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["search", "--dataset", "healthcare", "--role", "admin"],
        ["token", "--role", "admin"],
        ["serve", "--port", "1"],
    ],
)
def test_a_bad_setting_is_one_line_on_stderr_for_every_command(
    seeded: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    name: str,
    value: str,
    message: str,
) -> None:
    """Every variable is read in one place (``govlab.config``) before a command starts
    work: never a traceback, never a server half started."""
    monkeypatch.setenv(name, value)
    code, out, err = run(capsys, *command, "--data-dir", str(seeded.data_dir))
    assert code == 1 and out == ""
    assert err.startswith(f"govlab: {message}") and err.count("\n") == 1, err


def test_search_on_an_unseeded_table_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "search",
        "--dataset",
        "financial",
        "--format",
        "parquet",
        "--role",
        "admin",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 1 and "seed" in err.lower()


def test_token_mints_a_verifiable_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "token", "--role", "analyst", "--attr", 'allowed_regions=["NE"]', "--ttl", "5m"
    )
    principal = verify_token(TEST_SECRET.encode(), out.strip())
    assert (
        code == 0 and principal.role == "analyst" and principal.attrs == {"allowed_regions": ["NE"]}
    )
    code, _, err = run(capsys, "token", "--role", "analyst", "--ttl", "forever")
    assert code == 1 and "--ttl" in err


def test_demo_shows_each_role_a_different_view_through_the_cache(
    tmp_path: Path,
    redis_server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    from govlab.lab.demo import run_demo

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    summaries = {s["role"]: s for s in run_demo(Settings(data_dir=tmp_path))}
    assert 0 < summaries["clinician"]["total"] < summaries["business_user"]["total"]
    assert summaries["business_user"]["total"] < summaries["admin"]["total"]
    assert all(s["cache"] == ("miss", "hit") for s in summaries.values())
    out = capsys.readouterr().out
    assert "== clinician {'id': 'C007'}" in out and "ssn=*****" in out
