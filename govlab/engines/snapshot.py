"""One table version as an Arrow dataset, with what the page reads need from its
Parquet footers: the key range of every row group, and which columns are stored wholly
dictionary-encoded (read as dictionaries).

Read path only: a seed imports neither this nor ``pyarrow.dataset``.
"""

from __future__ import annotations

import posixpath
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from govlab.engines.vocabulary import Vocabulary

_PRUNED_FILTERS = 256  # filters whose pruned row groups a snapshot remembers
# Vocabularies are built unasked only for versions of at least this many rows: below,
# a key pass reads every group in a few milliseconds anyway.
_VOCABULARY_MIN_ROWS = 262_144


class Snapshot:
    """One immutable table version as a pyarrow ``FileSystemDataset``.

    Engines build it once per version (``SnapshotCache``); it is immutable, so threads
    share it. Reading it with an Arrow filter returns exactly the rows the engine's
    ``scan`` returns for that filter. Per-row-group primary-key statistics are read
    from the Parquet footers once and kept here, for the pk-ordered page below.
    """

    def __init__(self, dataset: ds.FileSystemDataset) -> None:
        self.dataset = dataset
        self._pk_bounds: dict[tuple[str, int], tuple[Any, Any] | None] = {}
        self._low_cardinality: dict[str, bool] = {}
        self._pruned: OrderedDict[tuple[str, str], list[RowGroup] | None] = OrderedDict()
        self._file_columns: dict[str, tuple[str, ...]] = {}
        self._vocabularies: dict[str, Future[Vocabulary | None]] = {}
        self._rows: int | None = None
        self._lock = threading.Lock()

    def row_groups(self, pk: str, expr: pc.Expression) -> list[RowGroup] | None:
        """The row groups that may hold rows matching ``expr`` (pruned by partition and
        statistics), each with its pk min/max; None when some group has no usable pk
        statistics (or has NULL keys), so the caller takes the general path.

        Remembered per filter (its text) for this immutable version: pruning costs
        0.2-0.8 ms a search, and a principal repeats the same filter page after page.
        """
        key = (pk, str(expr))
        with self._lock:
            if key in self._pruned:
                self._pruned.move_to_end(key)
                found = self._pruned[key]
                return None if found is None else list(found)
        found = self._prune(pk, expr)
        with self._lock:
            self._pruned[key] = found
            while len(self._pruned) > _PRUNED_FILTERS:
                self._pruned.popitem(last=False)
        return None if found is None else list(found)

    def _prune(self, pk: str, expr: pc.Expression) -> list[RowGroup] | None:
        groups = []
        for fragment in self.dataset.get_fragments(filter=expr):
            for part in fragment.split_by_row_group(expr, schema=self.dataset.schema):
                info = part.row_groups[0]  # builds its statistics: read it once
                key = (part.path, info.id)
                if key not in self._pk_bounds:
                    self._pk_bounds[key] = _pk_bounds(part, info, pk)
                bounds = self._pk_bounds[key]
                if bounds is None:
                    return None
                groups.append(RowGroup(part, bounds[0], bounds[1], info.id, info.num_rows))
        return groups

    def subset(self, fragments: list[ds.Fragment]) -> ds.FileSystemDataset:
        return ds.FileSystemDataset(
            fragments, self.dataset.schema, self.dataset.format, self.dataset.filesystem
        )

    def reader(self, groups: list[RowGroup], dictionary: frozenset[str]) -> ds.FileSystemDataset:
        """The groups as a dataset that reads ``dictionary`` columns as dictionaries."""
        fragments = [g.fragment for g in groups]
        if not dictionary:
            return self.subset(fragments)
        file_format = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=set(dictionary)),
            default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=True),
        )
        schema = self.dataset.schema
        for name in dictionary:
            i = schema.get_field_index(name)
            field = schema.field(i)
            schema = schema.set(i, field.with_type(pa.dictionary(pa.int32(), field.type)))
        remade = [
            file_format.make_fragment(
                g.fragment.path,
                filesystem=g.fragment.filesystem,
                partition_expression=g.fragment.partition_expression,
                row_groups=[g.id],
            )
            for g in groups
        ]
        return ds.FileSystemDataset(remade, schema, file_format, self.dataset.filesystem)

    def read_group(
        self,
        group: RowGroup,
        columns: list[str],
        dictionary: frozenset[str],
        threads: bool = False,
    ) -> pa.Table | None:
        """``columns`` of one row group, typed as ``reader([group], dictionary)`` reads
        them, by the file's own Parquet reader on the calling thread; None when some
        column is not stored in the file once under its name (a partition column, a
        column added later): the dataset scanner fills those in.

        Why not the scanner: it hands its batches from its own threads to the caller,
        which matched them on a pool of its own; on 2 cores the hand-offs cost as much
        as the matching. A key pass instead gives each pool thread whole row groups to
        read and match (decoding and the compute kernels release the GIL). ``threads``
        decodes the columns side by side (for a big group read on the caller's thread).
        """
        part = group.fragment
        stored = self.file_columns(part)
        if any(c not in stored for c in columns):
            return None
        with open_input(part) as source:
            reader = pq.ParquetFile(
                source,
                metadata=part.metadata,
                read_dictionary=[c for c in columns if c in dictionary],
                pre_buffer=False,  # measured: 1.5 instead of 1.8 ms for a 65k-row group
            )
            table = reader.read_row_group(group.id, columns=columns, use_threads=threads)
        schema = self.dataset.schema
        for i, name in enumerate(columns):
            want = schema.field(name).type
            if name in dictionary:
                want = pa.dictionary(pa.int32(), want)
            if table.schema.field(i).type != want:
                table = table.set_column(i, name, table.column(i).cast(want))
        return table

    def file_columns(self, fragment: ds.ParquetFileFragment) -> tuple[str, ...]:
        """The columns ``fragment``'s file stores once under their name, in file order
        (converting the footer's schema costs 10-50 us: remembered per file)."""
        stored = self._file_columns.get(fragment.path)
        if stored is None:
            names = fragment.metadata.schema.to_arrow_schema().names
            stored = tuple(n for n in names if names.count(n) == 1)
            self._file_columns[fragment.path] = stored
        return stored

    def low_cardinality(self, column: str) -> bool:
        """Whether every row group stores ``column`` wholly dictionary-encoded with a
        dictionary of bounded size (read as a dictionary, a leaf or a text term is
        evaluated once per entry, and fetching rows decodes codes, not values)."""
        if column not in self._low_cardinality:
            self._low_cardinality[column] = _small_dictionaries(self.dataset, column)
        return self._low_cardinality[column]

    def vocabulary(self, column: str, wait: bool = False) -> Vocabulary | None:
        """``column``'s vocabulary (``engines.vocabulary``) once it is built, else None.

        The first ask starts building it on the builder thread, and searches go on
        without it meanwhile (reading every group's dictionary costs about one key
        pass): no search waits for an index. ``wait`` builds it whatever the table's
        size and waits for it. None too when it cannot be built (a file lacks the
        column, too many values, an unreadable file)."""
        with self._lock:
            future = self._vocabularies.get(column)
            if future is None:
                if not wait and self._row_count() < _VOCABULARY_MIN_ROWS:
                    return None
                future = _build_later(self._build_vocabulary, column)
                self._vocabularies[column] = future
        if not wait and not future.done():
            return None
        if future.exception() is not None:  # an index is optional: the search goes on
            return None
        return future.result()

    def build_vocabularies(self) -> list[str]:
        """Build (and wait for) the vocabularies searches would build: of every string
        column the key pass reads as a dictionary, in a version big enough for them to
        be built unasked. The columns that have one."""
        if self._row_count() < _VOCABULARY_MIN_ROWS:
            return []
        coded = [
            field.name
            for field in self.dataset.schema
            if pa.types.is_string(field.type) and self.low_cardinality(field.name)
        ]
        return [name for name in coded if self.vocabulary(name, wait=True) is not None]

    def _build_vocabulary(self, column: str) -> Vocabulary | None:
        from govlab.engines.vocabulary import build_vocabulary

        try:
            return build_vocabulary(self.dataset.get_fragments(), column)
        except (OSError, ValueError, pa.ArrowException):  # e.g. files of a version since removed
            return None

    def _row_count(self) -> int:
        if self._rows is None:
            self._rows = sum(f.metadata.num_rows for f in self.dataset.get_fragments())
        return self._rows


