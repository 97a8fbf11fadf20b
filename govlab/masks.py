"""Column masks: the last step before a result page leaves govlab.

Row filtering decides *which* rows a principal sees; masks decide *how much* of each
protected column they see. A few rules shape everything below:

* Every mask is computed from the **raw** column, once. Masks are never chained, so a
  policy can't accidentally reveal more by composing two "safe" masks.
* Work is vectorised with ``pyarrow.compute`` (RE2 regexes, temporal kernels). The only
  per-value Python code is the cryptography (HMAC, AES-SIV), which has no Arrow kernel;
  it runs over the *distinct* values of a page only and is mapped back with the
  dictionary-encoding indices.
* A value a mask cannot interpret becomes ``*****``, never the raw value: failing closed
  is the only safe default for a security control.
* Nulls stay null. A null carries no information beyond "absent", and keeping it lets
  clients tell "no value" apart from "value withheld by a mask" (``*****``).
* Problems are reported by naming columns, masks and parameters, never data values,
  because these messages may reach clients (see :mod:`govlab.errors`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from govlab.errors import BadRequest, PolicyError
from govlab.keys import EXAMPLE_MASK_KEYS, MaskKeys

__all__ = [
    "EXAMPLE_MASK_KEYS",
    "MASKS",
    "MASK_NAMES",
    "REDACTED",
    "TOKEN_PREFIX",
    "MaskDef",
    "apply_mask",
    "check_mask",
    "detokenize",
    "mask_table",
    "tokenize_value",
]

MASK_NAMES: tuple[str, ...] = (
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

#: What a withheld or unparseable value turns into. Fixed length, so it reveals nothing
#: about the length of the original.
REDACTED = "*****"

#: Prefix of every token, so a token is recognisable in logs and cannot be mistaken for data.
TOKEN_PREFIX = "tok_"

_DEFAULT_KEEP = 4
#: 128 bits: no birthday collision in any table govlab serves, and no brute force.
_HASH_HEX_CHARS = 32
#: A token decrypts only under the (dataset, column) it was minted for.
_TOKEN_CONTEXT = b"govlab-token/v2"
# RE2 (Arrow's regex engine) runs in UTF-8 mode on string arrays, so these Unicode classes
# treat "é" or "٣" as letters/digits exactly like ASCII ones.
_ALNUM = r"[\p{L}\p{N}]"
_TOKEN_BODY = re.compile(r"[A-Za-z0-9_-]+")


# --------------------------------------------------------------------------- types


def _unwrap(dtype: pa.DataType) -> pa.DataType:
    """Dictionary encoding is a storage detail: judge a column by its value type."""
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def _is_text(dtype: pa.DataType) -> bool:
    t = _unwrap(dtype)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_date_like(dtype: pa.DataType) -> bool:
    t = _unwrap(dtype)
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


def _is_binary(dtype: pa.DataType) -> bool:
    t = _unwrap(dtype)
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def _any_type(dtype: pa.DataType) -> bool:
    return True


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class MaskDef:
    """One mask as the policy layer and the UI legend see it.

    ``accepts`` lets policy validation reject a mask on a column type it cannot handle
    *before* any data is read, instead of failing (or leaking) at query time.
    ``example_before``/``example_after`` feed the MaskLegend; ``example_after`` is the real
    output of the mask on ``example_before`` (keyed masks use :data:`EXAMPLE_MASK_KEYS`
    and the column ``example`` of the dataset ``example``; date
    masks read ``example_before`` as an ISO date; the text ``"null"`` stands for a null).
    """

    name: str
    description: str
    accepts: Callable[[pa.DataType], bool]
    param_names: frozenset[str]
    example_before: str
    example_after: str


MASKS: dict[str, MaskDef] = {
    m.name: m
    for m in (
        MaskDef(
            "redact_full",
            "Replaced by a fixed '*****' (text) or null (other types); the length is not revealed.",
            _any_type,
            frozenset(),
            "Jane Doe",
            REDACTED,
        ),
        MaskDef(
            "redact_part",
            "Only the last `keep` letters/digits (default 4) stay visible; separators are kept. "
            "Values with `keep` or fewer letters/digits are fully starred.",
            _is_text,
            frozenset({"keep"}),
            "123-45-6789",
            "***-**-6789",
        ),
        MaskDef(
            "hash",
            "Keyed HMAC-SHA256 (first 32 hex chars, 128 bits): equal values stay joinable, but the "
            "value cannot be recovered or guessed without the deployment key.",
            _any_type,
            frozenset(),
            "jane.doe@example.com",
            "bc464c51b06f68d18fe023ca15bc5647",
        ),
        MaskDef(
            "tokenize",
            "Deterministic AES-SIV token: equal values give equal tokens, and only the "
            "holder of the deployment key can turn a token back into the value, and only "
            "in the dataset and column it was minted for.",
            _is_text,
            frozenset(),
            "jane.doe@example.com",
            "tok_TuNxaCA2ZT2UgkEH0nA5wYtWuRv4sEejNlf_jvNYZSoFkJ16",
        ),
        MaskDef(
            "initials",
            "Upper-case first letter of each word, each followed by '.'.",
            _is_text,
            frozenset(),
            "mary ann lee",
            "M.A.L.",
        ),
        MaskDef(
            "year_only",
            "Dates and timestamps reduced to their year.",
            _is_date_like,
            frozenset(),
            "1984-07-23",
            "1984",
        ),
        MaskDef(
            "yyyy_mm",
            "Dates and timestamps reduced to year and month.",
            _is_date_like,
            frozenset(),
            "1984-07-23",
            "1984-07",
        ),
        MaskDef(
            "city_only",
            "Only the city of a 'street, city, region' address is shown.",
            _is_text,
            frozenset(),
            "12 Oak St, Springfield, IL 62704",
            "Springfield",
        ),
        MaskDef(
            "null",
            "Value withheld entirely (always null).",
            _any_type,
            frozenset(),
            "Jane Doe",
            "null",
        ),
    )
}


def _type_label(accepts: Callable[[pa.DataType], bool]) -> str:
    if accepts is _is_text:
        return "a text column"
    if accepts is _is_date_like:
        return "a date or timestamp column"
    return "a supported column"


def check_mask(name: str, params: Mapping[str, Any], dtype: pa.DataType, column: str) -> list[str]:
    """Return every problem with applying mask ``name`` to ``column``; empty means valid.

    All problems are collected (not just the first) so a policy author fixes them in one
    round. Messages name the column, mask and parameter only, never data values.
    """
    mask = MASKS.get(name)
    if mask is None:
        known = ", ".join(MASK_NAMES)
        return [f"column {column!r}: unknown mask {name!r} (known masks: {known})"]
    problems: list[str] = []
    for param in sorted(set(params) - mask.param_names, key=str):
        allowed = ", ".join(sorted(mask.param_names)) or "none"
        problems.append(
            f"column {column!r}: mask {name!r} has no parameter {param!r} (allowed: {allowed})"
        )
    if "keep" in mask.param_names and "keep" in params:
        keep = params["keep"]
        # bool is an int subclass; `keep: true` in YAML is a typo, not a count.
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            problems.append(
                f"column {column!r}: mask {name!r} parameter 'keep' must be an integer >= 0"
            )
    if not mask.accepts(dtype):
        problems.append(
            f"column {column!r}: mask {name!r} needs {_type_label(mask.accepts)}, "
            f"but the column has type {dtype}"
        )
    return problems


# --------------------------------------------------------------------------- helpers


def _combine(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous, dictionary-decoded array: the kernels below want plain values."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def _as_string(values: pa.Array) -> pa.Array:
    """Text columns as plain ``pa.string()``, the type every text mask returns."""
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


_NULL_STR = pa.scalar(None, pa.string())


def _const(values: pa.Array, text: str) -> pa.Array:
    """``text`` where ``values`` is non-null, null elsewhere."""
    return pc.if_else(pc.is_valid(values), pa.scalar(text, pa.string()), _NULL_STR)


def _keep_nulls(values: pa.Array, result: pa.Array) -> pa.Array:
    """Force null wherever the input was null, whatever the kernels produced there."""
    if values.null_count == 0:
        return result
    return pc.if_else(pc.is_valid(values), result, _NULL_STR)


def _check_key(key: bytes) -> None:
    # An empty key would make HMAC/AES-SIV outputs computable by anyone: refuse loudly.
    if not isinstance(key, bytes) or not key:
        raise ValueError("masking key must be non-empty bytes")


# --------------------------------------------------------------------------- masks


def _redact_full(values: pa.Array) -> pa.Array:
    if _is_text(values.type):
        return _const(values, REDACTED)
    return pa.nulls(len(values), pa.string())


# ASCII letters/digits; non-ASCII characters are classified by RE2 (see _alnum_flags).
_ASCII_ALNUM = np.zeros(256, dtype=bool)
for _lo, _hi in ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)):
    _ASCII_ALNUM[_lo : _hi + 1] = True
_STAR = np.uint8(ord("*"))


def _utf8_layout(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Zero-copy views of a string array: row offsets (starting at 0) and UTF-8 bytes."""
    n = len(text)
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=text.offset * 4)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.empty(0, dtype=np.uint8)
    )
    return offsets - offsets[0], data[offsets[0] : offsets[-1]]


