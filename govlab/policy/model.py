"""The governance YAML, as pydantic models.

Unknown keys are rejected (``extra="forbid"``): a misspelt ``colum_masks`` must not
silently mean "no masks". A role must state its ``row_filter``; ``true`` is how a policy
says "every row", so forgetting the key can never mean that.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class MaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        """Accept ``hash``, ``{type: redact_part, keep: 4}`` and ``null`` (withheld)."""
        if value is None:
            return {"type": "null"}
        if isinstance(value, str):
            return {"type": value}
        if isinstance(value, dict) and "params" not in value:
            rest = {k: v for k, v in value.items() if k != "type"}
            return {"type": value.get("type"), "params": rest}
        return value

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.type}({args})" if args else self.type


ROLE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class RolePolicy(BaseModel):
    """One role. Permissions are explicit booleans; the ones left out default closed,
    except that an editor (``can_edit_policies``) may also seed its dataset and read
    its audit trail unless the policy says otherwise. ``can_detokenize`` is ``true``
    (every tokenised column) or a list of columns."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=ROLE_ID_PATTERN)
    description: str | None = None
    can_edit_policies: bool = False
    can_seed: bool | None = None  # None: as can_edit_policies
    can_read_audit: bool | None = None  # None: as can_edit_policies
    can_detokenize: bool | list[str] = False
    can_export: bool = False  # a bulk copy of what the role sees: an explicit grant only
    row_filter: str
    column_masks: dict[str, MaskSpec] = Field(default_factory=dict)

    @field_validator("row_filter", mode="before")
    @classmethod
    def _bool_filter(cls, value: Any) -> Any:
        """YAML reads ``row_filter: true`` as a boolean; it means the filter ``true``."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    @field_validator("can_detokenize")
    @classmethod
    def _detokenize_columns(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list) and len(set(value)) != len(value):
            raise ValueError("can_detokenize lists a column twice")
        return value

    @property
    def seeds(self) -> bool:
        return self.can_edit_policies if self.can_seed is None else self.can_seed

    @property
    def reads_audit(self) -> bool:
        return self.can_edit_policies if self.can_read_audit is None else self.can_read_audit

    def detokenizes(self, column: str) -> bool:
        if isinstance(self.can_detokenize, bool):
            return self.can_detokenize
        return column in self.can_detokenize

    @field_validator("column_masks", mode="before")
    @classmethod
    def _null_masks(cls, value: Any) -> Any:
        return {} if value is None else value


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    dataset: str
    description: str | None = None
    roles: list[RolePolicy] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, roles: list[RolePolicy]) -> list[RolePolicy]:
        seen: set[str] = set()
        for role in roles:
            if role.id in seen:
                raise ValueError(f"role {role.id!r} is defined twice")
            seen.add(role.id)
        return roles

    def role(self, role_id: str) -> RolePolicy | None:
        return next((r for r in self.roles if r.id == role_id), None)
