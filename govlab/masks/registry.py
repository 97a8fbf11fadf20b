"""The mask registry: one entry per mask, each carrying the function that computes it.

A mask is one function (in ``kernels`` or ``crypto``) plus one :class:`MaskDef` line in
:data:`MASKS`; validation (:func:`check_mask`), the API's mask list and the lab's legend
all read this registry, so nothing else has to agree with it by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from govlab.errors import PolicyError
from govlab.keys import MaskKeys
from govlab.masks.crypto import MaskContext, hash_mask, tokenize_mask
from govlab.masks.kernels import (
    DEFAULT_KEEP,
    REDACTED,
    any_type,
    city_only,
    combine,
    date_part,
    initials,
    is_date_like,
    is_text,
    redact_full,
    redact_part,
)

#: ``(raw values, params, context) -> masked values``, a ``pa.string()`` array.
MaskFn = Callable[[pa.Array, Mapping[str, Any], MaskContext], pa.Array]


@dataclass(frozen=True)
class MaskDef:
    """One mask as the policy layer and the UI legend see it.

    ``apply`` computes the mask from raw values (validated ones: see :func:`apply_mask`).
    ``accepts`` lets policy validation reject a mask on a column type it cannot handle
    *before* any data is read, instead of failing (or leaking) at query time.
    ``example_before``/``example_after`` feed the MaskLegend; ``example_after`` is the real
    output of the mask on ``example_before`` (keyed masks use :data:`EXAMPLE_MASK_KEYS`
    and the column ``example`` of the dataset ``example``; date
    masks read ``example_before`` as an ISO date; the text ``"null"`` stands for a null).
    """

    name: str
    description: str
    accepts: Callable[[pa.DataType], bool]
    param_names: frozenset[str]
    example_before: str
    example_after: str
    apply: MaskFn = field(repr=False, compare=False)


MASKS: dict[str, MaskDef] = {
    m.name: m
    for m in (
        MaskDef(
            "redact_full",
            "Replaced by a fixed '*****' (text) or null (other types); the length is not revealed.",
            any_type,
            frozenset(),
            "Jane Doe",
            REDACTED,
            lambda values, params, ctx: redact_full(values),
        ),
        MaskDef(
            "redact_part",
            "Only the last `keep` letters/digits (default 4) stay visible; separators are kept. "
            "Values with `keep` or fewer letters/digits are fully starred.",
            is_text,
            frozenset({"keep"}),
            "123-45-6789",
            "***-**-6789",
            lambda values, params, ctx: redact_part(values, int(params.get("keep", DEFAULT_KEEP))),
        ),
        MaskDef(
            "hash",
            "Keyed HMAC-SHA256 (first 32 hex chars, 128 bits): equal values stay joinable, but the "
            "value cannot be recovered or guessed without the deployment key.",
            any_type,
            frozenset(),
            "jane.doe@example.com",
            "bc464c51b06f68d18fe023ca15bc5647",
            lambda values, params, ctx: hash_mask(values, ctx.keys),
        ),
        MaskDef(
            "tokenize",
            "Deterministic AES-SIV token: equal values give equal tokens, and only the "
            "holder of the deployment key can turn a token back into the value, and only "
            "in the dataset and column it was minted for.",
            is_text,
            frozenset(),
            "jane.doe@example.com",
            "tok_TuNxaCA2ZT2UgkEH0nA5wYtWuRv4sEejNlf_jvNYZSoFkJ16",
            lambda values, params, ctx: tokenize_mask(values, ctx.keys, ctx.dataset, ctx.column),
        ),
        MaskDef(
            "initials",
            "Upper-case first letter of each word, each followed by '.'.",
            is_text,
            frozenset(),
            "mary ann lee",
            "M.A.L.",
            lambda values, params, ctx: initials(values),
        ),
        MaskDef(
            "year_only",
            "Dates and timestamps reduced to their year.",
            is_date_like,
            frozenset(),
            "1984-07-23",
            "1984",
            lambda values, params, ctx: date_part(values, month=False),
        ),
        MaskDef(
            "yyyy_mm",
            "Dates and timestamps reduced to year and month.",
            is_date_like,
            frozenset(),
            "1984-07-23",
            "1984-07",
            lambda values, params, ctx: date_part(values, month=True),
        ),
        MaskDef(
            "city_only",
            "Only the city of a 'street, city, region' address is shown.",
            is_text,
            frozenset(),
            "12 Oak St, Springfield, IL 62704",
            "Springfield",
            lambda values, params, ctx: city_only(values),
        ),
        MaskDef(
            "null",
            "Value withheld entirely (always null).",
            any_type,
            frozenset(),
            "Jane Doe",
            "null",
            lambda values, params, ctx: pa.nulls(len(values), pa.string()),
        ),
    )
}


def _type_label(accepts: Callable[[pa.DataType], bool]) -> str:
    if accepts is is_text:
        return "a text column"
    if accepts is is_date_like:
        return "a date or timestamp column"
    return "a supported column"


def check_mask(name: str, params: Mapping[str, Any], dtype: pa.DataType, column: str) -> list[str]:
    """Return every problem with applying mask ``name`` to ``column``; empty means valid.

    All problems are collected (not just the first) so a policy author fixes them in one
    round. Messages name the column, mask and parameter only, never data values.
    """
    mask = MASKS.get(name)
    if mask is None:
        known = ", ".join(MASK_NAMES)
        return [f"column {column!r}: unknown mask {name!r} (known masks: {known})"]
    problems: list[str] = []
    for param in sorted(set(params) - mask.param_names, key=str):
        allowed = ", ".join(sorted(mask.param_names)) or "none"
        problems.append(
            f"column {column!r}: mask {name!r} has no parameter {param!r} (allowed: {allowed})"
        )
    if "keep" in mask.param_names and "keep" in params:
        keep = params["keep"]
        # bool is an int subclass; `keep: true` in YAML is a typo, not a count.
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            problems.append(
                f"column {column!r}: mask {name!r} parameter 'keep' must be an integer >= 0"
            )
    if not mask.accepts(dtype):
        problems.append(
            f"column {column!r}: mask {name!r} needs {_type_label(mask.accepts)}, "
            f"but the column has type {dtype}"
        )
    return problems


#: The masks, in the order the legend shows them.
MASK_NAMES: tuple[str, ...] = tuple(MASKS)


def apply_mask(
    name: str,
    params: Mapping[str, Any],
    values: pa.Array | pa.ChunkedArray,
    keys: MaskKeys,
    *,
    dataset: str = "<dataset>",
    column: str = "<values>",
) -> pa.Array:
    """Mask one column of raw values; returns a ``pa.string()`` array of the same length.

    The mask is validated first (:class:`~govlab.errors.PolicyError` if invalid) so a
    policy that slipped past validation still fails closed rather than returning data.
    """
    problems = check_mask(name, params, values.type, column)
    if problems:
        raise PolicyError(problems[0], problems)
    return MASKS[name].apply(combine(values), params, MaskContext(keys, dataset, column))


def mask_table(
    table: pa.Table,
    plan: Mapping[str, tuple[str, Mapping[str, Any]]],
    keys: MaskKeys,
    dataset: str,
) -> pa.Table:
    """Replace each planned column by its masked version, keeping column order.

    Every mask reads the column from the original ``table``, so masks never see each
    other's output. Planned columns absent from the page are ignored (a projection may
    have dropped them). The whole plan is validated before anything is computed.
    """
    present = [col for col in plan if col in table.column_names]
    problems: list[str] = []
    for col in present:
        name, params = plan[col]
        for index in table.schema.get_all_field_indices(col):
            problems += check_mask(name, params, table.schema.field(index).type, col)
    if problems:
        raise PolicyError(f"invalid masking plan: {problems[0]}", problems)
    if not present:
        return table

    fields: list[pa.Field] = []
    columns: list[pa.Array | pa.ChunkedArray] = []
    for column_field, raw in zip(table.schema, table.columns, strict=True):
        if column_field.name in plan:
            name, params = plan[column_field.name]
            context = MaskContext(keys, dataset, column_field.name)
            columns.append(MASKS[name].apply(combine(raw), params, context))
            fields.append(pa.field(column_field.name, pa.string(), True, column_field.metadata))
        else:
            columns.append(raw)
            fields.append(column_field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, table.schema.metadata))
