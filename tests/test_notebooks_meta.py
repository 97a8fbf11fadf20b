"""Cheap structural checks on the committed notebooks (nbval runs them for real).

Notebooks are committed executed, top to bottom, with their outputs: nbval compares a
fresh run against those outputs, with only the sanitiser (tests/nbval_sanitize.cfg)
and, for cells that display widgets, an ignore marker standing between them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = {
    "01_governance_dsl.ipynb",
    "02_table_formats.ipynb",
    "03_rls_cls_by_role.ipynb",
    "04_cache.ipynb",
    "05_serve_api_for_js.ipynb",
    "seed.ipynb",
}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_SOURCE = re.compile(r"\bwidgets\b|tqdm\.(auto|notebook)")
IGNORING_TAGS = {"nbval-ignore-output", "nbval-skip"}
IGNORING_COMMENTS = re.compile(r"^\s*#\s*(NBVAL_IGNORE_OUTPUT|NBVAL_SKIP)\b", re.MULTILINE)
# Machine-specific paths must never be committed (they would also differ under nbval).
MACHINE_PATH = re.compile(r"(?<![\w.])/(tmp|home|root|work|Users|private/var|var/folders)/")


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _ignored(cell: nbformat.NotebookNode) -> bool:
    return bool(_tags(cell) & IGNORING_TAGS) or bool(IGNORING_COMMENTS.search(cell.source))


def _is_widget_cell(cell: nbformat.NotebookNode) -> bool:
    shows_widget = any(WIDGET_MIME in o.get("data", {}) for o in cell.get("outputs", []))
    return shows_widget or bool(WIDGET_SOURCE.search(cell.source))


def _output_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.extend(v for v in output.get("data", {}).values() if isinstance(v, str))
    return "".join(parts)


def _read(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def test_the_training_notebooks_and_the_seed_notebook_are_there() -> None:
    assert {p.name for p in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_with_outputs(path: Path) -> None:
    nb = _read(path)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert nb.metadata.get("kernelspec", {}).get("language") == "python"
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells if not _ignored(c)]
    assert None not in counts, "every checked code cell must be committed executed"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), (
        "execution counts must increase top to bottom: run the whole notebook once, in order"
    )
    assert any(c.outputs for c in cells), "committed without outputs"
    for cell in cells:
        if cell.execution_count is None:
            assert not cell.outputs, "an unrun cell must not carry outputs"
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" not in _tags(cell):
            assert not errors, f"committed error output: {errors[0].get('ename') if errors else ''}"
        assert not MACHINE_PATH.search(_output_text(cell)), (
            f"machine-specific path in the outputs of: {cell.source[:80]!r}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_widget_cells_are_ignored(path: Path) -> None:
    for cell in _code_cells(_read(path)):
        if _ignored(cell):
            assert _is_widget_cell(cell), (
                f"only cells that display widgets may be ignored by nbval: {cell.source[:80]!r}"
            )


def _assignments(source: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(node.value)
    return values


def test_seed_notebook_parameters_cell() -> None:
    nb = _read(NOTEBOOKS_DIR / "seed.ipynb")
    cells = _code_cells(nb)
    tagged = [c for c in cells if "parameters" in _tags(c)]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert tagged[0] is cells[0], "the parameters cell comes before any code that uses them"
    assert _assignments(tagged[0].source) == {
        "dataset": "healthcare",
        "size": "tiny",
        "format": "delta",
        "seed": 42,
        "data_dir": None,
    }
    assert not any("injected-parameters" in _tags(c) for c in cells), (
        "commit the notebook itself, not a papermill output with injected parameters"
    )


def test_seed_notebook_uses_plain_tqdm() -> None:
    """The widget bar of tqdm.auto / tqdm.notebook does not survive papermill."""
    source = "\n".join(c.source for c in _code_cells(_read(NOTEBOOKS_DIR / "seed.ipynb")))
    assert "from tqdm import tqdm" in source
    assert not re.search(r"tqdm\.(auto|notebook)|tqdm_progress|ipywidgets", source)
