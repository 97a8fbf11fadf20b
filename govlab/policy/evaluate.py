"""The oracle: three-valued (SQL) evaluation of one row in pure Python.

Every other compile target is tested against it. It alone implements ``Not`` (full
three-valued logic), which is how the tests check the negation-normal-form rewrite.
A text match is ``casefold.contains``: ASCII letters compare caselessly, every other
character only equals itself (the definition every target implements).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.casefold import contains
from govlab.policy.to_arrow import PY_OPS
from govlab.policy.visitor import ExprVisitor


class RowEvaluator(ExprVisitor[bool | None]):
    """True, False or None (unknown) for one row."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row

    def visit_true(self, expr: AlwaysTrue) -> bool | None:
        return True

    def visit_false(self, expr: AlwaysFalse) -> bool | None:
        return False

    def visit_cmp(self, expr: Cmp) -> bool | None:
        cell = self.row[expr.column]
        return None if cell is None else bool(PY_OPS[expr.op](cell, expr.value))

    def visit_in(self, expr: In) -> bool | None:
        cell = self.row[expr.column]
        return None if cell is None else cell in expr.values

    def visit_not_in(self, expr: NotIn) -> bool | None:
        cell = self.row[expr.column]
        return None if cell is None else cell not in expr.values

    def visit_is_null(self, expr: IsNull) -> bool | None:
        return self.row[expr.column] is None

    def visit_not_null(self, expr: NotNull) -> bool | None:
        return self.row[expr.column] is not None

    def visit_contains(self, expr: Contains) -> bool | None:
        cell = self.row[expr.column]
        return None if cell is None else contains(str(cell), expr.term)

    def visit_and(self, expr: And) -> bool | None:
        results = [self.visit(c) for c in expr.children]
        if False in results:
            return False
        return None if None in results else True

    def visit_or(self, expr: Or) -> bool | None:
        results = [self.visit(c) for c in expr.children]
        if True in results:
            return True
        return None if None in results else False

    def visit_not(self, expr: Not) -> bool | None:
        inner = self.visit(expr.child)
        return None if inner is None else not inner


def evaluate(expr: Expr, row: Mapping[str, Any]) -> bool | None:
    return RowEvaluator(row).visit(expr)


def matches(expr: Expr, row: Mapping[str, Any]) -> bool:
    """A row passes a filter only when the filter is TRUE (NULL rejects, as in SQL)."""
    return evaluate(expr, row) is True
