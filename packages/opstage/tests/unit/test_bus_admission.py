"""The admission rules as a pure function (ADR 0009): no database, rows in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opstage.app.bus_admission import BusLimits, Publish, ReadSet, Wants, admit
from opstage.app.bus_window import IngestWindows
from opstage.app.context import Actor
from opstage.domain.errors import DomainError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LIMITS = BusLimits(
    per_minute=2,
    max_depth=1,
    idempotency_hours=24,
    offline_threshold_seconds=30,
    default_timeout_seconds=60,
)
SOURCE = {"id": "svc_1", "code": "src", "agent_id": "agt_a"}


def _publish(agent: str = "agt_a", key: str | None = None, **body: Any) -> Publish:
    return Publish(
        Actor("AGENT", agent), agent, {"eventType": "t", "sourceServiceCode": "src", **body}, key
    )


def _reads(**keys: Any) -> ReadSet:
    return ReadSet(services_by_code={"src": SOURCE}, routes_by_type={"t": []}, keys=keys)


def _stored(accepted_at: datetime) -> dict[str, Any]:
    response = {"eventId": "bev_old", "experimental": "v0.4-experimental", "routedCommands": []}
    return {"id": "bev_old", "accepted_at": accepted_at, "response": response}


def _code(outcome: Any) -> str | None:
    return outcome.code if isinstance(outcome, DomainError) else None


def test_ownership_is_checked_before_a_replay() -> None:
    reads = _reads()
    reads.keys = {("agt_b", "k"): _stored(NOW)}
    out = admit([_publish("agt_b", "k")], reads, LIMITS, IngestWindows(), NOW)
    assert _code(out.outcomes[0]) == "BUS_SOURCE_SERVICE_FORBIDDEN"
    assert out.writes.bus_events == [] and out.slots == []


def test_a_stored_key_is_a_replay_and_takes_no_slot() -> None:
    reads = _reads()
    reads.keys = {("agt_a", "k"): _stored(NOW - timedelta(hours=1))}
    out = admit([_publish(key="k")], reads, LIMITS, IngestWindows(), NOW)
    assert out.outcomes[0] == {**_stored(NOW)["response"], "replay": True}
    assert out.writes.bus_events == [] and out.slots == []


def test_an_expired_key_is_freed_and_the_event_admitted() -> None:
    reads = _reads()
    reads.keys = {("agt_a", "k"): _stored(NOW - timedelta(hours=25))}
    out = admit([_publish(key="k")], reads, LIMITS, IngestWindows(), NOW)
    assert out.writes.expired_keys == [("agt_a", "k")]
    assert [e["idempotency_key"] for e in out.writes.bus_events] == ["k"]


def test_a_refused_event_writes_nothing_and_gives_its_slot_back() -> None:
    windows = IngestWindows()
    batch = [
        _publish(key="a"),
        _publish(key="a"),  # the same key again in the batch: a replay of the first
        _publish(causationId="bev_deep"),  # refused by the depth guard after taking a slot
        _publish(),
        _publish(),  # over the limit of two a minute
    ]
    reads = _reads()
    reads.events = {"bev_deep": {"id": "bev_deep", "depth": 1}}
    out = admit(batch, reads, LIMITS, windows, NOW)
    codes = [_code(o) for o in out.outcomes]
    assert codes == [None, None, "BUS_DEPTH_EXCEEDED", None, "BUS_RATE_LIMITED"]
    assert out.outcomes[1] == {**out.outcomes[0], "replay": True}  # type: ignore[dict-item]
    assert len(out.writes.bus_events) == 2 and len(out.slots) == 2
    assert len(windows._times["agt_a"]) == 2
    received = [a for a in out.writes.audit if a["action"] == "bus.event.received"]
    assert [a["target_id"] for a in received] == [e["id"] for e in out.writes.bus_events]


def test_wants_names_the_read_set() -> None:
    batch = [_publish(key="k", causationId="bev_1"), _publish("agt_b", eventType="u")]
    wants = Wants.of(batch)
    assert (wants.source_codes, wants.event_types) == (["src"], ["t", "u"])
    assert (wants.cause_ids, wants.key_pairs) == (["bev_1"], [("agt_a", "k")])
