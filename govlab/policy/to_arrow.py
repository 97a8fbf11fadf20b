"""Compile target: a ``pyarrow.compute.Expression``, for dataset scans (Delta, Parquet)
and for filtering Arrow tables (the Iceberg engine's exact pass).

A text match folds ASCII letters only (``pc.ascii_lower``; see ``casefold``), not RE2's
Unicode case folding (``match_substring(ignore_case=True)`` would also match ``ſ`` for
``s``), so the rows are the ones every other target selects.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    In,
    IsNull,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.casefold import fold, has_ascii_letter
from govlab.policy.visitor import NnfVisitor

#: Python's comparison operators, by filter operator (the evaluator uses them too).
PY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def folded_contains(values: Any, term: str) -> Any:
    """``term`` in each value, ASCII letters compared caselessly (``policy.casefold``),
    by Arrow's ``match_substring``: on a field (an expression) or on an array alike."""
    if not has_ascii_letter(term):  # nothing to fold: a plain match
        return pc.match_substring(values, term)
    return pc.match_substring(pc.ascii_lower(values), fold(term))


class ArrowVisitor(NnfVisitor[pc.Expression]):
    def visit_true(self, expr: AlwaysTrue) -> pc.Expression:
        return pc.scalar(True)

    def visit_false(self, expr: AlwaysFalse) -> pc.Expression:
        return pc.scalar(False)

    def visit_cmp(self, expr: Cmp) -> pc.Expression:
        return PY_OPS[expr.op](pc.field(expr.column), pa.scalar(expr.value, expr.dtype))

    def visit_in(self, expr: In) -> pc.Expression:
        field = pc.field(expr.column)
        if not expr.values:
            return pc.scalar(False)
        if pa.types.is_floating(expr.dtype):
            # is_in tells -0.0 from 0.0 where == (and SQL) do not: compare instead
            return reduce(operator.or_, (field == pa.scalar(v, expr.dtype) for v in expr.values))
        return field.isin(pa.array(expr.values, expr.dtype))

    def visit_not_in(self, expr: NotIn) -> pc.Expression:
        field = pc.field(expr.column)
        if not expr.values:
            return field.is_valid()
        if pa.types.is_floating(expr.dtype):
            return reduce(operator.and_, (field != pa.scalar(v, expr.dtype) for v in expr.values))
        return ~field.isin(pa.array(expr.values, expr.dtype)) & field.is_valid()

    def visit_is_null(self, expr: IsNull) -> pc.Expression:
        return pc.field(expr.column).is_null()

    def visit_not_null(self, expr: NotNull) -> pc.Expression:
        return pc.field(expr.column).is_valid()

    def visit_contains(self, expr: Contains) -> pc.Expression:
        result: pc.Expression = folded_contains(pc.field(expr.column), expr.term)
        return result

    def visit_and(self, expr: And) -> pc.Expression:
        return reduce(operator.and_, (self.visit(c) for c in expr.children))

    def visit_or(self, expr: Or) -> pc.Expression:
        return reduce(operator.or_, (self.visit(c) for c in expr.children))
