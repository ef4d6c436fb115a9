"""Capsule Bus rules that need no I/O: route matching, payload filters, input mapping, depth.

Filters and mappings are data, never code: a filter is ``{path, op, value?}`` with ``op`` one of
``equals``, ``in``, ``exists``; a mapping is ``{inputKey: "/json/pointer"}`` (or the
``"$.payload.id"`` form CE routes are written in) into the event document
``{eventType, sourceServiceCode, payload, metadata, correlationId, causationId}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

MAX_ROUTES_PER_EVENT = 10
EXPERIMENTAL = "v0.4-experimental"
_MISSING = object()


class RouteStatus(StrEnum):
    ENABLED = "ENABLED"
    DRY_RUN = "DRY_RUN"
    DISABLED = "DISABLED"


class EntryStatus(StrEnum):
    CREATED = "CREATED"
    DRY_RUN = "DRY_RUN"
    FAILED = "FAILED"


FILTER_OPS = ("equals", "in", "exists")


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901 JSON Pointer lookup; returns ``_MISSING`` when the path is absent."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return _MISSING
    node = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


def filter_problems(filters: Any) -> list[dict[str, str]]:
    issues: list[dict[str, str]] = []
    if not isinstance(filters, list):
        return [{"path": "filters", "message": "must be a list"}]
    for i, f in enumerate(filters):
        where = f"filters/{i}"
        if not isinstance(f, dict):
            issues.append({"path": where, "message": "must be an object"})
            continue
        path, op = f.get("path"), f.get("op")
        if not isinstance(path, str) or not (path == "" or path.startswith("/")):
            issues.append({"path": f"{where}/path", "message": "must be a JSON Pointer"})
        if op not in FILTER_OPS:
            issues.append({"path": f"{where}/op", "message": f"must be one of {FILTER_OPS}"})
        if op == "in" and not isinstance(f.get("value"), list):
            issues.append({"path": f"{where}/value", "message": "'in' needs a list"})
        if op == "equals" and "value" not in f:
            issues.append({"path": f"{where}/value", "message": "'equals' needs a value"})
    return issues


_DOLLAR_STEP = re.compile(
    r"""\.(?P<name>[^.\[\]]+)|\[(?P<index>\d+)\]|\[(?P<q>['"])(?P<quoted>(?:(?!(?P=q)).)*)(?P=q)\]"""
)


def dollar_path_to_pointer(path: str) -> str | None:
    """``$.payload.id`` (the form CE routes are written in) as a JSON Pointer (``/payload/id``).

    Steps are ``.name``, ``[0]`` and ``['name']`` / ``["name"]``; ``$`` alone is the whole
    document. Anything else (wildcards, filters, recursive descent) is not a path: ``None``.
    """
    if not path.startswith("$"):
        return None
    tokens: list[str] = []
    at = 1
    while at < len(path):
        step = _DOLLAR_STEP.match(path, at)
        if step is None:
            return None
        token = step.group("name") or step.group("index") or step.group("quoted") or ""
        if step.group("name") is not None and token in ("*", ".."):
            return None
        tokens.append(token.replace("~", "~0").replace("/", "~1"))
        at = step.end()
    return "".join("/" + t for t in tokens)


def mapping_pointer(source: Any) -> str | None:
    """The JSON Pointer a mapping entry names: a pointer as is, or a ``$.``-path converted."""
    if not isinstance(source, str):
        return None
    if source == "" or source.startswith("/"):
        return source
    return dollar_path_to_pointer(source)


def mapping_problems(mapping: Any) -> list[dict[str, str]]:
    if not isinstance(mapping, dict):
        return [{"path": "inputMapping", "message": "must be an object"}]
    return [
        {
            "path": f"inputMapping/{k}",
            "message": "must be a JSON Pointer (/payload/id) or a $-path ($.payload.id)",
        }
        for k, v in mapping.items()
        if mapping_pointer(v) is None
    ]


def event_document(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "eventType": event["event_type"],
        "sourceServiceCode": event["source_service_code"],
        "payload": event["payload"],
        "metadata": event["metadata"],
        "correlationId": event.get("correlation_id"),
        "causationId": event.get("causation_id"),
    }


def filters_pass(filters: list[dict[str, Any]], document: Any) -> bool:
    for f in filters:
        value = resolve_pointer(document, f["path"])
        op = f["op"]
        if op == "exists":
            # An omitted value (absent, or null as older versions stored it) means "present".
            want = f.get("value")
            if (value is _MISSING) == (True if want is None else bool(want)):
                return False
        elif op == "equals":
            if value is _MISSING or value != f["value"]:
                return False
        elif op == "in" and (value is _MISSING or value not in f["value"]):
            return False
    return True


def route_matches(route: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    if route["status"] == RouteStatus.DISABLED or route["event_type"] != event["event_type"]:
        return False
    source = route["source_service_code"]
    if source is not None and source != event["source_service_code"]:
        return False
    return filters_pass(route["filters"] or [], event_document(event))


def apply_mapping(
    mapping: Mapping[str, str], document: Any
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The action input a route maps out of the event, and the paths that were missing."""
    out: dict[str, Any] = {}
    missing: list[dict[str, str]] = []
    for key, source in mapping.items():
        pointer = mapping_pointer(source)
        value = _MISSING if pointer is None else resolve_pointer(document, pointer)
        if value is _MISSING:
            missing.append({"path": key, "message": f"event has nothing at {source!r}"})
        else:
            out[key] = value
    return out, missing


def depth_for(cause: Mapping[str, Any] | None, causation_id: str | None) -> int:
    """0 for an original event; one more than its cause's depth for a reaction.

    A causation id that names no stored event is still a reaction to something: depth 1.
    """
    if causation_id is None:
        return 0
    return 1 if cause is None else int(cause["depth"]) + 1