_builds: queue.SimpleQueue[tuple[Future[Any], Any, str]] = queue.SimpleQueue()
_builder: threading.Thread | None = None
_builder_guard = threading.Lock()


def _build_later(build: Any, column: str) -> Future[Vocabulary | None]:
    """``build(column)`` on the builder thread, one build at a time (a second one side
    by side would take the search's cores). A daemon: a process that exits does not
    wait for an index it no longer needs."""
    global _builder
    future: Future[Vocabulary | None] = Future()
    _builds.put((future, build, column))
    with _builder_guard:
        if _builder is None:
            _builder = threading.Thread(target=_run_builds, name="govlab-vocabulary", daemon=True)
            _builder.start()
    return future


def _run_builds() -> None:
    """The builder thread, at normal priority: at a lower one, searches wait for the GIL
    while the starved builder holds it (in ``make bench``, 8 clients got 15-25% fewer
    cache hits served while a build ran at nice 19)."""
    while True:
        future, build, column = _builds.get()
        try:
            future.set_result(build(column))
        except BaseException as error:  # handed to whoever waits
            future.set_exception(error)


def open_input(fragment: ds.FileFragment) -> pa.NativeFile:
    """``fragment``'s file for reading: memory-mapped when it is local (no copy into a
    read buffer: about 0.1 ms less per row group when a page fetches a few hundred
    rows). Data files are immutable once committed, so the mapping cannot change."""
    filesystem, path = fragment.filesystem, fragment.path
    if isinstance(filesystem, pafs.SubTreeFileSystem):
        filesystem, path = filesystem.base_fs, posixpath.join(filesystem.base_path, path)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return pa.memory_map(path)
    return fragment.filesystem.open_input_file(fragment.path)


