"""Build an Iceberg table with PyIceberg in a local catalog, register it with govlab, and
search it with RLS/CLS.

    .venv/bin/python examples/python/load_iceberg_example.py                  # temp data root
    .venv/bin/python examples/python/load_iceberg_example.py --data-dir DIR --rows 50000
    .venv/bin/python examples/python/load_iceberg_example.py \\
        --catalog-dir my_catalog/ --table staging.admissions                 # your own table

1. Build admissions in govlab's healthcare schema as a PyArrow table (generated rows plus
   three written by hand) and append them to an Iceberg table, identity-partitioned on
   region, in a local PyIceberg ``SqlCatalog`` of your own (a SQLite file and a
   warehouse directory), outside govlab. ``--catalog-dir``/``--table`` register an
   existing table of such a catalog instead.
2. Register it: stream the table's current snapshot into govlab's Iceberg engine,
   ``get_engine("iceberg", settings).write(spec, batches)``. govlab's catalog lives at
   ``<data root>/iceberg/catalog.db`` (warehouse ``<data root>/iceberg/warehouse``,
   namespace ``govlab``); the engine commits the rows there as ONE snapshot, so the
   table appears whole or not at all, and version numbers only grow (the API's page
   cache is keyed on them).
3. Search it in-process with ``govlab.search.GovernedSearch`` as a clinician (id=C007)
   and as a business user, and print what each is allowed to see.

The data root is ``--data-dir``, else ``GOVLAB_DATA_DIR``, else a temporary directory
that is removed at the end (``--keep`` keeps it). In an existing data root the
registered rows become the new current version of its healthcare table (the previous
snapshot stays in the table's history). Masks that need a key (hash, tokenize) use
``GOVLAB_SECRET``, else the key file in the data root.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
from _showcase import DATASET, build_admissions, example_parser, run_loading_example
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

from govlab.config import Settings
from govlab.engines import get_engine
from govlab.generators import get_dataset

FORMAT = "iceberg"
STAGING_TABLE = "staging.admissions"


def local_catalog(catalog_dir: Path) -> SqlCatalog:
    """A PyIceberg SQL catalog in one directory: catalog.db (SQLite) and warehouse/."""
    warehouse = catalog_dir / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        "local", uri=f"sqlite:///{catalog_dir / 'catalog.db'}", warehouse=warehouse.as_uri()
    )


def write_iceberg_table(table: pa.Table, catalog: SqlCatalog, identifier: str) -> Table:
    """Create ``identifier`` from the Arrow schema, partition it by region, append rows."""
    namespace = identifier.rsplit(".", 1)[0]
    catalog.create_namespace_if_not_exists(namespace)
    if catalog.table_exists(identifier):
        catalog.drop_table(identifier)
    iceberg_table = catalog.create_table(identifier, schema=table.schema)
    with iceberg_table.update_spec() as spec_update:
        spec_update.add_identity("region")
    iceberg_table.append(table)
    return iceberg_table


def read_source(iceberg_table: Table) -> pa.Table:
    """The table's current snapshot in the healthcare schema; missing columns refused."""
    spec = get_dataset(DATASET)
    rows = iceberg_table.scan().to_arrow()
    missing = [name for name in spec.schema.names if name not in rows.schema.names]
    if missing:
        raise SystemExit(f"{iceberg_table.name()}: missing column(s) {', '.join(missing)}")
    return rows.select(spec.schema.names).cast(spec.schema)


def register(rows: pa.Table, settings: Settings) -> int:
    """Load the rows into govlab's Iceberg table as one new snapshot; returns the version.

    Rows are handed over in primary-key order, the sort order govlab's tables declare.
    """
    spec = get_dataset(DATASET)
    batches = rows.sort_by(spec.primary_key).to_batches(max_chunksize=65_536)
    info = get_engine(FORMAT, settings).write(spec, batches)
    details = info.details
    partitions = ", ".join(f"{f['transform']}({f['name']})" for f in details["partition_spec"])
    print(
        f"registered {info.rows} rows as {FORMAT} table {details['identifier']} "
        f"version {info.version} (snapshot {details['snapshot_id']}, {details['files']} "
        f"data files, partitioned by {partitions})\n"
        f"  catalog   {details['catalog']}\n  warehouse {details['warehouse']}\n"
    )
    return info.version


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--catalog-dir", type=Path, help="register a table of this local SqlCatalog instead"
    )
    parser.add_argument("--table", default=STAGING_TABLE, help="namespace.table to register")
    args = parser.parse_args(argv)

    def load(settings: Settings, staging: Path) -> None:
        if args.catalog_dir is not None:
            source = local_catalog(args.catalog_dir).load_table(args.table)
        else:
            table = build_admissions(args.rows, args.seed)
            source = write_iceberg_table(table, local_catalog(staging), args.table)
            snapshot = source.current_snapshot()
            fields = ", ".join(f"{f.transform}({f.name})" for f in source.spec().fields)
            print(
                f"wrote {table.num_rows} rows with PyIceberg to {args.table} in a local "
                f"SqlCatalog (snapshot {snapshot.snapshot_id if snapshot else None}, "
                f"partitioned by {fields})\n"
            )
        register(read_source(source), settings)

    return run_loading_example(args, FORMAT, load)


if __name__ == "__main__":
    sys.exit(main())
