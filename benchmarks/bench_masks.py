"""Masking throughput per mask (values/s), on synthetic columns of a realistic type.

Masks run on every result page, so their cost bounds page latency. This script times
``govlab.masks.apply_mask`` on one large column per mask and reports the best of a few
repeats (the minimum is the least noisy estimate of the achievable cost).

    python benchmarks/bench_masks.py --rows 1000000 --json out.json

Inputs are mostly distinct values with ~1% nulls, so the keyed masks (``hash``,
``tokenize``), which work once per distinct value, are measured near their worst case.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from govlab.keys import derive_keys
from govlab.masks import MASK_NAMES, apply_mask

KEYS = derive_keys(b"bench-key-0123456789abcdef0123456789abcdef").masks
FIRST = ["John", "Mary", "Ann", "José", "Li", "Fatima", "Olga", "Kwame", "Sven", "Aiko"]
LAST = ["Smith", "Lee", "García", "Okafor", "Nguyen", "Müller", "Rossi", "Kowalski"]
CITIES = ["Springfield", "Riverside", "Fairview", "Salem", "Madison", "Georgetown"]


def _with_nulls(arr: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Null out ~1% of rows: real columns have nulls and the kernels must handle them."""
    mask = pa.array(rng.random(len(arr)) < 0.01)
    return pc.if_else(mask, pa.scalar(None, arr.type), arr)


def _digits(rng: np.random.Generator, n: int, width: int, high: int) -> pa.Array:
    ints = pa.array(rng.integers(0, high, n))
    return pc.utf8_lpad(ints.cast(pa.string()), width, "0")


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pc.take(pa.array(words), pa.array(rng.integers(0, len(words), n)))


def make_ssn(rng: np.random.Generator, n: int) -> pa.Array:
    parts = [_digits(rng, n, 3, 1000), _digits(rng, n, 2, 100), _digits(rng, n, 4, 10000)]
    return pc.binary_join_element_wise(*parts, "-")


def make_email(rng: np.random.Generator, n: int) -> pa.Array:
    user = pc.binary_join_element_wise(
        pc.utf8_lower(_pick(rng, FIRST, n)), pa.array(np.arange(n)).cast(pa.string()), "."
    )
    return pc.binary_join_element_wise(user, "example.com", "@")


def make_name(rng: np.random.Generator, n: int) -> pa.Array:
    return pc.binary_join_element_wise(
        _pick(rng, FIRST, n), _pick(rng, FIRST, n), _pick(rng, LAST, n), " "
    )


def make_address(rng: np.random.Generator, n: int) -> pa.Array:
    street = pc.binary_join_element_wise(
        pa.array(rng.integers(1, 9999, n)).cast(pa.string()), "Oak St", " "
    )
    region = pc.binary_join_element_wise("IL", _digits(rng, n, 5, 100000), " ")
    return pc.binary_join_element_wise(street, _pick(rng, CITIES, n), region, ", ")


def make_dates(rng: np.random.Generator, n: int) -> pa.Array:
    start = (date(1930, 1, 1) - date(1970, 1, 1)).days
    return pa.array(rng.integers(start, start + 90 * 365, n).astype(np.int32), pa.date32())


# mask -> (input description, generator)
INPUTS: dict[str, tuple[str, Callable[[np.random.Generator, int], pa.Array]]] = {
    "redact_full": ("ssn string", make_ssn),
    "redact_part": ("ssn string", make_ssn),
    "hash": ("email string", make_email),
    "tokenize": ("email string", make_email),
    "initials": ("full name", make_name),
    "year_only": ("date32", make_dates),
    "yyyy_mm": ("date32", make_dates),
    "city_only": ("address", make_address),
    "null": ("ssn string", make_ssn),
}


def bench(rows: int, repeat: int, seed: int, only: list[str] | None) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    results: list[dict[str, object]] = []
    for name in MASK_NAMES:
        if only and name not in only:
            continue
        label, make = INPUTS[name]
        values = _with_nulls(make(rng, rows), rng)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = apply_mask(name, {}, values, KEYS)
            times.append(time.perf_counter() - t0)
            assert len(out) == rows
        best = min(times)
        results.append(
            {
                "mask": name,
                "input": label,
                "rows": rows,
                "seconds": round(best, 4),
                "values_per_s": round(rows / best) if best > 0 else None,
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mask", action="append", choices=MASK_NAMES, help="only these masks")
    parser.add_argument("--json", type=Path, help="also write results as JSON here")
    args = parser.parse_args(argv)

    results = bench(args.rows, max(1, args.repeat), args.seed, args.mask)
    print(f"{'mask':<12} {'input':<13} {'rows':>9} {'seconds':>9} {'values/s':>13}")
    for r in results:
        print(
            f"{r['mask']:<12} {r['input']:<13} {r['rows']:>9} "
            f"{r['seconds']:>9.3f} {r['values_per_s']:>13,}"
        )
    if args.json:
        payload = {
            "rows": args.rows,
            "repeat": args.repeat,
            "pyarrow": pa.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
