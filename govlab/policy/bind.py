"""Binding: resolve columns against a schema and attributes into typed literals.

Everything that can make a filter mean something other than what its author wrote is
refused here, closed: an unknown column, a literal of the wrong type, a missing
attribute, a list where a scalar belongs. With ``attrs=None`` only the policy's own
text is checked (placeholders are left for request time): that is policy validation.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from govlab.errors import AccessDenied, PolicyError
from govlab.policy.ast import (
    FALSE,
    FLIPPED_CMP,
    TRUE,
    Cmp,
    CmpOp,
    ColumnRef,
    Const,
    Expr,
    IsNull,
    NotNull,
    Operand,
    Placeholder,
    UAnd,
    UBool,
    UCompare,
    UExpr,
    UIn,
    UIsNull,
    UNot,
    UOr,
    and_,
    in_,
    negate,
    not_in,
    or_,
    to_nnf,
)
from govlab.policy.attributes import scalar_problem

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_ABSENT = object()


def bind_filter(expr: UExpr, schema: pa.Schema, attrs: Mapping[str, Any] | None) -> Expr:
    """Return the bound filter in negation normal form (no ``Not`` node survives)."""
    return to_nnf(bind_tree(expr, schema, attrs))


def bind_tree(expr: UExpr, schema: pa.Schema, attrs: Mapping[str, Any] | None) -> Expr:
    """Bind without normalising; the tests evaluate this against the NNF form."""
    return _Binder(schema, attrs).bind(expr)


class _Binder:
    def __init__(self, schema: pa.Schema, attrs: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.attrs = attrs
        self.validating = attrs is None

    def bind(self, expr: UExpr) -> Expr:
        match expr:
            case UAnd(left, right):
                return and_(self.bind(left), self.bind(right))
            case UOr(left, right):
                return or_(self.bind(left), self.bind(right))
            case UNot(child):
                bound = self.bind(child)
                return bound if self.validating else negate(bound)
            case UCompare(op, left, right):
                return self.bind_compare(op, left, right)
            case UIn(operand, items, negated):
                return self.bind_in(operand, items, negated)
            case UIsNull(operand, negated):
                column = self.column(operand, "is null")
                return NotNull(column) if negated else IsNull(column)
            case UBool(operand):
                return self.bind_bool(operand)
        raise PolicyError(f"unsupported expression {type(expr).__name__}")

    # -- operands ---------------------------------------------------------------
    def column(self, operand: Operand, context: str) -> str:
        if not isinstance(operand, ColumnRef):
            raise PolicyError(f"the left side of {context} must be a column")
        if operand.name not in self.schema.names:
            raise PolicyError(f"unknown column {operand.name!r}")
        return operand.name

    def attribute(self, name: str, want_list: bool) -> Any:
        assert self.attrs is not None
        value = self.attrs.get(name, _ABSENT)
        if value is _ABSENT or value is None:
            raise AccessDenied(f"attribute {name!r} is required by the row filter but missing")
        is_list = isinstance(value, list | tuple)
        if is_list != want_list:
            shape = "a list" if want_list else "a single value"
            raise AccessDenied(f"attribute {name!r} must be {shape}")
        return value

    def literal(self, operand: Operand, dtype: pa.DataType | None, where: str) -> Any:
        """The operand's value converted to dtype (or its own type when dtype is None)."""
        if isinstance(operand, Placeholder):
            if self.validating:
                return _ABSENT
            value = self.attribute(operand.attr, want_list=False)
            return coerce(value, dtype, f"attribute {operand.attr!r}", AccessDenied, where)
        if not isinstance(operand, Const):
            raise PolicyError(f"only values may appear in a list or comparison for {where}")
        return coerce(operand.value, dtype, "literal", PolicyError, where)

    # -- predicates -------------------------------------------------------------
    def bind_compare(self, op: CmpOp, left: Operand, right: Operand) -> Expr:
        if isinstance(right, ColumnRef) and not isinstance(left, ColumnRef):
            left, right, op = right, left, FLIPPED_CMP[op]
        if isinstance(right, ColumnRef):
            raise PolicyError("comparing two columns is not supported; compare with a value")
        if not isinstance(left, ColumnRef):
            return self.fold_constant(op, left, right)
        column = self.column(left, op)
        dtype = self.schema.field(column).type
        if op not in ("==", "!=") and (pa.types.is_boolean(dtype)):
            raise PolicyError(f"operator {op} is not defined for boolean column {column!r}")
        value = self.literal(right, dtype, f"column {column!r}")
        if value is _ABSENT:
            return TRUE
        return Cmp(column, op, value, dtype)

    def fold_constant(self, op: str, left: Operand, right: Operand) -> Expr:
        lhs = self.literal(left, None, "comparison")
        rhs = self.literal(right, None, "comparison")
        if lhs is _ABSENT or rhs is _ABSENT:
            return TRUE
        if _family(lhs) != _family(rhs):
            from_attribute = isinstance(left, Placeholder) or isinstance(right, Placeholder)
            error = AccessDenied if from_attribute else PolicyError
            raise error("comparison between values of different types")
        ops = {
            "==": lhs == rhs, "!=": lhs != rhs, "<": lhs < rhs,
            "<=": lhs <= rhs, ">": lhs > rhs, ">=": lhs >= rhs,
        }  # fmt: skip
        return TRUE if ops[op] else FALSE

    def bind_in(self, operand: Operand, items: Any, negated: bool) -> Expr:
        column = self.column(operand, "in")
        dtype = self.schema.field(column).type
        where = f"column {column!r}"
        if isinstance(items, Placeholder):
            if self.validating:
                return TRUE
            raw = self.attribute(items.attr, want_list=True)
            label = f"attribute {items.attr!r}"
            values = tuple(coerce(v, dtype, label, AccessDenied, where) for v in raw)
        else:
            bound = [self.literal(item, dtype, where) for item in items]
            if any(v is _ABSENT for v in bound):
                return TRUE
            values = tuple(bound)
        return not_in(column, values, dtype) if negated else in_(column, values, dtype)

    def bind_bool(self, operand: Operand) -> Expr:
        if isinstance(operand, ColumnRef):
            column = self.column(operand, "a boolean test")
            dtype = self.schema.field(column).type
            if not pa.types.is_boolean(dtype):
                raise PolicyError(f"column {column!r} is not boolean; compare it with a value")
            return Cmp(column, "==", True, dtype)
        value = self.literal(operand, pa.bool_(), "a boolean test")
        if value is _ABSENT:
            return TRUE
        return TRUE if value else FALSE


