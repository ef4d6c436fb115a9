"""The sync agent: an :class:`AsyncAgent` on an event loop in a background thread.

Programs without asyncio (a Flask app, a worker script) get the same behaviour as the asyncio
agent — one implementation, one set of tests — and their sync handlers run in the agent's
thread pool exactly as they would there. Methods here may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from datetime import datetime
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

import httpx

from opstage_agent.aio import AsyncAgent
from opstage_agent.config import AgentConfig
from opstage_agent.core import Phase
from opstage_agent.declarations import DeclaringMixin
from opstage_agent.errors import AgentNotRunningError
from opstage_agent.models import JSONObject, PublishedEvent, TopicMessage, TopicReceipt
from opstage_agent.token_store import TokenStore

T = TypeVar("T")
THREAD_START_SECONDS = 10.0


class Agent(DeclaringMixin):
    """An Opstage agent for synchronous programs::

    agent = Agent(backend_url=..., agent_code="billing", token_file=...)

    @agent.action(label="Flush cache")
    def flush_cache(payload): ...

    agent.run()  # blocks; or: with agent: ...  /  agent.start() ... agent.shutdown()
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        token_store: TokenStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Any,
    ) -> None:
        self.async_agent = AsyncAgent(
            config, token_store=token_store, transport=transport, **settings
        )
        self.config = self.async_agent.config
        self.declarations = self.async_agent.declarations
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def agent_id(self) -> str | None:
        return self.async_agent.agent_id

    @property
    def service_id(self) -> str | None:
        return self.async_agent.service_id

    @property
    def phase(self) -> Phase:
        return self.async_agent.phase

    @property
    def failure(self) -> BaseException | None:
        return self.async_agent.failure

    @property
    def long_polling(self) -> bool:
        return self.async_agent.long_polling

    def start(self) -> None:
        """Start the agent's thread; returns at once (see :meth:`wait_ready`)."""
        if self._thread is not None:
            raise RuntimeError("this agent was already started; create a new one to restart")
        self._thread = threading.Thread(target=self._thread_main, name="opstage-agent", daemon=True)
        self._thread.start()
        if not self._started.wait(THREAD_START_SECONDS):
            raise RuntimeError("the agent's thread did not start")
        if self._start_error is not None:
            raise self._start_error

    def _thread_main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self.async_agent.start()
        except BaseException as exc:
            self._start_error = exc
            raise
        finally:
            self._started.set()
        # Serve until stopped or failed, then release everything; shutdown() is idempotent,
        # so a shutdown requested from another thread and this one meet in the same place.
        with contextlib.suppress(Exception):  # kept in async_agent.failure, raised by wait()
            await self.async_agent.wait()
        await self.async_agent.shutdown()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the agent is connected (see :meth:`AsyncAgent.wait_ready`)."""
        self._submit(self.async_agent.wait_ready(timeout)).result()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop gracefully and join the agent's thread. Safe to call more than once."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended since the check
                asyncio.run_coroutine_threadsafe(self.async_agent.shutdown(), loop)
        thread.join(timeout)

    def wait(self) -> None:
        """Block until the agent stops; raise the error that stopped it, if any."""
        if self._thread is None:
            raise AgentNotRunningError("the agent has not been started")
        self._thread.join()
        if self.failure is not None:
            raise self.failure

    def run(self) -> None:
        """Start and block until the agent stops. Ctrl-C (and SIGTERM, when called from the
        main thread) shut it down gracefully; a fatal agent error is raised."""
        previous: Any = None
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:

            def on_term(signum: int, frame: FrameType | None) -> None:
                threading.Thread(target=self.shutdown, daemon=True).start()

            previous = signal.signal(signal.SIGTERM, on_term)
        try:
            self.start()
            try:
                self.wait()
            except KeyboardInterrupt:
                self.shutdown()
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)

    def refresh(self) -> None:
        """Re-evaluate health and configs now and send what changed."""
        self.async_agent.refresh()

    def publish_event(
        self,
        event_type: str,
        payload: JSONObject | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: JSONObject | None = None,
        occurred_at: datetime | None = None,
        dry_run: bool | None = None,
        idempotency_key: str | None = None,
        source_service_code: str | None = None,
    ) -> PublishedEvent:
        """Publish to the Capsule Bus (see :meth:`AsyncAgent.publish_event`)."""
        return self._submit(
            self.async_agent.publish_event(
                event_type,
                payload,
                correlation_id=correlation_id,
                causation_id=causation_id,
                metadata=metadata,
                occurred_at=occurred_at,
                dry_run=dry_run,
                idempotency_key=idempotency_key,
                source_service_code=source_service_code,
            )
        ).result()

    def publish(
        self,
        topic: str,
        payload: Any,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> TopicReceipt:
        """Publish to the topic bus (see :meth:`AsyncAgent.publish`)."""
        return self._submit(
            self.async_agent.publish(
                topic, payload, key=key, headers=headers, idempotency_key=idempotency_key
            )
        ).result()

    def ack(self, subscription_id: str, *messages: TopicMessage) -> int:
        """Commits messages of a durable subscription (see :meth:`AsyncAgent.ack`)."""
        return self._submit(self.async_agent.ack(subscription_id, *messages)).result()

    def subscribe(
        self, topic: str, subscription_id: str, *, start: str = "latest", durable: bool = False
    ) -> Iterator[TopicMessage]:
        """The topic's messages (see :meth:`AsyncAgent.subscribe`), one at a time."""
        stream = self.async_agent.subscribe(topic, subscription_id, start=start, durable=durable)

        async def next_message() -> TopicMessage:
            return await anext(stream)

        async def close() -> None:
            await stream.aclose()  # type: ignore[attr-defined]

        try:
            while True:
                try:
                    yield self._submit(next_message()).result()
                except StopAsyncIteration:
                    return
        finally:
            with contextlib.suppress(Exception):
                self._submit(close()).result(10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            if self.failure is not None:
                raise self.failure
            raise AgentNotRunningError("the agent is not running: call start() first")
        if _running_loop() is loop:
            # .result() would wait for the very loop it blocks.
            coroutine.close()
            raise RuntimeError("called on the agent's own event loop; use agent.async_agent")
        return asyncio.run_coroutine_threadsafe(coroutine, loop)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
