"""Daft (native, and on a local Ray of one) against the in-process search, and the
governed export's rate: a benchmark, not a test.

    python -m benchmarks.bench_daft [--large] [--repeats 5] [--md benchmarks/RESULTS.md]

Per size (medium 500k rows; large 5M with ``--large``) the healthcare table is seeded
in every format; each case (role x query, first page of 20, the default count limit)
is timed in process with ``GovernedSearch`` (``inprocess``), with
``GOVLAB_EXECUTION=daft`` on Daft's native runner, and in a child process whose Daft
runs on a local Ray cluster of one (127.0.0.1, 2 CPUs, token auth). Pages are checked
to be equal before anything is timed. The export (analyst: every row of two regions,
masked) is timed with Daft and against the in-process way of doing the same (engine
scan, ``govlab.masks.mask_table``, one Parquet file). p50 over ``--repeats`` runs.

The result goes to ``benchmarks/results-daft.json`` and to its own section of
``benchmarks/RESULTS.md`` (between the ``bench_daft`` markers; the rest of the file
is left alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from govlab.config import Settings, quiet_third_parties  # noqa: E402
from govlab.engines import FORMATS  # noqa: E402
from govlab.policy import Principal  # noqa: E402
from govlab.search import GovernedSearch, SearchQuery  # noqa: E402

START = "<!-- bench_daft:start -->"
END = "<!-- bench_daft:end -->"
SIZES = {"medium": 500_000, "large": 5_000_000}
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("admin", {}, ""),
    ("admin", {}, "asthma"),
    ("analyst", {"allowed_regions": ["NE", "SW"]}, ""),
    ("clinician", {"id": "C007"}, "asthma"),
]
EXPORTER = ("analyst", {"allowed_regions": ["NE", "SW"]})
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


def log(message: str) -> None:
    print(f"[bench_daft] {message}", file=sys.stderr, flush=True)


def p50(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm: imports, plans, file metadata
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def time_search(settings: Settings, size: str, repeats: int, label: str) -> list[dict[str, Any]]:
    searcher = GovernedSearch(settings)
    rows = []
    for fmt in FORMATS:
        for role, attrs, q in CASES:
            principal, query = Principal(role, attrs), SearchQuery.parse(q, 1, 20, None)
            run = partial(searcher.search, "healthcare", fmt, principal, query)
            ms = p50(run, repeats)
            rows.append({"size": size, "format": fmt, "role": role, "q": q, label: ms})
            log(f"{size} {fmt} {role} {q!r} {label}: {ms:.1f} ms")
    return rows


def check_pages(settings: Settings) -> None:
    inprocess = GovernedSearch(settings)
    daft = GovernedSearch(dataclasses.replace(settings, execution="daft"))
    for fmt in FORMATS:
        for role, attrs, q in CASES:
            principal, query = Principal(role, attrs), SearchQuery.parse(q, 1, 20, None)
            mine = daft.search("healthcare", fmt, principal, query)["items"]
            assert mine == inprocess.search("healthcare", fmt, principal, query)["items"]


def time_export(settings: Settings, size: str, fmt: str, work: Path) -> dict[str, Any]:
    """Daft's governed export and the in-process equivalent, rows per second."""
    import pyarrow.parquet as pq

    from govlab import masks
    from govlab.catalog import get_dataset
    from govlab.engines import get_engine
    from govlab.execution.export import export_parquet
    from govlab.keys import derive_keys
    from govlab.policy.access import AccessControl, Action
    from govlab.policy.store import PolicyStore

    role, attrs = EXPORTER
    grant = AccessControl(PolicyStore(settings)).authorize(
        Principal(role, attrs), Action.EXPORT, "healthcare"
    )
    target = work / f"export-{fmt}-{size}"
    shutil.rmtree(target, ignore_errors=True)
    result = export_parquet(settings, grant, fmt, str(target))
    shutil.rmtree(target, ignore_errors=True)

    spec, plan = get_dataset("healthcare"), grant.bound_plan
    started = time.perf_counter()
    engine = get_engine(fmt, settings)
    version = engine.version("healthcare")
    table = engine.scan(spec, spec.schema.names, plan.row_filter, version)
    keys = derive_keys(settings.secret_key()).masks
    masked = masks.mask_table(table, plan.mask_plan, keys, "healthcare")
    pq.write_table(masked, work / f"inprocess-{fmt}-{size}.parquet")
    seconds = time.perf_counter() - started
    (work / f"inprocess-{fmt}-{size}.parquet").unlink()
    row = {
        "size": size,
        "format": fmt,
        "rows": result.rows,
        "daft_rows_per_s": result.rows_per_sec,
        "inprocess_rows_per_s": masked.num_rows / seconds,
    }
    log(f"export {size} {fmt}: daft {row['daft_rows_per_s']:,.0f} rows/s, "
        f"in-process {row['inprocess_rows_per_s']:,.0f} rows/s")  # fmt: skip
    return row


