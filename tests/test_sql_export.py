"""The SQL export (``policy/sql_export.py``): sqlglot renders every dialect; the exported
views run on DuckDB and SQLite and give the oracle's rows and govlab's masks (or NULL
where a mask is withheld); a column name is never a string literal in any dialect."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from govlab.catalog import DATASETS, get_dataset
from govlab.cli import main
from govlab.keys import derive_keys
from govlab.masks import apply_mask
from govlab.policy import Principal, compile_access, load_policy, validate_policy
from govlab.policy.ast import Cmp, Contains, In, IsNull, NotIn, NotNull, Or, and_
from govlab.policy.compile import matches, to_sql
from govlab.policy.sql_export import DIALECTS, SQL_MASKS, export_sql, filter_sql, table_name
from tests.conftest import TEST_SECRET

GOVERNANCE = Path(__file__).resolve().parent.parent / "governance"
ATTRS = {"id": "C007", "allowed_regions": ["NE", "SW"], "region": "W"}
KEYS = derive_keys(TEST_SECRET.encode()).masks


def roles() -> list[tuple[str, str]]:
    out = []
    for dataset in DATASETS:
        loaded = load_policy(GOVERNANCE / f"{dataset}.yaml")
        out += [(dataset, role.id) for role in loaded.policy.roles]
    return out


def plan_of(dataset: str, role: str) -> Any:
    loaded = validate_policy(load_policy(GOVERNANCE / f"{dataset}.yaml"), get_dataset(dataset))
    return compile_access(loaded, get_dataset(dataset), Principal(role, ATTRS))


def exported(dataset: str, role: str, dialect: str, table: str = "src") -> Any:
    plan = plan_of(dataset, role)
    masks = {c: m.type for c, m in plan.masks.items()}
    return plan, export_sql(
        get_dataset(dataset).schema, plan.row_filter, masks, dialect, table, "v"
    )


# ---------------------------------------------------------------- every dialect
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("dataset", "role"), roles())
def test_every_export_parses_back_in_its_dialect(dataset: str, role: str, dialect: str) -> None:
    plan, result = exported(dataset, role, dialect)
    for statement in result.statements:
        if statement.startswith(("CREATE OR REPLACE VIEW", "CREATE VIEW")):
            tree = sqlglot.parse_one(statement, read=dialect)
            assert isinstance(tree, exp.Create)
    assert set(result.withheld) <= set(plan.masks)
    exact = {c for c, m in plan.masks.items() if m.type in SQL_MASKS}
    assert not (set(result.withheld) - (set(plan.masks) - exact)) or dialect == "sqlite"


def _expected_rows(table: pa.Table, dataset: str, plan: Any) -> list[dict[str, Any]]:
    """The oracle: rows passing the filter, each mask computed by govlab.masks."""
    spec = get_dataset(dataset)
    rows = [r for r in table.to_pylist() if matches(plan.row_filter, r)]
    visible = pa.Table.from_pylist(rows, schema=spec.schema)
    out = {c: visible.column(c).to_pylist() for c in spec.schema.names}
    for column, mask in plan.masks.items():
        values = apply_mask(
            mask.type, mask.params, visible.column(column), KEYS, dataset=dataset, column=column
        )
        out[column] = values.to_pylist()
    return [dict(zip(out, values, strict=True)) for values in zip(*out.values(), strict=True)]


def _normal(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


@pytest.mark.parametrize(("dataset", "role"), roles())
def test_duckdb_runs_the_export_with_the_oracles_rows_and_masks(
    dataset: str, role: str, raw_tables: dict[str, pa.Table]
) -> None:
    table = raw_tables[dataset]
    plan, result = exported(dataset, role, "duckdb")
    con = duckdb.connect()
    con.register("src_arrow", table)
    con.execute("CREATE TABLE src AS SELECT * FROM src_arrow")
    for statement in result.statements:
        con.execute(statement)
    got = con.sql("SELECT * FROM v").to_arrow_table().to_pylist()
    pk = get_dataset(dataset).primary_key
    got.sort(key=lambda r: r[pk])
    expected = sorted(_expected_rows(table, dataset, plan), key=lambda r: r[pk])
    assert len(got) == len(expected) > 0
    for mine, theirs in zip(got, expected, strict=True):
        for column, value in theirs.items():
            if column in result.withheld:
                assert mine[column] is None, column  # withheld, never the raw value
            else:
                assert _normal(mine[column]) == _normal(value), (column, mine[pk])


SQLITE_TYPES = {pa.int64(): "INTEGER", pa.float64(): "REAL", pa.bool_(): "INTEGER"}


@pytest.mark.parametrize(("dataset", "role"), roles())
def test_sqlite_runs_the_export_with_the_oracles_rows(
    dataset: str, role: str, raw_tables: dict[str, pa.Table]
) -> None:
    """SQLite has no date type: dates are stored as ISO text, and date masks withheld."""
    spec, table = get_dataset(dataset), raw_tables[dataset]
    plan, result = exported(dataset, role, "sqlite")
    con = sqlite3.connect(":memory:")
    columns = ", ".join(f'"{f.name}" {SQLITE_TYPES.get(f.type, "TEXT")}' for f in spec.schema)
    con.execute(f"CREATE TABLE src ({columns})")
    rows = [tuple(_sqlite_value(v) for v in r.values()) for r in table.to_pylist()]
    con.executemany(f"INSERT INTO src VALUES ({', '.join('?' * len(spec.schema))})", rows)
    for statement in result.statements:
        con.execute(statement)
    cursor = con.execute("SELECT * FROM v")
    names = [d[0] for d in cursor.description]
    got = {r[names.index(spec.primary_key)]: dict(zip(names, r, strict=True)) for r in cursor}
    expected = {r[spec.primary_key]: r for r in _expected_rows(table, dataset, plan)}
    assert got.keys() == expected.keys() and got
    for key, theirs in expected.items():
        for column in plan.masks:
            if column in result.withheld:
                assert got[key][column] is None, column
            else:
                assert got[key][column] == theirs[column], column


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float | int | str) or value is None:
        return value
    return str(value)


# ---------------------------------------------------------------- identifiers
WEIRD = ["region", "select", "we'ird", 'dou"ble', "back`tick", "spa ce", "ünï", "a\\b"]


def _filters(name: str) -> list[Any]:
    s = pa.string()
    return [
        Cmp(name, "==", "x", s),
        Cmp(name, "!=", name, s),  # a value equal to the column's name
        In(name, ("a", name), s),
        NotIn(name, ("a", "b"), s),
        IsNull(name),
        NotNull(name),
        Contains(name, "Ab'c%_"),
        and_(Or((Cmp(name, "<", "m", s), IsNull(name))), Cmp(name, ">=", "a", s)),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", WEIRD)
def test_a_column_name_is_never_a_string_literal(dialect: str, name: str) -> None:
    """Parsed back in its own dialect, every column reference is an identifier with the
    exact name, and no string literal holds a column name unless it is a value."""
    for expr in _filters(name):
        sql = filter_sql(expr, dialect)
        tree = sqlglot.parse_one(sql, read=dialect)
        columns = list(tree.find_all(exp.Column))
        assert columns and all(c.name == name for c in columns), (dialect, sql)
        assert all(c.this.quoted for c in columns), (dialect, sql)
        values = {lit.this for lit in tree.find_all(exp.Literal) if lit.is_string}
        bound_values = {getattr(expr, "value", None), *getattr(expr, "values", ())}
        for child in getattr(expr, "children", ()):
            bound_values |= {getattr(child, "value", None), *getattr(child, "values", ())}
        assert name not in values - bound_values, (dialect, sql)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_table_and_view_names_are_identifiers(dialect: str) -> None:
    table = table_name("cat.sch.my'table")
    tree = sqlglot.parse_one(f"SELECT 1 FROM {table.sql(dialect)}", read=dialect)
    found = tree.find(exp.Table)
    assert found is not None and found.name == "my'table" and found.db == "sch"
    with pytest.raises(ValueError):
        table_name("a..b")


def test_the_display_sql_is_not_portable_which_is_why_export_exists() -> None:
    """``to_sql`` quotes with double quotes: Spark reads "region" as a string, so
    ``"region" != 'x'`` would compare two constants. The export quotes with backticks."""
    expr = Cmp("region", "!=", "x", pa.string())
    spark_tree = sqlglot.parse_one(to_sql(expr), read="spark")
    assert not list(spark_tree.find_all(exp.Column))  # a literal, not the column
    exported_tree = sqlglot.parse_one(filter_sql(expr, "spark"), read="spark")
    assert [c.name for c in exported_tree.find_all(exp.Column)] == ["region"]


# ---------------------------------------------------------------- CLI
def test_cli_policy_export_prints_the_view(capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(GOVERNANCE / "healthcare.yaml")
    args = ["policy", "export", policy, "--dialect", "spark", "--role", "analyst"]
    assert main([*args, "--attr", 'allowed_regions=["NE","SW"]', "--table", "db.patients"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("CREATE OR REPLACE VIEW `healthcare_analyst` AS SELECT `patient_id`")
    assert "FROM `db`.`patients` WHERE `region` IN ('NE', 'SW');" in out
    assert "withheld as NULL" in err and "ssn" in err
    assert main(["policy", "export", policy, "--dialect", "oracle", "--role", "admin"]) == 1
    assert "unknown SQL dialect 'oracle'" in capsys.readouterr().err
    missing = ["policy", "export", policy, "--dialect", "duckdb", "--role", "analyst"]
    assert main(missing) == 3  # the row filter's attribute is missing: denied


def test_databricks_and_snowflake_get_native_row_filters() -> None:
    _, databricks = exported("healthcare", "clinician", "databricks", "main.clinic.patients")
    assert databricks.statements[0].startswith(
        "CREATE OR REPLACE FUNCTION `v_row_filter`(`clinician_id` STRING) RETURNS BOOLEAN "
        "RETURN `clinician_id` = 'C007'"
    )
    assert databricks.statements[1] == (
        "ALTER TABLE `main`.`clinic`.`patients` SET ROW FILTER `v_row_filter` ON (`clinician_id`)"
    )
    _, snowflake = exported("healthcare", "clinician", "snowflake")
    assert snowflake.statements[0].startswith('CREATE OR REPLACE ROW ACCESS POLICY "v_row_filter"')
    assert (
        '("clinician_id" VARCHAR) RETURNS BOOLEAN -> "clinician_id" = \'C007\''
        in (snowflake.statements[0])
    )


# ---------------------------------------------------------------- Spark (marked)
@pytest.mark.spark
def test_spark_runs_the_exported_filter(raw_tables: dict[str, pa.Table]) -> None:
    required = os.environ.get("GOVLAB_REQUIRE_SPARK") == "1"  # .ci/run: must run, not skip
    if shutil.which("java") is None and not required:
        pytest.skip("no Java on this machine")
    if required:
        import pyspark.sql as pyspark
    else:
        pyspark = pytest.importorskip("pyspark.sql")
    spark = (
        pyspark.SparkSession.builder.master("local[1]")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        table = raw_tables["healthcare"]
        spark.createDataFrame(table.to_pandas()).createOrReplaceTempView("src")
        plan, result = exported("healthcare", "analyst", "spark")
        for statement in result.statements:
            spark.sql(statement.replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW"))
        expected = {r["patient_id"]: r for r in _expected_rows(table, "healthcare", plan)}
        got = {r["patient_id"]: r.asDict() for r in spark.sql("SELECT * FROM v").collect()}
        assert got.keys() == expected.keys() and got
        for key, row in got.items():
            for column in plan.masks:  # masked as govlab masks, or withheld (NULL)
                want = None if column in result.withheld else expected[key][column]
                assert row[column] == want, column
        # the hazard the export exists for: Spark reads the display text's "region" as
        # a string, so a != rule selects every row where the export selects the right ones
        rule = Cmp("region", "!=", "NE", pa.string())
        display = spark.sql(f"SELECT count(*) AS n FROM src WHERE {to_sql(rule)}").first()
        exported_sql = f"SELECT count(*) AS n FROM src WHERE {filter_sql(rule, 'spark')}"
        right = spark.sql(exported_sql).first()
        assert display["n"] == table.num_rows
        assert right["n"] == sum(1 for r in table.to_pylist() if r["region"] != "NE")
    finally:
        spark.stop()


def test_the_policy_layer_imports_neither_daft_ray_nor_sqlglot() -> None:
    """Targets load on first use: importing the policy layer pulls in no engine."""
    import subprocess
    import sys

    script = (
        "import sys, govlab.policy, govlab.policy.access, govlab.policy.compile, "
        "govlab.search; print(sorted(m for m in ('daft', 'ray', 'sqlglot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
