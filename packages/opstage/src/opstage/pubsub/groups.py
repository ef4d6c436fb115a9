"""Consumer groups over a partitioned log, coordinated in this process.

An engine that can read a partition from an offset (``read``) and say where a new group
starts (``start_positions``) gets Phase-1 group semantics from ``PartitionedLogGroups``: the
members of one group connected to this node share the partitions (partition ``p`` goes to
member ``p mod n``) and one in-memory position per partition, so each message goes to exactly
one of them; distinct groups keep distinct positions and each sees every message. A publish on
this node wakes the topic's readers at once; they also re-read every ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from opstage.app.topic_ports import EngineTopicMissing
from opstage.domain.topics import Delivered, Gap, ResumePoint, StartFrom

READ_BATCH = 200


@dataclass
class _Group:
    partitions: list[int]
    positions: dict[int, int] = field(default_factory=dict)
    members: list[object] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: BaseException | None = None
    deleted: bool = False  # the topic was deleted through this node: members end

    def assigned(self, member: object) -> list[int]:
        if member not in self.members:
            return []
        i, n = self.members.index(member), len(self.members)
        return [p for p in self.partitions if p % n == i]


class _Membership:
    """A member's stream; closing it (even before the first message) leaves the group."""

    def __init__(
        self,
        engine: PartitionedLogGroups,
        wire: str,
        group: str,
        state: _Group,
        me: object,
        idle_seconds: float,
    ) -> None:
        self._engine, self._wire, self._group, self._state, self._me = (
            engine,
            wire,
            group,
            state,
            me,
        )
        self._messages = engine._follow(wire, group, state, me, idle_seconds)

    def __aiter__(self) -> _Membership:
        return self

    async def __anext__(self) -> Delivered | Gap | None:
        return await self._messages.__anext__()

    async def aclose(self) -> None:
        await self._messages.aclose()
        self._engine._leave(self._wire, self._group, self._state, self._me)


class PartitionedLogGroups:
    _poll_seconds: float = 1.0

    def __init__(self, *, poll_seconds: float = 1.0) -> None:
        self._poll_seconds = poll_seconds
        self._signals: dict[str, asyncio.Event] = {}
        self._groups: dict[tuple[str, str], _Group] = {}

    async def read(self, wire: str, partition: int, start: int, limit: int) -> list[Delivered]:
        """Up to ``limit`` messages of one partition from offset ``start``, in order (raises
        ``TopicEngineError`` on failure)."""
        raise NotImplementedError

    async def read_many(
        self, wire: str, starts: dict[int, int], limit: int
    ) -> dict[int, list[Delivered]]:
        """``read`` of several partitions (partition → its start); an engine that can read
        them together overrides it (the embedded one: one hand-off to the database)."""
        return {p: await self.read(wire, p, start, limit) for p, start in starts.items()}

    async def start_positions(
        self, wire: str, start: StartFrom, resume: ResumePoint | None
    ) -> dict[int, int]:
        """partition → the first offset a new group reads (``EngineTopicMissing`` if none)."""
        raise NotImplementedError

    def _signal(self, wire: str) -> asyncio.Event:
        signal = self._signals.get(wire)
        if signal is None:
            signal = self._signals[wire] = asyncio.Event()
        return signal

    def _topic_deleted(self, wire: str) -> None:
        """Every group reading ``wire`` on this node ends with ``EngineTopicMissing``."""
        for (group_wire, _), group in self._groups.items():
            if group_wire == wire:
                group.deleted = True
        self._wake(wire)

    def _wake(self, wire: str) -> None:
        signal = self._signals.pop(wire, None)
        if signal is not None:
            signal.set()

    async def _join(
        self,
        wire: str,
        group_id: str,
        start: StartFrom,
        resume: ResumePoint | None,
        me: object,
        fixed: dict[int, int] | None = None,
    ) -> _Group:
        key = (wire, group_id)
        group = self._groups.get(key)
        if group is None:
            # Registered before the first await, so a concurrent joiner waits for these
            # positions instead of computing its own.
            group = self._groups[key] = _Group([])
            group.members.append(me)
            try:
                positions = (
                    dict(fixed)
                    if fixed is not None
                    else await self.start_positions(wire, start, resume)
                )
            except BaseException as exc:
                group.failed = exc
                self._groups.pop(key, None)
                group.ready.set()
                raise
            group.partitions = sorted(positions)
            group.positions = positions
            group.ready.set()
        else:
            group.members.append(me)
            await group.ready.wait()
            if group.failed is not None:
                group.members.remove(me)
                raise EngineTopicMissing(wire)
        self._wake(wire)  # the other members take their new share at once
        return group

    def _leave(self, wire: str, group_id: str, group: _Group, me: object) -> None:
        if me in group.members:
            group.members.remove(me)
        if not group.members and self._groups.get((wire, group_id)) is group:
            del self._groups[(wire, group_id)]
        self._wake(wire)

    async def subscribe(
        self,
        wire: str,
        group: str,
        start: StartFrom,
        resume: ResumePoint | None,
        idle_seconds: float,
        positions: dict[int, int] | None = None,
    ) -> _Membership:
        me = object()
        state = await self._join(wire, group, start, resume, me, positions)
        return _Membership(self, wire, group, state, me, idle_seconds)

    async def _follow(
        self, wire: str, group: str, state: _Group, me: object, idle_seconds: float
    ) -> AsyncGenerator[Delivered | Gap | None, None]:
        try:
            idle_since = time.monotonic()
            while True:
                signal = self._signal(wire)  # taken before reading: no wake-up is missed
                delivered = False
                if state.deleted:
                    raise EngineTopicMissing(wire)
                mine = state.assigned(me)
                # Read together, then delivered partition by partition: positions only move
                # forward, and the checks below skip what another member delivered meanwhile.
                batches = await self.read_many(
                    wire, {p: state.positions[p] for p in mine}, READ_BATCH
                )
                for partition in mine:
                    for message in batches.get(partition, ()):
                        # Another member may own the partition now (a rebalance while this
                        # one was suspended at a yield): it continues from the position.
                        if partition not in state.assigned(me):
                            break
                        asked = state.positions[partition]
                        if message.offset < asked:
                            continue  # another member delivered it after a rebalance
                        if message.offset > asked:
                            # Offsets are dense: the ones between were pruned (retention)
                            # before this group read them. Said, never silently skipped.
                            state.positions[partition] = message.offset
                            yield Gap(wire, partition, asked, message.offset, "retention")
                            if partition not in state.assigned(me):
                                break
                            if message.offset < state.positions[partition]:
                                continue
                        state.positions[partition] = message.offset + 1
                        delivered = True
                        yield message
                if delivered:
                    idle_since = time.monotonic()
                    continue
                left = idle_seconds - (time.monotonic() - idle_since)
                if left <= 0:
                    idle_since = time.monotonic()
                    yield None
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signal.wait(), min(left, self._poll_seconds))
        finally:
            self._leave(wire, group, state, me)
