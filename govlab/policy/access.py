"""The one authorization layer: every decision govlab makes about who may do what.

The API, the CLI and the widgets ask :func:`authorize` (through :class:`AccessControl`,
which knows where the live policies are) and act on the :class:`Grant` it returns; an
HTTP handler never looks at a role's permissions itself. Actions that change or reveal
state (``PolicyStore.put``, a seed job) take the grant as an argument, so they cannot be
reached without one.

| action | who may |
|---|---|
| ``search``, ``validate`` | a role of the policy, with the attributes its row filter needs |
| ``policy.read`` | a role of the dataset's policy |
| ``policy.edit`` | ``can_edit_policies`` |
| ``seed`` | ``can_seed`` (default: editors) |
| ``job.read``, ``job.cancel`` | the job's requester (same sub and role), or an editor |
| ``detokenize`` | ``can_detokenize: true``, or the column in ``can_detokenize: [...]`` |
| ``audit.read`` | ``can_read_audit`` (default: editors); entries of that dataset only |
| ``export`` | ``can_export`` (default: no role), with the attributes its row filter needs |

An export is a bulk copy of exactly what the role's search shows (its row filter, its
masks), so it needs no more than search to be safe, but it is a separate, explicit grant:
a file leaves the service's control (no page cache keyed by versions, no later policy
edit or key rotation reaches it), so a role exports only when its policy says so.

Management actions look at the role's permissions only: they never bind the row
filter, so an editor's token needs no row-filter attributes. Search and validate bind
it (:func:`compile_access`) and fail closed on a missing or unusable attribute.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from govlab.catalog import get_dataset
from govlab.errors import AccessDenied
from govlab.policy import AccessPlan, LoadedPolicy, Principal, compile_access
from govlab.policy.model import RolePolicy

if TYPE_CHECKING:
    from govlab.policy.store import PolicyStore


class Action(StrEnum):
    SEARCH = "search"
    VALIDATE = "validate"
    READ_POLICY = "policy.read"
    EDIT_POLICY = "policy.edit"
    SEED = "seed"
    READ_JOB = "job.read"
    CANCEL_JOB = "job.cancel"
    DETOKENIZE = "detokenize"
    READ_AUDIT = "audit.read"
    EXPORT = "export"


#: The permission each action needs, as the README and the refusals name it.
PERMISSION: dict[Action, str] = {
    Action.SEARCH: "a role in the policy",
    Action.VALIDATE: "a role in the policy",
    Action.READ_POLICY: "a role in the policy",
    Action.EDIT_POLICY: "can_edit_policies",
    Action.SEED: "can_seed",
    Action.READ_JOB: "the job's requester or can_edit_policies",
    Action.CANCEL_JOB: "the job's requester or can_edit_policies",
    Action.DETOKENIZE: "can_detokenize",
    Action.READ_AUDIT: "can_read_audit",
    Action.EXPORT: "can_export",
}
_DATA_ACTIONS = frozenset({Action.SEARCH, Action.VALIDATE, Action.EXPORT})
_ISSUED = object()


@dataclass(frozen=True)
class JobOwner:
    """Who asked for a job: its subject and role, and the dataset it writes."""

    job_id: str
    sub: str
    role: str
    dataset: str


@dataclass(frozen=True)
class Grant:
    """Proof that ``principal`` may do ``action`` on ``dataset`` under ``policy``.

    Only :func:`authorize` makes one; code that acts on a grant checks its action and
    dataset with :meth:`require`.
    """

    principal: Principal
    action: Action
    dataset: str
    policy: LoadedPolicy
    role: RolePolicy
    plan: AccessPlan | None = None  # bound row filter and masks, for search/validate
    columns: frozenset[str] | None = None  # detokenize: the columns this role may redeem
    job: JobOwner | None = None  # job.read / job.cancel: the one job this grant is for
    _issued: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._issued is not _ISSUED:
            raise TypeError("a Grant is made by govlab.policy.access.authorize only")

    def require(self, action: Action, dataset: str) -> Grant:
        if self.action is not action or self.dataset != dataset:
            raise AccessDenied(f"this grant is for {self.action} on {self.dataset}")
        return self

    def require_job(self, action: Action, job_id: str) -> Grant:
        if self.action is not action or self.job is None or self.job.job_id != job_id:
            raise AccessDenied(f"this grant is not for {action} on job {job_id!r}")
        return self

    def require_column(self, column: str) -> str:
        if self.action is not Action.DETOKENIZE or column not in (self.columns or ()):
            raise AccessDenied(
                f"role {self.role.id!r} may not detokenize {column!r} in {self.dataset}"
            )
        return column

    @property
    def bound_plan(self) -> AccessPlan:
        if self.plan is None:  # pragma: no cover - only data actions are read this way
            raise AccessDenied(f"{self.action} carries no access plan")
        return self.plan


def authorize(
    policy: LoadedPolicy,
    principal: Principal,
    action: Action,
    dataset: str,
    *,
    job: JobOwner | None = None,
) -> Grant:
    """Decide; raise :class:`AccessDenied` (HTTP 403, CLI exit 3) or return a grant.

    The refusal carries ``dataset`` so the audit files it under that dataset."""
    memo_key = _memo_key(policy, principal, action, dataset) if job is None else None
    if memo_key is not None:
        with _granted_lock:
            known = _granted.get(memo_key)
        if known is not None and known.policy is policy:
            return known
    try:
        grant = _decide(policy, principal, action, dataset, job)
    except AccessDenied as exc:
        exc.dataset = dataset
        raise
    if memo_key is not None:
        with _granted_lock:
            _granted[memo_key] = grant
            while len(_granted) > _GRANTS_KEPT:
                _granted.popitem(last=False)
    return grant


#: Grants already decided, by (policy object, principal, action, dataset): a grant is a
#: pure function of these (the policy object is the live text; an edit is a new object),
#: and binding a row filter is most of what a cache hit would otherwise spend here.
#: Refusals are decided afresh each time.
_GRANTS_KEPT = 1024
_granted: OrderedDict[tuple[Any, ...], Grant] = OrderedDict()
_granted_lock = threading.Lock()


def _memo_key(
    policy: LoadedPolicy, principal: Principal, action: Action, dataset: str
) -> tuple[Any, ...] | None:
    try:  # checked attributes are JSON scalars and lists: 1, 1.0 and true stay apart
        attrs = json.dumps(dict(principal.attrs), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return (id(policy), principal.role, principal.sub, attrs, action, dataset)


def _decide(
    policy: LoadedPolicy,
    principal: Principal,
    action: Action,
    dataset: str,
    job: JobOwner | None,
) -> Grant:
    spec = get_dataset(dataset)
    role = policy.policy.role(principal.role)
    if role is None:
        raise AccessDenied(f"role {principal.role!r} is not defined in the {dataset} policy")
    plan = compile_access(policy, spec, principal) if action in _DATA_ACTIONS else None
    if not _permitted(role, action, principal, dataset, job):
        raise AccessDenied(
            f"role {role.id!r} may not {_verb(action)} {dataset} (needs {PERMISSION[action]})"
        )
    columns = _detokenize_columns(role, spec.schema.names) if action is Action.DETOKENIZE else None
    return Grant(principal, action, dataset, policy, role, plan, columns, job, _ISSUED)


def permits(policy: LoadedPolicy, principal: Principal, action: Action, dataset: str) -> bool:
    """Whether :func:`authorize` would grant: for showing, hiding or choosing, not acting."""
    try:
        authorize(policy, principal, action, dataset)
    except AccessDenied:
        return False
    return True


def _permitted(
    role: RolePolicy, action: Action, principal: Principal, dataset: str, job: JobOwner | None
) -> bool:
    match action:
        case Action.SEARCH | Action.VALIDATE | Action.READ_POLICY:
            return True
        case Action.EDIT_POLICY:
            return role.can_edit_policies
        case Action.SEED:
            return role.seeds
        case Action.READ_JOB | Action.CANCEL_JOB:
            if job is None or job.dataset != dataset:
                return False
            own = job.sub == principal.sub and job.role == principal.role
            return own or role.can_edit_policies
        case Action.DETOKENIZE:
            return role.can_detokenize is not False and role.can_detokenize != []
        case Action.READ_AUDIT:
            return role.reads_audit
        case Action.EXPORT:
            return role.can_export
    return False  # pragma: no cover - every action is matched above


def _detokenize_columns(role: RolePolicy, names: list[str]) -> frozenset[str]:
    return frozenset(c for c in names if role.detokenizes(c))


def _verb(action: Action) -> str:
    return {
        Action.SEARCH: "search",
        Action.VALIDATE: "validate",
        Action.READ_POLICY: "read the policy of",
        Action.EDIT_POLICY: "edit the policy of",
        Action.SEED: "seed",
        Action.READ_JOB: "follow this job on",
        Action.CANCEL_JOB: "cancel this job on",
        Action.DETOKENIZE: "detokenize in",
        Action.READ_AUDIT: "read the audit trail of",
        Action.EXPORT: "export",
    }[action]


class AccessControl:
    """``authorize`` against the live policies of one data root."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    def authorize(
        self,
        principal: Principal,
        action: Action,
        dataset: str,
        *,
        job: JobOwner | None = None,
        policy: LoadedPolicy | None = None,
    ) -> Grant:
        loaded = policy or self.store.current(dataset)
        return authorize(loaded, principal, action, dataset, job=job)

    def permits(self, principal: Principal, action: Action, dataset: str) -> bool:
        return permits(self.store.current(dataset), principal, action, dataset)
