"""The audit trail: one record per search, validate, policy read or edit, seed, job
action, detokenize and denial, in a Redis stream per dataset (for live views) and one
JSONL file (durable, greppable).

Records describe *what was decided* (principal, filter, masked columns, row count,
outcome), never row values. The text a caller searched for is data too (a name or an
SSN typed by one role must not be readable by an auditor whose role masks it), so by
default it is kept as a keyed fingerprint and its length (``GOVLAB_AUDIT_QUERY``:
``fingerprint``, ``full`` or ``none``). Reading is scoped: ``recent(dataset)`` returns
that dataset's records only.

Writing is buffered so a request never waits for it: ``record`` queues the line and a
writer thread appends what has queued to the file (kept open for the life of the log,
flushed after each batch) and to the streams (one pipelined round trip per batch), at
most :data:`FLUSH_INTERVAL_S` later. ``close`` (the API's shutdown, or the interpreter's
exit) writes everything still queued, so a clean stop loses no record; a crash loses
at most the last interval's. Readers (``recent``) flush first, so they see every record
made before they asked.
"""

from __future__ import annotations

import atexit
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
FLUSH_INTERVAL_S = 0.05
IDLE_EXIT_S = 2.0  # a writer with nothing to do for this long ends; the next record starts one


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
        self._file: IO[str] | None = None
        self._pending: list[dict[str, Any]] = []  # in record order
        self._queued = threading.Condition()
        self._write_lock = threading.Lock()  # one batch at a time: the file keeps order
        self._writer: threading.Thread | None = None
        self._closing = False
        self._exit_hook = False

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
        with self._queued:  # serialised by the writer, off the request's path
            self._pending.append(entry)
            if self._writer is None:
                self._start_writer()
        return entry

    def flush(self) -> None:
        """Write every queued record now (file first, then the streams)."""
        with self._write_lock:
            with self._queued:
                batch, self._pending = self._pending, []
            if batch:
                self._write(batch)

    def close(self) -> None:
        """Write what is queued and release the file; records after this still land."""
        with self._queued:
            self._closing = True
            self._queued.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        self.flush()
        with self._write_lock:
            if self._file is not None and not self._file.closed:
                self._file.close()
        with self._queued:
            self._closing = False

    def _start_writer(self) -> None:
        """Called with ``_queued`` held."""
        if not self._exit_hook:
            atexit.register(self.close)
            self._exit_hook = True
        self._writer = threading.Thread(target=self._run_writer, name="audit-writer", daemon=True)
        self._writer.start()

    def _run_writer(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._queued:
                if not self._pending and not self._closing:
                    self._queued.wait(FLUSH_INTERVAL_S)
                if self._closing or (
                    not self._pending and time.monotonic() - idle_since > IDLE_EXIT_S
                ):
                    self._writer = None
                    return
                busy = bool(self._pending)
            if busy:
                self.flush()
                idle_since = time.monotonic()
                time.sleep(FLUSH_INTERVAL_S)  # let a batch gather

    def _write(self, batch: list[dict[str, Any]]) -> None:
        lines = [json.dumps(entry, separators=(",", ":"), default=str) for entry in batch]
        handle = self._open()
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        if self.client is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for entry, line in zip(batch, lines, strict=True):
                stream = stream_of(entry.get("dataset"))
                pipe.xadd(stream, {"entry": line}, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("audit stream unavailable (%s); kept in file", type(exc).__name__)

    def _open(self) -> IO[str]:
        if self._file is None or self._file.closed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        return self._file

    # ------------------------------------------------------------------ reading
    def recent(self, dataset: str, limit: int = 100) -> list[dict[str, Any]]:
        """That dataset's records, newest first; from its stream, else from the file."""
        self.flush()
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
