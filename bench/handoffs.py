"""Driver hand-offs and CPU per agent call, in-process on SQLite: figures that survive load.

Every statement given to aiosqlite is a hand-off to its connection's thread and back (a
wake-up and a GIL exchange with the event loop). On a busy node each costs milliseconds of
wall time, so their count per call decides latency under load more than CPU does (ADR 0017).
This counts them on the real driver (its worker threads are wrapped before the runtime opens
its connections) for the calls a fleet makes, after a restart (cold caches, as a fleet
reconnecting), with the loop's CPU per call. No HTTP: the use cases the hot path calls.

    .venv/bin/python bench/handoffs.py [--agents 200]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import aiosqlite.core

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

HAND_OFFS = [0]
_real_worker = aiosqlite.core._connection_worker_thread


class _Counting:
    def __init__(self, queue: SimpleQueue[Any]) -> None:
        self.queue = queue

    def get(self) -> Any:
        item = self.queue.get()
        HAND_OFFS[0] += 1
        return item


def _worker(tx: SimpleQueue[Any]) -> None:
    _real_worker(_Counting(tx))


aiosqlite.core._connection_worker_thread = _worker  # before any connection exists


async def measure(label: str, calls: int, work: Callable[[], Awaitable[Any]]) -> None:
    await asyncio.sleep(0.1)  # let the previous step's batch settle
    hand_offs, cpu = HAND_OFFS[0], time.process_time()
    await work()
    await asyncio.sleep(0.1)
    print(
        f"{label:<58} {(HAND_OFFS[0] - hand_offs) / calls:>8.2f} "
        f"{1e6 * (time.process_time() - cpu) / calls:>9.0f}"
    )


async def main(n: int, tmp: Path, url: str) -> None:
    from fleet import Conductor
    from opstage.app import agents, commands
    from opstage.app.context import Actor
    from opstage.app.services import HealthReport
    from opstage.runtime import Runtime
    from opstage.settings import Settings

    settings = Settings(database_url=url, data_dir=tmp, dev_mode=True)
    rt = await Runtime.start(settings, bootstrap=False)
    try:
        fleet = [await Conductor.seed_one(rt.ctx, Actor.system(), i) for i in range(n)]
    finally:
        await rt.stop()
    rt = await Runtime.start(settings, bootstrap=False)  # a restart: every cache cold
    ctx = rt.ctx
    up = HealthReport("UP", None, None)
    print(f"{n} agents, SQLite; per call: {'driver hand-offs':>26} {'CPU µs':>9}")
    try:

        async def auth_cold() -> None:  # the SDK's first long-poll and heartbeat start together
            await asyncio.gather(
                *(
                    agents.authenticate_agent(ctx, a, f"Bearer {t}")
                    for a, t, _ in fleet
                    for _ in (1, 2)
                )
            )

        await measure("auth after a start (poll + heartbeat together), per agent", n, auth_cold)
        who = [await agents.authenticate_agent(ctx, a, f"Bearer {t}") for a, t, _ in fleet]

        async def contact_all() -> None:
            await asyncio.gather(*(agents.record_contact(ctx, p, up, None) for p in who))

        await measure("first heartbeat of each agent, all at once", n, contact_all)

        async def contact_one_by_one() -> None:
            for p in who[:50]:
                await agents.record_contact(ctx, p, up, None)

        await measure("heartbeat alone (a batch of one)", 50, contact_one_by_one)
        await measure("heartbeats, all agents at once", n, contact_all)

        async def poll_all() -> None:
            await asyncio.gather(*(commands.poll_commands(ctx, p, 10, 0) for p in who))

        await measure("first poll of each agent after the start (no wait)", n, poll_all)
        await measure("poll again (no wait)", n, poll_all)

        async def park_all() -> None:
            await asyncio.gather(*(commands.poll_commands(ctx, p, 10, 6.0) for p in who))

        await measure("long-poll parked 6 s, nothing comes", n, park_all)
    finally:
        await rt.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    workdir = Path(tempfile.mkdtemp(prefix="opstage-handoffs-"))
    database = f"sqlite:///{workdir / 'opstage.db'}"
    subprocess.run(
        [str(Path(sys.executable).parent / "opstage"), "migrate", "up"],
        env={"DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    asyncio.run(main(parser.parse_args().agents, workdir, database))
