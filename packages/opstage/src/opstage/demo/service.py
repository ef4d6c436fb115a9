"""A small Capsule Service that shows what the Opstage console shows.

Run it against an Opstage server (``make demo`` does all of this for you)::

    OPSTAGE_BACKEND_URL=http://127.0.0.1:8080 \\
    OPSTAGE_REGISTRATION_TOKEN=opstage_reg_... \\
    OPSTAGE_AGENT_TOKEN_FILE=./data-demo/demo-agent.token.json \\
    python examples/demo_service/service.py

Actions, from harmless to dangerous:

- ``echo`` (LOW) — says the message back; its input schema gives the console a form.
- ``runHealthCheck`` (LOW) — checks its (simulated) dependencies and returns a table.
- ``listThings`` (LOW) — returns a table-like result: ``columns`` plus ``rows``.
- ``flipHealth`` (MEDIUM) — toggles health between UP and DEGRADED, so status changes show.
- ``announce`` (LOW) — publishes a ``demo.announced`` event on the Capsule Bus, for routes.
- ``rotateSecret`` (HIGH, confirmation required) — its ACTION_PREPARE handler generates the new
  key and shows the current state; executing it "rotates" the key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from opstage_agent import (
    ActionError,
    ActionResult,
    Agent,
    AgentConfig,
    ConfigItem,
    Health,
    Prepared,
)

THINGS = [
    {"id": f"thing-{n:03d}", "name": name, "status": status, "owner": owner, "updatedAt": when}
    for n, (name, status, owner, when) in enumerate(
        [
            ("Invoice exporter", "ACTIVE", "billing", "2026-05-01T09:12:00Z"),
            ("Session pool EU", "ACTIVE", "platform", "2026-05-02T17:40:00Z"),
            ("OTP reader", "PAUSED", "identity", "2026-04-28T08:05:00Z"),
            ("Proxy checker", "ACTIVE", "growth", "2026-05-03T11:30:00Z"),
            ("Playwright worker 7", "FAILED", "growth", "2026-05-03T12:01:00Z"),
            ("LLM tool runtime", "ACTIVE", "ai", "2026-05-04T06:45:00Z"),
            ("Scraper (news)", "PAUSED", "research", "2026-04-30T22:10:00Z"),
        ],
        start=1,
    )
]


class DemoState:
    """What the demo service remembers; actions change it, health and configs report it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.degraded = False
        self.key_id = "key-" + secrets.token_hex(4)
        self.key_fingerprint = "sha256:" + hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:16]
        self.rotated_at: str | None = None

    def flip(self) -> bool:
        with self._lock:
            self.degraded = not self.degraded
            return self.degraded

    def rotate(self, new_key: str) -> str:
        with self._lock:
            # Keep a fingerprint only: the key itself never stays in memory or goes back out.
            self.key_id = "key-" + secrets.token_hex(4)
            self.key_fingerprint = "sha256:" + hashlib.sha256(new_key.encode()).hexdigest()[:16]
            self.rotated_at = datetime.now(UTC).isoformat(timespec="seconds")
            return self.key_id


