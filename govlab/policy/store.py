"""Where a dataset's live policy comes from, and how edits become versions.

The shipped YAML under ``governance/`` is the baseline. An accepted edit is written
as a new numbered file under ``<data root>/policies/<dataset>/`` (temp file, fsync,
rename), so history is kept on disk and a failed edit never replaces the live text.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from govlab.catalog import get_dataset
from govlab.config import DEFAULT_GOVERNANCE_DIR, Settings
from govlab.config import governance_dir as governance_dir_from_env
from govlab.freshness import FileMemo
from govlab.policy import LoadedPolicy, parse_policy, validate_policy
from govlab.policy.access import Action, Grant

#: The shipped policies (``GOVLAB_GOVERNANCE_DIR`` points a store elsewhere).
GOVERNANCE_DIR = DEFAULT_GOVERNANCE_DIR


@dataclass(frozen=True)
class PolicyRevision:
    number: int
    path: Path


class PolicyStore:
    def __init__(self, settings: Settings, governance_dir: Path | None = None) -> None:
        self.settings = settings
        self.governance_dir = Path(governance_dir or governance_dir_from_env())
        self._validated: dict[str, LoadedPolicy] = {}
        self._live_paths: FileMemo[str, Path] = FileMemo()
        self._texts: FileMemo[Path, str] = FileMemo()
        self._source_paths: dict[str, tuple[Path, Path]] = {}

    def _dir(self, dataset: str) -> Path:
        get_dataset(dataset)  # dataset names are checked before they become paths
        return self.settings.data_dir / "policies" / dataset

    def revisions(self, dataset: str) -> list[PolicyRevision]:
        folder = self._dir(dataset)
        found = []
        for path in folder.glob("v*.yaml") if folder.exists() else []:
            stem = path.stem[1:]
            if stem.isdigit():
                found.append(PolicyRevision(int(stem), path))
        return sorted(found, key=lambda r: r.number)

    def current(self, dataset: str) -> LoadedPolicy:
        """The live policy. An edit by any process is seen by the next call: which file
        is live, and its text, are re-read whenever the revisions folder, the shipped
        file or the live file changes (``govlab.freshness``: a stat per file otherwise);
        parsing and validating is done only when the text differs from the last one."""
        path = self._live_paths.get(dataset, self._sources(dataset), lambda: self._live(dataset))
        text = self._texts.get(path, (path,), lambda: path.read_text(encoding="utf-8"))
        cached = self._validated.get(dataset)
        if cached is not None and cached.text == text:
            return cached
        loaded = validate_policy(parse_policy(text), get_dataset(dataset))
        self._validated[dataset] = loaded
        return loaded

    def _sources(self, dataset: str) -> tuple[Path, Path]:
        """Where a dataset's live policy can come from: its revisions folder, the shipped
        file (paths built once per dataset: this is on every cache hit's path)."""
        known = self._source_paths.get(dataset)
        if known is None:
            known = (self._dir(dataset), self.governance_dir / f"{dataset}.yaml")
            self._source_paths[dataset] = known
        return known

    def _live(self, dataset: str) -> Path:
        revisions = self.revisions(dataset)
        return revisions[-1].path if revisions else self.governance_dir / f"{dataset}.yaml"

    def put(self, grant: Grant, text: str) -> tuple[int, LoadedPolicy]:
        """Validate, then store as the next revision; raises PolicyError and stores nothing.

        Only a ``policy.edit`` grant (``govlab.policy.access.authorize``) opens the store.
        """
        dataset = grant.dataset
        grant.require(Action.EDIT_POLICY, dataset)
        loaded = validate_policy(parse_policy(text), get_dataset(dataset))
        folder = self._dir(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".lock")):
            revisions = self.revisions(dataset)
            number = (revisions[-1].number if revisions else 0) + 1
            _atomic_write(folder / f"v{number}.yaml", text)
        return number, loaded


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
