"""OpHub thin-forwarding against a real server and a small local adapter started here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from agent_harness import (
    Operator,
    RecordingTransport,
    ServerProcess,
    agent_config,
    unique,
    wait_until,
)
from opstage_agent import AsyncAgent
from opstage_agent.ophub import Adapter, OpHubForwarder


class LocalAdapter:
    """Serves ``GET /capsule/bus/events?after=&limit=`` from a list, as an adapter would."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.afters: list[str | None] = []
        self.override: bytes | None = None  # a broken adapter's answer
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/capsule/bus/events":
                    self.send_error(404)
                    return
                query = parse_qs(url.query)
                after = query.get("after", [None])[0]
                limit = int(query.get("limit", ["100"])[0])
                adapter.afters.append(after)
                ids = [e["id"] for e in adapter.events]
                start = ids.index(after) + 1 if after in ids else 0
                page = adapter.events[start : start + limit]
                body = {"events": page, "nextCursor": page[-1]["id"] if page else after}
                raw = (
                    adapter.override if adapter.override is not None else json.dumps(body).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, event_id: str, event_type: str, payload: dict[str, Any], **extra: Any) -> None:
        self.events.append({"id": event_id, "eventType": event_type, "payload": payload, **extra})

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def adapter() -> Iterator[LocalAdapter]:
    local = LocalAdapter()
    yield local
    local.close()


@pytest.fixture
def other_adapter() -> Iterator[LocalAdapter]:
    local = LocalAdapter()
    yield local
    local.close()


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


async def test_each_adapter_event_is_forwarded_once_and_a_restart_resumes_from_the_cursor(
    polling_server: ServerProcess,
    polling_operator: Operator,
    tmp_path: Path,
    adapter: LocalAdapter,
) -> None:
    agent = AsyncAgent(agent_config(polling_server, polling_operator, tmp_path))
    code = agent.config.effective_service_code
    received: list[dict[str, Any]] = []

    @agent.action(name="onThing", label="React to a new thing")
    def on_thing(payload: dict[str, Any]) -> None:
        received.append(payload)

    for i in (1, 2, 3):
        adapter.add(f"e{i}", "thing.created", {"id": i}, correlationId=f"corr-{i}")
    adapter.add("e4", "thing.created", {"id": 4}, sourceServiceCode="no-such-service")
    cursors = tmp_path / "ophub-cursors.json"

    async with agent:
        await agent.wait_ready(15)
        await in_thread(
            polling_operator.client.data,
            "POST",
            "/api/admin/bus/routes",
            json={
                "name": f"{code} things",
                "status": "ENABLED",
                "match": {"eventType": "thing.created", "sourceServiceCode": code},
                "target": {"serviceCode": code, "actionName": "onThing"},
            },
        )
        hub = OpHubForwarder(agent, [Adapter("local", adapter.url)], cursor_file=cursors)
        assert await hub.forward_once() == 4
        assert hub.stats.forwarded == 3
        # The bus refused e4 for good (unknown source): reported, passed over, not retried.
        assert hub.stats.rejected == [("local", "e4", "BUS_SOURCE_SERVICE_NOT_FOUND")]
        assert await hub.forward_once() == 0
        assert adapter.afters[-1] == "e4"
        assert cursors.stat().st_mode & 0o777 == 0o600

        # A restarted OpHub reads its cursor: only the new event goes out.
        adapter.add("e5", "thing.created", {"id": 5})
        restarted = OpHubForwarder(agent, [Adapter("local", adapter.url)], cursor_file=cursors)
        assert await restarted.forward_once() == 1
        assert restarted.stats.forwarded == 1

        # Cursor lost (a crash before it was saved): everything is re-sent, and the bus
        # answers each from the original publish — no second event, no second command.
        amnesiac = OpHubForwarder(
            agent, [Adapter("local", adapter.url)], cursor_file=tmp_path / "lost.json"
        )
        assert await amnesiac.forward_once() == 5
        assert (amnesiac.stats.forwarded, amnesiac.stats.replays) == (0, 4)

        await in_thread(wait_until, lambda: len(received) >= 4, 15)
        await asyncio.sleep(1.0)  # room for a duplicate command to show up, if one existed
    assert sorted(p["payload"]["id"] for p in received) == [1, 2, 3, 5]
    assert {p["busEvent"]["correlationId"] for p in received} >= {"corr-1", "corr-2", "corr-3"}


async def test_an_unreachable_adapter_does_not_stop_the_others(
    polling_server: ServerProcess,
    polling_operator: Operator,
    tmp_path: Path,
    adapter: LocalAdapter,
) -> None:
    adapter.add("a1", "thing.seen", {"n": 1})
    async with AsyncAgent(agent_config(polling_server, polling_operator, tmp_path)) as agent:
        await agent.wait_ready(15)
        hub = OpHubForwarder(
            agent,
            [Adapter("down", "http://127.0.0.1:9"), Adapter("up", adapter.url)],
            cursor_file=tmp_path / "c.json",
        )
        assert await hub.forward_once() == 1
        assert hub.stats.adapter_errors == 1
        assert hub.stats.forwarded == 1


