"""Tables on an object store (``GOVLAB_TABLES_URI=s3://bucket/prefix``), for Daft.

Layout under the prefix mirrors the data root: ``delta/<dataset>`` (a Delta table),
``parquet/<dataset>/CURRENT`` + ``v<N>/`` (the same pointer protocol: a version's files
are written first, then the one-object ``CURRENT`` is replaced, which S3 does
atomically) and ``iceberg/warehouse`` (an Iceberg warehouse, its catalog a SQL catalog:
``GOVLAB_ICEBERG_CATALOG_URI``, by default the SQLite file under the data root).

Credentials are never read or passed here: every library (delta-rs, Arrow, PyIceberg,
Daft) and every Ray worker takes them from its own environment, so none reaches a
plan, a log or an error. :func:`publish` copies a pinned local version up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from govlab import config
from govlab.config import Settings
from govlab.errors import BadRequest

SQLITE_CATALOG = "catalog.db"


@dataclass(frozen=True)
class ObjectStore:
    """Where tables live and how to reach the store (never with credentials)."""

    uri: str  # s3://bucket/prefix, no trailing slash
    endpoint: str | None = None  # an S3-compatible server; None: AWS
    region: str = config.DEFAULT_S3_REGION

    @classmethod
    def from_env(cls) -> ObjectStore | None:
        uri = config.tables_uri()
        if uri is None:
            return None
        return cls(uri, config.s3_endpoint(), config.s3_region())

    @property
    def scheme(self) -> str:
        return urlparse(self.uri).scheme

    def table_uri(self, fmt: str, dataset: str) -> str:
        if fmt == "iceberg":
            return f"{self.uri}/iceberg/warehouse"
        return f"{self.uri}/{fmt}/{dataset}"

    # ----------------------------------------------------------- per library
    def delta_options(self) -> dict[str, str]:
        """delta-rs ``storage_options`` (credentials come from the environment)."""
        options = {"AWS_REGION": self.region}
        if self.endpoint:
            options["AWS_ENDPOINT_URL"] = self.endpoint
            options["AWS_ALLOW_HTTP"] = str(self.endpoint.startswith("http://")).lower()
        # one writer per table (the seed lock is local): no DynamoDB lock needed to publish
        options["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
        return options

    def arrow_filesystem(self) -> tuple[pafs.FileSystem, str]:
        """(filesystem, path inside it) for the prefix."""
        if self.scheme != "s3":
            filesystem, path = pafs.FileSystem.from_uri(self.uri)
            return filesystem, path
        parsed = urlparse(self.endpoint or "")
        s3 = pafs.S3FileSystem(
            region=self.region,
            endpoint_override=parsed.netloc or None,
            scheme=parsed.scheme or "https",
        )
        return s3, self.uri.removeprefix("s3://")

    def iceberg_properties(self) -> dict[str, str]:
        properties = {"s3.region": self.region}
        if self.endpoint:
            properties["s3.endpoint"] = self.endpoint
        return properties

    def daft_io_config(self) -> Any:
        import daft

        if self.scheme != "s3":
            return None
        parsed = urlparse(self.endpoint or "")
        s3 = daft.io.S3Config(
            region_name=self.region,
            endpoint_url=self.endpoint,
            use_ssl=parsed.scheme != "http",
            force_virtual_addressing=False,
        )
        return daft.io.IOConfig(s3=s3)


def iceberg_catalog(settings: Settings, store: ObjectStore | None) -> Any:
    """The Iceberg SQL catalog Daft reads through: ``GOVLAB_ICEBERG_CATALOG_URI``, else
    (tables on a store) ``<iceberg dir>/catalog-objectstore.db``, else the engine's own."""
    from pyiceberg.catalog.sql import SqlCatalog

    if store is None and config.iceberg_catalog_uri() is None:
        from govlab.engines.iceberg import IcebergEngine

        return IcebergEngine(settings).catalog
    root = settings.format_dir("iceberg")
    root.mkdir(parents=True, exist_ok=True)
    uri = config.iceberg_catalog_uri() or f"sqlite:///{root / ('objectstore-' + SQLITE_CATALOG)}"
    warehouse = config.iceberg_warehouse() or (
        store.table_uri("iceberg", "") if store else (root / "warehouse").as_uri()
    )
    properties = store.iceberg_properties() if store else {}
    catalog = SqlCatalog("govlab", uri=uri, warehouse=warehouse, **properties)
    catalog.create_namespace_if_not_exists("govlab")
    return catalog


# ---------------------------------------------------------------------- publish
def publish(settings: Settings, fmt: str, dataset: str, store: ObjectStore) -> int:
    """Copy the current local version of a table to the store as a new version there;
    returns the store's version. The rows are read from one pinned local version."""
    from govlab.catalog import get_dataset
    from govlab.engines import get_engine
    from govlab.policy.ast import TRUE

    spec = get_dataset(dataset)
    engine = get_engine(fmt, settings)
    version = engine.version(dataset)
    table = engine.scan(spec, spec.schema.names, TRUE, version)
    table = table.sort_by(spec.primary_key)
    if fmt == "delta":
        return _publish_delta(table, spec.partition_by, store.table_uri(fmt, dataset), store)
    if fmt == "parquet":
        return _publish_parquet(table, spec.partition_by, dataset, store)
    if fmt == "iceberg":
        return _publish_iceberg(table, dataset, settings, store)
    raise BadRequest(f"unknown format {fmt!r}")


def _publish_delta(table: pa.Table, partition: str, uri: str, store: ObjectStore) -> int:
    from deltalake import DeltaTable, write_deltalake

    write_deltalake(
        uri,
        table,
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=[partition],
        storage_options=store.delta_options(),
    )
    return int(DeltaTable(uri, storage_options=store.delta_options()).version())


def _publish_parquet(table: pa.Table, partition: str, dataset: str, store: ObjectStore) -> int:
    import pyarrow.dataset as ds

    from govlab.execution.sources import POINTER, read_pointer

    filesystem, root = store.arrow_filesystem()
    base = f"{root}/parquet/{dataset}"
    current = read_pointer(filesystem, base)
    new = (current or 0) + 1
    ds.write_dataset(
        table,
        f"{base}/v{new}",
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([table.schema.field(partition)]), flavor="hive"),
        basename_template="part-{i}.parquet",
        existing_data_behavior="delete_matching",
    )
    with filesystem.open_output_stream(f"{base}/{POINTER}") as out:  # one PUT: atomic
        out.write(f"v{new}\n".encode())
    return new


def _publish_iceberg(table: pa.Table, dataset: str, settings: Settings, store: ObjectStore) -> int:
    from govlab.execution.sources import iceberg_version

    catalog = iceberg_catalog(settings, store)
    identifier = ("govlab", dataset)
    if catalog.table_exists(identifier):
        iceberg = catalog.load_table(identifier)
        iceberg.overwrite(table)
    else:
        from govlab.engines.iceberg import iceberg_schema

        schema, write_schema = iceberg_schema(table.schema)
        iceberg = catalog.create_table(identifier, schema=schema)
        iceberg.append(table.cast(write_schema))
    return iceberg_version(catalog.load_table(identifier))
