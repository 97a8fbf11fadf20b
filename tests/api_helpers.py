"""Helpers for the API tests: tokens, a client on a real Redis, a real worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient

from govlab.config import Settings
from govlab.service.api import create_app
from govlab.service.identity import mint_token
from tests.conftest import TEST_SECRET

ATTRS_NE = {"allowed_regions": ["NE"]}
ATTRS_SW = {"allowed_regions": ["SW"]}


def token(
    role: str, attrs: dict[str, Any] | None = None, ttl_s: int = 600, secret: str = TEST_SECRET
) -> str:
    return mint_token(secret.encode(), role, attrs or {}, f"{role}-test", ttl_s)


def auth(role: str, attrs: dict[str, Any] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, attrs)}"}


def make_client(settings: Settings, url: str, demo_auth: bool = False) -> TestClient:
    return TestClient(create_app(settings, url, demo_auth=demo_auth), raise_server_exceptions=False)


@contextmanager
def worker(settings: Settings, url: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``govlab worker`` process (RQ forks a work horse per job)."""
    env = {**os.environ, "REDIS_URL": url, "GOVLAB_DATA_DIR": str(settings.data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "govlab.cli", "worker"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        kill_group(proc)


def wait_healthy(base_url: str, timeout_s: float = 60) -> None:
    """Until a served API answers ``/health`` (bounded in time)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"no answer from {base_url}/health in {timeout_s} s")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def poll_until(
    client: TestClient, job_id: str, headers: dict[str, str], done: set[str], timeout_s: float = 120
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = client.get("/progress", params={"jobId": job_id}, headers=headers).json()
        seen.append(record)
        if record["status"] in done:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not reach {done}: last {seen[-1]}")
