"""Seeding and export jobs on Redis (RQ), with a progress record the API can poll.

The record is a Redis hash ``govlab:job:<id>`` written by the worker as rows land:
status, pct, rows written, rate and ETA. Cancelling sets a flag the worker checks at
each batch; the engine then aborts the write, so the previous table version stays.

A job is bound to its dataset and to who asked (subject and role): enqueueing takes a
``seed`` grant, and reading or cancelling a job is authorised against its
:class:`~govlab.policy.access.JobOwner`. A worker that dies (killed horse, OOM) cannot
report its own death, so reading a job reconciles the record with RQ's status and with
the time since its last sign of life: a running job that RQ has failed or stopped, or
that has been silent for ``GOVLAB_JOB_STALE_S``, is reported ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from govlab.config import Settings, job_stale_s
from govlab.errors import GovlabError
from govlab.policy.access import Action, Grant, JobOwner

log = logging.getLogger(__name__)
QUEUE = "govlab-seed"
JOB_PREFIX = "govlab:job:"
RECORD_TTL_S = 7 * 24 * 3600
JOB_TIMEOUT_S = 3 * 3600
TERMINAL = {"completed", "failed", "cancelled"}
_DEAD_RQ_STATES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
#: Fields that bind a job to its requester: used to authorise, never shown.
_OWNER_FIELDS = ("requestedRole", "cancelRequested")
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
    grant: Grant,
    size: str,
    fmt: str,
    seed: int = 42,
) -> str:
    """Queue a seed of ``grant.dataset``; only a ``seed`` grant can."""
    grant.require(Action.SEED, grant.dataset)
    return _enqueue(
        client,
        grant,
        run_seed_job,
        {"size": size, "format": fmt},
        {"size": size, "fmt": fmt, "seed": seed, "data_dir": str(settings.data_dir)},
    )


def _enqueue(
    client: redis.Redis,
    grant: Grant,
    work: Callable[..., int],
    fields: dict[str, Any],
    kwargs: dict[str, Any],
) -> str:
    """Write a job's first record (bound to its dataset and requester), then queue it."""
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
            "dataset": grant.dataset,
            **fields,
            "requestedBy": grant.principal.sub,
            "requestedRole": grant.principal.role,
            "createdAt": time.time(),
        },
    )
    Queue(QUEUE, connection=client).enqueue_call(
        work,
        kwargs={"job_id": job_id, "dataset": grant.dataset, **kwargs},
        job_id=job_id,
        timeout=JOB_TIMEOUT_S,
        result_ttl=RECORD_TTL_S,
        failure_ttl=RECORD_TTL_S,
    )
    return job_id


def enqueue_export(client: redis.Redis, settings: Settings, grant: Grant, fmt: str) -> str:
    """Queue a governed export (``govlab.execution.export``) of what ``grant``'s principal
    may see; only an ``export`` grant can. The worker authorises again against the live
    policy (an edit in between applies) and writes ``<data root>/exports/<job id>``."""
    grant.require(Action.EXPORT, grant.dataset)
    principal = grant.principal
    return _enqueue(
        client,
        grant,
        run_export_job,
        {"kind": "export", "format": fmt},
        {
            "fmt": fmt,
            "role": principal.role,
            "attrs": dict(principal.attrs),
            "sub": principal.sub,
            "data_dir": str(settings.data_dir),
        },
    )


def export_dir(settings: Settings, job_id: str) -> Path:
    return settings.data_dir / "exports" / job_id


def owner(client: redis.Redis, job_id: str) -> JobOwner:
    """Who a job belongs to, to authorise a read or a cancel (404 for an unknown job)."""
    record = _read(client, job_id)
    return JobOwner(
        job_id=job_id,
        sub=str(record.get("requestedBy") or ""),
        role=str(record.get("requestedRole") or ""),
        dataset=str(record.get("dataset") or ""),
    )


def progress(client: redis.Redis, grant: Grant, job_id: str) -> dict[str, Any]:
    """The job's public record, reconciled with RQ; needs a ``job.read`` grant."""
    grant.require_job(Action.READ_JOB, job_id)
    record = _reconcile(client, job_id, _read(client, job_id))
    return _public(record)


def cancel(client: redis.Redis, grant: Grant, job_id: str) -> dict[str, Any]:
    grant.require_job(Action.CANCEL_JOB, job_id)
    record = _reconcile(client, job_id, _read(client, job_id))
    if record["status"] in TERMINAL:
        return _public(record)
    client.hset(record_key(job_id), "cancelRequested", "1")
    if record["status"] == "queued":
        _write(client, job_id, {"status": "cancelled"})
        with contextlib.suppress(Exception):
            Job.fetch(job_id, connection=client).cancel()  # rq: not an access decision
    return _public(_read(client, job_id))


