"""Every deployment setting govlab reads from the environment, read here and only here.

A value govlab cannot use is a :class:`~govlab.errors.ConfigError` naming the variable
(the CLI prints it as one line and exits 1), never a traceback and never a silent
default. Every path is derived from one data root so a deployment is one directory to
back up; the per-format variables of the original showcase (DELTA_DIR, PARQUET_DIR,
ICEBERG_DIR) override single formats when set.

| variable | meaning | default |
|---|---|---|
| ``GOVLAB_DATA_DIR`` | data root | ``datasets/generated`` |
| ``DELTA_DIR`` / ``PARQUET_DIR`` / ``ICEBERG_DIR`` | one format elsewhere | under the root |
| ``GOVLAB_SECRET`` | deployment secret, >= 32 bytes | generated once, mode 0600 |
| ``GOVLAB_GOVERNANCE_DIR`` | shipped policies | ``governance/`` |
| ``REDIS_URL`` | Redis | an embedded server |
| ``GOVLAB_API_URL`` | where clients find the API | ``http://127.0.0.1:8000`` |
| ``PORT_DELTA_API`` | ``govlab serve`` port | 8000 |
| ``GOVLAB_CACHE_TTL`` | page cache lifetime, seconds | 300 |
| ``GOVLAB_COUNT_LIMIT`` | exact count bound, 0 = always exact | 10,000 |
| ``GOVLAB_CORS_ORIGINS`` | comma-separated origins | localhost |
| ``GOVLAB_DEMO_AUTH`` | ``1``: accept unsigned demo headers | off |
| ``GOVLAB_AUDIT_QUERY`` | ``fingerprint``, ``full`` or ``none`` | ``fingerprint`` |
| ``GOVLAB_JOB_STALE_S`` | a running job silent this long has lost its worker | 120 |
| ``GOVLAB_EXECUTION`` | ``inprocess`` or ``daft`` (the search's backend) | ``inprocess`` |
| ``GOVLAB_RAY_ADDRESS`` | ``ray://host:port``: Daft runs on that Ray cluster | native runner |
| ``GOVLAB_TABLES_URI`` | ``s3://bucket/prefix`` (gs://, az://): Daft's tables | the data root |
| ``GOVLAB_S3_ENDPOINT`` | an S3-compatible endpoint, ``http(s)://host:port`` | AWS |
| ``GOVLAB_S3_REGION`` | the bucket's region | ``us-east-1`` |
| ``GOVLAB_ICEBERG_CATALOG_URI`` | SQL catalog (SQLAlchemy URL) | ``<iceberg dir>/catalog.db`` |
| ``GOVLAB_ICEBERG_WAREHOUSE`` | the Iceberg warehouse URI | ``<iceberg dir>/warehouse`` |

Object-store credentials are never read here: each process, Ray worker included, takes
them from its own environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a
service account), so none is ever put into a Daft plan.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from govlab.errors import ConfigError

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "generated"
DEFAULT_GOVERNANCE_DIR = Path(__file__).resolve().parent.parent / "governance"
SECRET_FILE = "secret.key"
MIN_SECRET_BYTES = 32
# Searches in the default order count matches exactly up to this many, then report a
# lower bound (``totalExact: false``) rather than scan the rest of the table.
DEFAULT_COUNT_LIMIT = 10_000
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8000
DEFAULT_CACHE_TTL_S = 300
DEFAULT_JOB_STALE_S = 120
DEFAULT_ORIGINS = (
    "http://localhost",
    "http://127.0.0.1",
    "http://localhost:8866",
    "http://127.0.0.1:8866",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
)
Execution = Literal["inprocess", "daft"]
EXECUTIONS: tuple[Execution, ...] = ("inprocess", "daft")
OBJECT_STORE_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://", "abfss://")
DEFAULT_S3_REGION = "us-east-1"
# Variables that switch off third-party usage reporting (Daft reports its import and
# each run over the network; Ray its cluster usage). Set before those libraries load.
_QUIET_THIRD_PARTIES = {
    "DO_NOT_TRACK": "1",
    "DAFT_ANALYTICS_ENABLED": "0",
    "SCARF_NO_ANALYTICS": "true",
    "RAY_USAGE_STATS_ENABLED": "0",
}
AuditQuery = Literal["fingerprint", "full", "none"]
AUDIT_QUERY_MODES: tuple[AuditQuery, ...] = ("fingerprint", "full", "none")


def env_text(name: str) -> str | None:
    """The variable's value, or None when unset or blank."""
    raw = os.environ.get(name, "").strip()
    return raw or None


