"""The dataset catalog: names, sizes, schemas, keys, what is searchable and what is PII.

Apart from the generators (``govlab.generators``: vocabularies, samplers, chunk
builders), so that the policy layer and the service, which need a dataset's schema to
bind and validate, never build the synthetic vocabularies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from govlab.errors import BadRequest

SIZES: dict[str, int] = {
    "tiny": 1_000,
    "small": 50_000,
    "medium": 500_000,
    "large": 5_000_000,
}
REGIONS: tuple[str, ...] = ("NE", "SE", "MW", "SW", "W")

ChunkBuilder = Callable[[np.random.Generator, int, int], pa.RecordBatch]
"""(rng, first_row_index, n_rows) -> a batch of exactly n_rows in the dataset's schema."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as the catalog knows it. ``build_chunk`` is for specs made elsewhere
    (tests); the catalog's own datasets are built by ``govlab.generators``."""

    name: str
    schema: pa.Schema
    primary_key: str
    searchable: tuple[str, ...]
    pii: tuple[str, ...]
    partition_by: str
    build_chunk: ChunkBuilder | None = None

    def column_type(self, column: str) -> pa.DataType:
        return self.schema.field(column).type


HEALTHCARE_SCHEMA = pa.schema(
    [
        ("patient_id", pa.int64()),
        ("name", pa.string()),
        ("ssn", pa.string()),
        ("dob", pa.date32()),
        ("address", pa.string()),
        ("region", pa.string()),
        ("condition", pa.string()),
        ("clinician_id", pa.string()),
        ("admitted_at", pa.timestamp("us")),
        ("notes", pa.string()),
        ("insurance_id", pa.string()),
    ]
)

ECOMMERCE_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("customer_name", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("card_number", pa.string()),
        ("address", pa.string()),
        ("region", pa.string()),
        ("product", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int32()),
        ("amount", pa.float64()),
        ("ordered_at", pa.timestamp("us")),
        ("status", pa.string()),
    ]
)

FINANCIAL_SCHEMA = pa.schema(
    [
        ("account_id", pa.int64()),
        ("holder_name", pa.string()),
        ("ssn", pa.string()),
        ("dob", pa.date32()),
        ("address", pa.string()),
        ("region", pa.string()),
        ("account_number", pa.string()),
        ("account_type", pa.string()),
        ("balance", pa.float64()),
        ("txn_amount", pa.float64()),
        ("txn_date", pa.date32()),
        ("risk_rating", pa.string()),
        ("branch", pa.string()),
    ]
)

HEALTHCARE = DatasetSpec(
    name="healthcare",
    schema=HEALTHCARE_SCHEMA,
    primary_key="patient_id",
    searchable=("name", "condition", "notes", "address", "ssn"),
    pii=("name", "ssn", "dob", "address", "insurance_id"),
    partition_by="region",
)

ECOMMERCE = DatasetSpec(
    name="ecommerce",
    schema=ECOMMERCE_SCHEMA,
    primary_key="order_id",
    searchable=("customer_name", "email", "product", "category", "address"),
    pii=("customer_name", "email", "phone", "card_number", "address"),
    partition_by="region",
)

FINANCIAL = DatasetSpec(
    name="financial",
    schema=FINANCIAL_SCHEMA,
    primary_key="account_id",
    searchable=("holder_name", "account_number", "branch", "address", "ssn"),
    pii=("holder_name", "ssn", "dob", "address", "account_number"),
    partition_by="region",
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (HEALTHCARE, ECOMMERCE, FINANCIAL)}


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a dataset by name; BadRequest (listing the valid names) otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise BadRequest(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}"
        ) from None


def size_rows(size: str) -> int:
    if size not in SIZES:
        raise BadRequest(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)}")
    return SIZES[size]
