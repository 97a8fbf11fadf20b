"""Export a principal's bound row filter and masks as SQL for another engine, safely.

SQL text is dialect-specific: the display text of ``to_sql`` (``ESCAPE '\\'``, double-
quoted identifiers) fails to parse on Spark, and where a dialect reads ``"region"`` as
a string literal a filter silently matches nothing, or, under ``!=`` / ``NOT IN``, every
row. So this module never formats SQL: it builds a sqlglot syntax tree (identifiers as
quoted ``Identifier`` nodes, values as typed literals) and lets sqlglot render it in the
named dialect, which quotes and escapes for that dialect.

What is exported:

* the row filter, as the visitor below compiles it (NULL rejects, as in every target;
  ``not in`` adds ``IS NOT NULL``; text matches fold ASCII letters only, see
  ``casefold``: ``TRANSLATE``, or ``LOWER`` on SQLite, whose ``LOWER`` is ASCII-only);
* the masked projection. Masks that SQL computes exactly as ``govlab.masks`` does are
  exported as expressions (``redact_full``, ``null``, and ``year_only``/``yyyy_mm``
  outside SQLite, which has no date type). The others (``hash`` and ``tokenize`` need
  the deployment key, which must never be written into SQL; ``redact_part``,
  ``initials`` and ``city_only`` depend on Unicode letter classes that dialects define
  differently) are exported as ``NULL``: withheld, never the raw value, and listed in
  :attr:`SqlExport.withheld`. ``govlab export`` materialises those masks instead.

Databricks and Snowflake get their native row-filter DDL (a SQL UDF + ``SET ROW
FILTER``; a ``ROW ACCESS POLICY``) plus the masked view: their column-mask policies
must return the column's own type, and govlab's masks return text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any, Literal

import pyarrow as pa
from sqlglot import exp

from govlab.masks.kernels import REDACTED, is_date_like, is_text
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
    columns_of,
)
from govlab.policy.casefold import ASCII_LOWER, ASCII_UPPER, fold, has_ascii_letter
from govlab.policy.visitor import NnfVisitor

Dialect = Literal["duckdb", "spark", "trino", "sqlite", "databricks", "snowflake"]
DIALECTS: tuple[Dialect, ...] = ("duckdb", "spark", "trino", "sqlite", "databricks", "snowflake")
_CMP: dict[str, Callable[..., exp.Expression]] = {
    "==": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
}
#: Masks with an exact SQL form; ``year_only``/``yyyy_mm`` only where dates are typed.
SQL_MASKS = frozenset({"redact_full", "null", "year_only", "yyyy_mm"})
_NO_DATE_TYPE: frozenset[str] = frozenset({"sqlite"})


def ident(name: str) -> exp.Identifier:
    """A column or table name, always a quoted identifier (never a string literal)."""
    return exp.Identifier(this=name, quoted=True)


def column(name: str) -> exp.Column:
    return exp.Column(this=ident(name))


def literal(value: Any) -> exp.Expression:
    """A typed literal from a bound value: the dialect renders and escapes it."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        return exp.cast(exp.Literal.number(repr(value)), exp.DataType.Type.DOUBLE)
    if isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ", timespec="microseconds")
        return exp.cast(exp.Literal.string(text), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL character in a SQL literal")
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


class SqlglotVisitor(NnfVisitor[exp.Expression]):
    """A bound NNF filter as a sqlglot condition (rendered later, per dialect)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def visit_true(self, expr: AlwaysTrue) -> exp.Expression:
        return exp.Boolean(this=True)

    def visit_false(self, expr: AlwaysFalse) -> exp.Expression:
        return exp.Boolean(this=False)

    def visit_cmp(self, expr: Cmp) -> exp.Expression:
        node: exp.Expression = _CMP[expr.op](
            this=column(expr.column), expression=literal(expr.value)
        )
        return node

    def visit_in(self, expr: In) -> exp.Expression:
        if not expr.values:
            return exp.Boolean(this=False)
        return exp.In(this=column(expr.column), expressions=[literal(v) for v in expr.values])

    def visit_not_in(self, expr: NotIn) -> exp.Expression:
        present = exp.Not(this=exp.Is(this=column(expr.column), expression=exp.Null()))
        if not expr.values:
            return present
        listed = exp.In(this=column(expr.column), expressions=[literal(v) for v in expr.values])
        return exp.And(this=exp.Not(this=exp.Paren(this=listed)), expression=present)

    def visit_is_null(self, expr: IsNull) -> exp.Expression:
        return exp.Is(this=column(expr.column), expression=exp.Null())

    def visit_not_null(self, expr: NotNull) -> exp.Expression:
        return exp.Not(this=exp.Is(this=column(expr.column), expression=exp.Null()))

    def visit_contains(self, expr: Contains) -> exp.Expression:
        haystack: exp.Expression = column(expr.column)
        if has_ascii_letter(expr.term):
            haystack = self._ascii_lower(haystack)
        found = exp.StrPosition(this=haystack, substr=exp.Literal.string(fold(expr.term)))
        return exp.GT(this=found, expression=exp.Literal.number(0))

    def visit_and(self, expr: And) -> exp.Expression:
        parts: list[exp.Expression] = [exp.Paren(this=self.visit(c)) for c in expr.children]
        return reduce(lambda a, b: exp.And(this=a, expression=b), parts)

    def visit_or(self, expr: Or) -> exp.Expression:
        parts: list[exp.Expression] = [exp.Paren(this=self.visit(c)) for c in expr.children]
        return reduce(lambda a, b: exp.Or(this=a, expression=b), parts)

    def _ascii_lower(self, value: exp.Expression) -> exp.Expression:
        if self.dialect == "sqlite":  # SQLite's LOWER folds ASCII only (no ICU)
            return exp.Lower(this=value)
        return exp.Translate(
            this=value,
            from_=exp.Literal.string(ASCII_UPPER),
            to=exp.Literal.string(ASCII_LOWER),
        )


def filter_sql(expr: Expr, dialect: Dialect) -> str:
    """The bound filter as a condition in ``dialect``."""
    return SqlglotVisitor(_check(dialect)).visit(expr).sql(dialect=dialect)


# ---------------------------------------------------------------------- masks
def _null_text() -> exp.Expression:
    return exp.cast(exp.Null(), exp.DataType.Type.VARCHAR)


def _text(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.Type.VARCHAR)


def _padded(value: exp.Expression, width: int) -> exp.Expression:
    return exp.Pad(
        this=_text(value),
        expression=exp.Literal.number(width),
        fill_pattern=exp.Literal.string("0"),
        is_left=True,
    )


def mask_expression(
    name: str, dtype: pa.DataType, source: str, dialect: Dialect
) -> tuple[exp.Expression, bool]:
    """(SQL for the mask over column ``source``, whether it is exact). Not exact means
    the value is withheld (NULL): never the raw value."""
    raw = column(source)
    if name == "null":
        return _null_text(), True
    if name == "redact_full":
        if not is_text(dtype):
            return _null_text(), True
        when = exp.If(this=exp.Is(this=raw, expression=exp.Null()), true=_null_text())
        return exp.Case(ifs=[when], default=exp.Literal.string(REDACTED)), True
    if name in ("year_only", "yyyy_mm") and is_date_like(dtype) and dialect not in _NO_DATE_TYPE:
        if pa.types.is_timestamp(dtype) and dtype.tz is not None:
            return _null_text(), False  # zone conversion rules differ between engines
        year = _padded(exp.Year(this=raw), 4)
        if name == "year_only":
            return year, True
        month = _padded(exp.Month(this=raw), 2)
        return exp.DPipe(
            this=exp.DPipe(this=year, expression=exp.Literal.string("-")), expression=month
        ), True
    return _null_text(), False


@dataclass(frozen=True)
class SqlExport:
    """One principal's view of one table, in one dialect."""

    dialect: Dialect
    statements: tuple[str, ...]
    withheld: tuple[str, ...]  # masked columns exported as NULL (mask not computable in SQL)

    @property
    def text(self) -> str:
        return "".join(s + ";\n" for s in self.statements)


def view_select(
    schema: pa.Schema,
    row_filter: Expr,
    masks: Mapping[str, str],
    table: exp.Table,
    dialect: Dialect,
) -> tuple[exp.Select, tuple[str, ...]]:
    """``SELECT <columns, masked> FROM table WHERE <filter>`` and the withheld columns."""
    projections: list[exp.Expression] = []
    withheld: list[str] = []
    for field in schema:
        if field.name in masks:
            value, exact = mask_expression(masks[field.name], field.type, field.name, dialect)
            if not exact:
                withheld.append(field.name)
            projections.append(exp.Alias(this=value, alias=ident(field.name)))
        else:
            projections.append(column(field.name))
    condition = SqlglotVisitor(dialect).visit(row_filter)
    select = exp.Select(expressions=projections).from_(table).where(condition)
    return select, tuple(withheld)


def table_name(dotted: str) -> exp.Table:
    """``catalog.schema.table`` (each part an identifier; dots split the parts)."""
    parts = dotted.split(".")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"a table name is 1-3 dot-separated parts, not {dotted!r}")
    names: dict[str, exp.Identifier] = {"this": ident(parts[-1])}
    if len(parts) >= 2:
        names["db"] = ident(parts[-2])
    if len(parts) == 3:
        names["catalog"] = ident(parts[0])
    return exp.Table(**names)


