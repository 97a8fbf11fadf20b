"""Governed export: every row a principal may see, masked, written to Parquet by Daft.

The bulk work runs where Daft runs (in-process, or on the Ray workers): the scan of the
pinned version, the row filter, and the masks, each a Daft batch UDF that calls the same
``govlab.masks.apply_mask`` the search uses. A UDF gets its keys on the worker, from
``GOVLAB_SECRET`` (or the data root's key file), derived there once per process: the
plan carries the mask's name, its parameters, the dataset and the column, never a key.

The export is written into a staging directory that is renamed into place at the end
(on an object store, where there is no rename, the manifest ``_govlab_export.json`` is
written last: a directory without it is incomplete). A failed export leaves no target.
Output files are named by Daft (UUIDs) and are not partitioned: a partition directory
would name a raw value of a column the role may see masked.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from govlab import config
from govlab.catalog import get_dataset
from govlab.config import Settings
from govlab.errors import BadRequest, GovlabError
from govlab.execution.daft import DaftFailed, ensure_runner, where
from govlab.execution.objectstore import ObjectStore
from govlab.execution.sources import import_daft, source
from govlab.keys import MaskKeys, derive_keys
from govlab.masks import apply_mask
from govlab.policy.access import Action, Grant
from govlab.policy.ast import Cmp as CmpNode
from govlab.policy.ast import Expr, IsNull, and_
from govlab.seeding import ProgressFn  # (rows written, rows to write)

MANIFEST = "_govlab_export.json"

daft = import_daft()


@dataclass(frozen=True)
class ExportResult:
    target: str
    dataset: str
    format: str
    version: int
    role: str
    policy_version: str
    rows: int
    files: int
    masked: tuple[str, ...]
    seconds: float

    @property
    def rows_per_sec(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float(self.rows)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["masked"] = list(self.masked)
        data["rowsPerSec"] = round(self.rows_per_sec)
        return data


@cache
def _worker_keys(data_dir: str) -> MaskKeys:
    """The mask keys in this (worker) process, derived once from its own secret."""
    return derive_keys(config.worker_secret(Path(data_dir))).masks


@daft.func.batch(return_dtype=daft.DataType.string())
def masked(values: Any, mask: str, params: str, dataset: str, column: str, data_dir: str) -> Any:
    """One mask over one batch of raw values, on the worker (``govlab.masks``)."""
    keys = _worker_keys(data_dir)
    raw = values.to_arrow()
    return apply_mask(mask, json.loads(params), raw, keys, dataset=dataset, column=column)


def export_parquet(
    settings: Settings,
    grant: Grant,
    fmt: str,
    target: str,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Write what ``grant`` (an ``export`` grant) lets its principal see, masked."""
    dataset = grant.dataset
    grant.require(Action.EXPORT, dataset)
    ensure_runner()
    started = time.perf_counter()
    try:
        return _export(settings, grant, fmt, target, progress, started)
    except (GovlabError, FileExistsError):
        raise
    except Exception as exc:  # Daft/Ray text can quote values: the type only
        raise DaftFailed(f"the export failed ({type(exc).__name__})") from None


def _export(
    settings: Settings,
    grant: Grant,
    fmt: str,
    target: str,
    progress: ProgressFn | None,
    started: float,
) -> ExportResult:
    spec = get_dataset(grant.dataset)
    plan = grant.bound_plan
    tables = source(fmt, settings)
    version = tables.version(spec.name)
    frame = tables.frame(spec, version)
    visible = where(frame, plan.row_filter)
    slices = _slices(visible, spec.partition_by)
    total = sum(n for _, n in slices)
    projection = _projection(spec.schema, plan.mask_plan, spec.name, settings.data_dir)
    local = "://" not in target
    staging = _staging(target) if local else target
    # the target's own store settings (it may be a bucket while the tables are local)
    out_store = None if local else ObjectStore(target, config.s3_endpoint(), config.s3_region())
    io_config = out_store.daft_io_config() if out_store else None
    written = files = 0
    try:
        for value, rows in slices:
            part = where(frame, and_(plan.row_filter, _equals(spec, value)))
            result = part.select(*projection).write_parquet(staging, io_config=io_config)
            files += len(result.to_pydict().get("path", []))
            written += rows
            if progress is not None:
                progress(written, total)
        result_info = ExportResult(
            target=target,
            dataset=spec.name,
            format=fmt,
            version=version,
            role=plan.role,
            policy_version=grant.policy.version,
            rows=written,
            files=files,
            masked=tuple(sorted(plan.masks)),
            seconds=time.perf_counter() - started,
        )
        _write_manifest(staging, result_info, out_store)
        if local:
            Path(staging).rename(target)
    except BaseException:
        if local:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return result_info


def _slices(visible: Any, column: str) -> list[tuple[Any, int]]:
    """(partition value, visible rows) per partition: the export's units of progress."""
    counts = visible.groupby(column).agg(daft.col(column).count("all").alias("n")).to_arrow()
    pairs = zip(counts.column(column).to_pylist(), counts.column("n").to_pylist(), strict=True)
    return sorted(((v, int(n)) for v, n in pairs), key=lambda p: (p[0] is None, str(p[0])))


def _equals(spec: Any, value: Any) -> Expr:
    column = spec.partition_by
    if value is None:
        return IsNull(column)
    return CmpNode(column, "==", value, spec.schema.field(column).type)


def _projection(
    schema: pa.Schema,
    mask_plan: dict[str, tuple[str, Any]],
    dataset: str,
    data_dir: Path,
) -> list[Any]:
    """Every column in schema order; a masked one through the mask UDF (named as before)."""
    columns = []
    for field in schema:
        column = daft.col(field.name)
        if field.name in mask_plan:
            name, params = mask_plan[field.name]
            column = masked(
                column, name, json.dumps(dict(params)), dataset, field.name, str(data_dir)
            ).alias(field.name)
        columns.append(column)
    return columns


def _staging(target: str) -> str:
    path = Path(target)
    if path.exists():
        raise FileExistsError(f"export target {target} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    return str(staging)


def _write_manifest(staging: str, result: ExportResult, store: ObjectStore | None) -> None:
    """Written last: on an object store its presence is what says the export is whole."""
    body = json.dumps(result.to_json(), indent=2).encode()
    if store is None:
        (Path(staging) / MANIFEST).write_bytes(body)
        return
    filesystem, path = store.arrow_filesystem()
    with filesystem.open_output_stream(path.rstrip("/") + "/" + MANIFEST) as out:
        out.write(body)


def check_target(target: str) -> str:
    if not target or target.endswith("/"):
        raise BadRequest("the export target is a directory path or URI, without a final /")
    return target
