"""The data files of an Iceberg seed, written by govlab and described as PyIceberg
``DataFile`` entries for the seed's one commit.

Why not PyIceberg's writer (``_dataframe_to_data_files``): it needs a whole chunk in
memory (500,000 rows here), splits it with one Acero filter per partition value and
then copies each part again, and takes its encodings from table properties only (one
dictionary size for every column). Here the stream is split as it arrives (a stable
sort of the partition codes and one ``take`` per batch), each partition's row groups
are encoded on a thread of its own while the next batches are split, and columns are
dictionary-encoded as in the other formats (``engines.writing.dictionary_columns``).

The files are what PyIceberg writes: Iceberg field ids in the Parquet schema, the
table's codec and row-group size, column statistics through PyIceberg's own
``data_file_statistics_from_parquet_metadata``, paths from the table's location
provider (``data/region=NE/...``), rows in primary-key order within each file.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    _get_parquet_writer_kwargs,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata

from govlab.engines.writing import (
    DICTIONARY_LIMIT_BYTES,
    ROW_GROUP_ROWS,
    CountingBatches,
    dictionary_columns,
)

FILE_ROW_GROUPS = 16  # row groups per data file, then the next file
_QUEUED_GROUPS = 2  # row groups of one partition waiting to be encoded (bounded memory)
_FIELD_ID = b"PARQUET:field_id"


def write_data_files(
    metadata: TableMetadata,
    io: FileIO,
    stream: CountingBatches,
    write_schema: pa.Schema,
    written: list[str],
) -> list[DataFile]:
    """Write ``stream`` as data files of a table with ``metadata`` (one identity
    partition field). Each file's path is added to ``written`` as soon as it is
    opened, so a caller can delete them all after any failure."""
    spec = metadata.spec()
    if len(spec.fields) != 1 or str(spec.fields[0].transform) != "identity":
        raise ValueError("govlab writes Iceberg tables with one identity partition field")
    context = _Context(metadata, io, write_schema, dictionary_columns(stream.first()), written)
    lanes: dict[Any, _Lane] = {}
    try:
        for batch in stream:
            for value, part in _split(_conform(batch, context.file_schema), context.column):
                lane = lanes.get(value)
                if lane is None:
                    lane = lanes[value] = _Lane(context, value)
                lane.add(part)
        return [data_file for lane in lanes.values() for data_file in lane.finish()]
    finally:
        for lane in lanes.values():
            lane.close()


class _Context:
    """What every partition's writer shares."""

    def __init__(
        self,
        metadata: TableMetadata,
        io: FileIO,
        write_schema: pa.Schema,
        encoded: list[str],
        written: list[str],
    ) -> None:
        self.metadata = metadata
        self.io = io
        self.written = written
        self.schema = metadata.schema()
        self.spec = metadata.spec()
        self.field = self.spec.fields[0]
        self.column = self.schema.find_column_name(self.field.source_id) or ""
        self.file_schema = _with_field_ids(write_schema, self.schema)
        properties = metadata.properties
        self.group_rows = int(properties.get("write.parquet.row-group-limit", ROW_GROUP_ROWS))
        options = _get_parquet_writer_kwargs(properties)
        options["use_dictionary"] = encoded
        options["dictionary_pagesize_limit"] = DICTIONARY_LIMIT_BYTES
        self.options = options
        self.stats_plan = compute_statistics_plan(self.schema, properties)
        self.id_mapping = parquet_path_to_id_mapping(self.schema)
        self.locations = load_location_provider(metadata.location, properties)
        self.write_uuid = uuid.uuid4()
        self.counter = itertools.count()


