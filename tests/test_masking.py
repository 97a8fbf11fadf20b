"""Behaviour of the column masks in govlab.masks.

Exact outputs are pinned for every mask (including nulls and the fail-closed cases),
and hypothesis checks the masks against small pure-Python reference implementations
plus "never echoes the raw value" properties that hold by construction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govlab.errors import BadRequest, PolicyError
from govlab.keys import MaskKeys, derive_keys
from govlab.masks import (
    EXAMPLE_MASK_KEYS,
    MASK_NAMES,
    MASKS,
    apply_mask,
    check_mask,
    detokenize,
    mask_table,
    tokenize_value,
)

KEY = derive_keys(b"test-key-3f9a1c0e2b7d4a6f8e1c3b5d7f9a0c2e").masks
OTHER_KEY = derive_keys(b"another-test-key-0000000000000000000000").masks
DS, COL = "healthcare", "ssn"  # where the tokens of these tests live
R = "*****"


def mask(name: str, values: list, type_: pa.DataType | None = None, key: MaskKeys = KEY, **params):
    return apply_mask(name, params, pa.array(values, type_), key).to_pylist()


def ref_hmac(value: bytes, key: bytes = KEY.hash) -> str:
    return hmac.new(key, value, hashlib.sha256).hexdigest()[:32]


def tok(value: str, key: MaskKeys = KEY, dataset: str = DS, column: str = COL) -> str:
    return tokenize_value(value, key, dataset, column)


def detok(token: str, key: MaskKeys = KEY, dataset: str = DS, column: str = COL) -> str:
    return detokenize(token, key, dataset, column)


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_mask_once_in_order() -> None:
    assert MASK_NAMES == (
        "redact_full",
        "redact_part",
        "hash",
        "tokenize",
        "initials",
        "year_only",
        "yyyy_mm",
        "city_only",
        "null",
    )
    assert tuple(MASKS) == MASK_NAMES
    assert all(MASKS[name].name == name for name in MASK_NAMES)


@pytest.mark.parametrize("name", MASK_NAMES)
def test_legend_example_is_the_real_output(name: str) -> None:
    mdef = MASKS[name]
    if name in ("year_only", "yyyy_mm"):
        values = pa.array([date.fromisoformat(mdef.example_before)])
    else:
        values = pa.array([mdef.example_before])
    (out,) = apply_mask(
        name, {}, values, EXAMPLE_MASK_KEYS, dataset="example", column="example"
    ).to_pylist()
    assert ("null" if out is None else out) == mdef.example_after
    assert mdef.description


# --------------------------------------------------------------------------- redact_full


def test_redact_full_text_is_fixed_marker_and_keeps_nulls() -> None:
    assert mask("redact_full", ["Jane Doe", "", None, "x" * 100]) == [R, R, None, R]


@pytest.mark.parametrize(
    ("values", "type_"),
    [([1, None, 3], pa.int64()), ([date(2000, 1, 1)], pa.date32()), ([b"ab"], pa.binary())],
)
def test_redact_full_non_text_is_null(values: list, type_: pa.DataType) -> None:
    out = apply_mask("redact_full", {}, pa.array(values, type_), KEY)
    assert out.type == pa.string()
    assert out.to_pylist() == [None] * len(values)


# --------------------------------------------------------------------------- redact_part


@pytest.mark.parametrize(
    ("raw", "params", "expected"),
    [
        ("123-45-6789", {}, "***-**-6789"),
        ("123-45-6789", {"keep": 4}, "***-**-6789"),
        ("123-45-6789", {"keep": 2}, "***-**-**89"),
        ("123-45-6789", {"keep": 0}, "***-**-****"),
        ("john.doe@example.com", {}, "****.***@******e.com"),
        ("4111 1111 1111 1234", {}, "**** **** **** 1234"),
        ("12345", {}, "*2345"),
        ("1234", {}, "****"),  # exactly keep: fully starred, never shown whole
        ("12-3", {}, "**-*"),
        ("ab", {"keep": 10}, "**"),
        ("---", {}, R),  # nothing to star: marker, not the raw value
        ("", {}, R),
        ("Müller-Lüdenscheidt", {}, "******-********eidt"),
        ("日本語のテキスト", {}, "****テキスト"),
        ("ab😀cdef", {}, "**😀cdef"),
        ("ab-cd-ef 😀", {}, "**-cd-ef 😀"),
    ],
)
def test_redact_part_exact(raw: str, params: dict, expected: str) -> None:
    assert apply_mask("redact_part", params, pa.array([raw]), KEY).to_pylist() == [expected]


def test_redact_part_nulls_sliced_chunked_and_dictionary_input() -> None:
    base = pa.array(["x", "123-45-6789", None, "ab", "Ünïcödé 12345"])
    expected = ["***-**-6789", None, "**", "******* *2345"]
    assert apply_mask("redact_part", {}, base.slice(1), KEY).to_pylist() == expected
    chunked = pa.chunked_array([base.slice(1, 2), base.slice(3)])
    assert apply_mask("redact_part", {}, chunked, KEY).to_pylist() == expected
    encoded = base.slice(1).dictionary_encode()
    assert apply_mask("redact_part", {}, encoded, KEY).to_pylist() == expected
    large = base.slice(1).cast(pa.large_string())
    assert apply_mask("redact_part", {}, large, KEY).to_pylist() == expected
    assert mask("redact_part", [None, None], pa.string()) == [None, None]
    assert mask("redact_part", [], pa.string()) == []


# --------------------------------------------------------------------------- hash


def test_hash_is_keyed_hmac_prefix() -> None:
    out = mask("hash", ["jane@example.com", None, "jane@example.com", ""])
    expected = ref_hmac(b"jane@example.com")
    assert out == [expected, None, expected, ref_hmac(b"")]
    assert out[0] != hashlib.sha256(b"jane@example.com").hexdigest()[:32]
    assert len(out[0]) == 32  # 128 bits: no birthday collisions, no brute force
    assert mask("hash", ["jane@example.com"], key=OTHER_KEY)[0] != expected


def test_hash_long_key_matches_hmac() -> None:
    long_key = bytes(range(200))  # longer than the SHA-256 block: hashed first per RFC 2104
    keys = MaskKeys(hash=long_key, tokenize=KEY.tokenize)
    assert mask("hash", ["v"], key=keys) == [ref_hmac(b"v", long_key)]


def test_hash_non_string_types_use_string_form() -> None:
    assert mask("hash", [42, None], pa.int64()) == [ref_hmac(b"42"), None]
    assert mask("hash", [True], pa.bool_()) == [ref_hmac(b"true")]
    assert mask("hash", [date(1984, 7, 23)], pa.date32()) == [ref_hmac(b"1984-07-23")]
    assert mask("hash", [b"\x00\xff"], pa.binary()) == [ref_hmac(b"\x00\xff")]
    nested = mask("hash", [[1, 2], None, [1, 2]], pa.list_(pa.int64()))
    assert nested[0] == nested[2] and nested[1] is None and len(nested[0]) == 32


def test_hash_of_dictionary_matches_plain() -> None:
    values = pa.array(["a", "b", None, "a"])
    assert (
        apply_mask("hash", {}, values.dictionary_encode(), KEY).to_pylist()
        == apply_mask("hash", {}, values, KEY).to_pylist()
    )


def test_keyed_masks_refuse_empty_key() -> None:
    with pytest.raises(ValueError):
        mask("hash", ["x"], key=MaskKeys(hash=b"", tokenize=KEY.tokenize))
    with pytest.raises(ValueError):
        tok("x", MaskKeys(hash=KEY.hash, tokenize=b""))


# --------------------------------------------------------------------------- tokenize


def test_tokenize_round_trip_and_determinism() -> None:
    values = ["jane@example.com", None, "jane@example.com", "", "Ünïcödé ✓"]
    out = apply_mask("tokenize", {}, pa.array(values), KEY, dataset=DS, column=COL).to_pylist()
    assert out[1] is None
    assert out[0] == out[2] == tok("jane@example.com")
    assert len({out[0], out[3], out[4]}) == 3
    for raw, token in zip(values, out, strict=True):
        if raw is not None:
            assert token.startswith("tok_")
            assert "=" not in token
            assert detok(token) == raw
    assert tok("jane@example.com", OTHER_KEY) != out[0]


def test_a_token_opens_only_in_its_own_dataset_and_column() -> None:
    """Tokens are bound to (dataset, column) as AES-SIV associated data: a role allowed to
    detokenize in one dataset cannot redeem tokens minted in another, or another column."""
    token = tok("123-45-6789", dataset="financial", column="ssn")
    assert detok(token, dataset="financial", column="ssn") == "123-45-6789"
    for dataset, column in [("healthcare", "ssn"), ("financial", "account_number")]:
        with pytest.raises(BadRequest, match=r"^not a valid token$"):
            detok(token, dataset=dataset, column=column)
    assert tok("123-45-6789", dataset="healthcare", column="ssn") != token


def _tamper(token: str) -> str:
    body = token[4:]
    swapped = "A" if body[5] != "A" else "B"
    return "tok_" + body[:5] + swapped + body[6:]


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda t: "",
        lambda t: "tok_",
        lambda t: "tok_!!!!",
        lambda t: t[4:],  # missing prefix
        lambda t: t[:-3],  # truncated
        lambda t: t + "A",  # extended
        lambda t: t + "=",  # padding is never emitted
        _tamper,
        lambda t: "tok_" + base64.urlsafe_b64encode(b"x" * 24).decode().rstrip("="),
        lambda t: "tok_" + base64.urlsafe_b64encode(b"x" * 5).decode().rstrip("="),
    ],
)
def test_detokenize_rejects_anything_not_made_with_the_key(make_bad) -> None:
    good = tok("123-45-6789")
    with pytest.raises(BadRequest, match=r"^not a valid token$"):
        detok(make_bad(good))


def test_detokenize_wrong_key_and_non_string() -> None:
    token = tok("123-45-6789")
    with pytest.raises(BadRequest, match=r"^not a valid token$"):
        detok(token, OTHER_KEY)
    with pytest.raises(BadRequest):
        detok(None)  # type: ignore[arg-type]


def test_detokenize_rejects_non_canonical_base64() -> None:
    token = tok("abc")  # 19-byte ciphertext: last char carries spare bits
    body = token[4:]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(body[-1])
    variant = "tok_" + body[:-1] + alphabet[last ^ 1]
    pad = "=" * (-len(body) % 4)
    assert pad  # the length leaves spare bits, else this test proves nothing
    assert base64.urlsafe_b64decode(variant[4:] + pad) == base64.urlsafe_b64decode(body + pad)
    with pytest.raises(BadRequest):
        detok(variant)


# --------------------------------------------------------------------------- initials


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John Smith", "J.S."),
        ("mary ann lee", "M.A.L."),
        ("  mary \t ann\nlee  ", "M.A.L."),
        ("O'Brien", "O."),
        ("élodie durand", "É.D."),
        ("John 3rd", "J.R."),
        ("Jean-Luc Picard", "J.P."),
        ("John - Smith", "J.S."),
        ("123 456", R),
        ("-- --", R),
        ("", R),
        ("   ", R),
    ],
)
def test_initials_exact(raw: str, expected: str) -> None:
    assert mask("initials", [raw]) == [expected]


def test_initials_of_a_mixed_batch_match_each_value_alone() -> None:
    """Words starting with an ASCII letter skip the regex; others take it: in one batch
    every value must still get what it gets alone."""
    values = ["John Smith", "3rd street", "élodie 42x", "-- x", None, "ann", "Ωmega b", "", "_a B"]
    alone = [mask("initials", [v, "x"])[0] for v in values]  # "x": a text-typed array
    assert mask("initials", values) == alone


def test_initials_nulls() -> None:
    assert mask("initials", [None, "ann lee", None]) == [None, "A.L.", None]


# --------------------------------------------------------------------------- dates


def test_year_only_and_yyyy_mm_on_dates() -> None:
    values = [date(1984, 7, 23), None, date(984, 1, 2), date(2024, 12, 31)]
    assert mask("year_only", values, pa.date32()) == ["1984", None, "0984", "2024"]
    assert mask("yyyy_mm", values, pa.date32()) == ["1984-07", None, "0984-01", "2024-12"]
    assert mask("yyyy_mm", values, pa.date64()) == ["1984-07", None, "0984-01", "2024-12"]


def test_date_masks_on_timestamps_use_the_columns_zone() -> None:
    instant = datetime(1984, 12, 31, 23, 30, tzinfo=UTC)
    naive = pa.array([instant.replace(tzinfo=None), None], pa.timestamp("ns"))
    assert mask("yyyy_mm", naive.to_pylist(), pa.timestamp("ns")) == ["1984-12", None]
    tokyo = pa.array([instant], pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("us", tz="Asia/Tokyo")
    )
    assert apply_mask("year_only", {}, tokyo, KEY).to_pylist() == ["1985"]
    assert apply_mask("yyyy_mm", {}, tokyo, KEY).to_pylist() == ["1985-01"]


def test_date_masks_out_of_range_years_match_strftime() -> None:
    values = pa.array([-1_000_000, 0], pa.date32())
    assert (
        apply_mask("year_only", {}, values, KEY).to_pylist()
        == pc.strftime(values, "%Y").to_pylist()
    )


# --------------------------------------------------------------------------- city_only


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12 Oak St, Springfield, IL 62704", "Springfield"),
        ("1 Main St,Riverside,CA", "Riverside"),
        ("a, b, c, d", "b"),
        ("12 Oak St, Springfield", R),  # only two parts: unparseable
        ("Springfield", R),
        ("12 Oak St, , IL", R),  # empty city
        ("", R),
    ],
)
def test_city_only_exact(raw: str, expected: str) -> None:
    assert mask("city_only", [raw]) == [expected]


def test_city_only_nulls() -> None:
    assert mask("city_only", [None, "a, b, c"]) == [None, "b"]


# --------------------------------------------------------------------------- null


@pytest.mark.parametrize(
    ("values", "type_"),
    [(["a", None, "b"], pa.string()), ([1, 2, 3], pa.int32()), ([date(2000, 1, 1)], None)],
)
def test_null_mask_withholds_everything(values: list, type_: pa.DataType | None) -> None:
    out = apply_mask("null", {}, pa.array(values, type_), KEY)
    assert out.type == pa.string()
    assert out.to_pylist() == [None] * len(values)


@pytest.mark.parametrize(
    "name", ["redact_full", "redact_part", "hash", "tokenize", "initials", "city_only"]
)
def test_text_masks_keep_nulls_and_return_strings(name: str) -> None:
    out = apply_mask(name, {}, pa.array([None, "Ann Lee, Salem, OR", None]), KEY)
    assert out.type == pa.string()
    assert out.is_null().to_pylist() == [True, False, True]


# --------------------------------------------------------------------------- check_mask


def test_check_mask_accepts_valid_combinations() -> None:
    assert check_mask("redact_part", {"keep": 2}, pa.string(), "ssn") == []
    assert check_mask("redact_part", {}, pa.large_string(), "ssn") == []
    assert check_mask("initials", {}, pa.dictionary(pa.int32(), pa.string()), "n") == []
    assert check_mask("year_only", {}, pa.timestamp("us", tz="UTC"), "dob") == []
    assert check_mask("yyyy_mm", {}, pa.date32(), "dob") == []
    for name in ("redact_full", "hash", "null"):
        assert check_mask(name, {}, pa.int64(), "n") == []


@pytest.mark.parametrize(
    ("name", "params", "dtype", "fragment"),
    [
        ("scramble", {}, pa.string(), "unknown mask 'scramble'"),
        ("hash", {"keep": 4}, pa.string(), "no parameter 'keep'"),
        ("redact_part", {"show": 4}, pa.string(), "no parameter 'show'"),
        ("redact_part", {"keep": -1}, pa.string(), "'keep' must be an integer >= 0"),
        ("redact_part", {"keep": "4"}, pa.string(), "'keep' must be an integer >= 0"),
        ("redact_part", {"keep": 2.0}, pa.string(), "'keep' must be an integer >= 0"),
        ("redact_part", {"keep": True}, pa.string(), "'keep' must be an integer >= 0"),
        ("redact_part", {}, pa.int64(), "needs a text column"),
        ("tokenize", {}, pa.binary(), "needs a text column"),
        ("initials", {}, pa.int64(), "needs a text column"),
        ("city_only", {}, pa.date32(), "needs a text column"),
        ("year_only", {}, pa.string(), "needs a date or timestamp column"),
        ("yyyy_mm", {}, pa.int64(), "needs a date or timestamp column"),
    ],
)
def test_check_mask_reports_problems(name, params, dtype, fragment) -> None:
    problems = check_mask(name, params, dtype, "secret_col")
    assert len(problems) == 1
    assert fragment in problems[0]
    assert "secret_col" in problems[0] and repr(name) in problems[0]


def test_check_mask_collects_all_problems() -> None:
    problems = check_mask("redact_part", {"keep": -2, "x": 1}, pa.int64(), "ssn")
    assert len(problems) == 3


def test_apply_mask_refuses_invalid_mask() -> None:
    with pytest.raises(PolicyError):
        apply_mask("redact_part", {}, pa.array([1, 2]), KEY)
    with pytest.raises(PolicyError):
        apply_mask("nope", {}, pa.array(["a"]), KEY)


# --------------------------------------------------------------------------- mask_table


def _people() -> pa.Table:
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("ssn", pa.string(), metadata={b"pii": b"yes"}),
            pa.field("name", pa.string()),
            pa.field("dob", pa.date32()),
            pa.field("city", pa.string()),
        ],
        metadata={b"source": b"test"},
    )
    return pa.table(
        {
            "id": [1, 2, 3],
            "ssn": ["123-45-6789", None, "987-65-4321"],
            "name": ["John Smith", "mary ann lee", None],
            "dob": [date(1984, 7, 23), None, date(1990, 1, 2)],
            "city": ["12 Oak St, Springfield, IL", "x", None],
        },
        schema=schema,
    )


def test_mask_table_replaces_only_planned_columns() -> None:
    table = _people()
    plan = {
        "ssn": ("redact_part", {"keep": 4}),
        "dob": ("year_only", {}),
        "name": ("hash", {}),
        "absent": ("null", {}),
    }
    out = mask_table(table, plan, KEY, DS)
    assert out.column_names == table.column_names
    assert out.column("id").equals(table.column("id"))
    assert out.column("city").equals(table.column("city"))
    assert out.column("ssn").to_pylist() == ["***-**-6789", None, "***-**-4321"]
    assert out.column("dob").to_pylist() == ["1984", None, "1990"]
    assert out.column("name").to_pylist() == [
        ref_hmac(b"John Smith"),
        ref_hmac(b"mary ann lee"),
        None,
    ]
    assert out.schema.field("ssn").type == pa.string()
    assert out.schema.field("ssn").metadata == {b"pii": b"yes"}
    assert out.schema.metadata == {b"source": b"test"}
    assert table.column("ssn").to_pylist()[0] == "123-45-6789"  # input untouched


def test_mask_table_computes_every_mask_from_raw_values() -> None:
    table = _people()
    plan = {col: ("hash", {}) for col in table.column_names}
    out = mask_table(table, plan, KEY, DS)
    for col in table.column_names:
        assert (
            out.column(col).to_pylist()
            == apply_mask("hash", {}, table.column(col), KEY).to_pylist()
        )
        raw = table.column(col).to_pylist()
        assert all(v is None or len(v) == 32 for v in out.column(col).to_pylist())
        assert [v is None for v in out.column(col).to_pylist()] == [v is None for v in raw]


def test_mask_table_chunked_columns() -> None:
    table = pa.concat_tables([_people(), _people()])
    out = mask_table(table, {"city": ("city_only", {})}, KEY, DS)
    assert out.column("city").to_pylist() == ["Springfield", R, None] * 2


def test_mask_table_rejects_invalid_plan_before_masking() -> None:
    with pytest.raises(PolicyError) as info:
        mask_table(_people(), {"id": ("initials", {}), "ssn": ("nope", {})}, KEY, DS)
    reasons = info.value.reasons
    assert len(reasons) == 2
    assert any("'id'" in r for r in reasons) and any("'ssn'" in r for r in reasons)


def test_mask_table_without_planned_columns_is_identity() -> None:
    table = _people()
    assert mask_table(table, {"absent": ("hash", {})}, KEY, DS).equals(table)


# --------------------------------------------------------------------------- properties

ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Characters whose letter/digit/whitespace class agrees between Python and Arrow/RE2
# and whose upper case is one character.
EXTRA_ALNUM = "éüÖñçÅ日本語٣²"
SEPARATORS = " -.@,/'\t😀\u0301"
TEXT_ALPHABET = ASCII + EXTRA_ALNUM + SEPARATORS

ssn_like = st.from_regex(r"\A[0-9]{3}-[0-9]{2}-[0-9]{4}\Z")
free_text = st.text(TEXT_ALPHABET, min_size=0, max_size=40)


def n_alnum(s: str) -> int:
    return sum(ch.isalnum() for ch in s)


rich_text = st.one_of(ssn_like, free_text).filter(lambda s: n_alnum(s) > 4)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ref_redact_part(s: str, keep: int) -> str:
    total = n_alnum(s)
    if total == 0:
        return R
    to_star = total - keep if total > keep else total
    out, seen = [], 0
    for ch in s:
        if ch.isalnum():
            seen += 1
            out.append("*" if seen <= to_star else ch)
        else:
            out.append(ch)
    return "".join(out)


def ref_initials(s: str) -> str:
    letters = [next((c for c in w if c.isalpha()), "") for w in s.split()]
    out = "".join(f"{c.upper()}." for c in letters if c)
    return out or R


def ref_city(s: str) -> str:
    parts = s.split(",")
    return parts[1].strip() if len(parts) >= 3 and parts[1].strip() else R


@FAST
@given(st.lists(st.one_of(st.none(), ssn_like, free_text), max_size=20), st.integers(0, 6))
def test_redact_part_matches_reference(values: list[str | None], keep: int) -> None:
    out = apply_mask("redact_part", {"keep": keep}, pa.array(values, pa.string()), KEY)
    assert out.to_pylist() == [None if v is None else ref_redact_part(v, keep) for v in values]


@FAST
@given(st.lists(st.one_of(st.none(), free_text), max_size=20))
def test_initials_and_city_only_match_reference(values: list[str | None]) -> None:
    arr = pa.array(values, pa.string())
    assert apply_mask("initials", {}, arr, KEY).to_pylist() == [
        None if v is None else ref_initials(v) for v in values
    ]
    assert apply_mask("city_only", {}, arr, KEY).to_pylist() == [
        None if v is None else ref_city(v) for v in values
    ]


@FAST
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", ""]), free_text), max_size=25))
def test_keyed_masks_are_per_value_functions(values: list[str | None]) -> None:
    """Batch output equals the per-value function: the distinct-value mapping is right."""
    arr = pa.array(values, pa.string())
    hashed = apply_mask("hash", {}, arr, KEY).to_pylist()
    tokens = apply_mask("tokenize", {}, arr, KEY, dataset=DS, column=COL).to_pylist()
    for raw, h, t in zip(values, hashed, tokens, strict=True):
        if raw is None:
            assert h is None and t is None
        else:
            assert h == ref_hmac(raw.encode())
            assert t == tok(raw)
            assert detok(t) == raw


@FAST
@given(rich_text)
def test_masks_never_echo_a_raw_value(raw: str) -> None:
    """With more than 4 letters/digits, no mask output equals or contains the raw value.

    Each holds by construction: redact_part stars at least one letter/digit and keeps the
    length; initials has no whitespace and is 2 characters for a single word; city_only is
    a strict part of a value with two commas; "*****" contains no letter/digit. For the
    keyed masks, containment is only certain when raw has a character outside the
    output alphabet (hex / base64url); equality is checked always.
    """
    arr = pa.array([raw])
    for name, params in [
        ("redact_full", {}),
        ("redact_part", {"keep": 4}),
        ("initials", {}),
        ("city_only", {}),
        ("null", {}),
        ("hash", {}),
        ("tokenize", {}),
    ]:
        (out,) = apply_mask(name, params, arr, KEY).to_pylist()
        if out is None:
            assert name == "null"
            continue
        assert out != raw, name
        if name == "hash":
            if set(raw) - set("0123456789abcdef"):
                assert raw not in out
        elif name == "tokenize":
            if set(raw) - set(ASCII + "-_"):
                assert raw not in out
        else:
            assert raw not in out, name
