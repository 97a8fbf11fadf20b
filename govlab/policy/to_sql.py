"""Compile target: ANSI SQL text (``govlab policy explain``, the audit's ``filter``).

Identifiers are double-quoted and every value is rendered from its typed form, never
from policy or attribute text. This is display text in one dialect; exporting a filter
to another engine must go through a dialect-aware SQL library instead
(``policy.sql_export``, which uses sqlglot).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from govlab.policy.ast import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    Cmp,
    Contains,
    In,
    IsNull,
    Not,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.casefold import fold
from govlab.policy.visitor import ExprVisitor

_SQL_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class SqlVisitor(ExprVisitor[str]):
    def visit_true(self, expr: AlwaysTrue) -> str:
        return "TRUE"

    def visit_false(self, expr: AlwaysFalse) -> str:
        return "FALSE"

    def visit_cmp(self, expr: Cmp) -> str:
        return f"{quote_ident(expr.column)} {_SQL_OPS[expr.op]} {sql_literal(expr.value)}"

    def visit_in(self, expr: In) -> str:
        if not expr.values:
            return "FALSE"
        return f"{quote_ident(expr.column)} IN ({', '.join(map(sql_literal, expr.values))})"

    def visit_not_in(self, expr: NotIn) -> str:
        ident = quote_ident(expr.column)
        if not expr.values:
            return f"{ident} IS NOT NULL"
        listed = ", ".join(map(sql_literal, expr.values))
        return f"({ident} NOT IN ({listed}) AND {ident} IS NOT NULL)"

    def visit_is_null(self, expr: IsNull) -> str:
        return f"{quote_ident(expr.column)} IS NULL"

    def visit_not_null(self, expr: NotNull) -> str:
        return f"{quote_ident(expr.column)} IS NOT NULL"

    def visit_contains(self, expr: Contains) -> str:
        term = fold(expr.term)  # LOWER is ASCII-only in SQLite, this text's test engine
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = sql_literal(f"%{escaped}%")
        return f"LOWER({quote_ident(expr.column)}) LIKE {pattern} ESCAPE '\\'"

    def visit_and(self, expr: And) -> str:
        return "(" + " AND ".join(self.visit(c) for c in expr.children) + ")"

    def visit_or(self, expr: Or) -> str:
        return "(" + " OR ".join(self.visit(c) for c in expr.children) + ")"

    def visit_not(self, expr: Not) -> str:
        return f"(NOT {self.visit(expr.child)})"


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
