"""Compile target: a PyIceberg ``BooleanExpression`` for the Iceberg scan.

It lives with the Iceberg engine so the policy layer never imports PyIceberg. The
expression selects a *superset* of the rows: Iceberg has no substring predicate, so
``Contains`` becomes AlwaysTrue and the engine applies the exact Arrow filter to what
the scan returns. NOT IN and != also demand NOT NULL explicitly, since PyIceberg's own
Arrow evaluation lets NULL through.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import Any

import pyarrow as pa
from pyiceberg import expressions as ice

from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.visitor import NnfVisitor

_CMP: dict[str, Any] = {
    "==": ice.EqualTo,
    "<": ice.LessThan,
    "<=": ice.LessThanOrEqual,
    ">": ice.GreaterThan,
    ">=": ice.GreaterThanOrEqual,
}


class IcebergVisitor(NnfVisitor[ice.BooleanExpression]):
    def visit_true(self, expr: AlwaysTrue) -> ice.BooleanExpression:
        return ice.AlwaysTrue()

    def visit_false(self, expr: AlwaysFalse) -> ice.BooleanExpression:
        return ice.AlwaysFalse()

    def visit_cmp(self, expr: Cmp) -> ice.BooleanExpression:
        value = _literal(expr.value)
        if expr.op == "!=":
            return ice.And(ice.NotEqualTo(expr.column, value), ice.NotNull(expr.column))
        return _CMP[expr.op](expr.column, value)

    def visit_in(self, expr: In) -> ice.BooleanExpression:
        if not expr.values:
            return ice.AlwaysFalse()
        if pa.types.is_floating(expr.dtype):  # -0.0 == 0.0, as the other targets say
            return reduce(ice.Or, (ice.EqualTo(expr.column, v) for v in expr.values))
        return ice.In(expr.column, {_literal(v) for v in expr.values})

    def visit_not_in(self, expr: NotIn) -> ice.BooleanExpression:
        if not expr.values:
            return ice.NotNull(expr.column)
        listed = {_literal(v) for v in expr.values}
        return ice.And(ice.NotIn(expr.column, listed), ice.NotNull(expr.column))

    def visit_is_null(self, expr: IsNull) -> ice.BooleanExpression:
        return ice.IsNull(expr.column)

    def visit_not_null(self, expr: NotNull) -> ice.BooleanExpression:
        return ice.NotNull(expr.column)

    def visit_contains(self, expr: Contains) -> ice.BooleanExpression:
        return ice.AlwaysTrue()  # superset; the exact Arrow pass follows

    def visit_and(self, expr: And) -> ice.BooleanExpression:
        return reduce(ice.And, (self.visit(c) for c in expr.children))

    def visit_or(self, expr: Or) -> ice.BooleanExpression:
        return reduce(ice.Or, (self.visit(c) for c in expr.children))


def _literal(value: Any) -> Any:
    """PyIceberg converts ISO strings to date/timestamp literals of the column's type."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def to_iceberg(expr: Expr) -> ice.BooleanExpression:
    return IcebergVisitor().visit(expr)
