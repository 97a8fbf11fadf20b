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
