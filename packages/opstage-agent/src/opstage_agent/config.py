"""Agent configuration: keyword arguments first, then ``OPSTAGE_*`` environment variables.

The variable names are the ones the Node agent and the Opstage docs use, so one deployment
environment configures either agent. Server-advertised timings apply only where the
configuration leaves a value unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from opstage_agent.errors import ConfigurationError

# Server-side rules, checked here so a typo fails at start and not at the first report.
SERVICE_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Plain ASCII: the server refuses look-alike codes (Cyrillic letters, zero-width or bidi
# characters, fullwidth forms, spaces) with 422 at registration.
AGENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
TOKEN_PREFIX_REGISTRATION = "opstage_reg_"
# "ophub": an OpHub that fronts local adapters' services (see opstage_agent.ophub). The other
# modes the server knows (sidecar, external) are reserved for editions this SDK does not serve.
AGENT_MODES = ("embedded", "ophub")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Everything an agent needs; build it directly or with :meth:`from_env`."""

    backend_url: str
    agent_code: str
    registration_token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    agent_name: str | None = None
    service_code: str | None = None  # default: the agent code
    service_name: str | None = None  # default: the agent name
    service_version: str = "0.0.0"
    service_description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    agent_mode: str = "embedded"
    # OpHub only: the codes of the adapters' services it reports next to its own.
    ophub_services: tuple[str, ...] = ()
    # None: use what the server advertises (register and heartbeat responses).
    heartbeat_interval_seconds: float | None = None
    command_poll_interval_seconds: float | None = None
    long_poll: bool = True  # used only when the server advertises it
    long_poll_wait_seconds: float = 25.0
    request_timeout_seconds: float = 15.0
    max_concurrent_actions: int = 8
    default_action_timeout_seconds: float = 300.0
    prepare_timeout_seconds: float = 25.0  # the server waits 30 s for a prepare answer
    result_max_bytes: int = 1_000_000  # the server's OPSTAGE_COMMAND_RESULT_MAX_BYTES default
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0
    debug: bool = False  # adds tracebacks to failed results

    def __post_init__(self) -> None:
        url = self.backend_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"backend_url (OPSTAGE_BACKEND_URL) must be an http(s) URL, got {url!r}"
            )
        object.__setattr__(self, "backend_url", url)
        if not AGENT_CODE.match(self.agent_code) or len(self.agent_code) > 120:
            raise ConfigurationError(
                "agent_code (OPSTAGE_AGENT_CODE) must be 1-120 ASCII letters, digits, '.', '_', "
                f"':' or '-', starting with a letter or digit, got {self.agent_code!r}"
            )
        code = self.effective_service_code
        if not SERVICE_CODE.match(code) or len(code) > 80:
            raise ConfigurationError(
                f"service code {code!r} must match {SERVICE_CODE.pattern} (at most 80 characters); "
                "set service_code when the agent code does not"
            )
        if self.agent_mode not in AGENT_MODES:
            raise ConfigurationError(
                f"agent_mode (OPSTAGE_AGENT_MODE) must be one of {', '.join(AGENT_MODES)}, "
                f"got {self.agent_mode!r}"
            )
        fronted = tuple(self.ophub_services)
        object.__setattr__(self, "ophub_services", fronted)
        if fronted and self.agent_mode != "ophub":
            raise ConfigurationError(
                "ophub_services (OPSTAGE_OPHUB_SERVICES) needs agent_mode (OPSTAGE_AGENT_MODE) "
                "'ophub'"
            )
        for extra in fronted:
            if not SERVICE_CODE.match(extra) or len(extra) > 80:
                raise ConfigurationError(
                    f"OpHub service code {extra!r} must match {SERVICE_CODE.pattern} "
                    "(at most 80 characters)"
                )
        if len(set(fronted)) != len(fronted) or code in fronted:
            raise ConfigurationError(
                "ophub_services must not repeat a code, nor name the agent's own service"
            )
        token = self.registration_token
        if token is not None and not token.startswith(TOKEN_PREFIX_REGISTRATION):
            raise ConfigurationError(
                "registration_token (OPSTAGE_REGISTRATION_TOKEN) must start with "
                f"{TOKEN_PREFIX_REGISTRATION!r}"
            )
        for name in (
            "long_poll_wait_seconds",
            "request_timeout_seconds",
            "default_action_timeout_seconds",
            "prepare_timeout_seconds",
            "retry_initial_seconds",
            "retry_max_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        for name in ("heartbeat_interval_seconds", "command_poll_interval_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.max_concurrent_actions < 1 or self.result_max_bytes < 1:
            raise ConfigurationError("max_concurrent_actions and result_max_bytes must be >= 1")

    @property
    def is_ophub(self) -> bool:
        return self.agent_mode == "ophub"

    @property
    def effective_agent_name(self) -> str:
        return self.agent_name or self.agent_code

    @property
    def effective_service_code(self) -> str:
        return self.service_code or self.agent_code

    @property
    def effective_service_name(self) -> str:
        return self.service_name or self.effective_agent_name

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AgentConfig:
        """Read ``OPSTAGE_*`` variables; any keyword argument given (not None) wins."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(f"unknown agent setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for var, (name, parse) in ENVIRONMENT.items():
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw.strip())
            except ValueError as exc:
                raise ConfigurationError(f"{var}={raw!r} is not valid: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        for required, var in (
            ("backend_url", "OPSTAGE_BACKEND_URL"),
            ("agent_code", "OPSTAGE_AGENT_CODE"),
        ):
            if not values.get(required):
                raise ConfigurationError(f"{required} is required: pass it or set {var}")
        if isinstance(values.get("token_file"), str):
            values["token_file"] = Path(values["token_file"])
        return cls(**values)

    def with_overrides(self, **changes: Any) -> AgentConfig:
        return replace(self, **changes)


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _codes(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "OPSTAGE_BACKEND_URL": ("backend_url", str),
    "OPSTAGE_REGISTRATION_TOKEN": ("registration_token", str),
    "OPSTAGE_AGENT_TOKEN_FILE": ("token_file", Path),
    "OPSTAGE_AGENT_CODE": ("agent_code", str),
    "OPSTAGE_AGENT_NAME": ("agent_name", str),
    "OPSTAGE_SERVICE_CODE": ("service_code", str),
    "OPSTAGE_SERVICE_NAME": ("service_name", str),
    "OPSTAGE_SERVICE_VERSION": ("service_version", str),
    "OPSTAGE_AGENT_MODE": ("agent_mode", str),
    "OPSTAGE_OPHUB_SERVICES": ("ophub_services", _codes),
    "OPSTAGE_HEARTBEAT_INTERVAL_SECONDS": ("heartbeat_interval_seconds", _positive_float),
    "OPSTAGE_COMMAND_POLL_INTERVAL_SECONDS": ("command_poll_interval_seconds", _positive_float),
    "OPSTAGE_COMMAND_RESULT_MAX_BYTES": ("result_max_bytes", int),
    "OPSTAGE_AGENT_DEBUG": ("debug", _bool),
}
