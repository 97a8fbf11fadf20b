"""The registries are whole: every compile target handles every node kind (checked when
its class is made), and the policy layer imports no engine library."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from govlab.policy import ast
from govlab.policy.compile import TARGETS, compile_to, target
from govlab.policy.visitor import METHODS, ExprVisitor


def test_every_bound_node_kind_has_a_visit_method() -> None:
    bound = {ast.AlwaysTrue, ast.AlwaysFalse, ast.Cmp, ast.In, ast.NotIn, ast.IsNull}
    bound |= {ast.NotNull, ast.Contains, ast.And, ast.Or, ast.Not}
    assert set(METHODS) == bound == set(ast.Expr.__args__)  # type: ignore[attr-defined]  # a union's members


def test_a_visitor_missing_a_node_kind_fails_when_its_class_is_made() -> None:
    with pytest.raises(TypeError, match="does not handle visit_contains"):

        class Incomplete(ExprVisitor[str]):  # every method but one
            def visit_true(self, expr: ast.AlwaysTrue) -> str:
                return ""

            def visit_false(self, expr: ast.AlwaysFalse) -> str:
                return ""

            def visit_cmp(self, expr: ast.Cmp) -> str:
                return ""

            def visit_in(self, expr: ast.In) -> str:
                return ""

            def visit_not_in(self, expr: ast.NotIn) -> str:
                return ""

            def visit_is_null(self, expr: ast.IsNull) -> str:
                return ""

            def visit_not_null(self, expr: ast.NotNull) -> str:
                return ""

            def visit_and(self, expr: ast.And) -> str:
                return ""

            def visit_or(self, expr: ast.Or) -> str:
                return ""

            def visit_not(self, expr: ast.Not) -> str: return ""  # fmt: skip


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_registered_target_loads_and_compiles(name: str) -> None:
    assert issubclass(target(name), ExprVisitor)
    assert compile_to(name, ast.TRUE) is not None
    with pytest.raises(TypeError):
        target(name)().visit("region == 'NE'")  # type: ignore[arg-type]  # not a node


def test_an_unknown_target_is_refused() -> None:
    with pytest.raises(ValueError, match="no compile target 'spark'"):
        target("spark")


def test_the_policy_layer_imports_no_engine_library() -> None:
    script = (
        "import sys, govlab.policy, govlab.policy.access, govlab.policy.compile, "
        "govlab.policy.store; "
        "print(sorted(m for m in ('pyiceberg', 'deltalake', 'govlab.engines') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_mask_registry_drives_validation_and_the_legend() -> None:
    """A mask is one function plus one MaskDef: the legend and validation read MASKS."""
    from govlab.lab.widgets.legend import legend_rows
    from govlab.masks import MASK_NAMES, MASKS, check_mask

    assert tuple(MASKS) == MASK_NAMES
    assert [row[0] for row in legend_rows()] == list(MASK_NAMES)
    assert all(callable(m.apply) for m in MASKS.values())
    import pyarrow as pa

    assert check_mask("sparkle", {}, pa.string(), "name")[0].endswith(
        f"(known masks: {', '.join(MASK_NAMES)})"
    )


def test_the_policy_layer_does_not_build_the_generators() -> None:
    """The catalog (names, sizes, schemas) is apart from the synthetic vocabularies."""
    script = (
        "import sys, govlab.policy.access, govlab.policy.store, govlab.catalog; "
        "print(sorted(m for m in sys.modules if m.startswith('govlab.generators')))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_new_format_reaches_the_api_enum_and_the_lab_labels() -> None:
    """One FormatDef line is all a fourth format needs outside its own module: the API's
    ``format`` enum (validation and /openapi.json) and the lab's buttons read it."""
    script = """
import json
from govlab.engines import FORMAT_DEFS, FormatDef
FORMAT_DEFS["orcish"] = FormatDef("orcish", "Orc (test)", "a test format", "x:Y")
import govlab.engines as engines
engines.FORMATS = tuple(FORMAT_DEFS)
from govlab.service import api
from govlab.lab.widgets.state import FORMAT_LABELS
print(json.dumps({"api": [f.value for f in api.Format], "labels": FORMAT_LABELS}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert seen["api"] == ["delta", "parquet", "iceberg", "orcish"]
    assert seen["labels"]["orcish"] == "Orc (test)"


def test_the_api_enums_are_the_registries() -> None:
    from govlab.catalog import DATASETS, SIZES
    from govlab.engines import FORMAT_DEFS
    from govlab.service import api

    assert [d.value for d in api.Dataset] == list(DATASETS)
    assert [f.value for f in api.Format] == list(FORMAT_DEFS)
    assert [s.value for s in api.Size] == list(SIZES)
