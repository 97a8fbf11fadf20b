"""Compile target: a Daft ``Expression``, for the Daft execution backend (local or Ray).

Imported only through the registry (``compile.target("daft")``), so nothing in the
policy layer imports Daft until a Daft plan is built. Three points where Daft's own
semantics differ from the oracle's, and what this module does about them:

* **Signed zero.** Daft compares floats by total order (``-0.0 != 0.0``); SQL, Arrow
  and Python say they are equal. Float operands are normalised with ``+ 0.0`` (IEEE:
  ``-0.0 + 0.0 == 0.0``) on both sides of every comparison and membership test.
* **NULL.** Daft's ``is_in`` and comparisons are NULL on NULL input and ``&``/``|``
  follow Kleene logic, so a bound NNF leaf is never TRUE on NULL; ``not in`` still adds
  ``not_null()`` so that NULL is rejected even if ``~`` over NULL changed.
* **Case.** A text match folds ASCII letters only (see ``casefold``): Daft's ``lower()``
  is Rust's full Unicode mapping (``İ`` becomes two code points) and ``(?i)`` folds
  Unicode, so the term becomes a regex of ``[aA]`` classes and code-point escapes
  (``casefold.caseless_regex``), which is also ten times faster than ``translate``.

The values are Daft literals built from the bound, typed values; no text of a policy
or an attribute is ever parsed as a Daft or SQL expression.
"""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

import pyarrow as pa

from govlab.config import quiet_third_parties
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
from govlab.policy.casefold import caseless_regex, has_ascii_letter
from govlab.policy.visitor import NnfVisitor

quiet_third_parties()  # before Daft is imported: it reports imports over the network
import daft  # noqa: E402

DaftExpr = daft.Expression
_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class DaftVisitor(NnfVisitor[DaftExpr]):
    def visit_true(self, expr: AlwaysTrue) -> DaftExpr:
        return daft.lit(True)

    def visit_false(self, expr: AlwaysFalse) -> DaftExpr:
        return daft.lit(False)

    def visit_cmp(self, expr: Cmp) -> DaftExpr:
        column, value = _operands(expr.column, expr.value, expr.dtype)
        result: DaftExpr = _OPS[expr.op](column, value)
        return result

    def visit_in(self, expr: In) -> DaftExpr:
        if not expr.values:
            return daft.lit(False)
        column = _column(expr.column, expr.dtype)
        return column.is_in([_value(v, expr.dtype) for v in expr.values])

    def visit_not_in(self, expr: NotIn) -> DaftExpr:
        present = daft.col(expr.column).not_null()
        if not expr.values:
            return present
        column = _column(expr.column, expr.dtype)
        listed = column.is_in([_value(v, expr.dtype) for v in expr.values])
        return (~listed) & present

    def visit_is_null(self, expr: IsNull) -> DaftExpr:
        return daft.col(expr.column).is_null()

    def visit_not_null(self, expr: NotNull) -> DaftExpr:
        return daft.col(expr.column).not_null()

    def visit_contains(self, expr: Contains) -> DaftExpr:
        column = daft.col(expr.column)
        if not has_ascii_letter(expr.term):
            return column.contains(expr.term)
        return column.regexp(caseless_regex(expr.term))  # 10x faster than translate

    def visit_and(self, expr: And) -> DaftExpr:
        return reduce(operator.and_, (self.visit(c) for c in expr.children))

    def visit_or(self, expr: Or) -> DaftExpr:
        return reduce(operator.or_, (self.visit(c) for c in expr.children))


def _column(name: str, dtype: pa.DataType) -> DaftExpr:
    column = daft.col(name)
    return column + daft.lit(0.0) if pa.types.is_floating(dtype) else column


def _value(value: Any, dtype: pa.DataType) -> Any:
    return value + 0.0 if pa.types.is_floating(dtype) else value


def _operands(name: str, value: Any, dtype: pa.DataType) -> tuple[DaftExpr, DaftExpr]:
    return _column(name, dtype), daft.lit(_value(value, dtype))
