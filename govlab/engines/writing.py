"""The write path every engine shares: the seed lock, the counting batch stream, the
physical layout (row groups, pages, dictionaries, compression) all three formats write.

Seeding imports this module and neither the policy layer nor ``pyarrow.dataset``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import RowsWrittenFn
from govlab.errors import BadRequest

# min/max statistics prune well on pk and date ranges.
ROW_GROUP_ROWS = 65_536
# Small data and dictionary pages: a page's rows are fetched by decoding only the first
# pages of a row group (not 1 MiB pages and dictionaries built over unique values), and
# columns of (nearly) unique values such as keys or SSNs fall back to plain encoding
# early instead of being dictionary-encoded and then re-encoded. Writes get faster too.
DATA_PAGE_BYTES = 64 * 1024
DICTIONARY_PAGE_BYTES = 64 * 1024
# Which columns are dictionary-encoded is decided per seed from its first batch
# (``dictionary_columns``): few distinct values (names, conditions, clinician ids) are,
# whole in every row group (up to this dictionary size); (nearly) unique ones (keys,
# SSNs, addresses) are written plain from the start, never dictionary-encoded and then
# re-encoded. A dictionary-encoded column is read as a dictionary by the key pass, and
# a filter or text term on it is evaluated once per entry.
DICTIONARY_LIMIT_BYTES = 1024 * 1024
# Data pages are not compressed (delta-rs' default, now every format's): decoding a row
# group takes a third of the time it takes with snappy (3.4 vs 9.2 ms for 65k rows), a
# seed encodes twice as fast, and the files are about 1.8x bigger. Columns that repeat
# are dictionary-encoded anyway, so what stays big is the unique text.
COMPRESSION = "none"
_DICTIONARY_MAX_SHARE = 0.25  # distinct values per row of the first batch, at most
_DICTIONARY_MAX_BYTES = 256 * 1024  # estimated size of one row group's dictionary

_DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}$")


def check_dataset_name(name: str) -> str:
    """Dataset names become directory and table names: refuse anything path-like."""
    if not _DATASET_NAME.match(name):
        raise BadRequest(f"invalid dataset name {name!r}")
    return name


@contextmanager
def seed_lock(settings: Settings, fmt: str, dataset: str) -> Iterator[None]:
    """Serialise seeds of one table across threads and processes.

    Readers never take this lock: every format publishes a new version atomically.
    """
    settings.lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.lock_dir / f"{fmt}-{check_dataset_name(dataset)}.lock")):
        yield


class CountingBatches:
    """Wrap the row stream of a seed: conform each batch to the spec schema, count rows,
    report progress, and remember an exception raised by the source.

    Writers that consume the stream inside native code (delta-rs) see a source
    exception wrapped in their own error type; ``error`` lets the engine re-raise the
    original one.
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        progress: RowsWrittenFn | None = None,
    ) -> None:
        self.schema = schema
        self._batches = iter(batches)
        self._head: list[pa.RecordBatch] = []
        self._progress = progress
        self.rows = 0
        self.error: BaseException | None = None

    def first(self) -> pa.RecordBatch | None:
        """The first batch, read ahead (iteration still starts with it): writers choose
        their column encodings from it."""
        if not self._head:
            try:
                self._head.append(next(self._batches))
            except StopIteration:
                return None
            except BaseException as exc:
                self.error = exc
                raise
        return self._head[0]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in itertools.chain(self._head, self._batches):
                if batch.schema != self.schema:
                    batch = conform_batch(batch, self.schema)
                if batch.num_rows == 0:
                    continue
                yield batch
                self.rows += batch.num_rows
                if self._progress is not None:
                    self._progress(self.rows)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, iter(self))

    def chunks(self, rows: int) -> Iterator[pa.Table]:
        """The stream regrouped into tables of about ``rows`` rows (bounded memory)."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in self:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= rows:
                yield pa.Table.from_batches(pending, schema=self.schema)
                pending, pending_rows = [], 0
        if pending:
            yield pa.Table.from_batches(pending, schema=self.schema)


def conform_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the schema's column order and types (extra columns are an error)."""
    if set(batch.schema.names) != set(schema.names):
        raise ValueError(
            f"batch columns {sorted(batch.schema.names)} do not match the dataset schema "
            f"{sorted(schema.names)}"
        )
    arrays = [batch.column(f.name).cast(f.type) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def dictionary_columns(batch: pa.RecordBatch | None) -> list[str]:
    """The columns to dictionary-encode, judged on a seed's first batch (a generator
    chunk is as big as a row group): at most ``_DICTIONARY_MAX_SHARE`` distinct values
    per row, holding at most ``_DICTIONARY_MAX_BYTES``. A misjudged column costs speed,
    never answers: a dictionary that outgrows its page falls back to plain values, and
    such a column is read plain (``Snapshot.low_cardinality``)."""
    if batch is None or batch.num_rows == 0:
        return []
    chosen = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        distinct = pc.unique(column)
        if len(distinct) > _DICTIONARY_MAX_SHARE * batch.num_rows:
            continue
        if distinct.nbytes <= _DICTIONARY_MAX_BYTES:
            chosen.append(name)
    return chosen
