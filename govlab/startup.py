"""Start-up of short command-line processes.

pyarrow asks whether pandas is installed the first time it builds an array from
Python or numpy data (``pa.array``), and to answer it imports pandas: about 0.15 s on
the main thread of a ``govlab seed`` process, before the generators (which build their
vocabularies at import) can start. A seed never hands pandas objects to pyarrow.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not imported by this process's probe")
        return None


def arrow_without_pandas() -> None:
    """Let pyarrow's pandas probe answer "no pandas" without importing it.

    Only the probe is answered: pyarrow retries the import wherever pandas is really
    needed (``to_pandas``, ``from_pandas``), so pandas still works in this process.
    Does nothing once pandas is imported or pyarrow has probed for it.
    """
    if "pandas" in sys.modules or "pyarrow" in sys.modules:
        return
    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        import pyarrow as pa

        # pyarrow probes once per process: in its pandas shim (first array from Python or
        # numpy data) and in its C++ conversion of Python objects (first scalar)
        pa.array([0])
        pa.scalar("")
    finally:
        sys.meta_path.remove(blocker)
