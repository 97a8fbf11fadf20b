"""Synthetic bank accounts: holders, balances and each account's latest transaction."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import _common as c
from .base import DatasetSpec

SCHEMA = pa.schema(
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

ACCOUNT_TYPES = np.array(["checking", "savings", "money market", "brokerage"])
ACCOUNT_TYPE_WEIGHTS = np.array([55, 30, 8, 7], dtype=np.float64)
RISK_RATINGS = np.array(["low", "medium", "high"])
RISK_WEIGHTS = np.array([70, 22, 8], dtype=np.float64)

_ACCOUNT_TYPES_PA = c.vocab(ACCOUNT_TYPES)
_RISK_PA = c.vocab(RISK_RATINGS)
# "<City> <Suffix>" for every (city, suffix): code = city * n_suffixes + suffix, so a
# holder banks at a branch in their own city (and region).
_BRANCHES_PA = c.vocab([f"{city} {suffix}" for city in c.CITIES for suffix in c.BRANCH_SUFFIXES])

# Account numbers are a bijection of the primary key onto 1000000000..9999999999, so
# they are unique across the whole table without any coordination between chunks.
_ACCOUNT_SPACE = 9_000_000_000
_ACCOUNT_MULT = 2_654_435_761  # coprime with 9e9 (not divisible by 2, 3 or 5)
_ACCOUNT_OFFSET = 1_234_567_890


def account_numbers(ids: np.ndarray) -> pa.StringArray:
    values = 1_000_000_000 + (ids * _ACCOUNT_MULT + _ACCOUNT_OFFSET) % _ACCOUNT_SPACE
    return c.fixed_width_strings(c.digit_matrix(values, 10))


@c.full_chunks
def build_chunk(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    rng = c.salted(rng, "financial")
    ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
    holder_name, _ = c.names(rng, n)
    ssn = c.ssns(rng, n)
    dob = c.dates(rng, n, "1930-01-01", "2006-12-31")  # account holders are adults
    address, city = c.addresses(rng, n)
    account_type = c.weighted_codes(rng, ACCOUNT_TYPE_WEIGHTS, n)
    balance = rng.lognormal(8.3, 1.3, n)
    # Latest transaction: mostly debits; ~1% of accounts have none (NULL amount and date).
    debit = rng.random(n) < 0.7
    txn = rng.lognormal(4.0, 1.1, n) * np.where(debit, -1.0, 1.0)
    no_txn = rng.random(n) < 0.01
    txn_mask = no_txn if no_txn.any() else None
    txn_amount = pa.array(np.round(txn, 2), type=pa.float64(), mask=txn_mask)
    txn_days = rng.integers(c.day_number("2023-01-01"), c.day_number("2025-12-31") + 1, n)
    txn_date = pa.array(txn_days.astype(np.int32), type=pa.date32(), mask=txn_mask)
    risk = c.weighted_codes(rng, RISK_WEIGHTS, n)
    branch = city * c.BRANCH_SUFFIXES.size + rng.integers(0, c.BRANCH_SUFFIXES.size, n)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids),
            holder_name,
            ssn,
            dob,
            address,
            c.regions_for(city),
            account_numbers(ids),
            c.take(_ACCOUNT_TYPES_PA, account_type),
            c.money(balance),
            txn_amount,
            txn_date,
            c.take(_RISK_PA, risk),
            c.take(_BRANCHES_PA, branch),
        ],
        schema=SCHEMA,
    )


SPEC = DatasetSpec(
    name="financial",
    schema=SCHEMA,
    primary_key="account_id",
    searchable=("holder_name", "account_number", "branch", "address", "ssn"),
    pii=("holder_name", "ssn", "dob", "address", "account_number"),
    partition_by="region",
    build_chunk=build_chunk,
)
