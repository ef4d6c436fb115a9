"""Domain error codes → HTTP statuses, and the contract's error envelope for every failure.

The statuses are those of ``contracts/errors.json`` (a test compares them, and checks that every
code the server raises is mapped; ADR 0006). Codes the
contract does not list but the reference server emits (``AGENT_OFFLINE``) or that we add are
listed below it. Framework errors (unknown route, wrong method, malformed JSON, validation)
are rendered in the same envelope. A 5xx never carries internals: only a correlation id.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from opstage.api.envelope import json_response
from opstage.domain.errors import DomainError

log = logging.getLogger("opstage.api")

CONTRACT_STATUS: dict[str, int] = {
    # generic
    "VALIDATION_FAILED": 422,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "REQUEST_ERROR": 400,
    "STATIC_NOT_FOUND": 404,
    # authentication
    "LOGIN_FAILED": 401,
    "SESSION_EXPIRED": 401,
    "SESSION_INVALID": 401,
    "CSRF_TOKEN_MISMATCH": 403,
    "CSRF_INVALID": 403,
    # tokens
    "REGISTRATION_TOKEN_INVALID": 401,
    "REGISTRATION_TOKEN_EXPIRED": 401,
    "REGISTRATION_TOKEN_USED": 409,
    "REGISTRATION_TOKEN_REVOKED": 401,
    "AGENT_TOKEN_INVALID": 401,
    "AGENT_TOKEN_REVOKED": 401,
    "AGENT_TOKEN_EXPIRED": 401,
    "REGISTRATION_TOKEN_NOT_FOUND": 404,
    "REGISTRATION_TOKEN_NOT_DELETABLE": 409,
    # agents
    "AGENT_NOT_FOUND": 404,
    "AGENT_DISABLED": 403,
    "AGENT_REVOKED": 403,
    "AGENT_CODE_TAKEN": 409,
    "AGENT_ID_MISMATCH": 403,
    "AGENT_NOT_AVAILABLE": 409,
    "AGENT_NOT_READY": 409,
    "AGENT_HEARTBEAT_STALE": 409,
    # capsule services
    "CAPSULE_SERVICE_NOT_FOUND": 404,
    "CAPSULE_SERVICE_NOT_OWNED": 403,
    "CAPSULE_SERVICE_MANIFEST_INVALID": 422,
    "CAPSULE_SERVICE_CODE_TAKEN": 409,
    # actions and commands
    "ACTION_NOT_FOUND": 404,
    "ACTION_DISABLED": 403,
    "ACTION_PAYLOAD_INVALID": 422,
    "ACTION_REQUIRES_CONFIRMATION": 422,
    "COMMAND_NOT_FOUND": 404,
    "COMMAND_NOT_OWNED": 403,
    "COMMAND_ALREADY_TERMINAL": 409,
    "COMMAND_EXPIRED": 410,
    "COMMAND_INVALID_TRANSITION": 409,
    "ACTION_PREPARE_TIMEOUT": 408,
    "ACTION_PREPARE_FAILED": 424,
    "COMMAND_ALREADY_COMPLETED": 409,
    "COMMAND_NOT_RETRYABLE": 409,
    "COMMAND_RESULT_TOO_LARGE": 413,
    # config
    "CONFIG_ITEM_NOT_FOUND": 404,
    "CONFIG_EDIT_NOT_SUPPORTED": 405,
    # users
    "USER_ALREADY_EXISTS": 409,
    "USER_NOT_FOUND": 404,
    "LAST_OWNER_REQUIRED": 409,
    # system
    "DATABASE_UNAVAILABLE": 503,
    "BOOTSTRAP_FAILED": 500,
}

EXTRA_STATUS: dict[str, int] = {
    "AGENT_OFFLINE": 409,  # the reference's readiness code for a stored-OFFLINE agent
    "REGISTRATION_TOKEN_SCOPE_MISMATCH": 403,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "BACKUP_UNSUPPORTED_ENGINE": 409,  # POST /api/admin/backup/sqlite on PostgreSQL: use pg_dump
    # Capsule Bus (CE v0.4 codes; not in errors.json v0.1)
    "CAPSULE_BUS_DISABLED": 404,
    "BUS_ROUTE_NOT_FOUND": 404,
    "BUS_SOURCE_SERVICE_NOT_FOUND": 404,
    "BUS_SOURCE_SERVICE_FORBIDDEN": 403,
    "BUS_RATE_LIMITED": 429,
    "BUS_DEPTH_EXCEEDED": 422,
    "BUS_ROUTE_REQUIRES_APPROVAL": 422,
    "BUS_ROUTE_APPROVAL_FORBIDDEN": 403,
    # Topic bus (docs/topics.md)
    "TOPIC_NOT_FOUND": 404,
    "TOPIC_EXISTS": 409,
    "TOPIC_EXISTS_IN_ENGINE": 409,
    "TOPIC_HEADER_RESERVED": 400,
    "TOPIC_ENGINE_UNAVAILABLE": 503,
    "TOPIC_BUS_DISABLED": 404,
    "TOPIC_RATE_LIMITED": 429,  # the per-agent publish quota (Retry-After)
    "TOPIC_SUBSCRIPTION_NOT_FOUND": 404,
    "TOPIC_SUBSCRIPTION_EXISTS": 409,
    "TOPIC_SUBSCRIPTION_NO_DLQ": 409,
    "TOPIC_MESSAGE_NOT_FOUND": 404,
}

STATUS_BY_CODE = {**CONTRACT_STATUS, **EXTRA_STATUS}


def status_for(error: DomainError) -> int | None:
    """The error's status, or None for a code no table maps (tests/unit/test_error_mapping.py
    keeps that from happening; ADR 0006)."""
    return STATUS_BY_CODE.get(error.family or error.code)


def error_headers(error: DomainError) -> dict[str, str] | None:
    if error.retry_after_seconds is None:
        return None
    return {"Retry-After": str(error.retry_after_seconds)}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"success": False, "error": error}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def domain_error_body(exc: DomainError, request_id: str | None) -> tuple[int, dict[str, Any]]:
    """A domain error's status and envelope; a 5xx is logged and masked (its ``requestId``
    ties the answer to the log line), anything else carries its redacted details."""
    status = status_for(exc)
    if status is None:
        # A code without a status is a server bug: answer as one, never guess a 4xx.
        log.error(
            "unmapped error code %s: %s (request %s)",
            exc.code,
            exc.message,
            request_id,
            extra={"request_id": request_id},
        )
        return 500, internal_error_body(request_id)
    if status >= 500:
        log.error(
            "request failed: %s %s (request %s)",
            exc.code,
            exc.message,
            request_id,
            extra={"request_id": request_id},
        )
        message = exc.message if exc.code in RETRYABLE_CODES else "Internal server error."
        return status, error_body(exc.code, message, _correlation(request_id))
    from opstage.domain.redaction import redact

    return status, error_body(exc.code, exc.message, redact(exc.details) if exc.details else None)


RETRYABLE_CODES = frozenset(
    {"DATABASE_UNAVAILABLE", "SERVICE_UNAVAILABLE", "TOPIC_ENGINE_UNAVAILABLE"}
)


def _correlation(request_id: str | None) -> dict[str, Any] | None:
    return {"requestId": request_id} if request_id else None


def internal_error_body(request_id: str | None) -> dict[str, Any]:
    """The envelope of an unexpected failure: nothing of it but the correlation id."""
    return error_body("INTERNAL_ERROR", "Internal server error.", _correlation(request_id))


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status, body = domain_error_body(exc, _request_id(request))
    return json_response(_marked(request, body), status, headers=error_headers(exc))


def _marked(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    if "/bus/" in request.url.path:
        body["experimental"] = "v0.4-experimental"  # every bus response, as CE v0.4
    return body


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return json_response(
        _marked(
            request,
            error_body(
                "VALIDATION_FAILED",
                "Request validation failed.",
                {"issues": issues_from(exc.errors())},
            ),
        ),
        422,
    )


def issues_from(errors: Any) -> list[dict[str, str]]:
    issues = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:2]  # the parameter, also when one of its repeated values is wrong
        elif loc and loc[0] == "body":
            loc = loc[1:]
        issues.append({"path": ".".join(loc), "message": str(err.get("msg", "invalid"))})
    return issues


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return json_response(_marked(request, error_body("NOT_FOUND", "Route not found.")), 404)
    if exc.status_code == 405:
        return json_response(
            _marked(request, error_body("METHOD_NOT_ALLOWED", "Method not allowed on this route.")),
            405,
            headers=dict(exc.headers or {}),
        )
    code = {
        400: "REQUEST_ERROR",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
    }.get(exc.status_code, "REQUEST_ERROR")
    if exc.status_code >= 500:
        return json_response(
            _marked(request, error_body("INTERNAL_ERROR", "Internal server error.")),
            exc.status_code,
        )
    return json_response(_marked(request, error_body(code, str(exc.detail))), exc.status_code)


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client went away mid-request (a long-poll cancelled, a load generator stopping):
    # nothing to answer and nothing wrong with the server.
    log.info("client disconnected", extra={"request_id": _request_id(request)})
    return Response(status_code=499)


ANSWERED = "opstage.error_answered"  # in the request's state: the 500 was sent and logged


async def on_unexpected(request: Request, exc: Exception) -> Response:
    request_id = _request_id(request)
    log.exception("unhandled error (request %s)", request_id, exc_info=exc)
    # Starlette re-raises the error after this answer; the request context (middleware.py)
    # stops it there, and needs not log it again.
    request.scope.setdefault("state", {})[ANSWERED] = exc
    return json_response(_marked(request, internal_error_body(request_id)), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientDisconnect, on_client_disconnect)
    app.add_exception_handler(Exception, on_unexpected)
