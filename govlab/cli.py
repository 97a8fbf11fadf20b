"""The ``govlab`` command: a thin layer over the package's Python API.

Errors the caller can fix (bad policy, denied access, unknown dataset) print one line
on stderr and exit non-zero; they never print a traceback or a data value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from govlab.config import Settings
from govlab.errors import AccessDenied, GovlabError, PolicyError

EXIT_DENIED = 3
EXIT_INVALID = 2
EXIT_ERROR = 1

Handler = Callable[[argparse.Namespace], int]


def parse_attrs(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``K=V`` pairs; V is JSON when it parses (lists, numbers, booleans), else a string.

    JSON's ``NaN``/``Infinity`` are refused, not read as numbers: a NaN compares false
    with everything, so ``not (${user.x} < 3)`` would open every row.
    """
    attrs: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise GovlabError(f"--attr expects KEY=VALUE, got {pair!r}")
        try:
            attrs[key] = json.loads(raw, parse_constant=_refuse_constant)
        except json.JSONDecodeError:
            attrs[key] = raw
        except ValueError:
            raise GovlabError(f"--attr {key}: NaN and Infinity are not accepted") from None
    return attrs


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(getattr(args, "data_dir", None))


def cmd_seed(args: argparse.Namespace) -> int:
    if args.record or args.batch:
        from govlab.batch import run_recorded

        return run_recorded(args)
    from govlab.startup import arrow_without_pandas

    arrow_without_pandas()  # before the generators import pyarrow: ~0.15 s of pandas
    from govlab.seeding import seed_table, tqdm_progress

    progress, close = tqdm_progress(f"{args.dataset}/{args.size}/{args.format}")
    try:
        info = seed_table(
            args.dataset, args.size, args.format, _settings(args), args.seed, progress
        )
    finally:
        close()
    print(
        json.dumps(
            {
                "format": info.format,
                "dataset": info.dataset,
                "version": info.version,
                "rows": info.rows,
                "location": info.location,
            }
        )
    )
    return 0


def _principal(args: argparse.Namespace) -> Any:
    from govlab.policy import Principal

    return Principal(role=args.role, attrs=parse_attrs(args.attr), sub="cli")


def _policy(args: argparse.Namespace, dataset: str | None = None) -> Any:
    from govlab.catalog import get_dataset
    from govlab.policy import load_policy, validate_policy

    if not getattr(args, "policy", None):
        return None
    loaded = load_policy(args.policy)
    return validate_policy(loaded, get_dataset(dataset or loaded.policy.dataset))


def cmd_search(args: argparse.Namespace) -> int:
    from govlab.search import GovernedSearch, SearchQuery

    query = SearchQuery.parse(args.q, args.page, args.page_size, args.sort, args.exact_total)
    searcher = GovernedSearch(_settings(args))
    page = searcher.search(
        args.dataset, args.format, _principal(args), query, _policy(args, args.dataset)
    )
    print(json.dumps(page, indent=2 if args.pretty else None))
    return 0


def cmd_policy_validate(args: argparse.Namespace) -> int:
    loaded = _policy(args)
    roles = ", ".join(r.id for r in loaded.policy.roles)
    print(
        f"{args.policy}: valid policy for {loaded.policy.dataset} "
        f"(version {loaded.version}; roles: {roles})"
    )
    return 0


def cmd_policy_explain(args: argparse.Namespace) -> int:
    from govlab.policy.access import Action, authorize

    loaded = _policy(args)
    grant = authorize(loaded, _principal(args), Action.SEARCH, loaded.policy.dataset)
    plan = grant.bound_plan
    print(f"role:       {plan.role}")
    print(f"row filter: {plan.filter_sql}")
    print("masks:" + ("" if plan.masks else "      (none)"))
    for column, mask in sorted(plan.masks.items()):
        print(f"  {column}: {mask.describe()}")
    return 0


