"""The command side of an agent: poll, run each command as a task, report its result.

A command the server hands over is already RUNNING there, so the dispatcher claims no more
than it has free slots for, and it always reports an outcome: the handler's, a timeout, a
refusal of an oversized result, or — at shutdown — ``AGENT_SHUTTING_DOWN``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from opstage_agent.config import AgentConfig
from opstage_agent.core import POLL_LIMIT_MAX, AgentCore, HttpRequest, HttpResponse
from opstage_agent.errors import (
    NetworkError,
    RequestRejectedError,
    ResultTooLargeError,
    ServerError,
)
from opstage_agent.logs import log
from opstage_agent.models import Command, CommandResultBody, utc_now
from opstage_agent.results import (
    ACTION_RESULT_INVALID,
    AGENT_SHUTTING_DOWN,
    COMMAND_RESULT_TOO_LARGE,
    failed,
    replace_with_failure,
)
from opstage_agent.runner import ActionRunner

T = TypeVar("T")
RESULT_RETRY_FALLBACK_SECONDS = 600.0
SHUTDOWN_REPORT_SECONDS = 3.0
SUSPICIOUS_LONG_POLL_SECONDS = 1.0  # a "long" poll that came back empty faster than this


class Caller(Protocol):
    """The agent's request method: retries, re-registration and all (``AsyncAgent._call``)."""

    def __call__(
        self,
        build: Callable[[], HttpRequest],
        accept: Callable[[HttpRequest, HttpResponse], T],
        *,
        deadline: float | None = None,
    ) -> Awaitable[T]: ...


class CommandDispatcher:
    def __init__(
        self,
        core: AgentCore,
        config: AgentConfig,
        runner: ActionRunner,
        call: Caller,
        after_action: Callable[[], None],
    ) -> None:
        self._core = core
        self._config = config
        self._runner = runner
        self._call = call
        self._after_action = after_action  # actions often change health: look again at once
        self._in_flight: dict[asyncio.Task[None], Command] = {}
        self._slot_freed = asyncio.Event()
        self.stopping = False

    def cancel_all(self) -> None:
        for task in self._in_flight:
            task.cancel()

    async def run(self) -> None:
        """Poll and dispatch until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            free = self._config.max_concurrent_actions - len(self._in_flight)
            if free <= 0:
                # Claim nothing we cannot start: a claimed command is RUNNING on the server.
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            limit = min(free, POLL_LIMIT_MAX)
            began = loop.time()
            try:
                commands = await self._call(
                    functools.partial(self._core.poll_request, limit), self._core.accept_poll
                )
            except RequestRejectedError as exc:
                log.error("Opstage refused the command poll: %s", exc)
                await asyncio.sleep(self._core.poll_interval)
                continue
            for command in commands:
                self._dispatch(command)
            if commands:
                # Let the handlers just dispatched start before the next poll is built: the
                # request's construction would otherwise run first and delay them.
                await asyncio.sleep(0)
            if len(commands) >= limit:
                continue  # there may be more waiting
            quick_empty = not commands and loop.time() - began < SUSPICIOUS_LONG_POLL_SECONDS
            if self._core.long_poll_wait is not None and not quick_empty:
                continue
            await asyncio.sleep(self._core.poll_interval)

    def _dispatch(self, command: Command) -> None:
        log.debug("command %s: %s %s", command.id, command.type, command.action_name)
        task = asyncio.create_task(self._execute(command), name=f"opstage-command-{command.id}")
        self._in_flight[task] = command
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error while running a command", exc_info=task.exception())

    async def _execute(self, command: Command) -> None:
        try:
            body = await self._runner.run(command, self._core.agent_id or "")
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            now = utc_now()
            body = failed(
                AGENT_SHUTTING_DOWN,
                "The agent shut down before the action finished.",
                started=now,
                finished=now,
            )
            await self._deliver_result(command, body, within=SHUTDOWN_REPORT_SECONDS)
            return
        await self._deliver_result(command, body)
        self._after_action()

    async def _deliver_result(
        self, command: Command, body: CommandResultBody, *, within: float | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        if within is None:
            if command.expires_at is not None:
                within = max(5.0, (command.expires_at - utc_now()).total_seconds())
            else:
                within = RESULT_RETRY_FALLBACK_SECONDS
        deadline = loop.time() + within
        for _ in range(2):
            current = body
            try:
                await self._call(
                    functools.partial(self._core.result_request, command.id, current),
                    self._core.accept_result,
                    deadline=deadline,
                )
                return
            except ResultTooLargeError as exc:
                # Refused locally (or by a server with a smaller cap): report why instead, so
                # the operator sees a clear failure rather than a command that never ends.
                log.error("action %s (command %s): %s", command.action_name, command.id, exc)
                body = replace_with_failure(
                    body, COMMAND_RESULT_TOO_LARGE, exc.message, exc.details
                )
            except RequestRejectedError as exc:
                if exc.code != "VALIDATION_FAILED" or current is not body:
                    log.warning(
                        "Opstage did not accept the result of command %s: %s", command.id, exc
                    )
                    return
                # The server refused what the action returned (an integer beyond 64 bits, say):
                # report that as the command's failure, or it would never end.
                log.error(
                    "Opstage refused the result of command %s (%s); reporting it as failed",
                    command.id,
                    exc,
                )
                body = replace_with_failure(
                    body,
                    ACTION_RESULT_INVALID,
                    f"Opstage refused the action's result: {exc.message}",
                    exc.details or None,
                )
            except (NetworkError, ServerError) as exc:
                log.error(
                    "gave up reporting the result of command %s (%s); it expires on the server",
                    command.id,
                    exc,
                )
                return

    async def drain(self, grace: float) -> None:
        """Let running actions finish for ``grace`` seconds; cancel (and report) the rest."""
        tasks = list(self._in_flight)
        if not tasks:
            return
        log.info("waiting up to %g s for %d running action(s)", grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_REPORT_SECONDS + 1)
