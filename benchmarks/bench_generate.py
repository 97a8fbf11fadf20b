"""Measure synthetic data generation throughput (rows/s) per dataset.

.venv/bin/python benchmarks/bench_generate.py               # 1M rows each
.venv/bin/python benchmarks/bench_generate.py -n 5000000 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from govlab.generators import DATASETS, iter_batches


def bench(name: str, n_rows: int, seed: int, repeat: int) -> dict[str, float | int | str]:
    spec = DATASETS[name]
    best = float("inf")
    rows = nbytes = 0
    for _ in range(repeat):
        rows = nbytes = 0
        started = time.perf_counter()
        for batch in iter_batches(spec, n_rows, seed=seed):
            rows += batch.num_rows
            nbytes += batch.nbytes
        best = min(best, time.perf_counter() - started)
    return {
        "dataset": name,
        "rows": rows,
        "seconds": round(best, 4),
        "rows_per_s": round(rows / best),
        "mb_per_s": round(nbytes / best / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=1_000_000, help="rows per dataset")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="runs per dataset; best is kept")
    parser.add_argument(
        "--dataset", action="append", choices=sorted(DATASETS), help="only these (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    results = [bench(name, args.rows, args.seed, args.repeat) for name in args.dataset or DATASETS]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{'dataset':<12} {'rows':>10} {'seconds':>9} {'rows/s':>12} {'MB/s':>8}")
    for r in results:
        print(
            f"{r['dataset']:<12} {r['rows']:>10,} {r['seconds']:>9.3f} "
            f"{r['rows_per_s']:>12,} {r['mb_per_s']:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
