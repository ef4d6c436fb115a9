"""Action rules: confirmation gates, input-schema validation, prepare defaults."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, SchemaError

DANGER_LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
CONFIRMATION_DANGER_LEVELS = frozenset({"HIGH", "CRITICAL"})


def needs_confirmation(danger_level: str, requires_confirmation: bool) -> bool:
    return requires_confirmation or danger_level in CONFIRMATION_DANGER_LEVELS


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why a declared inputSchema is not a usable JSON Schema, or None."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return None


@lru_cache(maxsize=512)
def _validator(schema_json: bytes) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(schema_json))


def payload_issues(schema: dict[str, Any] | None, payload: dict[str, Any]) -> list[dict[str, str]]:
    """Validation issues of ``payload`` against ``schema`` as ``{path, message}`` items."""
    if not schema:
        return []
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    issues = []
    for error in validator.iter_errors(payload):
        path = [str(p) for p in error.absolute_path]
        missing = _missing_property(error)
        if missing is not None:  # the field itself, so that a form can show it there
            path.append(missing)
        issues.append({"path": ".".join(path), "message": error.message})
    return sorted(issues, key=lambda issue: issue["path"].split("."))


def _missing_property(error: Any) -> str | None:
    """The property a ``required`` error is about (JSON Schema reports it at the parent)."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return None
    for name in error.validator_value:
        missing = isinstance(name, str) and name not in error.instance
        if missing and error.message.startswith(repr(name)):
            return str(name)
    return None


def initial_payload(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults a prepare panel starts from, derived as the reference derives them."""
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {}
    out: dict[str, Any] = {}
    for name, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        if "default" in spec:
            out[name] = spec["default"]
            continue
        kind = spec.get("type")
        out[name] = {"number": 0, "integer": 0, "boolean": False, "array": [], "object": {}}.get(
            kind if isinstance(kind, str) else "", ""
        )
    return out
