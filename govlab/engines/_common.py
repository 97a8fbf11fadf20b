"""Pieces every engine shares: the seed lock, the counting batch stream, and the
normalisation that makes all three formats return byte-for-byte the same Arrow schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
from filelock import FileLock

from govlab.config import Settings
from govlab.engines.base import ProgressFn
from govlab.errors import BadRequest
from govlab.generators.base import DatasetSpec
from govlab.policy.ast import Expr, columns_of

# Row groups of this many rows: large enough for efficient scans, small enough that
# min/max statistics prune well on pk and date ranges.
ROW_GROUP_ROWS = 65_536

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
        progress: ProgressFn | None = None,
    ) -> None:
        self.schema = schema
        self._batches = batches
        self._progress = progress
        self.rows = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
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


def output_schema(spec: DatasetSpec, columns: list[str]) -> pa.Schema:
    """The schema a scan returns: the requested columns, in order, typed as in the spec."""
    unknown = [c for c in columns if c not in spec.schema.names]
    if unknown:
        raise BadRequest(f"unknown column(s) for {spec.name}: {', '.join(unknown)}")
    if len(set(columns)) != len(columns):
        raise BadRequest("duplicate column in projection")
    return pa.schema([spec.schema.field(c) for c in columns])


def needed_columns(spec: DatasetSpec, columns: list[str], row_filter: Expr) -> list[str]:
    """Columns a scan must read to return ``columns`` and evaluate ``row_filter``, in
    schema order (never empty, so row counts survive a zero-column projection)."""
    wanted = set(columns) | columns_of(row_filter)
    needed = [name for name in spec.schema.names if name in wanted]
    return needed or [spec.primary_key]


def normalise(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` projected and cast to ``schema`` (names, order, types, nullability).

    Formats hand back slightly different physical types (large_string, other timestamp
    units, partition columns as dictionaries); callers always get the spec's.
    """
    if table.schema == schema:
        return table
    arrays = []
    for f in schema:
        column = table.column(f.name)
        if column.type != f.type:
            column = column.cast(f.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema) if arrays else table.select([])