def cmd_policy_export(args: argparse.Namespace) -> int:
    """The role's view as SQL for another engine (sqlglot, per dialect)."""
    from govlab.catalog import get_dataset
    from govlab.policy.access import Action, authorize
    from govlab.policy.sql_export import export_sql

    loaded = _policy(args)
    dataset = loaded.policy.dataset
    grant = authorize(loaded, _principal(args), Action.SEARCH, dataset)
    plan = grant.bound_plan
    masks = {column: mask.type for column, mask in plan.masks.items()}
    view = args.view or f"{dataset}_{plan.role}"
    try:
        exported = export_sql(
            get_dataset(dataset).schema,
            plan.row_filter,
            masks,
            args.dialect,
            args.table or dataset,
            view,
        )
    except ValueError as exc:
        raise GovlabError(str(exc)) from None
    sys.stdout.write(exported.text)
    if exported.withheld:
        print(
            f"govlab: withheld as NULL (mask not computable in SQL): "
            f"{', '.join(exported.withheld)}; govlab export materialises them",
            file=sys.stderr,
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Everything the role may see, masked, to Parquet, computed by Daft."""
    from govlab.execution.export import check_target, export_parquet
    from govlab.policy.access import AccessControl, Action
    from govlab.policy.store import PolicyStore

    settings = _settings(args)
    access = AccessControl(PolicyStore(settings))
    grant = access.authorize(
        _principal(args), Action.EXPORT, args.dataset, policy=_policy(args, args.dataset)
    )

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"govlab: exported {done:,} of {total:,} rows", file=sys.stderr)

    result = export_parquet(settings, grant, args.format, check_target(args.out), progress)
    print(json.dumps(result.to_json(), indent=2 if args.pretty else None))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Copy the current local version of a table to GOVLAB_TABLES_URI."""
    from govlab.execution.objectstore import ObjectStore, publish

    store = ObjectStore.from_env()
    if store is None:
        raise GovlabError("set GOVLAB_TABLES_URI (s3://bucket/prefix) to publish")
    version = publish(_settings(args), args.format, args.dataset, store)
    target = store.table_uri(args.format, args.dataset)
    print(
        json.dumps(
            {"dataset": args.dataset, "format": args.format, "version": version, "location": target}
        )
    )
    return 0


def _register_distributed_commands(
    add: Callable[..., argparse.ArgumentParser], policy_sub: Any
) -> None:
    export_sql = policy_sub.add_parser(
        "export", help="a role's view as SQL for another engine (filter and masks)"
    )
    export_sql.set_defaults(handler=cmd_policy_export)
    export_sql.add_argument("policy")
    export_sql.add_argument(
        "--dialect", required=True, help="duckdb, spark, trino, sqlite, databricks, snowflake"
    )
    export_sql.add_argument("--table", help="the source table, [catalog.]schema.]name")
    export_sql.add_argument("--view", help="the view to create (default: <dataset>_<role>)")
    _principal_args(export_sql)

    export = add("export", cmd_export, "write what a role may see, masked, to Parquet (Daft)")
    export.add_argument("--dataset", required=True)
    export.add_argument("--format", default="delta")
    _principal_args(export)
    export.add_argument("--out", required=True, help="a new directory, or an s3:// prefix")
    export.add_argument("--policy", help="policy file instead of the live policy")
    export.add_argument("--data-dir")
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")
    export.add_argument("--pretty", action="store_true")

    publish = add("publish", cmd_publish, "copy a local table version to GOVLAB_TABLES_URI")
    publish.add_argument("--dataset", required=True)
    publish.add_argument("--format", default="delta")
    publish.add_argument("--data-dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="govlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(handler=handler)
        return p

    seed = add("seed", cmd_seed, "generate a dataset and write it as a new table version")
    seed.add_argument("--dataset", required=True)
    seed.add_argument("--size", default="tiny")
    seed.add_argument("--format", default="delta")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--data-dir")
    _add_record_arguments(seed)

    search = add("search", cmd_search, "print one governed page as JSON")
    search.add_argument("--dataset", required=True)
    search.add_argument("--format", default="delta")
    _principal_args(search)
    search.add_argument("-q", "--q", default="")
    search.add_argument("--page", type=int, default=1)
    search.add_argument("--page-size", type=int, default=20)
    search.add_argument("--sort")
    search.add_argument(
        "--exact-total",
        action="store_true",
        help="count every match (by default counting stops at GOVLAB_COUNT_LIMIT, 10,000)",
    )
    search.add_argument("--policy", help="policy file instead of the live policy")
    search.add_argument("--data-dir")
    search.add_argument("--pretty", action="store_true")

    policy = sub.add_parser("policy", help="validate or explain a policy file")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    validate = policy_sub.add_parser("validate", help="check a policy against its dataset")
    validate.set_defaults(handler=cmd_policy_validate)
    validate.add_argument("policy")
    explain = policy_sub.add_parser("explain", help="the bound filter and masks of a role")
    explain.set_defaults(handler=cmd_policy_explain)
    explain.add_argument("policy")
    _principal_args(explain)
    _register_service_commands(add)
    _register_distributed_commands(add, policy_sub)
    return parser


def _add_record_arguments(seed: argparse.ArgumentParser) -> None:
    """``--record`` / ``--batch``: seed through notebooks/seed.ipynb with papermill
    (``govlab.batch``, imported only then: it loads Jupyter's kernel machinery)."""
    seed.add_argument(
        "--record",
        action="store_true",
        help="execute notebooks/seed.ipynb with papermill and keep the executed notebook "
        "under --runs-dir (default runs/) as the record of the run",
    )
    seed.add_argument(
        "--batch",
        nargs="+",
        metavar="AXIS=V1,V2",
        help="record every combination, e.g. sizes=tiny,small formats=delta,parquet "
        "(an axis left out takes --dataset / --size / --format)",
    )
    seed.add_argument("--runs-dir", type=Path)
    seed.add_argument("--notebook", type=Path, help="default: notebooks/seed.ipynb")
    seed.add_argument("--quiet", action="store_true", help="do not echo the notebook output")


def cmd_ui(args: argparse.Namespace) -> int:
    from govlab.lab.voila import NOTEBOOK, serve_foreground

    notebook = args.notebook or str(NOTEBOOK)
    return serve_foreground(args.port, args.ip, notebook, args.voila_args)


def _principal_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True)
    p.add_argument("--attr", action="append", metavar="K=V", help="principal attribute")


def cmd_token(args: argparse.Namespace) -> int:
    from govlab.service.identity import mint_token, parse_ttl

    secret = _settings(args).secret_key()
    print(mint_token(secret, args.role, parse_attrs(args.attr), args.sub, parse_ttl(args.ttl)))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import redis
    from rq import Queue, Worker

    from govlab.engines import preload
    from govlab.service.jobs import QUEUE
    from govlab.service.redis_server import redis_url

    preload()  # work horses fork from here: each job starts with the engines imported
    conn = redis.Redis.from_url(redis_url(_settings(args)))
    Worker([Queue(QUEUE, connection=conn)], connection=conn).work(burst=args.burst)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """API plus a background worker, sharing one Redis (embedded unless REDIS_URL is set)."""
    import atexit
    import gc
    import signal
    import subprocess

    import uvicorn

    from govlab.config import api_port
    from govlab.service.api import create_app
    from govlab.service.redis_server import redis_url

    settings = _settings(args)
    port = args.port or api_port()
    os.environ["GOVLAB_DATA_DIR"] = str(settings.data_dir)
    os.environ["REDIS_URL"] = redis_url(settings)
    if args.demo_auth:
        os.environ["GOVLAB_DEMO_AUTH"] = "1"
    workers = [
        subprocess.Popen([sys.executable, "-m", "govlab.cli", "worker"])
        for _ in range(args.workers)
    ]
    atexit.register(_stop_processes, workers)  # runs before the embedded Redis stops (LIFO)
    app = create_app(settings, demo_auth=args.demo_auth or None)
    from govlab.engines import preload

    preload()  # before it listens: the first search on Iceberg no longer waits ~0.5 s
    # What start-up built lives as long as the server: moved out of the collector's
    # sight, a full collection no longer walks it in the middle of a request.
    gc.collect()
    gc.freeze()
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit
    # instead lets atexit stop the workers and the embedded Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        app, host=args.host, port=port, log_level=args.log_level, access_log=args.access_log
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from govlab.lab.demo import run_demo

    run_demo(_settings(args), args.dataset, args.format, args.q)
    return 0


def _stop_processes(processes: list[Any]) -> None:
    import subprocess

    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a worker stuck in shutdown is killed
            process.kill()


def _register_service_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    demo = add("demo", cmd_demo, "seed a tiny table and print what each role sees")
    demo.add_argument("--dataset", default="healthcare")
    demo.add_argument("--format", default="delta")
    demo.add_argument("-q", "--q", default="asthma")
    demo.add_argument("--data-dir")

    token = add("token", cmd_token, "mint a signed bearer token for the API")
    _principal_args(token)
    token.add_argument("--sub", help="subject (user id) claim")
    token.add_argument("--ttl", default="1h", help="lifetime: 3600, 30m, 1h, 7d")
    token.add_argument("--data-dir")

    worker = add("worker", cmd_worker, "run a seeding worker on the Redis queue")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--data-dir")

    serve = add("serve", cmd_serve, "serve the HTTP API (and a worker, and Redis if needed)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, help="default: PORT_DELTA_API, else 8000")
    serve.add_argument("--workers", type=int, default=1, help="background seeding workers")
    serve.add_argument(
        "--demo-auth",
        action="store_true",
        help="also accept unsigned X-User-Role/X-User-Context headers (demo only)",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="uvicorn's access log, path and status only (default off: the audit trail "
        "already records every request, and a log line costs a cache hit about a third)",
    )
    serve.add_argument("--data-dir")

    ui = add("ui", cmd_ui, "serve the stepper notebook as a web app with Voila")
    ui.add_argument("--port", type=int, default=8866)
    ui.add_argument("--ip", default="127.0.0.1")
    ui.add_argument("--notebook", help="default: notebooks/stepper.ipynb")
    ui.add_argument("voila_args", nargs=argparse.REMAINDER, help="passed on to voila")


def main(argv: Sequence[str] | None = None) -> int:
    from govlab.config import check_environment

    args = build_parser().parse_args(argv)
    try:
        check_environment()
        return int(args.handler(args))
    except PolicyError as exc:
        print(f"govlab: invalid policy: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except AccessDenied as exc:
        print(f"govlab: access denied: {exc}", file=sys.stderr)
        return EXIT_DENIED
    except GovlabError as exc:
        print(f"govlab: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except FileNotFoundError as exc:
        print(f"govlab: no such file: {exc.filename}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
