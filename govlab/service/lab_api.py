"""Routes the classroom needs beyond search: the size of a table, a policy "what if",
and a reset to the shipped policy.

Each handler asks the one authorization layer (``govlab.policy.access``) for a grant
first and acts on it, like every other route of ``govlab.service.api``:

| route | grant | why that one |
|---|---|---|
| ``GET /tables/{dataset}`` | ``seed`` | who may rewrite a table may know its size |
| ``POST /policies/{dataset}/whatif`` | ``policy.edit`` | an editor can already save any policy |
| ``POST /policies/{dataset}/reset`` | ``policy.edit`` | a reset is an edit (a new revision) |
| ``GET /policies/{dataset}/shipped`` | ``policy.read`` | the shipped text is in the repository |

A what-if answers counts, bound filters and mask names per role, never a row: an
editor who may save a policy learns nothing from it that saving would not show.

(No ``from __future__ import annotations`` here: FastAPI must see the dependency types
that ``install_lab_routes`` builds, which are local names.)
"""

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from govlab.errors import BadRequest, GovlabError, TableNotFound
from govlab.generators import SIZES, get_dataset
from govlab.policy import LoadedPolicy, Principal, parse_policy, validate_policy
from govlab.policy.access import Action

if TYPE_CHECKING:
    from govlab.service.api import Services

#: A draft may define many roles; each costs a counted scan, so the what-if stops here.
MAX_WHATIF_ROLES = 20
WHATIF_SUB = "whatif"


def whatif_model(format_enum: Any, default_format: Any) -> type[BaseModel]:
    """The what-if body, with the API's own format enum (read from the formats registry)."""

    class WhatIfRequest(BaseModel):
        """A draft policy and the attributes to bind each role with (the lab's own)."""

        model_config = ConfigDict(extra="forbid")

        yaml: str = Field(max_length=256_000, description="the draft policy (YAML)")
        format: format_enum = default_format  # type: ignore[valid-type]
        attrs: dict[str, dict[str, Any]] = Field(
            default_factory=dict,
            max_length=MAX_WHATIF_ROLES,
            description="role -> the attributes its row filter is bound with",
        )

    return WhatIfRequest


async def _services(request: Request) -> "Services":
    return request.app.state.services


def install_lab_routes(app: FastAPI, principal_dep: Any) -> None:
    """Add the routes to ``app``; ``principal_dep`` is the API's identity dependency."""
    from govlab.service.api import DEFAULT_FORMAT, Dataset, Format  # loaded by now

    ServicesDep = Annotated[Any, Depends(_services)]
    PrincipalDep = Annotated[Principal, Depends(principal_dep)]
    WhatIfRequest = whatif_model(Format, DEFAULT_FORMAT)

    @app.get("/tables/{dataset}")
    def table_info(
        dataset: Dataset,
        services: ServicesDep,
        principal: PrincipalDep,
        format: Format = DEFAULT_FORMAT,
    ) -> dict[str, Any]:
        """Rows and version of the live table, for operators (``can_seed``); 404 if none."""
        grant = services.authorize(principal, Action.SEED, dataset)
        info = services.searcher.engine(format).info(dataset)
        services.audit.record(
            "table_info", "ok", sub=principal.sub, role=grant.role.id, dataset=dataset
        )
        return {
            "dataset": dataset,
            "format": format,
            "rows": info.rows,
            "tableVersion": info.version,
            "size": size_name(info.rows),
        }

    @app.post("/policies/{dataset}/whatif")
    def policy_whatif(
        dataset: Dataset, body: WhatIfRequest, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """Per role: rows visible, bound filter and masks under the saved and the draft
        policy (nothing is stored; 422 when the draft is not valid)."""
        grant = services.authorize(principal, Action.EDIT_POLICY, dataset)
        saved = grant.policy
        draft = validate_policy(parse_policy(body.yaml), get_dataset(dataset))
        roles = _role_ids(draft, saved)
        if len(roles) > MAX_WHATIF_ROLES:
            raise BadRequest(f"a what-if compares at most {MAX_WHATIF_ROLES} roles")
        table_version = _table_version(services, dataset, body.format)
        rows = [
            {
                "role": role,
                "saved": _outcome(services, dataset, body, saved, role, table_version),
                "draft": _outcome(services, dataset, body, draft, role, table_version),
            }
            for role in roles
        ]
        services.audit.record(
            "policy_whatif",
            "ok",
            sub=principal.sub,
            role=grant.role.id,
            dataset=dataset,
            draftVersion=draft.version,
        )
        return {
            "dataset": dataset,
            "format": body.format,
            "tableVersion": table_version,
            "savedVersion": saved.version,
            "draftVersion": draft.version,
            "roles": rows,
        }

    @app.get("/policies/{dataset}/shipped")
    def shipped_policy(
        dataset: Dataset, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """The policy as shipped, and whether the live policy is that text."""
        grant = services.authorize(principal, Action.READ_POLICY, dataset)
        text = shipped_text(services, dataset)
        return {"dataset": dataset, "yaml": text, "live": grant.policy.text == text}

    @app.post("/policies/{dataset}/reset")
    def reset_policy(
        dataset: Dataset, services: ServicesDep, principal: PrincipalDep
    ) -> dict[str, Any]:
        """Store the shipped policy (``governance/``) as the next revision; history stays."""
        grant = services.authorize(principal, Action.EDIT_POLICY, dataset)
        text = shipped_text(services, dataset)
        number, loaded = services.searcher.policies.put(grant, text)
        services.audit.record(
            "policy_edit",
            "accepted",
            sub=principal.sub,
            role=grant.role.id,
            dataset=dataset,
            policyVersion=loaded.version,
            revision=number,
            via="reset",
        )
        return {
            "dataset": dataset,
            "policyVersion": loaded.version,
            "revision": number,
            "yaml": text,
        }


def shipped_text(services: "Services", dataset: str) -> str:
    """The policy as shipped in the governance directory."""
    path = services.searcher.policies.governance_dir / f"{dataset}.yaml"
    return path.read_text(encoding="utf-8")


def size_name(rows: int) -> str | None:
    """``tiny`` for 1,000 rows and so on; None for a count no size has."""
    return next((name for name, n in SIZES.items() if n == rows), None)


def _role_ids(draft: LoadedPolicy, saved: LoadedPolicy) -> list[str]:
    ids = [r.id for r in draft.policy.roles]
    return ids + [r.id for r in saved.policy.roles if r.id not in ids]


def _table_version(services: "Services", dataset: str, fmt: str) -> int | None:
    try:
        return services.searcher.engine(fmt).version(dataset)
    except TableNotFound:
        return None


def _outcome(
    services: "Services",
    dataset: str,
    body: Any,
    policy: LoadedPolicy,
    role: str,
    table_version: int | None,
) -> dict[str, Any]:
    """One role under one policy: rows (None without a table), filter, masks; or why not."""
    if policy.policy.role(role) is None:
        return {"error": f"role {role!r} is not in this policy"}
    try:
        principal = Principal(role, body.attrs.get(role, {}), sub=WHATIF_SUB)
        _, _, plan = services.searcher.plan(dataset, principal, policy, Action.VALIDATE)
        rows = None
        if table_version is not None:
            rows = services.searcher.validate(dataset, body.format, principal, policy)[
                "rowsVisible"
            ]
    except GovlabError as exc:
        return {"error": str(exc)}
    return {
        "rows": rows,
        "filter": plan.filter_sql,
        "masks": {c: m.describe() for c, m in sorted(plan.masks.items())},
    }
