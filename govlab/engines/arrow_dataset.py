"""The read side Delta and Parquet share: scans of a ``pyarrow.dataset`` with the whole
bound filter pushed down, results normalised to the spec's schema, and an LRU of table
versions as Arrow snapshots (``engines.snapshot``) for the page reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from govlab.catalog import DatasetSpec
from govlab.config import Settings
from govlab.engines.writing import check_dataset_name
from govlab.errors import BadRequest

if TYPE_CHECKING:
    import pyarrow.dataset as ds

    from govlab.engines.snapshot import Snapshot
    from govlab.policy.ast import Expr


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
    from govlab.policy.ast import columns_of  # the read path only (see the module docstring)

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


class SnapshotCache:
    """A small LRU of Snapshots keyed by something that changes with every version."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Snapshot | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, build: Callable[[], ds.FileSystemDataset | None]
    ) -> Snapshot | None:
        """The snapshot for ``key``, built on first use (None is remembered too)."""
        from govlab.engines.snapshot import Snapshot  # the read path only

        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        dataset = build()
        snapshot = None if dataset is None else Snapshot(dataset)
        with self._lock:
            self._items[key] = snapshot
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return snapshot


class ArrowDatasetEngine:
    """What Delta and Parquet share: a table directory per dataset under the format's
    root, and scans of a ``pyarrow.dataset`` with the whole bound filter pushed down.
    Subclasses set ``name`` and provide ``_dataset(spec, version)``."""

    name = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.format_dir(self.name)

    def path(self, dataset: str) -> Path:
        return self.root / check_dataset_name(dataset)

    def _dataset(self, spec: DatasetSpec, version: int | None) -> ds.Dataset:
        raise NotImplementedError

    def scan(
        self,
        spec: DatasetSpec,
        columns: list[str],
        row_filter: Expr,
        version: int | None = None,
    ) -> pa.Table:
        from govlab.policy.compile import to_arrow

        schema = output_schema(spec, columns)  # unknown columns: BadRequest, before I/O
        table = self._dataset(spec, version).to_table(
            columns=list(columns), filter=to_arrow(row_filter)
        )
        return normalise(table, schema)

    def count(self, spec: DatasetSpec, row_filter: Expr, version: int | None = None) -> int:
        from govlab.policy.compile import to_arrow

        return int(self._dataset(spec, version).count_rows(filter=to_arrow(row_filter)))
