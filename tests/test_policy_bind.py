"""Binding: columns against the schema, attributes as typed literals, fail closed;
injection attempts; known bugs kept fixed."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from typing import Any

import pyarrow as pa
import pytest

from govlab.errors import AccessDenied, PolicyError
from govlab.policy.ast import (
    FALSE,
    TRUE,
    And,
    Cmp,
    Expr,
    In,
    IsNull,
    Not,
    NotIn,
    NotNull,
    Or,
)
from govlab.policy.bind import bind_filter
from govlab.policy.compile import matches, to_arrow, to_sql
from govlab.policy.parser import MAX_FILTER_LENGTH, parse_filter
from tests.policy_helpers import (
    HEALTHCARE,
    SCHEMA,
    arrow_ids,
    bind,
    check,
    oracle_ids,
    role_yaml,
    table_of,
    walk,
)

# ============================================================================ binding


def test_bind_comparisons_produce_typed_literals() -> None:
    assert bind("i == 1") == Cmp("i", "==", 1, pa.int64())
    assert bind("i >= -3") == Cmp("i", ">=", -3, pa.int64())
    assert bind("f < 2") == Cmp("f", "<", 2.0, pa.float64())
    assert isinstance(bind("f < 2").value, float)
    assert bind("f > 0.5") == Cmp("f", ">", 0.5, pa.float64())
    assert bind("s != 'x'") == Cmp("s", "!=", "x", pa.string())
    assert bind("b") == Cmp("b", "==", True, pa.bool_())
    assert bind("b == false") == Cmp("b", "==", False, pa.bool_())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < i", Cmp("i", ">", 1, pa.int64())),
        ("1 <= i", Cmp("i", ">=", 1, pa.int64())),
        ("1 > i", Cmp("i", "<", 1, pa.int64())),
        ("1 >= i", Cmp("i", "<=", 1, pa.int64())),
        ("1 == i", Cmp("i", "==", 1, pa.int64())),
        ("1 != i", Cmp("i", "!=", 1, pa.int64())),
    ],
)
def test_bind_flips_literal_on_the_left(text: str, expected: Expr) -> None:
    assert bind(text) == expected


def test_bind_dates_and_timestamps_from_iso_strings() -> None:
    assert bind("d >= '2024-02-29'") == Cmp("d", ">=", dt.date(2024, 2, 29), pa.date32())
    assert bind("ts < '2024-01-31T12:30:05'") == Cmp(
        "ts", "<", dt.datetime(2024, 1, 31, 12, 30, 5), pa.timestamp("us")
    )
    assert bind("ts >= '2024-01-31'").value == dt.datetime(2024, 1, 31)
    assert bind("d == ${user.day}", {"day": "2020-01-02"}).value == dt.date(2020, 1, 2)
    assert bind("d in ['2020-01-02', '2021-03-04']") == In(
        "d", (dt.date(2020, 1, 2), dt.date(2021, 3, 4)), pa.date32()
    )


def test_bind_lists() -> None:
    assert bind("i in [1, 2, 2, 3]") == In("i", (1, 2, 3), pa.int64())
    assert bind("i in [7]") == Cmp("i", "==", 7, pa.int64())
    assert bind("i in [7, 7]") == Cmp("i", "==", 7, pa.int64())
    assert bind("i not in [7]") == Cmp("i", "!=", 7, pa.int64())
    assert bind("i not in [1, 2]") == NotIn("i", (1, 2), pa.int64())
    assert bind("f in [1, 2.5]") == In("f", (1.0, 2.5), pa.float64())
    assert bind("s in ${user.xs}", {"xs": ["a", "b"]}) == In("s", ("a", "b"), pa.string())
    assert bind("s in ${user.xs}", {"xs": ("a",)}) == Cmp("s", "==", "a", pa.string())
    assert bind("s in [${user.x}, 'b']", {"x": "a"}) == In("s", ("a", "b"), pa.string())


def test_bind_empty_lists() -> None:
    # empty lists stay list nodes, so that negating them keeps rejecting NULL
    assert to_sql(bind("i in []")) == "FALSE"
    assert to_sql(bind("i in ()")) == "FALSE"
    assert to_sql(bind("s in ${user.xs}", {"xs": []})) == "FALSE"
    assert to_sql(bind("i not in []")) == '"i" IS NOT NULL'
    assert to_sql(bind("s not in ${user.xs}", {"xs": []})) == '"s" IS NOT NULL'
    assert to_sql(bind("not (s in ${user.xs})", {"xs": []})) == '"s" IS NOT NULL'


def test_bind_empty_attribute_list_selects_zero_rows(healthcare_rows) -> None:
    table, rows = healthcare_rows
    expr = bind("region in ${user.allowed_regions}", {"allowed_regions": []}, HEALTHCARE.schema)
    assert table.filter(to_arrow(expr)).num_rows == 0
    assert not any(matches(expr, row) for row in rows)
    assert to_sql(expr) == "FALSE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not (i == 1)", Cmp("i", "!=", 1, pa.int64())),
        ("not i < 1", Cmp("i", ">=", 1, pa.int64())),
        ("not (i in [1, 2])", NotIn("i", (1, 2), pa.int64())),
        ("not (i not in [1, 2])", In("i", (1, 2), pa.int64())),
        ("not (s is null)", NotNull("s")),
        ("not (s is not null)", IsNull("s")),
        ("not not b", Cmp("b", "==", True, pa.bool_())),
        ("not b", Cmp("b", "!=", True, pa.bool_())),
        ("not true", FALSE),
        ("not (false)", TRUE),
        (
            "not (i < 1 and s is null)",
            Or((Cmp("i", ">=", 1, pa.int64()), NotNull("s"))),
        ),
        (
            "not (i < 1 or (s == 'a' and not b))",
            And(
                (
                    Cmp("i", ">=", 1, pa.int64()),
                    Or((Cmp("s", "!=", "a", pa.string()), Cmp("b", "==", True, pa.bool_()))),
                )
            ),
        ),
        (
            "i == 1 and (s == 'a' and b)",
            And(
                (
                    Cmp("i", "==", 1, pa.int64()),
                    Cmp("s", "==", "a", pa.string()),
                    Cmp("b", "==", True, pa.bool_()),
                )
            ),
        ),
        ("true and i == 1", Cmp("i", "==", 1, pa.int64())),
        ("false and i == 1", FALSE),
        ("true or i == 1", TRUE),
        ("false or i == 1", Cmp("i", "==", 1, pa.int64())),
    ],
)
def test_bind_normalises_to_nnf(text: str, expected: Expr) -> None:
    bound = bind(text)
    assert bound == expected
    assert not any(isinstance(n, Not) for n in walk(bound))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("nope == 1", "unknown column 'nope'"),
        ("I == 1", "unknown column 'I'"),
        ("nope is null", "unknown column"),
        ("nope in [1]", "unknown column"),
        ("nope", "unknown column"),
        ("i == 1 or nope == 2", "unknown column"),
        ("i == 'one'", "wrong type"),
        ("i == 1.0", "wrong type"),
        ("i == 1.5", "wrong type"),
        ("i == true", "wrong type"),
        ("i in [1, 'two']", "wrong type"),
        (f"i == {2**63}", "outside 64 bits"),
        (f"i == {-(2**63) - 1}", "outside 64 bits"),
        ("s == 1", "wrong type"),
        ("s in ['a', 2]", "wrong type"),
        ("s == true", "wrong type"),
        ("b == 1", "wrong type"),
        ("b == 'true'", "wrong type"),
        ("f == 'x'", "wrong type"),
        ("f == false", "wrong type"),
        ("f == 1e999", "wrong type"),
        ("d == 'not a date'", "wrong type"),
        ("d == '2024-02-30'", "wrong type"),
        ("d == 20240101", "wrong type"),
        ("d == '2024-01-01T10:00:00'", "wrong type"),
        ("ts == 'yesterday'", "wrong type"),
        ("b < true", "not defined for boolean"),
        ("b >= false", "not defined for boolean"),
        ("s", "not boolean"),
        ("i", "not boolean"),
        ("1", "wrong type"),
        ("'yes'", "wrong type"),
        ("i == s", "two columns"),
        ("1 is null", "must be a column"),
        ("'a' in ['a']", "must be a column"),
    ],
)
def test_bind_rejects_bad_policy_text(text: str, pattern: str) -> None:
    with pytest.raises(PolicyError, match=f"{pattern}|not a finite number"):
        bind(text)


def test_bind_errors_do_not_echo_values() -> None:
    with pytest.raises(PolicyError) as exc:
        bind("i == 'secret-literal-4711'")
    assert "secret-literal-4711" not in str(exc.value)
    with pytest.raises(AccessDenied) as denied:
        bind("i == ${user.id}", {"id": "secret-attr-4711"})
    assert "secret-attr-4711" not in str(denied.value)


@pytest.mark.parametrize(
    ("text", "attrs", "pattern"),
    [
        ("s == ${user.x}", {}, "'x'.*missing"),
        ("s == ${user.x}", {"y": "a"}, "missing"),
        ("s == ${user.x}", {"x": None}, "missing"),
        ("s in ${user.xs}", {}, "missing"),
        ("s in [${user.x}]", {}, "missing"),
        ("${user.is_admin}", {}, "missing"),
        ("${user.is_admin} == true or s == 'NE'", {}, "missing"),
        # shape
        ("s == ${user.x}", {"x": ["a"]}, "single value"),
        ("s == ${user.x}", {"x": ("a", "b")}, "single value"),
        ("s in [${user.x}, 'b']", {"x": ["a"]}, "single value"),
        ("s in ${user.xs}", {"xs": "a"}, "must be a list"),
        ("s not in ${user.xs}", {"xs": "ab"}, "must be a list"),
        ("i in ${user.xs}", {"xs": 3}, "must be a list"),
        # type
        ("i == ${user.x}", {"x": "5"}, "wrong type"),
        ("i == ${user.x}", {"x": True}, "wrong type"),
        ("i == ${user.x}", {"x": 5.0}, "wrong type"),
        ("s == ${user.x}", {"x": 7}, "wrong type"),
        ("s == ${user.x}", {"x": {"a": 1}}, "wrong type"),
        ("b == ${user.x}", {"x": 1}, "wrong type"),
        ("b == ${user.x}", {"x": "true"}, "wrong type"),
        ("f == ${user.x}", {"x": "1.5"}, "wrong type"),
        ("f == ${user.x}", {"x": float("nan")}, "wrong type"),
        ("f == ${user.x}", {"x": float("inf")}, "wrong type"),
        ("d == ${user.x}", {"x": "tomorrow"}, "wrong type"),
        ("d == ${user.x}", {"x": 20240101}, "wrong type"),
        ("i in ${user.xs}", {"xs": [1, "2"]}, "wrong type"),
        ("i in ${user.xs}", {"xs": [1, None]}, "wrong type"),
        ("s in ${user.xs}", {"xs": [["a"]]}, "wrong type"),
        ("${user.is_admin}", {"is_admin": "yes"}, "wrong type"),
        ("${user.is_admin}", {"is_admin": 1}, "wrong type"),
        ("${user.is_admin} == true", {"is_admin": "true"}, "different types"),
        ("${user.n} > 3", {"n": [5]}, "single value"),
    ],
)
def test_bind_denies_missing_or_ill_shaped_attributes(
    text: str, attrs: dict[str, Any], pattern: str
) -> None:
    # unrepresentable values are refused before binding, with their own reason
    with pytest.raises(AccessDenied, match=f"{pattern}|not a finite number|unsupported type"):
        bind(text, attrs)


def test_bind_accepts_well_typed_attributes() -> None:
    assert bind("i == ${user.x}", {"x": 5}) == Cmp("i", "==", 5, pa.int64())
    assert bind("f <= ${user.x}", {"x": 2}) == Cmp("f", "<=", 2.0, pa.float64())
    assert bind("b == ${user.x}", {"x": False}) == Cmp("b", "==", False, pa.bool_())
    assert bind("${user.x} < i", {"x": 5}) == Cmp("i", ">", 5, pa.int64())
    assert bind("i in ${user.xs}", {"xs": [3, 1]}) == In("i", (3, 1), pa.int64())


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"is_admin": True}, TRUE),
        ({"is_admin": False}, Cmp("s", "==", "NE", pa.string())),
    ],
)
def test_bind_folds_attribute_constants(attrs: dict[str, Any], expected: Expr) -> None:
    assert bind("${user.is_admin} == true or s == 'NE'", attrs) == expected


@pytest.mark.parametrize(
    ("text", "attrs", "expected"),
    [
        ("${user.is_admin}", {"is_admin": True}, TRUE),
        ("${user.is_admin}", {"is_admin": False}, FALSE),
        ("not ${user.is_admin}", {"is_admin": True}, FALSE),
        ("${user.n} > 3 and s == 'x'", {"n": 5}, Cmp("s", "==", "x", pa.string())),
        ("${user.n} > 3 and s == 'x'", {"n": 1}, FALSE),
        ("3 < ${user.n}", {"n": 5}, TRUE),
        ("${user.a} == ${user.b}", {"a": "x", "b": "x"}, TRUE),
        ("${user.a} != ${user.b}", {"a": "x", "b": "x"}, FALSE),
        ("${user.a} == 'x'", {"a": "x"}, TRUE),
        ("1 == 1.0", {}, TRUE),
        ("'a' < 'b'", {}, TRUE),
        ("2 <= 1", {}, FALSE),
        ("not (1 == 1) or i == 1", {}, Cmp("i", "==", 1, pa.int64())),
    ],
)
def test_bind_folds_constant_comparisons(text: str, attrs: dict[str, Any], expected: Expr) -> None:
    assert bind(text, attrs) == expected


def test_bind_in_validation_mode_checks_text_only() -> None:
    """attrs=None is policy validation: placeholders are left for request time."""
    u = parse_filter("s in ${user.xs} and i == ${user.n} and not (${user.flag})")
    assert bind_filter(u, SCHEMA, None) is not None
    with pytest.raises(PolicyError, match="unknown column"):
        bind_filter(parse_filter("nope in ${user.xs}"), SCHEMA, None)
    with pytest.raises(PolicyError, match="wrong type"):
        bind_filter(parse_filter("i == ${user.n} and i == 'x'"), SCHEMA, None)
    with pytest.raises(AccessDenied):  # ...but at request time the attribute is required
        bind_filter(u, SCHEMA, {})


# ============================================================================ injection

INJECTIONS = [
    "x' OR '1'='1",
    "1 OR 1=1",
    "C001' --",
    "' OR ''='",
    "C001'; DROP TABLE t; --",
    '" OR ""="',
    "C001\\' OR 1=1 --",
    "${user.id}",
    "') or ('a'='a",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_attribute_injection_stays_a_literal(payload: str, healthcare_rows) -> None:
    table, rows = healthcare_rows
    expr = bind("clinician_id == ${user.id}", {"id": payload}, HEALTHCARE.schema)
    assert expr == Cmp("clinician_id", "==", payload, pa.string())
    assert not any(matches(expr, row) for row in rows)
    assert table.filter(to_arrow(expr)).num_rows == 0
    assert to_sql(expr) == '"clinician_id" = \'' + payload.replace("'", "''") + "'"

    # The SQL text is one literal: run it and nothing comes back.
    con = sqlite3.connect(":memory:")
    con.execute('CREATE TABLE t ("patient_id" INTEGER, "clinician_id" TEXT, "region" TEXT)')
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(r["patient_id"], r["clinician_id"], r["region"]) for r in rows],
    )
    assert con.execute(f"SELECT count(*) FROM t WHERE {to_sql(expr)}").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (len(rows),)

    listed = bind(
        "region in ${user.allowed_regions}",
        {"allowed_regions": [payload, "NE') OR ('1'='1"]},
        HEALTHCARE.schema,
    )
    assert not any(matches(listed, row) for row in rows)
    assert table.filter(to_arrow(listed)).num_rows == 0
    assert con.execute(f"SELECT count(*) FROM t WHERE {to_sql(listed)}").fetchone() == (0,)


def test_legitimate_attribute_selects_the_same_rows_everywhere(healthcare_rows) -> None:
    table, rows = healthcare_rows
    expr = bind("clinician_id == ${user.id}", {"id": rows[0]["clinician_id"]}, HEALTHCARE.schema)
    expected = {r["patient_id"] for r in rows if r["clinician_id"] == rows[0]["clinician_id"]}
    assert 0 < len(expected) < len(rows)
    assert {r["patient_id"] for r in rows if matches(expr, r)} == expected
    assert set(table.filter(to_arrow(expr))["patient_id"].to_pylist()) == expected


def test_policy_text_injection_is_a_syntax_error() -> None:
    for text in ["clinician_id == 'x' OR '1'='1'", "clinician_id == x; --", "__import__('os')"]:
        with pytest.raises(PolicyError):
            bind(text, {}, HEALTHCARE.schema)


# ============================================================================ known bugs


def test_bug_column_inside_in_list_is_a_policy_error() -> None:
    with pytest.raises(PolicyError):
        bind("s in [i, 'a']")
    with pytest.raises(PolicyError, match="row_filter"):
        check(role_yaml('  - id: a\n    row_filter: "region in [clinician_id]"\n'))


def test_bug_literal_type_mismatch_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as exc:
        check(role_yaml("  - id: a\n    row_filter: \"'a' == 1\"\n"))
    assert any("row_filter" in r for r in exc.value.reasons)


def test_bug_offset_timestamp_literal_on_naive_column(healthcare_rows) -> None:
    table, rows = healthcare_rows
    try:
        expr = bind("admitted_at > '2024-01-01T00:00:00+02:00'", {}, HEALTHCARE.schema)
    except PolicyError:
        return
    oracle = {r["patient_id"] for r in rows if matches(expr, r)}
    assert oracle == set(table.filter(to_arrow(expr))["patient_id"].to_pylist())


def test_bug_float_in_list_negative_zero() -> None:
    rows = [{"id": 1, "f": 0.0}, {"id": 2, "f": -0.0}, {"id": 3, "f": 1.0}, {"id": 4, "f": None}]
    schema = pa.schema([("id", pa.int64()), ("f", pa.float64())])
    table = table_of(rows, schema)
    for text in ["f in [0.0, 2.0]", "f in [-0.0, 2.0]", "f not in [0.0, 2.0]"]:
        expr = bind(text, schema=schema)
        assert arrow_ids(expr, table) == oracle_ids(expr, rows), text


def test_bug_deep_nesting_is_a_policy_error_not_a_crash() -> None:
    for text in ["(" * 300 + "true" + ")" * 300, "not (" * 300 + "true" + ")" * 300]:
        assert len(text) <= MAX_FILTER_LENGTH
        with contextlib.suppress(PolicyError):
            bind(text)
