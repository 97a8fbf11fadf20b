"""The audit trail: one record per search, validate, policy read or edit, detokenize
and denial, in a Redis stream (for live views) and a JSONL file (durable, greppable).

Records describe *what was decided* (principal, filter, masked columns, row count,
outcome), never row values.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import redis

log = logging.getLogger(__name__)
STREAM = "govlab:audit"
STREAM_MAXLEN = 100_000


class AuditLog:
    def __init__(self, path: Path, client: redis.Redis | None) -> None:
        self.path = path
        self.client = client
        self._lock = threading.Lock()

    def record(self, event: str, outcome: str, **fields: Any) -> dict[str, Any]:
        entry = {"time": time.time(), "event": event, "outcome": outcome, **fields}
        line = json.dumps(entry, separators=(",", ":"), default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if self.client is not None:
            try:
                self.client.xadd(STREAM, {"entry": line}, maxlen=STREAM_MAXLEN, approximate=True)
            except redis.RedisError as exc:
                log.warning("audit stream unavailable (%s); kept in file", type(exc).__name__)
        return entry

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; from the stream when Redis answers, else from the file."""
        if self.client is not None:
            try:
                rows = self.client.xrevrange(STREAM, count=limit)
                return [json.loads(fields[b"entry"]) for _, fields in rows]
            except redis.RedisError:
                pass
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()[-limit:]
        return [json.loads(line) for line in reversed(lines)]