def build_agent(config: AgentConfig | None = None) -> Agent:
    """The demo service's agent with every declaration; settings from ``config`` or env."""
    if config is None:
        config = AgentConfig.from_env(
            agent_code=os.environ.get("OPSTAGE_AGENT_CODE", "demo-service"),
            agent_name=os.environ.get("OPSTAGE_AGENT_NAME", "Demo Service"),
            service_version="1.0.0",
            service_description="The Opstage demo Capsule Service: one action of every kind.",
            labels={"team": "platform", "tier": "demo"},
        )
    agent = Agent(config)
    state = DemoState()

    @agent.health
    def health() -> Health:
        if state.degraded:
            return Health.degraded("Degraded on purpose by flipHealth", upstream="slow")
        return Health.up("All dependencies reachable")

    @agent.configs
    def configs() -> list[ConfigItem]:
        return [
            ConfigItem("LOG_LEVEL", "info", label="Log level", source="env"),
            ConfigItem("REGION", "eu-west-1", label="Region", source="env"),
            ConfigItem("THINGS_DB_URL", "postgres://things-db:5432/things", source="file"),
            ConfigItem("PAYMENTS_API_KEY", sensitive=True, secret_ref="vault:payments/api-key"),
            ConfigItem("ACTIVE_KEY_ID", state.key_id, label="Active key id", source="runtime"),
        ]

    @agent.action(
        label="Echo",
        description="Say the message back, a few times if asked.",
        input_schema={
            "type": "object",
            "properties": {
                "message": {"type": "string", "minLength": 1, "maxLength": 200},
                "repeat": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
            },
            "required": ["message"],
            "additionalProperties": False,
        },
        timeout_seconds=5,
    )
    def echo(payload: dict[str, Any]) -> ActionResult:
        # A command routed by the Capsule Bus carries the route's mapped input under "mapping"
        # (next to the event itself); one run by an operator is the input.
        args = payload.get("mapping", payload)
        repeated = " ".join([args["message"]] * int(args.get("repeat", 1)))
        return ActionResult(message=repeated, data={"echo": repeated})

    @agent.action(
        name="runHealthCheck",
        label="Run health check",
        description="Check every dependency now and report each result.",
        timeout_seconds=10,
    )
    def run_health_check() -> ActionResult:
        checks = [
            ("things-db", "postgres", random.randint(2, 9)),
            ("payments-api", "https", random.randint(40, 120)),
            ("object-store", "s3", random.randint(10, 30)),
        ]
        rows = [
            {
                "dependency": name,
                "kind": kind,
                "latencyMs": latency * (8 if state.degraded and name == "payments-api" else 1),
                "status": "SLOW" if state.degraded and name == "payments-api" else "OK",
            }
            for name, kind, latency in checks
        ]
        failing = [r["dependency"] for r in rows if r["status"] != "OK"]
        message = f"{len(rows) - len(failing)} of {len(rows)} checks passed"
        return ActionResult(
            message=message,
            data={"columns": ["dependency", "kind", "latencyMs", "status"], "rows": rows},
        )

    @agent.action(
        name="listThings",
        label="List things",
        description="The things this service manages, as a table.",
        input_schema={
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ANY", "ACTIVE", "PAUSED", "FAILED"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
            },
            "additionalProperties": False,
        },
    )
    def list_things(payload: dict[str, Any]) -> dict[str, Any]:
        wanted = payload.get("status", "ANY")
        rows = [t for t in THINGS if wanted in ("ANY", t["status"])]
        limit = int(payload.get("limit", 10))
        return {
            "columns": [
                {"key": "id", "title": "Id"},
                {"key": "name", "title": "Name"},
                {"key": "status", "title": "Status"},
                {"key": "owner", "title": "Owner"},
                {"key": "updatedAt", "title": "Updated"},
            ],
            "rows": rows[:limit],
            "total": len(rows),
        }

    @agent.action(
        name="flipHealth",
        label="Flip health",
        description="Toggle health between UP and DEGRADED to watch the status change.",
        danger_level="MEDIUM",
    )
    def flip_health() -> ActionResult:
        degraded = state.flip()
        now = "DEGRADED" if degraded else "UP"
        return ActionResult(message=f"Health is now {now}", data={"health": now})

    @agent.action(
        label="Announce on the bus",
        description="Publish a demo.announced event on the Capsule Bus; a bus route can turn "
        "it into a command (for instance demo.announced -> echo, message from /payload/text).",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 200}},
            "required": ["text"],
            "additionalProperties": False,
        },
    )
    def announce(payload: dict[str, Any]) -> ActionResult:
        published = agent.publish_event("demo.announced", {"text": payload["text"]})
        routed = len(published.routed_commands)
        return ActionResult(
            message=f"Published demo.announced ({routed} routed command(s))",
            data={"eventId": published.event_id, "routedCommands": published.routed_commands},
        )

    @agent.action(
        name="rotateSecret",
        label="Rotate API key",
        description="Replace the payments API key with the one generated in the panel.",
        danger_level="HIGH",
        confirm_required=True,
        input_schema={
            "type": "object",
            "properties": {
                "keyName": {"type": "string", "enum": ["payments-api"]},
                "generatedKey": {"type": "string", "minLength": 32},
            },
            "required": ["keyName", "generatedKey"],
            "additionalProperties": False,
        },
        timeout_seconds=15,
    )
    def rotate_secret(payload: dict[str, Any]) -> ActionResult:
        new_key = payload["generatedKey"]
        if not new_key.startswith("demo_sk_"):
            raise ActionError("KEY_NOT_GENERATED", "Use the key generated in the action panel.")
        key_id = state.rotate(new_key)
        return ActionResult(
            message=f"Rotated payments-api to {key_id}",
            data={
                "keyId": key_id,
                "fingerprint": state.key_fingerprint,
                "rotatedAt": state.rotated_at,
            },
        )

    @agent.prepare("rotateSecret")
    def prepare_rotate_secret() -> Prepared:
        # Runs when the operator opens the panel: no side effect, just a fresh candidate key.
        return Prepared(
            initial_payload={
                "keyName": "payments-api",
                "generatedKey": "demo_sk_" + secrets.token_urlsafe(32),
            },
            current_state={
                "activeKeyId": state.key_id,
                "fingerprint": state.key_fingerprint,
                "lastRotatedAt": state.rotated_at,
            },
        )

    return agent


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s demo-agent %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    build_agent().run()


if __name__ == "__main__":
    main()
