"""A client for the live domain-event stream (``GET /api/admin/events/stream``), parsed by the
rules of the SSE specification, so what passes with it is what a browser's ``EventSource`` sees.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

STREAM = "/api/admin/events/stream"


@dataclass
class Frame:
    event: str  # "comment" for a ": …" line
    id: str | None = None
    data: Any = None
    text: str = ""


class Sse:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.retry: int | None = None
        self._lines = response.iter_lines()
        self.seen: list[Frame] = []

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        event: str | None = None
        event_id: str | None = None
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if event is None and not data and event_id is None:
                    continue  # a block with only retry: dispatches nothing
                frame = Frame(
                    event or "message",
                    event_id,
                    json.loads("\n".join(data)) if data else None,
                )
                self.seen.append(frame)
                return frame
            if line.startswith(":"):
                frame = Frame("comment", text=line[1:].strip())
                self.seen.append(frame)
                return frame
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
            elif field == "retry":
                self.retry = int(value)
        raise StopIteration

    def until(self, match: Callable[[Frame], bool], timeout: float = 10.0) -> list[Frame]:
        """Frames up to and including the first that matches (read timeout bounds each wait)."""
        deadline = time.monotonic() + timeout
        got: list[Frame] = []
        try:
            for frame in self:
                got.append(frame)
                if match(frame):
                    return got
                assert time.monotonic() < deadline, f"no matching frame in {timeout}s: {got}"
        except httpx.ReadTimeout:
            # A quiet stream: say what never came rather than surface the client's timeout.
            raise AssertionError(f"no matching frame before the stream went quiet: {got}") from None
        raise AssertionError(f"the stream ended before a matching frame: {got}")

    def events(self, frames: list[Frame]) -> list[Frame]:
        return [f for f in frames if f.event not in ("comment", "ready", "gap")]


@contextmanager
def open_stream(
    client: httpx.Client, *, last_event_id: int | str | None = None, **params: Any
) -> Iterator[Sse]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    with client.stream(
        "GET", STREAM, headers=headers, params=params, timeout=httpx.Timeout(10.0)
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-store"
        yield Sse(r)


def kind_is(kind: str, **data: Any) -> Callable[[Frame], bool]:
    def match(f: Frame) -> bool:
        if f.event != kind:
            return False
        return all(f.data["data"].get(k) == v for k, v in data.items())

    return match
