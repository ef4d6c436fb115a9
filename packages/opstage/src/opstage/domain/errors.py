"""Domain errors: a stable ``code`` (contracts/errors.json) and an English message.

They know nothing of HTTP; ``opstage.api.errors`` maps each code to its status and turns
``retry_after_seconds`` into a ``Retry-After`` header (ADR 0006).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "REQUEST_ERROR"
    # The code whose meaning this error shares when ``code`` is not one of ours: an agent's own
    # failure code, reported through us, is an ACTION_PREPARE_FAILED (ADR 0006).
    family: str | None = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details
        # When the caller may try again: a hint, whole seconds.
        self.retry_after_seconds = retry_after_seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class ValidationFailed(DomainError):
    code = "VALIDATION_FAILED"

    def __init__(self, message: str, issues: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details={"issues": issues or []})


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class Unavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"


class DuplicateRow(Conflict):
    """A uniqueness rule of the store refused a write (a concurrent twin got there first)."""

    code = "CONFLICT"


class ActionPrepareFailed(DomainError):
    """The agent failed a prepare step; ``code`` is the agent's own code when it gave one."""

    code = "ACTION_PREPARE_FAILED"
    family = "ACTION_PREPARE_FAILED"
