"""What a seed run records so it can be checked later (``notebooks/seed.ipynb``).

A record worth keeping says what ran (package versions, the git commit), under which
rules (the policy version), what it produced (the table's schema and size on disk) and
a **row checksum**: one digest of the rows, independent of the format, so the same
dataset, size and seed give the same checksum in Delta, Parquet and Iceberg, and a rerun
can be compared with the record.

The checksum is computed with Arrow compute, column by column over the rows sorted by
primary key: each value is cast to text (nulls to a marker no text can hold), and the
lengths and bytes of the whole column are hashed at once, never row by row in Python.
Only the key and one column are in memory at a time.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from govlab.engines.base import Engine
from govlab.generators import DatasetSpec
from govlab.policy.ast import AlwaysTrue

PACKAGES = ("govlab", "pyarrow", "deltalake", "pyiceberg", "numpy", "papermill")
NULL = "\x00"  # no text value of a dataset holds a NUL
REPO = Path(__file__).resolve().parents[2]
GIT_TIMEOUT_S = 10


def package_versions() -> dict[str, str]:
    """Python and the packages a seed depends on."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit(repo: Path = REPO) -> dict[str, Any] | None:
    """``{commit, dirty}`` of the checkout the code ran from; None outside a checkout."""
    try:
        head = _git(repo, "rev-parse", "HEAD")
        status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(status)}


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=True,
    )
    return done.stdout.strip()


def table_schema(spec: DatasetSpec) -> dict[str, str]:
    """Column -> Arrow type, in table order."""
    return {f.name: str(f.type) for f in spec.schema}


def disk_bytes(location: str | Path) -> int:
    """Bytes of every file under the table's location (its kept versions included)."""
    total = 0
    for folder, _, files in os.walk(location):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total


def row_checksum(engine: Engine, spec: DatasetSpec, table_version: int | None = None) -> str:
    """SHA-256 over the table's rows sorted by primary key, the same in every format."""
    digest = hashlib.sha256()
    pk = spec.primary_key
    for field in spec.schema:
        columns = list(dict.fromkeys([pk, field.name]))
        scanned = engine.scan(spec, columns, AlwaysTrue(), table_version)
        ordered = scanned.sort_by(pk).column(field.name)
        digest.update(f"{field.name}:{field.type}\n".encode())
        digest.update(column_digest(ordered.cast(field.type)))
    return digest.hexdigest()


def column_digest(column: pa.ChunkedArray | pa.Array) -> bytes:
    """SHA-256 of a column's values as text, in order: each value's length, then the
    bytes of all values (so no two different columns give the same stream)."""
    text = pc.fill_null(pc.cast(column, pa.large_string()), NULL)
    values = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False).astype("<i8")
    offsets = np.frombuffer(values.buffers()[1], dtype="<i8")[
        values.offset : values.offset + len(values) + 1
    ]
    data = values.buffers()[2]
    body = b"" if data is None else data.to_pybytes()[offsets[0] : offsets[-1]]
    return hashlib.sha256(lengths.tobytes() + body).digest()