def env_int(name: str, default: int, low: int, high: int, hint: str = "") -> int:
    raw = env_text(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        extra = f" ({hint})" if hint else ""
        raise ConfigError(f"{name} must be a whole number{extra}, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
    return value


def env_flag(name: str) -> bool:
    raw = env_text(name)
    if raw is None or raw.lower() in ("0", "false", "no", "off"):
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    count_limit: int | None = DEFAULT_COUNT_LIMIT  # None: every total is exact
    execution: Execution = "inprocess"  # "daft": pages computed by Daft (govlab.execution)

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        root = data_dir or env_text("GOVLAB_DATA_DIR") or DEFAULT_DATA_DIR
        return cls(
            data_dir=Path(root).expanduser().resolve(),
            count_limit=count_limit_from_env(),
            execution=execution(),
        )

    def format_dir(self, fmt: str) -> Path:
        override = env_text(f"{fmt.upper()}_DIR")
        return Path(override).resolve() if override else self.data_dir / fmt

    @property
    def lock_dir(self) -> Path:
        return self.data_dir / "locks"

    def secret_key(self) -> bytes:
        return load_secret(self.data_dir)


def count_limit_from_env() -> int | None:
    """GOVLAB_COUNT_LIMIT: count exactly up to this many matches; 0 means always exact."""
    limit = env_int("GOVLAB_COUNT_LIMIT", DEFAULT_COUNT_LIMIT, 0, 2**62, "0 is always exact")
    return limit or None


def cache_ttl() -> int:
    return env_int("GOVLAB_CACHE_TTL", DEFAULT_CACHE_TTL_S, 1, 30 * 24 * 3600, "seconds")


def api_port() -> int:
    return env_int("PORT_DELTA_API", DEFAULT_PORT, 1, 65535)


def api_url() -> str:
    url = env_text("GOVLAB_API_URL") or DEFAULT_API_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"GOVLAB_API_URL must start with http:// or https://, not {url!r}")
    return url.rstrip("/")


def redis_url_from_env() -> str | None:
    url = env_text("REDIS_URL")
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    return url


def cors_origins() -> tuple[str, ...]:
    raw = env_text("GOVLAB_CORS_ORIGINS")
    if raw is None:
        return DEFAULT_ORIGINS
    origins = tuple(o.strip() for o in raw.split(",") if o.strip())
    if "*" in origins:
        raise ConfigError("GOVLAB_CORS_ORIGINS must list origins; '*' is not accepted")
    return origins


def demo_auth() -> bool:
    return env_flag("GOVLAB_DEMO_AUTH")


def governance_dir() -> Path:
    return Path(env_text("GOVLAB_GOVERNANCE_DIR") or DEFAULT_GOVERNANCE_DIR)


def audit_query_mode() -> AuditQuery:
    raw = (env_text("GOVLAB_AUDIT_QUERY") or "fingerprint").lower()
    for mode in AUDIT_QUERY_MODES:
        if raw == mode:
            return mode
    raise ConfigError(f"GOVLAB_AUDIT_QUERY must be one of {', '.join(AUDIT_QUERY_MODES)}")


def job_stale_s() -> int:
    return env_int("GOVLAB_JOB_STALE_S", DEFAULT_JOB_STALE_S, 1, 24 * 3600, "seconds")


def execution() -> Execution:
    """GOVLAB_EXECUTION: which backend runs a search (``inprocess`` or ``daft``)."""
    raw = (env_text("GOVLAB_EXECUTION") or "inprocess").lower()
    for mode in EXECUTIONS:
        if raw == mode:
            return mode
    raise ConfigError(f"GOVLAB_EXECUTION must be one of {', '.join(EXECUTIONS)}, not {raw!r}")


def ray_address() -> str | None:
    """GOVLAB_RAY_ADDRESS: a Ray cluster's client address; unset runs Daft in-process."""
    raw = env_text("GOVLAB_RAY_ADDRESS")
    if raw is None:
        return None
    host, _, port = raw.removeprefix("ray://").rpartition(":")
    if not raw.startswith("ray://") or not host or not port.isdigit() or "/" in host:
        raise ConfigError(f"GOVLAB_RAY_ADDRESS must be ray://host:port, not {raw!r}")
    return raw


def tables_uri() -> str | None:
    """GOVLAB_TABLES_URI: the object-store prefix holding ``<format>/<dataset>`` tables."""
    raw = env_text("GOVLAB_TABLES_URI")
    if raw is None:
        return None
    if not raw.startswith(OBJECT_STORE_SCHEMES) or len(raw.split("://", 1)[1].strip("/")) == 0:
        schemes = ", ".join(OBJECT_STORE_SCHEMES)
        raise ConfigError(f"GOVLAB_TABLES_URI must be a bucket URI ({schemes}), not {raw!r}")
    return raw.rstrip("/")


def s3_endpoint() -> str | None:
    raw = env_text("GOVLAB_S3_ENDPOINT")
    if raw is not None and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"GOVLAB_S3_ENDPOINT must start with http:// or https://, not {raw!r}")
    return raw.rstrip("/") if raw else None


