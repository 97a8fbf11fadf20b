"""Deterministic, vectorised synthetic datasets: healthcare, ecommerce and financial.

The catalog (names, sizes, schemas) is ``govlab.catalog``; this package holds the
vocabularies and the chunk builders, one module per dataset, registered in
:data:`BUILDERS`.
"""

from __future__ import annotations

from govlab.catalog import DATASETS, REGIONS, SIZES, DatasetSpec, get_dataset, size_rows

from . import ecommerce, financial, healthcare
from .base import ChunkBuilder, iter_batches

BUILDERS: dict[str, ChunkBuilder] = {
    "healthcare": healthcare.build_chunk,
    "ecommerce": ecommerce.build_chunk,
    "financial": financial.build_chunk,
}
assert set(BUILDERS) == set(DATASETS), "every catalog dataset has a generator"

__all__ = [
    "BUILDERS",
    "DATASETS",
    "REGIONS",
    "SIZES",
    "DatasetSpec",
    "get_dataset",
    "iter_batches",
    "size_rows",
]
