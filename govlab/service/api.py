"""The HTTP API (FastAPI): seed jobs, progress, governed search, validate, policies,
detokenize, audit and health.

Identity comes only from a signed bearer token (or, in explicit demo mode, from the
showcase's headers). Every decision is the policy layer's (``govlab.policy.access``):
a handler asks for a grant and acts on it. Errors carry a message and never a
traceback or a data value; the access log names the path, never the query string.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import redis
from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from govlab import masks
from govlab.catalog import DATASETS, SIZES
from govlab.config import (
    Settings,
    audit_query_mode,
    cache_ttl,
)
from govlab.config import cors_origins as cors_origins_from_env
from govlab.config import demo_auth as demo_auth_from_env
from govlab.engines import FORMATS
from govlab.errors import (
    AccessDenied,
    BadRequest,
    GovlabError,
    PolicyError,
    ServiceUnavailable,
    TableNotFound,
)
from govlab.keys import DerivedKeys, derive_keys
from govlab.policy import Principal
from govlab.policy.access import AccessControl, Action, Grant
from govlab.search import GovernedSearch, Prepared, SearchQuery
from govlab.service import jobs
from govlab.service.audit import AuditLog
from govlab.service.cache import (
    CachedPage,
    CacheStatus,
    PageCache,
    compute_and_store,
)
from govlab.service.hit_path import (
    CacheHitPath,
    audit_search,
    lookup_hit,
    search_audit_fields,
)
from govlab.service.identity import InvalidToken, TokenVerifier, principal_from_demo_headers
from govlab.service.lab_api import install_lab_routes
from govlab.service.redis_server import redis_url

log = logging.getLogger("govlab.service.api")

# The API's enums come from the registries (the catalog's datasets and sizes, the engines'
# formats): a new format or dataset is served, validated and documented without an edit here.
Dataset = StrEnum("Dataset", {name: name for name in DATASETS})
Format = StrEnum("Format", {name: name for name in FORMATS})
Size = StrEnum("Size", {name: name for name in SIZES})
DEFAULT_FORMAT = Format("delta")

SEARCH_DOC = (
    "`{items, page, pageSize, total, totalExact, maskedFields, sort, role, tableVersion, "
    "policyVersion, strategy: {cache, engine, pushdown}, tookMs}`; header `X-Cache`."
)
REDIS_DOWN = "Redis is not answering; jobs cannot be queued or read now (searches still work)"
STATUS = {
    InvalidToken: 401,
    AccessDenied: 403,
    TableNotFound: 404,
    jobs.JobNotFound: 404,
    BadRequest: 422,
    PolicyError: 422,
    ServiceUnavailable: 503,
}


@dataclass
class Services:
    settings: Settings
    searcher: GovernedSearch
    redis: redis.Redis
    cache: PageCache
    audit: AuditLog
    secret: bytes
    keys: DerivedKeys
    demo_auth: bool
    tokens: TokenVerifier

    @property
    def access(self) -> AccessControl:
        return self.searcher.access

    def authorize(self, principal: Principal, action: Action, dataset: str) -> Grant:
        return self.access.authorize(principal, action, dataset)


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dataset: Dataset
    size: Size = Size("tiny")
    format: Format = DEFAULT_FORMAT
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    governance_config: str | None = Field(
        default=None, alias="governanceConfig", max_length=256_000
    )


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Dataset
    format: Format = DEFAULT_FORMAT


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Dataset
    column: str | None = Field(
        default=None,
        max_length=64,
        description="the column the tokens were minted for; unset: every column the "
        "role may detokenize is tried (a token only ever opens in its own column)",
    )
    tokens: list[str] = Field(min_length=1, max_length=200)


def create_app(
    settings: Settings | None = None,
    redis_url_: str | None = None,
    demo_auth: bool | None = None,
    cors_origins: tuple[str, ...] | None = None,
) -> FastAPI:
    settings = settings or Settings.from_env()
    if demo_auth is None:
        demo_auth = demo_auth_from_env()
    url = redis_url_ or redis_url(settings)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    secret = settings.secret_key()
    keys = derive_keys(secret)
    services = Services(
        settings=settings,
        searcher=GovernedSearch(settings),
        redis=client,
        cache=PageCache(client, cache_ttl()),
        audit=AuditLog(
            settings.data_dir / "audit" / "audit.jsonl", client, keys, audit_query_mode()
        ),
        secret=secret,
        keys=keys,
        demo_auth=demo_auth,
        tokens=TokenVerifier(secret),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        services.audit.close()  # every record is already flushed; release the file

    app = GovlabAPI(
        title="govlab",
        version=_version("govlab"),
        description="Governed (RLS/CLS), masked, paginated search over lakehouse tables.",
        lifespan=lifespan,
    )
    app.state.services = services
    origins = cors_origins or cors_origins_from_env()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_credentials=False,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["X-Cache"],
    )
    _install_error_handlers(app)
    _install_routes(app)
    install_lab_routes(app, current_principal)  # the classroom's routes (lab_api)
    install_access_log_filter()
    app.hit_path = CacheHitPath(services)
    return app


class GovlabAPI(FastAPI):
    """FastAPI with :class:`CacheHitPath` in front of every other layer (telemetry,
    error handling, CORS, routing): a cache hit skips them all, and any other request
    meets them unchanged. Hits are therefore not seen by FastAPI's native telemetry;
    the audit trail records each one."""

    hit_path: CacheHitPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hit_path is None or not await self.hit_path.serve(scope, send):
            await super().__call__(scope, receive, send)


class PathOnlyAccessLog(logging.Filter):
    """uvicorn's access log prints the full path; search text and job ids stay out of it.

    The audit keeps what a request asked for (fingerprinted); the access log needs only
    the route and the status.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            client, method, path, http_version, status = args
            record.args = (client, method, path.split("?", 1)[0], http_version, status)
        return True


