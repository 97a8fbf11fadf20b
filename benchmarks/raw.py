"""The same query without governance, on the fastest raw engines installed here.

Raw query = the same bound row filter + the same text match (case-insensitive
substring over the same searchable columns) + ORDER BY pk LIMIT/OFFSET + a COUNT,
returning whole rows, without masks. It reads the very files the governed search
reads (the pinned table version).

* polars: ``scan_delta`` / ``scan_parquet`` (hive partitioning) / ``scan_iceberg``;
  building the lazy frame is inside the timed call (it resolves the table version);
  the page and the count run as one ``collect_all``.
* DuckDB: ``read_parquet`` over the version's data files; the file list is resolved
  once, outside the timed call (the most generous setting for the baseline).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_ICEBERG_PLANNER", "pyiceberg")  # the plugin is not installed

import duckdb
import polars as pl
import pyarrow as pa

from govlab.generators.base import DatasetSpec
from govlab.policy.ast import AlwaysFalse, AlwaysTrue, And, Cmp, Contains, Expr, In, Or
from govlab.policy.compile import to_sql

_OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def to_polars(expr: Expr) -> pl.Expr:
    """The bound filters the benchmark uses, as a polars expression (SQL NULL logic:
    polars' boolean ops are Kleene and ``filter`` drops NULL, like SQL WHERE)."""
    match expr:
        case AlwaysTrue():
            return pl.lit(True)
        case AlwaysFalse():
            return pl.lit(False)
        case Cmp(column, op, value, _):
            return _OPS[op](pl.col(column), pl.lit(value))
        case In(column, values, _):
            return pl.col(column).is_in(list(values))
        case Contains(column, term):
            return pl.col(column).str.to_lowercase().str.contains(term.lower(), literal=True)
        case And(children):
            return reduce(operator.and_, (to_polars(c) for c in children))
        case Or(children):
            return reduce(operator.or_, (to_polars(c) for c in children))
    raise TypeError(f"no polars translation for {type(expr).__name__}")


@dataclass
class RawResult:
    keys: list[Any]
    total: int


class RawTable:
    """One table version as the raw engines see it."""

    def __init__(self, fmt: str, spec: DatasetSpec, engine: Any, version: int) -> None:
        self.fmt = fmt
        self.spec = spec
        self.engine = engine
        self.version = version
        self._con = duckdb.connect()
        self._iceberg_table = None
        self._snapshot_id: int | None = None
        if fmt == "delta":
            from deltalake import DeltaTable

            table = DeltaTable(str(engine.path(spec.name)), version=version)
            self._files = list(table.file_uris())
            self._hive = True
        elif fmt == "parquet":
            version_dir = engine.path(spec.name) / f"v{version}"
            self._files = sorted(str(p) for p in Path(version_dir).rglob("*.parquet"))
            self._version_dir = version_dir
            self._hive = True
        elif fmt == "iceberg":
            table = engine._load(spec.name)
            snapshot = engine._snapshot(table, spec.name, version)
            self._iceberg_table = table
            self._snapshot_id = snapshot.snapshot_id
            self._files = sorted(
                t.file.file_path.removeprefix("file://")
                for t in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()
            )
            self._hive = False  # Iceberg data files carry the partition column
        else:
            raise ValueError(fmt)
        files_sql = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in self._files) + "]"
        self._from = f"read_parquet({files_sql}, hive_partitioning={str(self._hive).lower()})"

    # ------------------------------------------------------------------ polars
    def _polars_frame(self) -> pl.LazyFrame:
        if self.fmt == "delta":
            return pl.scan_delta(str(self.engine.path(self.spec.name)), version=self.version)
        if self.fmt == "parquet":
            return pl.scan_parquet(
                str(self._version_dir / "**" / "*.parquet"),
                hive_partitioning=True,
                hive_schema={self.spec.partition_by: pl.String},
            )
        return pl.scan_iceberg(self._iceberg_table, snapshot_id=self._snapshot_id)

    def polars(self, visible: Expr, offset: int, limit: int) -> RawResult:
        pk = self.spec.primary_key
        frame = self._polars_frame().filter(to_polars(visible))
        page, count = pl.collect_all([frame.sort(pk).slice(offset, limit), frame.select(pl.len())])
        return RawResult(page.get_column(pk).to_list(), int(count.item()))

    # ------------------------------------------------------------------ duckdb
    def duckdb(self, visible: Expr, offset: int, limit: int) -> RawResult:
        pk = '"' + self.spec.primary_key.replace('"', '""') + '"'
        where = to_sql(visible)
        page: pa.Table = self._con.sql(
            f"SELECT * FROM {self._from} WHERE {where} ORDER BY {pk} "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        ).to_arrow_table()
        ((total,),) = self._con.sql(f"SELECT count(*) FROM {self._from} WHERE {where}").fetchall()
        return RawResult(page.column(self.spec.primary_key).to_pylist(), int(total))

    def runners(self) -> dict[str, Callable[[Expr, int, int], RawResult]]:
        return {"polars": self.polars, "duckdb": self.duckdb}

    def close(self) -> None:
        self._con.close()
