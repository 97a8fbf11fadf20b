"""Seed one table in this (child) process and print a JSON line with its cost.

``benchmarks.run`` starts one child per (size, format) seed so that its high-water mark (VmHWM) is
the peak resident set of that seed alone (interpreter and imports included, which is
what a seeding worker really costs).

    python -m benchmarks.seed_child --data-dir DIR --dataset healthcare --size small \
        --format delta
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from govlab.config import Settings
from govlab.seeding import seed_table


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set of this process image.

    VmHWM, not ``ru_maxrss``: on Linux, exec carries the pre-exec (forked parent's)
    high-water mark into ``ru_maxrss``, so a child forked from a big benchmark process
    would report the parent's size.
    """
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="healthcare")
    parser.add_argument("--size", required=True)
    parser.add_argument("--format", required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    settings = Settings.from_env(args.data_dir)
    # imports happen before the clock, as in a worker (``govlab worker`` preloads them
    # before forking a work horse per job): import time is not write throughput
    from govlab.engines import get_engine, preload

    preload()
    get_engine(args.format, settings)
    rss_before = _status_mb("VmRSS") or 0.0
    started = time.perf_counter()
    info = seed_table(args.dataset, args.size, args.format, settings, seed=args.seed)
    seconds = time.perf_counter() - started
    result = {
        "dataset": args.dataset,
        "size": args.size,
        "format": args.format,
        "rows": info.rows,
        "version": info.version,
        "seconds": round(seconds, 4),
        "rows_per_s": round(info.rows / seconds),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
