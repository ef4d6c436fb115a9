"""What a service declares — health and config providers, actions, prepare handlers — and the
decorators that declare them, shared by :class:`AsyncAgent` and :class:`Agent`.

Declaring something after the agent started is allowed: listeners are told, and the agent
re-reports its manifest at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from opstage_agent.actions import ActionSpec, Handler
from opstage_agent.errors import ConfigurationError
from opstage_agent.models import HEALTH_STATUSES, ConfigItem, DangerLevel, Health, JSONObject

F = TypeVar("F", bound=Callable[..., Any])


class Declarations:
    """The registry. Safe to change from any thread; readers take a consistent snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.health_provider: Handler | None = None
        self.configs_provider: Handler | None = None
        self._actions: dict[str, tuple[ActionSpec, Handler]] = {}
        self._prepares: dict[str, Handler] = {}
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def set_health(self, handler: Handler) -> None:
        self.health_provider = handler
        self._changed()

    def set_configs(self, handler: Handler) -> None:
        self.configs_provider = handler
        self._changed()

    def add_action(self, spec: ActionSpec, handler: Handler) -> None:
        with self._lock:
            self._actions[spec.name] = (spec, handler)
        self._changed()

    def remove_action(self, name: str) -> None:
        with self._lock:
            self._actions.pop(name, None)
            self._prepares.pop(name, None)
        self._changed()

    def add_prepare(self, name: str, handler: Handler) -> None:
        with self._lock:
            self._prepares[name] = handler
        self._changed()

    def specs(self) -> list[ActionSpec]:
        with self._lock:
            return [spec for spec, _ in self._actions.values()]

    def action(self, name: str) -> tuple[ActionSpec, Handler] | None:
        with self._lock:
            return self._actions.get(name)

    def prepare(self, name: str) -> Handler | None:
        with self._lock:
            return self._prepares.get(name)


class DeclaringMixin:
    """``@agent.health``, ``@agent.configs``, ``@agent.action(...)``, ``@agent.prepare(name)``."""

    declarations: Declarations

    def health(self, fn: F) -> F:
        """Declare the health check, called before every heartbeat.

        Return :class:`Health`, a status string (``"UP"``), a bool, or a dict
        ``{"status", "message"?, "details"?}``. An exception reports DOWN with its message.
        """
        self.declarations.set_health(Handler.wrap(fn))
        return fn

    def configs(self, fn: F) -> F:
        """Declare the config provider: a list of :class:`ConfigItem`/dicts, or a mapping
        ``{key: value}``. It is called before every heartbeat; a change is re-reported."""
        self.declarations.set_configs(Handler.wrap(fn))
        return fn

    @overload
    def action(self, name: F, /) -> F: ...

    @overload
    def action(
        self,
        name: str | None = None,
        *,
        label: str | None = None,
        description: str | None = None,
        danger_level: DangerLevel = "LOW",
        input_schema: JSONObject | None = None,
        output_schema: JSONObject | None = None,
        confirm_required: bool = False,
        timeout_seconds: float | None = None,
    ) -> Callable[[F], F]: ...

    def action(
        self,
        name: Any = None,
        *,
        label: str | None = None,
        description: str | None = None,
        danger_level: DangerLevel = "LOW",
        input_schema: JSONObject | None = None,
        output_schema: JSONObject | None = None,
        confirm_required: bool = False,
        timeout_seconds: float | None = None,
    ) -> Any:
        """Declare an operator action; the handler's name is the default action name.

        Usable bare (``@agent.action``) or with arguments. ``confirm_required`` makes the
        console ask for confirmation (the server enforces it); ``timeout_seconds`` bounds the
        handler (``ACTION_TIMEOUT``) and the command's expiry on the server.
        """

        def declare(fn: F) -> F:
            action_name = name if isinstance(name, str) else fn.__name__
            summary: str | None = description
            if summary is None and fn.__doc__ and fn.__doc__.strip():
                summary = fn.__doc__.strip().splitlines()[0]
            spec = ActionSpec(
                name=action_name,
                label=label or action_name,
                danger_level=danger_level,
                confirm_required=confirm_required,
                description=summary,
                input_schema=input_schema,
                output_schema=output_schema,
                timeout_seconds=timeout_seconds,
            )
            self.declarations.add_action(spec, Handler.wrap(fn))
            return fn

        if callable(name):
            fn, name = name, None
            return declare(fn)
        return declare

    def prepare(self, name: str) -> Callable[[F], F]:
        """Declare the ACTION_PREPARE handler of action ``name``: it fills the operator's
        action panel (return :class:`Prepared` or a dict with ``initialPayload``,
        ``currentState``). It must not change anything."""

        def declare(fn: F) -> F:
            self.declarations.add_prepare(name, Handler.wrap(fn))
            return fn

        return declare


def to_health(value: Any) -> Health:
    """Normalise what a health provider returned."""
    if isinstance(value, Health):
        return value
    if isinstance(value, bool):
        return Health("UP" if value else "DOWN")
    if isinstance(value, str) and value.upper() in HEALTH_STATUSES:
        return Health(value.upper())  # type: ignore[arg-type]  # checked just above
    if isinstance(value, Mapping) and isinstance(value.get("status"), str):
        details = value.get("details")
        message = value.get("message")
        return Health(
            str(value["status"]).upper(),  # type: ignore[arg-type]  # Health validates it
            message if isinstance(message, str) else None,
            dict(details) if isinstance(details, Mapping) else None,
        )
    raise ValueError(f"a health check returned {value!r}; return Health, a status or a bool")


def to_configs(value: Any) -> list[ConfigItem]:
    """Normalise what a config provider returned."""
    if isinstance(value, Mapping):
        return [ConfigItem(str(k), _preview(v), _type_of(v)) for k, v in value.items()]
    if not isinstance(value, list | tuple):
        raise ValueError("a config provider must return a list of ConfigItem or a mapping")
    items: list[ConfigItem] = []
    for item in value:
        if isinstance(item, ConfigItem):
            items.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("key"), str):
            items.append(
                ConfigItem(
                    key=item["key"],
                    value_preview=_optional_str(item.get("valuePreview", item.get("value"))),
                    type=str(item.get("type", "string")),
                    label=_optional_str(item.get("label")),
                    source=_optional_str(item.get("source")),
                    editable=bool(item.get("editable", False)),
                    sensitive=bool(item.get("sensitive", False)),
                    default_value=_optional_str(item.get("defaultValue")),
                    secret_ref=_optional_str(item.get("secretRef")),
                )
            )
        else:
            raise ValueError(f"config item {item!r} is neither a ConfigItem nor has a 'key'")
    keys = [i.key for i in items]
    if len(set(keys)) != len(keys):
        raise ConfigurationError("config keys must be unique")
    return items


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _preview(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else _preview(value)
