"""The examples run as a user would run them, and show what they claim to show.

- examples/python/load_parquet_example.py and load_iceberg_example.py, in-process, on a
  temporary data root: the row counts and masked fields they print match the policy,
  and no raw identifier leaks into what they print.
- examples/python/search_delta_redis.py against a live API (``ensure_server``: API +
  worker + embedded Redis) on an empty data root: it seeds through the API, then
  searches as two roles.
- examples/js: ``npm ci`` (when node_modules or the vendored smart-search is missing),
  the TypeScript type check, the vitest tests with the real ``@bilgrami/smart-search``
  required, ``npx tsx search-delta-redis.ts`` through SmartSearch against the live API
  (and a copy of it without the library, which must say so and answer the same), and
  the principal-scoped cache against the live API (policy edit, reseed). Skipped only
  when npm is not on PATH.
- docker/docker-compose.yml, docker/Dockerfile, .env.example and environment.yml agree
  with the package (services, volumes, variables, extras).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
import yaml

from govlab.config import Settings
from govlab.generators import get_dataset
from govlab.lab.client import ApiError, GovlabClient, LocalServer, ensure_server
from govlab.policy import Principal, compile_access, load_policy, validate_policy
from govlab.policy.compile import to_arrow
from govlab.service.identity import mint_token
from govlab.service.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "python"
JS_DIR = ROOT / "examples" / "js"
DOCKER = ROOT / "docker"
# Variables that would point a child process at another data root or Redis, or make a
# tool colour its output (CI machines often set FORCE_COLOR; vitest then writes ANSI codes).
FOREIGN_ENV = (
    "REDIS_URL",
    "GOVLAB_DATA_DIR",
    "DELTA_DIR",
    "PARQUET_DIR",
    "ICEBERG_DIR",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PRINCIPALS = {
    "clinician (id=C007)": Principal("clinician", {"id": "C007"}),
    "business_user": Principal("business_user", {}),
}
ROWS = 600

sys.path.insert(0, str(EXAMPLES))
from _showcase import build_admissions  # noqa: E402


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    return {**env, "NO_COLOR": "1", **extra}


def run(args: list[str], cwd: Path = ROOT, timeout: float = 120, **env: str) -> str:
    """Run a command; fail the test with its output when it exits non-zero.

    The output comes back without ANSI escapes, so assertions read the words a user sees
    whatever colour settings the machine forces on the tool.
    """
    done = subprocess.run(
        args, cwd=cwd, env=child_env(**env), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}\n--- stdout\n{done.stdout[-4000:]}"
        f"\n--- stderr\n{done.stderr[-4000:]}"
    )
    return ANSI_ESCAPE.sub("", done.stdout)


def summary(output: str) -> dict[str, tuple[int, list[str]]]:
    """``label: N rows visible; masked: a, b`` lines -> {label: (N, [a, b])}."""
    found = re.findall(r"^  (.+?): (\d+) rows visible; masked: (.*)$", output, re.MULTILINE)
    return {label: (int(n), [] if m == "(none)" else m.split(", ")) for label, n, m in found}


def expected(table: Any) -> dict[str, tuple[int, list[str]]]:
    """What each principal may see of ``table`` under the shipped policy."""
    spec = get_dataset("healthcare")
    policy = validate_policy(load_policy(ROOT / "governance" / "healthcare.yaml"), spec)
    result = {}
    for label, principal in PRINCIPALS.items():
        plan = compile_access(policy, spec, principal)
        result[label] = (table.filter(to_arrow(plan.row_filter)).num_rows, sorted(plan.masks))
    return result


# ---------------------------------------------------------------------- in-process
@pytest.mark.parametrize(
    ("script", "marker"),
    [("load_parquet_example.py", "wrote"), ("load_iceberg_example.py", "with PyIceberg")],
)
def test_load_examples_show_rls_and_cls(script: str, marker: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = run(
        [sys.executable, str(EXAMPLES / script), "--data-dir", str(data_dir), "--rows", str(ROWS)]
    )
    table = build_admissions(ROWS)
    assert marker in out
    assert f"registered {table.num_rows} rows" in out
    seen = summary(out)
    assert seen == expected(table)
    (clinician_rows, clinician_masks), (business_rows, business_masks) = seen.values()
    assert 0 < clinician_rows < business_rows < table.num_rows  # RLS differs by role
    assert set(clinician_masks) != set(business_masks)  # so does CLS
    assert "masked only for business_user: name, notes" in out
    assert "The same record (patient_id=" in out
    # No raw identifier masked for both roles reaches the output.
    for column in ("ssn", "insurance_id"):
        raw = [v for v in table.column(column).to_pylist() if v]
        assert not [v for v in raw if v in out], f"raw {column} printed"
    # The example registered a real table in the data root.
    fmt = "parquet" if "parquet" in script else "iceberg"
    assert (data_dir / fmt).is_dir()


def test_load_example_registers_an_existing_parquet_dataset(tmp_path: Path) -> None:
    import load_parquet_example  # examples/python is on sys.path (above)

    table = build_admissions(200)
    source = tmp_path / "mine"
    load_parquet_example.write_plain_parquet(table, source)
    out = run(
        [
            sys.executable,
            str(EXAMPLES / "load_parquet_example.py"),
            "--source",
            str(source),
            "--data-dir",
            str(tmp_path / "data"),
            "-q",
            "asthma",
        ]
    )
    assert f"registered {table.num_rows} rows" in out
    asthma = table.filter(pc.equal(table["condition"], "asthma"))
    counts = {label: n for label, (n, _) in expected(asthma).items()}
    assert {label: n for label, (n, _) in summary(out).items()} == counts


# ---------------------------------------------------------------------- live API
@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """``govlab serve`` (API + worker + embedded Redis) on an empty data root."""
    data_dir = tmp_path_factory.mktemp("live-api")
    url = f"http://127.0.0.1:{free_port()}"
    log = data_dir / "serve.log"
    with pytest.MonkeyPatch.context() as mp:
        for name in FOREIGN_ENV:
            mp.delenv(name, raising=False)
        server: LocalServer = ensure_server(url, data_dir=str(data_dir), log_path=str(log))
    assert server.process is not None, f"something else already answers at {url}"
    try:
        yield url, Settings(data_dir=data_dir)
    finally:
        server.stop()


def ensure_seeded(url: str, settings: Settings) -> None:
    client = GovlabClient.for_role("admin", base_url=url, settings=settings)  # can_seed
    try:
        client.validate("healthcare", "delta")
    except ApiError as exc:
        assert exc.status == 404, exc
        record = client.wait(client.seed("healthcare", "tiny", "delta"), timeout_s=120)
        assert record["status"] == "completed", record
    finally:
        client.close()


def test_search_delta_redis_seeds_through_the_api_and_compares_roles(
    live_api: tuple[str, Settings],
) -> None:
    url, settings = live_api
    out = run(
        [
            sys.executable,
            str(EXAMPLES / "search_delta_redis.py"),
            "--url",
            url,
            "--data-dir",
            str(settings.data_dir),
        ]
    )
    assert "not found: seeding size tiny through the API" in out
    assert "seeded 1000 rows" in out
    assert re.search(
        r"clinician \(id=C007\): table version \d+, policy \w+, cache miss then hit", out
    )
    seen = summary(out)
    assert list(seen) == list(PRINCIPALS)
    (clinician_rows, clinician_masks), (business_rows, business_masks) = seen.values()
    assert 0 < clinician_rows < business_rows < 1000
    assert "name" in business_masks and "name" not in clinician_masks
    assert "The same record (patient_id=" in out


def test_search_delta_redis_exits_non_zero_without_an_api(tmp_path: Path) -> None:
    script = str(EXAMPLES / "search_delta_redis.py")
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, script, "--url", url, "--data-dir", str(tmp_path)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no govlab API" in done.stderr


def test_search_delta_redis_exits_non_zero_with_a_foreign_secret(
    live_api: tuple[str, Settings],
) -> None:
    url, _ = live_api
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "search_delta_redis.py"), "--url", url],
        env=child_env(GOVLAB_SECRET="not-the-servers-secret-0123456789abcdef"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "HTTP 401" in done.stderr


# ---------------------------------------------------------------------- JS example
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not on PATH")
SMART_SEARCH = JS_DIR / "node_modules" / "@bilgrami" / "smart-search" / "package.json"
# The example's own modules: what a user copies into a project that lacks smart-search.
JS_MODULES = (
    "search-delta-redis.ts",
    "delta-api-provider.ts",
    "principal-cache.ts",
    "smart-search-bridge.ts",
    "smart-search-types.ts",
)
TSX = ["npx", "--no-install", "tsx", "search-delta-redis.ts"]
FAILED_401 = re.compile(r"^FAILED \(status 401\): delta-api: HTTP 401: \S.*$")


@pytest.fixture(scope="module")
def js_ready() -> Path:
    """examples/js after ``npm ci``, which installs the real smart-search (an optional
    dependency on the build vendored in examples/js/vendor/): the tests below need it."""
    if not (JS_DIR / "node_modules" / ".bin" / "vitest").exists() or not SMART_SEARCH.exists():
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, timeout=600)
    assert SMART_SEARCH.exists(), "npm ci did not install @bilgrami/smart-search from vendor/"
    assert json.loads(SMART_SEARCH.read_text())["version"] == "3.1.0"
    return JS_DIR


def run_js(args: list[str], cwd: Path, require_smart_search: bool) -> subprocess.CompletedProcess:
    """The JS example, whatever its exit status, with its output free of ANSI escapes."""
    done = subprocess.run(
        args,
        cwd=cwd,
        env=child_env(GOVLAB_REQUIRE_SMART_SEARCH="1" if require_smart_search else "0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    done.stdout, done.stderr = ANSI_ESCAPE.sub("", done.stdout), ANSI_ESCAPE.sub("", done.stderr)
    return done


def js_tokens(settings: Settings) -> dict[str, str]:
    secret = settings.secret_key()
    return {
        "clinician": mint_token(secret, "clinician", {"id": "C007"}, "js-test"),
        "business": mint_token(secret, "business_user", {}, "js-test"),
        "admin": mint_token(secret, "admin", {}, "js-test"),
    }


@needs_npm
def test_js_typechecks_and_its_tests_pass_with_the_real_smart_search(js_ready: Path) -> None:
    run(["npx", "--no-install", "tsc", "--noEmit"], cwd=js_ready)
    out = run(
        ["npx", "--no-install", "vitest", "run"], cwd=js_ready, GOVLAB_REQUIRE_SMART_SEARCH="1"
    )
    assert re.search(r"Tests\s+\d+ passed", out), out[-2000:]
    assert "failed" not in out and "skipped" not in out, out[-2000:]


@needs_npm
def test_js_example_searches_the_live_api_through_smart_search_as_two_principals(
    js_ready: Path, live_api: tuple[str, Settings]
) -> None:
    url, settings = live_api
    ensure_seeded(url, settings)
    tokens = js_tokens(settings)

    out = run(
        [*TSX, "--url", url, "--token", tokens["clinician"], "--query", "asthma"],
        cwd=js_ready,
        GOVLAB_REQUIRE_SMART_SEARCH="1",
    )
    assert "via SmartSearch 3.1.0 (@bilgrami/smart-search; no client cache)" in out
    assert "as role clinician" in out
    assert "maskedFields: address, dob, insurance_id, ssn" in out

    # Through the config file, with the URL and token from the environment, as JSON.
    raw = run(
        [*TSX, "--config", "smart-search.config.json", "--limit", "7", "--offset", "3", "--json"],
        cwd=js_ready,
        GOVLAB_API_URL=url,
        GOVLAB_TOKEN=tokens["business"],
        GOVLAB_REQUIRE_SMART_SEARCH="1",
    )
    answer = json.loads(raw)
    assert answer["via"] == "SmartSearch" and answer["smartSearchVersion"] == "3.1.0"
    assert answer["health"]["status"] == "healthy"
    assert answer["health"]["isConnected"] and answer["health"]["isSearchAvailable"]
    assert answer["recovered"] == []
    page = answer["page"]
    assert page["role"] == "business_user" and page["total"] > 10 and page["totalExact"]
    results = answer["results"]
    assert len(results) == 7
    assert [int(r["id"]) for r in results] == sorted(int(r["id"]) for r in results)
    for result in results:
        meta = result["metadata"]
        assert "name" in meta["maskedFields"] and meta["row"]["name"] == result["title"] == "*****"
        assert meta["row"]["region"] in ("NE", "SE", "MW")
        assert meta["total"] == page["total"]  # every result carries its page's summary

    # The same window straight from the API: offset 3, limit 7 are rows 4..10.
    api = GovlabClient(url, tokens["business"])
    try:
        first_ten = api.search("healthcare", "delta", page_size=10)["items"]
    finally:
        api.close()
    assert [str(r["patient_id"]) for r in first_ten[3:10]] == [r["id"] for r in results]


@needs_npm
def test_js_example_reports_an_api_error_once_with_its_status(
    js_ready: Path, live_api: tuple[str, Settings]
) -> None:
    url, _ = live_api
    done = run_js([*TSX, "--url", url, "--token", "forged"], js_ready, require_smart_search=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert FAILED_401.match(lines[-1]), done.stderr
    # smart-search logs its failed attempts (its own behaviour), each on one line.
    assert not [line for line in lines if line.lstrip().startswith("at ")], done.stderr
    assert done.stdout == ""


@needs_npm
def test_js_example_without_smart_search_says_so_and_answers_the_same(
    js_ready: Path, live_api: tuple[str, Settings], tmp_path: Path
) -> None:
    """A copy of the example in a project without smart-search, as a user may have it."""
    url, settings = live_api
    ensure_seeded(url, settings)
    for name in JS_MODULES:
        shutil.copy(JS_DIR / name, tmp_path / name)
    bare = [str(JS_DIR / "node_modules" / ".bin" / "tsx"), "search-delta-redis.ts"]
    args = ["--url", url, "--token", js_tokens(settings)["clinician"], "-q", "asthma"]

    out = run([*bare, *args], cwd=tmp_path, GOVLAB_REQUIRE_SMART_SEARCH="0")
    assert "via DeltaApiProvider directly: @bilgrami/smart-search is not installed here" in out
    assert "as role clinician" in out
    without = json.loads(
        run([*bare, *args, "--json"], cwd=tmp_path, GOVLAB_REQUIRE_SMART_SEARCH="0")
    )
    with_it = json.loads(run([*TSX, *args, "--json"], cwd=js_ready))
    assert (without["via"], with_it["via"]) == ("provider", "SmartSearch")
    rows = [
        [(r["id"], r["title"], r["metadata"]["row"]) for r in a["results"]]
        for a in (without, with_it)
    ]
    assert rows[0] == rows[1] and rows[0]
    assert {**without["page"], "cache": None} == {**with_it["page"], "cache": None}

    # The same failure, word for word.
    forged = ["--url", url, "--token", "forged"]
    failed = [
        run_js([*bare, *forged], tmp_path, require_smart_search=False),
        run_js([*TSX, *forged], js_ready, require_smart_search=True),
    ]
    assert [f.returncode for f in failed] == [1, 1]
    last = [f.stderr.strip().splitlines()[-1] for f in failed]
    assert FAILED_401.match(last[0]) and last[0] == last[1]

    # Where smart-search is required, its absence is an error, not a quiet fallback.
    required = run_js([*bare, *args], tmp_path, require_smart_search=True)
    assert required.returncode == 2
    assert "GOVLAB_REQUIRE_SMART_SEARCH=1 but @bilgrami/smart-search is not installed" in (
        required.stderr
    )


@needs_npm
def test_js_principal_scoped_cache_against_the_live_api(
    js_ready: Path, live_api: tuple[str, Settings]
) -> None:
    """Two principals share one cache through the real SmartSearch; a policy edit and a
    reseed (done by the vitest file, through the API) are not served stale. Last of the
    live tests: it reseeds the table (same seed, new version) and puts the policy back."""
    url, settings = live_api
    ensure_seeded(url, settings)
    out = run(
        ["npx", "--no-install", "vitest", "run", "--config", "vitest.live.config.ts"],
        cwd=js_ready,
        timeout=300,
        GOVLAB_LIVE_URL=url,
        GOVLAB_LIVE_TOKENS=json.dumps(js_tokens(settings)),
    )
    assert re.search(r"Tests\s+1 passed", out), out[-3000:]
    assert "failed" not in out and "skipped" not in out, out[-3000:]


# ---------------------------------------------------------------------- deployment files
PYTHON_SERVICES = ("api", "worker", "lab")


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def extras() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(pyproject["project"]["optional-dependencies"])


def test_compose_file_runs_redis_7_the_api_a_worker_and_jupyterlab_on_one_data_volume() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    cluster = {n for n, svc in services.items() if "cluster" in svc.get("profiles", [])}
    assert set(services) - cluster == {"redis", *PYTHON_SERVICES}  # the Ray nodes: opt-in
    assert services["redis"]["image"].startswith("redis:7")
    assert "govlab-data" in compose["volumes"]
    for name in PYTHON_SERVICES:
        service = services[name]
        build = service["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        assert "govlab-data:/data" in service["volumes"]
        assert service["environment"]["GOVLAB_DATA_DIR"] == "/data"
        assert service["environment"]["REDIS_URL"].endswith("redis://redis:6379/0}")
        assert [f["path"] for f in service["env_file"]] == ["../.env"]
    assert len({json.dumps(services[n]["build"], sort_keys=True) for n in PYTHON_SERVICES}) == 1
    api = " ".join(services["api"]["command"])
    assert "govlab serve --host 0.0.0.0" in api and "--workers 0" in api
    assert "PORT_DELTA_API" in api and "PORT_DELTA_API" in services["api"]["ports"][0]
    assert services["worker"]["command"] == ["govlab", "worker"]
    lab = " ".join(services["lab"]["command"])
    assert "jupyter lab" in lab and "PORT_WEB" in lab and "PORT_WEB" in services["lab"]["ports"][0]
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_package_with_service_and_lab_extras() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    installed = re.search(r'pip install -e "\.\[([a-z,]+)\]"', text)
    assert installed and set(installed.group(1).split(",")) == {"service", "lab"} <= extras()
    assert "GOVLAB_DATA_DIR=/data" in text


def test_env_example_lists_the_variables_and_govlab_honours_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from govlab.config import load_secret
    from govlab.service.redis_server import redis_url

    env = env_example()
    wanted = {"REDIS_URL", "DELTA_DIR", "PARQUET_DIR", "ICEBERG_DIR", "PORT_WEB"}
    assert wanted | {"PORT_DELTA_API", "GOVLAB_SECRET", "GOVLAB_DATA_DIR"} <= set(env)
    for name, value in env.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.data_dir == Path(env["GOVLAB_DATA_DIR"])
    for fmt in ("delta", "parquet", "iceberg"):
        assert settings.format_dir(fmt) == Path(env[f"{fmt.upper()}_DIR"])
    assert redis_url(settings) == env["REDIS_URL"]
    monkeypatch.setenv("GOVLAB_SECRET", "from-the-env-file-0123456789abcdef")
    assert load_secret(tmp_path) == b"from-the-env-file-0123456789abcdef"
    compose = (DOCKER / "docker-compose.yml").read_text()
    assert "${PORT_WEB:-" in compose and "${PORT_DELTA_API:-" in compose


def test_conda_environment_matches_the_pip_install() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "govlab"
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    match = re.fullmatch(r"-e \.\[([a-z,]+)\]", pip[0])
    assert match and set(match.group(1).split(",")) == extras()
