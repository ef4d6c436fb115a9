"""The SDK's wire models against the contract, ``opstage-ce-v0.1.yaml``.

A real agent runs a full session against the real server through a recording transport; every
request the SDK sent and every answer the server gave is then validated against the schema the
contract declares for that path, method and status (OpenAPI 3.1 is JSON Schema 2020-12; ``$ref``s
resolve through a ``referencing`` registry; ``date-time`` formats are checked). The SDK's own
models are written from the contract, not from the server, so this is where they meet.
"""

from __future__ import annotations

import asyncio
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_harness import (
    Exchange,
    Operator,
    RecordingTransport,
    ServerProcess,
    agent_config,
    wait_until,
)
from jsonschema import Draft202012Validator
from opstage_agent import AsyncAgent, ConfigItem, Health, Prepared
from opstage_testing.contracts import contract_dir
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

URI = "urn:opstage:contract:opstage-ce-v0.1"
_DIR = contract_dir()
CONTRACT = _DIR / "opstage-ce-v0.1.yaml" if _DIR is not None else None
pytestmark = pytest.mark.skipif(CONTRACT is None, reason="the shared contract is not available")


@cache
def spec() -> dict[str, Any]:
    assert CONTRACT is not None
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return loaded


@cache
def registry() -> Registry[Any]:
    return Registry().with_resource(URI, Resource(contents=spec(), specification=DRAFT202012))


def pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validate(instance: Any, *parts: str) -> None:
    """Validate against the schema found at ``parts`` inside the contract."""
    schema = {"$ref": f"{URI}#{pointer(*parts)}"}
    validator = Draft202012Validator(
        schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]
    assert not problems, f"{'/'.join(parts)}:\n" + "\n".join(problems)


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]]:
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the contract")


def response_schema_parts(template: str, method: str, status: int) -> tuple[str, ...]:
    responses = spec()["paths"][template][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    response = responses[key]
    base: tuple[str, ...] = ("paths", template, method.lower(), "responses", key)
    if "$ref" in response:  # a shared response object, e.g. '#/components/responses/Ok'
        base = tuple(response["$ref"].removeprefix("#/").split("/"))
    return (*base, "content", "application/json", "schema")


def check_exchange(exchange: Exchange) -> str:
    template, operation = operation_for(exchange.method, exchange.path)
    if exchange.request_body is not None:
        assert "requestBody" in operation, f"{template} takes no body"
        validate(
            exchange.request_body,
            "paths",
            template,
            exchange.method.lower(),
            "requestBody",
            "content",
            "application/json",
            "schema",
        )
    for name, value in exchange.params.items():
        declared = {p.get("name"): p for p in operation.get("parameters", []) if "name" in p}
        if name in declared:  # waitSeconds is our documented addition (compatibility.md)
            validate(
                int(value),
                "paths",
                template,
                exchange.method.lower(),
                "parameters",
                str(operation["parameters"].index(declared[name])),
                "schema",
            )
    validate(
        exchange.response_body,
        *response_schema_parts(template, exchange.method, exchange.status),
    )
    return template


async def test_every_request_and_answer_of_a_session_matches_the_contract(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    agent = AsyncAgent(
        agent_config(server, operator, tmp_path, service_description="Contract probe"),
        transport=transport,
    )

    @agent.health
    def health() -> Health:
        return Health.degraded("cache cold", hitRate=0.1)

    @agent.configs
    def configs() -> list[ConfigItem]:
        return [
            ConfigItem("REGION", "eu", label="Region"),
            ConfigItem("TOKEN", "x", sensitive=True),
        ]

    @agent.action(
        label="Echo",
        description="Say it back",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        output_schema={"type": "object"},
        timeout_seconds=5,
    )
    def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @agent.prepare("echo")
    def prepare_echo() -> Prepared:
        return Prepared(initial_payload={"text": "hello"}, current_state={"calls": 0})

    @agent.action(label="Rotate", danger_level="HIGH", confirm_required=True)
    def rotate() -> None:
        raise RuntimeError("no key store")

    async with agent:
        await agent.wait_ready(15)
        detail = await asyncio.to_thread(operator.sole_service, agent.agent_id)

        @agent.action(label="Added later")  # forces a services/report call
        def later() -> None: ...

        prepared = await asyncio.to_thread(operator.prepare, detail["id"], "echo")
        assert prepared.status_code == 200, prepared.text
        await asyncio.to_thread(operator.run, detail["id"], "echo", {"text": "hi"})
        await asyncio.to_thread(operator.run, detail["id"], "rotate", {}, confirmation=True)
        await asyncio.to_thread(
            wait_until,
            lambda: any(e.path.endswith("/services/report") for e in transport.exchanges),
            5,
        )

    seen = {check_exchange(e) for e in transport.exchanges}
    assert seen >= {
        "/api/agents/register",
        "/api/agents/{agentId}/heartbeat",
        "/api/agents/{agentId}/services/report",
        "/api/agents/{agentId}/commands",
        "/api/agents/{agentId}/commands/{commandId}/result",
    }
    results = [e.request_body for e in transport.exchanges if e.path.endswith("/result")]
    assert {r["success"] for r in results} == {True, False}
