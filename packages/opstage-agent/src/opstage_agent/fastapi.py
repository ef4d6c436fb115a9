"""Run an agent for as long as a FastAPI (or any Starlette) application runs.

``attach(app, agent)`` wraps the application's lifespan: the app's own startup runs first (so
handlers can use what it sets up), then the agent starts; on shutdown the agent stops first
(finishing running actions), then the app's own shutdown runs. The agent starts in the
background, so the application serves requests even while Opstage is unreachable.

FastAPI is not a dependency of this package; this module only touches ``app.router``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from opstage_agent.aio import AsyncAgent
from opstage_agent.sync import Agent


class _Router(Protocol):
    lifespan_context: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]


class _App(Protocol):
    @property
    def router(self) -> _Router: ...


def attach(app: _App, agent: AsyncAgent | Agent, *, wait_ready: float | None = None) -> None:
    """Start ``agent`` with ``app`` and shut it down with it.

    ``wait_ready`` (seconds) makes startup wait until the agent is connected — and fail if it
    cannot connect in time; by default startup does not wait.
    """
    router = app.router
    original = router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        async with original(inner_app) as state:
            await _start(agent, wait_ready)
            try:
                yield state
            finally:
                await _stop(agent)

    router.lifespan_context = lifespan


async def _start(agent: AsyncAgent | Agent, wait_ready: float | None) -> None:
    if isinstance(agent, AsyncAgent):
        await agent.start()
        if wait_ready is not None:
            await agent.wait_ready(wait_ready)
    else:
        await asyncio.to_thread(agent.start)
        if wait_ready is not None:
            await asyncio.to_thread(agent.wait_ready, wait_ready)


async def _stop(agent: AsyncAgent | Agent) -> None:
    if isinstance(agent, AsyncAgent):
        await agent.shutdown()
    else:
        await asyncio.to_thread(agent.shutdown)
