"""The one small interface every table format implements.

The governed search only ever talks to this interface: it hands an engine a bound
row filter (our own AST) and the columns it needs, and gets Arrow back. Each engine
decides how much of the filter it can push into its scan; whatever it cannot push it
must still apply before returning (the contract is: returned rows satisfy the filter).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from govlab.catalog import DatasetSpec

if TYPE_CHECKING:  # the write path imports neither the policy layer nor pyarrow.dataset
    from govlab.engines.snapshot import Snapshot
    from govlab.policy.ast import Expr

RowsWrittenFn = Callable[[int], None]
"""Called by an engine's write with the number of rows written so far (monotonic);
``govlab.seeding.ProgressFn`` adds the total for its callers."""


@dataclass(frozen=True)
class TableInfo:
    format: str
    dataset: str
    version: int
    rows: int
    location: str
    details: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    name: str

    def write(
        self,
        spec: DatasetSpec,
        batches: Iterable[pa.RecordBatch],
        progress: RowsWrittenFn | None = None,
    ) -> TableInfo:
        """Replace the table with these rows as one new version, atomically, under a lock."""
        ...

    def exists(self, dataset: str) -> bool: ...

    def version(self, dataset: str) -> int:
        """Current version number; raises TableNotFound when never seeded."""
        ...

    def version_witnesses(self, dataset: str) -> tuple[Path, ...]:
        """Files whose stat changes whenever :meth:`version` would answer differently
        (a commit adds a log entry, moves a pointer, updates a catalog): what lets a
        cache hit skip reading the version (``govlab.freshness``)."""
        ...

    def info(self, dataset: str) -> TableInfo: ...

    def scan(
        self,
        spec: DatasetSpec,
        columns: list[str],
        row_filter: Expr,
        version: int | None = None,
    ) -> pa.Table:
        """Rows satisfying row_filter (pushed down where the format allows), given columns."""
        ...

    def count(self, spec: DatasetSpec, row_filter: Expr, version: int | None = None) -> int: ...

    def snapshot(self, spec: DatasetSpec, version: int | None = None) -> Snapshot | None:
        """The version as an Arrow snapshot (``engines.snapshot``) for the fast
        primary-key page path, or None where only ``scan`` applies."""
        ...