def _alnum_flags(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per byte: does a letter/digit character start here? Also multi-byte leads and widths.

    ASCII goes through a lookup table. The few *distinct* non-ASCII code points are
    decoded with numpy and classified by RE2's ``[\\p{L}\\p{N}]``, so "letter/digit" means
    the same thing here as in the regex-based masks.
    """
    alnum = _ASCII_ALNUM[data]
    leads = np.flatnonzero(data >= 0xC0)
    if not leads.size:
        return alnum, leads, leads
    padded = np.concatenate([data, np.zeros(3, dtype=np.uint8)]).astype(np.int32)
    b0, b1, b2, b3 = (padded[leads + k] for k in range(4))
    b1, b2, b3 = b1 & 0x3F, b2 & 0x3F, b3 & 0x3F
    width = np.where(b0 >= 0xF0, 4, np.where(b0 >= 0xE0, 3, 2))
    code = np.where(
        width == 4,
        ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3,
        np.where(width == 3, ((b0 & 0x0F) << 12) | (b1 << 6) | b2, ((b0 & 0x1F) << 6) | b1),
    )
    distinct, inverse = np.unique(code, return_inverse=True)
    chars = pa.array(
        [chr(c) if c < 0xD800 or 0xDFFF < c <= 0x10FFFF else "" for c in distinct.tolist()],
        pa.string(),
    )
    is_alnum = pc.match_substring_regex(chars, rf"^{_ALNUM}$").to_numpy(zero_copy_only=False)
    alnum[leads] = is_alnum[inverse.ravel()]
    return alnum, leads, width


def _redact_part(values: pa.Array, keep: int) -> pa.Array:
    """Star all but the last ``keep`` letters/digits of each value.

    Regex kernels pay per match (one per character here) and RE2 has no lookbehind, so
    this works on the UTF-8 buffer with numpy instead: one cumulative count of
    letters/digits gives, per row, how many of them to star from the front (all of them
    when the row has ``keep`` or fewer, so short values are never shown whole).
    """
    text = _as_string(values)
    n = len(text)
    filled = pc.fill_null(text, "") if text.null_count else text  # null slots: no bytes
    offsets, data = _utf8_layout(filled)
    alnum, leads, width = _alnum_flags(data)

    seen = np.empty(data.size + 1, dtype=np.int32)  # letters/digits before each byte
    seen[0] = 0
    np.cumsum(alnum, dtype=np.int32, out=seen[1:])
    before = seen[offsets[:-1]]
    total = seen[offsets[1:]] - before
    n_star = np.where(total > keep, total - keep, total)
    star = alnum & (seen[1:] <= np.repeat(before + n_star, np.diff(offsets)))
    out = np.where(star, _STAR, data)

    new_offsets = offsets
    starred_leads = star[leads]
    if starred_leads.any():
        # A starred multi-byte character becomes one "*": drop its continuation bytes.
        lead_pos, lead_width = leads[starred_leads], width[starred_leads]
        drop = np.zeros(data.size, dtype=bool)
        for k in (1, 2, 3):
            drop[lead_pos[lead_width > k] + k] = True
        rows = np.searchsorted(offsets, np.flatnonzero(drop), side="right") - 1
        new_offsets = offsets.copy()
        new_offsets[1:] -= np.cumsum(np.bincount(rows, minlength=n), dtype=np.int32)
        out = out[~drop]

    starred = pa.StringArray.from_buffers(
        n,
        pa.py_buffer(np.ascontiguousarray(new_offsets, dtype=np.int32)),
        pa.py_buffer(np.ascontiguousarray(out)),
    )
    # A value without any letter/digit has nothing to star: show the marker, not the value.
    result = pc.if_else(pa.array(total > 0), starred, pa.scalar(REDACTED, pa.string()))
    return _keep_nulls(text, result)


@lru_cache(maxsize=8)
def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """Pre-keyed inner/outer SHA-256 states (RFC 2104).

    Copying pre-keyed states is about twice as fast as ``hmac.new`` per value, and the
    output is identical to ``hmac.new(key, msg, sha256)``.
    """
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _hmac_hex(key: bytes) -> Callable[[bytes], str]:
    inner, outer = _hmac_pads(key)
    inner_copy, outer_copy = inner.copy, outer.copy

    def one(message: bytes) -> str:
        h = inner_copy()
        h.update(message)
        o = outer_copy()
        o.update(h.digest())
        return o.hexdigest()[:_HASH_HEX_CHARS]

    return one


def _hash_input(values: pa.Array) -> pa.Array:
    """The bytes that get hashed: UTF-8 of the value's string form (raw bytes for binary)."""
    if _is_text(values.type):
        return _as_string(values).cast(pa.binary())
    if _is_binary(values.type):
        return values.cast(pa.binary())
    try:
        return values.cast(pa.string()).cast(pa.binary())
    except pa.ArrowNotImplementedError:
        # Nested/interval types have no Arrow string cast; a canonical JSON form keeps the
        # hash deterministic. Rare, so a Python pass is acceptable here.
        forms = [
            None if v is None else json.dumps(v, sort_keys=True, default=str).encode()
            for v in values.to_pylist()
        ]
        return pa.array(forms, pa.binary())


def _per_distinct(values: pa.Array, fn: Callable[[bytes], str]) -> pa.Array:
    """Apply a per-value Python ``fn`` to each distinct value once and broadcast back.

    Dictionary-encoding gives the distinct values and the row -> distinct index map in
    one hash pass; null rows get null indices, so ``take`` keeps them null.
    """
    encoded = pc.dictionary_encode(values)
    outputs = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(outputs, encoded.indices)


def _hash(values: pa.Array, keys: MaskKeys) -> pa.Array:
    _check_key(keys.hash)
    return _per_distinct(_hash_input(values), _hmac_hex(keys.hash))


@lru_cache(maxsize=8)
def _siv(key: bytes) -> AESSIV:
    """AES-SIV-256 for the 64-byte tokenize key (derived apart from every other key).

    SIV is deterministic by design (equal values -> equal tokens, so tokenised columns
    still join and group) and misuse-resistant, unlike a fixed-nonce GCM.
    """
    return AESSIV(key)


def _token_context(dataset: str, column: str) -> list[bytes]:
    """Associated data: a token minted for (dataset, column) fails to decrypt elsewhere."""
    return [_TOKEN_CONTEXT, dataset.encode("utf-8"), column.encode("utf-8")]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _token_of_bytes(keys: MaskKeys, dataset: str, column: str) -> Callable[[bytes], str]:
    encrypt = _siv(keys.tokenize).encrypt
    context = _token_context(dataset, column)

    def one(plain: bytes) -> str:
        return TOKEN_PREFIX + _b64(encrypt(plain, context))

    return one


def _tokenize(values: pa.Array, keys: MaskKeys, dataset: str, column: str) -> pa.Array:
    _check_key(keys.tokenize)
    tokens = _token_of_bytes(keys, dataset, column)
    return _per_distinct(_as_string(values).cast(pa.binary()), tokens)


def tokenize_value(value: str, keys: MaskKeys, dataset: str, column: str) -> str:
    """Token of one string, identical to what the ``tokenize`` mask emits for it there."""
    _check_key(keys.tokenize)
    return _token_of_bytes(keys, dataset, column)(value.encode("utf-8"))


def detokenize(token: str, keys: MaskKeys, dataset: str, column: str) -> str:
    """Recover the value behind a token minted with ``keys`` for (dataset, column).

    AES-SIV authenticates the ciphertext and the (dataset, column) context, so any token
    not produced with these keys for this column (other key, other dataset or column,
    tampered, truncated, garbage) fails the same way with one generic message: the
    caller learns nothing about why.
    """
    _check_key(keys.tokenize)
    invalid = BadRequest("not a valid token")
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise invalid
    body = token[len(TOKEN_PREFIX) :]
    if not _TOKEN_BODY.fullmatch(body):
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    if _b64(raw) != body:  # non-canonical encoding: not something we produced
        raise invalid
    try:
        return _siv(keys.tokenize).decrypt(raw, _token_context(dataset, column)).decode("utf-8")
    except (InvalidTag, ValueError):
        raise invalid from None


def _initials(values: pa.Array) -> pa.Array:
    """Upper-cased first letter of each whitespace-separated word, each followed by ".".

    Splitting into words and working on the flat word array avoids a capturing regex over
    whole values (several times slower). Leading non-letters of a word are skipped
    ("3rd" -> "R."); words without any letter contribute nothing.
    """
    text = _as_string(values)
    words = pc.utf8_split_whitespace(text)
    first = _first_letters(words.values)
    empty = pa.scalar("", pa.string())
    dotted = pc.if_else(pc.equal(first, empty), empty, pc.binary_join_element_wise(first, ".", ""))
    per_row = pa.ListArray.from_arrays(words.offsets, dotted, mask=words.is_null())
    joined = pc.utf8_upper(pc.binary_join(per_row, ""))
    # No letter at all (also the empty string): nothing to abbreviate, withhold it.
    return pc.if_else(pc.equal(joined, empty), pa.scalar(REDACTED, pa.string()), joined)


def _first_letters(words: pa.Array) -> pa.Array:
    """The first letter (``\\p{L}``) of each word, "" for a word without one.

    Most words start with an ASCII letter, which is their first letter; only the others
    go through the regex that skips leading non-letters (compiling that Unicode-class
    regex costs about a millisecond, most of the mask's time on a page of 20 names).
    ASCII only: Arrow's and RE2's Unicode letter tables differ on rare code points.
    """
    first = pc.utf8_slice_codeunits(words, 0, 1)
    starts_with_letter = pc.fill_null(pc.ascii_is_alpha(first), True)
    if pc.all(starts_with_letter).as_py():
        return first
    others = pc.invert(starts_with_letter)
    stripped = pc.replace_substring_regex(pc.filter(words, others), r"^[^\p{L}]+", "")
    letters = pc.utf8_slice_codeunits(stripped, 0, 1)
    return pc.replace_with_mask(first, others, letters)


def _date_part(values: pa.Array, month: bool) -> pa.Array:
    """ "1984" or "1984-07", formatted as ``strftime`` would (zoned timestamps in their zone).

    Component kernels + padding are ~5x faster than ``pc.strftime``; years outside
    0..9999 (where padding would be wrong) take the strftime path.
    """
    year = pc.year(values)
    low, high = pc.min_max(year).values()
    if low.is_valid and (low.as_py() < 0 or high.as_py() > 9999):
        return pc.strftime(values, format="%Y-%m" if month else "%Y")
    text = pc.utf8_lpad(pc.cast(year, pa.string()), 4, "0")
    if not month:
        return text
    mm = pc.utf8_lpad(pc.cast(pc.month(values), pa.string()), 2, "0")
    return pc.binary_join_element_wise(text, mm, "-")


def _city_only(values: pa.Array) -> pa.Array:
    text = _as_string(values)
    # Matches only when there are at least three comma-separated parts.
    parts = pc.extract_regex(text, r"^[^,]*,(?P<city>[^,]*),")
    city = pc.utf8_trim_whitespace(pc.struct_field(parts, "city"))
    # and_kleene: unmatched rows (null city) are simply "not usable", never null.
    usable = pc.and_kleene(pc.is_valid(parts), pc.not_equal(city, pa.scalar("", pa.string())))
    result = pc.if_else(usable, city, pa.scalar(REDACTED, pa.string()))
    return _keep_nulls(text, result)


@dataclass(frozen=True)
class MaskContext:
    """What the keyed masks need besides the values: the keys and where the values live."""

    keys: MaskKeys
    dataset: str
    column: str


def _masked(
    name: str, params: Mapping[str, Any], values: pa.Array, context: MaskContext
) -> pa.Array:
    """Dispatch an already-validated mask."""
    if name == "redact_full":
        return _redact_full(values)
    if name == "redact_part":
        return _redact_part(values, int(params.get("keep", _DEFAULT_KEEP)))
    if name == "hash":
        return _hash(values, context.keys)
    if name == "tokenize":
        return _tokenize(values, context.keys, context.dataset, context.column)
    if name == "initials":
        return _initials(values)
    if name == "year_only":
        return _date_part(values, month=False)
    if name == "yyyy_mm":
        return _date_part(values, month=True)
    if name == "city_only":
        return _city_only(values)
    if name == "null":
        return pa.nulls(len(values), pa.string())
    raise AssertionError(f"unhandled mask {name!r}")  # pragma: no cover - registry guards


def apply_mask(
    name: str,
    params: Mapping[str, Any],
    values: pa.Array | pa.ChunkedArray,
    keys: MaskKeys,
    *,
    dataset: str = "<dataset>",
    column: str = "<values>",
) -> pa.Array:
    """Mask one column of raw values; returns a ``pa.string()`` array of the same length.

    The mask is validated first (:class:`~govlab.errors.PolicyError` if invalid) so a
    policy that slipped past validation still fails closed rather than returning data.
    """
    problems = check_mask(name, params, values.type, column)
    if problems:
        raise PolicyError(problems[0], problems)
    return _masked(name, params, _combine(values), MaskContext(keys, dataset, column))


def mask_table(
    table: pa.Table,
    plan: Mapping[str, tuple[str, Mapping[str, Any]]],
    keys: MaskKeys,
    dataset: str,
) -> pa.Table:
    """Replace each planned column by its masked version, keeping column order.

    Every mask reads the column from the original ``table``, so masks never see each
    other's output. Planned columns absent from the page are ignored (a projection may
    have dropped them). The whole plan is validated before anything is computed.
    """
    present = [col for col in plan if col in table.column_names]
    problems: list[str] = []
    for col in present:
        name, params = plan[col]
        for index in table.schema.get_all_field_indices(col):
            problems += check_mask(name, params, table.schema.field(index).type, col)
    if problems:
        raise PolicyError(f"invalid masking plan: {problems[0]}", problems)
    if not present:
        return table

    fields: list[pa.Field] = []
    columns: list[pa.Array | pa.ChunkedArray] = []
    for field, raw in zip(table.schema, table.columns, strict=True):
        if field.name in plan:
            name, params = plan[field.name]
            context = MaskContext(keys, dataset, field.name)
            columns.append(_masked(name, params, _combine(raw), context))
            fields.append(pa.field(field.name, pa.string(), True, field.metadata))
        else:
            columns.append(raw)
            fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, table.schema.metadata))
