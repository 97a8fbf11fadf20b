"""Where data lives and which secret signs and masks it.

Every path is derived from one data root so a deployment is one directory to back up;
the per-format variables of the original showcase (DELTA_DIR, PARQUET_DIR, ICEBERG_DIR)
override single formats when set.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from govlab.errors import ConfigError

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "generated"
SECRET_FILE = "secret.key"
# Searches in the default order count matches exactly up to this many, then report a
# lower bound (``totalExact: false``) rather than scan the rest of the table.
DEFAULT_COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    count_limit: int | None = DEFAULT_COUNT_LIMIT  # None: every total is exact

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        root = data_dir or os.environ.get("GOVLAB_DATA_DIR") or DEFAULT_DATA_DIR
        return cls(data_dir=Path(root).expanduser().resolve(), count_limit=count_limit_from_env())

    def format_dir(self, fmt: str) -> Path:
        override = os.environ.get(f"{fmt.upper()}_DIR")
        return Path(override).resolve() if override else self.data_dir / fmt

    @property
    def lock_dir(self) -> Path:
        return self.data_dir / "locks"

    def secret_key(self) -> bytes:
        return load_secret(self.data_dir)


def count_limit_from_env() -> int | None:
    """GOVLAB_COUNT_LIMIT: count exactly up to this many matches; 0 means always exact.

    A bad value stops the process at start-up rather than silently picking a default.
    """
    raw = os.environ.get("GOVLAB_COUNT_LIMIT", "").strip()
    if not raw:
        return DEFAULT_COUNT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise ConfigError(f"GOVLAB_COUNT_LIMIT must be a whole number, not {raw!r}") from None
    if limit < 0:
        raise ConfigError("GOVLAB_COUNT_LIMIT must be 0 (always exact) or more")
    return limit or None


def load_secret(data_dir: Path) -> bytes:
    """Return the deployment secret: GOVLAB_SECRET, else a key generated once with mode 0600.

    The key is created with O_EXCL so two processes starting together agree on one key.
    """
    env = os.environ.get("GOVLAB_SECRET")
    if env:
        return env.encode()
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
    return path.read_text().strip().encode()
