"""Papermill batch seeding: notebooks/seed.ipynb executed by govlab.batch, kept as a record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from govlab.batch import SeedRunFailed, parse_batch, run_batch, run_seed_notebook
from govlab.cli import main
from govlab.config import Settings
from govlab.engines import get_engine
from govlab.errors import BadRequest
from govlab.generators import get_dataset
from govlab.lab import records
from govlab.policy.store import PolicyStore
from govlab.seeding import seed_table


def _summary(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """The JSON line the notebook's last code cell prints."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


def _injected(nb: nbformat.NotebookNode) -> str:
    cells = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    return cells[0].source


def _text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_seed_notebook_is_the_record_of_its_run(fmt: str, tmp_path: Path) -> None:
    data, runs = tmp_path / "data", tmp_path / "runs"
    path = run_seed_notebook("healthcare", "tiny", fmt, seed=42, data_dir=data, runs_dir=runs)

    assert path.parent == runs and path.exists()
    assert path.name.startswith(f"healthcare-tiny-{fmt}-") and path.suffix == ".ipynb"
    nb = nbformat.read(path, as_version=4)
    injected = _injected(nb)
    for line in ('dataset = "healthcare"', 'size = "tiny"', f'format = "{fmt}"', "seed = 42"):
        assert line in injected
    assert f'data_dir = "{data.resolve()}"' in injected
    assert all(o.output_type != "error" for c in nb.cells for o in c.get("outputs", []))

    summary = _summary(nb)
    assert summary["dataset"] == "healthcare" and summary["format"] == fmt
    assert summary["rows"] == 1000
    assert summary["data_dir"] == str(data.resolve())
    assert summary["seconds"] > 0 and summary["rows_per_s"] > 0
    # the table really is where the record says, at the version it names
    info = get_engine(fmt, Settings(data_dir=data.resolve())).info("healthcare")
    assert summary["table_version"] == info.version and info.rows == 1000
    if fmt == "delta":
        assert summary["table_version"] == 0
        protocol = summary["protocol"]
        assert (protocol["min_reader_version"], protocol["min_writer_version"]) == (3, 7)
        assert "timestampNtz" in protocol["reader_features"]
        assert {"changeDataFeed", "timestampNtz"} <= set(protocol["writer_features"])
        assert "delta protocol: reader 3 / writer 7" in _text(nb)
    else:
        assert summary["table_version"] == 1
        assert summary["identifier"] == "govlab.healthcare"
    # plain tqdm, not the widget bar: one bar per seed, its final state, in the record
    seed_cell = next(c for c in nb.cells if "seed_table(" in c.source and c.cell_type == "code")
    streams = [o for o in seed_cell.outputs if o.output_type == "stream"]
    assert len(streams) == 1 and streams[0].text.count("100%") == 1
    assert "\r" not in streams[0].text and " 0%|" not in streams[0].text
    _check_record(summary, fmt, data.resolve(), info.location)


def _check_record(summary: dict[str, Any], fmt: str, data: Path, location: str) -> None:
    """What makes a run checkable: versions, commit, policy, schema, size, checksum."""
    settings = Settings(data_dir=data)
    spec = get_dataset("healthcare")
    assert summary["versions"]["pyarrow"] == records.package_versions()["pyarrow"]
    assert set(summary["versions"]) == {"python", *records.PACKAGES}
    git = summary["git"]
    assert git is None or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    assert summary["policy_version"] == PolicyStore(settings).current("healthcare").version
    assert summary["schema"] == {f.name: str(f.type) for f in spec.schema}
    assert summary["disk_bytes"] == records.disk_bytes(location) > 0
    engine = get_engine(fmt, settings)
    assert summary["row_checksum"] == records.row_checksum(engine, spec)
    assert len(summary["row_checksum"]) == 64


def test_batch_runs_every_combination_in_one_process(tmp_path: Path) -> None:
    data, runs = tmp_path / "data", tmp_path / "runs"
    done: list[Path] = []
    formats = ["delta", "parquet", "iceberg"]
    paths = run_batch(
        ["healthcare"],
        ["tiny"],
        formats,
        data_dir=data,
        runs_dir=runs,
        on_done=done.append,
    )
    assert len(paths) == 3 and done == paths
    assert sorted(p.name.split("-")[2] for p in paths) == sorted(formats)
    summaries = [_summary(nbformat.read(p, as_version=4)) for p in paths]
    assert [s["format"] for s in summaries] == formats
    assert all(s["rows"] == 1000 for s in summaries)
    assert summaries[1]["partitions"] == [f"region={r}" for r in ("MW", "NE", "SE", "SW", "W")]
    # the same dataset, size and seed: the same rows, whatever the format
    assert len({s["row_checksum"] for s in summaries}) == 1
    assert len({s["disk_bytes"] for s in summaries}) == 3  # while the files differ


def test_the_row_checksum_changes_with_the_rows(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    spec = get_dataset("healthcare")
    engine = get_engine("parquet", settings)
    sums = []
    for seed in (42, 7, 42):
        info = seed_table("healthcare", "tiny", "parquet", settings, seed=seed)
        sums.append(records.row_checksum(engine, spec, info.version))
    assert sums[0] == sums[2] != sums[1]


def test_bad_parameters_fail_before_any_kernel_starts(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(BadRequest, match="valid sizes"):
        run_seed_notebook("healthcare", "huge", "delta", data_dir=tmp_path, runs_dir=runs)
    with pytest.raises(BadRequest, match="valid formats"):
        run_batch(["healthcare"], ["tiny"], ["delta", "orc"], data_dir=tmp_path, runs_dir=runs)
    assert not runs.exists() or not any(runs.iterdir())


def test_a_failing_run_keeps_its_notebook(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("dataset = size = format = seed = data_dir = None"),
        nbformat.v4.new_code_cell("raise RuntimeError('boom')"),
    ]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nbformat.write(nb, broken)
    with pytest.raises(SeedRunFailed, match="RuntimeError: boom") as caught:
        run_seed_notebook(
            "healthcare", "tiny", "delta", data_dir=tmp_path, runs_dir=tmp_path, notebook=broken
        )
    assert caught.value.path.exists()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_batch(["sizes=tiny,small", "formats=delta"]) == {
        "sizes": ["tiny", "small"],
        "formats": ["delta"],
    }
    with pytest.raises(BadRequest):
        parse_batch(["colours=red"])
    argv = ["seed", "--dataset", "healthcare", "--size", "tiny", "--data-dir", str(tmp_path / "d")]
    argv += ["--runs-dir", str(tmp_path)]
    assert main([*argv, "--record", "--format", "parquet", "--quiet"]) == 0  # govlab seed
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and Path(printed[0]).exists()
    assert main([*argv, "--batch", "formats=delta,csv"]) == 1
    assert "valid formats" in capsys.readouterr().err
