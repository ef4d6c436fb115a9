"""Running user code — action, prepare, health and config handlers — without blocking the loop.

Coroutine handlers run on the agent's event loop; plain functions run in the agent's own
thread pool (not the loop's default executor, which the host application may rely on). Each
call has a deadline. A coroutine is cancelled when it passes it; a thread cannot be, so the
SDK reports the timeout, sets ``context.cancelled`` and lets the thread finish on its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opstage_agent.actions import ActionContext, Handler
from opstage_agent.config import AgentConfig
from opstage_agent.declarations import Declarations
from opstage_agent.errors import ActionError
from opstage_agent.logs import log
from opstage_agent.models import Command, CommandResultBody, JSONObject, utc_now
from opstage_agent.results import (
    ACTION_HANDLER_NOT_FOUND,
    ACTION_RESULT_INVALID,
    ACTION_TIMEOUT,
    COMMAND_TYPE_UNSUPPORTED,
    InvalidResult,
    failed,
    from_exception,
    succeeded,
)


class HandlerTimeout(Exception):
    """Raised by :meth:`ActionRunner.call` when the handler passed its deadline."""


class ActionRunner:
    def __init__(
        self, declarations: Declarations, config: AgentConfig, pool: ThreadPoolExecutor
    ) -> None:
        self._declarations = declarations
        self._config = config
        self._pool = pool

    async def call(
        self,
        handler: Handler,
        payload: JSONObject,
        context: ActionContext | None,
        timeout: float,
    ) -> Any:
        """Call a handler of any kind, bounded by ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout) as scope:
                return await self._invoke(handler, handler.arguments(payload, context))
        except TimeoutError:
            # Only our own deadline is a timeout; a TimeoutError raised by the handler itself
            # is an ordinary failure of the handler.
            if scope.expired():
                if context is not None:
                    context.cancel()
                raise HandlerTimeout(timeout) from None
            raise

    async def _invoke(self, handler: Handler, args: tuple[Any, ...]) -> Any:
        if handler.is_async:
            return await handler.fn(*args)
        loop = asyncio.get_running_loop()
        # Copy the caller's context so contextvars (request ids, tracing) reach the thread.
        call = functools.partial(contextvars.copy_context().run, handler.fn, *args)
        value = await loop.run_in_executor(self._pool, call)
        if inspect.isawaitable(value):  # a plain function that returned a coroutine
            value = await value
        return value

    async def run(self, command: Command, agent_id: str) -> CommandResultBody:
        """Execute one command and describe the outcome as the contract's result body."""
        started = utc_now()
        if command.type not in ("ACTION_EXECUTE", "ACTION_PREPARE"):
            return failed(
                COMMAND_TYPE_UNSUPPORTED,
                f"This agent does not handle {command.type} commands.",
                started=started,
                finished=utc_now(),
            )
        declared = self._declarations.action(command.action_name)
        if declared is None:
            return failed(
                ACTION_HANDLER_NOT_FOUND,
                f"This agent has no handler for action {command.action_name!r}.",
                started=started,
                finished=utc_now(),
                details={"actionName": command.action_name},
            )
        spec, handler = declared
        timeout = spec.timeout_seconds or self._config.default_action_timeout_seconds
        if command.type == "ACTION_PREPARE":
            prepare = self._declarations.prepare(command.action_name)
            if prepare is None:
                # Nothing to prepare: the server derives the initial payload from inputSchema.
                return succeeded(None, started=started, finished=utc_now())
            handler = prepare
            timeout = min(timeout, self._config.prepare_timeout_seconds)
        context = ActionContext(
            command_id=command.id,
            command_type=command.type,
            action_name=command.action_name,
            payload=command.payload,
            agent_id=agent_id,
            service_id=command.service_id,
            timeout_seconds=timeout,
        )
        began = time.perf_counter()
        try:
            value = await self.call(handler, command.payload, context, timeout)
            body = succeeded(value, started=started, finished=utc_now())
        except HandlerTimeout:
            log.warning(
                "action %s (command %s) timed out after %gs", spec.name, command.id, timeout
            )
            return failed(
                ACTION_TIMEOUT,
                f"Action {spec.name!r} did not finish within {timeout:g} s.",
                started=started,
                finished=utc_now(),
                details={"timeoutSeconds": timeout},
            )
        except InvalidResult as exc:
            log.error("action %s (command %s): %s", spec.name, command.id, exc)
            return failed(ACTION_RESULT_INVALID, str(exc), started=started, finished=utc_now())
        except asyncio.CancelledError:
            context.cancel()
            raise
        except ActionError as exc:  # a failure the handler chose to report: no traceback
            log.warning("action %s (command %s) failed: %s", spec.name, command.id, exc.code)
            return from_exception(exc, debug=False, started=started, finished=utc_now())
        except Exception as exc:
            # The full traceback belongs in the service's own log; the result gets it only
            # in debug mode (see results.from_exception).
            log.error(
                "action %s (command %s) failed: %s",
                spec.name,
                command.id,
                exc,
                exc_info=exc,
            )
            return from_exception(
                exc, debug=self._config.debug, started=started, finished=utc_now()
            )
        log.info(
            "action %s (command %s) %s in %.0f ms",
            spec.name,
            command.id,
            "prepared" if command.type == "ACTION_PREPARE" else "succeeded",
            (time.perf_counter() - began) * 1000,
        )
        return body
