"""Cache hits over HTTP: ``govlab serve`` against the bare stack returning the same bytes.

Both servers run on this machine, bound to 127.0.0.1, against one Redis we start:

* govlab: ``govlab serve`` (uvicorn), every request authenticated, checked against
  the policy and the table version, looked up in Redis and audited;
* bare: ``benchmarks.bare_server`` (uvicorn + one Redis GET), serving the very body
  govlab returned for the same request, stored under a key of its own. It is sent the
  very same request (path, query, bearer token), which it ignores, so the client's
  cost of building and sending it is the same on both sides.

For each (format, role, query): one warm-up miss, then ``requests`` sequential GETs
on a keep-alive connection against each server, interleaved in rounds so background
load hits both alike (p50 / p95 latency); then ``concurrency`` clients at once for at
most ``seconds`` or ``concurrent_requests`` requests per server, split into alternating
rounds (throughput: the round with the median ratio of the two servers). The
ratios are govlab / bare (latency) and bare / govlab (throughput): 1.0 is the floor.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from govlab.config import Settings
from govlab.service.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
BARE_KEY = "bench:bare:page"
ROUNDS = 10  # requests alternate between the servers in this many rounds
VOCABULARY_SETTLE_S = 1.0  # after a case's first (missed) search, before hits are timed


def _summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(ms[len(ms) // 2], 3),
        "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 3),
        "n": len(ms),
    }


@contextmanager
def _servers(data_dir: Path, log: Callable[[str], None]) -> Any:
    """(govlab URL, bare URL, Redis client): one Redis, both servers on 127.0.0.1."""
    import redis

    from govlab.lab.client import ensure_server
    from govlab.service.redis_server import start_embedded

    with ExitStack() as stack:
        store = start_embedded(data_dir / "bench-http")
        stack.callback(store.stop)
        env_before = os.environ.get("REDIS_URL")
        os.environ["REDIS_URL"] = store.url  # the govlab child uses this Redis
        try:
            govlab_url = f"http://127.0.0.1:{free_port()}"
            server = ensure_server(
                govlab_url, data_dir=str(data_dir), log_path=str(data_dir / "serve.log")
            )
        finally:
            if env_before is None:
                os.environ.pop("REDIS_URL", None)
            else:
                os.environ["REDIS_URL"] = env_before
        stack.callback(server.stop)
        bare_port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.bare_server",
                "--port",
                str(bare_port),
                "--redis-url",
                store.url,
                "--key",
                BARE_KEY,
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(_stop, bare)
        bare_url = f"http://127.0.0.1:{bare_port}"
        _wait_up(bare_url, bare)
        log(f"http: govlab at {govlab_url}, bare stack at {bare_url}, Redis {store.url}")
        client = redis.Redis.from_url(store.url)
        stack.callback(client.close)
        yield govlab_url, bare_url, client


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the bare server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the bare server did not answer at {url}")


def _sequential(
    client: httpx.Client, url: str, params: dict[str, Any], headers: dict[str, str], n: int
) -> tuple[list[float], set[str]]:
    samples, statuses = [], set()
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url, params=params, headers=headers)
        samples.append(time.perf_counter() - t0)
        statuses.add(response.headers.get("X-Cache") or str(response.status_code))
    return samples, statuses


async def _throughput(
    url: str,
    params: dict[str, Any],
    headers: dict[str, str],
    concurrency: int,
    max_requests: int,
    seconds: float,
) -> dict[str, float]:
    """Requests per second of ``concurrency`` clients (bounded in count and time)."""
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done, errors
        while done < max_requests and time.perf_counter() < deadline:
            done += 1
            response = await client.get(url, params=params, headers=headers)
            if response.status_code != 200:
                errors += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(client.get(url, params=params, headers=headers) for _ in range(2)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "requests": done,
        "seconds": round(elapsed, 3),
        "rps": round(done / elapsed, 1),
        "errors": errors,
    }


def _alternating_throughput(
    urls: tuple[str, str],
    params: dict[str, Any],
    headers: dict[str, str],
    concurrency: int,
    max_requests: int,
    seconds: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """Throughput of both servers in ``ROUNDS`` alternating rounds (each bounded by a
    share of the requests and of the time), so a burst of background load falls on both
    alike. The pair of bursts (one round: back to back) at the median of the rounds'
    bare / govlab ratios: pairing cancels load that drifts between rounds (each server's
    own median round, used before, could pair bursts a second apart: 0.8-1.23x across
    cases that cost the same)."""
    rounds: tuple[list[dict[str, float]], list[dict[str, float]]] = ([], [])
    for _ in range(ROUNDS):
        for url, results in zip(urls, rounds, strict=True):
            results.append(
                asyncio.run(
                    _throughput(
                        url,
                        params,
                        headers,
                        concurrency,
                        max(concurrency, max_requests // ROUNDS),
                        seconds / ROUNDS,
                    )
                )
            )
    pairs = sorted(zip(*rounds, strict=True), key=lambda p: p[1]["rps"] / max(p[0]["rps"], 1e-9))
    govlab, bare = pairs[len(pairs) // 2]
    return govlab, bare


def bench_http(
    data_dir: Path,
    size: str,
    formats: list[str],
    cases: list[tuple[str, dict[str, Any], str, str]],
    requests: int,
    concurrency: int,
    concurrent_requests: int,
    seconds: float,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """One row per (format, case); ``cases`` are (role, attrs, query name, q)."""
    from govlab.service.identity import mint_token

    settings = Settings.from_env(data_dir)
    run_id = f"{os.getpid()}-{time.time_ns()}"
    results = []
    with _servers(data_dir, log) as (govlab_url, bare_url, store):
        secret = settings.secret_key()
        with httpx.Client(timeout=60) as client:
            for fmt in formats:
                for role, attrs, qname, q in cases:
                    # an attribute no filter uses, unique to this run (pages are keyed by
                    # the attribute set): the first GET is a real miss
                    token = mint_token(secret, role, {**attrs, "bench_run": run_id}, "bench", 3600)
                    headers = {"Authorization": f"Bearer {token}"}
                    params = {"dataset": "healthcare", "format": fmt, "q": q, "pageSize": 20}
                    search = f"{govlab_url}/search"
                    bare_search = f"{bare_url}/search"  # the same request: the client's
                    # cost of building the URL and headers falls on both sides alike
                    t0 = time.perf_counter()
                    first = client.get(search, params=params, headers=headers)
                    miss_ms = (time.perf_counter() - t0) * 1000
                    first.raise_for_status()
                    # a version's first search starts building its row-group vocabularies
                    # in the server (0.3 s at 5M rows): hits are timed once that is over
                    time.sleep(VOCABULARY_SETTLE_S)
                    hit = client.get(search, params=params, headers=headers)
                    store.set(BARE_KEY, hit.content)
                    same = client.get(bare_search, params=params, headers=headers).content == (
                        hit.content
                    )
                    samples: dict[str, list[float]] = {"govlab": [], "bare": []}
                    statuses: set[str] = set()
                    per_round = max(1, requests // ROUNDS)
                    for _ in range(ROUNDS):
                        got, seen = _sequential(client, search, params, headers, per_round)
                        samples["govlab"] += got
                        statuses |= seen
                        samples["bare"] += _sequential(
                            client, bare_search, params, headers, per_round
                        )[0]
                    row: dict[str, Any] = {
                        "size": size,
                        "format": fmt,
                        "role": role,
                        "query": qname,
                        "first_status": first.headers.get("X-Cache"),
                        "first_ms": round(miss_ms, 2),
                        "statuses": sorted(statuses),
                        "same_bytes": same,
                        "bytes": len(hit.content),
                        "govlab": _summary(samples["govlab"]),
                        "bare": _summary(samples["bare"]),
                    }
                    row["p50_ratio"] = round(row["govlab"]["p50_ms"] / row["bare"]["p50_ms"], 2)
                    row["govlab_rps"], row["bare_rps"] = _alternating_throughput(
                        (search, bare_search),
                        params,
                        headers,
                        concurrency,
                        concurrent_requests,
                        seconds,
                    )
                    row["rps_ratio"] = round(
                        row["bare_rps"]["rps"] / max(row["govlab_rps"]["rps"], 1e-9), 2
                    )
                    log(
                        f"http {size}/{fmt}/{role}/{qname}: miss {row['first_ms']} ms "
                        f"({row['first_status']}), hit p50 {row['govlab']['p50_ms']} ms vs bare "
                        f"{row['bare']['p50_ms']} ms (x{row['p50_ratio']}); {concurrency} "
                        f"clients {row['govlab_rps']['rps']} vs {row['bare_rps']['rps']} req/s "
                        f"(x{row['rps_ratio']}); same bytes: {same}"
                    )
                    results.append(row)
    return results
