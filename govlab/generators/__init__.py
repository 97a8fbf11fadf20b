"""Deterministic, vectorised synthetic datasets: healthcare, ecommerce and financial."""

from __future__ import annotations

from govlab.errors import BadRequest

from . import ecommerce, financial, healthcare
from .base import REGIONS, SIZES, DatasetSpec, iter_batches, size_rows

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (healthcare.SPEC, ecommerce.SPEC, financial.SPEC)
}


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a dataset by name; BadRequest (listing the valid names) otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise BadRequest(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}"
        ) from None


__all__ = [
    "DATASETS",
    "REGIONS",
    "SIZES",
    "DatasetSpec",
    "get_dataset",
    "iter_batches",
    "size_rows",
]
