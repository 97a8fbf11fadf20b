"""Batch seeding through papermill: every run leaves an executed notebook as its record.

``notebooks/seed.ipynb`` seeds one table (its ``parameters`` cell holds dataset, size,
format, seed and data_dir) and prints the parameters, the timing, the row count, the
table version and, for Delta, the protocol; then what makes the run checkable later
(``govlab.lab.records``): package versions, the git commit, the policy version, the
table's schema and size on disk, and a row checksum that is the same in every format
for the same dataset, size and seed. Streams are coalesced as the notebook is written,
so the record holds one progress bar per seed (its final state), not one per update.
Each run here executes a copy of it with papermill and keeps the result as
``runs/<dataset>-<size>-<format>-<timestamp>.ipynb``.
A batch runs its notebooks one after another in this one process.

The kernel is always this interpreter (``sys.executable``), whatever ``python3``
kernelspec happens to be installed for the user or the system: a batch started from
the project's venv seeds with the project's venv, on a fresh machine too.

    govlab seed --record --dataset healthcare --size tiny --format iceberg
    govlab seed --dataset healthcare --batch sizes=tiny,small formats=delta,parquet

It is apart from ``govlab.seeding`` (which it runs inside the notebook) because it
imports Jupyter's kernel machinery: a seed worker must not pay that on every job.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from traitlets import default

from govlab.config import Settings
from govlab.engines import FORMATS
from govlab.errors import BadRequest, GovlabError
from govlab.generators import get_dataset
from govlab.generators.base import size_rows

SEED_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "seed.ipynb"
RUNS_DIR = Path("runs")
KERNEL_NAME = "python3"
START_TIMEOUT_S = 120


class SeedRunFailed(GovlabError):
    """A cell of the seed notebook failed; ``path`` is the executed notebook, error included."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class CurrentEnvKernelSpecManager(KernelSpecManager):
    """Every kernel name resolves to an IPython kernel on this very interpreter."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        from ipykernel.kernelspec import RESOURCES, get_kernel_dict

        return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())


class CurrentEnvKernelManager(AsyncKernelManager):
    """The kernel manager papermill (through nbclient) starts the seed kernels with.

    Where libzmq has CurveZMQ, the kernel's local TCP channels are encrypted too.
    """

    @default("kernel_spec_manager")
    def _current_env_spec_manager(self) -> KernelSpecManager:
        return CurrentEnvKernelSpecManager(data_dir=self.data_dir)

    @default("transport_encryption")
    def _encrypt_when_possible(self) -> str:
        import zmq

        return "auto" if zmq.has("curve") else "disabled"


def _check(dataset: str, size: str, fmt: str) -> None:
    """Fail before a kernel starts, with the same messages as the API and the CLI."""
    get_dataset(dataset)
    size_rows(size)
    if fmt not in FORMATS:
        raise BadRequest(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")


def _output_path(runs_dir: Path, dataset: str, size: str, fmt: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{dataset}-{size}-{fmt}-{stamp}"
    path = runs_dir / f"{stem}.ipynb"
    for n in itertools.count(2):  # two tiny runs can finish within the same second
        if not path.exists():
            return path
        path = runs_dir / f"{stem}-{n}.ipynb"
    raise AssertionError("unreachable")  # pragma: no cover


def run_seed_notebook(
    dataset: str,
    size: str,
    format: str,
    seed: int = 42,
    data_dir: str | Path | None = None,
    runs_dir: Path = RUNS_DIR,
    notebook: Path = SEED_NOTEBOOK,
    *,
    echo: bool = False,
) -> Path:
    """Execute the seed notebook once; return the executed notebook's path.

    ``data_dir`` None means the usual data root (``GOVLAB_DATA_DIR``, else
    ``datasets/generated``), resolved here and injected, so the record names it.
    ``echo`` streams the kernel's output (the tqdm bar, the summary) to this terminal.
    A failing cell raises SeedRunFailed, whose ``path`` is the notebook with the error.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    _check(dataset, size, format)
    root = Settings.from_env(data_dir).data_dir
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    output = _output_path(runs_dir, dataset, size, format)
    parameters: dict[str, Any] = {
        "dataset": dataset,
        "size": size,
        "format": format,
        "seed": int(seed),
        "data_dir": str(root),
    }
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            language="python",
            progress_bar=False,
            stdout_file=sys.stdout if echo else None,
            stderr_file=sys.stderr if echo else None,
            start_timeout=START_TIMEOUT_S,
            cwd=str(Path(notebook).resolve().parent),
            kernel_manager_class=CurrentEnvKernelManager,
            coalesce_streams=True,  # one tqdm bar per seed in the record, not one per update
        )
    except PapermillExecutionError as exc:
        raise SeedRunFailed(f"seed notebook failed: {exc.ename}: {exc.evalue}", output) from exc
    return output


def run_batch(
    datasets: Iterable[str],
    sizes: Iterable[str],
    formats: Iterable[str],
    seed: int = 42,
    data_dir: str | Path | None = None,
    runs_dir: Path = RUNS_DIR,
    notebook: Path = SEED_NOTEBOOK,
    *,
    echo: bool = False,
    on_done: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Every (dataset, size, format) combination, in order, in this one process.

    All combinations are checked before the first run starts; a failing run stops the
    batch (SeedRunFailed). ``on_done`` is called with each executed notebook's path.
    """
    combos = list(itertools.product(list(datasets), list(sizes), list(formats)))
    for dataset, size, fmt in combos:
        _check(dataset, size, fmt)
    paths: list[Path] = []
    for dataset, size, fmt in combos:
        path = run_seed_notebook(dataset, size, fmt, seed, data_dir, runs_dir, notebook, echo=echo)
        paths.append(path)
        if on_done is not None:
            on_done(path)
    return paths


_BATCH_KEYS = {
    "dataset": "datasets",
    "datasets": "datasets",
    "size": "sizes",
    "sizes": "sizes",
    "format": "formats",
    "formats": "formats",
}


def parse_batch(items: Sequence[str]) -> dict[str, list[str]]:
    """``["sizes=tiny,small", "formats=delta"]`` -> ``{"sizes": [...], "formats": [...]}``."""
    axes: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        axis = _BATCH_KEYS.get(key.strip())
        names = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or axis is None or not names:
            raise BadRequest(f"--batch expects datasets=a,b sizes=a,b formats=a,b; got {item!r}")
        axes[axis] = names
    return axes


def run_recorded(args: argparse.Namespace) -> int:
    """The recorded seed runs ``govlab seed --record`` / ``--batch`` asked for."""
    axes = parse_batch(args.batch or [])
    try:
        run_batch(
            axes.get("datasets", [args.dataset]),
            axes.get("sizes", [args.size]),
            axes.get("formats", [args.format]),
            seed=args.seed,
            data_dir=args.data_dir,
            runs_dir=args.runs_dir or RUNS_DIR,
            notebook=args.notebook or SEED_NOTEBOOK,
            echo=not args.quiet,
            on_done=lambda path: print(path, flush=True),
        )
    except SeedRunFailed as exc:
        print(f"govlab: {exc} (see {exc.path})", file=sys.stderr)
        return 1
    return 0
