"""Search a Delta Lake 4 table through the govlab API as two roles and print the differences.

    .venv/bin/govlab serve --port 8000 &                       # API + worker + Redis
    .venv/bin/python examples/python/search_delta_redis.py     # --url http://127.0.0.1:8000
    .venv/bin/python examples/python/search_delta_redis.py --start --data-dir /tmp/govlab

1. Mint one signed token per principal with ``GovlabClient.for_role``: a clinician
   (attribute id=C007) and a business user. Tokens are signed with the deployment
   secret, ``GOVLAB_SECRET``, else the key file in the server's data root
   (``--data-dir``, else ``GOVLAB_DATA_DIR``, else govlab's default data root): this
   script must share the server's secret.
2. If the Delta table is missing (the API answers 404), seed it through the API
   (``POST /seed``, then poll ``/progress`` until the worker finishes), as an
   operator: rewriting a shared table needs ``can_seed`` (the admin role here).
3. ``GET /search`` as each role, twice: the first answer may come from the tables
   (``X-Cache: MISS``), the repeat from the Redis page cache (``HIT``), keyed per
   principal so the two roles never share a page.
4. Print the rows each role may see (RLS), the columns masked for each (CLS), a couple
   of rows side by side and one patient as each role is served it.

Exit status: 0 when both searches succeeded and looked right, 1 on an API error or a
failed check, 2 when no API answers at ``--url``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import httpx
from _showcase import (
    DATASET,
    PRINCIPALS,
    View,
    find_by_key,
    print_masks,
    print_rows_side_by_side,
    print_same_record,
    print_summary,
    problems_with,
)

from govlab.config import Settings
from govlab.generators import get_dataset
from govlab.lab.client import DEFAULT_URL, ApiError, GovlabClient, LocalServer, ensure_server

FORMAT = "delta"
SEED_TIMEOUT_S = 600


def ensure_table(client: GovlabClient, size: str) -> None:
    """Seed the Delta table through the API when it does not exist yet."""
    try:
        client.search(DATASET, FORMAT, page_size=1)
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    print(f"{FORMAT} table {DATASET!r} not found: seeding size {size} through the API")
    job_id = client.seed(DATASET, size=size, format=FORMAT)
    record = client.wait(job_id, timeout_s=SEED_TIMEOUT_S)
    if record["status"] != "completed":
        raise ApiError(500, f"seed job {job_id} {record['status']}: {record.get('error')}")
    print(
        f"seeded {record['rowsWritten']} rows, table version {record.get('tableVersion')} "
        f"(job {job_id})\n"
    )


def search_twice(client: GovlabClient, q: str, page_size: int) -> tuple[dict[str, Any], str]:
    """The page, and the cache statuses of a first and a repeated identical request."""
    first = client.search(DATASET, FORMAT, q=q, page_size=page_size)
    again = client.search(DATASET, FORMAT, q=q, page_size=page_size)
    return again, f"{first['strategy']['cache']} then {again['strategy']['cache']}"


def run(url: str, settings: Settings, size: str, q: str, page_size: int, n_rows: int) -> int:
    clients = [
        GovlabClient.for_role(role, attrs, base_url=url, settings=settings)
        for _, role, attrs in PRINCIPALS
    ]
    try:
        health = clients[0].health()
        print(f"API {url}: {health['status']} (redis {health['redis']})\n")
        operator = GovlabClient.for_role("admin", base_url=url, settings=settings)
        try:
            ensure_table(operator, size)  # rewriting the table needs can_seed
        finally:
            operator.close()
        views = []
        for (label, _, _), client in zip(PRINCIPALS, clients, strict=True):
            page, cache = search_twice(client, q, page_size)
            masks = client.validate(DATASET, FORMAT)["maskedColumns"]
            views.append(View(label, page, masks))
            print(
                f"{label}: table version {page['tableVersion']}, policy "
                f"{page['policyVersion']}, cache {cache}, {page['tookMs']} ms"
            )
        print()
        print(f"== {DATASET} / {FORMAT} through {url}, q={q!r} ==")
        print_summary(views)
        spec = get_dataset(DATASET)
        print_masks(views, spec.schema.names)
        print_rows_side_by_side(views, n_rows)

        clinician, business = views
        if clinician.items:
            key, value = spec.primary_key, clinician.items[0][spec.primary_key]

            def business_page(number: int) -> dict[str, Any]:
                return clients[1].search(DATASET, FORMAT, q=q, page=number, page_size=200, sort=key)

            same = find_by_key(business_page, key, value)
            print_same_record(
                key, value, [(clinician.label, clinician.items[0]), (business.label, same)]
            )
    except ApiError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        if exc.status == 401:
            print(
                "  the token was refused: this script must use the server's secret "
                "(GOVLAB_SECRET, or --data-dir pointing at the server's data root)",
                file=sys.stderr,
            )
        return 1
    finally:
        for client in clients:
            client.close()

    problems = problems_with(views)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"govlab API (default {DEFAULT_URL})")
    parser.add_argument(
        "--data-dir", help="the server's data root, for its secret (default: GOVLAB_DATA_DIR)"
    )
    parser.add_argument("--size", default="tiny", help="size to seed when the table is missing")
    parser.add_argument("-q", "--q", default="", help="search text (default: every row)")
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--show-rows", type=int, default=2, help="rows per role to print")
    parser.add_argument(
        "--start", action="store_true", help="start `govlab serve` at --url if none answers"
    )
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    settings = Settings.from_env(args.data_dir)

    server: LocalServer | None = None
    try:
        if args.start:
            server = ensure_server(url, data_dir=str(settings.data_dir))
        return run(url, settings, args.size, args.q, args.page_size, args.show_rows)
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"no govlab API at {url} ({type(exc).__name__}: {exc})", file=sys.stderr)
        print("  start one with `govlab serve`, or pass --start", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
