"""The shape of a JSON answer (keys and value types, never values) and the differences of two."""

from __future__ import annotations

from typing import Any

Shape = Any  # "str" | "int" | "number" | "bool" | "null" | {"key": Shape} | ["list", Shape | None]


# Free-form objects: what they hold depends on the action, the agent or the event, not on the
# route, so only their presence and type are compared.
OPAQUE = frozenset(
    {
        "metadata",
        "payload",
        "details",
        "manifest",
        "inputSchema",
        "outputSchema",
        "currentState",
        "initialPayload",
        "inputMapping",
        "config",
        "labels",
        "busEvent",
        "mapping",
    }
)


def shape_of(value: Any, key: str = "") -> Shape:
    if key in OPAQUE and isinstance(value, dict):
        return "object"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() else "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return {k: shape_of(v, k) for k, v in value.items()}
    if isinstance(value, list):
        # Elements are merged: a key seen in any element is part of the element shape.
        merged: Shape = None
        for item in value:
            merged = _merge(merged, shape_of(item, key))
        return ["list", merged]
    return type(value).__name__


def _merge(a: Shape, b: Shape) -> Shape:
    if a is None:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, list) and isinstance(b, list):
        if a[1] is None:
            return b
        if b[1] is None:
            return a
        return ["list", _merge(a[1], b[1])]
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "number"}:
        return "number"
    return a


def differences(ours: Shape, ref: Shape, path: str = "") -> list[str]:
    """`+p` a key only we send, `-p` a key only the reference sends, `~p: ours/ref` a type."""
    where = path or "$"
    if isinstance(ours, dict) and isinstance(ref, dict):
        out: list[str] = []
        for k in sorted(set(ours) | set(ref)):
            sub = f"{path}.{k}" if path else k
            if k not in ref:
                out.append(f"+{sub}")
            elif k not in ours:
                out.append(f"-{sub}")
            else:
                out.extend(differences(ours[k], ref[k], sub))
        return out
    if isinstance(ours, list) and isinstance(ref, list):
        if ours[1] is None or ref[1] is None:  # an empty list fits any list
            return []
        return differences(ours[1], ref[1], f"{path}[]")
    # null fits any type: a nullable field holds a value on one side (values are not compared).
    if ours == ref or "null" in (ours, ref):
        return []
    if _scalars(ours, ref) and {ours, ref} == {"int", "number"}:
        return []
    if (ours == "object" and isinstance(ref, dict)) or (ref == "object" and isinstance(ours, dict)):
        return []
    return [f"~{where}: {_name(ours)}/{_name(ref)}"]


def _scalars(a: Shape, b: Shape) -> bool:
    return isinstance(a, str) and isinstance(b, str)


def _name(s: Shape) -> str:
    if isinstance(s, dict):
        return "object"
    if isinstance(s, list):
        return "list"
    return str(s)
