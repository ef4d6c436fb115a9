"""Turning what a handler returned or raised into the contract's ``CommandResult`` body.

Pure functions; the error codes here are what operators see in the console, so each one
names the situation rather than the Python exception.
"""

from __future__ import annotations

import json
import traceback
from datetime import datetime
from typing import Any

from opstage_agent.actions import ActionResult, Prepared
from opstage_agent.errors import ActionError
from opstage_agent.logs import mask_tokens
from opstage_agent.models import CommandResultBody, ErrorBody, JSONObject, format_time

ACTION_FAILED = "ACTION_FAILED"
ACTION_TIMEOUT = "ACTION_TIMEOUT"
ACTION_HANDLER_NOT_FOUND = "ACTION_HANDLER_NOT_FOUND"
ACTION_RESULT_INVALID = "ACTION_RESULT_INVALID"
COMMAND_RESULT_TOO_LARGE = "COMMAND_RESULT_TOO_LARGE"
COMMAND_TYPE_UNSUPPORTED = "COMMAND_TYPE_UNSUPPORTED"
AGENT_SHUTTING_DOWN = "AGENT_SHUTTING_DOWN"
MESSAGE_MAX_CHARS = 2000


class InvalidResult(TypeError):
    """The handler returned something that is not a JSON object, string or None."""


def succeeded(value: Any, *, started: datetime, finished: datetime) -> CommandResultBody:
    message, data = _message_and_data(value)
    body: CommandResultBody = {
        "success": True,
        "startedAt": format_time(started),
        "finishedAt": format_time(finished),
    }
    if message is not None:
        body["message"] = message
    if data is not None:
        body["data"] = data
    return body


def failed(
    code: str,
    message: str,
    *,
    started: datetime,
    finished: datetime,
    details: JSONObject | None = None,
) -> CommandResultBody:
    # An exception message may quote a credential; the server redacts too, but why send it.
    message = mask_tokens(message)[:MESSAGE_MAX_CHARS]
    error: ErrorBody = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {
        "success": False,
        "message": message,
        "error": error,
        "startedAt": format_time(started),
        "finishedAt": format_time(finished),
    }


def replace_with_failure(
    body: CommandResultBody, code: str, message: str, details: JSONObject | None = None
) -> CommandResultBody:
    """A failure in place of a result that cannot be delivered, keeping its timestamps."""
    error: ErrorBody = {"code": code, "message": message[:MESSAGE_MAX_CHARS]}
    if details:
        error["details"] = details
    return {
        "success": False,
        "message": error["message"],
        "error": error,
        "startedAt": body["startedAt"],
        "finishedAt": body["finishedAt"],
    }


def from_exception(
    exc: BaseException, *, debug: bool, started: datetime, finished: datetime
) -> CommandResultBody:
    """``ActionError`` keeps its code; anything else is ACTION_FAILED with its message only.

    The traceback describes the service's code and paths, which operators reading the console
    need not see; it is added only in debug mode (and always goes to the local log).
    """
    if isinstance(exc, ActionError):
        return failed(
            exc.code, exc.message, started=started, finished=finished, details=exc.details
        )
    details: JSONObject = {"exceptionType": type(exc).__name__}
    if debug:
        details["traceback"] = "".join(traceback.format_exception(exc))
    message = str(exc) or type(exc).__name__
    return failed(ACTION_FAILED, message, started=started, finished=finished, details=details)


def result_size(body: CommandResultBody) -> int:
    """Bytes the server counts against its cap: compact JSON of message, data and error."""
    measured = {
        "message": body.get("message"),
        "data": body.get("data") or {},
        "error": body.get("error") or {},
    }
    return len(encode(measured))


def encode(value: Any) -> bytes:
    """The SDK's one JSON encoder: compact, UTF-8, and no NaN (the server would refuse it)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _message_and_data(value: Any) -> tuple[str | None, JSONObject | None]:
    if isinstance(value, ActionResult):
        message, data = value.message, value.data
    elif isinstance(value, Prepared):
        message, data = None, value.to_data()
    elif value is None:
        message, data = None, None
    elif isinstance(value, str):
        message, data = value, None
    elif isinstance(value, dict):
        message, data = None, value
    elif isinstance(value, list | tuple | int | float | bool):
        # The contract's result data is an object; wrap scalars and lists rather than refuse.
        message, data = None, {"value": list(value) if isinstance(value, tuple) else value}
    else:
        raise InvalidResult(
            f"an action returned {type(value).__name__}; return a dict, a str, None, "
            "ActionResult or Prepared"
        )
    if data is not None:
        try:
            encode(data)
        except (TypeError, ValueError) as exc:
            raise InvalidResult(f"the action's result is not JSON: {exc}") from None
    if message is not None:
        message = message[:MESSAGE_MAX_CHARS]
    return message, data