def _family(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def coerce(
    value: Any,
    dtype: pa.DataType | None,
    label: str,
    error: type[Exception],
    where: str,
) -> Any:
    """Convert value to dtype's Python type, strictly: no silent string-to-number casts.

    The message names the value's *label* (literal or attribute) and the column, never
    the value itself, so an error cannot echo data back.
    """
    problem = scalar_problem(value)
    if problem:
        raise error(f"{label} {problem}")
    if dtype is None:
        if isinstance(value, str | int | float | bool):
            return value
        raise error(f"{label} has an unsupported type for {where}")
    converted = _convert(value, dtype)
    if converted is None:
        raise error(f"{label} has the wrong type for {where} ({dtype})")
    return converted


def _convert(value: Any, dtype: pa.DataType) -> Any:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return value if isinstance(value, str) and "\x00" not in value else None
    if pa.types.is_boolean(dtype):
        return value if isinstance(value, bool) else None
    if pa.types.is_integer(dtype):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok and INT64_MIN <= value <= INT64_MAX else None
    if pa.types.is_floating(dtype):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else None
        return None
    if pa.types.is_date(dtype):
        return _parse_date(value)
    if pa.types.is_timestamp(dtype):
        parsed = _parse_timestamp(value)
        # a zone on one side only would be silently shifted by some engines and not others
        if parsed is None or (parsed.tzinfo is None) != (dtype.tz is None):
            return None
        return parsed
    return None


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _parse_timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
