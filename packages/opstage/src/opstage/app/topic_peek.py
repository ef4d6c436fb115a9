"""Reading a topic's messages without consuming them: the console's peek at a topic or a DLQ
(a DLQ is an ordinary topic, ADR 0015, so its messages carry their ``opstage.origin.*`` headers).

A peek joins no consumer group and commits nothing. It reads through the engine port's
``read`` and ``offsets``, so it works the same on every engine.

- With a ``partition`` and a ``start``: up to ``limit`` messages of that partition from
  ``start`` on, and the offset to ask for next (``None`` once the partition's end is reached).
- With a ``partition`` only: its latest ``limit`` messages.
- With neither: the latest ``limit`` messages of the whole topic, by produce time.
"""

from __future__ import annotations

from dataclasses import dataclass

from opstage.app.topic_ports import EngineTopicMissing, TopicEngineError
from opstage.app.topics import (
    TopicContext,
    _bus,
    engine_unavailable,
    get_topic,
    topic_not_found,
)
from opstage.domain.errors import ValidationFailed
from opstage.domain.topics import Delivered, PartitionOffsets, Topic

MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Peek:
    topic: Topic
    bounds: dict[int, PartitionOffsets]
    messages: list[Delivered]
    next_start: int | None


def _check(topic: Topic, partition: int | None, start: int | None) -> None:
    issues = []
    if partition is not None and not 0 <= partition < topic.partitions:
        issues.append(
            {"path": "partition", "message": f"the topic has partitions 0-{topic.partitions - 1}"}
        )
    if start is not None and partition is None:
        issues.append({"path": "from", "message": "an offset needs a partition"})
    if issues:
        raise ValidationFailed("Query validation failed.", issues)


async def peek(
    ctx: TopicContext, wire: str, partition: int | None, start: int | None, limit: int
) -> Peek:
    """``wire`` is read for an admin (every tenant); an unknown topic is 404."""
    topic = await get_topic(ctx, wire, None)
    _check(topic, partition, start)
    engine = _bus(ctx).engine
    try:
        bounds = await engine.offsets(wire)
        if partition is not None and start is not None:
            found = await engine.read(wire, partition, start, limit)
            end = bounds[partition].end if partition in bounds else 0
            after = found[-1].offset + 1 if found else max(start, end)
            return Peek(topic, bounds, found, after if after < end else None)
        latest: list[Delivered] = []
        for p, b in sorted(bounds.items()):
            if partition is None or p == partition:
                latest += await engine.read(wire, p, max(b.first, b.end - limit), limit)
    except EngineTopicMissing as exc:
        raise topic_not_found() from exc
    except TopicEngineError as exc:
        raise engine_unavailable(exc) from exc
    latest.sort(key=lambda m: (m.timestamp, m.partition, m.offset))
    return Peek(topic, bounds, latest[-limit:], None)
