"""The Arrow kernels of the unkeyed masks, and the column-type predicates masks declare.

Vectorised with ``pyarrow.compute`` (RE2 regexes, temporal kernels) and NumPy over the
UTF-8 buffers; never a Python loop over values. A value a kernel cannot interpret
becomes ``*****`` (:data:`REDACTED`), never the raw value; nulls stay null.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: What a withheld or unparseable value turns into. Fixed length, so it reveals nothing
#: about the length of the original.
REDACTED = "*****"

#: The default number of trailing letters/digits ``redact_part`` leaves visible.
DEFAULT_KEEP = 4
# RE2 (Arrow's regex engine) runs in UTF-8 mode on string arrays, so these Unicode classes
# treat "é" or "٣" as letters/digits exactly like ASCII ones.
_ALNUM = r"[\p{L}\p{N}]"


# --------------------------------------------------------------------------- types


def unwrap(dtype: pa.DataType) -> pa.DataType:
    """Dictionary encoding is a storage detail: judge a column by its value type."""
    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def is_text(dtype: pa.DataType) -> bool:
    t = unwrap(dtype)
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def is_date_like(dtype: pa.DataType) -> bool:
    t = unwrap(dtype)
    return bool(pa.types.is_date(t) or pa.types.is_timestamp(t))


def is_binary(dtype: pa.DataType) -> bool:
    t = unwrap(dtype)
    return bool(
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    )


def any_type(dtype: pa.DataType) -> bool:
    return True


# --------------------------------------------------------------------------- helpers


def combine(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous, dictionary-decoded array: the kernels below want plain values."""
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def as_string(values: pa.Array) -> pa.Array:
    """Text columns as plain ``pa.string()``, the type every text mask returns."""
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


_NULL_STR = pa.scalar(None, pa.string())


def _const(values: pa.Array, text: str) -> pa.Array:
    """``text`` where ``values`` is non-null, null elsewhere."""
    return pc.if_else(pc.is_valid(values), pa.scalar(text, pa.string()), _NULL_STR)


def keep_nulls(values: pa.Array, result: pa.Array) -> pa.Array:
    """Force null wherever the input was null, whatever the kernels produced there."""
    if values.null_count == 0:
        return result
    return pc.if_else(pc.is_valid(values), result, _NULL_STR)


# --------------------------------------------------------------------------- masks


def redact_full(values: pa.Array) -> pa.Array:
    if is_text(values.type):
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


def redact_part(values: pa.Array, keep: int) -> pa.Array:
    """Star all but the last ``keep`` letters/digits of each value.

    Regex kernels pay per match (one per character here) and RE2 has no lookbehind, so
    this works on the UTF-8 buffer with numpy instead: one cumulative count of
    letters/digits gives, per row, how many of them to star from the front (all of them
    when the row has ``keep`` or fewer, so short values are never shown whole).
    """
    text = as_string(values)
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
    return keep_nulls(text, result)


def initials(values: pa.Array) -> pa.Array:
    """Upper-cased first letter of each whitespace-separated word, each followed by ".".

    Splitting into words and working on the flat word array avoids a capturing regex over
    whole values (several times slower). Leading non-letters of a word are skipped
    ("3rd" -> "R."); words without any letter contribute nothing.
    """
    text = as_string(values)
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


def date_part(values: pa.Array, month: bool) -> pa.Array:
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


def city_only(values: pa.Array) -> pa.Array:
    text = as_string(values)
    # Matches only when there are at least three comma-separated parts.
    parts = pc.extract_regex(text, r"^[^,]*,(?P<city>[^,]*),")
    city = pc.utf8_trim_whitespace(pc.struct_field(parts, "city"))
    # and_kleene: unmatched rows (null city) are simply "not usable", never null.
    usable = pc.and_kleene(pc.is_valid(parts), pc.not_equal(city, pa.scalar("", pa.string())))
    result = pc.if_else(usable, city, pa.scalar(REDACTED, pa.string()))
    return keep_nulls(text, result)
