"""The stepper in a real browser: Voila serves notebooks/stepper.ipynb, Debian's chromium
(driven by playwright-core, tests/browser/stepper.e2e.mjs) walks all eight stages for each
table format, seeding through the UI, and searches "asthma" as a clinician and as a
business user.

Asserted from what the page shows: RLS (row counts, the clinician's own rows only), CLS
(masked cells, and a different masked column set per role) and the page cache (MISS, then
HIT for the same search). Screenshots of every stage, the script's summary and the
servers' logs are kept in test-artifacts/browser/ (git-ignored).

Needs /usr/bin/chromium (``apt-get install chromium``) and node + npm; skipped without
them, unless GOVLAB_REQUIRE_BROWSER=1 (then they fail). ``npm ci`` runs in tests/browser
when its node_modules is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.lab.client import GovlabClient, LocalServer, ensure_server
from govlab.lab.voila import NOTEBOOK, VoilaServer, start_voila, voila_command
from govlab.lab.widgets.state import DEFAULT_ATTRS, STAGES
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
BROWSER_DIR = ROOT / "tests" / "browser"
SCRIPT = BROWSER_DIR / "stepper.e2e.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("GOVLAB_E2E_CHROMIUM", "/usr/bin/chromium")
QUERY = "asthma"
FIRST, SECOND = "clinician", "business_user"
#: business_user's row filter in governance/healthcare.yaml.
BUSINESS_REGIONS = {"NE", "SE", "MW"}
PAGE_SIZE = 10  # LabState.page_size
E2E_TIMEOUT_S = 240
#: After the first search: Back, Back, Back to Role, then Next, Next, Next to Search.
ROLE_SWITCH_STAGES = ["hydrate", "validate", "role", "validate", "hydrate", "search"]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found (browser tests need Node.js and npm)"
    return None


#: CI sets GOVLAB_REQUIRE_BROWSER=1 so that a missing browser fails instead of skipping.
REQUIRE_BROWSER = os.environ.get("GOVLAB_REQUIRE_BROWSER") == "1"
needs_browser = pytest.mark.skipif(
    not REQUIRE_BROWSER and _missing() is not None, reason=_missing() or ""
)
#: The API this test starts must not share Redis or tables with anything else, and must
#: cache with its defaults (the first search a MISS, the same one again a HIT).
ISOLATE_ENV = ("REDIS_URL", "DELTA_DIR", "PARQUET_DIR", "ICEBERG_DIR", "GOVLAB_CACHE_TTL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def playwright_core() -> Path:
    """tests/browser/node_modules, from the committed package-lock.json."""
    missing = _missing()
    if missing is not None:
        pytest.fail(f"GOVLAB_REQUIRE_BROWSER=1 but {missing}")
    module = BROWSER_DIR / "node_modules" / "playwright-core" / "package.json"
    if not module.exists():
        done = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not module.exists():
            pytest.fail(f"npm ci in {BROWSER_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return module.parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser-data")


@pytest.fixture(scope="module")
def api(data_dir: Path, _secret: None) -> Iterator[LocalServer]:
    """A private ``govlab serve`` (API, worker, its own embedded Redis, so the cache starts
    empty) on a free port over an empty data root: the UI seeds every table itself."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{_free_port()}"
    saved = {name: os.environ.pop(name) for name in ISOLATE_ENV if name in os.environ}
    try:
        server = ensure_server(url, str(data_dir), log_path=str(ARTIFACTS / "api.log"))
    finally:
        os.environ.update(saved)
    assert server.process is not None, f"something already answers at {url}"
    try:
        yield server
    finally:
        server.stop()
        _kill_group(server.process.pid)  # the worker and Redis, should they outlive it


@pytest.fixture(scope="module")
def voila(api: LocalServer, data_dir: Path) -> Iterator[VoilaServer]:
    """One Voila for every format (a kernel starts per page); the kernel reaches the API
    through the environment it inherits from Voila."""
    env = {
        "GOVLAB_API_URL": api.url,
        "GOVLAB_DATA_DIR": str(data_dir),
        "GOVLAB_SECRET": TEST_SECRET,
    }
    started = time.monotonic()
    server = start_voila(port=_free_port(), env=env, log_path=ARTIFACTS / "voila.log", timeout_s=90)
    print(f"voila up in {time.monotonic() - started:.1f} s at {server.url}")
    try:
        yield server
    finally:
        server.stop()


