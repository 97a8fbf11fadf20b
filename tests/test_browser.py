"""The stepper in a real browser: Voila serves notebooks/stepper.ipynb, Debian's chromium
(driven by playwright-core, tests/browser/stepper.e2e.mjs) walks all eight stages for each
table format, seeding through the UI, and searches "asthma" as a clinician and as a
business user, with the roles compared side by side.

Asserted from what the page shows: RLS (row counts, the clinician's own rows only), CLS
(masked cells, a different masked column set per role, raw values in the compared record
only for roles the API served them raw to), the page cache (MISS, then HIT), and issue
13: a validation that follows the seed (bug 1), an existing table of the wrong size
refused (bug 2), a failed search cleared and said in words (bug 3), the API's start-up
shown (bug 4), kernels and the services they started ending when a tab closes (bug 5),
labels that fit and defaults not done before shown (bug 7), the compared roles (item 8),
explanations in place (item 9) and the policy what-if and reset (item 10).

Screenshots of every stage, the script's summary and the servers' logs are kept in
test-artifacts/browser/ (git-ignored; CI keeps them as artifacts).

Needs /usr/bin/chromium (``apt-get install chromium``) and node + npm; skipped without
them, unless GOVLAB_REQUIRE_BROWSER=1 (then they fail). ``npm ci`` runs in tests/browser
when its node_modules is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.lab.client import GovlabClient, LocalServer, ensure_server
from govlab.lab.voila import NOTEBOOK, VoilaServer, start_voila, voila_command
from govlab.lab.widgets.state import DEFAULT_ATTRS, STAGES
from govlab.service.redis_server import free_port
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
E2E_TIMEOUT_S = 300
#: Parquet's walk finds a 50,000-row table on disk while the learner chooses tiny.
PRESEEDED = {"parquet": "small"}
#: Parquet's walk also tries a policy draft (there is a table to count rows on).
WHATIF_FORMAT = "parquet"
#: After Hydrate: Back to Validate (it counts the new table), then on to Search; Back,
#: Back, Back to Role for the second role, then Next, Next, Next to Search.
AFTER_FIRST_SEARCH = ["hydrate", "validate", "role", "validate", "hydrate", "search"]
STAGES_WALKED = [*STAGES[:7], "validate", "hydrate", "search", *AFTER_FIRST_SEARCH]


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


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def _isolated_env() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in ISOLATE_ENV if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


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
    url = f"http://127.0.0.1:{free_port()}"
    with _isolated_env():
        server = ensure_server(url, str(data_dir), log_path=str(ARTIFACTS / "api.log"))
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
    server = start_voila(port=free_port(), env=env, log_path=ARTIFACTS / "voila.log", timeout_s=90)
    print(f"voila up in {time.monotonic() - started:.1f} s at {server.url}")
    try:
        yield server
    finally:
        server.stop()


def run_e2e(
    url: str,
    name: str,
    args: list[str],
    on_event: Callable[[dict[str, Any], Path], None] | None = None,
) -> dict[str, Any]:
    """Run one browser scenario; its JSON summary (also saved as an artifact). Lines
    ``{"event": ...}`` on the script's stdout are handed to ``on_event`` as they come."""
    out = ARTIFACTS / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "outage.done").unlink(missing_ok=True)
    started = time.monotonic()
    node = subprocess.Popen(
        ["node", str(SCRIPT), "--url", url, "--artifacts", str(out), *args],
        cwd=ROOT,
        env={**os.environ, "GOVLAB_E2E_CHROMIUM": CHROMIUM},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines, stderr = _follow(node, out, on_event, started)
    (out / "e2e.log").write_text(stderr)
    summaries = [line for line in lines if line.startswith("{") and '"event"' not in line[:12]]
    if not summaries:
        pytest.fail(f"no summary from {SCRIPT.name} (exit {node.returncode}):\n{stderr[-4000:]}")
    summary = json.loads(summaries[-1])
    summary["wallSeconds"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not summary.get("ok"):
        pytest.fail(
            f"browser scenario {name} failed: {summary.get('error')}\n"
            f"screenshots: {summary.get('screenshots')}\nprogress:\n{stderr[-3000:]}"
        )
    return summary


def _follow(
    node: subprocess.Popen[str],
    out: Path,
    on_event: Callable[[dict[str, Any], Path], None] | None,
    started: float,
) -> tuple[list[str], str]:
    """Read the script's stdout line by line (events act at once), bounded in time."""
    lines: queue.Queue[str | None] = queue.Queue()
    errors: list[str] = []

    def pump_out() -> None:
        for line in node.stdout or []:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def pump_err() -> None:
        errors.extend(node.stderr or [])

    threads = [threading.Thread(target=f, daemon=True) for f in (pump_out, pump_err)]
    for thread in threads:
        thread.start()
    seen: list[str] = []
    while True:
        remaining = E2E_TIMEOUT_S - (time.monotonic() - started)
        try:
            line = lines.get(timeout=max(0.1, remaining))
        except queue.Empty:
            _stop(node)
            pytest.fail(
                f"the browser scenario took over {E2E_TIMEOUT_S} s:\n{''.join(errors)[-3000:]}"
            )
        if line is None:
            break
        seen.append(line)
        if line.startswith('{"event"') and on_event is not None:
            on_event(json.loads(line), out)
    node.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=10)
    return seen, "".join(errors)


def _stop(node: subprocess.Popen[str]) -> None:
    node.terminate()  # playwright closes its browser on SIGTERM; SIGKILL would orphan it
    try:
        node.wait(timeout=15)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait(timeout=10)


def _api_answer(api: LocalServer, data_dir: Path, role: str, fmt: str) -> dict[str, Any]:
    """What the API answers this principal directly: the UI must show the same."""
    settings = Settings(data_dir=data_dir)
    client = GovlabClient.for_role(role, DEFAULT_ATTRS.get(role, {}), api.url, settings)
    try:
        return client.search("healthcare", fmt, q=QUERY, page_size=200)
    finally:
        client.close()


def _preseed(api: LocalServer, data_dir: Path, fmt: str, size: str) -> int:
    """A table of another size on disk before the walk (what a previous learner left)."""
    client = GovlabClient.for_role("admin", {}, api.url, Settings(data_dir=data_dir))
    try:
        record = client.wait(client.seed("healthcare", size, fmt), timeout_s=120)
    finally:
        client.close()
    assert record["status"] == "completed", record
    return int(record["totalRows"])


# ---------------------------------------------------------------------- the tests
def test_voila_command_serves_the_stepper_with_kernel_culling() -> None:
    argv = voila_command(port=8866)
    assert argv[1:3] == ["-m", "govlab.lab.voila"]  # Voila with the _xsrf cookie hook
    assert str(NOTEBOOK) in argv
    assert NOTEBOOK.is_file()
    assert {
        "--port=8866",
        "--Voila.ip=127.0.0.1",
        "--no-browser",
        "--MappingKernelManager.cull_idle_timeout=600",
        "--MappingKernelManager.cull_interval=60",
    } <= set(argv)


def test_closing_a_voila_page_may_shut_its_kernel_down(tmp_path: Path) -> None:
    """Bug 5, without a browser: the page's shutdown request carries the _xsrf cookie
    the page sets, and Voila accepts it (it answered 403 before)."""
    import nbformat

    notebook = tmp_path / "tiny.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nbformat.write(nb, notebook)
    server = start_voila(port=free_port(), notebook=notebook, log_path=tmp_path / "voila.log")
    try:
        with httpx.Client(timeout=60) as client:
            page = client.get(server.url)
            kernel = re.search(r'"kernelId": "([0-9a-f-]+)"', page.text)
            assert page.status_code == 200 and kernel is not None
            xsrf = client.cookies.get("_xsrf")
            assert xsrf, "the page did not set the _xsrf cookie"
            done = client.post(
                f"{server.url}voila/api/shutdown/{kernel.group(1)}", data={"_xsrf": xsrf}
            )
        assert done.status_code == 204
        assert not _kernels(server), "the kernel is still running"
    finally:
        server.stop()


def _kernels(server: VoilaServer) -> list[psutil.Process]:
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [p for p in children if "ipykernel" in " ".join(_cmdline(p)) and _running(p)]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.mark.heavy
@needs_browser
@pytest.mark.parametrize("fmt", FORMATS)
def test_stepper_rls_cls_cache_in_browser(
    fmt: str, voila: VoilaServer, api: LocalServer, data_dir: Path, playwright_core: Path
) -> None:
    args = ["--format", fmt]
    preseeded = None
    if fmt in PRESEEDED:
        preseeded = _preseed(api, data_dir, fmt, PRESEEDED[fmt])
        args += ["--existing-rows", str(preseeded)]
    if fmt == WHATIF_FORMAT:
        args.append("--whatif")
    summary = run_e2e(voila.url, fmt, args)
    print(
        f"{fmt}: walk {summary['wallSeconds']} s, first render "
        f"{summary['timings']['renderMs']} ms, seed {summary['hydrate']['ms']} ms"
    )
    _check_stages_and_shots(summary)
    _check_first_stages(summary)
    _check_hydrate_and_validate(summary, preseeded)
    expected = {role: _api_answer(api, data_dir, role, fmt) for role in (FIRST, SECOND, "admin")}
    _check_rls_cls_cache(summary, expected)
    _check_compare(summary, expected)
    _check_explain(summary)
    if fmt == WHATIF_FORMAT:
        _check_whatif(summary)


def _check_stages_and_shots(summary: dict[str, Any]) -> None:
    assert summary["stages"] == STAGES_WALKED
    shots = [ROOT / s for s in summary["screenshots"]]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in shots), shots
    for stage in STAGES:
        assert any(p.name[3:].startswith(stage) for p in shots), f"no screenshot of {stage}"


