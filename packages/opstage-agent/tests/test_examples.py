"""The examples work: the demo service's every action, and the FastAPI app with its agent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from agent_harness import Operator, ServerProcess, agent_config, wait_until
from opstage_agent import Agent, AsyncAgent, Phase

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(relative: str) -> ModuleType:
    path = EXAMPLES / relative
    name = "example_" + path.stem + "_" + path.parent.name
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_demo_service_actions(server: ServerProcess, operator: Operator, tmp_path: Path) -> None:
    demo = load("demo_service/service.py")
    agent: Agent = demo.build_agent(agent_config(server, operator, tmp_path, agent_code="demo-x"))
    with agent:
        agent.wait_ready(15)
        detail = operator.sole_service(agent.agent_id or "")
        assert {a["name"]: a["dangerLevel"] for a in detail["actions"]} == {
            "echo": "LOW",
            "runHealthCheck": "LOW",
            "listThings": "LOW",
            "flipHealth": "MEDIUM",
            "announce": "LOW",
            "rotateSecret": "HIGH",
        }
        sid = detail["id"]

        echo = operator.run(sid, "echo", {"message": "hi", "repeat": 2})
        assert echo["result"]["message"] == "hi hi"

        check = operator.run(sid, "runHealthCheck")
        assert check["result"]["message"] == "3 of 3 checks passed"
        assert len(check["result"]["data"]["rows"]) == 3

        things = operator.run(sid, "listThings", {"status": "ACTIVE", "limit": 2})
        table = things["result"]["data"]
        assert [c["key"] for c in table["columns"]][:2] == ["id", "name"]
        assert len(table["rows"]) == 2 and table["total"] == 4

        # rotateSecret: the panel gets a fresh key from ACTION_PREPARE; executing needs it and
        # a confirmation.
        panel = operator.prepare(sid, "rotateSecret")
        assert panel.status_code == 200, panel.text
        prepared = panel.json()["data"]
        key = prepared["initialPayload"]["generatedKey"]
        assert key.startswith("demo_sk_")
        assert prepared["currentState"]["activeKeyId"].startswith("key-")
        refused = operator.client.post(
            f"/api/admin/capsule-services/{sid}/actions/rotateSecret",
            json={"payload": prepared["initialPayload"]},
        )
        assert refused.json()["error"]["code"] == "ACTION_REQUIRES_CONFIRMATION"
        rotated = operator.run(sid, "rotateSecret", prepared["initialPayload"], confirmation=True)
        assert rotated["status"] == "SUCCEEDED"
        assert rotated["result"]["message"].startswith("Rotated payments-api to key-")

        flipped = operator.run(sid, "flipHealth")
        assert flipped["result"]["data"] == {"health": "DEGRADED"}
        wait_until(lambda: operator.service(sid)["healthStatus"] == "DEGRADED", 3)
        operator.run(sid, "flipHealth")
        wait_until(lambda: operator.service(sid)["healthStatus"] == "UP", 3)


def test_fastapi_app_with_its_agent(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    testclient = pytest.importorskip("starlette.testclient")
    example = load("fastapi_service/app.py")
    agent = AsyncAgent(agent_config(server, operator, tmp_path, agent_code="orders-x"))
    app = example.create_app(agent)

    with testclient.TestClient(app) as http:  # runs the lifespan: the agent starts
        assert http.get("/orders").status_code == 200
        created = http.post("/orders", json={"item": "mouse", "quantity": 3})
        assert created.status_code == 201

        wait_until(lambda: agent.phase is Phase.ONLINE, 15)  # started in the background
        detail = operator.sole_service(agent.agent_id or "")
        on = operator.run(detail["id"], "setMaintenance", {"enabled": True})
        assert on["result"]["message"] == "Maintenance mode on"
        assert http.get("/orders").status_code == 503
        wait_until(lambda: operator.service(detail["id"])["healthStatus"] == "DEGRADED", 3)

        purged = operator.run(detail["id"], "purgeCancelled", confirmation=True)
        assert purged["result"]["data"] == {"purged": [2]}
        operator.run(detail["id"], "setMaintenance", {"enabled": False})
        assert len(http.get("/orders").json()) == 2
    assert agent.phase is Phase.STOPPED  # the app's shutdown stopped the agent
