"""The row-filter expression trees: what the parser builds, and what binding resolves.

Two layers, as in pyiceberg: the *unbound* tree mirrors the policy text (columns are
names, attributes are placeholders); the *bound* tree (``Expr``) has every column
checked against a schema and every value converted to that column's type. Only bound
trees reach engines, so an engine can never see a name nobody checked or a value
that is still text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

CmpOp = Literal["==", "!=", "<", "<=", ">", ">="]
#: The operator tokens, typed (the parser's lookup from token text to operator).
CMP_OP: dict[str, CmpOp] = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
NEGATED_CMP: dict[str, CmpOp] = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
FLIPPED_CMP: dict[str, CmpOp] = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

Scalar = str | int | float | bool | dt.date | dt.datetime


# ---------------------------------------------------------------- unbound (parser output)
@dataclass(frozen=True)
class ColumnRef:
    name: str


@dataclass(frozen=True)
class Const:
    value: str | int | float | bool


@dataclass(frozen=True)
class Placeholder:
    """``${user.NAME}``: a principal attribute, filled in at bind time as a typed literal."""

    attr: str


Operand = ColumnRef | Const | Placeholder


@dataclass(frozen=True)
class UCompare:
    op: CmpOp
    left: Operand
    right: Operand


@dataclass(frozen=True)
class UIn:
    operand: Operand
    items: tuple[Operand, ...] | Placeholder
    negated: bool


@dataclass(frozen=True)
class UIsNull:
    operand: Operand
    negated: bool


@dataclass(frozen=True)
class UBool:
    """A bare operand used as a predicate: ``true``, a boolean column or attribute."""

    operand: Operand


@dataclass(frozen=True)
class UAnd:
    left: UExpr
    right: UExpr


@dataclass(frozen=True)
class UOr:
    left: UExpr
    right: UExpr


@dataclass(frozen=True)
class UNot:
    child: UExpr


UExpr = UCompare | UIn | UIsNull | UBool | UAnd | UOr | UNot


# ---------------------------------------------------------------- bound (engine input)
@dataclass(frozen=True)
class AlwaysTrue:
    pass


@dataclass(frozen=True)
class AlwaysFalse:
    pass


@dataclass(frozen=True)
class Cmp:
    column: str
    op: CmpOp
    value: Any
    dtype: pa.DataType


@dataclass(frozen=True)
class In:
    column: str
    values: tuple[Any, ...]
    dtype: pa.DataType


@dataclass(frozen=True)
class NotIn:
    column: str
    values: tuple[Any, ...]
    dtype: pa.DataType


@dataclass(frozen=True)
class IsNull:
    column: str


@dataclass(frozen=True)
class NotNull:
    column: str


@dataclass(frozen=True)
class Contains:
    """Case-insensitive literal substring match. Never produced from policy text: the
    governed search adds it for query terms, on columns that are not masked."""

    column: str
    term: str


@dataclass(frozen=True)
class And:
    children: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    child: Expr


Expr = AlwaysTrue | AlwaysFalse | Cmp | In | NotIn | IsNull | NotNull | Contains | And | Or | Not
TRUE = AlwaysTrue()
FALSE = AlwaysFalse()


def and_(*exprs: Expr) -> Expr:
    """Conjunction that folds constants and flattens, so trivial filters stay trivial."""
    flat: list[Expr] = []
    for e in exprs:
        if isinstance(e, AlwaysFalse):
            return FALSE
        if isinstance(e, AlwaysTrue):
            continue
        flat.extend(e.children if isinstance(e, And) else (e,))
    if not flat:
        return TRUE
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def or_(*exprs: Expr) -> Expr:
    flat: list[Expr] = []
    for e in exprs:
        if isinstance(e, AlwaysTrue):
            return TRUE
        if isinstance(e, AlwaysFalse):
            continue
        flat.extend(e.children if isinstance(e, Or) else (e,))
    if not flat:
        return FALSE
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def in_(column: str, values: tuple[Any, ...], dtype: pa.DataType) -> Expr:
    """``x in []`` selects nothing; one value is plain equality (better for pruning).

    The empty list stays an ``In`` node rather than folding to FALSE, so that
    ``not (x in [])`` negates to ``x not in []`` and still rejects NULL.
    """
    unique = tuple(dict.fromkeys(values))
    if len(unique) == 1:
        return Cmp(column, "==", unique[0], dtype)
    return In(column, unique, dtype)


def not_in(column: str, values: tuple[Any, ...], dtype: pa.DataType) -> Expr:
    """``x not in []`` still rejects NULL, as every other comparison does."""
    unique = tuple(dict.fromkeys(values))
    if len(unique) == 1:
        return Cmp(column, "!=", unique[0], dtype)
    return NotIn(column, unique, dtype)


def negate(expr: Expr) -> Expr:
    """Push a NOT down to the leaves (De Morgan), preserving SQL's three-valued logic.

    After this no ``Not`` node is left, so each engine only needs leaf predicates that
    are false-or-NULL on NULL input; NOT over such a leaf is where NULLs would leak.
    """
    match expr:
        case AlwaysTrue():
            return FALSE
        case AlwaysFalse():
            return TRUE
        case Cmp(column, op, value, dtype):
            return Cmp(column, NEGATED_CMP[op], value, dtype)
        case In(column, values, dtype):
            return NotIn(column, values, dtype)
        case NotIn(column, values, dtype):
            return In(column, values, dtype)
        case IsNull(column):
            return NotNull(column)
        case NotNull(column):
            return IsNull(column)
        case And(children):
            return or_(*(negate(c) for c in children))
        case Or(children):
            return and_(*(negate(c) for c in children))
        case Not(child):
            return to_nnf(child)
    raise TypeError(f"cannot negate {type(expr).__name__}")


def to_nnf(expr: Expr) -> Expr:
    match expr:
        case Not(child):
            return negate(child)
        case And(children):
            return and_(*(to_nnf(c) for c in children))
        case Or(children):
            return or_(*(to_nnf(c) for c in children))
    return expr


def columns_of(expr: Expr) -> set[str]:
    """The columns a filter reads (projections, partition pruning, the SQL export)."""
    match expr:
        case And(children) | Or(children):
            return set().union(*(columns_of(c) for c in children))
        case Not(child):
            return columns_of(child)
        case AlwaysTrue() | AlwaysFalse():
            return set()
    return {expr.column}
