"""Build a Parquet dataset with PyArrow, register it with govlab, search it with RLS/CLS.

    .venv/bin/python examples/python/load_parquet_example.py                  # temp data root
    .venv/bin/python examples/python/load_parquet_example.py --data-dir DIR --rows 50000
    .venv/bin/python examples/python/load_parquet_example.py --source my_parquet_dir/

1. Build admissions in govlab's healthcare schema as a PyArrow table (generated rows plus
   three written by hand) and write them as a plain hive-partitioned Parquet dataset with
   ``pyarrow.dataset.write_dataset``, outside govlab. Any Parquet producer would do, and
   ``--source`` registers an existing dataset instead.
2. Register it: stream the dataset into govlab's Parquet engine,
   ``get_engine("parquet", settings).write(spec, batches)``. The engine writes a new
   ``<data root>/parquet/healthcare/v<N>/`` directory and then swaps the ``CURRENT``
   pointer atomically, so readers (and the API) see the old version or the new one,
   never half of one, and version numbers only grow (the API's page cache is keyed on
   them).
3. Search it in-process with ``govlab.search.GovernedSearch`` as a clinician (id=C007)
   and as a business user, and print what each is allowed to see.

The data root is ``--data-dir``, else ``GOVLAB_DATA_DIR``, else a temporary directory
that is removed at the end (``--keep`` keeps it). In an existing data root the
registered rows become the new current version of its healthcare table (the previous
version stays on disk). Masks that need a key (hash, tokenize) use ``GOVLAB_SECRET``,
else the key file in the data root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from _showcase import DATASET, build_admissions, example_parser, run_loading_example

from govlab.config import Settings
from govlab.engines import get_engine
from govlab.generators import get_dataset

FORMAT = "parquet"


def write_plain_parquet(table: pa.Table, target: Path) -> None:
    """A hive-partitioned Parquet dataset (region=NE/part-0.parquet, ...), PyArrow only."""
    ds.write_dataset(
        table,
        target,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("region", pa.string())]), flavor="hive"),
        existing_data_behavior="overwrite_or_ignore",
    )


def open_source(source: Path) -> ds.Dataset:
    """The Parquet dataset at ``source``, read with the healthcare schema.

    Hive partition directories (``region=NE``) are understood; a dataset that is not
    partitioned works too. Missing columns are refused rather than read as nulls.
    """
    spec = get_dataset(DATASET)
    partitioning = ds.partitioning(pa.schema([("region", pa.string())]), flavor="hive")
    found = ds.dataset(source, format="parquet", partitioning=partitioning)
    missing = [name for name in spec.schema.names if name not in found.schema.names]
    if missing:
        raise SystemExit(f"{source}: missing column(s) {', '.join(missing)}")
    return ds.dataset(source, format="parquet", partitioning=partitioning, schema=spec.schema)


def register(source: ds.Dataset, settings: Settings) -> int:
    """Load the dataset into govlab's Parquet table as a new version; returns the version.

    Rows are handed over in primary-key order, the order govlab's own seeds write (row
    group statistics on the key stay tight).
    """
    spec = get_dataset(DATASET)
    table = source.to_table().sort_by(spec.primary_key)
    info = get_engine(FORMAT, settings).write(spec, table.to_batches(max_chunksize=65_536))
    print(
        f"registered {info.rows} rows as {FORMAT} table {DATASET!r} version {info.version} "
        f"at {info.location} (partitions: {', '.join(info.details['partitions'])})\n"
    )
    return info.version


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="register this Parquet dataset instead")
    args = parser.parse_args(argv)

    def load(settings: Settings, staging: Path) -> None:
        source_dir = args.source
        if source_dir is None:
            source_dir = staging / "admissions"
            table = build_admissions(args.rows, args.seed)
            write_plain_parquet(table, source_dir)
            files = sorted(p.relative_to(source_dir) for p in source_dir.rglob("*.parquet"))
            print(f"wrote {table.num_rows} rows with PyArrow to {len(files)} file(s):")
            for path in files:
                print(f"  {path}")
            print()
        register(open_source(source_dir), settings)

    return run_loading_example(args, FORMAT, load)


if __name__ == "__main__":
    sys.exit(main())
