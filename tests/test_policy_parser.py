"""Parsing policy text into the unbound tree: grammar, limits, errors."""

from __future__ import annotations

import pytest

from govlab.errors import PolicyError
from govlab.policy.ast import (
    ColumnRef,
    Const,
    Placeholder,
    UAnd,
    UBool,
    UCompare,
    UIn,
    UIsNull,
    UNot,
    UOr,
)
from govlab.policy.parser import MAX_FILTER_LENGTH, parse_filter

# ============================================================================ parser

CA, CB, CI = ColumnRef("a"), ColumnRef("b"), ColumnRef("i")


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_parser_reads_every_comparison_operator(op: str) -> None:
    assert parse_filter(f"i {op} 1") == UCompare(op, CI, Const(1))
    assert parse_filter(f"i{op}1") == UCompare(op, CI, Const(1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i in [1, 2]", UIn(CI, (Const(1), Const(2)), negated=False)),
        ("i in (1, 2)", UIn(CI, (Const(1), Const(2)), negated=False)),
        ("i not in ['x']", UIn(CI, (Const("x"),), negated=True)),
        ("i in []", UIn(CI, (), negated=False)),
        ("i not in ()", UIn(CI, (), negated=True)),
        ("i in ${user.ids}", UIn(CI, Placeholder("ids"), negated=False)),
        ("i not in ${user.ids}", UIn(CI, Placeholder("ids"), negated=True)),
        ("i in [${user.x}, 3]", UIn(CI, (Placeholder("x"), Const(3)), negated=False)),
        ("i == ${user.id}", UCompare("==", CI, Placeholder("id"))),
        ("i == ${ user.id }", UCompare("==", CI, Placeholder("id"))),
        ("${user.id} == i", UCompare("==", Placeholder("id"), CI)),
        ("i is null", UIsNull(CI, negated=False)),
        ("i is not null", UIsNull(CI, negated=True)),
    ],
)
def test_parser_lists_placeholders_and_null_tests(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # not > and > or
        ("a or b and not i", UOr(UBool(CA), UAnd(UBool(CB), UNot(UBool(CI))))),
        ("not a and b", UAnd(UNot(UBool(CA)), UBool(CB))),
        ("a and b or i", UOr(UAnd(UBool(CA), UBool(CB)), UBool(CI))),
        ("not a or b", UOr(UNot(UBool(CA)), UBool(CB))),
        # parentheses override
        ("(a or b) and i", UAnd(UOr(UBool(CA), UBool(CB)), UBool(CI))),
        ("not (a or b)", UNot(UOr(UBool(CA), UBool(CB)))),
        ("((a))", UBool(CA)),
        # left-associative chains
        ("a or b or i", UOr(UOr(UBool(CA), UBool(CB)), UBool(CI))),
        ("a and b and i", UAnd(UAnd(UBool(CA), UBool(CB)), UBool(CI))),
        # not applies to the whole comparison
        ("not i == 1", UNot(UCompare("==", CI, Const(1)))),
        ("not not a", UNot(UNot(UBool(CA)))),
    ],
)
def test_parser_precedence(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'plain'", "plain"),
        ('"double"', "double"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        (r"'it\'s'", "it's"),
        (r'"a\"b"', 'a"b'),
        (r"'back\\slash'", "back\\slash"),
        (r"'tab\there'", "tab\there"),
        (r"'line\nbreak'", "line\nbreak"),
        ("''", ""),
        ("'é ü 漢'", "é ü 漢"),
        ("'x OR 1=1; --'", "x OR 1=1; --"),
        ("-5", -5),
        ("0", 0),
        ("42", 42),
        ("-2.5", -2.5),
        ("0.25", 0.25),
        ("1e3", 1000.0),
        ("-1.5E-2", -0.015),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
    ],
)
def test_parser_literals(literal: str, value: object) -> None:
    parsed = parse_filter(f"i == {literal}")
    assert parsed == UCompare("==", CI, Const(value))
    assert type(parsed.right.value) is type(value)  # 1 stays int, 1e3 is float, true is bool


def test_parser_bare_operands_are_boolean_tests() -> None:
    assert parse_filter("flag") == UBool(ColumnRef("flag"))
    assert parse_filter("true") == UBool(Const(True))
    assert parse_filter("${user.is_admin}") == UBool(Placeholder("is_admin"))


def test_parser_keywords_are_case_insensitive_but_columns_are_not() -> None:
    lower = parse_filter("not a is not null and i not in [1] or b in (2) and b is null")
    upper = parse_filter("NOT a IS NOT NULL AND i NOT IN [1] OR b IN (2) AND b IS NULL")
    mixed = parse_filter("Not a Is Not Null aNd i nOt In [1] Or b iN (2) AnD b iS nUlL")
    assert lower == upper == mixed
    assert parse_filter("Region == 'NE'") == UCompare("==", ColumnRef("Region"), Const("NE"))


def test_parser_keywords_are_not_columns_but_prefixes_are() -> None:
    assert parse_filter("android == 1") == UCompare("==", ColumnRef("android"), Const(1))
    assert parse_filter("notes is null") == UIsNull(ColumnRef("notes"), negated=False)
    assert parse_filter("order_in == 1") == UCompare("==", ColumnRef("order_in"), Const(1))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("a = 1", r"position 2.*=="),
        ("a == 'open", r"position 5"),
        ('a == "open', r"position 5"),
        ("a == 1 b", r"unexpected token at position 7"),
        ("a == 1)", r"unexpected token at position 6"),
        ("(a == 1", r"expected '\)' at position 7.*end of filter"),
        ("a ==", r"position 4.*end of filter"),
        ("a == == 1", r"position 5"),
        ("and", r"position 0"),
        ("a in 1", r"expected a list.*position 5"),
        ("a in [1 2]", r"expected ','.*position 8"),
        ("a in [1", r"position 7"),
        ("a is 1", r"expected 'null'.*position 5"),
        ("a is not 1", r"expected 'null'.*position 9"),
        ("a not 1", r"unexpected token at position 2"),
        (r"a == 'bad\q'", r"unknown escape.*position 5"),
        ("a == ${user.}", r"position 5"),
        ("a == ${env.HOME}", r"position 5"),
        ("a == 1; drop table t", r"position 6"),
        ("a == 1 -- comment", r"position 7"),
        ("a & b", r"position 2"),
    ],
)
def test_parser_syntax_errors_have_a_position(text: str, pattern: str) -> None:
    with pytest.raises(PolicyError, match=pattern):
        parse_filter(text)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_parser_rejects_an_empty_filter(text: str) -> None:
    with pytest.raises(PolicyError, match="empty"):
        parse_filter(text)


def test_parser_length_limit() -> None:
    ok = "i == 1" + " " * (MAX_FILTER_LENGTH - 6)
    assert len(ok) == MAX_FILTER_LENGTH
    assert parse_filter(ok) == UCompare("==", CI, Const(1))
    with pytest.raises(PolicyError, match=str(MAX_FILTER_LENGTH)):
        parse_filter(ok + " ")
    with pytest.raises(PolicyError, match="longer"):
        parse_filter("i == 1 or " * 1000 + "i == 1")