def run_e2e(url: str, fmt: str) -> dict[str, Any]:
    """Run the browser walk for one format; its JSON summary (also saved as an artifact)."""
    out = ARTIFACTS / fmt
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    node = subprocess.Popen(
        ["node", str(SCRIPT), "--url", url, "--format", fmt, "--artifacts", str(out)],
        cwd=ROOT,
        env={**os.environ, "GOVLAB_E2E_CHROMIUM": CHROMIUM},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = node.communicate(timeout=E2E_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        node.terminate()  # playwright closes its browser on SIGTERM; SIGKILL would orphan it
        try:
            stdout, stderr = node.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
            stdout, stderr = node.communicate()
        (out / "e2e.log").write_text(stderr)
        pytest.fail(f"the browser walk for {fmt} took over {E2E_TIMEOUT_S} s:\n{stderr[-3000:]}")
    (out / "e2e.log").write_text(stderr)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"no summary from {SCRIPT.name} (exit {node.returncode}):\n"
            f"{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    summary = json.loads(lines[-1])
    summary["wallSeconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not summary.get("ok"):
        pytest.fail(
            f"browser walk for {fmt} failed: {summary.get('error')}\n"
            f"screenshots: {summary.get('screenshots')}\nprogress:\n{stderr[-3000:]}"
        )
    return summary


# ---------------------------------------------------------------------- the tests
def test_voila_command_serves_the_stepper_with_kernel_culling() -> None:
    argv = voila_command(port=8866)
    assert argv[0].endswith("voila") or argv[1:3] == ["-m", "voila"]
    assert str(NOTEBOOK) in argv
    assert NOTEBOOK.is_file()
    assert {
        "--port=8866",
        "--Voila.ip=127.0.0.1",
        "--no-browser",
        "--MappingKernelManager.cull_idle_timeout=600",
        "--MappingKernelManager.cull_interval=60",
    } <= set(argv)


@pytest.mark.heavy
@needs_browser
@pytest.mark.parametrize("fmt", FORMATS)
def test_stepper_rls_cls_cache_in_browser(
    fmt: str, voila: VoilaServer, api: LocalServer, data_dir: Path, playwright_core: Path
) -> None:
    summary = run_e2e(voila.url, fmt)
    print(
        f"{fmt}: walk {summary['wallSeconds']} s, first render "
        f"{summary['timings']['renderMs']} ms, seed {summary['hydrate']['ms']} ms"
    )

    # Every stage, in order, through the UI; then back to Role and forward again.
    assert summary["stages"][: len(STAGES)] == list(STAGES)
    assert summary["stages"][len(STAGES) :] == ROLE_SWITCH_STAGES
    shots = [ROOT / s for s in summary["screenshots"]]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in shots), shots
    for stage in STAGES:
        assert any(p.name[3:].startswith(stage) for p in shots), f"no screenshot of {stage}"

    # Governance as loaded: the live policy, valid, every role previewed.
    gov = summary["governance"]
    assert gov["status"].startswith("Valid")
    assert {FIRST, SECOND} <= set(gov["previewRoles"])

    # Hydrate seeded this format through the UI (the data root started empty).
    assert summary["hydrate"]["status"].startswith("completed")
    assert "1,000 / 1,000 rows" in summary["hydrate"]["status"]
    assert summary["hydrate"]["bar"] == "100%"
    assert summary["validate"][SECOND]["rows"].startswith("Rows after RLS: ")

    clinician, business = summary["roles"][FIRST], summary["roles"][SECOND]
    assert clinician["role"]["attrs"] == json.dumps(DEFAULT_ATTRS[FIRST])
    assert "C007" in clinician["role"]["filter"]
    assert "region" in business["role"]["filter"]

    # What the API answers these principals directly: the UI must show the same.
    settings = Settings(data_dir=data_dir)
    expected: dict[str, dict[str, Any]] = {}
    for role in (FIRST, SECOND):
        client = GovlabClient.for_role(role, DEFAULT_ATTRS.get(role, {}), api.url, settings)
        try:
            expected[role] = client.search("healthcare", fmt, q=QUERY, page_size=PAGE_SIZE)
        finally:
            client.close()

    # RLS: the clinician sees fewer rows, all their own; business_user only its regions.
    assert 0 < clinician["total"] < business["total"]
    assert clinician["total"] == expected[FIRST]["total"]
    assert business["total"] == expected[SECOND]["total"]
    assert clinician["clinicianIds"] == [DEFAULT_ATTRS[FIRST]["id"]]
    assert set(business["regions"]) <= BUSINESS_REGIONS
    assert len(business["clinicianIds"]) > 1
    for record in (clinician, business):
        assert record["rowsOnPage"] == min(record["total"], PAGE_SIZE)

    # CLS: masked cells are marked, and the masked columns differ between the roles.
    for role, record in ((FIRST, clinician), (SECOND, business)):
        for search in record["searches"]:
            assert search["maskedCells"] > 0
            assert search["maskedCellsWithTitle"] == search["maskedCells"]
            assert search["maskedHeaderColumns"] == search["maskedColumns"]
            assert search["maskedColumns"] == sorted(expected[role]["maskedFields"])
            assert search["error"] == ""
        assert record["maskedCells"] == len(record["maskedColumns"]) * record["rowsOnPage"]
    assert set(clinician["maskedColumns"]) != set(business["maskedColumns"])
    assert "name" in business["maskedColumns"]
    assert "name" not in clinician["maskedColumns"]
    assert all(name == "*****" for name in business["searches"][-1]["names"])
    assert not any(name == "*****" for name in clinician["searches"][-1]["names"])

    # The page cache: the first search of each role is a MISS, the same search again a HIT
    # that shows the same rows.
    for record in (clinician, business):
        assert record["cacheSequence"] == ["MISS", "HIT"], record["cacheSequence"]
        first, again = record["searches"]
        assert first["total"] == again["total"]
        assert first["names"] == again["names"]
        assert again["cacheText"] == "cache: HIT"
