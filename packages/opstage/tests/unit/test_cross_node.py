"""What a node's commits tell the others and what theirs wake here (ADR 0016)."""

from __future__ import annotations

import asyncio

from opstage.app.agents import AgentAuthCache
from opstage.app.cross_node import AUTH_KEY_PREFIX, CrossNode
from opstage.app.event_log import LOG_WAKE_KEY, STREAM_SUBSCRIPTION
from opstage.app.eventbus import DomainEventBus
from opstage.app.waiters import Waiters
from opstage.domain.events import AgentCredentialsChanged, CommandCreated, UserChanged

CREATED = CommandCreated("c1", "a1", "s1", "ACTION", "ping")


def test_a_unit_with_events_tells_the_others_the_log_grew_unless_the_relay_carries_them() -> None:
    cross = CrossNode(DomainEventBus(), Waiters(), AgentAuthCache())
    assert cross.keys([]) == []
    assert cross.keys([UserChanged("u", "created")]) == [LOG_WAKE_KEY]
    assert cross.keys([CREATED]) == ["agent:a1", LOG_WAKE_KEY]
    connected = [True]
    cross.relay_connected = lambda: connected[0]
    assert cross.keys([CREATED]) == ["agent:a1"]  # long-polls still by the database
    connected[0] = False  # NATS is away: the database carries the key again
    assert cross.keys([CREATED]) == ["agent:a1", LOG_WAKE_KEY]
    off = CrossNode(DomainEventBus(), Waiters(), AgentAuthCache(), "off")
    assert off.keys([CREATED]) == ["agent:a1"]
    # Credentials go by the database in every mode, relay or not.
    assert off.keys([AgentCredentialsChanged("a1")]) == [AUTH_KEY_PREFIX + "a1"]


def test_the_log_key_a_gap_or_a_relayed_batch_wakes_the_live_streams() -> None:
    async def main() -> None:
        bus = DomainEventBus()
        waiters = Waiters()
        cross = CrossNode(bus, waiters, AgentAuthCache())
        stream = bus.subscribe(STREAM_SUBSCRIPTION)
        poll = waiters.register("agent:a1")
        relaying = asyncio.create_task(waiters.run(bus))  # relayed events wake long-polls
        await asyncio.sleep(0)

        async def woken() -> bool:
            try:
                await asyncio.wait_for(stream.wait(), 0.05)
            except TimeoutError:
                return False
            while stream.try_recv() is not None:
                pass
            return True

        cross.on_keys(["agent:a1"])
        assert poll.is_set() and not await woken()
        cross.on_keys([LOG_WAKE_KEY])
        assert await woken() and cross.log_wakeups == 1
        cross.on_gap()
        assert await woken()
        poll.clear()
        cross.on_relayed([CREATED])
        assert await woken() and cross.relayed_events == 1
        await asyncio.wait_for(poll.wait(), 1)
        relaying.cancel()

    asyncio.run(main())


def test_another_nodes_credential_change_or_a_gap_forgets_cached_agents() -> None:
    auth = AgentAuthCache()
    cross = CrossNode(DomainEventBus(), Waiters(), auth)
    for agent in ("a1", "a2", "a3"):
        auth.put("hash-" + agent, {"agent_id": agent})
    cross.on_keys([AUTH_KEY_PREFIX + "a1", "agent:a2"])
    assert auth.get("hash-a1") is None and auth.get("hash-a2") is not None
    cross.on_relayed([AgentCredentialsChanged("a2")])
    assert auth.get("hash-a2") is None and auth.get("hash-a3") is not None
    cross.on_gap()  # what was missed is unknown
    assert auth.get("hash-a3") is None