def export_sql(
    schema: pa.Schema,
    row_filter: Expr,
    masks: Mapping[str, str],
    dialect: Dialect,
    table: str,
    view: str,
) -> SqlExport:
    """The statements for ``dialect``: a masked, filtered view; on Databricks and
    Snowflake the table's native row filter first."""
    source, target = table_name(table), table_name(view)
    select, withheld = view_select(schema, row_filter, masks, source, _check(dialect))
    native = _native_row_filter(schema, row_filter, source, view, dialect)
    statements = [*native, *_create_view(target, select, dialect)]
    return SqlExport(dialect, tuple(statements), withheld)


def _create_view(target: exp.Table, select: exp.Select, dialect: Dialect) -> list[str]:
    """``CREATE OR REPLACE VIEW``; SQLite has no ``OR REPLACE``: a drop comes first."""
    if dialect == "sqlite":
        drop = exp.Drop(tables=[target], kind="VIEW", exists=True)
        create = exp.Create(this=target, kind="VIEW", expression=select)
        return [drop.sql(dialect), create.sql(dialect)]
    create = exp.Create(this=target, kind="VIEW", replace=True, expression=select)
    return [create.sql(dialect)]


def sql_type(dtype: pa.DataType) -> exp.DataType:
    """The SQL type of an Arrow column type (for UDF and policy signatures)."""
    if pa.types.is_boolean(dtype):
        return exp.DataType.build("BOOLEAN")
    if pa.types.is_integer(dtype):
        return exp.DataType.build("BIGINT")
    if pa.types.is_floating(dtype):
        return exp.DataType.build("DOUBLE")
    if pa.types.is_date(dtype):
        return exp.DataType.build("DATE")
    if pa.types.is_timestamp(dtype):
        return exp.DataType.build("TIMESTAMP")
    return exp.DataType.build("VARCHAR")


