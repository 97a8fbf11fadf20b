"""The lab's widgets, without a browser: the stage rules on LabState directly, then the
views driven like a user would (set values, click) against the real API in-process,
on a real Redis, with a real worker for hydration."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from govlab.config import DEFAULT_GOVERNANCE_DIR as GOVERNANCE_DIR
from govlab.config import Settings
from govlab.lab.client import GovlabClient
from govlab.lab.widgets import STAGES, LabState
from govlab.lab.widgets._common import render_rows
from govlab.lab.widgets.governance import GovernanceEditor, GovernancePreview
from govlab.lab.widgets.hydrate import HydrateView
from govlab.lab.widgets.legend import MaskLegend
from govlab.lab.widgets.search_table import SearchTable
from govlab.lab.widgets.state import DEFAULT_ATTRS
from govlab.lab.widgets.stepper import Stepper
from govlab.lab.widgets.validate import ValidateView
from govlab.masks import MASKS
from govlab.service.api import create_app
from govlab.service.identity import mint_token
from govlab.service.redis_server import EmbeddedRedis
from tests.api_helpers import worker
from tests.conftest import TEST_SECRET

HEALTHCARE_YAML = (GOVERNANCE_DIR / "healthcare.yaml").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def api(writable: Settings, redis_server: EmbeddedRedis) -> Iterator[TestClient]:
    with TestClient(create_app(writable, redis_server.url)) as client:
        yield client


@pytest.fixture
def factory(api: TestClient) -> Any:
    return client_factory(api)


def client_factory(api: TestClient) -> Any:
    """(role, attrs) -> a GovlabClient whose transport is the in-process app."""

    def make(role: str, attrs: Any) -> GovlabClient:
        token = mint_token(TEST_SECRET.encode(), role, dict(attrs), f"{role}-widgets", 600)
        client = GovlabClient("http://testserver", token=token)
        client._http.close()
        client._http = api
        return client

    return make


def ready_state(dataset: str = "healthcare", role: str = "admin", **kw: Any) -> LabState:
    """A learner who chose dataset, size and role (the Role stage has been shown)."""
    state = LabState(**kw)
    state.set_dataset(dataset)
    state.set_size("tiny")
    state.set_role(role)
    state.reached = STAGES.index("role")
    return state


def loaded_state(factory: Any, dataset: str = "healthcare", role: str = "admin") -> LabState:
    state = ready_state(dataset, role)
    GovernanceEditor(state, factory).load()
    return state


def masked_cells(html: str) -> list[tuple[str, str]]:
    """(column, text) of every cell marked masked."""
    return re.findall(r'<td class="govlab-masked[^"]*" data-col="([^"]+)"[^>]*>([^<]*)</td>', html)


# ---------------------------------------------------------------------- state, pure
def test_state_refuses_to_skip_stages() -> None:
    state = LabState()
    assert state.stage_name == "dataset"
    assert not state.completed("dataset")
    assert not state.next()
    assert state.stage == 0
    assert not state.go("search")
    assert not state.go(1)
    assert not state.back()
    state.set_dataset("healthcare")
    assert state.next() and state.stage_name == "size"
    assert not state.next()  # no size yet
    assert not state.can_enter("format")
    state.set_size("tiny")
    assert state.next() and state.stage_name == "format"
    assert state.completed("format")  # Delta is the default
    assert state.format == "delta"
    assert state.next() and state.stage_name == "governance"
    assert not state.next()  # no policy loaded
    assert not state.go("role")
    assert state.go("dataset") and state.go("format")
    assert state.back() and state.stage_name == "size"


def test_state_policy_validation_and_dirty_flag() -> None:
    state = ready_state()
    text = HEALTHCARE_YAML
    state.policy_loaded("healthcare", text, "v1", True, "admin")
    assert state.completed("governance")
    assert state.edit_policy(text.replace("ssn: tokenize", "ssn: scramble"))
    assert any("unknown mask 'scramble'" in e for e in state.policy_errors)
    assert not state.completed("governance")
    assert state.edit_policy(text + "\n") == []
    assert state.policy_dirty and not state.completed("governance")
    state.policy_saved(text + "\n", "v2")
    assert state.completed("governance")


def test_state_role_and_attrs() -> None:
    state = ready_state()
    state.policy_loaded("healthcare", HEALTHCARE_YAML, "v", True, "a")
    state.stage = 4
    state.set_role("clinician")
    assert state.attrs == DEFAULT_ATTRS["clinician"]
    assert state.completed("role")
    assert state.set_attrs_text("{not json")
    assert not state.completed("role")
    assert state.set_attrs_text("[1]")
    assert state.set_attrs_text("{}") is None
    assert "id" in (state.role_problem() or "")  # the filter needs ${user.id}
    state.set_attrs_text('{"id": "C001"}')
    assert state.completed("role")
    state.set_role("nobody")
    assert "not defined" in (state.role_problem() or "")


def test_state_results_go_stale_when_earlier_choices_change() -> None:
    state = ready_state(role="analyst")
    state.policy_loaded("healthcare", HEALTHCARE_YAML, "v", False, "x")
    state.set_validated({"tableVersion": 0})
    assert state.completed("validate")
    state.set_attrs_text('{"allowed_regions": ["W"]}')
    assert not state.completed("validate")
    state.set_validated({"tableVersion": 0})
    state.job_started("j1")
    state.job_progress("j1", {"status": "completed", "pct": 100})
    assert state.completed("hydrate")
    state.set_size("small")
    assert not state.completed("hydrate")
    # the table the lab knows has 1,000 rows: it is not a "small" table
    state.note_table("healthcare", "delta", {"rows": 1000, "tableVersion": 0})
    assert not state.use_existing_table() and not state.completed("hydrate")
    state.note_table("healthcare", "delta", {"rows": 50_000, "tableVersion": 1})
    assert state.use_existing_table() and state.completed("hydrate")
    state.set_format("iceberg")
    assert not state.completed("validate") and not state.completed("hydrate")
    state.stage = 7
    state.clamp()
    assert state.stage_name == "validate"


# ---------------------------------------------------------------------- governance
@pytest.mark.parametrize(
    ("role", "editable"),
    [("admin", True), ("data_modeler", True), ("clinician", False), ("analyst", False)],
)
def test_editor_enabled_only_for_editor_roles(factory: Any, role: str, editable: bool) -> None:
    state = ready_state(role=role)
    editor = GovernanceEditor(state, factory)
    assert editor.load()
    assert editor.editor.disabled is (not editable)
    assert "dataset: healthcare" in editor.editor.value
    assert ("Editing as" in editor.mode.value) is editable
    assert ("Read-only" in editor.mode.value) is (not editable)
    editor.editor.value = editor.editor.value + "\n# touched\n"
    assert editor.save.disabled is (not editable)
    if not editable:
        assert not editor.save_policy()


def test_editor_live_validation_and_save(factory: Any) -> None:
    state = ready_state(role="data_modeler")
    preview = GovernancePreview(state)
    editor = GovernanceEditor(state, factory, preview=preview)
    editor.load()
    original = editor.editor.value
    assert "govlab-policy-ok" in editor.status.value
    assert editor.save.disabled  # nothing to save

    editor.editor.value = original.replace("ssn: hash", "ssn: scramble", 1)
    assert "govlab-policy-errors" in editor.status.value
    assert "unknown mask" in editor.status.value
    assert editor.save.disabled
    assert not state.completed("governance")

    editor.editor.value = original.replace("notes: redact_full", "notes: hash")
    assert "govlab-policy-ok" in editor.status.value
    assert not editor.save.disabled
    assert not state.completed("governance")  # unsaved edits
    old_version = state.policy_version
    editor.save.click()
    assert "Saved as revision" in editor.status.value
    assert state.policy_version != old_version
    assert state.completed("governance")
    assert editor.save.disabled
    # the server holds the new text
    assert factory("admin", {}).policy("healthcare")["yaml"] == editor.editor.value

    editor.editor.value = "roles: [oops"
    assert "not valid YAML" in editor.status.value
    editor.revert.click()
    assert editor.editor.value == state.policy_saved_text
    assert state.completed("governance")


def test_preview_shows_bound_filter_per_role(factory: Any) -> None:
    state = loaded_state(factory)
    preview = GovernancePreview(state)
    rows = {r["role"]: r for r in preview.rows()}
    assert set(rows) == {"admin", "data_modeler", "clinician", "analyst", "business_user"}
    assert rows["clinician"]["filter"] == "\"clinician_id\" = 'C007'"
    assert rows["analyst"]["filter"] == "\"region\" IN ('NE', 'SW')"
    assert rows["admin"]["filter"] == "TRUE"
    assert rows["clinician"]["masks"]["insurance_id"] == "redact_part(keep=4)"
    html = preview.table.value
    assert "&quot;clinician_id&quot; = &#x27;C007&#x27;" in html
    assert 'data-role="analyst"' in html
    # attributes edited for a role are what the preview binds
    state.role_attrs["analyst"] = {"allowed_regions": ["W"]}
    preview.refresh()
    assert "&quot;region&quot; = &#x27;W&#x27;" in preview.table.value
    state.role_attrs["clinician"] = {}  # a role whose filter cannot bind is shown as denied
    assert "id" in next(r for r in preview.rows() if r["role"] == "clinician")["error"]
    preview.refresh()
    assert 'govlab-error">denied' in preview.table.value


def test_mask_legend_lists_every_mask_with_examples() -> None:
    legend = MaskLegend()
    html = legend.table.value
    for name, mask in MASKS.items():
        assert f'data-mask="{name}"' in html
        assert f"<code>{mask.example_before}</code>" in html.replace("&#x27;", "'")
        assert f"<code>{mask.example_after}</code>" in html
    assert html.count("<tr data-mask=") == len(MASKS)
    assert "govlab-mask-legend" in legend._dom_classes


# ---------------------------------------------------------------------- rows and search
def test_render_rows_escapes_everything() -> None:
    html = render_rows([{"a": "<script>x</script>", "b": None, "s": "ab"}], {"s": "hash"})
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="govlab-null"' in html
    assert '<td class="govlab-masked" data-col="s" title="masked: hash">ab</td>' in html


def test_search_table_masks_pages_and_cache(factory: Any, raw_tables: dict[str, pa.Table]) -> None:
    state = loaded_state(factory, role="analyst")
    state.set_attrs_text('{"allowed_regions": ["NE", "SW"]}')
    table = SearchTable(state, factory)
    first = table.search("")
    assert first is not None
    assert table.page_label.value == f"page 1 of {table.pages}"
    assert table.pages > 2
    assert table.total.value == f"{first['total']:,} rows"
    assert "cache: MISS" in table.cache.value
    assert "govlab-cache-miss" in table.cache.value
    assert table.prev.disabled and not table.next.disabled

    html = table.table.value
    cells = masked_cells(html)
    assert {c for c, _ in cells} == {"ssn", "name", "dob", "address", "insurance_id"}
    assert all(title in html for title in ('title="masked: hash"', 'title="masked: initials"'))
    raw_ssns = set(raw_tables["healthcare"].column("ssn").to_pylist())
    raw_names = set(raw_tables["healthcare"].column("name").to_pylist())
    assert not any(ssn in html for ssn in raw_ssns)
    assert not any(text in raw_names for col, text in cells if col == "name")
    regions = re.findall(r'<td data-col="region">([^<]*)<', html)
    assert regions and set(regions) <= {"NE", "SW"}

    table.next.click()
    assert state.last_page["page"] == 2
    assert table.page_label.value == f"page 2 of {table.pages}"
    assert not table.prev.disabled
    second_html = table.table.value
    assert second_html != html
    assert "cache: MISS" in table.cache.value
    table.prev.click()
    assert table.page_label.value.startswith("page 1 of")
    assert "cache: HIT" in table.cache.value  # the same page again comes from Redis
    assert table.table.value == html

    table.q.value = "asthma"  # Enter in the box runs the query from page 1
    assert state.last_page["page"] == 1
    assert 0 < state.last_page["total"] < first["total"]
    assert table.total.value == f"{state.last_page['total']:,} rows"
    assert "cache: MISS" in table.cache.value
    table.go.click()
    assert "cache: HIT" in table.cache.value


def test_search_table_last_page_and_empty(factory: Any) -> None:
    state = loaded_state(factory, role="clinician")
    table = SearchTable(state, factory)
    table.search("")
    pages = table.pages
    for _ in range(pages + 2):
        table.next_page()
    assert state.last_page["page"] == pages
    assert table.next.disabled
    table.search("no-such-term-anywhere")
    assert state.last_page["total"] == 0
    assert table.page_label.value == "page 1 of 1"
    assert "no rows" in table.table.value


def test_search_table_pages_past_a_lower_bound_total(
    grouped: Path, redis_server: EmbeddedRedis
) -> None:
    """When the server stops counting at its limit the table says "N+" and keeps Next
    open until a short page shows where the rows end."""
    settings = Settings(data_dir=grouped, count_limit=5)
    with TestClient(create_app(settings, redis_server.url)) as api:
        factory = client_factory(api)
        state = loaded_state(factory, role="admin")
        table = SearchTable(state, factory)
        first = table.search("e")
        assert first is not None and first["totalExact"] is False
        assert table.total.value == f"{first['total']:,}+ rows"
        assert table.page_label.value == f"page 1 of {table.pages}+"
        assert not table.next.disabled
        ids: list[int] = []
        for _ in range(200):
            ids += [row["patient_id"] for row in state.last_page["items"]]
            if table.next_page() is None:
                break
        last = state.last_page
        assert last["totalExact"] is True and table.next.disabled
        assert table.total.value == f"{last['total']:,} rows" and "+" not in table.page_label.value
        assert len(ids) == last["total"] == len(set(ids)) and last["page"] > first["total"] // 10


# ---------------------------------------------------------------------- validate
def test_validate_view_reports_rls_and_masks(factory: Any) -> None:
    state = loaded_state(factory, role="analyst")
    view = ValidateView(state, factory)
    result = view.run()
    assert result is not None and state.completed("validate")
    assert f"<b>{result['rowsVisible']:,}</b>" in view.rows_label.value
    assert 0 < result["rowsVisible"] < 1000
    assert "&quot;region&quot; IN" in view.filter_label.value
    assert "<code>ssn</code> (hash)" in view.masks_label.value
    assert view.preview.value.split("<tbody>")[1].count("<tr>") == 5
    assert masked_cells(view.preview.value)

    state.set_attrs_text("{}")  # the filter needs allowed_regions: the server denies
    assert view.run() is None
    assert "govlab-error" in view.error.value
    assert not state.completed("validate")


# ---------------------------------------------------------------------- stepper
def test_stepper_refuses_incomplete_stages(factory: Any) -> None:
    lab = Stepper(factory)
    assert lab.current == "dataset"
    assert lab.next_button.disabled
    assert "govlab-stage-current" in lab.stage_buttons[0]._dom_classes
    assert all(b.disabled for b in lab.stage_buttons[1:])
    lab.next_button.click()
    assert lab.current == "dataset"
    assert not lab.go("search") and not lab.go(2)
    lab.stage_buttons[7].click()
    assert lab.current == "dataset"

    lab.dataset_picker.value = "healthcare"
    assert not lab.next_button.disabled
    assert not lab.stage_buttons[1].disabled and lab.stage_buttons[2].disabled
    assert lab.next()
    assert lab.current == "size" and lab.next_button.disabled
    assert "Step 2 of 8: Size" in lab.title.value
    assert not lab.next()
    assert not lab.go("governance")
    lab.size_picker.value = "tiny"
    lab.next_button.click()
    assert lab.current == "format"
    assert lab.format_picker.value == "delta" and not lab.next_button.disabled
    lab.next_button.click()
    assert lab.current == "governance"
    assert not lab.editor.editor.disabled  # admin by default
    lab.editor.editor.value += "\n# unsaved\n"
    assert lab.next_button.disabled and not lab.next()
    assert "Save or revert" in lab.hint.value
    lab.editor.revert.click()
    assert not lab.next_button.disabled
    lab.back_button.click()
    assert lab.current == "format"
    assert lab.go("governance")
    assert "govlab-stage-done" in lab.stage_buttons[0]._dom_classes
    # Role has a default (admin) but is not done before it was shown
    assert not lab.stage_buttons[4].disabled and lab.stage_buttons[5].disabled
    assert "govlab-stage-done" not in lab.stage_buttons[4]._dom_classes
    assert lab.stage_buttons[6].disabled and lab.stage_buttons[7].disabled
    assert not lab.go("hydrate") and lab.current == "governance"
    assert lab.next() and lab.current == "role" and lab.state.completed("role")
    assert not lab.stage_buttons[5].disabled


def test_stepper_walks_all_stages_with_a_real_worker(
    factory: Any, writable: Settings, redis_server: EmbeddedRedis
) -> None:
    lab = Stepper(factory, poll_s=0.05)
    lab.dataset_picker.value = "ecommerce"
    assert lab.next()
    lab.size_picker.value = "tiny"
    assert lab.next()
    lab.format_picker.value = "parquet"
    assert lab.next() and lab.current == "governance"
    assert lab.state.policy_dataset == "ecommerce"
    assert lab.next() and lab.current == "role"
    assert lab.role_picker.role.options == (
        "admin",
        "data_modeler",
        "analyst",
        "support_agent",
        "business_user",
    )
    lab.role_picker.role.value = "support_agent"
    assert lab.role_picker.attrs.value == '{"region": "W"}'
    lab.role_picker.attrs.value = "{}"
    assert lab.next_button.disabled and "region" in lab.hint.value
    lab.role_picker.attrs.value = '{"region": "W"}'
    assert "&quot;region&quot; = &#x27;W&#x27;" in lab.role_picker.bound.value
    assert lab.next() and lab.current == "validate"
    assert lab.state.completed("validate")  # entering Validate runs it
    visible = lab.state.validated["rowsVisible"]
    assert visible > 0
    assert lab.next() and lab.current == "hydrate"
    assert lab.next_button.disabled
    assert not lab.go("search")

    with worker(writable, redis_server.url):
        lab.hydrator.start_button.click()
        assert lab.hydrator.running
        record = lab.hydrator.wait_done(60)
    assert record is not None and record["status"] == "completed"
    assert lab.hydrator.bar.value == 100
    assert lab.hydrator.bar.description == "100%"
    assert "completed" in lab.hydrator.label.value
    assert "1,000 / 1,000 rows" in lab.hydrator.label.value
    assert not lab.next_button.disabled

    assert lab.next() and lab.current == "search"
    page = lab.state.last_page
    assert page is not None and page["total"] == visible
    assert "govlab-cache" in lab.table.cache._dom_classes
    assert lab.table.page_label.value.startswith("page 1 of")
    assert {c for c, _ in masked_cells(lab.table.table.value)} == {
        "card_number",
        "email",
        "address",
    }
    assert lab.next_button.disabled  # the last stage
    assert len(STAGES) == len(lab.stage_buttons) == 8
    assert lab.go("dataset") and lab.go("search")  # every stage is done: free to jump


def test_hydrate_view_progress_without_blocking(
    factory: Any, writable: Settings, redis_server: EmbeddedRedis
) -> None:
    state = loaded_state(factory, dataset="financial", role="data_modeler")
    view = HydrateView(state, factory, poll_s=0.05)
    assert view.label.value == "Not started."
    with worker(writable, redis_server.url):
        started = time.monotonic()
        job_id = view.start()  # returns at once; a thread follows the job
        assert time.monotonic() - started < 5
        assert job_id is not None and state.job_id == job_id
        # the worker process is still starting: the job cannot be done yet
        assert state.progress["status"] in ("queued", "running")
        assert view.running and view.start_button.disabled and not view.cancel_button.disabled
        assert view.start() is None  # one job at a time
        record = view.wait_done(60)
    assert record["status"] == "completed"
    assert state.completed("hydrate")
    assert view.bar.value == 100 and view.bar.bar_style == "success"
    assert not view.running


# ---------------------------------------------------------------------- package
def test_state_module_needs_no_ipywidgets() -> None:
    code = (
        "import sys, govlab.lab.widgets.state, govlab.lab.widgets; "
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_launch_honours_api_url_env(monkeypatch: pytest.MonkeyPatch, writable: Settings) -> None:
    import govlab.lab.client
    from govlab.lab.widgets import launch

    calls: list[tuple[str, str | None]] = []

    def fake_ensure(url: str, data_dir: str | None = None, **_: Any) -> Any:
        calls.append((url, data_dir))
        return govlab.lab.client.LocalServer(url, None)

    monkeypatch.setattr(govlab.lab.client, "ensure_server", fake_ensure)
    monkeypatch.setenv("GOVLAB_API_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("GOVLAB_DATA_DIR", str(writable.data_dir))
    lab = launch()
    assert lab.server_banner.wait(10)
    assert calls == [("http://127.0.0.1:8765", str(writable.data_dir))]
    assert lab.server.url == "http://127.0.0.1:8765"
    assert 'data-phase="ready"' in lab.server_banner.value
    assert "already running" in lab.server_banner.value
    client = lab.clients("clinician", {"id": "C007"})
    assert client.base_url == "http://127.0.0.1:8765"
    assert lab.clients("clinician", {"id": "C007"}) is client  # one client per identity
    assert lab.current == "dataset"


# ---------------------------------------------------------------------- issue 13: bugs
@pytest.fixture
def empty_api(tmp_path: Path, redis_server: EmbeddedRedis) -> Iterator[tuple[TestClient, Settings]]:
    """An API over a data root with no table at all (the lab seeds it)."""
    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    with TestClient(create_app(settings, redis_server.url)) as client:
        yield client, settings


def walk_to(lab: Stepper, stage: str, role: str | None = None, **choices: str) -> None:
    """Through the stepper like a learner: choose, Next, until ``stage``."""
    lab.dataset_picker.value = choices.get("dataset", "healthcare")
    assert lab.next()
    lab.size_picker.value = choices.get("size", "tiny")
    assert lab.next()
    lab.format_picker.value = choices.get("format", "delta")
    while lab.current != stage:
        if lab.current == "role" and role is not None:
            lab.role_picker.role.value = role
        assert lab.next(), f"stuck at {lab.current}: {lab.hint.value}"


def test_validate_follows_the_table_version_after_a_seed(
    empty_api: tuple[TestClient, Settings], redis_server: EmbeddedRedis
) -> None:
    """Bug 1: Back from Hydrate showed "no table yet" although the seed had completed."""
    api, settings = empty_api
    factory = client_factory(api)
    lab = Stepper(factory, poll_s=0.05)
    walk_to(lab, "validate", role="clinician")
    assert "no delta table yet" in lab.validator.rows_label.value
    assert lab.next() and lab.current == "hydrate"
    with worker(settings, redis_server.url):
        lab.hydrator.start()
        record = lab.hydrator.wait_done(60)
    assert record is not None and record["status"] == "completed"
    assert lab.back() and lab.current == "validate"
    assert "no delta table yet" not in lab.validator.rows_label.value
    visible = lab.state.validated["rowsVisible"]
    assert visible == factory("clinician", {"id": "C007"}).validate("healthcare")["rowsVisible"]
    assert lab.validator.rows_label.value == (
        f"Rows after RLS: <b>{visible:,}</b> of 1,000 rows (table version {record['tableVersion']})"
    )


def test_an_existing_table_is_used_only_at_the_chosen_size(factory: Any) -> None:
    """Bug 2: "Use existing table" went on as "small" over a 1,000-row table."""
    lab = Stepper(factory)
    walk_to(lab, "hydrate", size="small")
    label = lab.hydrator.table_label.value
    assert re.search(r"Existing table: <b>1,000 rows</b>, version \d+", label)
    assert "you chose small (50,000 rows): seed to continue" in label
    assert "govlab-hydrate-mismatch" in label
    assert lab.hydrator.existing_button.disabled
    assert not lab.hydrator.use_existing() and lab.next_button.disabled
    assert lab.go("size")
    lab.size_picker.value = "tiny"
    assert lab.go("hydrate")
    assert "the size you chose" in lab.hydrator.table_label.value
    assert not lab.hydrator.existing_button.disabled
    lab.hydrator.existing_button.click()
    assert lab.state.completed("hydrate") and not lab.next_button.disabled


def test_a_failed_search_clears_the_page_and_says_what_failed(factory: Any) -> None:
    """Bug 3: the previous rows, total and an enabled Next stayed under a ConnectError repr."""
    from govlab.service.redis_server import free_port

    state = loaded_state(factory, role="admin")
    table = SearchTable(state, factory)
    assert table.search("") is not None and not table.next.disabled
    dead = f"http://127.0.0.1:{free_port()}"
    table.client_factory = lambda role, attrs: GovlabClient(dead, token="t", timeout_s=5)
    assert table.search("asthma") is None
    assert f"The API at {dead} is not answering; start it with `make serve`" in table.error.value
    assert "ConnectError" not in table.error.value
    assert state.last_page is None and not state.completed("search")
    assert table.table.value == table.total.value == table.page_label.value == ""
    assert table.cache.value == table.took.value == ""
    assert table.next.disabled and table.prev.disabled


def test_the_stepper_shows_the_api_start_up_while_it_happens(factory: Any) -> None:
    """Bug 4: "Loading widget..." for ~30 s and no word of what was happening."""
    import threading

    from govlab.lab.client import LocalServer

    release = threading.Event()

    def slow_start(on_status: Any) -> LocalServer:
        on_status("starting", "Starting the API, a seeding worker and Redis ...")
        for second in range(1, 40):
            if release.wait(0.25):
                break
            on_status("waiting", f"Waiting for the API: {second} s ...")
        return LocalServer("http://testserver", None)

    lab = Stepper(factory, start_server=slow_start)  # returns while the API starts
    assert not lab.api_ready
    assert 'data-phase="starting"' in lab.server_banner.value or (
        'data-phase="waiting"' in lab.server_banner.value
    )
    walk_to(lab, "governance")
    assert lab.state.policy_text is None and "Waiting for the API" in lab.hint.value
    release.set()
    assert lab.server_banner.wait(10)
    assert lab.server_banner.phases[0] == "checking" and "starting" in lab.server_banner.phases
    assert 'data-phase="ready"' in lab.server_banner.value
    assert lab.state.policy_text is not None  # the stage loaded once the API answered
    assert lab.next()


KERNEL = """
import json, sys, time
from govlab.lab.client import ensure_server
server = ensure_server(sys.argv[1], data_dir=sys.argv[2])
print(json.dumps({"pid": server.pid}), flush=True)
time.sleep(300)
"""


@pytest.mark.heavy
def test_an_api_started_by_a_kernel_ends_with_the_kernel(tmp_path: Path) -> None:
    """Bug 5: the API, worker and Redis a kernel started outlived the culled kernel.
    A SIGKILL leaves the kernel no chance to clean up: the child must notice alone."""
    import json
    import os
    import signal

    import psutil

    from govlab.service.redis_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    kernel = subprocess.Popen(
        [sys.executable, "-c", KERNEL, url, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = kernel.stdout.readline() if kernel.stdout else ""
        serve = psutil.Process(json.loads(line)["pid"])
        tree = [serve, *serve.children(recursive=True)]
        assert any("worker" in " ".join(p.cmdline()) for p in tree)
        assert any(name in p.name() for p in tree for name in ("redis", "valkey"))
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(10)
        deadline = time.monotonic() + 40
        while (alive := [p for p in tree if _running(p)]) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if kernel.poll() is None:
            os.killpg(kernel.pid, signal.SIGKILL)
            kernel.wait(10)


def _running(process: Any) -> bool:
    """Alive and not a zombie (dead, not yet reaped by whoever adopted it)."""
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_stored_stepper_is_a_widget_view_with_a_short_text() -> None:
    """Bug 6: JupyterLab showed "Stepper(children=(HTML(value='<style>..." as the output."""
    import nbformat

    from govlab.lab.widgets.stepper import STATIC_TEXT

    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "stepper.ipynb", 4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    assert views[0]["data"]["text/plain"] == STATIC_TEXT
    assert "children=" not in json_text(nb.cells)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    model = views[0]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert "govlab-lab" in state[model]["state"]["_dom_classes"]  # the view can be restored


def json_text(cells: Any) -> str:
    import json

    return json.dumps([c.get("outputs", []) for c in cells])


def test_defaults_count_only_once_shown_and_labels_fit(factory: Any) -> None:
    """Bug 7: stages 3 and 5 turned green unvisited, labels were cut off, the textarea
    ran past its panel, and "Editing as admin" was shown before any role was chosen."""
    state = LabState()
    state.set_dataset("healthcare")
    state.set_size("tiny")
    assert state.next() and state.stage_name == "size"
    assert not state.completed("format") and not state.completed("role")
    assert state.next() and state.completed("format")

    lab = Stepper(factory)
    for picker in (lab.dataset_picker, lab.size_picker, lab.format_picker):
        assert picker.style.button_width == "auto"
    assert lab.hydrator.existing_button.layout.width == "auto"
    assert lab.editor.editor.layout.max_width == "100%"
    assert "box-sizing: border-box" in lab.children[0].value
    assert ".mod-active" in lab.children[0].value
    walk_to(lab, "governance")
    assert "govlab-stage-done" not in lab.stage_buttons[4]._dom_classes
    assert "Editing as" not in lab.editor.mode.value
    assert "you choose who you act as at step 5" in lab.editor.mode.value
    assert lab.next() and lab.current == "role"
    assert lab.go("governance")
    assert "Editing as <b>admin</b>" in lab.editor.mode.value


# ---------------------------------------------------------------------- issue 13: trainer
def test_compare_roles_shows_raw_only_what_a_role_was_served_raw(
    factory: Any, raw_tables: dict[str, pa.Table]
) -> None:
    from govlab.lab.widgets.compare import CompareView

    state = loaded_state(factory, role="clinician")
    state.compare_roles = ["clinician", "business_user", "admin"]
    view = CompareView(state, factory, "search")
    view.refresh_roles()
    assert view.picker.value == ("clinician", "business_user", "admin")
    views = {v.role: v for v in view.run("asthma")}
    api = {
        role: factory(role, DEFAULT_ATTRS.get(role, {})).search("healthcare", q="asthma")
        for role in views
    }
    for role, v in views.items():
        assert v.error is None and v.matches == api[role]["total"]
        assert f'data-role="{role}" data-value="{api[role]["total"]}"' in view.bars.value
        assert sorted(v.masks) == api[role]["maskedFields"]
    assert views["clinician"].matches < views["admin"].matches
    assert 'data-role="business_user"' in view.sides.value

    record = view.record.value
    key = int(re.search(r'data-key="(\d+)"', record).group(1))
    raw = raw_tables["healthcare"].filter(pa.compute.field("patient_id") == key).to_pylist()[0]
    cells = re.findall(
        r'<td class="govlab-(raw|masked|hidden)" data-role="(\w+)"[^>]*>([^<]*)<', record
    )
    assert {kind for kind, _, _ in cells} >= {"raw", "masked"}
    served = {r: {row["patient_id"]: row for row in views[r].items} for r in views}
    for kind, role, text in cells:
        if kind == "hidden":
            assert key not in served[role]
            continue
        row = served[role][key]
        column = [c for c in row if html_text(row[c]) == text]
        assert column, (role, text)
        if kind == "raw":  # raw only where the role's policy leaves the column unmasked
            assert any(c not in views[role].masks for c in column)
        else:
            assert any(c in views[role].masks for c in column)
            assert text != str(raw[column[0]]) or raw[column[0]] is None
    assert 'data-role="clinician"' in record and 'data-role="admin"' in record

    lab = Stepper(factory)
    walk_to(lab, "validate", role="clinician")
    assert "acting as <b>clinician</b> (id=C007)" in lab.badge.value
    assert lab.go("role") and lab.badge.value == ""


def html_text(value: Any) -> str:
    import html as html_module

    return html_module.escape("null" if value is None else str(value), quote=True)


def test_explanations_in_place(factory: Any, raw_tables: dict[str, pa.Table]) -> None:
    first_name = raw_tables["healthcare"].column("name")[0].as_py().split()[0]
    state = loaded_state(factory, role="business_user")
    table = SearchTable(state, factory)
    assert table.search(first_name)["total"] == 0
    explain = table.explain.value
    assert (
        "<code>name</code>" in explain
        and "masked for business_user and are not searched" in explain
    )
    assert "matched only against condition" in explain
    assert factory("admin", {}).search("healthcare", q=first_name)["total"] > 0
    table.search("asthma")
    assert table.explain.value == ""
    assert re.fullmatch(r"server [\d.,]+ ms · round trip [\d.,]+ ms", table.took.value)
    legend = table.legend.value
    assert all(word in legend for word in ("HIT", "MISS", "BYPASS", "Redis unreachable"))

    lab = Stepper(factory)
    assert lab.dataset_about.value.count("<li data-option=") == 3
    walk_to(lab, "format")
    assert 'data-option="iceberg"' in lab.format_about.value
    assert '<li data-option="delta" class="govlab-chosen">' in lab.format_about.value
    assert lab.next() and "Only their own patients" in lab.preview.table.value
    assert lab.next()
    lab.role_picker.role.value = "clinician"
    assert "Only their own patients" in lab.role_picker.about.value
    assert lab.next() and lab.current == "validate"
    assert re.search(r"Rows after RLS: <b>\d+</b> of 1,000 rows", lab.validator.rows_label.value)


def test_policy_what_if_and_reset_to_shipped(factory: Any) -> None:
    state = ready_state(role="data_modeler")
    editor = GovernanceEditor(state, factory)
    editor.load()
    assert editor.reset.disabled and "shipped one" in editor.shipped.value
    assert editor.whatif_button.disabled  # nothing to compare yet
    shipped = editor.editor.value
    editor.editor.value = shipped.replace(
        "row_filter: \"region in ['NE', 'SE', 'MW']\"",
        "row_filter: \"region in ['NE', 'SE', 'MW', 'W']\"",
    )
    assert editor.editor.value != shipped and not editor.whatif_button.disabled
    editor.whatif_button.click()
    result = re.search(
        r'<tr data-role="business_user" class="govlab-whatif-changed">.*?'
        r'govlab-whatif-saved">([\d,]+)<.*?govlab-whatif-draft">([\d,]+)<',
        editor.whatif.value,
    )
    assert result is not None
    saved, draft = (int(x.replace(",", "")) for x in result.groups())
    assert saved == factory("business_user", {}).validate("healthcare")["rowsVisible"] < draft
    assert '<tr data-role="clinician">' in editor.whatif.value  # unchanged, not marked
    assert state.policy_dirty  # a what-if stores nothing
    editor.save.click()
    assert "edited" in editor.shipped.value and not editor.reset.disabled
    editor.reset.click()
    assert editor.editor.value == shipped and "Reset to the shipped policy" in editor.status.value
    assert factory("admin", {}).policy("healthcare")["yaml"] == shipped
    assert editor.reset.disabled
