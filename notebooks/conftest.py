"""For nbval runs of the notebooks: one private API server for the stepper notebook.

``launch()`` reuses the server at GOVLAB_API_URL, so pointing it at a server this run
owns (and stops) keeps the notebook from starting one that outlives the tests. This
runs in pytest_configure because nbval starts each notebook's kernel, which inherits
this environment, before any fixture would.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from govlab.lab.client import LocalServer, ensure_server
from govlab.service.redis_server import free_port

_server: LocalServer | None = None
_data_dir: str | None = None
_saved: dict[str, str | None] = {}
_ENV = ("GOVLAB_API_URL", "GOVLAB_DATA_DIR", "GOVLAB_SECRET", "REDIS_URL")


def pytest_configure(config: pytest.Config) -> None:
    global _server, _data_dir
    if not config.getoption("--nbval", default=False):
        return
    _saved.update({name: os.environ.get(name) for name in _ENV})
    _data_dir = tempfile.mkdtemp(prefix="govlab-nbval-")
    os.environ.pop("REDIS_URL", None)
    os.environ["GOVLAB_DATA_DIR"] = _data_dir
    os.environ["GOVLAB_SECRET"] = "nbval-stepper-secret-0123456789abcdef"
    url = f"http://127.0.0.1:{free_port()}"
    os.environ["GOVLAB_API_URL"] = url
    _server = ensure_server(url, data_dir=_data_dir)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _server is not None:
        _server.stop()
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if _data_dir is not None:
        shutil.rmtree(_data_dir, ignore_errors=True)