def _native_row_filter(
    schema: pa.Schema, row_filter: Expr, table: exp.Table, view: str, dialect: Dialect
) -> list[str]:
    """Databricks: a SQL UDF over the filter's columns and ``SET ROW FILTER``; Snowflake:
    a row access policy. Every name, type and value inside is rendered by sqlglot; only
    the statement keywords around them are fixed text."""
    if dialect not in ("databricks", "snowflake"):
        return []
    columns = sorted(columns_of(row_filter))
    if not columns:  # a constant filter: the view alone carries it
        return []
    body = SqlglotVisitor(dialect).visit(row_filter).sql(dialect)
    name = table_name(view + "_row_filter").sql(dialect)
    params = ", ".join(column(c).sql(dialect) for c in columns)
    typed = ", ".join(
        f"{column(c).sql(dialect)} {sql_type(schema.field(c).type).sql(dialect)}" for c in columns
    )
    target = table.sql(dialect)
    if dialect == "databricks":
        return [
            f"CREATE OR REPLACE FUNCTION {name}({typed}) RETURNS BOOLEAN RETURN {body}",
            f"ALTER TABLE {target} SET ROW FILTER {name} ON ({params})",
        ]
    return [
        f"CREATE OR REPLACE ROW ACCESS POLICY {name} AS ({typed}) RETURNS BOOLEAN -> {body}",
        f"ALTER TABLE {target} ADD ROW ACCESS POLICY {name} ON ({params})",
    ]


def _check(dialect: str) -> Dialect:
    for known in DIALECTS:
        if dialect == known:
            return known
    raise ValueError(f"unknown SQL dialect {dialect!r}; dialects: {', '.join(DIALECTS)}")
