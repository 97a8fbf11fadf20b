"""The compile targets of a bound filter, as a registry.

A target is one :class:`~govlab.policy.visitor.ExprVisitor` subclass in its own module
plus one line in :data:`TARGETS` (``module:Class``, imported on first use, so the policy
layer imports no engine library). Today's targets:

| target | module | used by |
|---|---|---|
| ``arrow`` | ``policy/to_arrow.py`` | Delta and Parquet scans, Arrow tables |
| ``iceberg`` | ``engines/iceberg_filter.py`` | the Iceberg scan (a superset, refined in Arrow) |
| ``sql`` | ``policy/to_sql.py`` | ``govlab policy explain``, the audit |
| ``daft`` | ``policy/to_daft.py`` | the Daft execution backend (native or on Ray) |
| ``python`` | ``policy/evaluate.py`` | the oracle every other target is tested against |

Inputs are bound, NNF trees (``bind``), so every leaf is false-or-NULL on NULL input
and no target but the evaluator has to reason about negation.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import pyarrow.compute as pc

from govlab.policy.ast import Expr
from govlab.policy.evaluate import evaluate, matches
from govlab.policy.to_arrow import ArrowVisitor
from govlab.policy.to_sql import SqlVisitor, quote_ident, sql_literal
from govlab.policy.visitor import ExprVisitor

__all__ = [
    "TARGETS",
    "compile_to",
    "evaluate",
    "matches",
    "quote_ident",
    "sql_literal",
    "target",
    "to_arrow",
    "to_iceberg",
    "to_sql",
]

TARGETS: dict[str, str] = {
    "arrow": "govlab.policy.to_arrow:ArrowVisitor",
    "iceberg": "govlab.engines.iceberg_filter:IcebergVisitor",
    "sql": "govlab.policy.to_sql:SqlVisitor",
    "daft": "govlab.policy.to_daft:DaftVisitor",
}


@cache
def target(name: str) -> type[ExprVisitor[Any]]:
    """The visitor class registered as ``name`` (imported on first use)."""
    try:
        module, _, cls = TARGETS[name].partition(":")
    except KeyError:
        raise ValueError(f"no compile target {name!r}; targets: {', '.join(TARGETS)}") from None
    visitor: type[ExprVisitor[Any]] = getattr(importlib.import_module(module), cls)
    return visitor


def compile_to(name: str, expr: Expr) -> Any:
    return target(name)().visit(expr)


def to_arrow(expr: Expr) -> pc.Expression:
    return ArrowVisitor().visit(expr)


def to_sql(expr: Expr) -> str:
    return SqlVisitor().visit(expr)


def to_iceberg(expr: Expr) -> Any:
    """Kept for callers of the old function; the Iceberg engine calls its own module."""
    return compile_to("iceberg", expr)
