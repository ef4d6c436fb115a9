"""One-time values (a generated key in a result) shown once, to the person who asked.

The database only ever holds the redacted copy. The raw values wait here, in memory and for a
few minutes, until the user who created the command reads it; then they are gone. A restart
drops them, which is the safe direction: the value was never meant to be kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from opstage.domain.redaction import REDACTED, is_secret_value

TTL_SECONDS = 300.0


@dataclass
class _Held:
    user_id: str | None
    values: dict[tuple[str, ...], Any]
    expires: float


def secret_paths(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Raw values that redaction would hide, by their key path."""
    found: dict[tuple[str, ...], Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and is_secret_value(k, v):
                found[(*prefix, k)] = v
            else:
                found.update(secret_paths(v, (*prefix, str(k))))
    return found


def reveal(redacted: Any, values: dict[tuple[str, ...], Any]) -> Any:
    out = _copy(redacted)
    for path, raw in values.items():
        node = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(path[-1]) == REDACTED:
            node[path[-1]] = raw
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class OneTimeSecrets:
    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def hold(self, command_id: str, user_id: str | None, data: Any) -> None:
        values = secret_paths(data)
        if values:
            self._sweep()
            self._held[command_id] = _Held(user_id, values, time.monotonic() + TTL_SECONDS)

    def take(self, command_id: str, user_id: str | None) -> dict[tuple[str, ...], Any] | None:
        """The raw values, once, and only for the user who created the command."""
        held = self._held.get(command_id)
        if held is None or held.expires < time.monotonic():
            self._held.pop(command_id, None)
            return None
        if held.user_id is None or held.user_id != user_id:
            return None
        del self._held[command_id]
        return held.values

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, h in self._held.items() if h.expires < now]:
            del self._held[key]
