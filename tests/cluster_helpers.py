"""Real servers for the distributed tests, on 127.0.0.1 only, started and stopped here:
a Ray head of one (``ray start --head --block``: 2 CPUs, a bounded object store, no
dashboard, token auth) and an S3-compatible server (moto's, in a thread).

Ray binds to the machine's interface address unless told it is not a cluster node:
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes it resolve the node address to loopback
(as it does on a laptop), so every Ray server listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from govlab.service.redis_server import free_port

RAY_START_TIMEOUT_S = 90
S3_START_TIMEOUT_S = 20
POLL_S = 0.25
OBJECT_STORE_BYTES = 256 * 1024 * 1024
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # node address = loopback
    "RAY_USAGE_STATS_ENABLED": "0",
    "DO_NOT_TRACK": "1",
    "DAFT_ANALYTICS_ENABLED": "0",
    "SCARF_NO_ANALYTICS": "true",
    "DAFT_PROGRESS_BAR": "0",
}
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "govlab-test", "AWS_SECRET_ACCESS_KEY": "govlab-test"}


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited early (code {proc.returncode})")
        with socket.socket() as sock:
            sock.settimeout(POLL_S)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL_S)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s")


@dataclass
class RayHead:
    proc: subprocess.Popen[bytes]
    address: str  # ray://127.0.0.1:<client port>
    env: dict[str, str]  # what a driver needs (token auth, loopback)
    temp_dir: Path

    def client_server_logs(self, tail: int = 1500) -> str:
        """The end of each driver's client server log, for a failed test's message (the
        proxy's own error only names the file)."""
        logs = sorted(self.temp_dir.glob("session_latest/logs/ray_client_server*.err"))
        texts = (log.read_text(errors="replace")[-tail:] for log in logs)
        return "".join(f"\n== {log.name}\n{text}" for log, text in zip(logs, texts, strict=True))

    def stop(self) -> None:
        """SIGINT to the head (``ray start --block`` then stops what it started), and
        SIGKILL to its own process group for whatever is left, each wait bounded."""
        for sig, wait_s in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait_s)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
        leftover = group_pids(self.proc.pid)
        if leftover:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def start_ray_head(temp_dir: Path, extra_env: Mapping[str, str]) -> RayHead:
    """A Ray cluster of one on 127.0.0.1 with token auth; the caller stops it."""
    token = secrets.token_hex(32)
    client_port, gcs_port = free_port(), free_port()
    env = {
        **os.environ,
        **LOOPBACK_ENV,
        **extra_env,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
    }
    ray = str(Path(sys.executable).with_name("ray"))
    args = [
        ray, "start", "--head", "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs_port}",
        f"--ray-client-server-port={client_port}",
        "--num-cpus=2",
        f"--object-store-memory={OBJECT_STORE_BYTES}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]  # fmt: skip
    log = (temp_dir.parent / "ray-head.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    head = RayHead(
        proc,
        f"ray://127.0.0.1:{client_port}",
        {**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
        temp_dir,
    )
    try:
        wait_for_port(client_port, RAY_START_TIMEOUT_S, proc)
    except BaseException:
        head.stop()
        raise
    return head


def listening_addresses(pids: set[int]) -> set[str]:
    """Local addresses the given processes listen on (from ``ss``), for the bind test."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10).stdout
    found = set()
    for line in out.splitlines():
        if any(f"pid={pid}," in line for pid in pids):
            local = line.split()[3]
            found.add(local.rsplit(":", 1)[0])
    return found


def group_pids(pgid: int) -> set[int]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid="], capture_output=True, text=True, timeout=10)
    pids = set()
    for line in out.stdout.splitlines():
        pid, group = line.split()
        if int(group) == pgid:
            pids.add(int(pid))
    return pids


@dataclass
class S3Server:
    endpoint: str
    server: object

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]


def start_s3(bucket: str) -> S3Server:
    """moto's S3 on 127.0.0.1 and a free port, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, S3_START_TIMEOUT_S)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
    except BaseException:
        server.stop()
        raise
    return S3Server(endpoint, server)
