"""The NATS relay's receiving side (ADR 0016): another node's batch becomes domain events; its
own, a repeat, a malformed message or a kind this version does not know are passed over."""

from __future__ import annotations

from opstage.domain.events import CommandCreated, DomainEvent, UserChanged
from opstage.pubsub.event_relay import NatsEventRelay, encode


def relay() -> tuple[NatsEventRelay, list[list[DomainEvent]]]:
    got: list[list[DomainEvent]] = []
    return NatsEventRelay("nats://unused", "@me", got.append), got


def test_another_nodes_batch_is_rebuilt_as_its_events() -> None:
    r, got = relay()
    events = [CommandCreated("c1", "a1", "s1", "ACTION", "ping"), UserChanged("u1", "disabled")]
    r._deliver(encode("@other", 1, events))
    assert got == [events]
    assert r.received == 1


def test_own_and_repeated_batches_are_passed_over() -> None:
    r, got = relay()
    event = UserChanged("u1", "created")
    r._deliver(encode("@me", 1, [event]))  # this node's own: no echo
    r._deliver(encode("@other", 7, [event]))
    r._deliver(encode("@other", 7, [event]))  # the same batch again
    r._deliver(encode("@third", 7, [event]))  # same sequence, another node: new
    assert got == [[event], [event]]
    assert r.duplicates == 1


def test_malformed_or_unknown_content_never_raises() -> None:
    r, got = relay()
    r._deliver(b"not json")
    r._deliver(b'{"o": "@x"}')
    r._deliver(b'{"o": "@x", "s": 1, "e": [["no.such.kind", {}], ["user.changed", {"x": 1}], 5]}')
    assert got == [[]]  # the log grew on that node: streams still re-read


def test_offer_queues_a_batch_per_unit_in_order() -> None:
    r, _ = relay()
    r.offer([])
    r.offer([UserChanged("u1", "created")])
    r.offer([UserChanged("u2", "created")])
    assert len(r._queue) == 2
    assert b'"s":1' in r._queue[0] and b'"s":2' in r._queue[1]