def _with_field_ids(write_schema: pa.Schema, schema: Any) -> pa.Schema:
    """The Arrow schema files are written with: every field optional and carrying its
    Iceberg field id, which the Parquet writer stores in the file's schema."""
    return pa.schema(
        [
            pa.field(
                f.name,
                f.type,
                nullable=True,
                metadata={_FIELD_ID: str(schema.find_field(f.name).field_id).encode()},
            )
            for f in write_schema
        ]
    )


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [
        column if column.type == field.type else column.cast(field.type)
        for column, field in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _split(batch: pa.RecordBatch, column: str) -> list[tuple[Any, pa.RecordBatch]]:
    """The batch's rows grouped by partition value, each group in the batch's order
    (a stable sort of the value codes, one take, then zero-copy slices)."""
    encoded = pc.dictionary_encode(batch.column(column))
    values = [*encoded.dictionary.to_pylist(), None]
    codes = pc.fill_null(encoded.indices, len(values) - 1).to_numpy()
    if len(codes) == 0:
        return []
    if (codes == codes[0]).all():
        return [(values[codes[0]], batch)]
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(values))
    grouped = batch.take(pa.array(order))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return [
        (values[code], grouped.slice(int(start), int(count)))
        for code, (start, count) in enumerate(zip(starts, counts, strict=True))
        if count
    ]


class _Lane:
    """The files of one partition value: rows buffered into full row groups, each
    encoded in order on the lane's own thread, a new file every ``FILE_ROW_GROUPS``."""

    def __init__(self, context: _Context, value: Any) -> None:
        self._context = context
        self._key = PartitionKey(
            field_values=[PartitionFieldValue(field=context.field, value=value)],
            partition_spec=context.spec,
            schema=context.schema,
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="govlab-iceberg-write")
        self._futures: deque[Future[None]] = deque()
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._stream: Any = None
        self._path = ""
        self._output: Any = None
        self._file_rows = 0
        self._files: list[DataFile] = []

    def add(self, part: pa.RecordBatch) -> None:
        self._pending.append(part)
        self._pending_rows += part.num_rows
        group_rows = self._context.group_rows
        while self._pending_rows >= group_rows:
            table = pa.Table.from_batches(self._pending)
            self._submit(table.slice(0, group_rows))
            rest = table.slice(group_rows)
            self._pending = rest.to_batches()
            self._pending_rows = rest.num_rows

    def finish(self) -> list[DataFile]:
        """Write what is left, close the last file; the lane's DataFiles."""
        if self._pending_rows:
            self._submit(pa.Table.from_batches(self._pending))
            self._pending, self._pending_rows = [], 0
        self._futures.append(self._executor.submit(self._close_file))
        while self._futures:
            self._futures.popleft().result()
        return self._files

    def close(self) -> None:
        """Stop the lane's thread (after ``finish``, or to give up after a failure)."""
        for future in self._futures:
            future.cancel()
        self._executor.shutdown(wait=True)
        if self._writer is not None:  # gave up mid-file: the caller deletes it
            try:
                self._writer.close()
            finally:
                self._stream.close()
                self._writer = None

    def _submit(self, table: pa.Table) -> None:
        self._futures.append(self._executor.submit(self._write, table))
        while len(self._futures) > _QUEUED_GROUPS:
            self._futures.popleft().result()

    def _write(self, table: pa.Table) -> None:
        context = self._context
        if self._writer is None:
            name = f"00000-{next(context.counter)}-{context.write_uuid}.parquet"
            self._path = context.locations.new_data_location(name, self._key)
            context.written.append(self._path)
            self._output = context.io.new_output(self._path)
            self._stream = self._output.create(overwrite=True)
            self._writer = pq.ParquetWriter(
                self._stream,
                schema=context.file_schema,
                store_decimal_as_integer=True,
                **context.options,
            )
        self._writer.write_table(table, row_group_size=context.group_rows)
        self._file_rows += table.num_rows
        if self._file_rows >= FILE_ROW_GROUPS * context.group_rows:
            self._close_file()

    def _close_file(self) -> None:
        if self._writer is None:
            return
        context = self._context
        writer, self._writer = self._writer, None
        try:
            writer.close()
        finally:
            self._stream.close()
        statistics = data_file_statistics_from_parquet_metadata(
            parquet_metadata=writer.writer.metadata,
            stats_columns=context.stats_plan,
            parquet_column_mapping=context.id_mapping,
        )
        self._files.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=self._path,
                file_format=FileFormat.PARQUET,
                partition=self._key.partition,
                file_size_in_bytes=len(self._output),
                sort_order_id=None,
                spec_id=context.metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **statistics.to_serialized_dict(),
            )
        )
        self._file_rows = 0
