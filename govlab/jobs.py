"""Seeding jobs on Redis (RQ), with a progress record the API can poll.

The record is a Redis hash ``govlab:job:<id>`` written by the worker as rows land:
status, pct, rows written, rate and ETA. Cancelling sets a flag the worker checks at
each batch; the engine then aborts the write, so the previous table version stays.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from rq import Queue, get_current_job

from govlab.config import Settings
from govlab.errors import GovlabError

log = logging.getLogger(__name__)
QUEUE = "govlab-seed"
JOB_PREFIX = "govlab:job:"
RECORD_TTL_S = 7 * 24 * 3600
JOB_TIMEOUT_S = 3 * 3600
TERMINAL = {"completed", "failed", "cancelled"}
PREWARM_QUERIES = {"healthcare": ("", "asthma"), "ecommerce": ("",), "financial": ("",)}


class JobCancelled(GovlabError):
    """Raised inside the write when a cancel was requested: aborts, leaves the old version."""


class JobNotFound(GovlabError):
    pass


def record_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def enqueue_seed(
    client: redis.Redis,
    settings: Settings,
    dataset: str,
    size: str,
    fmt: str,
    seed: int = 42,
    principal_sub: str = "api",
) -> str:
    job_id = uuid.uuid4().hex
    _write(
        client,
        job_id,
        {
            "jobId": job_id,
            "status": "queued",
            "pct": 0,
            "rowsWritten": 0,
            "totalRows": 0,
            "rowsPerSec": 0,
            "etaSeconds": None,
            "dataset": dataset,
            "size": size,
            "format": fmt,
            "requestedBy": principal_sub,
            "createdAt": time.time(),
        },
    )
    Queue(QUEUE, connection=client).enqueue_call(
        run_seed_job,
        kwargs={
            "job_id": job_id,
            "dataset": dataset,
            "size": size,
            "fmt": fmt,
            "seed": seed,
            "data_dir": str(settings.data_dir),
        },
        job_id=job_id,
        timeout=JOB_TIMEOUT_S,
        result_ttl=RECORD_TTL_S,
        failure_ttl=RECORD_TTL_S,
    )
    return job_id


def progress(client: redis.Redis, job_id: str) -> dict[str, Any]:
    raw = client.hgetall(record_key(job_id))
    if not raw:
        raise JobNotFound(f"unknown job {job_id!r}")
    record = {k.decode(): _decode(k.decode(), v) for k, v in raw.items()}
    record.pop("cancelRequested", None)
    return record


def cancel(client: redis.Redis, job_id: str) -> dict[str, Any]:
    record = progress(client, job_id)
    if record["status"] in TERMINAL:
        return record
    client.hset(record_key(job_id), "cancelRequested", "1")
    if record["status"] == "queued":
        _write(client, job_id, {"status": "cancelled"})
        from rq.job import Job

        with contextlib.suppress(Exception):
            Job.fetch(job_id, connection=client).cancel()
    return progress(client, job_id)


def run_seed_job(job_id: str, dataset: str, size: str, fmt: str, seed: int, data_dir: str) -> int:
    """The worker side. Updates the record at every batch; returns the new table version."""
    from govlab.seeding import seed_table

    job = get_current_job()
    client: redis.Redis = job.connection if job else redis.Redis()
    if client.hget(record_key(job_id), "cancelRequested"):
        _write(client, job_id, {"status": "cancelled"})
        return -1
    settings = Settings.from_env(Path(data_dir))  # same count strategy as the API
    started = time.monotonic()
    _write(client, job_id, {"status": "running", "startedAt": time.time()})

    def report(rows: int, total: int) -> None:
        if client.hget(record_key(job_id), "cancelRequested"):
            raise JobCancelled("cancelled")
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = rows / elapsed
        _write(
            client,
            job_id,
            {
                "rowsWritten": rows,
                "totalRows": total,
                "pct": round(100 * rows / total, 1),
                "rowsPerSec": round(rate),
                "etaSeconds": round((total - rows) / rate, 1) if rate else None,
            },
        )

    try:
        info = seed_table(dataset, size, fmt, settings, seed, report)
    except JobCancelled:
        _write(client, job_id, {"status": "cancelled"})
        return -1
    except Exception as exc:
        _write(client, job_id, {"status": "failed", "error": _safe_error(exc)})
        raise
    try:
        warmed = prewarm(client, settings, dataset, fmt)
    except Exception as exc:  # a cold cache is slower, never wrong: the seed still succeeded
        log.warning("pre-warming failed (%s)", type(exc).__name__)
        warmed = 0
    _write(
        client,
        job_id,
        {
            "status": "completed",
            "pct": 100,
            "tableVersion": info.version,
            "rowsWritten": info.rows,
            "etaSeconds": 0,
            "prewarmedPages": warmed,
            "finishedAt": time.time(),
        },
    )
    return info.version


def prewarm(client: redis.Redis, settings: Settings, dataset: str, fmt: str) -> int:
    """Cache the first page of common queries for each role that needs no attributes."""
    from govlab.cache import PageCache, cache_ttl, cached_search
    from govlab.errors import GovlabError as Refused
    from govlab.policy import Principal
    from govlab.search import GovernedSearch, SearchQuery

    searcher = GovernedSearch(settings)
    cache = PageCache(client, cache_ttl())
    warmed = 0
    for role in searcher.policies.current(dataset).policy.roles:
        for q in PREWARM_QUERIES.get(dataset, ("",)):
            try:
                cached_search(searcher, cache, dataset, fmt, Principal(role.id), SearchQuery(q=q))
                warmed += 1
            except Refused:
                break  # the role needs attributes only a real principal has
    return warmed


def _safe_error(exc: BaseException) -> str:
    """Errors we raise are safe to show; anything else is named by type only."""
    return str(exc) if isinstance(exc, GovlabError) else f"internal error ({type(exc).__name__})"


def _write(client: redis.Redis, job_id: str, fields: dict[str, Any]) -> None:
    key = record_key(job_id)
    encoded = {k: ("" if v is None else str(v)) for k, v in fields.items()}
    pipe = client.pipeline()
    pipe.hset(key, mapping=encoded)
    pipe.expire(key, RECORD_TTL_S)
    pipe.execute()


_NUMERIC = (
    "pct",
    "rowsWritten",
    "totalRows",
    "rowsPerSec",
    "etaSeconds",
    "tableVersion",
    "prewarmedPages",
    "createdAt",
    "startedAt",
    "finishedAt",
)


def _decode(field: str, raw: bytes) -> Any:
    text = raw.decode()
    if text == "":
        return None
    if field not in _NUMERIC:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number
