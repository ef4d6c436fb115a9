"""Engines, the application context and the tasks every process needs (waiters, heartbeats).

``create_app`` builds one of these in its lifespan; the CLI builds one for one-off commands.
Background services (``workers``) are handed in by ``opstage.server`` so that this module, and
the API that uses it, never import them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opstage.app.agents import AgentAuthCache, keep_agent_auth_fresh
from opstage.app.auth import LoginThrottle, bootstrap_owner
from opstage.app.backup import NoOnlineBackup
from opstage.app.bus import outcome_subscriber
from opstage.app.bus_batch import BusIngestWriter, PipelinedBatches, UnitBatches
from opstage.app.commands import warm_pending_hint
from opstage.app.context import AppContext
from opstage.app.cross_node import CrossNode
from opstage.app.eventbus import DomainEventBus
from opstage.app.heartbeats import HeartbeatWriter
from opstage.app.ports import UnitOfWork
from opstage.app.secrets_once import OneTimeSecrets
from opstage.app.topic_ports import TopicEngine
from opstage.app.topic_quota import PublishQuota
from opstage.app.topics import TopicBus
from opstage.app.waiters import PendingHint, Waiters
from opstage.pubsub.event_relay import NatsEventRelay
from opstage.settings import Settings, SettingsError
from opstage.store.backup import backup_for
from opstage.store.bus_session import BusWriterSession
from opstage.store.checkpoint import WRITER_AUTOCHECKPOINT_PAGES, WalCheckpointer
from opstage.store.db_lock import DatabaseLock
from opstage.store.engine import Engines, create_engines, sqlite_path
from opstage.store.migrate import current_revision_async, head_revision
from opstage.store.pg_leader import PgLeaderLock
from opstage.store.pg_wake import PgWakeListener, listen_dsn, new_origin
from opstage.store.topic_engine import EmbeddedTopicEngine
from opstage.store.uow import SqlUnitOfWork

log = logging.getLogger("opstage")


def topic_engine(settings: Settings, engines: Engines) -> TopicEngine:
    if settings.topic_bus_engine == "nats":
        from opstage.pubsub.nats import NatsTopicEngine

        return NatsTopicEngine(settings.nats_url)
    if settings.topic_bus_engine == "kafka":
        from opstage.pubsub.kafka import KafkaTopicEngine

        return KafkaTopicEngine(
            settings.kafka_bootstrap_servers, client_id=settings.kafka_client_id
        )
    return EmbeddedTopicEngine(engines)


def event_relay(settings: Settings, origin: str, cross: CrossNode) -> NatsEventRelay | None:
    """The NATS relay of domain events across nodes, when configured (ADR 0016)."""
    if settings.event_relay != "nats":
        return None
    try:
        import nats  # noqa: F401
    except ImportError as exc:
        raise SettingsError(
            "OPSTAGE_EVENT_RELAY=nats needs the `nats` extra: pip install 'opstage[nats]'"
        ) from exc
    return NatsEventRelay(settings.nats_url, origin, cross.on_relayed)


BackgroundService = Callable[[AppContext], Coroutine[Any, Any, None]]


@dataclass
class Runtime:
    settings: Settings
    engines: Engines
    ctx: AppContext
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    generated_password: str | None = None
    checkpointer: WalCheckpointer | None = None
    wake_listener: PgWakeListener | None = None
    db_lock: DatabaseLock | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        services: Sequence[BackgroundService] = (),
        bootstrap: bool = True,
    ) -> Runtime:
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = sqlite_path(settings.database_url)
        # Held while this process runs, so `opstage restore` refuses instead of moving the
        # file out from under it (store/db_lock.py).
        db_lock = DatabaseLock.shared(Path(path)) if path and path != ":memory:" else None
        checkpointer = WalCheckpointer(path) if path else None
        try:
            engines = create_engines(
                settings.database_url,
                writer_autocheckpoint=WRITER_AUTOCHECKPOINT_PAGES if checkpointer else None,
            )
        except BaseException:
            if db_lock is not None:
                db_lock.release()
            raise
        try:
            current = await current_revision_async(engines.writer)
            if current is None:
                raise SettingsError(
                    f"The database {_where(settings)} has no Opstage schema yet: run "
                    "`opstage migrate` first."
                )
            if current != head_revision():
                raise SettingsError(
                    f"The database schema is at {current}, not {head_revision()}: "
                    "run `opstage migrate` first."
                )
            bus = DomainEventBus(settings.event_bus_capacity)

            origin = new_origin()
            # One SQLite file means one node: every command is created here and seen.
            waiters = Waiters(PendingHint(enabled=engines.kind == "sqlite"))
            agent_auth = AgentAuthCache()
            cross = CrossNode(bus, waiters, agent_auth, settings.event_relay)
            relay = event_relay(settings, origin, cross)
            if relay is not None:
                cross.relay_connected = lambda: relay.connected

            def factory(*, write: bool) -> UnitOfWork:
                return SqlUnitOfWork(
                    engines,
                    bus,
                    write=write,
                    wake_keys=cross.keys,
                    wake_origin=origin,
                    relay=relay.offer if relay is not None else None,
                )

            heartbeats = HeartbeatWriter()
            ctx = AppContext(
                settings=settings,
                uow_factory=factory,
                bus=bus,
                db_kind=engines.kind,
                waiters=waiters,
                heartbeats=heartbeats,
                agent_auth=agent_auth,
                login_throttle=LoginThrottle(
                    settings.login_max_failures, settings.login_lockout_seconds
                ),
                one_time_secrets=OneTimeSecrets(),
                backup=backup_for(settings.database_url) or NoOnlineBackup(engines.kind),
            )
            heartbeats.bind(ctx)
            if settings.topic_bus_enabled:
                ctx.topics = TopicBus(
                    topic_engine(settings, engines),
                    keepalive_seconds=settings.topic_bus_keepalive_seconds,
                    quota=PublishQuota(
                        settings.topic_publish_rate_per_second, settings.topic_publish_burst
                    ),
                )
            # The one place that picks the bus's batch strategy by engine (ADR 0004).
            bus_writer = ctx.bus_ingest = BusIngestWriter(
                ctx,
                PipelinedBatches(lambda: BusWriterSession(engines))
                if engines.kind == "sqlite"
                else UnitBatches(),
            )
            ctx.command_outcomes.subscribe(outcome_subscriber(ctx))
            runtime = cls(settings, engines, ctx, db_lock=db_lock)
            await warm_pending_hint(ctx)
            if bootstrap:  # one-off CLI commands (e.g. `admin create-user`) skip it
                runtime.generated_password = await bootstrap_owner(ctx)
        except BaseException:
            await engines.dispose()
            if db_lock is not None:
                db_lock.release()
            raise
        runtime.tasks.append(asyncio.create_task(ctx.waiters.run(bus), name="waiters"))
        runtime.tasks.append(asyncio.create_task(heartbeats.run(), name="heartbeats"))
        runtime.tasks.append(
            asyncio.create_task(keep_agent_auth_fresh(ctx), name="agent-auth-refresh")
        )
        runtime.tasks.append(asyncio.create_task(bus_writer.run(), name="bus-ingest"))
        listener: PgWakeListener | None = None
        if engines.kind == "postgres":  # other nodes may share the database: hear them
            listener = PgWakeListener(
                listen_dsn(engines.writer.url), cross.on_keys, cross.on_gap, origin
            )
            runtime.wake_listener = listener
            runtime.tasks.append(asyncio.create_task(listener.run(), name="wake-listener"))
            # Connects only when the maintenance sweeper first asks (ADR 0007).
            ctx.leader_lock = PgLeaderLock(listen_dsn(engines.writer.url))
        if relay is not None:
            runtime.tasks.append(asyncio.create_task(relay.run(), name="event-relay"))
        if listener is not None or relay is not None:
            parts = [p.status for p in (listener, relay) if p is not None] + [cross.status]
            ctx.cross_node_wake = lambda: {k: v for part in parts for k, v in part().items()}
        if checkpointer is not None:
            runtime.checkpointer = checkpointer
            runtime.tasks.append(asyncio.create_task(checkpointer.run(), name="wal-checkpoint"))
        for service in services:
            runtime.tasks.append(asyncio.create_task(service(ctx), name=service.__name__))
        return runtime

    async def stop(self) -> None:
        await self.ctx.heartbeats.stop()
        if self.ctx.topics is not None:
            await self.ctx.topics.engine.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.ctx.leader_lock.close()  # hand the lead over now, not at a timeout
        await self.engines.dispose()
        if self.db_lock is not None:
            self.db_lock.release()


def _where(settings: Settings) -> str:
    path = sqlite_path(settings.database_url)
    if path and path != ":memory:":
        return f"at {Path(path).resolve()}"
    from opstage.domain.redaction import mask_url

    return mask_url(settings.database_url)
