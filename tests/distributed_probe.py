"""Run governed searches and exports in a fresh process, configured only by the
environment (GOVLAB_EXECUTION, GOVLAB_RAY_ADDRESS, GOVLAB_TABLES_URI, ...), and print
the results as JSON. The distributed tests start it against their Ray cluster: Daft
picks its runner once per process, and the test process already runs Daft natively.

stdin: ``{"data_dir": ..., "searches": [[dataset, fmt, role, attrs, q, page, size, sort]],
"exports": [[dataset, fmt, role, attrs, target]]}``
"""

from __future__ import annotations

import json
import sys
from typing import Any

from govlab.config import Settings, check_environment
from govlab.policy import Principal
from govlab.policy.access import AccessControl, Action
from govlab.policy.store import PolicyStore
from govlab.search import GovernedSearch, SearchQuery


def main() -> int:
    check_environment()
    request = json.load(sys.stdin)
    settings = Settings.from_env(request["data_dir"])
    searcher = GovernedSearch(settings)
    pages: list[dict[str, Any]] = []
    for dataset, fmt, role, attrs, q, page, size, sort in request.get("searches", []):
        query = SearchQuery.parse(q, page, size, sort)
        pages.append(searcher.search(dataset, fmt, Principal(role, attrs), query))
    exports = []
    for dataset, fmt, role, attrs, target in request.get("exports", []):
        from govlab.execution.export import export_parquet

        access = AccessControl(PolicyStore(settings))
        grant = access.authorize(Principal(role, attrs), Action.EXPORT, dataset)
        exports.append(export_parquet(settings, grant, fmt, target).to_json())
    from govlab.execution.daft import ensure_runner

    json.dump({"runner": ensure_runner(), "pages": pages, "exports": exports}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