def s3_region() -> str:
    return env_text("GOVLAB_S3_REGION") or DEFAULT_S3_REGION


def iceberg_catalog_uri() -> str | None:
    """GOVLAB_ICEBERG_CATALOG_URI: a SQL catalog (SQLAlchemy URL); unset: the SQLite file."""
    raw = env_text("GOVLAB_ICEBERG_CATALOG_URI")
    if raw is not None and "://" not in raw:
        raise ConfigError(
            f"GOVLAB_ICEBERG_CATALOG_URI must be a SQLAlchemy URL (sqlite:///..., "
            f"postgresql+psycopg://...), not {raw!r}"
        )
    return raw


def iceberg_warehouse() -> str | None:
    raw = env_text("GOVLAB_ICEBERG_WAREHOUSE")
    if raw is not None and "://" not in raw:
        raise ConfigError(f"GOVLAB_ICEBERG_WAREHOUSE must be a URI (file://, s3://), not {raw!r}")
    return raw


def quiet_third_parties() -> None:
    """Switch off Daft's and Ray's usage reporting (an operator's own choice wins).

    Daft sends a request when it is imported and when a query runs; a governed backend
    should not call out, and on a closed network each attempt only costs time.
    """
    for name, value in _QUIET_THIRD_PARTIES.items():
        os.environ.setdefault(name, value)


def check_environment() -> None:
    """Read every variable once, so a bad value stops any command before it starts work
    (a server, a seed) with one line naming the variable."""
    count_limit_from_env()
    cache_ttl()
    api_port()
    api_url()
    redis_url_from_env()
    cors_origins()
    demo_auth()
    audit_query_mode()
    job_stale_s()
    execution()
    ray_address()
    tables_uri()
    s3_endpoint()
    iceberg_catalog_uri()
    iceberg_warehouse()
    secret = os.environ.get("GOVLAB_SECRET")
    if secret:
        _check_secret_length(secret.encode(), "GOVLAB_SECRET")


def load_secret(data_dir: Path) -> bytes:
    """Return the deployment secret: GOVLAB_SECRET, else a key generated once with mode 0600.

    Every key govlab uses is derived from this one (``govlab.keys``), so it must carry
    enough entropy: fewer than 32 bytes is refused. The key file is created with O_EXCL
    so two processes starting together agree on one key.
    """
    env = os.environ.get("GOVLAB_SECRET")
    if env:
        secret = env.encode()
        source = "GOVLAB_SECRET"
    else:
        secret = _secret_file(data_dir).read_text().strip().encode()
        source = str(data_dir / SECRET_FILE)
    return _check_secret_length(secret, source)


def worker_secret(data_dir: Path) -> bytes:
    """The deployment secret on a worker (a Ray worker computing masks): GOVLAB_SECRET,
    else the key file already in the data root. Never generated here: a worker that
    made its own key would mask with a key nobody else has."""
    env = os.environ.get("GOVLAB_SECRET")
    if env:
        return _check_secret_length(env.encode(), "GOVLAB_SECRET")
    path = data_dir / SECRET_FILE
    if not path.is_file():
        raise ConfigError(
            "GOVLAB_SECRET is not set on this worker and the data root has no key file: "
            "give every worker the deployment secret (environment or a mounted secret)"
        )
    return _check_secret_length(path.read_text().strip().encode(), str(path))


def _check_secret_length(secret: bytes, source: str) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{source} is {len(secret)} bytes; the deployment secret needs at least "
            f"{MIN_SECRET_BYTES} (e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return secret


def _secret_file(data_dir: Path) -> Path:
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return path
