"""What every dataset declares, and the batched, deterministic row stream they share.

Rows are produced in fixed chunks whose random state depends only on (seed, chunk
index), so the same seed gives the same table whatever batch size a writer asks for,
and no chunk needs the ones before it: memory stays bounded at any table size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

SIZES: dict[str, int] = {
    "tiny": 1_000,
    "small": 50_000,
    "medium": 500_000,
    "large": 5_000_000,
}
REGIONS: tuple[str, ...] = ("NE", "SE", "MW", "SW", "W")
CHUNK_ROWS = 65_536

ChunkBuilder = Callable[[np.random.Generator, int, int], pa.RecordBatch]
"""(rng, first_row_index, n_rows) -> a batch of exactly n_rows in the dataset's schema."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    schema: pa.Schema
    primary_key: str
    searchable: tuple[str, ...]
    pii: tuple[str, ...]
    partition_by: str
    build_chunk: ChunkBuilder

    def column_type(self, column: str) -> pa.DataType:
        return self.schema.field(column).type


def size_rows(size: str) -> int:
    from govlab.errors import BadRequest

    if size not in SIZES:
        raise BadRequest(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)}")
    return SIZES[size]


def iter_batches(spec: DatasetSpec, n_rows: int, seed: int = 42) -> Iterator[pa.RecordBatch]:
    """Yield the table as chunks of CHUNK_ROWS rows, in primary-key order."""
    for chunk_index, start in enumerate(range(0, n_rows, CHUNK_ROWS)):
        count = min(CHUNK_ROWS, n_rows - start)
        rng = np.random.default_rng([seed, chunk_index])
        batch = spec.build_chunk(rng, start, count)
        yield batch.cast(spec.schema) if batch.schema != spec.schema else batch
