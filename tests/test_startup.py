"""``govlab.startup.arrow_without_pandas``: a seed process never imports pandas, and
pandas still works with pyarrow in it afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CODE = """
import json, sys
from govlab.startup import arrow_without_pandas
arrow_without_pandas()
from govlab.config import Settings
from govlab.seeding import seed_table
info = seed_table("healthcare", "tiny", "parquet", Settings.from_env(sys.argv[1]))
before = "pandas" in sys.modules
import pandas as pd
import pyarrow as pa
frame = pa.table({"a": [1, 2], "b": ["x", None]}).to_pandas()
back = pa.Table.from_pandas(frame, preserve_index=False)
categorical = pa.array(pd.Categorical(["u", "v", "u"]))
stamp = pa.scalar(pd.Timestamp("2024-01-02", tz="UTC"))
print(json.dumps([info.rows, before, back.num_rows, str(categorical.type), str(stamp.type)]))
"""


def test_seed_without_pandas_then_pandas_works(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows, imported, back, categorical, stamp = json.loads(out.stdout.strip().splitlines()[-1])
    assert (rows, imported, back) == (1_000, False, 2)
    assert categorical.startswith("dictionary<values=") and "indices=int8" in categorical
    assert stamp.startswith("timestamp[") and "UTC" in stamp


def test_cli_seed_imports_no_pandas(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from govlab.cli import main\n"
        "main(['seed', '--dataset', 'healthcare', '--size', 'tiny', '--format', 'parquet',\n"
        f"      '--data-dir', {str(tmp_path)!r}])\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
