"""The OpenAPI document: FastAPI's paths and parameters, with bodies, answers, errors and security
from the declared models of ``operations.py`` (ADR 0012).

FastAPI's own 422 (``HTTPValidationError``) is dropped: the server never sends it. Every error is
the contract's envelope (``wire.ErrorEnvelope``), under the statuses an operation of its kind can
answer. The document is committed as ``docs/openapi.json`` (``python -m opstage.api.openapi``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from opstage.api.deps import SESSION_COOKIE
from opstage.api.openapi import wire
from opstage.api.openapi.operations import OPERATIONS, Op

REF = "#/components/schemas/{model}"
ERROR = {"$ref": REF.format(model="ErrorEnvelope")}
SECURITY_SCHEMES: dict[str, Any] = {
    "adminSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "Set by POST /api/admin/auth/login (HttpOnly).",
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "The session's csrfToken; required on every state change.",
    },
    "agentToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The agentToken answered by POST /api/agents/register.",
    },
}
ERROR_MEANING = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden (role, CSRF, agent standing)",
    404: "Not found (or the feature is off)",
    405: "Configuration not editable",
    408: "The agent did not answer in time",
    409: "Conflict with the current state",
    410: "Gone (expired)",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Validation failed (details.issues)",
    424: "The agent failed the prepare",
    429: "Rate limited (Retry-After)",
    500: "Internal error (details.requestId only)",
    503: "Unavailable, retry (Retry-After)",
}


class UnmappedOperation(LookupError):
    """A served operation without a row in ``OPERATIONS``, or a row for no served operation."""


def _kind(method: str, path: str) -> str:
    if path.startswith("/api/admin/") and path != "/api/admin/auth/login":
        return "admin"
    if path.startswith("/api/agents/{agentId}"):
        return "agent"
    return "public"


def _security(kind: str, method: str, op: Op) -> list[dict[str, list[str]]]:
    if kind == "admin":
        csrf = op.csrf if op.csrf is not None else method not in ("GET", "HEAD", "OPTIONS")
        return [{"adminSession": [], "csrfToken": []} if csrf else {"adminSession": []}]
    if kind == "agent":
        return [{"agentToken": []}]
    return []


def _statuses(kind: str, path: str, op: Op) -> list[int]:
    found = {422, 500}
    if path != "/health":
        found.add(503)  # a database that is locked or unreachable, on any call that reads it
    if kind in ("admin", "agent"):
        found |= {401, 403}
    if kind == "agent" or "{" in path:
        found.add(404)
    if op.body is not None:
        found |= {413, 415}
    return sorted(found | set(op.errors))


def _data_schema(op: Op) -> dict[str, Any] | None:
    if op.any_data:
        return {"type": "object", "additionalProperties": True}
    if op.data is None:
        return None
    item = {"$ref": REF.format(model=op.data.__name__)}
    return {"type": "array", "items": item} if op.many else item


def _envelope(op: Op) -> dict[str, Any]:
    data = _data_schema(op)
    properties: dict[str, Any] = {"success": {"const": True}}
    required = ["success"]
    if data is not None:
        properties["data"] = data
        required.append("data")
    if op.paged:
        properties["pagination"] = {"$ref": REF.format(model="Pagination")}
        required.append("pagination")
    if op.experimental:
        properties["experimental"] = {"const": "v0.4-experimental"}
        required.append("experimental")
    return {"type": "object", "properties": properties, "required": required}


def _success(op: Op) -> dict[str, Any]:
    if op.media == "text/event-stream":
        return {
            "description": "Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    if op.media == "application/octet-stream":
        return {
            "description": "The file",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    content: dict[str, Any] = {"application/json": {"schema": _envelope(op)}}
    if op.media == "text/csv":
        content["text/csv"] = {"schema": {"type": "string"}}
    return {"description": "Success", "content": content}


def _responses(kind: str, path: str, op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"200": _success(op)}
    for status in _statuses(kind, path, op):
        out[str(status)] = {
            "description": ERROR_MEANING[status],
            "content": {"application/json": {"schema": ERROR}},
        }
    if path == "/api/system/health":  # the probe answers DOWN as a success body with 503
        out["503"] = {"description": "The database is down", "content": _success(op)["content"]}
    return out


def _models(ops: Iterable[Op]) -> dict[str, Any]:
    inputs: set[type[BaseModel]] = set()
    outputs: set[type[BaseModel]] = {wire.ErrorEnvelope, wire.Pagination}
    for op in ops:
        if op.body is not None:
            inputs.add(op.body)
        if op.data is not None:
            outputs.add(op.data)
    pairs = [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)] + [
        (m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)
    ]
    _, defs = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = defs.get("$defs", {})
    return dict(sorted(schemas.items()))


def build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        summary="The Opstage control plane's HTTP API: admin (session), agents (bearer), system.",
        routes=app.routes,
        tags=app.openapi_tags,
    )
    seen: set[tuple[str, str]] = set()
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            key = (method.upper(), path)
            op = OPERATIONS.get(key)
            if op is None:
                raise UnmappedOperation(f"{key} has no row in api/openapi/operations.py")
            seen.add(key)
            kind = _kind(key[0], path)
            operation["security"] = _security(kind, key[0], op)
            operation["responses"] = _responses(kind, path, op)
            if op.body is not None:
                operation["requestBody"] = {
                    "required": op.body_required,
                    "content": {
                        "application/json": {"schema": {"$ref": REF.format(model=op.body.__name__)}}
                    },
                }
    stale = set(OPERATIONS) - seen
    if stale:
        raise UnmappedOperation(f"rows for no served operation: {sorted(stale)}")
    spec["components"] = {
        "schemas": _models(OPERATIONS.values()),
        "securitySchemes": SECURITY_SCHEMES,
    }
    return spec


def install(app: FastAPI) -> None:
    """``app.openapi()`` (and ``/api/openapi.json``) answer the declared document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
