"""Synthetic web-shop orders: contact details, payment cards and order lines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from govlab import catalog

from . import _common as c

SCHEMA = catalog.ECOMMERCE.schema

STATUSES = np.array(["delivered", "shipped", "processing", "cancelled", "returned"])
STATUS_WEIGHTS = np.array([60, 15, 10, 8, 7], dtype=np.float64)
_STATUSES_PA = c.vocab(STATUSES)
_QUANTITY_WEIGHTS = np.array([70, 18, 7, 3, 2], dtype=np.float64)  # 1..5 items


@c.full_chunks
def build_chunk(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    rng = c.salted(rng, "ecommerce")
    customer_name, _ = c.names(rng, n)
    email = c.emails(rng, n)  # not built from customer_name: see c.emails
    phone = c.with_nulls(rng, c.phones(rng, n), 0.01)
    card_number = c.card_numbers(rng, n)
    address, city = c.addresses(rng, n)
    product = rng.integers(0, c.PRODUCTS.size, n)
    quantity = c.weighted_codes(rng, _QUANTITY_WEIGHTS, n) + 1
    # List price times quantity, with a +/-15% promotion/tax wobble.
    amount = c.PRODUCT_PRICES[product] * quantity * rng.uniform(0.85, 1.15, n)
    ordered_at = c.timestamps(rng, n, "2022-01-01", "2025-12-31")
    status = c.weighted_codes(rng, STATUS_WEIGHTS, n)
    return pa.RecordBatch.from_arrays(
        [
            c.primary_keys(start, n),
            customer_name,
            email,
            phone,
            card_number,
            address,
            c.regions_for(city),
            c.take(c.PRODUCTS_PA, product),
            c.take(c.PRODUCT_CATEGORIES_PA, product),
            pa.array(quantity.astype(np.int32)),
            c.money(amount),
            ordered_at,
            c.take(_STATUSES_PA, status),
        ],
        schema=SCHEMA,
    )
