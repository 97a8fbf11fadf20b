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


class RolePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    can_edit_policies: bool = False
    can_detokenize: bool = False
    row_filter: str
    column_masks: dict[str, MaskSpec] = Field(default_factory=dict)

    @field_validator("row_filter", mode="before")
    @classmethod
    def _bool_filter(cls, value: Any) -> Any:
        """YAML reads ``row_filter: true`` as a boolean; it means the filter ``true``."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

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