async def test_a_broken_adapter_answer_forwards_nothing_and_keeps_the_cursor(
    polling_server: ServerProcess,
    polling_operator: Operator,
    tmp_path: Path,
    adapter: LocalAdapter,
) -> None:
    adapter.add("b1", "thing.seen", {"n": 1})
    cursors = tmp_path / "c.json"
    async with AsyncAgent(agent_config(polling_server, polling_operator, tmp_path)) as agent:
        await agent.wait_ready(15)
        hub = OpHubForwarder(agent, [Adapter("flaky", adapter.url)], cursor_file=cursors)
        for broken in (b"not json", b'{"events": "nope"}', b'{"events": [{"eventType": "x"}]}'):
            adapter.override = broken
            assert await hub.forward_once() == 0
        assert hub.stats.adapter_errors == 3
        assert (hub.stats.forwarded, hub.stats.rejected) == (0, [])
        assert not cursors.exists()
        adapter.override = None  # healed: the first event is still the next one
        assert await hub.forward_once() == 1
        assert adapter.afters[-1] is None and hub.stats.forwarded == 1


async def test_an_ophub_agent_registers_bare_and_forwards_the_events_of_the_services_it_fronts(
    polling_server: ServerProcess,
    polling_operator: Operator,
    tmp_path: Path,
    adapter: LocalAdapter,
    other_adapter: LocalAdapter,
) -> None:
    crm, mail = unique("crm"), unique("mail")
    async with AsyncAgent(agent_config(polling_server, polling_operator, tmp_path)) as neighbour:
        await neighbour.wait_ready(15)
        foreign = neighbour.config.effective_service_code  # a service the hub does not own

    adapter.add("c1", "contact.created", {"n": 1}, sourceServiceCode=crm)
    adapter.add("c2", "contact.created", {"n": 2}, sourceServiceCode=foreign)
    adapter.add("c3", "contact.created", {"n": 3}, sourceServiceCode=crm)
    other_adapter.add("m1", "mail.received", {"n": 1})  # source: the adapter's service_code
    other_adapter.add("m2", "mail.received", {"n": 2}, sourceServiceCode=mail)
    wire = RecordingTransport()
    config = agent_config(
        polling_server,
        polling_operator,
        tmp_path,
        agent_mode="ophub",
        ophub_services=(crm, mail),
    )
    async with AsyncAgent(config, transport=wire) as agent:
        await agent.wait_ready(15)
        assert agent.agent_id is not None
        (registration,) = [e for e in wire.exchanges if e.path == "/api/agents/register"]
        assert registration.request_body["agent"]["mode"] == "ophub"
        assert "service" not in registration.request_body
        hub = OpHubForwarder(
            agent,
            [Adapter("crm", adapter.url), Adapter("mail", other_adapter.url, service_code=mail)],
            cursor_file=tmp_path / "hub-cursors.json",
            interval_seconds=0.05,
        )
        runner = asyncio.create_task(hub.run())
        try:
            await in_thread(wait_until, lambda: hub.stats.forwarded + len(hub.stats.rejected) >= 5)
            # The refusal did not stop the runner: what the adapters add later still goes out.
            adapter.add("c4", "contact.created", {"n": 4}, sourceServiceCode=crm)
            other_adapter.add("m3", "mail.received", {"n": 3})
            await in_thread(wait_until, lambda: hub.stats.forwarded >= 6)
            await asyncio.sleep(0.3)  # a few more rounds: room for a second send, if one existed
            assert not runner.done()
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    assert hub.stats.rejected == [("crm", "c2", "BUS_SOURCE_SERVICE_FORBIDDEN")]
    assert (hub.stats.forwarded, hub.stats.replays, hub.stats.adapter_errors) == (6, 0, 0)
    publishes = [e for e in wire.exchanges if e.path.endswith("/bus/events")]
    sent = sorted(
        (e.request_body["sourceServiceCode"], e.request_body["payload"]["n"]) for e in publishes
    )
    expected = [(crm, 1), (crm, 3), (crm, 4), (foreign, 2), (mail, 1), (mail, 2), (mail, 3)]
    assert sent == sorted(expected)  # each adapter event sent once, none twice
    assert {e.status for e in publishes if e.request_body["sourceServiceCode"] != foreign} == {200}
    (refused,) = [e for e in publishes if e.request_body["sourceServiceCode"] == foreign]
    assert refused.status == 403
    assert refused.response_body["error"]["code"] == "BUS_SOURCE_SERVICE_FORBIDDEN"

    # Opstage holds each accepted event once, under the service that emitted it.
    accepted = await in_thread(
        polling_operator.client.data, "GET", "/api/admin/bus/events", params={"pageSize": 100}
    )
    stored = sorted(
        (e["sourceServiceCode"], e["payload"]["n"])
        for e in accepted
        if e["agentId"] == agent.agent_id
    )
    assert stored == sorted(pair for pair in expected if pair[0] != foreign)
    assert polling_operator.agent(agent.agent_id)["mode"] == "ophub"
    fronted = {s["code"] for s in polling_operator.services_of(agent.agent_id)}
    assert fronted == {config.effective_service_code, crm, mail}
