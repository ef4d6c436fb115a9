"""The embedded topic engine: partitions and a message log in Opstage's own database.

- Durable: ``publish`` returns only after its transaction committed, so an acknowledged
  message survives a restart and a kill -9 (SQLite WAL or PostgreSQL).
- Offsets: each partition's ``next_offset`` row is bumped under its row lock (PostgreSQL) or the
  write lock (SQLite), in the transaction that inserts the message, so offsets are dense, start
  at 0, and are in commit order within a partition.
- Consumer groups are coordinated in this process: the members of one group connected to this
  node share the partitions (partition ``p`` goes to member ``p mod n``) and one in-memory
  position per partition, so each message goes to exactly one of them; distinct groups keep
  distinct positions and each sees every message. A publish wakes this node's subscribers at
  once; subscribers also re-read every ``poll_seconds`` (messages published by another node
  sharing PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.app.topic_ports import EngineTopicExists, EngineTopicMissing, TopicEngineError
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import (
    Delivered,
    OutgoingMessage,
    PartitionOffsets,
    Receipt,
    ResumePoint,
    StartFrom,
    Topic,
)
from opstage.pubsub.groups import PartitionedLogGroups
from opstage.store.engine import Engines
from opstage.store.fastpath.execution import Sql, commit_in_driver, in_driver
from opstage.store.fastpath.inserts import insert_statement
from opstage.store.fastpath.query import Query
from opstage.store.tables import topic_log as log
from opstage.store.tables import topic_partitions as parts

MAX_BATCH = 500  # publishes per group-commit transaction
# A resumed subscriber's other partitions restart this far before the last message it saw, so
# a message committed a little later than its timestamp is delivered (again, at worst).
RESUME_MARGIN = timedelta(seconds=1)


@dataclass(slots=True)
class _Pending:
    wire: str
    partition: int
    message: OutgoingMessage
    future: asyncio.Future[Receipt]


def _delivered(row: dict[str, Any]) -> Delivered:
    return Delivered(
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        key=row["key"],
        payload=row["payload"],
        headers=dict(row["headers"] or {}),
        timestamp=row["produced_at"],
    )


_BUMP = (
    update(parts)
    .where(parts.c.topic == bindparam("bump_topic"), parts.c.partition == bindparam("bump_part"))
    .values(next_offset=parts.c.next_offset + bindparam("bump_by", type_=Integer))
    .returning(parts.c.next_offset)
)
_READ = Query(
    select(log)
    .where(
        log.c.topic == bindparam("topic"),
        log.c.partition == bindparam("partition"),
        log.c.offset >= bindparam("start"),
    )
    .order_by(log.c.offset)
    .limit(bindparam("limit", type_=Integer))
)
_BUMP_PLANS: dict[str, tuple[str, tuple[str, ...]]] = {}
_BY_KEY = Query(
    select(log.c.partition, log.c.offset, log.c.produced_at).where(
        log.c.topic == bindparam("topic"), log.c.idempotency_key == bindparam("key")
    )
)


def _bump(dialect: Dialect, wire: str, partition: int, by: int) -> tuple[str, tuple[Any, ...]]:
    """The partition's ``next_offset`` bump (``RETURNING`` the new end), compiled once."""
    plan = _BUMP_PLANS.get(dialect.name)
    if plan is None:
        compiled = _BUMP.compile(dialect=dialect)
        plan = _BUMP_PLANS[dialect.name] = (str(compiled), tuple(compiled.positiontup or ()))
    values = {"bump_topic": wire, "bump_part": partition, "bump_by": by}
    return plan[0], tuple(values[name] for name in plan[1])