def install_access_log_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PathOnlyAccessLog) for f in access.filters):
        access.addFilter(PathOnlyAccessLog())


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------ errors
def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GovlabError)
    async def govlab_error(request: Request, exc: GovlabError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
        if isinstance(exc, PolicyError):
            body["reasons"] = exc.reasons
        if status in (401, 403):
            services: Services = request.app.state.services
            asked = exc.dataset or request.query_params.get("dataset")
            services.audit.record(
                "denial",
                "denied",
                path=request.url.path,
                reason=str(exc),
                dataset=asked if asked in DATASETS else None,
            )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "5"}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        """Jobs live in Redis: without it they cannot be queued or read, but nothing broke."""
        log.warning("%s on %s: Redis unavailable", type(exc).__name__, request.url.path)
        return JSONResponse(
            {"error": "ServiceUnavailable", "detail": REDIS_DOWN}, 503, {"Retry-After": "5"}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """Pydantic echoes the offending input; a message and a location are enough."""
        reasons = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg"))}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(r['loc'])}: {r['msg']}" for r in reasons)
        return JSONResponse({"error": "BadRequest", "detail": detail, "reasons": reasons}, 422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse({"error": "InternalError", "detail": "internal error"}, 500)


# ------------------------------------------------------------------ identity
async def services_of(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services_of)]


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_role: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_user_context: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    services: Services = request.app.state.services  # no I/O here: runs on the event loop
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("Authorization must be 'Bearer <token>'")
        return services.tokens.verify(token.strip())
    if services.demo_auth and x_user_role:
        return principal_from_demo_headers(x_user_role, x_user_context)
    raise InvalidToken("missing bearer token")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def record_audit(
    services: Services, principal: Principal, role: str, event: str, outcome: str, **fields: Any
) -> None:
    """One audit record for a request by this principal acting as this role."""
    services.audit.record(event, outcome, sub=principal.sub, role=role, **fields)


def _audit_grant(services: Services, grant: Grant, event: str, outcome: str, **fields: Any) -> None:
    record_audit(
        services, grant.principal, grant.role.id, event, outcome, dataset=grant.dataset, **fields
    )


