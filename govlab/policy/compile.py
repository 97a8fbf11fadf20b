"""One visitor per target for bound filters: PyArrow, PyIceberg, SQL text, and a
pure-Python row evaluator that the tests use as the oracle for all the others.

Inputs are bound, NNF trees (see ``bind``), so every leaf is false-or-NULL on NULL
input and no visitor has to reason about negation; the evaluator alone implements
full three-valued logic, including ``Not``, to check that normalisation.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from functools import reduce, singledispatch
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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

_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# ------------------------------------------------------------------------- PyArrow
@singledispatch
def to_arrow(expr: Expr) -> pc.Expression:
    """A ``pyarrow.compute.Expression`` for dataset scans (Delta, Parquet) and tables."""
    raise TypeError(f"no PyArrow translation for {type(expr).__name__}")


@to_arrow.register
def _(expr: AlwaysTrue) -> pc.Expression:
    return pc.scalar(True)


@to_arrow.register
def _(expr: AlwaysFalse) -> pc.Expression:
    return pc.scalar(False)


@to_arrow.register
def _(expr: Cmp) -> pc.Expression:
    return _PY_OPS[expr.op](pc.field(expr.column), pa.scalar(expr.value, expr.dtype))


@to_arrow.register
def _(expr: In) -> pc.Expression:
    field = pc.field(expr.column)
    if not expr.values:
        return pc.scalar(False)
    if pa.types.is_floating(expr.dtype):
        # is_in tells -0.0 from 0.0 where == (and SQL) do not: compare instead
        return reduce(operator.or_, (field == pa.scalar(v, expr.dtype) for v in expr.values))
    return field.isin(pa.array(expr.values, expr.dtype))


@to_arrow.register
def _(expr: NotIn) -> pc.Expression:
    field = pc.field(expr.column)
    if not expr.values:
        return field.is_valid()
    if pa.types.is_floating(expr.dtype):
        return reduce(operator.and_, (field != pa.scalar(v, expr.dtype) for v in expr.values))
    return ~field.isin(pa.array(expr.values, expr.dtype)) & field.is_valid()


@to_arrow.register
def _(expr: IsNull) -> pc.Expression:
    return pc.field(expr.column).is_null()


@to_arrow.register
def _(expr: NotNull) -> pc.Expression:
    return pc.field(expr.column).is_valid()


@to_arrow.register
def _(expr: Contains) -> pc.Expression:
    return pc.match_substring(pc.field(expr.column), expr.term, ignore_case=True)


@to_arrow.register
def _(expr: And) -> pc.Expression:
    return reduce(operator.and_, (to_arrow(c) for c in expr.children))


@to_arrow.register
def _(expr: Or) -> pc.Expression:
    return reduce(operator.or_, (to_arrow(c) for c in expr.children))


# ------------------------------------------------------------------------- PyIceberg
def to_iceberg(expr: Expr) -> Any:
    """A PyIceberg ``BooleanExpression`` that selects a *superset* of the rows.

    Iceberg has no substring predicate, so ``Contains`` becomes AlwaysTrue; the engine
    applies the exact Arrow filter to what the scan returns. NOT IN and != also demand
    NOT NULL explicitly, since PyIceberg's own Arrow evaluation lets NULL through.
    """
    from pyiceberg import expressions as ice

    def visit(e: Expr) -> Any:
        match e:
            case AlwaysTrue() | Contains():
                return ice.AlwaysTrue()
            case AlwaysFalse():
                return ice.AlwaysFalse()
            case Cmp(column, op, value, _):
                return _ICEBERG_CMP[op](ice, column, _iceberg_literal(value))
            case In(column, values, _) if not values:
                return ice.AlwaysFalse()
            case NotIn(column, values, _) if not values:
                return ice.NotNull(column)
            case In(column, values, dtype) if pa.types.is_floating(dtype):
                return reduce(ice.Or, (ice.EqualTo(column, v) for v in values))
            case In(column, values, _):
                return ice.In(column, {_iceberg_literal(v) for v in values})
            case NotIn(column, values, _):
                return ice.And(
                    ice.NotIn(column, {_iceberg_literal(v) for v in values}),
                    ice.NotNull(column),
                )
            case IsNull(column):
                return ice.IsNull(column)
            case NotNull(column):
                return ice.NotNull(column)
            case And(children):
                return reduce(ice.And, (visit(c) for c in children))
            case Or(children):
                return reduce(ice.Or, (visit(c) for c in children))
        raise TypeError(f"no PyIceberg translation for {type(e).__name__}")

    return visit(expr)


_ICEBERG_CMP: dict[str, Callable[[Any, str, Any], Any]] = {
    "==": lambda ice, c, v: ice.EqualTo(c, v),
    "!=": lambda ice, c, v: ice.And(ice.NotEqualTo(c, v), ice.NotNull(c)),
    "<": lambda ice, c, v: ice.LessThan(c, v),
    "<=": lambda ice, c, v: ice.LessThanOrEqual(c, v),
    ">": lambda ice, c, v: ice.GreaterThan(c, v),
    ">=": lambda ice, c, v: ice.GreaterThanOrEqual(c, v),
}


def _iceberg_literal(value: Any) -> Any:
    """PyIceberg converts ISO strings to date/timestamp literals of the column's type."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# ------------------------------------------------------------------------- SQL text
