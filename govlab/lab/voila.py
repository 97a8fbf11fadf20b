"""Serve the stepper notebook with Voila: the command ``make ui`` runs, and a handle for tests.

``voila_command()`` is the one place the Voila options live (address, port, kernel
culling); ``start_voila()`` runs it in the background and waits until it answers;
``govlab ui`` runs it in the foreground.

Voila runs through ``main()`` here, not its own script, for one fix: when a tab closes,
Voila 0.5's page asks the server to shut its kernel down with the ``_xsrf`` value of a
cookie that no Voila page ever sets, and the server answers 403 (voila-dashboards/voila
#1458), so every closed tab left a kernel (and what it started) until culling.
``set_xsrf_cookie`` reads the XSRF token while the page is served, which makes tornado
set that cookie; the shutdown request then carries it and is accepted.

The notebook's kernel inherits the Voila process's environment, so ``GOVLAB_API_URL``,
``GOVLAB_DATA_DIR`` and ``GOVLAB_SECRET`` given here reach ``govlab.lab.widgets.launch()``
(which reuses the API at that URL, or starts ``govlab serve`` there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "stepper.ipynb"
DEFAULT_IP = "127.0.0.1"
DEFAULT_PORT = 8866
#: A kernel idle this long is shut down (checked every CULL_INTERVAL_S): an abandoned
#: browser tab does not keep a kernel and its threads alive for ever.
CULL_IDLE_TIMEOUT_S = 600
CULL_INTERVAL_S = 60
START_TIMEOUT_S = 60.0
#: A static file Voila serves without starting a kernel (GET / runs the notebook).
READY_PATH = "/voila/static/voila.js"


def voila_command(
    notebook: str | Path = NOTEBOOK,
    port: int = DEFAULT_PORT,
    ip: str = DEFAULT_IP,
    cull_idle_timeout_s: int = CULL_IDLE_TIMEOUT_S,
    cull_interval_s: int = CULL_INTERVAL_S,
    extra: Sequence[str] = (),
) -> list[str]:
    """argv for Voila serving ``notebook`` at ``ip:port``, kernel culling on, no browser."""
    return [
        sys.executable,
        "-m",
        "govlab.lab.voila",
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={ip}",
        "--no-browser",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_timeout_s}",
        f"--MappingKernelManager.cull_interval={cull_interval_s}",
        *extra,
    ]


def is_up(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + READY_PATH, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class VoilaServer:
    """A Voila process started by ``start_voila`` (in its own process group)."""

    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Voila then shuts its kernels down), SIGKILL to the group if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def start_voila(
    port: int = DEFAULT_PORT,
    ip: str = DEFAULT_IP,
    env: Mapping[str, str] | None = None,
    log_path: str | Path | None = None,
    notebook: str | Path = NOTEBOOK,
    timeout_s: float = START_TIMEOUT_S,
    **options: int,
) -> VoilaServer:
    """Start Voila in the background and wait until it answers; ``env`` adds variables."""
    url = f"http://{ip}:{port}/"
    child_env = {**os.environ, **(env or {})}
    log = open(log_path or os.devnull, "ab")  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            voila_command(notebook, port, ip, **options),
            env=child_env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        log.close()
    server = VoilaServer(url, process)
    deadline = time.monotonic() + timeout_s
    while not is_up(url):
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode} (log: {log_path})")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"voila did not answer at {url} within {timeout_s:.0f} s")
        time.sleep(0.2)
    return server


def set_xsrf_cookie(handler: Any, notebook: Any, cwd: str) -> Any:
    """Voila's prelaunch hook: reading ``xsrf_token`` sets the ``_xsrf`` cookie on the
    page's response, which the page's kernel shutdown on ``beforeunload`` needs."""
    _ = handler.xsrf_token
    return notebook


def main(argv: Sequence[str] | None = None) -> None:
    """Voila with ``set_xsrf_cookie`` as its prelaunch hook (arguments as Voila's)."""
    from traitlets.config import Config
    from voila.app import Voila

    config = Config()
    config.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie
    Voila.launch_instance(argv=list(argv) if argv is not None else None, config=config)


def serve_foreground(port: int, ip: str, notebook: str, extra: Sequence[str]) -> int:
    """``govlab ui``: Voila in this process (it replaces the govlab process)."""
    command = voila_command(notebook, port, ip, extra=list(extra))
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    main()
