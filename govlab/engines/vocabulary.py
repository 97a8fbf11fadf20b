"""Which values each row group of a table version can hold, per dictionary-encoded column.

A search engine keeps a term dictionary so that a query for a word no document holds
costs a lookup, not a scan. A Parquet row group of a dictionary-encoded column carries
its own small term dictionary (its dictionary page); gathered over every row group of a
version, deduplicated, with a bit per row group for each distinct value, it answers
"could any row of this group satisfy this leaf?" for every group at once, from the
few thousand distinct values instead of the millions of rows. The key pass
(``search.paging``) then skips the row groups where a filter is FALSE, and drops from
the rest the columns whose leaves are decided (a term no `name` holds leaves `name`
unread).

Immutable once built, and built once per version, off the search's own thread
(``Snapshot.vocabulary``): reading every group's dictionary costs about as much as one
full key pass over the column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from govlab.engines.snapshot import open_input

# A vocabulary is given up when it would hold more distinct values than this, or more
# bytes of bits than ``_POSTINGS_MAX_BYTES`` (values x groups / 8; built through a
# bool matrix 8x that size): past those, deciding a leaf on the vocabulary stops being
# cheap beside reading the column.
_VALUES_MAX = 1_000_000
_POSTINGS_MAX_BYTES = 8 * 1024 * 1024
# Row groups whose dictionaries are deduplicated together (bounds the transient memory).
_GROUPS_PER_STEP = 16


@dataclass(frozen=True)
class Vocabulary:
    """Every distinct non-NULL value of a column in one table version, and which row
    groups hold each: bit ``g`` of ``postings[v]`` is set when group ``g``'s dictionary
    holds ``values[v]``. A group's dictionary may hold values none of its rows uses
    (never the reverse), so "no value holds the term" is exact and "some value does"
    only means "read it"."""

    values: pa.Array
    postings: np.ndarray  # uint8, (len(values), ceil(groups / 8)), bits per group
    groups: dict[tuple[str, int], int]  # (file path, row-group id) -> group index
    nulls: np.ndarray  # bool per group: whether the group holds NULLs

    def index(self, path: str, row_group: int) -> int | None:
        return self.groups.get((path, row_group))

    def groups_holding(self, marked: np.ndarray) -> np.ndarray:
        """For each group, whether it holds some value marked in ``marked`` (one bool
        per value): an OR of the marked values' bit rows, so a rare or absent term
        costs next to nothing."""
        count = len(self.groups)
        chosen = np.flatnonzero(marked)
        if len(chosen) == 0:
            return np.zeros(count, dtype=bool)
        bits = np.bitwise_or.reduce(self.postings[chosen], axis=0)
        held: np.ndarray = np.unpackbits(bits, count=count).astype(bool)
        return held


def build_vocabulary(fragments: Iterable[ds.ParquetFileFragment], column: str) -> Vocabulary | None:
    """The vocabulary of ``column`` over every row group of ``fragments``; None when
    some group does not store it once under its name, or it grows past the bounds.

    Each group's column is read whole as a dictionary: the union of its chunks'
    dictionaries then covers every value it stores, whatever its pages' encodings
    (a chunk that fell back to plain pages is dictionary-encoded by the reader)."""
    groups: dict[tuple[str, int], int] = {}
    dictionaries: list[pa.Array] = []
    nulls: list[bool] = []
    for fragment in fragments:
        metadata = fragment.metadata
        if metadata.schema.names.count(column) != 1:
            return None
        with open_input(fragment) as source:
            reader = pq.ParquetFile(
                source, metadata=metadata, read_dictionary=[column], pre_buffer=False
            )
            for row_group in range(metadata.num_row_groups):
                # on the builder's thread only: one core, whatever searches run meanwhile
                read = reader.read_row_group(row_group, columns=[column], use_threads=False)
                values = read.column(0)
                groups[(fragment.path, row_group)] = len(dictionaries)
                dictionaries.append(_union_of_dictionaries(values))
                nulls.append(values.null_count > 0)
    return _deduplicated(groups, dictionaries, np.array(nulls, dtype=bool))


def _union_of_dictionaries(values: pa.ChunkedArray) -> pa.Array:
    """Every dictionary entry of ``values``' chunks (their dictionaries may differ)."""
    parts = [
        chunk.dictionary if isinstance(chunk, pa.DictionaryArray) else chunk.drop_null()
        for chunk in values.chunks
    ]
    if not parts:
        kind = values.type
        return pa.array([], kind.value_type if pa.types.is_dictionary(kind) else kind)
    return parts[0] if len(parts) == 1 else pc.unique(pa.concat_arrays(parts))


def _deduplicated(
    groups: dict[tuple[str, int], int], dictionaries: list[pa.Array], nulls: np.ndarray
) -> Vocabulary | None:
    """One array of distinct values and each group's bits, a step of groups at a time:
    ``dictionary_encode`` numbers values in order of first appearance, so the values
    already numbered keep their numbers when the next step's groups are appended."""
    if not dictionaries:
        return None
    kind = dictionaries[0].type
    values = pa.array([], kind)
    group_of: list[np.ndarray] = []
    value_of: list[np.ndarray] = []
    for start in range(0, len(dictionaries), _GROUPS_PER_STEP):
        step = dictionaries[start : start + _GROUPS_PER_STEP]
        if any(d.type != kind for d in step):
            return None
        encoded = pc.dictionary_encode(pa.concat_arrays([values, *step]))
        codes = encoded.indices.to_numpy(zero_copy_only=False)[len(values) :]
        sizes = [len(d) for d in step]
        group_of.append(np.repeat(np.arange(start, start + len(step)), sizes))
        value_of.append(codes)
        values = encoded.dictionary
        if len(values) > _VALUES_MAX:
            return None
    width = (len(dictionaries) + 7) // 8
    if len(values) * width > _POSTINGS_MAX_BYTES:
        return None
    held = np.zeros((len(values), width * 8), dtype=bool)
    held[np.concatenate(value_of), np.concatenate(group_of)] = True
    return Vocabulary(values, np.packbits(held, axis=1), groups, nulls)