@dataclass(frozen=True)
class RowGroup:
    fragment: ds.ParquetFileFragment  # exactly one row group
    lo: Any  # pk min
    hi: Any  # pk max
    id: int  # the row group's index in its file
    rows: int


def _pk_bounds(
    part: ds.ParquetFileFragment, info: ds.RowGroupInfo, pk: str
) -> tuple[Any, Any] | None:
    """(min, max) of the key in a one-row-group fragment; None unless both are known and
    the group has no NULL keys (NULLs sort last, outside any min/max bound)."""
    bounds = (info.statistics or {}).get(pk)
    if not bounds or bounds.get("min") is None or bounds.get("max") is None:
        return None
    metadata = part.metadata
    names = metadata.schema.names
    if names.count(pk) != 1:
        return None
    stats = metadata.row_group(info.id).column(names.index(pk)).statistics
    if stats is None or not stats.has_null_count or stats.null_count != 0:
        return None
    return bounds["min"], bounds["max"]


def _small_dictionaries(dataset: ds.FileSystemDataset, column: str) -> bool:
    """Whether every row group has a dictionary page of at most
    ``_DICTIONARY_READ_MAX_BYTES`` and data pages of codes only: at most 4 bytes a value
    (a chunk that fell back to plain values would be re-encoded, slowly, on read), and
    the dictionaries are small beside the rows (``_DICTIONARY_BYTES_PER_ROW``)."""
    dictionary_total = rows_total = groups = 0
    try:
        for fragment in dataset.get_fragments():
            metadata = fragment.metadata
            names = metadata.schema.names
            if names.count(column) != 1:
                return False
            index = names.index(column)
            for i in range(metadata.num_row_groups):
                chunk = metadata.row_group(i).column(index)
                start = chunk.dictionary_page_offset
                if not chunk.has_dictionary_page or start is None:
                    return False
                dictionary_bytes = chunk.data_page_offset - start
                if dictionary_bytes > _DICTIONARY_READ_MAX_BYTES:
                    return False
                codes_bytes = chunk.total_compressed_size - dictionary_bytes
                if codes_bytes > 4 * chunk.num_values + 4096:
                    return False
                dictionary_total += dictionary_bytes
                rows_total += chunk.num_values
                groups += 1
    except (OSError, ValueError, pa.ArrowException):
        return False
    per_row = _DICTIONARY_BYTES_PER_ROW * rows_total
    return dictionary_total <= max(per_row, _DICTIONARY_SMALL_BYTES * groups)


# A column is read as a dictionary when every row group stores it wholly
# dictionary-encoded with a dictionary page at most this big (``_small_dictionaries``)
_DICTIONARY_READ_MAX_BYTES = 512 * 1024
# ... and its dictionaries hold at most this many bytes per row they serve. Reading a
# dictionary builds it entry by entry (hashing each): with nearly one entry per row (50k
# names in 5 groups of 10k rows: 11.5 bytes a row) the plain values read and match
# faster (0.46 vs 0.62 ms a group); at 65k rows a group (3 bytes a row) the dictionary
# does (1.1 vs 1.75 ms). Dictionaries of at most ``_DICTIONARY_SMALL_BYTES`` a group
# are cheap to build whatever the rows.
_DICTIONARY_BYTES_PER_ROW = 6
_DICTIONARY_SMALL_BYTES = 64 * 1024
