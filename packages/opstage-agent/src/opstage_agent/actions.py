"""Declared actions and the objects their handlers see and return.

A handler takes zero, one (``payload``) or two (``payload, context``) positional arguments; the
SDK looks once, when the handler is declared, and calls it accordingly. It may be a coroutine
function (run on the agent's event loop) or a plain function (run in the agent's thread pool,
so a blocking handler never stalls the loop).
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opstage_agent.errors import ConfigurationError
from opstage_agent.models import DANGER_LEVELS, ActionDefinitionBody, DangerLevel, JSONObject


@dataclass(frozen=True, slots=True)
class Handler:
    """A user function plus how to call it."""

    fn: Callable[..., Any]
    arity: int  # positional arguments it takes: 0, 1 (payload) or 2 (payload, context)
    is_async: bool

    @classmethod
    def wrap(cls, fn: Callable[..., Any]) -> Handler:
        if not callable(fn):
            raise ConfigurationError(f"{fn!r} is not callable")
        return cls(fn, _positional_arity(fn), _is_async(fn))

    def arguments(self, payload: JSONObject, context: ActionContext | None) -> tuple[Any, ...]:
        return (payload, context)[: self.arity]

    @property
    def name(self) -> str:
        return getattr(self.fn, "__qualname__", None) or repr(self.fn)


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: assume (payload)
        return 1
    count = 0
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return min(count, 2)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action as declared with ``@agent.action(...)``."""

    name: str
    label: str
    danger_level: DangerLevel = "LOW"
    confirm_required: bool = False
    description: str | None = None
    input_schema: JSONObject | None = None
    output_schema: JSONObject | None = None
    timeout_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 120:
            raise ConfigurationError("an action name must be 1-120 characters")
        if not self.label or len(self.label) > 200:
            raise ConfigurationError(f"action {self.name!r}: the label must be 1-200 characters")
        if self.danger_level not in DANGER_LEVELS:
            raise ConfigurationError(
                f"action {self.name!r}: danger_level must be one of {sorted(DANGER_LEVELS)}"
            )
        if self.timeout_seconds is not None and not 0 < self.timeout_seconds <= 86_400:
            raise ConfigurationError(f"action {self.name!r}: timeout_seconds must be in (0, 86400]")
        for key in ("input_schema", "output_schema"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, dict):
                raise ConfigurationError(
                    f"action {self.name!r}: {key} must be a JSON Schema object"
                )

    def to_wire(self) -> ActionDefinitionBody:
        body: ActionDefinitionBody = {
            "name": self.name,
            "label": self.label,
            "dangerLevel": self.danger_level,
            "requiresConfirmation": self.confirm_required,
        }
        if self.description is not None:
            body["description"] = self.description
        if self.input_schema is not None:
            body["inputSchema"] = self.input_schema
        if self.output_schema is not None:
            body["outputSchema"] = self.output_schema
        if self.timeout_seconds is not None:
            # The contract's timeoutSeconds is an integer; the server's expiry must not
            # fall before the local timeout, so round up.
            body["timeoutSeconds"] = math.ceil(self.timeout_seconds)
        return body


@dataclass(slots=True)
class ActionContext:
    """What a handler may want to know besides the payload."""

    command_id: str
    command_type: str
    action_name: str
    payload: JSONObject
    agent_id: str
    service_id: str | None
    timeout_seconds: float
    started_monotonic: float = field(default_factory=time.monotonic)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def remaining_seconds(self) -> float:
        """Seconds left before the SDK reports ``ACTION_TIMEOUT``."""
        return max(0.0, self.timeout_seconds - (time.monotonic() - self.started_monotonic))

    @property
    def cancelled(self) -> bool:
        """True once the action timed out or the agent is shutting down.

        A sync handler cannot be interrupted from outside its thread; a long one should check
        this between steps and stop early.
        """
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()


@dataclass(frozen=True, slots=True)
class ActionResult:
    """Return this for a message next to the data (a plain dict is the data alone)."""

    message: str | None = None
    data: JSONObject | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """What an ``@agent.prepare`` handler returns for the operator's action panel.

    ``action`` may override the declared label, description, inputSchema, … for this panel.
    """

    initial_payload: JSONObject | None = None
    current_state: JSONObject | None = None
    action: JSONObject | None = None

    def to_data(self) -> JSONObject:
        data: JSONObject = {}
        if self.initial_payload is not None:
            data["initialPayload"] = self.initial_payload
        if self.current_state is not None:
            data["currentState"] = self.current_state
        if self.action is not None:
            data["action"] = self.action
        return data
