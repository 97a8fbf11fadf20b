"""A small typed client for the govlab HTTP API, used by the widgets, the notebooks and
the Python examples, plus a helper that starts a local server when none is running.

Tokens are minted from the deployment secret on this machine (``for_role``), the same
way ``govlab token`` does; a remote client passes a token it was given instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from govlab.config import DEFAULT_API_URL, Settings, api_url
from govlab.service.identity import mint_token

#: Where the API is when ``GOVLAB_API_URL`` is unset (the one name for it everywhere).
DEFAULT_URL = DEFAULT_API_URL
START_TIMEOUT_S = 60.0


def describe_total(page: dict[str, Any]) -> str:
    """``1,234`` or ``10,000+`` when the total is a lower bound."""
    exact = page.get("totalExact", True)
    return f"{page['total']:,}" + ("" if exact else "+")


def token_args(role: str, attrs: dict[str, Any] | None = None, ttl: str = "1h") -> list[str]:
    """The arguments of ``govlab token`` for this principal (attribute values as JSON)."""
    args = ["token", "--role", role]
    for key, value in (attrs or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        args += ["--attr", f"{key}={text}"]
    return [*args, "--ttl", ttl]


def token_command(
    role: str,
    attrs: dict[str, Any] | None = None,
    ttl: str = "1h",
    env: dict[str, str] | None = None,
) -> str:
    """The ``govlab token`` command line that mints this principal's token (for a JS or
    curl client), with the environment it needs; every part shell-quoted."""
    import shlex

    prefix = [f"{k}={shlex.quote(v)}" for k, v in (env or {}).items()]
    return " ".join([*prefix, "govlab", shlex.join(token_args(role, attrs, ttl))])


def describe_failure(exc: BaseException, base_url: str | None = None) -> str:
    """What went wrong, in words a learner can act on (never a repr or a traceback)."""
    where = f"The API at {base_url}" if base_url else "The API"
    if isinstance(exc, ApiError):
        return _describe_refusal(exc)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"{where} is not answering; start it with `make serve` (or run the lab again)."
    if isinstance(exc, httpx.TimeoutException):
        return f"{where} did not answer in time; it may be busy. Try again in a moment."
    if isinstance(exc, httpx.HTTPError):
        return f"{where} could not be reached ({type(exc).__name__})."
    return f"Something went wrong in the lab: {type(exc).__name__}: {exc}"


_REFUSALS = {
    401: "The API did not accept the lab's token",
    403: "Access denied",
    404: "Not found",
    422: "The API rejected the request",
    503: "The service is degraded",
}


def _describe_refusal(exc: ApiError) -> str:
    headline = _REFUSALS.get(exc.status, "The API answered with an error")
    return f"{headline} (HTTP {exc.status}): {exc.detail}"


class ApiError(Exception):
    """A non-2xx answer: the status and the server's message (never a traceback)."""

    def __init__(self, status: int, detail: str, reasons: list[Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.reasons = reasons or []


@dataclass
class GovlabClient:
    base_url: str = field(default_factory=api_url)
    token: str | None = None
    timeout_s: float = 30.0
    settings: Settings | None = field(default=None, repr=False)
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout_s)

    @classmethod
    def for_role(
        cls,
        role: str,
        attrs: dict[str, Any] | None = None,
        base_url: str | None = None,
        settings: Settings | None = None,
        ttl_s: int = 3600,
    ) -> GovlabClient:
        settings = settings or Settings.from_env()
        token = mint_token(settings.secret_key(), role, attrs or {}, f"{role}-lab", ttl_s)
        return cls(base_url or api_url(), token, settings=settings)

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        merged = {**self._headers(), **(headers or {})}
        response = self._http.request(method, path, headers=merged, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:200]}
            raise ApiError(response.status_code, str(body.get("detail")), body.get("reasons"))
        return response

    # ------------------------------------------------------------------ endpoints
    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health").json()

    def seed(
        self,
        dataset: str,
        size: str = "tiny",
        format: str = "delta",
        seed: int = 42,
        governance_config: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"dataset": dataset, "size": size, "format": format, "seed": seed}
        if governance_config is not None:
            body["governanceConfig"] = governance_config
        return self._request("POST", "/seed", json=body).json()["jobId"]

    def progress(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", "/progress", params={"jobId": job_id}).json()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/jobs/{job_id}").json()

    def wait(self, job_id: str, timeout_s: float = 600, poll_s: float = 0.2) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.progress(job_id)
            if record["status"] in ("completed", "failed", "cancelled"):
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {record['status']} after {timeout_s} s")
            time.sleep(poll_s)

    def search(
        self,
        dataset: str,
        format: str = "delta",
        q: str = "",
        page: int = 1,
        page_size: int = 20,
        sort: str | None = None,
        exact_total: bool = False,
    ) -> dict[str, Any]:
        """One masked page. ``total`` is exact up to the server's count limit, then a
        lower bound (``totalExact`` false) unless ``exact_total`` asks for every match."""
        params: dict[str, Any] = {
            "dataset": dataset,
            "format": format,
            "q": q,
            "page": page,
            "pageSize": page_size,
        }
        if sort:
            params["sort"] = sort
        if exact_total:
            params["exactTotal"] = "true"
        return self._request("GET", "/search", params=params).json()

    def validate(self, dataset: str, format: str = "delta") -> dict[str, Any]:
        params = {"dataset": dataset, "format": format}
        return self._request("GET", "/validate", params=params).json()

    def policy(self, dataset: str) -> dict[str, Any]:
        return self._request("GET", f"/policies/{dataset}").json()

    def put_policy(self, dataset: str, yaml_text: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/yaml"}
        return self._request(
            "PUT", f"/policies/{dataset}", content=yaml_text, headers=headers
        ).json()

    def detokenize(self, dataset: str, tokens: list[str], column: str | None = None) -> list[str]:
        body: dict[str, Any] = {"dataset": dataset, "tokens": tokens}
        if column is not None:
            body["column"] = column
        return self._request("POST", "/detokenize", json=body).json()["values"]

    def audit(self, dataset: str, limit: int = 100) -> list[dict[str, Any]]:
        params = {"dataset": dataset, "limit": limit}
        return self._request("GET", "/audit", params=params).json()["entries"]

    # ------------------------------------------------------------------ the classroom's
    def table_info(self, dataset: str, format: str = "delta") -> dict[str, Any]:
        """``{rows, tableVersion, size}`` of the live table (roles with ``can_seed``)."""
        params = {"format": format}
        return self._request("GET", f"/tables/{dataset}", params=params).json()

    def whatif(
        self,
        dataset: str,
        yaml_text: str,
        format: str = "delta",
        attrs: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Per role, the saved policy against a draft: rows, bound filter, masks (editors)."""
        body = {"yaml": yaml_text, "format": format, "attrs": attrs or {}}
        return self._request("POST", f"/policies/{dataset}/whatif", json=body).json()

    def reset_policy(self, dataset: str) -> dict[str, Any]:
        """Store the shipped policy as the next revision (editors)."""
        return self._request("POST", f"/policies/{dataset}/reset").json()

    def shipped_policy(self, dataset: str) -> dict[str, Any]:
        """``{yaml, live}``: the shipped text and whether it is the live policy."""
        return self._request("GET", f"/policies/{dataset}/shipped").json()


StatusFn = Callable[[str, str], None]
"""(phase, message): ``checking``, ``reused``, ``starting``, ``waiting``, ``ready`` or
``failed``, and a sentence for a person."""


@dataclass
class LocalServer:
    """The API at ``url``; ``process`` is the ``govlab serve`` child this process started
    (None when one was already answering). The child ends with this process."""

    url: str
    process: subprocess.Popen[bytes] | None
    startup_s: float = 0.0
    log_path: str | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _quiet(phase: str, message: str) -> None:
    """The default status callback: nothing to show."""


def serve_command(url: str, data_dir: str | None = None) -> list[str]:
    """argv of a ``govlab serve`` at ``url`` that ends when this process ends."""
    host, _, port = url.removeprefix("http://").partition(":")
    args = [sys.executable, "-m", "govlab.lab.serve_child", "--parent-pid", str(os.getpid())]
    args += ["serve", "--host", host, "--port", port or "80", "--log-level", "warning"]
    return args + (["--data-dir", data_dir] if data_dir else [])


def ensure_server(
    url: str | None = None,
    data_dir: str | None = None,
    log_path: str | None = None,
    on_status: StatusFn | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> LocalServer:
    """Reuse a server answering at url (default ``GOVLAB_API_URL``), else start one there.

    The one started is tied to this process (``govlab.lab.serve_child``): when this
    process ends, however it ends, the API, its worker and its Redis end too.
    ``on_status`` hears each phase of the start-up (about once a second while waiting).
    """
    url = url or api_url()
    status = on_status or _quiet
    status("checking", f"Looking for the govlab API at {url} ...")
    if is_up(url):
        status("reused", f"The API at {url} is answering (already running).")
        return LocalServer(url, None, log_path=log_path)
    status("starting", f"Starting the API, a seeding worker and Redis at {url} ...")
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            serve_command(url, data_dir),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()
    server = LocalServer(url, process, log_path=log_path)
    server.startup_s = _wait_up(server, timeout_s, status)
    status("ready", f"The API at {url} answered after {server.startup_s:.1f} s.")
    return server


def _wait_up(server: LocalServer, timeout_s: float, status: StatusFn) -> float:
    """Seconds until ``/health`` answers; RuntimeError if the child exits or times out."""
    started = time.monotonic()
    told = 0
    assert server.process is not None
    while not is_up(server.url):
        elapsed = time.monotonic() - started
        where = f" (log: {server.log_path})" if server.log_path else ""
        if server.process.poll() is not None:
            message = f"govlab serve exited with {server.process.returncode}{where}"
            status("failed", message)
            raise RuntimeError(message)
        if elapsed > timeout_s:
            server.stop()
            message = f"govlab serve did not answer at {server.url} within {timeout_s:.0f} s"
            status("failed", message + where)
            raise RuntimeError(message)
        if int(elapsed) > told:
            told = int(elapsed)
            status("waiting", f"Waiting for the API at {server.url}: {told} s ...")
        time.sleep(0.2)
    return time.monotonic() - started
