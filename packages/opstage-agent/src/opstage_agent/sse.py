"""A sans-I/O reader of Server-Sent Events: lines in, events out (the SSE specification's
rules for ``event``, ``id``, ``data`` and comments)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None


class SseParser:
    def __init__(self) -> None:
        self._event: str | None = None
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        """One line (without its end); an event when a blank line completes one."""
        if line == "":
            if not self._data and self._event is None:
                self._id = None
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._id, self._data = None, None, []
            return event
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None
