"""The HTTP API (FastAPI): seed jobs, progress, governed search, validate, policies,
detokenize, audit and health.

Identity comes only from a signed bearer token (or, in explicit demo mode, from the
showcase's headers). Errors carry a message and never a traceback or a data value.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import redis
from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from govlab import jobs, masks
from govlab.audit import AuditLog
from govlab.cache import PageCache, cache_ttl, cached_run
from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.errors import AccessDenied, BadRequest, GovlabError, PolicyError, TableNotFound
from govlab.generators import DATASETS, SIZES
from govlab.identity import InvalidToken, principal_from_demo_headers, verify_token
from govlab.policy import AccessPlan, Principal
from govlab.redis_server import redis_url
from govlab.search import GovernedSearch, SearchQuery

log = logging.getLogger("govlab.api")

Dataset = Literal["healthcare", "ecommerce", "financial"]
Format = Literal["delta", "parquet", "iceberg"]
Size = Literal["tiny", "small", "medium", "large"]
assert set(Dataset.__args__) == set(DATASETS)  # type: ignore[attr-defined]
assert set(Format.__args__) == set(FORMATS)  # type: ignore[attr-defined]
assert set(Size.__args__) == set(SIZES)  # type: ignore[attr-defined]

DEFAULT_ORIGINS = (
    "http://localhost",
    "http://127.0.0.1",
    "http://localhost:8866",
    "http://127.0.0.1:8866",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
)
STATUS = {
    InvalidToken: 401,
    AccessDenied: 403,
    TableNotFound: 404,
    jobs.JobNotFound: 404,
    BadRequest: 422,
    PolicyError: 422,
}


@dataclass
class Services:
    settings: Settings
    searcher: GovernedSearch
    redis: redis.Redis
    cache: PageCache
    audit: AuditLog
    secret: bytes
    demo_auth: bool


class SeedRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    dataset: Dataset
    size: Size = "tiny"
    format: Format = "delta"
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    governance_config: str | None = Field(
        default=None, alias="governanceConfig", max_length=256_000
    )
    role: str | None = Field(default=None, description="ignored: the role comes from the token")


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Dataset
    tokens: list[str] = Field(min_length=1, max_length=200)


def create_app(
    settings: Settings | None = None,
    redis_url_: str | None = None,
    demo_auth: bool | None = None,
    cors_origins: tuple[str, ...] | None = None,
) -> FastAPI:
    settings = settings or Settings.from_env()
    if demo_auth is None:
        demo_auth = os.environ.get("GOVLAB_DEMO_AUTH") == "1"
    url = redis_url_ or redis_url(settings)
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    services = Services(
        settings=settings,
        searcher=GovernedSearch(settings),
        redis=client,
        cache=PageCache(client, cache_ttl()),
        audit=AuditLog(settings.data_dir / "audit" / "audit.jsonl", client),
        secret=settings.secret_key(),
        demo_auth=demo_auth,
    )
    app = FastAPI(
        title="govlab",
        version=_version("govlab"),
        description="Governed (RLS/CLS), masked, paginated search over lakehouse tables.",
    )
    app.state.services = services
    origins = cors_origins or tuple(
        o for o in os.environ.get("GOVLAB_CORS_ORIGINS", ",".join(DEFAULT_ORIGINS)).split(",") if o
    )
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
    return app


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
            services.audit.record(
                "denial",
                "denied",
                path=request.url.path,
                reason=str(exc),
                dataset=request.query_params.get("dataset"),
            )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

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
def services_of(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services_of)]


def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_user_role: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_user_context: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    services = services_of(request)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("Authorization must be 'Bearer <token>'")
        return verify_token(services.secret, token.strip())
    if services.demo_auth and x_user_role:
        return principal_from_demo_headers(x_user_role, x_user_context)
    raise InvalidToken("missing bearer token")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def record_audit(
    services: Services, principal: Principal, role: str, event: str, outcome: str, **fields: Any
) -> None:
    """One audit record for a request by this principal acting as this role."""
    services.audit.record(event, outcome, sub=principal.sub, role=role, **fields)


def _plan(services: Services, dataset: str, principal: Principal) -> AccessPlan:
    return services.searcher.plan(dataset, principal)[2]


def _require_editor(services: Services, dataset: str, principal: Principal) -> AccessPlan:
    plan = _plan(services, dataset, principal)
    if not plan.can_edit_policies:
        raise AccessDenied(f"role {plan.role!r} may not edit {dataset} policies")
    return plan


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
        plan = _plan(services, body.dataset, principal)
        if body.governance_config is not None:
            if not plan.can_edit_policies:
                raise AccessDenied(f"role {plan.role!r} may not install a governance config")
            number, loaded = services.searcher.policies.put(body.dataset, body.governance_config)
            record_audit(
                services,
                principal,
                plan.role,
                "policy_edit",
                "accepted",
                dataset=body.dataset,
                policyVersion=loaded.version,
                revision=number,
                via="seed",
            )
        job_id = jobs.enqueue_seed(
            services.redis,
            services.settings,
            body.dataset,
            body.size,
            body.format,
            body.seed,
            principal.sub,
        )
        record_audit(
            services,
            principal,
            plan.role,
            "seed",
            "queued",
            dataset=body.dataset,
            format=body.format,
            size=body.size,
            jobId=job_id,
        )
        return {"jobId": job_id}

    @app.get("/progress")
    def get_progress(
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: Annotated[str, Query(alias="jobId", max_length=64)],
    ) -> dict[str, Any]:
        return jobs.progress(services.redis, job_id)

    @app.delete("/jobs/{job_id}")
    def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
        return jobs.cancel(services.redis, job_id)

    @app.get("/search")
    def search(
        response: Response,
        services: ServicesDep,
        principal: PrincipalDep,
        dataset: Dataset,
        format: Format = "delta",
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
    ) -> dict[str, Any]:
        started = time.perf_counter()
        query = SearchQuery.parse(q, page, page_size, sort, exact_total)
        prepared = services.searcher.prepare(dataset, format, principal, query)
        page_data, status = cached_run(services.searcher, services.cache, prepared, principal)
        response.headers["X-Cache"] = status.upper()
        result = {k: v for k, v in page_data.items() if k not in ("engine", "pushdown")}
        result["tookMs"] = round((time.perf_counter() - started) * 1000, 2)  # this request's
        result["strategy"] = {
            "cache": status,
            "engine": page_data["engine"],
            "pushdown": page_data["pushdown"],
        }
        record_audit(
            services,
            principal,
            page_data["role"],
            "search",
            "ok",
            dataset=dataset,
            format=format,
            q=query.q,
            policyVersion=page_data["policyVersion"],
            tableVersion=page_data["tableVersion"],
            filter=prepared.plan.filter_sql,
            maskedFields=page_data["maskedFields"],
            rows=len(page_data["items"]),
            total=page_data["total"],
            totalExact=page_data["totalExact"],
            cache=status,
        )
        return result

    @app.get("/validate")
    def validate(
        services: ServicesDep, principal: PrincipalDep, dataset: Dataset, format: Format = "delta"
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
        plan = _plan(services, dataset, principal)
        loaded = services.searcher.policies.current(dataset)
        revisions = services.searcher.policies.revisions(dataset)
        record_audit(
            services,
            principal,
            plan.role,
            "policy_read",
            "ok",
            dataset=dataset,
            policyVersion=loaded.version,
        )
        return {
            "dataset": dataset,
            "policyVersion": loaded.version,
            "revision": revisions[-1].number if revisions else 0,
            "canEdit": plan.can_edit_policies,
            "yaml": loaded.text,
        }

    @app.put("/policies/{dataset}")
    def put_policy(
        dataset: Dataset,
        services: ServicesDep,
        principal: PrincipalDep,
        text: Annotated[str, Body(media_type="application/yaml", max_length=256_000)],
    ) -> dict[str, Any]:
        plan = _require_editor(services, dataset, principal)
        try:
            number, loaded = services.searcher.policies.put(dataset, text)
        except PolicyError as exc:
            record_audit(
                services,
                principal,
                plan.role,
                "policy_edit",
                "rejected",
                dataset=dataset,
                reasons=exc.reasons,
            )
            raise
        record_audit(
            services,
            principal,
            plan.role,
            "policy_edit",
            "accepted",
            dataset=dataset,
            policyVersion=loaded.version,
            revision=number,
        )
        return {"dataset": dataset, "policyVersion": loaded.version, "revision": number}

    @app.post("/detokenize")
    def detokenize(
        body: DetokenizeRequest, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        plan = _plan(services, body.dataset, principal)
        if not plan.can_detokenize:
            raise AccessDenied(f"role {plan.role!r} may not detokenize")
        values = [masks.detokenize(t, services.secret) for t in body.tokens]
        record_audit(
            services,
            principal,
            plan.role,
            "detokenize",
            "ok",
            dataset=body.dataset,
            count=len(values),
        )
        return {"values": values}

    @app.get("/audit")
    def audit(
        services: ServicesDep,
        principal: PrincipalDep,
        dataset: Dataset,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        _require_editor(services, dataset, principal)
        return {"entries": services.audit.recent(limit)}
