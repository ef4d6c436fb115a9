"""A Capsule Bus test world: a publisher service and a target service on their own agents."""

from __future__ import annotations

from typing import Any

import httpx
from opstage_testing.clients import AdminClient, register, service

from ..conftest import unique

EXPERIMENTAL = "v0.4-experimental"


class World:
    """A publisher service and a target service, each on its own agent."""

    def __init__(self, url: str, ops: AdminClient, target_actions: list[dict[str, Any]]):
        self.ops = ops
        self.source_code, self.target_code = unique("src"), unique("dst")
        self.publisher = register(url, ops.create_token(), unique("pub"))
        self.publisher.report(service(self.source_code))
        self.worker = register(url, ops.create_token(), unique("wrk"))
        self.target = self.worker.report(service(self.target_code, *target_actions))["services"][0]
        self.event_type = unique("order.created")

    def route(self, **extra: Any) -> dict[str, Any]:
        body = {
            "name": extra.pop("name", "r"),
            "status": extra.pop("status", "ENABLED"),
            "match": {"eventType": self.event_type, **extra.pop("match", {})},
            "target": {"serviceCode": self.target_code, "actionName": extra.pop("action", "ship")},
            **extra,
        }
        return dict(self.ops.data("POST", "/api/admin/bus/routes", json=body))

    def publish(self, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        body.setdefault("eventType", self.event_type)
        body.setdefault("sourceServiceCode", self.source_code)
        return self.publisher.post(
            f"/api/agents/{self.publisher.agent_id}/bus/events", json=body, headers=headers or {}
        )

    def close(self) -> None:
        self.publisher.close()
        self.worker.close()
