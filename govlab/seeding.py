"""Seeding: generate a dataset and write it as a new table version in one format.

One function serves the CLI, the API's worker jobs and the papermill notebook, so a
progress callback is the only thing that differs between them.
"""

from __future__ import annotations

from collections.abc import Callable

from govlab.config import Settings
from govlab.engines import get_engine
from govlab.engines.base import TableInfo
from govlab.generators import get_dataset, iter_batches, size_rows

ProgressFn = Callable[[int, int], None]
"""(rows_written, total_rows)."""


def seed_table(
    dataset: str,
    size: str,
    fmt: str,
    settings: Settings,
    seed: int = 42,
    progress: ProgressFn | None = None,
) -> TableInfo:
    spec = get_dataset(dataset)
    total = size_rows(size)
    engine = get_engine(fmt, settings)

    def report(rows: int) -> None:
        if progress is not None:
            progress(rows, total)

    return engine.write(spec, iter_batches(spec, total, seed), report)


def tqdm_progress(description: str) -> tuple[ProgressFn, Callable[[], None]]:
    """A progress callback drawing a tqdm bar (auto picks the notebook widget or text)."""
    from tqdm.auto import tqdm

    bar = None

    def update(rows: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="rows", unit_scale=True)
        bar.update(rows - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close
