"""The floor of one Python HTTP process: a raw ASGI app under the uvicorn Opstage runs (uvloop,
httptools) that reads a request's body and answers a fixed publish receipt. No middleware, no
routing, no work: what `bench/topics.py --ceiling` compares the publish path with.

    .venv/bin/python bench/raw_asgi.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

BODY = (
    b'{"success":true,"data":{"topic":"bench.default.t","partition":1,"offset":1,'
    b'"produced_at":"2026-12-07T03:00:00.000Z"}}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )
