"""Shared schema, binding and target helpers for the policy tests (tests/test_policy_*.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from govlab.generators import get_dataset
from govlab.policy import LoadedPolicy, parse_policy, validate_policy
from govlab.policy.ast import (
    Expr,
    Not,
)
from govlab.policy.bind import bind_filter
from govlab.policy.compile import matches, to_arrow, to_sql
from govlab.policy.parser import parse_filter

GOVERNANCE = Path(__file__).resolve().parent.parent / "governance"
HEALTHCARE = get_dataset("healthcare")

# A small schema with one column of each type a filter can touch.
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("i", pa.int64()),
        ("f", pa.float64()),
        ("s", pa.string()),
        ("b", pa.bool_()),
        ("d", pa.date32()),
        ("ts", pa.timestamp("us")),
    ]
)
SQLITE_TYPES = {"id": "INTEGER", "i": "INTEGER", "f": "REAL", "s": "TEXT", "b": "INTEGER"}


def bind(text: str, attrs: Mapping[str, Any] | None = None, schema: pa.Schema = SCHEMA) -> Expr:
    return bind_filter(parse_filter(text), schema, {} if attrs is None else attrs)


def oracle_ids(expr: Expr, rows: list[dict[str, Any]]) -> set[int]:
    return {row["id"] for row in rows if matches(expr, row)}


def arrow_ids(expr: Expr, table: pa.Table) -> set[int]:
    return set(table.filter(to_arrow(expr))["id"].to_pylist())


def sqlite_db(rows: list[dict[str, Any]]) -> sqlite3.Connection:
    """The int, float, string and bool columns of rows in an in-memory sqlite table."""
    con = sqlite3.connect(":memory:")
    cols = list(SQLITE_TYPES)
    columns = ", ".join(f'"{c}" {SQLITE_TYPES[c]}' for c in cols)
    con.execute(f"CREATE TABLE t ({columns})")
    con.executemany(
        f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})",
        [tuple(row.get(c) for c in cols) for row in rows],
    )
    return con


def sqlite_ids(expr: Expr, con: sqlite3.Connection) -> set[int]:
    return {r[0] for r in con.execute(f"SELECT id FROM t WHERE {to_sql(expr)}")}


def table_of(rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def walk(expr: Expr) -> list[Expr]:
    children = getattr(expr, "children", None) or ((expr.child,) if isinstance(expr, Not) else ())
    return [expr, *(n for c in children for n in walk(c))]


HEALTHCARE_TEXT = (GOVERNANCE / "healthcare.yaml").read_text(encoding="utf-8")


def role_yaml(body: str, dataset: str = "healthcare") -> str:
    return f"version: 1\ndataset: {dataset}\nroles:\n{body}"


def check(text: str, dataset: str = "healthcare") -> LoadedPolicy:
    return validate_policy(parse_policy(text), get_dataset(dataset))


NULL_ROWS = [
    {"id": 1, "s": "a", "i": 1, "f": 0.5, "b": True},
    {"id": 2, "s": "b", "i": 2, "f": 1.5, "b": False},
    {"id": 3, "s": None, "i": None, "f": None, "b": None},
    {"id": 4, "s": "c", "i": 3, "f": 2.5, "b": True},
    {"id": 5, "s": None, "i": None, "f": None, "b": None},
]
NULL_SCHEMA = pa.schema([SCHEMA.field(c) for c in ("id", "s", "i", "f", "b")])
NULL_IDS = {3, 5}