def to_sql(expr: Expr) -> str:
    """ANSI SQL text for other engines. Identifiers are double-quoted and every value is
    rendered from its typed form (never from policy or attribute text)."""
    match expr:
        case AlwaysTrue():
            return "TRUE"
        case AlwaysFalse():
            return "FALSE"
        case Cmp(column, op, value, _):
            sql_op = "=" if op == "==" else ("<>" if op == "!=" else op)
            return f"{quote_ident(column)} {sql_op} {sql_literal(value)}"
        case In(_, values, _) if not values:
            return "FALSE"
        case NotIn(column, values, _) if not values:
            return f"{quote_ident(column)} IS NOT NULL"
        case In(column, values, _):
            return f"{quote_ident(column)} IN ({', '.join(map(sql_literal, values))})"
        case NotIn(column, values, _):
            ident = quote_ident(column)
            listed = ", ".join(map(sql_literal, values))
            return f"({ident} NOT IN ({listed}) AND {ident} IS NOT NULL)"
        case IsNull(column):
            return f"{quote_ident(column)} IS NULL"
        case NotNull(column):
            return f"{quote_ident(column)} IS NOT NULL"
        case Contains(column, term):
            escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"LOWER({quote_ident(column)}) LIKE {sql_literal(f'%{escaped}%')} ESCAPE '\\'"
        case And(children):
            return "(" + " AND ".join(to_sql(c) for c in children) + ")"
        case Or(children):
            return "(" + " OR ".join(to_sql(c) for c in children) + ")"
        case Not(child):
            return f"(NOT {to_sql(child)})"
    raise TypeError(f"no SQL translation for {type(expr).__name__}")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL character in SQL literal")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


# ------------------------------------------------------------------------- oracle
def evaluate(expr: Expr, row: Mapping[str, Any]) -> bool | None:
    """Three-valued (SQL) evaluation of one row: True, False or None for unknown."""
    match expr:
        case AlwaysTrue():
            return True
        case AlwaysFalse():
            return False
        case Cmp(column, op, value, _):
            cell = row[column]
            return None if cell is None else _PY_OPS[op](cell, value)
        case In(column, values, _):
            cell = row[column]
            return None if cell is None else cell in values
        case NotIn(column, values, _):
            cell = row[column]
            return None if cell is None else cell not in values
        case IsNull(column):
            return row[column] is None
        case NotNull(column):
            return row[column] is not None
        case Contains(column, term):
            cell = row[column]
            return None if cell is None else term.lower() in str(cell).lower()
        case And(children):
            results = [evaluate(c, row) for c in children]
            if False in results:
                return False
            return None if None in results else True
        case Or(children):
            results = [evaluate(c, row) for c in children]
            if True in results:
                return True
            return None if None in results else False
        case Not(child):
            inner = evaluate(child, row)
            return None if inner is None else not inner
    raise TypeError(f"cannot evaluate {type(expr).__name__}")


def matches(expr: Expr, row: Mapping[str, Any]) -> bool:
    """A row passes a filter only when the filter is TRUE (NULL rejects, as in SQL)."""
    return evaluate(expr, row) is True
