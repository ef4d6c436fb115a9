"""The SDK's exception tree. It names what went wrong, not which HTTP library noticed.

Every error the server sent carries the contract's ``code`` (``AGENT_REVOKED``, …), the HTTP
``status`` and the server's ``details``; errors raised locally have ``code`` set too where the
contract has a name for the situation (``COMMAND_RESULT_TOO_LARGE``).
"""

from __future__ import annotations

from typing import Any


class OpstageAgentError(Exception):
    """Base of every error this SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]" if self.code else self.message


class ConfigurationError(OpstageAgentError):
    """The agent cannot start as configured (missing URL or credentials, bad value, …)."""


class NetworkError(OpstageAgentError):
    """Opstage could not be reached, or the connection broke. Retried with backoff."""


class ServerError(OpstageAgentError):
    """Opstage answered 5xx, or something that is not the contract's envelope. Retried."""


class AuthenticationError(OpstageAgentError):
    """The agent token was refused (missing, unknown, rotated, expired, another agent's).

    Recovered by registering again when a registration token is configured.
    """


class AgentRevokedError(AuthenticationError):
    """An operator revoked this agent (``403 AGENT_REVOKED``).

    Only a registration token scoped to this agent's code brings it back.
    """


class AgentDisabledError(OpstageAgentError):
    """An operator disabled this agent (``403 AGENT_DISABLED``). It resumes once re-enabled."""


class RegistrationError(OpstageAgentError):
    """Registration was refused: the registration token is invalid, used, expired, revoked
    or scoped to another code, the agent is revoked, or the service code is taken."""


class RequestRejectedError(OpstageAgentError):
    """Opstage refused a request with a 4xx that the SDK cannot recover from."""


class ServiceCodeTakenError(RequestRejectedError):
    """The service code belongs to another agent (``409 CAPSULE_SERVICE_CODE_TAKEN``)."""


class ResultTooLargeError(RequestRejectedError):
    """A command result is larger than the server accepts (``COMMAND_RESULT_TOO_LARGE``)."""


class RateLimitedError(RequestRejectedError):
    """Opstage asked the agent to slow down (``429``); ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BusUnavailableError(RequestRejectedError):
    """The server has no Capsule Bus, or it is switched off (``404 CAPSULE_BUS_DISABLED``)."""


class TopicNotFoundError(RequestRejectedError):
    """The topic is not registered, or not in a tenant this agent may use (``404``)."""


class AgentNotRunningError(OpstageAgentError):
    """The call needs a connected agent (``start()`` first, and wait until it is ready)."""


class ActionError(Exception):
    """Raise from an action handler to fail the command with your own code and details.

    ``raise ActionError("QUOTA_EXCEEDED", "Only 3 rotations per day", {"used": 3})`` reports
    ``{success: false, error: {code, message, details}}``. Any other exception is reported as
    ``ACTION_FAILED`` with its message.
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