def _job_grant(services: Services, principal: Principal, action: Action, job_id: str) -> Grant:
    """Authorise against the job's own dataset and requester (404 for an unknown job)."""
    owner = jobs.owner(services.redis, job_id)
    return services.access.authorize(principal, action, owner.dataset, job=owner)


async def _cached_page(
    services: Services, prepared: Prepared, principal: Principal
) -> tuple[CachedPage, CacheStatus]:
    """The lookup runs on the event loop (one Redis GET); a miss computes the page in
    the thread pool, so a scan never holds up other requests' hits."""
    hit, key, reachable = lookup_hit(services, prepared, principal)
    if hit is not None:
        return hit, "hit"
    return await run_in_threadpool(
        compute_and_store, services.searcher, services.cache, prepared, key, reachable
    )


def _detokenize_one(services: Services, grant: Grant, token: str, columns: list[str]) -> str:
    """The token's value if it was minted for one of ``columns`` of this dataset."""
    for column in columns:
        try:
            return masks.detokenize(token, services.keys.masks, grant.dataset, column)
        except BadRequest:
            continue
    raise BadRequest("not a valid token for a column this role may detokenize")


# ------------------------------------------------------------------ routes
def _install_routes(app: FastAPI) -> None:
    @app.get("/health")
    def health(services: ServicesDep) -> dict[str, Any]:
        try:
            redis_ok = bool(services.redis.ping())
        except redis.RedisError:
            redis_ok = False
        data_ok = services.settings.data_dir.is_dir() and os.access(
            services.settings.data_dir, os.W_OK
        )
        return {
            "status": "ok" if redis_ok and data_ok else "degraded",
            "redis": "ok" if redis_ok else "unreachable",
            "dataRoot": "ok" if data_ok else "unwritable",
            "demoAuth": services.demo_auth,
            "versions": {p: _version(p) for p in ("govlab", "deltalake", "pyarrow", "pyiceberg")},
        }

    @app.post("/seed", status_code=202)
    def seed(body: SeedRequest, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        grant = services.authorize(principal, Action.SEED, body.dataset)
        if body.governance_config is not None:
            edit = services.authorize(principal, Action.EDIT_POLICY, body.dataset)
            number, loaded = services.searcher.policies.put(edit, body.governance_config)
            _audit_grant(
                services,
                edit,
                "policy_edit",
                "accepted",
                policyVersion=loaded.version,
                revision=number,
                via="seed",
            )
        job_id = jobs.enqueue_seed(
            services.redis, services.settings, grant, body.size, body.format, body.seed
        )
        _audit_grant(
            services, grant, "seed", "queued", format=body.format, size=body.size, jobId=job_id
        )
        return {"jobId": job_id}

    @app.post("/export", status_code=202)
    def export(
        body: ExportRequest, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """Everything the caller may see, masked, to Parquet under the data root
        (``can_export``); follow it with ``/progress``."""
        grant = services.authorize(principal, Action.EXPORT, body.dataset)
        job_id = jobs.enqueue_export(services.redis, services.settings, grant, body.format)
        _audit_grant(services, grant, "export", "queued", format=body.format, jobId=job_id)
        return {"jobId": job_id}

    @app.get("/progress")
    def get_progress(
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: Annotated[str, Query(alias="jobId", max_length=64)],
    ) -> dict[str, Any]:
        grant = _job_grant(services, principal, Action.READ_JOB, job_id)
        return jobs.progress(services.redis, grant, job_id)

    @app.delete("/jobs/{job_id}")
    def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        grant = _job_grant(services, principal, Action.CANCEL_JOB, job_id)
        record = jobs.cancel(services.redis, grant, job_id)
        _audit_grant(services, grant, "job_cancel", str(record["status"]), jobId=job_id)
        return record

    @app.get("/search", response_class=Response, responses={200: {"description": SEARCH_DOC}})
    async def search(
        services: ServicesDep,
        principal: PrincipalDep,
        dataset: Dataset,
        format: Format = DEFAULT_FORMAT,
        q: Annotated[str, Query(max_length=200)] = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(alias="pageSize", ge=1, le=200)] = 20,
        sort: Annotated[str | None, Query(max_length=80)] = None,
        exact_total: Annotated[
            bool,
            Query(
                alias="exactTotal",
                description="Count every match. By default the count stops at the "
                "deployment's limit (GOVLAB_COUNT_LIMIT, 10,000) and `totalExact` is false.",
            ),
        ] = False,
    ) -> Response:
        """A hit is the stored bytes plus this request's ``strategy`` and ``tookMs``; only
        a miss (a table scan) leaves the event loop for the thread pool. Most hits never
        reach this handler: ``hit_path.CacheHitPath`` serves them in front of FastAPI."""
        started = time.perf_counter()
        query = SearchQuery.parse(q, page, page_size, sort, exact_total)
        prepared = services.searcher.prepare(dataset, format, principal, query)
        stored, status = await _cached_page(services, prepared, principal)
        took_ms = round((time.perf_counter() - started) * 1000, 2)  # this request's
        audit_search(services, search_audit_fields(services, principal, prepared), stored, status)
        return Response(
            stored.response(status, took_ms),
            media_type="application/json",
            headers={"X-Cache": status.upper()},
        )

    @app.get("/validate")
    def validate(
        services: ServicesDep,
        principal: PrincipalDep,
        dataset: Dataset,
        format: Format = DEFAULT_FORMAT,
    ) -> dict[str, Any]:
        result = services.searcher.validate(dataset, format, principal)
        record_audit(
            services,
            principal,
            result["role"],
            "validate",
            "ok",
            dataset=dataset,
            format=format,
            filter=result["rowFilter"],
            policyVersion=result["policyVersion"],
            tableVersion=result["tableVersion"],
            maskedFields=sorted(result["maskedColumns"]),
            rows=result["rowsVisible"],
        )
        return result

    @app.get("/policies/{dataset}")
    def get_policy(
        dataset: Dataset, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        grant = services.authorize(principal, Action.READ_POLICY, dataset)
        loaded = grant.policy
        revisions = services.searcher.policies.revisions(dataset)
        _audit_grant(services, grant, "policy_read", "ok", policyVersion=loaded.version)
        return {
            "dataset": dataset,
            "policyVersion": loaded.version,
            "revision": revisions[-1].number if revisions else 0,
            "canEdit": services.access.permits(principal, Action.EDIT_POLICY, dataset),
            "yaml": loaded.text,
        }

    @app.put("/policies/{dataset}")
    def put_policy(
        dataset: Dataset,
        services: ServicesDep,
        principal: PrincipalDep,
        text: Annotated[str, Body(media_type="application/yaml", max_length=256_000)],
    ) -> dict[str, Any]:
        grant = services.authorize(principal, Action.EDIT_POLICY, dataset)
        try:
            number, loaded = services.searcher.policies.put(grant, text)
        except PolicyError as exc:
            _audit_grant(services, grant, "policy_edit", "rejected", reasons=exc.reasons)
            raise
        _audit_grant(
            services,
            grant,
            "policy_edit",
            "accepted",
            policyVersion=loaded.version,
            revision=number,
        )
        return {"dataset": dataset, "policyVersion": loaded.version, "revision": number}

    @app.post("/detokenize")
    def detokenize(
        body: DetokenizeRequest, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        grant = services.authorize(principal, Action.DETOKENIZE, body.dataset)
        if body.column is not None:
            columns = [grant.require_column(body.column)]
        else:
            columns = sorted(grant.columns or ())
        values = [_detokenize_one(services, grant, t, columns) for t in body.tokens]
        _audit_grant(services, grant, "detokenize", "ok", columns=columns, count=len(values))
        return {"values": values}

    @app.get("/audit")
    def audit(
        services: ServicesDep,
        principal: PrincipalDep,
        dataset: Dataset,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        grant = services.authorize(principal, Action.READ_AUDIT, dataset)
        _audit_grant(services, grant, "audit_read", "ok", limit=limit)
        return {"entries": services.audit.recent(dataset, limit)}