def _read(client: redis.Redis, job_id: str) -> dict[str, Any]:
    raw = client.hgetall(record_key(job_id))
    if not raw:
        raise JobNotFound(f"unknown job {job_id!r}")
    return {k.decode(): _decode(k.decode(), v) for k, v in raw.items()}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _OWNER_FIELDS}


def _reconcile(client: redis.Redis, job_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """Mark a job whose worker is gone as failed; the record otherwise stays as written."""
    if record["status"] in TERMINAL:
        return record
    reason = _lost_reason(client, job_id, record)
    if reason is None:
        return record
    log.warning("seed job %s lost: %s", job_id, reason)
    _write(client, job_id, {"status": "failed", "error": reason, "finishedAt": time.time()})
    return _read(client, job_id)


def _lost_reason(client: redis.Redis, job_id: str, record: dict[str, Any]) -> str | None:
    try:
        job: Job | None = Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        job = None
    if job is None:
        return "the job is no longer on the queue (its worker or Redis lost it)"
    status = job.get_status(refresh=False)
    if status in _DEAD_RQ_STATES:
        return f"the worker stopped the job ({status.value}: killed, out of memory or timed out)"
    if record["status"] != "running":
        return None  # queued: waiting for a worker is not a failure
    beats = [record.get("updatedAt") or 0, record.get("startedAt") or 0]
    if job.last_heartbeat is not None:
        beats.append(job.last_heartbeat.replace(tzinfo=UTC).timestamp())
    silent = time.time() - max(float(b) for b in beats)
    stale = job_stale_s()
    if silent > stale:
        return f"no sign of life from the worker for {int(silent)} s (limit {stale} s)"
    return None


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
    except GovlabError as exc:  # refused, not crashed: recorded, no traceback
        _write(client, job_id, {"status": "failed", "error": _safe_error(exc)})
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


def run_export_job(
    job_id: str,
    dataset: str,
    fmt: str,
    role: str,
    attrs: dict[str, Any],
    sub: str,
    data_dir: str,
) -> int:
    """The worker side of an export: progress per partition written; returns the rows."""
    from govlab.execution.export import export_parquet
    from govlab.policy import Principal
    from govlab.policy.access import AccessControl
    from govlab.policy.store import PolicyStore

    job = get_current_job()
    client: redis.Redis = job.connection if job else redis.Redis()
    if client.hget(record_key(job_id), "cancelRequested"):
        _write(client, job_id, {"status": "cancelled"})
        return -1
    settings = Settings.from_env(Path(data_dir))
    started = time.monotonic()
    _write(client, job_id, {"status": "running", "startedAt": time.time()})
    try:
        principal = Principal(role, attrs, sub)
        grant = AccessControl(PolicyStore(settings)).authorize(principal, Action.EXPORT, dataset)
        target = export_dir(settings, job_id)
        result = export_parquet(
            settings, grant, fmt, str(target), _export_progress(client, job_id, started)
        )
    except JobCancelled:
        _write(client, job_id, {"status": "cancelled"})
        return -1
    except GovlabError as exc:
        _write(client, job_id, {"status": "failed", "error": _safe_error(exc)})
        return -1
    except Exception as exc:
        _write(client, job_id, {"status": "failed", "error": _safe_error(exc)})
        raise
    _write(
        client,
        job_id,
        {
            "status": "completed",
            "pct": 100,
            "rowsWritten": result.rows,
            "totalRows": result.rows,
            "tableVersion": result.version,
            "etaSeconds": 0,
            "rowsPerSec": round(result.rows_per_sec),
            "exportPath": f"exports/{job_id}",
            "finishedAt": time.time(),
        },
    )
    return result.rows


def _export_progress(client: redis.Redis, job_id: str, started: float) -> Any:
    def report(rows: int, total: int) -> None:
        if client.hget(record_key(job_id), "cancelRequested"):
            raise JobCancelled("cancelled")
        rate = rows / max(time.monotonic() - started, 1e-6)
        _write(
            client,
            job_id,
            {
                "rowsWritten": rows,
                "totalRows": total,
                "pct": round(100 * rows / total, 1) if total else 100,
                "rowsPerSec": round(rate),
                "etaSeconds": round((total - rows) / rate, 1) if rate else None,
            },
        )

    return report


def prewarm(client: redis.Redis, settings: Settings, dataset: str, fmt: str) -> int:
    """Cache the first page of common queries for each role that needs no attributes."""
    from govlab.errors import GovlabError as Refused
    from govlab.policy import Principal
    from govlab.search import GovernedSearch, SearchQuery
    from govlab.service.cache import PageCache, cache_ttl, cached_search

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
    encoded["updatedAt"] = str(time.time())
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
    "updatedAt",
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