# ---------------------------------------------------------------------- Ray child
def ray_child(data_dir: Path, size: str, repeats: int) -> int:
    """In a process of its own (Daft picks its runner once per process): start a local
    Ray of one on 127.0.0.1 and time the same cases with Daft on it."""
    quiet_third_parties()
    import ray

    temp = tempfile.mkdtemp(prefix="ray-bench-", dir="/tmp")
    ray.init(
        num_cpus=2,
        object_store_memory=512 * 1024 * 1024,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        configure_logging=False,
        log_to_driver=False,
    )
    try:
        settings = dataclasses.replace(Settings.from_env(data_dir), execution="daft")
        rows = time_search(settings, size, repeats, "daft_ray_ms")
        export = time_export(settings, size, "delta", data_dir / "work")
        json.dump({"search": rows, "export": export}, sys.stdout)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    return 0


def run_ray_child(data_dir: Path, size: str, repeats: int) -> dict[str, Any]:
    env = {**os.environ, **RAY_ENV, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    args = [sys.executable, "-m", "benchmarks.bench_daft", "--ray-child", "--data-dir",
            str(data_dir), "--size", size, "--repeats", str(repeats)]  # fmt: skip
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    sys.stderr.write(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# ---------------------------------------------------------------------- report
def merge(*tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for table in tables:
        for row in table:
            key = (row["size"], row["format"], row["role"], row["q"])
            merged.setdefault(key, {}).update(row)
    return list(merged.values())


def render(result: dict[str, Any]) -> str:
    lines = [
        START,
        "## Daft (native and on a local Ray) vs in-process (issue 12)",
        "",
        f"`python -m benchmarks.bench_daft{' --large' if result['large'] else ''}`, "
        f"{result['machine']}; healthcare, first page of 20 (count limit 10,000), p50 of "
        f"{result['repeats']} runs after one warm run; Daft's pages checked equal first. "
        "Ray: a local cluster of one (2 CPUs, 127.0.0.1), client in the same machine.",
        "",
        "| size | format | role | q | in-process ms | Daft native ms | x | Daft on Ray ms | x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["search"]:
        base = row["inprocess_ms"]
        native, on_ray = row.get("daft_native_ms"), row.get("daft_ray_ms")
        lines.append(
            f"| {row['size']} | {row['format']} | {row['role']} | {row['q'] or '(all)'} "
            f"| {base:.1f} | {native:.1f} | {native / base:.1f} "
            f"| {on_ray:.0f} | {on_ray / base:.0f} |"
            if native is not None and on_ray is not None
            else f"| {row['size']} | {row['format']} | {row['role']} | {row['q']} | {base:.1f} |"
        )
    lines += [
        "",
        "Governed export (analyst: two regions, every column, masks as Daft batch UDFs) vs "
        "the in-process way (engine scan + `mask_table` + one Parquet file):",
        "",
        "| size | format | rows | Daft rows/s | in-process rows/s | x |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["export"]:
        ratio = row["daft_rows_per_s"] / row["inprocess_rows_per_s"]
        lines.append(
            f"| {row['size']} | {row['format']}{' (Ray)' if row.get('ray') else ''} "
            f"| {row['rows']:,} | {row['daft_rows_per_s']:,.0f} "
            f"| {row['inprocess_rows_per_s']:,.0f} | {ratio:.2f} |"
        )
    lines += ["", *result.get("notes", []), END, ""]
    return "\n".join(lines)


def write_section(md: Path, section: str) -> None:
    text = md.read_text() if md.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    md.write_text(text)


def seed(data_dir: Path, size: str) -> None:
    from govlab.seeding import seed_table

    settings = Settings.from_env(data_dir)
    for fmt in FORMATS:
        started = time.perf_counter()
        seed_table("healthcare", size, fmt, settings, 42)
        log(f"seeded {size} {fmt} in {time.perf_counter() - started:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also 5,000,000 rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--ray-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-daft.json")
    parser.add_argument("--md", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    os.environ.setdefault("GOVLAB_SECRET", secrets.token_hex(32))
    if args.ray_child:
        return ray_child(args.data_dir, args.size, args.repeats)
    quiet_third_parties()
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="govlab-bench-daft-"))
    sizes = ["medium", "large"] if args.large else ["medium"]
    search: list[dict[str, Any]] = []
    export: list[dict[str, Any]] = []
    try:
        for size in sizes:
            data_dir = root / size
            (data_dir / "work").mkdir(parents=True, exist_ok=True)
            seed(data_dir, size)
            settings = Settings.from_env(data_dir)
            check_pages(settings)
            repeats = args.repeats if size == "medium" else max(1, args.repeats // 2)
            inprocess = time_search(settings, size, repeats, "inprocess_ms")
            daft = dataclasses.replace(settings, execution="daft")
            native = time_search(daft, size, repeats, "daft_native_ms")
            on_ray = run_ray_child(data_dir, size, repeats)
            search += merge(inprocess, native, on_ray["search"])
            for fmt in FORMATS:
                export.append(time_export(daft, size, fmt, data_dir / "work"))
            export.append({**on_ray["export"], "ray": True})
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    result = {
        "large": args.large,
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} cores (shared)",
        "search": search,
        "export": export,
    }
    args.out.write_text(json.dumps(result, indent=2))
    write_section(args.md, render(result))
    log(f"wrote {args.out} and the bench_daft section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
