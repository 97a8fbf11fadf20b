"""The batched, deterministic row stream every dataset shares.

Rows are produced in fixed chunks whose random state depends only on (seed, chunk
index), so the same seed gives the same table whatever batch size a writer asks for,
and no chunk needs the ones before it: memory stays bounded at any table size.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from govlab.catalog import REGIONS, SIZES, ChunkBuilder, DatasetSpec, size_rows

__all__ = [
    "CHUNK_ROWS",
    "REGIONS",
    "SIZES",
    "ChunkBuilder",
    "DatasetSpec",
    "iter_batches",
    "size_rows",
]

CHUNK_ROWS = 65_536


def iter_batches(spec: DatasetSpec, n_rows: int, seed: int = 42) -> Iterator[pa.RecordBatch]:
    """Yield the table as chunks of CHUNK_ROWS rows, in primary-key order."""
    build = spec.build_chunk or _builder(spec.name)
    for chunk_index, start in enumerate(range(0, n_rows, CHUNK_ROWS)):
        count = min(CHUNK_ROWS, n_rows - start)
        rng = np.random.default_rng([seed, chunk_index])
        batch = build(rng, start, count)
        yield batch.cast(spec.schema) if batch.schema != spec.schema else batch


def _builder(name: str) -> ChunkBuilder:
    from govlab.generators import BUILDERS  # the vocabularies load on first generation

    return BUILDERS[name]
