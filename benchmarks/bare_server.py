"""The bare stack a govlab cache hit is compared with: uvicorn + Redis, nothing else.

    python -m benchmarks.bare_server --port 8123 --redis-url redis://127.0.0.1:6379/0 \
        --key bench:page

Every GET answers with the bytes stored at ``--key`` in Redis, as ``application/json``
with an ``X-Cache: HIT`` header: the floor for serving a cached page over HTTP on this
machine (one Redis GET, no auth, no policy, no audit). A plain ASGI callable on
uvicorn, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import uvicorn

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def make_app(redis_url: str, key: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app serving the value at ``key`` (404 when it is missing)."""
    client = aioredis.Redis.from_url(redis_url)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, client)
            return
        body = await client.get(key)
        status = 200 if body is not None else 404
        payload = body if body is not None else b'{"detail":"missing"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-cache", b"HIT"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


async def _lifespan(receive: Receive, send: Send, client: aioredis.Redis) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await client.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        make_app(args.redis_url, args.key),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