def _check_first_stages(summary: dict[str, Any]) -> None:
    """Bug 7 and item 9 at the first stages."""
    checks = summary["checks"]
    assert checks["before"] == {"formatDone": False, "roleDone": False, "datasetAbout": 3}
    assert checks["formatDoneAtSize"] is False  # not green before it was visited
    assert checks["sizeCutOff"] == []  # "small (50,000 rows)" is not cut off
    assert checks["sizeContrast"] > 0.3  # the chosen toggle stands out
    assert checks["formatAbout"]  # the chosen format, described in one line
    gov = summary["governance"]
    assert gov["status"].startswith("Valid")
    assert {FIRST, SECOND} <= set(gov["previewRoles"])
    assert "Only their own patients" in " ".join(gov["descriptions"])
    assert gov["textareaInside"] is True
    assert "Editing as" not in gov["mode"] and "step 5" in gov["mode"]
    assert gov["roleDone"] is False
    clinician = summary["roles"][FIRST]["role"]
    assert clinician["attrs"] == json.dumps(DEFAULT_ATTRS[FIRST])
    assert "C007" in clinician["filter"]
    assert clinician["description"].startswith("Only their own patients")
    assert "region" in summary["roles"][SECOND]["role"]["filter"]


def _check_hydrate_and_validate(summary: dict[str, Any], preseeded: int | None) -> None:
    """Bugs 1 and 2: the validation follows the seed; a table of another size is refused."""
    before = summary["hydrateBefore"]
    first_validate = summary["validate"][FIRST]["rows"]
    if preseeded is None:
        assert "no " in first_validate and "table yet" in first_validate
        assert before["table"].startswith("No ") and before["existingDisabled"]
    else:
        assert f"of {preseeded:,} rows" in first_validate
        assert re.match(rf"Existing table: {preseeded:,} rows, version \d+", before["table"])
        assert "you chose tiny (1,000 rows): seed to continue" in before["table"]
        assert before["existingDisabled"] and before["nextDisabled"]
    assert summary["validate"][FIRST]["badge"] == "acting as clinician (id=C007)"
    hydrate = summary["hydrate"]
    assert hydrate["status"].startswith("completed") and hydrate["bar"] == "100%"
    assert "1,000 / 1,000 rows" in hydrate["status"]
    after = summary["validate"]["afterSeed"]["rows"]
    assert re.match(r"Rows after RLS: \d+ of 1,000 rows \(table version \d+\)", after), after
    assert "the size you chose" in hydrate["tableAfterRoleSwitch"]
    assert summary["validate"][SECOND]["rows"].startswith("Rows after RLS: ")
    bars = {b["role"]: b for b in summary["compareValidate"]["bars"]}
    assert FIRST in bars and all(b["of"] == "1000" for b in bars.values())


