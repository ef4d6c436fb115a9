"""Action rules: confirmation gates, input-schema validation, prepare defaults."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator, SchemaError

from opstage.domain.redaction import REDACTED, redact

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


def _schema_secret(spec: Any) -> bool:
    """A property the action's inputSchema declares secret: JSON Schema's ``writeOnly``, the
    ``password`` format, or an explicit ``sensitive``/``x-sensitive`` flag."""
    return isinstance(spec, dict) and (
        spec.get("writeOnly") is True
        or spec.get("format") == "password"
        or spec.get("sensitive") is True
        or spec.get("x-sensitive") is True
    )


def _scrub_declared(payload: dict[str, Any], schema: Any) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return payload
    out = dict(payload)
    for name, spec in props.items():
        value = out.get(name)
        if value in (None, ""):
            continue
        if _schema_secret(spec):
            out[name] = REDACTED
        elif isinstance(value, dict):
            out[name] = _scrub_declared(value, spec)
    return out


def scrub_payload(payload: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """The payload as it may be kept once the agent has it (docs/security.md): redacted like any
    stored value, and every property the inputSchema declares secret erased."""
    redacted: dict[str, Any] = redact(payload)
    return _scrub_declared(redacted, schema) if schema else redacted


def holds_scrubbed_values(payload: Any) -> bool:
    """Whether a stored payload lost values to scrubbing (it cannot be sent again as it is)."""
    if isinstance(payload, str):
        return payload == REDACTED or f"_{REDACTED}" in payload
    if isinstance(payload, dict):
        return any(holds_scrubbed_values(v) for v in payload.values())
    if isinstance(payload, list):
        return any(holds_scrubbed_values(v) for v in payload)
    return False
