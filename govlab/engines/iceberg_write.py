"""The data files of an Iceberg seed, written by govlab and described as plain
``WrittenFile`` records for the seed's one commit (``engines.iceberg_commit`` writes
them into a manifest, PyIceberg's path turns them into its ``DataFile``).

Why not PyIceberg's writer (``_dataframe_to_data_files``): it needs a whole chunk in
memory (500,000 rows here), splits it with one Acero filter per partition value and
then copies each part again, and takes its encodings from table properties only (one
dictionary size for every column). Here the stream is split as it arrives (a stable
sort of the partition codes and one ``take`` per batch), each partition's row groups
are encoded on a thread of its own while the next batches are split, and columns are
dictionary-encoded as in the other formats (``engines.writing.dictionary_columns``).

The files are what PyIceberg writes: Iceberg field ids in the Parquet schema, the
table's codec and row-group size, the column statistics PyIceberg's
``data_file_statistics_from_parquet_metadata`` computes (sizes, value and null counts,
bounds serialised as Iceberg single values, text truncated per the metrics mode,
``truncate(16)`` by default), paths as its default location provider makes them
(``data/region=NE/...``), rows in primary-key order within each file. This module
imports no PyIceberg: a seed of a new table needs none of it (about 0.4 s of imports).
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import struct
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from govlab.engines.writing import (
    DICTIONARY_LIMIT_BYTES,
    ROW_GROUP_ROWS,
    CountingBatches,
    dictionary_columns,
)

FILE_ROW_GROUPS = 16  # row groups per data file, then the next file
_QUEUED_GROUPS = 2  # row groups of one partition waiting to be encoded (bounded memory)
_FIELD_ID = b"PARQUET:field_id"
_METRICS_DEFAULT = "write.metadata.metrics.default"
_METRICS_COLUMN = "write.metadata.metrics.column."
_TRUNCATE = re.compile(r"^truncate\((\d+)\)$")


@dataclass(frozen=True)
class FileLayout:
    """What the data files of one table need to know about it."""

    location: str  # the table's location (a file:// URI or a local path)
    properties: Mapping[str, str]
    field_ids: Mapping[str, int]  # column name -> Iceberg field id
    partition_column: str  # the identity partition's source column
    partition_name: str  # the partition field's name (the path segment)


@dataclass
class WrittenFile:
    """One data file as a manifest entry describes it (Iceberg's ``data_file``)."""

    path: str
    partition: Any
    record_count: int
    file_size_in_bytes: int
    column_sizes: dict[int, int] = field(default_factory=dict)
    value_counts: dict[int, int] = field(default_factory=dict)
    null_value_counts: dict[int, int] = field(default_factory=dict)
    lower_bounds: dict[int, bytes] = field(default_factory=dict)
    upper_bounds: dict[int, bytes] = field(default_factory=dict)
    split_offsets: list[int] = field(default_factory=list)


def write_data_files(
    layout: FileLayout,
    stream: CountingBatches,
    write_schema: pa.Schema,
    written: list[str],
) -> list[WrittenFile]:
    """Write ``stream`` as data files of a table with ``layout`` (one identity
    partition field). Each file's path is added to ``written`` as soon as it is
    opened, so a caller can delete them all after any failure."""
    context = _Context(layout, write_schema, dictionary_columns(stream.first()), written)
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


def local_path(location: str) -> str:
    """The local path of a file:// URI (a plain path as it is)."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else location
    raise ValueError(f"govlab writes Iceberg tables on the local file system, not {location!r}")


def partition_path(name: str, value: Any) -> str:
    """``name=value`` as PyIceberg's location provider spells an identity partition."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime.date):
        text = value.isoformat()
    else:
        text = str(value)
    return f"{quote_plus(name, safe='')}={quote_plus(text, safe='')}"


def parquet_writer_options(properties: Mapping[str, str]) -> dict[str, Any]:
    """Writer options from the table's properties, as PyIceberg derives them."""
    codec = properties.get("write.parquet.compression-codec", "zstd")
    level = properties.get("write.parquet.compression-level")

    def number(key: str, default: int) -> int:
        return int(properties.get(key, default))

    return {
        "compression": "none" if codec == "uncompressed" else codec,
        "compression_level": int(level) if level is not None else None,
        "data_page_size": number("write.parquet.page-size-bytes", 1024 * 1024),
        "dictionary_pagesize_limit": number("write.parquet.dict-size-bytes", 2 * 1024 * 1024),
        "write_batch_size": number("write.parquet.page-row-limit", 20_000),
    }


def _metrics_mode(properties: Mapping[str, str], column: str) -> tuple[str, int | None]:
    """("none" | "counts" | "truncate" | "full", truncation length) for one column."""
    mode = properties.get(
        _METRICS_COLUMN + column, properties.get(_METRICS_DEFAULT, "truncate(16)")
    )
    mode = mode.strip().lower()
    match = _TRUNCATE.match(mode)
    if match:
        return "truncate", int(match.group(1))
    if mode in ("none", "counts", "full"):
        return mode, None
    raise ValueError(f"unknown metrics mode {mode!r} for column {column!r}")


class _Context:
    """What every partition's writer shares."""

    def __init__(
        self,
        layout: FileLayout,
        write_schema: pa.Schema,
        encoded: list[str],
        written: list[str],
    ) -> None:
        self.layout = layout
        self.written = written
        self.column = layout.partition_column
        self.file_schema = _with_field_ids(write_schema, layout.field_ids)
        properties = layout.properties
        self.group_rows = int(properties.get("write.parquet.row-group-limit", ROW_GROUP_ROWS))
        options = parquet_writer_options(properties)
        options["use_dictionary"] = encoded
        options["dictionary_pagesize_limit"] = DICTIONARY_LIMIT_BYTES
        self.options = options
        self.stats = {
            f.name: (layout.field_ids[f.name], f.type, *_metrics_mode(properties, f.name))
            for f in write_schema
        }
        self.data_path = f"{layout.location.rstrip('/')}/data"
        self.write_uuid = uuid.uuid4()
        self.counter = itertools.count()


def _with_field_ids(write_schema: pa.Schema, field_ids: Mapping[str, int]) -> pa.Schema:
    """The Arrow schema files are written with: every field optional and carrying its
    Iceberg field id, which the Parquet writer stores in the file's schema."""
    return pa.schema(
        [
            pa.field(
                f.name,
                f.type,
                nullable=True,
                metadata={_FIELD_ID: str(field_ids[f.name]).encode()},
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
        self._value = value
        self._directory = (
            f"{context.data_path}/{partition_path(context.layout.partition_name, value)}"
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="govlab-iceberg-write")
        self._futures: deque[Future[None]] = deque()
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._path = ""
        self._file_rows = 0
        self._files: list[WrittenFile] = []

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

    def finish(self) -> list[WrittenFile]:
        """Write what is left, close the last file; the lane's files."""
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
            writer, self._writer = self._writer, None
            writer.close()

    def _submit(self, table: pa.Table) -> None:
        self._futures.append(self._executor.submit(self._write, table))
        while len(self._futures) > _QUEUED_GROUPS:
            self._futures.popleft().result()

    def _write(self, table: pa.Table) -> None:
        context = self._context
        if self._writer is None:
            name = f"00000-{next(context.counter)}-{context.write_uuid}.parquet"
            self._path = f"{self._directory}/{name}"
            context.written.append(self._path)
            local = local_path(self._path)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            self._writer = pq.ParquetWriter(
                local,
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
        writer, self._writer = self._writer, None
        writer.close()
        written = WrittenFile(
            path=self._path,
            partition=self._value,
            record_count=0,
            file_size_in_bytes=os.path.getsize(local_path(self._path)),
        )
        _statistics(writer.writer.metadata, self._context.stats, written)
        self._files.append(written)
        self._file_rows = 0


def _statistics(
    metadata: pq.FileMetaData,
    stats: Mapping[str, tuple[int, pa.DataType, str, int | None]],
    out: WrittenFile,
) -> None:
    """The file's Iceberg column statistics, as PyIceberg's
    ``data_file_statistics_from_parquet_metadata`` computes them."""
    out.record_count = metadata.num_rows
    lows: dict[int, Any] = {}
    highs: dict[int, Any] = {}
    invalid: set[int] = set()
    for r in range(metadata.num_row_groups):
        group = metadata.row_group(r)
        first = group.column(0)
        if first.has_dictionary_page and first.dictionary_page_offset < first.data_page_offset:
            out.split_offsets.append(first.dictionary_page_offset)
        else:
            out.split_offsets.append(first.data_page_offset)
        for position in range(metadata.num_columns):
            column = group.column(position)
            field_id, dtype, mode, _ = stats[column.path_in_schema]
            out.column_sizes[field_id] = (
                out.column_sizes.get(field_id, 0) + column.total_compressed_size
            )
            if mode == "none":
                continue
            out.value_counts[field_id] = out.value_counts.get(field_id, 0) + column.num_values
            if not column.is_stats_set:
                invalid.add(field_id)
                continue
            statistics = column.statistics
            if statistics.has_null_count:
                out.null_value_counts[field_id] = (
                    out.null_value_counts.get(field_id, 0) + statistics.null_count
                )
            if mode == "counts" or not statistics.has_min_max:
                continue
            low, high = _raw_bounds(statistics, dtype)
            if low is None or high is None:
                continue
            if field_id not in lows or low < lows[field_id]:
                lows[field_id] = low
            if field_id not in highs or high > highs[field_id]:
                highs[field_id] = high
    out.split_offsets.sort()
    for field_id in invalid:
        lows.pop(field_id, None)
        highs.pop(field_id, None)
        out.null_value_counts.pop(field_id, None)
    for field_id, dtype, mode, length in stats.values():
        if field_id in lows:
            limit = length if mode == "truncate" else None
            low = _serialise(lows[field_id], dtype, limit, upper=False)
            high = _serialise(highs[field_id], dtype, limit, upper=True)
            if low is not None:
                out.lower_bounds[field_id] = low
            if high is not None:
                out.upper_bounds[field_id] = high


def _raw_bounds(statistics: Any, dtype: pa.DataType) -> tuple[Any, Any]:
    """(min, max) of one column chunk in the type the bound is serialised from (None
    when govlab keeps no bound for that type)."""
    if pa.types.is_decimal(dtype):
        return None, None  # bounds are optional; govlab's datasets have no decimals
    if pa.types.is_date(dtype) or pa.types.is_timestamp(dtype) or pa.types.is_time(dtype):
        return statistics.min_raw, statistics.max_raw
    return statistics.min, statistics.max


def _serialise(value: Any, dtype: pa.DataType, limit: int | None, upper: bool) -> bytes | None:
    """Iceberg's single-value serialisation of a bound (text and binary truncated to
    ``limit``; an upper bound then rounded up, None if it cannot be)."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        text: str | None = str(value)
        if limit is not None and text is not None and len(text) > limit:
            text = _round_up_text(text[:limit]) if upper else text[:limit]
        return None if text is None else text.encode()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        data: bytes | None = bytes(value)
        if limit is not None and data is not None and len(data) > limit:
            data = _round_up_bytes(data[:limit]) if upper else data[:limit]
        return data
    if pa.types.is_date(dtype):
        return struct.pack("<i", int(value))
    if pa.types.is_timestamp(dtype) or pa.types.is_time(dtype):
        return struct.pack("<q", int(value))
    if pa.types.is_boolean(dtype):
        return struct.pack("<?", bool(value))
    if pa.types.is_int32(dtype):
        return struct.pack("<i", int(value))
    if pa.types.is_int64(dtype):
        return struct.pack("<q", int(value))
    if pa.types.is_float32(dtype):
        return struct.pack("<f", float(value))
    if pa.types.is_float64(dtype):
        return struct.pack("<d", float(value))
    return None


def _round_up_text(prefix: str) -> str | None:
    chars = list(prefix)
    for i in range(len(chars) - 1, -1, -1):
        code = ord(chars[i]) + 1
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            chars[i] = chr(code)
            return "".join(chars[: i + 1])
    return None


def _round_up_bytes(prefix: bytes) -> bytes | None:
    data = bytearray(prefix)
    for i in range(len(data) - 1, -1, -1):
        if data[i] < 255:
            data[i] += 1
            return bytes(data[: i + 1])
    return None
