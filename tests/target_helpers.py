"""The compile targets added for running past one machine, as helpers the policy tests
share: Daft (``policy/to_daft.py``) and the sqlglot export (``policy/sql_export.py``)
executed on DuckDB and SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

import duckdb
import pyarrow as pa

from govlab.policy.ast import Expr
from govlab.policy.compile import compile_to
from govlab.policy.sql_export import filter_sql


def daft_ids(expr: Expr, table: pa.Table) -> set[int]:
    import daft

    frame = daft.from_arrow(table) if table.num_rows else None
    if frame is None:
        return set()
    return set(frame.where(compile_to("daft", expr)).select("id").to_pydict()["id"])


def duckdb_ids(expr: Expr, table: pa.Table) -> set[int]:
    """The exported DuckDB condition run by DuckDB over the Arrow table."""
    con = duckdb.connect()
    try:
        con.register("t", table)
        sql = f"SELECT id FROM t WHERE {filter_sql(expr, 'duckdb')}"
        return {row[0] for row in con.execute(sql).fetchall()}
    finally:
        con.close()


def sqlite_export_ids(expr: Expr, con: sqlite3.Connection) -> set[int]:
    sql = f"SELECT id FROM t WHERE {filter_sql(expr, 'sqlite')}"
    return {row[0] for row in con.execute(sql)}


def text_rows(
    values: list[str | None],
) -> tuple[pa.Table, sqlite3.Connection, list[dict[str, Any]]]:
    """One text column ``s`` with an ``id``, as Arrow, SQLite and dicts."""
    rows = [{"id": i, "s": v} for i, v in enumerate(values)]
    table = pa.Table.from_pylist(rows, schema=pa.schema([("id", pa.int64()), ("s", pa.string())]))
    con = sqlite3.connect(":memory:")
    con.execute('CREATE TABLE t ("id" INTEGER, "s" TEXT)')
    con.executemany("INSERT INTO t VALUES (?, ?)", [(r["id"], r["s"]) for r in rows])
    return table, con, rows


def totals_agree(got: dict[str, Any], want: dict[str, Any], limit: int | None) -> None:
    """Equal when both are exact; a flagged total is a lower bound: at least the count
    limit and at most the exact count. (The in-process engine reports an exact count
    when it happened to read every row group; Daft stops at the limit.)"""
    if got["totalExact"] and want["totalExact"]:
        assert got["total"] == want["total"]
        return
    assert limit is not None
    exact = [p["total"] for p in (got, want) if p["totalExact"]]
    for page in (got, want):
        if not page["totalExact"]:
            assert page["total"] >= limit
            assert all(page["total"] <= n for n in exact)