def _batch_work(
    dialect: Dialect, batch: list[_Pending], now: datetime
) -> Callable[[Sql], list[Receipt | TopicEngineError]]:
    """A batch's reads and writes, as work for the driver's thread: its idempotency keys
    looked up (one indexed read each), one offset bump per partition touched, one insert."""

    def work(sql: Sql) -> list[Receipt | TopicEngineError]:
        results: list[Receipt | TopicEngineError | None] = [None] * len(batch)
        twins: dict[int, int] = {}  # a later member with an earlier member's key → that member
        first_with_key: dict[tuple[str, str], int] = {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for i, p in enumerate(batch):
            key = p.message.idempotency_key
            if key is not None:
                if (p.wire, key) in first_with_key:
                    twins[i] = first_with_key[(p.wire, key)]
                    continue
                found = sql.fetch(*_BY_KEY.bind(dialect, topic=p.wire, key=key))
                if found:
                    row = _BY_KEY.decode(dialect, found)[0]
                    results[i] = Receipt(
                        p.wire,
                        int(row["partition"]),
                        int(row["offset"]),
                        row["produced_at"],
                        replayed=True,
                    )
                    continue
                first_with_key[(p.wire, key)] = i
            by_partition.setdefault((p.wire, p.partition), []).append(i)
        rows: list[dict[str, Any]] = []
        for (wire, partition), members in by_partition.items():
            bumped = sql.fetch(*_bump(dialect, wire, partition, len(members)))
            if not bumped:
                for i in members:
                    results[i] = EngineTopicMissing(wire)
                continue
            first = int(bumped[0][0]) - len(members)
            for n, i in enumerate(members):  # queue order: one key's messages stay in order
                m = batch[i].message
                rows.append(
                    {
                        "topic": wire,
                        "partition": partition,
                        "offset": first + n,
                        "key": m.key,
                        "payload": m.payload,
                        "headers": m.headers or None,
                        "idempotency_key": m.idempotency_key,
                        "produced_at": now,
                    }
                )
                results[i] = Receipt(wire, partition, first + n, now)
        if rows:
            sql.insert(insert_statement(dialect, log, rows))
        for i, j in twins.items():
            original = results[j]
            results[i] = (
                replace(original, replayed=True) if isinstance(original, Receipt) else original
            )
        return [r for r in results if r is not None]

    return work


class EmbeddedTopicEngine(PartitionedLogGroups):
    name = "embedded"

    def __init__(self, engines: Engines, *, poll_seconds: float = 1.0) -> None:
        super().__init__(poll_seconds=poll_seconds)
        self._engines = engines
        self._queue: list[_Pending] = []
        self._kick = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(TopicEngineError("the engine is closing"))
        self._queue.clear()
        for wire in list(self._signals):
            self._wake(wire)

    # --- topics -------------------------------------------------------------------------------

    async def create_topic(self, topic: Topic) -> None:
        now = utcnow()
        try:
            async with self._engines.writer.begin() as conn:
                if await self._partition_ids(conn, topic.wire):
                    raise EngineTopicExists(topic.wire)
                await conn.execute(
                    insert(parts),
                    [
                        {"topic": topic.wire, "partition": p, "next_offset": 0, "created_at": now}
                        for p in range(topic.partitions)
                    ],
                )
        except IntegrityError as exc:
            raise EngineTopicExists(topic.wire) from exc
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc

    async def delete_topic(self, wire: str) -> None:
        try:
            async with self._engines.writer.begin() as conn:
                gone = await conn.execute(delete(parts).where(parts.c.topic == wire))
                if not gone.rowcount:
                    raise EngineTopicMissing(wire)
                await conn.execute(delete(log).where(log.c.topic == wire))
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc
        self._topic_deleted(wire)

    async def topic_exists(self, wire: str) -> bool:
        try:
            async with self._engines.reader.connect() as conn:
                return bool(await self._partition_ids(conn, wire))
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc

    @staticmethod
    async def _partition_ids(conn: AsyncConnection, wire: str) -> list[int]:
        rows = await conn.execute(
            select(parts.c.partition).where(parts.c.topic == wire).order_by(parts.c.partition)
        )
        return [int(r[0]) for r in rows]

    # --- publish ------------------------------------------------------------------------------

    async def publish(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        """Group commit (ADR 0002's rule): every publish that arrives while a batch commits
        goes into the next batch's one transaction; each is answered after that commit."""
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(wire, partition, message, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches(), name="topic-log-writer")
        self._kick.set()
        # Shielded: a caller that goes away does not undo a write already under way (it is
        # simply not acknowledged; a retry with its Idempotency-Key finds it).
        return await asyncio.shield(future)

    async def _write_batches(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    results = await self._write_batch(batch)
                except IntegrityError:
                    # Another node stored one of the batch's idempotency keys meanwhile: each
                    # member again on its own, where the conflict is that member's alone.
                    results = [await self._publish_alone(p) for p in batch]
                except SQLAlchemyError as exc:
                    results = [TopicEngineError(str(exc)) for _ in batch]
                except Exception as exc:  # never leave a publisher waiting forever
                    results = [TopicEngineError(repr(exc)) for _ in batch]
                for pending, result in zip(batch, results, strict=True):
                    if pending.future.done():
                        continue
                    if isinstance(result, Receipt):
                        pending.future.set_result(result)
                    else:
                        pending.future.set_exception(result)
                for wire in {p.wire for p in batch}:
                    self._wake(wire)

    async def _publish_alone(self, pending: _Pending) -> Receipt | TopicEngineError:
        try:
            return await self._publish_one(pending.wire, pending.partition, pending.message)
        except TopicEngineError as exc:
            return exc

    async def _write_batch(self, batch: list[_Pending]) -> list[Receipt | TopicEngineError]:
        # The whole batch is one hand-off to the driver, COMMIT included on SQLite (ADR 0008):
        # a statement each through Core cost a thread round trip and SQLAlchemy's execution
        # machinery apiece, which made the embedded engine, not HTTP, the publish path's
        # bottleneck at 16 publishers (ADR 0018).
        now = utcnow()
        async with self._engines.writer.begin() as conn:
            return await commit_in_driver(conn, _batch_work(conn.dialect, batch, now))

    async def _publish_one(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        try:
            receipt = await self._append(wire, partition, message)
        except IntegrityError:
            # A concurrent twin with the same Idempotency-Key committed first: its receipt.
            replay = await self._replay(wire, message.idempotency_key)
            if replay is None:
                raise TopicEngineError("publish conflicted and left nothing to replay") from None
            return replay
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc
        self._wake(wire)
        return receipt

    async def _append(self, wire: str, partition: int, message: OutgoingMessage) -> Receipt:
        async with self._engines.writer.begin() as conn:
            if message.idempotency_key is not None:
                found = await self._find_key(conn, wire, message.idempotency_key)
                if found is not None:
                    return found
            bumped = await conn.execute(
                update(parts)
                .where(parts.c.topic == wire, parts.c.partition == partition)
                .values(next_offset=parts.c.next_offset + 1)
                .returning(parts.c.next_offset)
            )
            row = bumped.first()
            if row is None:
                raise EngineTopicMissing(wire)
            offset = int(row[0]) - 1
            now = utcnow()
            await conn.execute(
                insert(log).values(
                    topic=wire,
                    partition=partition,
                    offset=offset,
                    key=message.key,
                    payload=message.payload,
                    headers=message.headers or None,
                    idempotency_key=message.idempotency_key,
                    produced_at=now,
                )
            )
        return Receipt(wire, partition, offset, now)

    async def _replay(self, wire: str, key: str | None) -> Receipt | None:
        if key is None:
            return None
        async with self._engines.reader.connect() as conn:
            return await self._find_key(conn, wire, key)

    @staticmethod
    async def _find_key(conn: AsyncConnection, wire: str, key: str) -> Receipt | None:
        row = (
            await conn.execute(
                select(log.c.partition, log.c.offset, log.c.produced_at).where(
                    log.c.topic == wire, log.c.idempotency_key == key
                )
            )
        ).first()
        if row is None:
            return None
        return Receipt(wire, int(row.partition), int(row.offset), row.produced_at, replayed=True)

    # --- reading ------------------------------------------------------------------------------

    async def read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        try:
            return await self._read(wire, partition, start, limit)
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc

    async def read_many(
        self, wire: str, starts: dict[int, int], limit: int
    ) -> dict[int, list[Delivered]]:
        """Every partition's read in one hand-off: a publish wakes each group reading the
        topic, and each then reads all its partitions (ADR 0018)."""
        if not starts:
            return {}
        try:
            async with self._engines.reader.connect() as conn:
                dialect = conn.dialect
                asked = [
                    _READ.bind(dialect, topic=wire, partition=p, start=start, limit=limit)
                    for p, start in starts.items()
                ]
                found = await in_driver(conn, lambda sql: [sql.fetch(q, v) for q, v in asked])
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc
        return {
            p: [_delivered(r) for r in _READ.decode(dialect, raw)]
            for p, raw in zip(starts, found, strict=True)
        }

    async def _read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        # One hand-off (ADR 0008's compiled read): every publish wakes each group reading the
        # topic, so this read is on the publish → subscriber latency path (ADR 0018).
        async with self._engines.reader.connect() as conn:
            rows = await _READ.rows(conn, topic=wire, partition=partition, start=start, limit=limit)
        return [_delivered(r) for r in rows]

    async def offsets(self, wire: str) -> dict[int, PartitionOffsets]:
        try:
            async with self._engines.reader.connect() as conn:
                held = await self._held(conn, wire)
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc
        return {p: PartitionOffsets(first, end) for p, (first, end) in sorted(held.items())}

    @staticmethod
    async def _held(conn: AsyncConnection, wire: str) -> dict[int, tuple[int, int]]:
        """Per partition: the first offset still held (its end when empty) and the next one."""
        ends = {
            int(r.partition): int(r.next_offset)
            for r in await conn.execute(
                select(parts.c.partition, parts.c.next_offset).where(parts.c.topic == wire)
            )
        }
        if not ends:
            raise EngineTopicMissing(wire)
        firsts = {
            int(r[0]): int(r[1])
            for r in await conn.execute(
                select(log.c.partition, func.min(log.c.offset))
                .where(log.c.topic == wire)
                .group_by(log.c.partition)
            )
        }
        return {p: (firsts.get(p, end), end) for p, end in ends.items()}

    async def prune(self, wire: str, older_than: datetime) -> int:
        """Retention (run by the maintenance sweep, on PostgreSQL by its leader: ADR 0007).
        The partitions' ``next_offset`` stays, so offsets are never reused."""
        try:
            async with self._engines.writer.begin() as conn:
                gone = await conn.execute(
                    delete(log).where(log.c.topic == wire, log.c.produced_at < older_than)
                )
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc
        return int(gone.rowcount or 0)

    async def start_positions(
        self, wire: str, start: StartFrom, resume: ResumePoint | None
    ) -> dict[int, int]:
        try:
            return await self._positions(wire, start, resume)
        except SQLAlchemyError as exc:
            raise TopicEngineError(str(exc)) from exc

    async def _positions(
        self, wire: str, start: StartFrom, resume: ResumePoint | None
    ) -> dict[int, int]:
        async with self._engines.reader.connect() as conn:
            held = await self._held(conn, wire)
            ends = {p: end for p, (_, end) in held.items()}
            earliest = {p: first for p, (first, _) in held.items()}
            if resume is not None and resume.partition in ends:
                seen_at = (
                    await conn.execute(
                        select(log.c.produced_at).where(
                            log.c.topic == wire,
                            log.c.partition == resume.partition,
                            log.c.offset == resume.offset,
                        )
                    )
                ).scalar_one_or_none()
                out = dict(earliest)
                if seen_at is not None:
                    out.update(await self._offsets_since(conn, wire, seen_at - RESUME_MARGIN))
                clamped = {p: max(out[p], earliest[p]) for p in ends}
                # The resumed partition is not clamped to what is still held: if retention
                # pruned past the last seen message, the stream says so (``bus.gap``).
                clamped[resume.partition] = min(resume.offset + 1, ends[resume.partition])
                return clamped
            return earliest if start == "earliest" else ends

    @staticmethod
    async def _offsets_since(conn: AsyncConnection, wire: str, since: datetime) -> dict[int, int]:
        rows = await conn.execute(
            select(log.c.partition, func.min(log.c.offset))
            .where(log.c.topic == wire, log.c.produced_at >= since)
            .group_by(log.c.partition)
        )
        found = {int(r[0]): int(r[1]) for r in rows}
        ends = await conn.execute(
            select(parts.c.partition, parts.c.next_offset).where(parts.c.topic == wire)
        )
        return {int(r.partition): found.get(int(r.partition), int(r.next_offset)) for r in ends}

    # --- subscribing --------------------------------------------------------------------------
