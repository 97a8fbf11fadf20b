"""Synthetic bank accounts: holders, balances and each account's latest transaction."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from govlab import catalog

from . import _common as c

SCHEMA = catalog.FINANCIAL.schema

ACCOUNT_TYPES = np.array(["checking", "savings", "money market", "brokerage"])
ACCOUNT_TYPE_WEIGHTS = np.array([55, 30, 8, 7], dtype=np.float64)
RISK_RATINGS = np.array(["low", "medium", "high"])
RISK_WEIGHTS = np.array([70, 22, 8], dtype=np.float64)

_ACCOUNT_TYPES_PA = c.vocab(ACCOUNT_TYPES)
_RISK_PA = c.vocab(RISK_RATINGS)
# "<City> <Suffix>" for every (city, suffix): code = city * n_suffixes + suffix, so a
# holder banks at a branch in their own city (and region). The branch thus tells the
# city of `address`: fine while every address mask shows the city anyway (city_only in
# the shipped policy); a policy that hides the city must mask `branch` as well.
_BRANCHES_PA = c.vocab([f"{city} {suffix}" for city in c.CITIES for suffix in c.BRANCH_SUFFIXES])

# 12-digit account numbers: 100000000000..999999999999.
_ACCOUNT_FIRST = 10**11
_ACCOUNT_SPACE = 9 * 10**11


def account_numbers(rng: np.random.Generator, n: int) -> pa.StringArray:
    """n random 12-digit account numbers, distinct within the chunk.

    Drawn, never derived: they used to be a public bijection of ``account_id``, which
    every role sees, so anyone could undo every mask on ``account_number`` (issue 9,
    item 7). Chunks are built independently (none may depend on another), so only a
    chunk's own numbers are kept distinct (sampling without replacement, ~1 ms per
    chunk): tiny and small tables (one chunk) have no duplicates, and across chunks the
    9e11-number space makes them rare: about N^2 / 1.8e12 duplicate pairs in an N-row
    table, ~0.1 at medium and ~14 at large (1 row in 180,000). ``account_id`` is the
    key; nothing relies on account numbers being unique.
    """
    values = _ACCOUNT_FIRST + rng.choice(_ACCOUNT_SPACE, n, replace=False)
    return c.fixed_width_strings(c.digit_matrix(values, 12))


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
    account_number = account_numbers(rng, n)  # drawn last: the other columns keep their values
    return pa.RecordBatch.from_arrays(
        [
            pa.array(ids),
            holder_name,
            ssn,
            dob,
            address,
            c.regions_for(city),
            account_number,
            c.take(_ACCOUNT_TYPES_PA, account_type),
            c.money(balance),
            txn_amount,
            txn_date,
            c.take(_RISK_PA, risk),
            c.take(_BRANCHES_PA, branch),
        ],
        schema=SCHEMA,
    )
