"""The audit trail: one record per search, validate, policy read or edit, seed, job
action, detokenize and denial, in a Redis stream per dataset (for live views) and one
JSONL file (durable, greppable).

Records describe *what was decided* (principal, filter, masked columns, row count,
outcome), never row values. The text a caller searched for is data too (a name or an
SSN typed by one role must not be readable by an auditor whose role masks it), so by
default it is kept as a keyed fingerprint and its length (``GOVLAB_AUDIT_QUERY``:
``fingerprint``, ``full`` or ``none``). Reading is scoped: ``recent(dataset)`` returns
that dataset's records only.

The file stays open for the life of the log (no open per request); every record is
written and flushed before ``record`` returns, so a clean stop (``close``) or even a
crash of the process loses nothing already recorded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import redis

from govlab.config import AuditQuery
from govlab.keys import DerivedKeys

log = logging.getLogger(__name__)
STREAM_PREFIX = "govlab:audit:"
NO_DATASET = "-"
STREAM_MAXLEN = 100_000
_TAIL_BLOCK = 1 << 16


class AuditLog:
    def __init__(
        self,
        path: Path,
        client: redis.Redis | None,
        keys: DerivedKeys,
        query_mode: AuditQuery = "fingerprint",
    ) -> None:
        self.path = path
        self.client = client
        self.keys = keys
        self.query_mode = query_mode
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    # ------------------------------------------------------------------ writing
    def query_fields(self, q: str) -> dict[str, Any]:
        """What the trail keeps of a search text, per ``GOVLAB_AUDIT_QUERY``."""
        if not q or self.query_mode == "none":
            return {}
        if self.query_mode == "full":
            return {"q": q}
        return {"qFingerprint": self.keys.audit_fingerprint(q), "qLength": len(q)}

    def record(self, event: str, outcome: str, **fields: Any) -> dict[str, Any]:
        entry = {"time": time.time(), "event": event, "outcome": outcome, **fields}
        line = json.dumps(entry, separators=(",", ":"), default=str)
        with self._lock:
            handle = self._open()
            handle.write(line + "\n")
            handle.flush()
        if self.client is not None:
            try:
                self.client.xadd(
                    stream_of(entry.get("dataset")),
                    {"entry": line},
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            except redis.RedisError as exc:
                log.warning("audit stream unavailable (%s); kept in file", type(exc).__name__)
        return entry

    def _open(self) -> IO[str]:
        if self._file is None or self._file.closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        return self._file

    def close(self) -> None:
        with self._lock:
            if self._file is not None and not self._file.closed:
                self._file.flush()
                self._file.close()

    # ------------------------------------------------------------------ reading
    def recent(self, dataset: str, limit: int = 100) -> list[dict[str, Any]]:
        """That dataset's records, newest first; from its stream, else from the file."""
        if self.client is not None:
            try:
                rows = self.client.xrevrange(stream_of(dataset), count=limit)
                return [json.loads(fields[b"entry"]) for _, fields in rows]
            except redis.RedisError:
                pass
        found: list[dict[str, Any]] = []
        for line in _lines_backwards(self.path):
            entry = json.loads(line)
            if entry.get("dataset") == dataset:
                found.append(entry)
                if len(found) >= limit:
                    break
        return found


def stream_of(dataset: Any) -> str:
    return STREAM_PREFIX + (dataset if isinstance(dataset, str) and dataset else NO_DATASET)


def _lines_backwards(path: Path) -> Iterator[str]:
    """The file's lines, last first, reading blocks from the end (the file only grows)."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        fh.seek(0, 2)
        position = fh.tell()
        rest = b""
        while position > 0:
            step = min(_TAIL_BLOCK, position)
            position -= step
            fh.seek(position)
            block = fh.read(step) + rest
            lines = block.split(b"\n")
            rest = lines.pop(0)
            for raw in reversed(lines):
                if raw.strip():
                    yield raw.decode("utf-8")
        if rest.strip():
            yield rest.decode("utf-8")
