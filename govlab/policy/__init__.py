"""Governance policies: load and validate YAML, then compile a role into an access plan.

The access plan is everything the rest of govlab needs to serve one principal: the
bound row filter (pushed into the scan) and the mask plan (applied to the page).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from govlab import masks
from govlab.catalog import DatasetSpec
from govlab.errors import AccessDenied, PolicyError
from govlab.policy.ast import Expr
from govlab.policy.attributes import check_attributes, scalar_problem
from govlab.policy.bind import bind_filter
from govlab.policy.compile import to_sql
from govlab.policy.model import ROLE_ID_PATTERN, MaskSpec, Policy, RolePolicy
from govlab.policy.parser import parse_filter

__all__ = [
    "AccessPlan",
    "LoadedPolicy",
    "MaskSpec",
    "Policy",
    "Principal",
    "RolePolicy",
    "compile_access",
    "load_policy",
    "parse_policy",
    "validate_policy",
]

MAX_POLICY_BYTES = 256_000


@dataclass(frozen=True)
class Principal:
    """Who is asking: a role and the attributes the row filter may refer to.

    Made only with checked attributes (``check_attributes``), so no later layer meets
    a NaN, an out-of-range integer or a lone surrogate.
    """

    role: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    sub: str = "anonymous"

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not re.match(ROLE_ID_PATTERN, self.role):
            raise AccessDenied("the role name is not valid (letters, digits, _.-; at most 64)")
        if not isinstance(self.sub, str) or scalar_problem(self.sub) or not self.sub:
            raise AccessDenied("the subject (sub) is not a valid name")
        object.__setattr__(self, "attrs", check_attributes(self.attrs))


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    text: str

    @property
    def version(self) -> str:
        """Content digest: any edit, however small, is a new version (and new cache keys)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AccessPlan:
    role: str
    row_filter: Expr
    masks: dict[str, MaskSpec]
    can_edit_policies: bool
    can_detokenize: bool

    @property
    def mask_plan(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {col: (m.type, m.params) for col, m in self.masks.items()}

    @property
    def filter_sql(self) -> str:
        return to_sql(self.row_filter)


def parse_policy(text: str) -> LoadedPolicy:
    """YAML text -> validated model. Only ``yaml.safe_load``: no tags, no objects."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"policy is larger than {MAX_POLICY_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise PolicyError(f"policy is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise PolicyError("policy must be a YAML mapping with version, dataset and roles")
    try:
        return LoadedPolicy(Policy.model_validate(data), text)
    except ValidationError as exc:
        reasons = [_pydantic_reason(err) for err in exc.errors()]
        raise PolicyError("invalid policy: " + "; ".join(reasons), reasons) from None


def _pydantic_reason(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def load_policy(path: str | Path) -> LoadedPolicy:
    return parse_policy(Path(path).read_text(encoding="utf-8"))


def validate_policy(loaded: LoadedPolicy, spec: DatasetSpec) -> LoadedPolicy:
    """Check every role against the dataset's schema; raise with all the reasons at once."""
    policy = loaded.policy
    reasons: list[str] = []
    if policy.dataset != spec.name:
        reasons.append(f"policy is for dataset {policy.dataset!r}, not {spec.name!r}")
    for role in policy.roles:
        reasons.extend(f"role {role.id!r}: {r}" for r in _role_problems(role, spec))
    if reasons:
        raise PolicyError("invalid policy: " + "; ".join(reasons), reasons)
    return loaded


def _role_problems(role: RolePolicy, spec: DatasetSpec) -> list[str]:
    problems: list[str] = []
    try:
        bind_filter(parse_filter(role.row_filter), spec.schema, attrs=None)
    except PolicyError as exc:
        problems.append(f"row_filter: {exc}")
    if isinstance(role.can_detokenize, list):
        problems.extend(
            f"can_detokenize names unknown column {column!r}"
            for column in role.can_detokenize
            if column not in spec.schema.names
        )
    for column, mask in role.column_masks.items():
        if column not in spec.schema.names:
            problems.append(f"mask on unknown column {column!r}")
            continue
        if column == spec.primary_key:
            problems.append(f"the primary key {column!r} orders every page and cannot be masked")
        problems.extend(
            masks.check_mask(mask.type, mask.params, spec.schema.field(column).type, column)
        )
    return problems


def compile_access(loaded: LoadedPolicy, spec: DatasetSpec, principal: Principal) -> AccessPlan:
    """Bind the principal's role: unknown role or unusable attributes deny, never allow."""
    role = loaded.policy.role(principal.role)
    if role is None:
        raise AccessDenied(f"role {principal.role!r} is not defined in the {spec.name} policy")
    row_filter = bind_filter(parse_filter(role.row_filter), spec.schema, principal.attrs)
    return AccessPlan(
        role=role.id,
        row_filter=row_filter,
        masks=dict(role.column_masks),
        can_edit_policies=role.can_edit_policies,
        can_detokenize=role.can_detokenize is not False,
    )
