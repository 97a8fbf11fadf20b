"""Seeding: generate a dataset and write it as a new table version in one format.

One function serves the CLI, the API's worker jobs and the papermill notebook, so a
progress callback is the only thing that differs between them.

Rows are generated on a background thread a few batches ahead of the writer
(``Prefetch``). In a short CLI run that thread starts before the format's library is
imported, so the first batches are ready when the writer is (a first seed or a
same-layout reseed of an Iceberg table imports no PyIceberg at all:
``engines.iceberg_commit``); numpy and
Arrow release the GIL while they generate, and the batches are the same ones in the
same order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from queue import Empty, Full, Queue
from typing import Any

import pyarrow as pa

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

    def report(rows: int) -> None:
        if progress is not None:
            progress(rows, total)

    with closing(Prefetch(iter_batches(spec, total, seed))) as batches:
        if fmt == "iceberg":  # a new table or a reseed: no PyIceberg, no SQLAlchemy
            from govlab.engines.iceberg_commit import seed_without_pyiceberg

            created = seed_without_pyiceberg(settings, spec, batches, report)
            if created is not None:
                return created
        engine = get_engine(fmt, settings)  # imports the format's library meanwhile
        return engine.write(spec, batches, report)


class Prefetch:
    """Batches produced on a background thread, at most ``depth`` ahead of the reader.

    An exception of the source is raised to the reader. ``close`` (also when nothing
    was read) stops the thread and drops what it holds, so a failed or cancelled seed
    leaves no thread behind.
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], depth: int = 4) -> None:
        self._queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(batches,), name="govlab-generate", daemon=True
        )
        self._thread.start()

    def _produce(self, batches: Iterator[pa.RecordBatch]) -> None:
        try:
            for batch in batches:
                if not self._put(("batch", batch)):
                    return
            self._put(("done", None))
        except BaseException as exc:  # handed to the reader, raised there
            self._put(("error", exc))

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            kind, value = self._queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except Empty:
                break
        self._thread.join()


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