def _check_rls_cls_cache(summary: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    clinician, business = summary["roles"][FIRST], summary["roles"][SECOND]
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
    assert "name" in business["maskedColumns"] and "name" not in clinician["maskedColumns"]
    assert all(name == "*****" for name in business["searches"][-1]["names"])
    assert not any(name == "*****" for name in clinician["searches"][-1]["names"])
    # The page cache: MISS, then a HIT with the same rows; the legend and labelled times.
    for record in (clinician, business):
        assert record["cacheSequence"] == ["MISS", "HIT"], record["cacheSequence"]
        first, again = record["searches"]
        assert first["total"] == again["total"] and first["names"] == again["names"]
        assert again["cacheText"] == "cache: HIT"
    assert re.fullmatch(r"server [\d.,]+ ms · round trip [\d.,]+ ms", clinician["took"])
    assert all(w in clinician["legend"] for w in ("HIT:", "MISS:", "BYPASS:"))
    assert clinician["badge"] == "acting as clinician (id=C007)"


def _check_compare(summary: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    """Item 8: the roles compared at Search, each as the API answered it."""
    compare = summary["compareSearch"]
    bars = {b["role"]: b for b in compare["bars"]}
    assert FIRST in bars and len(bars) >= 2 and compare["sides"] == list(bars)
    for role, bar in bars.items():
        if role in expected:
            assert int(bar["value"]) == expected[role]["total"], role
    key = int(compare["key"])
    cells = [c for c in compare["cells"] if c["role"] in expected]
    assert {c["kind"] for c in cells} >= {"raw", "masked"}
    for cell in cells:
        served = {row["patient_id"]: row for row in expected[cell["role"]]["items"]}
        masked = set(expected[cell["role"]]["maskedFields"])
        if cell["kind"] == "hidden":
            assert key not in served
            continue
        value = served[key][cell["column"]]
        assert cell["text"] == ("null" if value is None else str(value))
        # raw only where the API served that role the column unmasked
        assert (cell["kind"] == "masked") == (cell["column"] in masked), cell


def _check_explain(summary: dict[str, Any]) -> None:
    """Item 9: a name only a masked column holds finds nothing, and the page says why."""
    explain = summary["explain"]
    assert explain["total"] == 0
    assert "name" in explain["explain"] and f"masked for {SECOND}" in explain["explain"]
    assert "not searched" in explain["explain"]


def _check_whatif(summary: dict[str, Any]) -> None:
    """Item 10: a draft's effect per role before saving; reset to the shipped policy."""
    whatif = summary["whatif"]
    assert whatif["changed"] and not whatif["clinicianChanged"]
    assert int(whatif["draft"].replace(",", "")) > int(whatif["saved"].replace(",", ""))
    assert "edited" in whatif["afterSave"]
    assert whatif["restored"] and "shipped one" in whatif["afterReset"]


# ---------------------------------------------------------------------- lifecycle
@pytest.fixture
def kernel_voila(tmp_path: Path) -> Iterator[tuple[VoilaServer, str]]:
    """Voila whose kernels find no API at GOVLAB_API_URL: each starts its own."""
    url = f"http://127.0.0.1:{free_port()}"
    env = {
        "GOVLAB_API_URL": url,
        "GOVLAB_DATA_DIR": str(tmp_path / "data"),
        "GOVLAB_SECRET": TEST_SECRET,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with _isolated_env():
        server = start_voila(
            port=free_port(), env=env, log_path=ARTIFACTS / "voila-lifecycle.log", timeout_s=90
        )
    try:
        yield server, url
    finally:
        server.stop()


def _stop_api(event: dict[str, Any], out: Path) -> None:
    """The outage: stop the API the kernel started (its worker and Redis go with it)."""
    if event["event"] != "outage":
        return
    api = psutil.Process(event["serverPid"])
    api.terminate()
    assert not _still_running([api], timeout_s=30), "the API did not stop"
    (out / "outage.done").write_text("stopped")


def _still_running(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Those of ``processes`` still running after up to ``timeout_s`` (a zombie, dead
    but not yet reaped by its parent, counts as ended)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in processes if _running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.25)


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.heavy
@needs_browser
def test_the_api_a_kernel_starts_shows_fails_and_ends_with_it(
    kernel_voila: tuple[VoilaServer, str], playwright_core: Path
) -> None:
    voila, url = kernel_voila
    trees: dict[int, list[psutil.Process]] = {}

    def on_event(event: dict[str, Any], out: Path) -> None:
        serve = psutil.Process(event["serverPid"])
        trees[event["serverPid"]] = [serve, *serve.children(recursive=True)]
        _stop_api(event, out)

    summary = run_e2e(
        voila.url, "lifecycle", ["--format", "delta", "--scenario", "lifecycle"], on_event
    )
    life = summary["lifecycle"]
    # Bug 4: the stepper is on the page while the API starts, showing the start-up, then
    # that it is up, how long it took and through which phases (the kernel's record).
    shown_before_ready = []
    for page in ("page1", "page2"):
        phases = [entry.split("|")[0] for entry in life[page]["banner"]]
        assert phases[-1] == "ready", life[page]["banner"]
        final = life[page]["banner"][-1]
        assert re.search(r"\(checking -> starting( -> waiting)? -> ready\)", final), final
        assert f"started by this kernel (pid {life[page]['serverPid']})" in final
        shown_before_ready.append(phases[0] != "ready")
    assert any(shown_before_ready), "the page never showed the start-up before the API was up"
    assert life["page1"]["serverPid"] != life["page2"]["serverPid"]
    # Bug 3: with the API gone the search says so in words and leaves nothing stale.
    before, after = life["beforeOutage"], life["afterOutage"]
    assert before["rowsOnPage"] > 0 and before["total"] > 0
    assert f"The API at {url} is not answering; start it with `make serve`" in after["error"]
    assert "ConnectError" not in after["error"]
    assert after["rowsOnPage"] == 0 and after["total"] is None and after["totalText"] == ""
    assert after["pageText"] == "" and after["cacheText"] == ""
    assert after["nextDisabled"] and after["prevDisabled"]
    # Bug 5: closing the pages shut their kernels down (no 403 on Voila's shutdown), and
    # the API, worker and Redis the second kernel started ended with it.
    alive = _still_running(trees[life["page2"]["serverPid"]], timeout_s=40)
    assert not alive, [_cmdline(p) for p in alive]
    deadline = time.monotonic() + 30
    while _kernels(voila) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _kernels(voila), "a closed page's kernel is still running"
    log = (ARTIFACTS / "voila-lifecycle.log").read_text()
    assert "403 POST /voila/api/shutdown" not in log
    assert log.count("Kernel shutdown") >= 2
