"""Domain errors: a stable ``code`` (contracts/errors.json) and an English message.

They know nothing of HTTP; ``opstage.api.errors`` maps each code to its status.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "REQUEST_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}
        # Only for codes whose status the error table cannot know (an agent's own code).
        self.status = status

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
