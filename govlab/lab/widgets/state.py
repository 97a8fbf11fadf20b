"""The lab's state: a plain dataclass the widgets read and write, with no ipywidgets in it.

Every rule of the stepper lives here, as pure methods that tests call directly:

* ``STAGES`` are the eight steps, in order. ``completed(stage)`` says whether a step's
  choice or result is in place *for the current earlier choices*: results remember the
  key they were computed for (dataset, format, role, attributes, policy version), so
  changing an earlier choice makes a later result stale and its stage incomplete again.
* ``can_enter(i)`` holds when every stage before ``i`` is completed; ``next()``,
  ``back()`` and ``go(i)`` move only where ``can_enter`` allows and return ``False``
  (changing nothing) otherwise, so no stage can be skipped.
* A stage with a default (Format: Delta; Role: admin) is complete only once it has been
  shown: a learner must see the choice before the stepper counts it as made.
* What the lab knows of the live tables (``tables``: rows and version per dataset and
  format, from the API, a finished seed or a search) decides whether a validation is
  stale (it was run against another table version) and whether "use the existing
  table" may continue (only when the table has the chosen size).

Policy text is checked locally with the same code the server runs (``parse_policy``,
``validate_policy``, ``compile_access``), which is what makes the editor's validation
and the preview live; the server stays the authority when the text is saved.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from govlab.engines import FORMAT_DEFS, FORMATS
from govlab.errors import GovlabError, PolicyError
from govlab.generators import DATASETS, SIZES
from govlab.lab.compare import default_roles, unsearched
from govlab.policy import (
    AccessPlan,
    LoadedPolicy,
    Principal,
    compile_access,
    parse_policy,
    validate_policy,
)
from govlab.policy.access import Action, permits

STAGES: tuple[str, ...] = (
    "dataset",
    "size",
    "format",
    "governance",
    "role",
    "validate",
    "hydrate",
    "search",
)
STAGE_TITLES: dict[str, str] = {name: name.capitalize() for name in STAGES}

#: The format buttons' labels, from the formats registry (``govlab.engines.FORMAT_DEFS``).
FORMAT_LABELS: dict[str, str] = {name: d.label for name, d in FORMAT_DEFS.items()}

#: The role the lab starts as (every shipped policy defines it, and it may edit policies).
DEFAULT_ROLE = "admin"

#: Attributes each role's row filter refers to, as the lab pre-fills them.
DEFAULT_ATTRS: dict[str, dict[str, Any]] = {
    "clinician": {"id": "C007"},
    "analyst": {"allowed_regions": ["NE", "SW"]},
    "risk_officer": {"allowed_regions": ["NE", "SW"]},
    "support_agent": {"region": "W"},
}

TERMINAL_JOB_STATES = frozenset({"completed", "failed", "cancelled"})


def stage_index(stage: int | str) -> int:
    """The index of a stage given by index or name; ValueError for anything else."""
    if isinstance(stage, str):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
        return STAGES.index(stage)
    if isinstance(stage, bool) or not 0 <= stage < len(STAGES):
        raise ValueError(f"stage index must be between 0 and {len(STAGES) - 1}")
    return stage


def canonical_attrs(attrs: Mapping[str, Any]) -> str:
    return json.dumps(attrs, sort_keys=True, separators=(",", ":"))


@dataclass
class LabState:
    # -- choices
    dataset: str | None = None
    size: str | None = None
    format: str = "delta"
    role: str = DEFAULT_ROLE
    role_attrs: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_ATTRS)
    )
    attrs_error: str | None = None
    # -- governance: the editor buffer and what the server holds
    policy_text: str | None = None
    policy_saved_text: str | None = None
    policy_dataset: str | None = None
    policy_version: str | None = None
    policy_loaded_as: str | None = None
    can_edit: bool = False
    policy_errors: list[str] = field(default_factory=list)
    # -- results, each with the key it was computed for
    validated: dict[str, Any] | None = None
    validated_key: tuple[Any, ...] | None = None
    job_id: str | None = None
    job_key: tuple[Any, ...] | None = None
    progress: dict[str, Any] | None = None
    job_role: str | None = None  # whose token queued the job: only it (or an editor) follows it
    existing_key: tuple[Any, ...] | None = None
    search_q: str = ""
    search_page: int = 1
    page_size: int = 10
    last_page: dict[str, Any] | None = None
    last_cache: str | None = None
    search_key: tuple[Any, ...] | None = None
    # -- what the lab knows of the live tables: (dataset, format) -> {rows, tableVersion},
    # None when there is no table; a missing key means not known yet
    tables: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    compare_roles: list[str] | None = None
    # -- where the stepper is, and the furthest stage shown so far
    stage: int = 0
    reached: int = 0
    _parsed: tuple[tuple[str | None, str], LoadedPolicy | None, list[str]] | None = field(
        default=None, repr=False, compare=False
    )

    # ------------------------------------------------------------------ choices
    def set_dataset(self, name: str | None) -> None:
        """A new dataset starts governance afresh: its policy, the role and later results."""
        if name is not None and name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; datasets: {', '.join(DATASETS)}")
        if name == self.dataset:
            return
        self.dataset = name
        self.policy_text = self.policy_saved_text = self.policy_dataset = None
        self.policy_version = self.policy_loaded_as = None
        self.policy_errors = []
        self.can_edit = False
        self.role = DEFAULT_ROLE
        self.attrs_error = None

    def set_size(self, size: str | None) -> None:
        if size is not None and size not in SIZES:
            raise ValueError(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")
        self.size = size

    def set_format(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        self.format = fmt

    def set_role(self, role: str) -> None:
        if role != self.role:
            self.compare_roles = None  # the comparison starts from the new acting role
        self.role = role
        self.attrs_error = None

    @property
    def attrs(self) -> dict[str, Any]:
        return self.role_attrs.get(self.role, {})

    def attrs_text(self, role: str | None = None) -> str:
        return json.dumps(self.role_attrs.get(role or self.role, {}))

    def set_attrs_text(self, text: str) -> str | None:
        """Parse a JSON object of attributes for the current role; return the error, if any."""
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            self.attrs_error = f"attributes are not valid JSON ({exc.msg})"
            return self.attrs_error
        if not isinstance(value, dict):
            self.attrs_error = 'attributes must be a JSON object, e.g. {"id": "C007"}'
            return self.attrs_error
        self.role_attrs[self.role] = value
        self.attrs_error = None
        return None

    # ------------------------------------------------------------------ policy
    def policy_loaded(
        self, dataset: str, text: str, version: str, can_edit: bool, role: str
    ) -> None:
        """The server's current policy, as read by ``role`` (``canEdit`` is its answer)."""
        self.policy_dataset = dataset
        self.policy_text = self.policy_saved_text = text
        self.policy_version = version
        self.can_edit = can_edit
        self.policy_loaded_as = role
        self.policy_errors = self.check_policy(text)

    def edit_policy(self, text: str) -> list[str]:
        """Live validation of the editor buffer: the list of problems (empty when valid)."""
        self.policy_text = text
        self.policy_errors = self.check_policy(text)
        return self.policy_errors

    def policy_saved(self, text: str, version: str) -> None:
        self.policy_text = self.policy_saved_text = text
        self.policy_version = version
        self.policy_errors = self.check_policy(text)

    @property
    def policy_dirty(self) -> bool:
        return self.policy_text != self.policy_saved_text

    def check_policy(self, text: str) -> list[str]:
        return self._parse(text)[2]

    def parsed_policy(self) -> LoadedPolicy | None:
        """The editor's policy when it is valid for the chosen dataset, else None."""
        if self.policy_text is None:
            return None
        return self._parse(self.policy_text)[1]

    def _parse(self, text: str) -> tuple[tuple[str | None, str], LoadedPolicy | None, list[str]]:
        key = (self.dataset, text)
        if self._parsed is not None and self._parsed[0] == key:
            return self._parsed
        if self.dataset is None:
            return (key, None, ["choose a dataset first"])
        try:
            loaded = validate_policy(parse_policy(text), DATASETS[self.dataset])
            result: tuple[tuple[str | None, str], LoadedPolicy | None, list[str]] = (
                key,
                loaded,
                [],
            )
        except PolicyError as exc:
            result = (key, None, [str(r) for r in exc.reasons] or [str(exc)])
        self._parsed = result
        return result

    def policy_roles(self) -> list[str]:
        loaded = self.parsed_policy()
        return [r.id for r in loaded.policy.roles] if loaded else []

    def plan_for(self, role: str, attrs: Mapping[str, Any] | None = None) -> AccessPlan:
        """Bind one role of the editor's policy locally; raises GovlabError when it denies."""
        loaded = self.parsed_policy()
        if loaded is None or self.dataset is None:
            raise PolicyError("the policy is not valid")
        if attrs is None:
            attrs = self.role_attrs.get(role, {})
        return compile_access(loaded, DATASETS[self.dataset], Principal(role, attrs))

    def role_problem(self) -> str | None:
        """Why the chosen role and attributes cannot be used, or None."""
        if self.attrs_error:
            return self.attrs_error
        if self.role not in self.policy_roles():
            return f"role {self.role!r} is not defined in the {self.dataset} policy"
        try:
            self.plan_for(self.role, self.attrs)
        except GovlabError as exc:
            return str(exc)
        return None

    def role_description(self, role: str | None = None) -> str:
        """The policy's ``description`` of a role ("" when it has none)."""
        loaded = self.parsed_policy()
        entry = loaded.policy.role(role or self.role) if loaded else None
        return (entry.description or "") if entry else ""

    def plans(self) -> dict[str, tuple[str, frozenset[str]]]:
        """role -> (bound filter, masked columns) for every role that binds with the lab's
        attributes (locally, from the editor's policy: for choosing, never for data)."""
        found = {}
        for role in self.policy_roles():
            try:
                plan = self.plan_for(role)
            except GovlabError:
                continue
            found[role] = (plan.filter_sql, frozenset(plan.masks))
        return found

    def roles_to_compare(self) -> list[str]:
        """The learner's choice if still valid, else the acting role and the most different."""
        plans = self.plans()
        chosen = [r for r in (self.compare_roles or []) if r in plans]
        return chosen or default_roles(self.policy_roles(), self.role, plans)

    def search_columns(self, role: str | None = None) -> tuple[list[str], list[str]]:
        """(searched, not searched because masked) for a role, from the policy."""
        if self.dataset is None:
            return [], []
        masks = self.mask_descriptions(role)
        return unsearched(DATASETS[self.dataset].searchable, masks)

    def mask_descriptions(self, role: str | None = None) -> dict[str, str]:
        """Column -> mask (``hash``, ``redact_part(keep=4)``) for a role (default: acting)."""
        try:
            plan = self.plan_for(role or self.role)
        except GovlabError:
            return {}
        return {c: m.describe() for c, m in plan.masks.items()}

    # ------------------------------------------------------------------ result keys
    def principal_key(self) -> tuple[Any, ...]:
        """What a validation or a search page depends on."""
        return (
            self.dataset,
            self.format,
            self.role,
            canonical_attrs(self.attrs),
            self.policy_version,
        )

    def table_key(self) -> tuple[Any, ...]:
        return (self.dataset, self.size, self.format)

    def set_validated(self, result: dict[str, Any]) -> None:
        self.validated = result
        self.validated_key = self.principal_key()
        if result.get("tableVersion") is not None and result.get("dataset") is not None:
            self.note_version(result["dataset"], result.get("format", self.format), result)

    # ------------------------------------------------------------------ tables
    def note_table(self, dataset: str, fmt: str, info: dict[str, Any] | None) -> None:
        """What the API said the live table is (None: there is none)."""
        self.tables[(dataset, fmt)] = (
            None
            if info is None
            else {"rows": info.get("rows"), "tableVersion": info["tableVersion"]}
        )

    def note_version(self, dataset: str, fmt: str, answer: dict[str, Any]) -> None:
        """A validation or a page names the table version it read: newer than what the
        lab knew means someone reseeded, and the row count is no longer known."""
        known = self.tables.get((dataset, fmt))
        version = answer["tableVersion"]
        if known is None or known.get("tableVersion") != version:
            self.tables[(dataset, fmt)] = {"rows": None, "tableVersion": version}

    def table(self) -> dict[str, Any] | None:
        """The live table of the chosen dataset and format, if the lab knows it."""
        if self.dataset is None:
            return None
        return self.tables.get((self.dataset, self.format))

    def table_known(self) -> bool:
        return self.dataset is not None and (self.dataset, self.format) in self.tables

    def validation_stale(self) -> bool:
        """The validation read another table version than the live one (or none)."""
        table = self.table()
        if not self.completed("validate") or self.validated is None or table is None:
            return False
        return self.validated.get("tableVersion") != table["tableVersion"]

    def existing_matches_size(self) -> bool:
        """The live table has exactly the chosen size's rows."""
        table = self.table()
        return bool(table) and self.size in SIZES and table.get("rows") == SIZES[self.size]

    def seeding_role(self) -> str:
        """Hydrating rewrites a shared table, an operator's act (``can_seed``): the lab
        seeds as the chosen role when the policy lets it, else as the first role that may
        (the server decides again; this only picks whose token to send)."""
        if self.policy_saved_text is None or self.dataset is None:
            return self.role
        try:
            loaded = parse_policy(self.policy_saved_text)
        except PolicyError:
            return self.role
        candidates = [self.role] + [r.id for r in loaded.policy.roles if r.id != self.role]
        for role in candidates:
            principal = Principal(role, self.role_attrs.get(role, {}))
            if permits(loaded, principal, Action.SEED, self.dataset):
                return role
        return self.role

    def job_started(self, job_id: str, role: str | None = None) -> None:
        self.job_id = job_id
        self.job_role = role or self.role
        self.job_key = self.table_key()
        self.existing_key = None
        self.progress = {"status": "queued", "pct": 0}

    def job_progress(self, job_id: str, record: dict[str, Any]) -> None:
        if job_id != self.job_id:
            return
        self.progress = record
        if record.get("status") == "completed" and self.job_key is not None:
            dataset, _, fmt = self.job_key
            rows = record.get("totalRows") or record.get("rowsWritten")
            self.tables[(dataset, fmt)] = {"rows": rows, "tableVersion": record.get("tableVersion")}

    @property
    def job_running(self) -> bool:
        return self.progress is not None and self.progress.get("status") not in (
            TERMINAL_JOB_STATES
        )

    def use_existing_table(self) -> bool:
        """Skip reseeding, only when the live table has the chosen size: a 50,000-row
        table is not what a learner who chose tiny should be searching."""
        if not self.existing_matches_size():
            return False
        self.existing_key = self.table_key()
        return True

    def set_page(self, page: dict[str, Any], cache: str) -> None:
        self.last_page = page
        self.last_cache = cache
        self.search_page = int(page.get("page", 1))
        self.search_key = self.principal_key()
        if self.dataset is not None and page.get("tableVersion") is not None:
            self.note_version(self.dataset, self.format, page)

    def clear_page(self) -> None:
        """A failed search leaves nothing of the previous one on screen."""
        self.last_page = None
        self.last_cache = None
        self.search_key = None

    # ------------------------------------------------------------------ stages
    def completed(self, stage: int | str) -> bool:
        name = STAGES[stage_index(stage)]
        if name == "dataset":
            return self.dataset in DATASETS
        if name == "size":
            return self.size in SIZES
        if name == "format":
            return self.format in FORMATS and self.visited(name)
        if name == "governance":
            return (
                self.dataset is not None
                and self.policy_dataset == self.dataset
                and self.policy_text is not None
                and not self.policy_errors
                and not self.policy_dirty
            )
        if name == "role":
            return self.visited(name) and self.role_problem() is None
        if name == "validate":
            return self.validated is not None and self.validated_key == self.principal_key()
        if name == "hydrate":
            seeded = (
                self.job_key == self.table_key()
                and self.progress is not None
                and self.progress.get("status") == "completed"
            )
            return seeded or self.existing_key == self.table_key()
        return self.last_page is not None and self.search_key == self.principal_key()

    def visited(self, stage: int | str) -> bool:
        """Whether the stage has been shown (the furthest stage reached, or the current)."""
        return max(self.reached, self.stage) >= stage_index(stage)

    @property
    def role_chosen(self) -> bool:
        """The learner has been to the Role stage (before it, the lab acts as admin)."""
        return self.visited("role")

    @property
    def acting_shown(self) -> bool:
        """Stages after Role carry the "acting as" badge."""
        return self.stage > STAGES.index("role")

    def can_enter(self, stage: int | str) -> bool:
        index = stage_index(stage)
        return all(self.completed(i) for i in range(index))

    def first_incomplete(self) -> int:
        return next((i for i in range(len(STAGES)) if not self.completed(i)), len(STAGES) - 1)

    def next(self) -> bool:
        if self.stage >= len(STAGES) - 1 or not self.can_enter(self.stage + 1):
            return False
        self._move(self.stage + 1)
        return True

    def _move(self, index: int) -> None:
        self.stage = index
        self.reached = max(self.reached, index)

    def back(self) -> bool:
        if self.stage == 0:
            return False
        self.stage -= 1
        return True

    def go(self, stage: int | str) -> bool:
        index = stage_index(stage)
        if not self.can_enter(index):
            return False
        self._move(index)
        return True

    def clamp(self) -> None:
        """Step back to the first incomplete stage if an earlier choice was undone."""
        if not self.can_enter(self.stage):
            self.stage = self.first_incomplete()

    @property
    def stage_name(self) -> str:
        return STAGES[self.stage]
