"""A bound row filter evaluated on Arrow batches for the key pass, cheapest part first.

The key pass (``search.paging.pk_page``) only needs to know which rows are TRUE, to
count them and keep their keys. A scanner filter would evaluate every leaf on every
row, and Arrow's ``match_substring(ignore_case=True)`` runs RE2 on every value. Here:

* a leaf on a column read as a dictionary is evaluated once per dictionary entry
  (``clinician_id == 'C007'`` on 50 entries, a text term on 96 distinct notes) and
  the answer is gathered by the row's code;
* an AND evaluates its children cheapest first, each on the rows the ones before it
  left TRUE: ``clinician_id == 'C007'`` leaves 2% of the rows to match text on;
* an OR evaluates its children cheapest first, the later ones on the rows still
  undecided once few enough are;
* text is matched as ``policy.casefold`` defines it (ASCII letters caselessly);
* a leaf on a partition column is decided once per file from its partition value;
* a leaf on a column with a row-group vocabulary (``engines.vocabulary``) is decided
  once per group where every value, or none, of the group makes it TRUE (once per
  distinct value of the version: ``vocabulary_verdicts``).

Every other leaf is Arrow's own expression evaluation (``policy.compile.to_arrow``) on
the rows it is asked about, so comparisons keep exactly the scan's semantics. Bound
filters are in negation normal form (no ``Not``), so TRUE-ness is monotone: an AND is
TRUE when every child is, an OR when some child is, and NULL never needs telling from
FALSE. Masks are numpy booleans (TRUE or not).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from govlab.policy.ast import (
    FALSE,
    TRUE,
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
    and_,
    or_,
)
from govlab.policy.casefold import fold, has_ascii_letter
from govlab.policy.compile import to_arrow
from govlab.policy.to_arrow import folded_contains

if TYPE_CHECKING:
    from govlab.engines.vocabulary import Vocabulary

Rows = np.ndarray | None  # positions in the batch (int64), or None for every row
# the kernels ``policy.to_arrow`` builds comparisons from (``field == scalar`` is "equal")
_COMPARE = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
Leaf = Cmp | In | NotIn | IsNull | NotNull | Contains

# Below this fraction of undecided rows, an OR's next child is evaluated on those rows
# only (gathering them costs about as much as matching, so it pays once most are decided).
_COMPACT_BELOW = 0.5
# Relative cost per row of a leaf on a plain (not dictionary) column.
_PLAIN_COST = 1
_PLAIN_TEXT_COST = 4


def supported(expr: Expr) -> bool:
    """Whether ``true_mask`` covers every node of ``expr`` (NNF leaves, AND, OR)."""
    match expr:
        case And(children) | Or(children):
            return all(supported(c) for c in children)
        case Contains() | AlwaysTrue() | AlwaysFalse() | Cmp() | In() | NotIn():
            return True
        case IsNull() | NotNull():
            return True
    return False


def text_columns(expr: Expr) -> set[str]:
    """The columns text leaves match on."""
    match expr:
        case Contains(column, _):
            return {column}
        case And(children) | Or(children):
            return set().union(*(text_columns(c) for c in children))
    return set()


def cost(expr: Expr, dictionary: frozenset[str]) -> int:
    """A rough cost per row: leaves on dictionary columns are almost free, text on
    plain values is the dearest. Children are evaluated in this order."""
    match expr:
        case And(children) | Or(children):
            return sum(cost(c, dictionary) for c in children)
        case AlwaysTrue() | AlwaysFalse():
            return 0
        case Contains(column, _):
            return 0 if column in dictionary else _PLAIN_TEXT_COST
    return 0 if expr.column in dictionary else _PLAIN_COST  # type: ignore[union-attr]


def bind_constants(expr: Expr, constants: Mapping[str, Any], schema: pa.Schema) -> Expr:
    """``expr`` with each leaf on a column of ``constants`` (a file's partition values)
    replaced by its answer for that value: TRUE, or FALSE when not TRUE. Remembered:
    a principal's filter meets the same few partition values search after search."""
    try:
        return _bound(expr, tuple(sorted(constants.items())), schema)
    except TypeError:  # an unhashable value somewhere: bind without remembering
        return _bind(expr, constants, schema)


@lru_cache(maxsize=1024)
def _bound(expr: Expr, constants: tuple[tuple[str, Any], ...], schema: pa.Schema) -> Expr:
    return _bind(expr, dict(constants), schema)


def _bind(expr: Expr, constants: Mapping[str, Any], schema: pa.Schema) -> Expr:
    match expr:
        case And(children):
            return and_(*(_bind(c, constants, schema) for c in children))
        case Or(children):
            return or_(*(_bind(c, constants, schema) for c in children))
        case AlwaysTrue() | AlwaysFalse():
            return expr
    column = expr.column  # type: ignore[union-attr]
    if column not in constants:
        return expr
    value = pa.array([constants[column]], schema.field(column).type)
    one_row = pa.RecordBatch.from_arrays([value], names=[column])
    return TRUE if true_mask(expr, one_row, None, frozenset())[0] else FALSE


def leaves(expr: Expr) -> Iterator[Leaf]:
    """The leaves of ``expr`` (a bound filter: AND, OR, constants and leaves)."""
    match expr:
        case And(children) | Or(children):
            for child in children:
                yield from leaves(child)
        case AlwaysTrue() | AlwaysFalse():
            return
        case _:
            yield expr  # type: ignore[misc]


def bind_leaves(expr: Expr, answers: Mapping[Expr, Expr]) -> Expr:
    """``expr`` with the leaves of ``answers`` replaced by their answer (TRUE or FALSE),
    folded. Bound filters have no ``Not``, so a leaf FALSE on every row of a group (or
    NULL, which is not TRUE either) may be replaced by FALSE there."""
    match expr:
        case And(children):
            return and_(*(bind_leaves(c, answers) for c in children))
        case Or(children):
            return or_(*(bind_leaves(c, answers) for c in children))
    return answers.get(expr, expr)


def vocabulary_verdicts(leaf: Leaf, vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """For each row group of ``vocabulary``: whether ``leaf`` may be TRUE on some row
    (some value the group holds, or its NULL, makes it TRUE), and whether it is TRUE on
    every row. The leaf is evaluated once per distinct value of the whole version."""
    entries = _plain_mask(leaf, vocabulary.values)
    kind = vocabulary.values.type
    on_null = bool(_plain_mask(leaf, pa.nulls(1, kind))[0])
    nulls = vocabulary.nulls
    some = vocabulary.groups_holding(entries) | (nulls & on_null)
    every = ~vocabulary.groups_holding(~entries) & (~nulls | on_null)
    return some, every


def true_mask(
    expr: Expr, batch: pa.RecordBatch, rows: Rows, dictionary: frozenset[str]
) -> np.ndarray:
    """For each row of ``rows`` (every row of ``batch`` when None), whether ``expr``
    is TRUE. ``dictionary`` names the columns ``batch`` holds as dictionaries."""
    match expr:
        case And(children):
            return _and_mask(children, batch, rows, dictionary)
        case Or(children):
            return _or_mask(children, batch, rows, dictionary)
        case AlwaysTrue():
            return np.ones(_size(batch, rows), dtype=bool)
        case AlwaysFalse():
            return np.zeros(_size(batch, rows), dtype=bool)
    return _leaf_mask(expr, batch, rows)  # type: ignore[arg-type]


def _size(batch: pa.RecordBatch, rows: Rows) -> int:
    return batch.num_rows if rows is None else len(rows)


def _and_mask(
    children: tuple[Expr, ...], batch: pa.RecordBatch, rows: Rows, dictionary: frozenset[str]
) -> np.ndarray:
    """Each child on the rows every child before it left TRUE, cheapest first."""
    ordered = sorted(children, key=lambda c: cost(c, dictionary))
    mask = true_mask(ordered[0], batch, rows, dictionary)
    for child in ordered[1:]:
        alive = np.flatnonzero(mask)
        if len(alive) == 0:
            break
        if len(alive) == len(mask):
            mask = true_mask(child, batch, rows, dictionary)
        else:
            mask[alive] = true_mask(
                child, batch, alive if rows is None else rows[alive], dictionary
            )
    return mask


def _or_mask(
    children: tuple[Expr, ...], batch: pa.RecordBatch, rows: Rows, dictionary: frozenset[str]
) -> np.ndarray:
    """Cheapest child first; later children on the rows still undecided, once they
    are few enough that gathering them is cheaper than evaluating every row."""
    ordered = sorted(children, key=lambda c: cost(c, dictionary))
    mask = true_mask(ordered[0], batch, rows, dictionary)
    for child in ordered[1:]:
        undecided = np.flatnonzero(~mask)
        if len(undecided) == 0:
            break
        if len(undecided) < _COMPACT_BELOW * len(mask):
            sub = undecided if rows is None else rows[undecided]
            mask[undecided] = true_mask(child, batch, sub, dictionary)
        else:
            mask |= true_mask(child, batch, rows, dictionary)
    return mask


def _leaf_mask(leaf: Leaf, batch: pa.RecordBatch, rows: Rows) -> np.ndarray:
    values = batch.column(leaf.column)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.DictionaryArray):
        return _dictionary_mask(leaf, values, rows)
    if rows is not None:
        values = values.take(rows)
    return _plain_mask(leaf, values)


def _plain_mask(leaf: Leaf, values: pa.Array) -> np.ndarray:
    """The leaf on plain values: text by ``contains``, a comparison by the kernel its
    Arrow expression calls, the rest by Arrow's expression itself."""
    if isinstance(leaf, Contains):
        return contains_mask(values, leaf.term)
    if isinstance(leaf, Cmp) and not pa.types.is_floating(leaf.dtype):
        return _true(_COMPARE[leaf.op](values, pa.scalar(leaf.value, leaf.dtype)))
    position = pa.array(np.arange(len(values), dtype=np.int64))
    table = pa.Table.from_arrays([values, position], names=[leaf.column, "__govlab_row"])
    kept = table.filter(to_arrow(leaf)).column("__govlab_row").to_numpy()
    mask = np.zeros(len(values), dtype=bool)
    mask[kept] = True
    return mask


def _dictionary_mask(leaf: Leaf, values: pa.DictionaryArray, rows: Rows) -> np.ndarray:
    """The leaf once per dictionary entry (and once for NULL), gathered by code; on the
    rows' own values instead when they are fewer than the entries (a big dictionary,
    such as names, after a selective conjunct). Codes without NULLs are gathered as
    numpy (zero-copy): Arrow's ``take`` costs more in call overhead at these sizes."""
    if values.indices.null_count:
        return _dictionary_mask_nulls(leaf, values, rows)
    codes: np.ndarray = values.indices.to_numpy()
    if rows is not None:
        codes = codes[rows]
    if len(codes) < len(values.dictionary):
        return _plain_mask(leaf, values.dictionary.take(pa.array(codes)))
    entries = _plain_mask(leaf, values.dictionary)
    picked: np.ndarray = entries[codes]
    return picked


def _dictionary_mask_nulls(leaf: Leaf, values: pa.DictionaryArray, rows: Rows) -> np.ndarray:
    """``_dictionary_mask`` for codes with NULLs: NULL is decided once, like an entry."""
    codes = values.indices if rows is None else values.indices.take(rows)
    if len(codes) < len(values.dictionary):
        return _plain_mask(leaf, values.dictionary.take(codes))
    entries = _plain_mask(leaf, values.dictionary)
    on_null = _plain_mask(leaf, pa.nulls(1, values.dictionary.type))[0]
    picked = pc.take(pa.array(entries), codes)
    return _true(pc.fill_null(picked, bool(on_null)))


def _true(mask: pa.Array) -> np.ndarray:
    """TRUE entries of an Arrow boolean array (NULL is not TRUE) as numpy booleans."""
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    flags: np.ndarray = mask.to_numpy(zero_copy_only=False)
    return flags


def contains(values: pa.Array, term: str) -> pa.Array:
    """Whether each value contains ``term`` with ASCII letters compared caselessly
    (``policy.casefold``: the definition every compile target shares), as Arrow's
    ``policy.to_arrow`` computes it: NULL for a NULL value."""
    if isinstance(values, pa.DictionaryArray):
        return pc.take(contains(values.dictionary, term), values.indices)
    found = contains_mask(values, term)
    if not values.null_count:
        return pa.array(found)
    return pa.array(found, mask=~_valid(values))


def contains_mask(values: pa.Array, term: str) -> np.ndarray:
    """Where ``contains(values, term)`` is TRUE, as numpy booleans (NULL is not TRUE).

    Arrow's ``match_substring`` scans every value on its own, byte by byte (about
    70 ns for a 33-byte address). Plain text columns (addresses: unique, so never a
    dictionary) are matched here on the whole folded data buffer at once with numpy
    (``_occurrences``), then each occurrence is given its row by the offsets: about
    10x faster, and the same bytes matched (a UTF-8 substring is a byte substring).
    """
    if isinstance(values, pa.DictionaryArray):
        entries = contains_mask(values.dictionary, term)
        if len(entries) == 0:  # every value NULL
            return np.zeros(len(values), dtype=bool)
        codes = values.indices
        if codes.null_count:
            codes = pc.fill_null(codes, 0)
        picked: np.ndarray = entries[codes.to_numpy()]
        return picked & _valid(values) if values.null_count else picked
    needle = fold(term).encode()
    if len(needle) < 2 or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return _true(folded_contains(values, term))
    if has_ascii_letter(term):
        values = pc.ascii_lower(values)
    found = _rows_containing(values, needle)
    return found & _valid(values) if values.null_count else found


def _valid(values: pa.Array) -> np.ndarray:
    valid: np.ndarray = values.is_valid().to_numpy(zero_copy_only=False)
    return valid


def _rows_containing(values: pa.Array, needle: bytes) -> np.ndarray:
    """For each value of a (large) string array, whether its bytes contain ``needle``
    (at least 2 bytes); NULL slots are not told apart here (the caller masks them)."""
    n = len(values)
    found = np.zeros(n, dtype=bool)
    _, offsets_buffer, data_buffer = values.buffers()
    if n == 0 or data_buffer is None:
        return found
    width = np.int32 if pa.types.is_string(values.type) else np.int64
    offsets = np.frombuffer(offsets_buffer, dtype=width)[values.offset : values.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buffer, dtype=np.uint8)[start:end]
    positions = _occurrences(data, needle) + start
    if len(positions) == 0:
        return found
    rows = np.searchsorted(offsets, positions, side="right") - 1
    within = positions + len(needle) <= offsets[rows + 1]  # not across two values
    found[rows[within]] = True
    return found


def _occurrences(data: np.ndarray, needle: bytes) -> np.ndarray:
    """Every start position of ``needle`` (2 bytes or more) in ``data`` (uint8).

    Candidates are found by the needle's first two bytes compared as one 16-bit word,
    at even and at odd positions (two compares of half the buffer each, vectorised);
    each further byte then only narrows the candidates left.
    """
    size = len(needle)
    last = len(data) - size  # the last position a match can start at
    if last < 0:
        return np.zeros(0, dtype=np.int64)
    word = needle[0] | (needle[1] << 8)
    even_words = len(data) // 2
    odd_words = (len(data) - 1) // 2
    even = np.flatnonzero(data[: 2 * even_words].view("<u2") == word) * 2
    odd = np.flatnonzero(data[1 : 1 + 2 * odd_words].view("<u2") == word) * 2 + 1
    candidates = np.concatenate([even, odd])
    candidates = candidates[candidates <= last]
    for i in range(2, size):
        if len(candidates) == 0:
            break
        candidates = candidates[data[candidates + i] == needle[i]]
    return candidates
