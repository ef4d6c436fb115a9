"""CPU per topic publish by layer, with no socket between the caller and each layer.

One Opstage app (SQLite, NATS engine on a private nats-server) is served by uvicorn in this
process for the setup; then each layer of the publish path is called directly, by
``--publishers`` concurrent loops, for ``--duration`` seconds per round (layers alternate
within a round), and this process's CPU per call is reported — the minimum of the rounds, the
figure a busy machine inflates least. A layer's own cost is its figure minus the next one's.

    .venv/bin/python bench/topic_layers.py [--duration 2] [--rounds 3] [--publishers 16]

| layer | what it adds over the one below |
| --- | --- |
| app | ``OpstageApi`` and ``RequestContext`` (request id, metrics) |
| AgentHotPath | routing, the response envelope, ``orjson``, the two ASGI sends |
| _topic_publish | agent authentication, reading and parsing the body (pydantic) |
| publish_message | the name's resolution and the receipt's wire shape |
| topics.publish | header checks, quota, the agent's tenants and the topic (cached) |
| engine.publish | the NATS engine: one JetStream publish, pipelined (``pubsub/nats.py``) |

What it leaves out is what a socket costs: uvicorn's parsing and writes, the event loop's
wake-ups; ``bench/topics.py --ceiling`` measures those (a raw ASGI app under uvicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn
import uvloop

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from opstage_testing.inprocess import settings_from_environment  # noqa: E402
from opstage_testing.nats import NatsServer  # noqa: E402
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME  # noqa: E402
from topics import SERVER_ENV, _drive, setup  # noqa: E402

Layer = Callable[[int], Awaitable[Any]]


async def measure(nats_url: str, work: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    from opstage.api import hotpath
    from opstage.api.http_protocol import DeadlineHttpProtocol
    from opstage.api.models import TopicPublishRequest
    from opstage.api.routes.topics import publish_message
    from opstage.app import topics as topic_bus
    from opstage.domain.topics import OutgoingMessage, partition_for
    from opstage.server import create_server_app
    from opstage.store.migrate import upgrade_async

    database = f"sqlite:///{work / 'opstage.db'}"
    env = {
        **SERVER_ENV,
        "OPSTAGE_TOPIC_BUS_ENGINE": "nats",
        "OPSTAGE_NATS_URL": nats_url,
        "OPSTAGE_DATABASE_URL": database,
        "OPSTAGE_DATA_DIR": str(work),
        "OPSTAGE_SESSION_SECRET": "s" * 32,
        "OPSTAGE_ADMIN_USERNAME": ADMIN_USERNAME,
        "OPSTAGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "OPSTAGE_COOKIE_SECURE": "false",
    }
    await upgrade_async(database)
    settings = settings_from_environment(env)
    app: Any = create_server_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=DeadlineHttpProtocol.with_deadlines(
            settings.http_header_timeout_seconds, settings.http_body_timeout_seconds
        ),
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn says so by a flag, not an event)
        await asyncio.sleep(0.05)
    try:
        agent_id, token, wire = await asyncio.to_thread(setup, f"http://127.0.0.1:{port}")
        ctx = app.state.ctx
        # The same 16 bodies as bench/topics.lua.
        bodies = [
            orjson.dumps(
                {"topic": wire, "key": f"order-{i}", "payload": {"orderId": "o-1", "amount": 42}}
            )
            for i in range(1, 17)
        ]
        parsed = [TopicPublishRequest.model_validate_json(b) for b in bodies]
        messages = [OutgoingMessage(p.payload, p.key) for p in parsed]
        topic = await topic_bus.get_topic(ctx, wire, None)
        path = f"/api/agents/{agent_id}/topics/publish"
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(bodies[0])),
        ]

        def scope() -> dict[str, Any]:
            return {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", port),
                "state": {},
                "app": app,
            }

        def receive(i: int) -> Callable[[], Awaitable[dict[str, Any]]]:
            async def one() -> dict[str, Any]:
                return {"type": "http.request", "body": bodies[i % 16], "more_body": False}

            return one

        async def sent(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"the publish answered {message['status']}")

        hot = app.front.app  # RequestContext → AgentHotPath
        engine = ctx.topics.engine
        layers: dict[str, Layer] = {
            "app": lambda i: app(scope(), receive(i), sent),
            "AgentHotPath": lambda i: hot(scope(), receive(i), sent),
            "_topic_publish": lambda i: hotpath._topic_publish(ctx, scope(), receive(i), agent_id),
            "publish_message": lambda i: publish_message(ctx, agent_id, parsed[i % 16], None),
            "topics.publish": lambda i: topic_bus.publish(
                ctx,
                agent_id,
                wire,
                parsed[i % 16].payload,
                key=parsed[i % 16].key,
                headers={},
                idempotency_key=None,
            ),
            "engine.publish": lambda i: engine.publish(
                wire, partition_for(messages[i % 16].key or "", topic.partitions), messages[i % 16]
            ),
        }
        for layer in layers.values():  # warm every path once
            await _drive(layer, 0.3, args.publishers)
        cpu: dict[str, list[float]] = {name: [] for name in layers}
        for _ in range(args.rounds):
            for name, layer in layers.items():
                done, seconds = await _drive(layer, args.duration, args.publishers)
                cpu[name].append(seconds * 1e6 / done)
        return cpu
    finally:
        server.should_exit = True
        await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publishers", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(Path(tmp) / "nats").start()
        try:
            cpu = uvloop.run(measure(nats.url, Path(tmp), args))
        finally:
            nats.stop()
    names = list(cpu)
    print(f"CPU per publish, µs (min of {args.rounds} rounds; {args.publishers} publishers)")
    for i, name in enumerate(names):
        own = min(cpu[name]) - (min(cpu[names[i + 1]]) if i + 1 < len(names) else 0.0)
        rounds = ", ".join(f"{x:.1f}" for x in cpu[name])
        print(f"  {name:16} {min(cpu[name]):6.1f}   own {own:5.1f}   (rounds: {rounds})")


if __name__ == "__main__":
    main()
