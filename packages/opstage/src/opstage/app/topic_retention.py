"""Retention of the topic bus: drops messages older than their topic's ``retention_ms``.

Run by the maintenance sweep (``app/maintenance.py``), so on PostgreSQL only the elected
leader prunes (ADR 0007), and with the context's clock, so a test moves time instead of
waiting. Engines that enforce retention themselves (NATS ``max_age``) prune nothing here. A
subscriber whose next message was pruned is told so by a ``bus.gap`` event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from opstage.app.topic_ports import TopicEngineError
from opstage.app.topics import TopicContext

log = logging.getLogger("opstage.topics")


async def prune_topics(ctx: TopicContext, now: datetime) -> int:
    """Messages pruned across every topic with a retention; 0 when the bus is off."""
    if ctx.topics is None:
        return 0
    async with ctx.reader() as uow:
        retained = await uow.topics.with_retention()
    total = 0
    for topic in retained:
        assert topic.retention_ms is not None
        cutoff = now - timedelta(milliseconds=topic.retention_ms)
        try:
            total += await ctx.topics.engine.prune(topic.wire, cutoff)
        except TopicEngineError:
            log.warning("could not prune a topic; next sweep retries", extra={"topic": topic.wire})
    return total
