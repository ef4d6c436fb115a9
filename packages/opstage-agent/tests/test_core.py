"""The sans-I/O core and the pure pieces around it: no server, no sockets."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opstage_agent import (
    ActionError,
    ActionResult,
    AgentConfig,
    AgentDisabledError,
    AgentRevokedError,
    AuthenticationError,
    BusUnavailableError,
    ConfigItem,
    ConfigurationError,
    Health,
    NetworkError,
    Prepared,
    RateLimitedError,
    RegistrationError,
    RequestRejectedError,
    ResultTooLargeError,
    ServerError,
    ServiceCodeTakenError,
)
from opstage_agent.actions import ActionSpec, Handler
from opstage_agent.core import AgentCore, Backoff, HttpRequest, HttpResponse, Recovery
from opstage_agent.declarations import to_configs, to_health
from opstage_agent.logs import log, mask_tokens
from opstage_agent.models import Capabilities, Credentials
from opstage_agent.results import from_exception, result_size, succeeded

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REG = "opstage_reg_" + "a" * 32


def config(**overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {"backend_url": "http://opstage.test/", "agent_code": "billing"}
    values.update(overrides)
    return AgentConfig(**values)


def response(status: int, body: Any, **headers: str) -> HttpResponse:
    return HttpResponse(status, json.dumps(body).encode(), headers)


def error(status: int, code: str, message: str = "nope", **headers: str) -> HttpResponse:
    return response(
        status, {"success": False, "error": {"code": code, "message": message}}, **headers
    )


# --- configuration ---------------------------------------------------------------------------


def test_environment_configures_and_explicit_arguments_win() -> None:
    env = {
        "OPSTAGE_BACKEND_URL": "http://from-env:8080/",
        "OPSTAGE_REGISTRATION_TOKEN": REG,
        "OPSTAGE_AGENT_TOKEN_FILE": "/tmp/agent.json",
        "OPSTAGE_AGENT_CODE": "env-code",
        "OPSTAGE_AGENT_NAME": "Env Agent",
        "OPSTAGE_HEARTBEAT_INTERVAL_SECONDS": "12.5",
        "OPSTAGE_COMMAND_POLL_INTERVAL_SECONDS": "3",
    }
    from_env = AgentConfig.from_env(env)
    assert from_env.backend_url == "http://from-env:8080"
    assert from_env.registration_token == REG
    assert from_env.token_file == Path("/tmp/agent.json")
    assert (from_env.agent_code, from_env.agent_name) == ("env-code", "Env Agent")
    assert from_env.heartbeat_interval_seconds == 12.5
    assert from_env.command_poll_interval_seconds == 3.0

    explicit = AgentConfig.from_env(env, agent_code="mine", heartbeat_interval_seconds=2)
    assert explicit.agent_code == "mine"
    assert explicit.heartbeat_interval_seconds == 2
    assert explicit.agent_name == "Env Agent"  # not given: still from the environment


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({}, "OPSTAGE_BACKEND_URL"),
        ({"OPSTAGE_BACKEND_URL": "http://x"}, "OPSTAGE_AGENT_CODE"),
        ({"OPSTAGE_BACKEND_URL": "ftp://x", "OPSTAGE_AGENT_CODE": "a"}, "http(s) URL"),
        (
            {
                "OPSTAGE_BACKEND_URL": "http://x",
                "OPSTAGE_AGENT_CODE": "a",
                "OPSTAGE_HEARTBEAT_INTERVAL_SECONDS": "soon",
            },
            "OPSTAGE_HEARTBEAT_INTERVAL_SECONDS",
        ),
        ({"OPSTAGE_BACKEND_URL": "http://x", "OPSTAGE_AGENT_CODE": "Has.Capitals"}, "service code"),
        (
            {
                "OPSTAGE_BACKEND_URL": "http://x",
                "OPSTAGE_AGENT_CODE": "a",
                "OPSTAGE_REGISTRATION_TOKEN": "xyz",
            },
            "opstage_reg_",
        ),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        AgentConfig.from_env(env)


def test_ophub_mode_comes_from_the_environment_and_embedded_stays_the_default() -> None:
    base = {"OPSTAGE_BACKEND_URL": "http://x", "OPSTAGE_AGENT_CODE": "hub"}
    assert AgentConfig.from_env(base).agent_mode == "embedded"
    hub = AgentConfig.from_env(
        {**base, "OPSTAGE_AGENT_MODE": "ophub", "OPSTAGE_OPHUB_SERVICES": " crm, mail ,"}
    )
    assert (hub.agent_mode, hub.ophub_services) == ("ophub", ("crm", "mail"))
    for wrong, fragment in (
        ({"OPSTAGE_AGENT_MODE": "sidecar"}, "OPSTAGE_AGENT_MODE"),
        ({"OPSTAGE_OPHUB_SERVICES": "crm"}, "needs agent_mode"),
        ({"OPSTAGE_AGENT_MODE": "ophub", "OPSTAGE_OPHUB_SERVICES": "Bad Code"}, "'Bad Code'"),
        ({"OPSTAGE_AGENT_MODE": "ophub", "OPSTAGE_OPHUB_SERVICES": "crm,crm"}, "repeat"),
        ({"OPSTAGE_AGENT_MODE": "ophub", "OPSTAGE_OPHUB_SERVICES": "hub"}, "own service"),
    ):
        with pytest.raises(ConfigurationError, match=fragment):
            AgentConfig.from_env({**base, **wrong})


def test_an_ophub_registers_without_a_service_and_reports_the_ones_it_fronts() -> None:
    core = AgentCore(config(registration_token=REG, agent_mode="ophub", ophub_services=("crm",)))
    service = core.service_body([], [], to_health("UP"))
    body = json.loads(core.register_request(service).content or b"")
    assert body["agent"]["mode"] == "ophub" and "service" not in body
    core.adopt(Credentials("agt_1", "secret"))
    reported = json.loads(core.report_request(service).content or b"")["services"]
    assert [s["code"] for s in reported] == ["billing", "crm"]
    assert {s["manifest"]["agentMode"] for s in reported} == {"ophub"}

    embedded = AgentCore(config(registration_token=REG))
    body = json.loads(embedded.register_request(service).content or b"")
    assert body["agent"]["mode"] == "embedded" and body["service"] == service


def test_registration_token_is_not_in_the_config_repr() -> None:
    assert REG not in repr(config(registration_token=REG))
    assert "secret" not in repr(Credentials("agt_1", "secret"))


# --- timings and long-poll -------------------------------------------------------------------


def test_configured_intervals_win_over_advertised_ones() -> None:
    core = AgentCore(config())
    assert (core.heartbeat_interval, core.poll_interval) == (30.0, 5.0)  # nothing advertised
    reg = HttpRequest("register", "POST", "/api/agents/register")
    core.accept_registration(
        reg,
        response(
            200,
            {
                "success": True,
                "data": {
                    "agentId": "agt_1",
                    "agentToken": "opstage_agent_x",
                    "heartbeatIntervalSeconds": 20,
                    "commandPollIntervalSeconds": 2,
                },
            },
        ),
    )
    assert (core.heartbeat_interval, core.poll_interval) == (20.0, 2.0)
    core = AgentCore(config(heartbeat_interval_seconds=7))
    assert core.heartbeat_interval == 7


def test_heartbeat_has_jitter_within_ten_percent() -> None:
    delays = {AgentCore(config(), rng=lambda v=v: v).next_heartbeat_delay() for v in (0, 0.5, 1)}
    assert delays == {27.0, 30.0, 33.0}


def test_long_poll_only_when_advertised_and_wanted() -> None:
    core = AgentCore(config())
    core.adopt(Credentials("agt_1", "opstage_agent_x"))
    assert core.long_poll_wait is None
    request = core.poll_request(50)
    assert dict(request.params) == {"limit": "10"}  # clamped as the server would
    core.capabilities = Capabilities(long_poll=True, long_poll_max_seconds=20)
    assert core.long_poll_wait == 20  # the server's cap beats the SDK's 25 s
    request = core.poll_request(3)
    assert dict(request.params) == {"limit": "3", "waitSeconds": "20"}
    assert request.read_timeout is not None and request.read_timeout > 20
    assert AgentCore(config(long_poll=False)).long_poll_wait is None


def test_a_network_error_is_retried_at_once_then_with_backoff() -> None:
    core = AgentCore(config(retry_initial_seconds=0.5), rng=lambda: 1.0)
    network, server = NetworkError("reset"), ServerError("503")
    assert [core.retry_delay(n, network) for n in range(4)] == [0.0, 0.5, 1.0, 2.0]
    assert [core.retry_delay(n, server) for n in range(3)] == [0.5, 1.0, 2.0]


def test_backoff_is_capped_exponential_with_jitter() -> None:
    low = Backoff(0.5, 30, rng=lambda: 0.0)
    high = Backoff(0.5, 30, rng=lambda: 1.0)
    assert [low.delay(n) for n in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert [high.delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert high.delay(50) == 30 and low.delay(50) == 15


# --- responses and error mapping -------------------------------------------------------------


def _request(operation: str = "heartbeat") -> HttpRequest:
    return HttpRequest(operation, "POST", "/x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operation", "reply", "kind", "recovery"),
    [
        ("heartbeat", error(401, "AGENT_TOKEN_REVOKED"), AuthenticationError, Recovery.REREGISTER),
        ("poll", error(401, "AGENT_TOKEN_INVALID"), AuthenticationError, Recovery.REREGISTER),
        ("report", error(403, "AGENT_REVOKED"), AgentRevokedError, Recovery.REREGISTER),
        ("poll", error(403, "AGENT_DISABLED"), AgentDisabledError, Recovery.WAIT_UNTIL_ENABLED),
        ("register", error(409, "REGISTRATION_TOKEN_USED"), RegistrationError, Recovery.GIVE_UP),
        ("register", error(403, "AGENT_REVOKED"), RegistrationError, Recovery.GIVE_UP),
        (
            "report",
            error(409, "CAPSULE_SERVICE_CODE_TAKEN"),
            ServiceCodeTakenError,
            Recovery.GIVE_UP,
        ),
        ("result", error(413, "COMMAND_RESULT_TOO_LARGE"), ResultTooLargeError, Recovery.GIVE_UP),
        ("result", error(410, "COMMAND_EXPIRED"), RequestRejectedError, Recovery.GIVE_UP),
        ("publish", error(404, "CAPSULE_BUS_DISABLED"), BusUnavailableError, Recovery.GIVE_UP),
        ("publish", error(404, "NOT_FOUND"), BusUnavailableError, Recovery.GIVE_UP),
        (
            "publish",
            error(429, "BUS_RATE_LIMITED", **{"retry-after": "7"}),
            RateLimitedError,
            Recovery.GIVE_UP,
        ),
        ("heartbeat", error(503, "DATABASE_UNAVAILABLE"), ServerError, Recovery.RETRY),
        ("poll", HttpResponse(502, b"<html>bad gateway</html>", {}), ServerError, Recovery.RETRY),
        ("poll", HttpResponse(200, b"not json", {}), ServerError, Recovery.RETRY),
    ],
)
def test_errors_map_to_the_tree_and_to_a_recovery(
    operation: str, reply: HttpResponse, kind: type[Exception], recovery: Recovery
) -> None:
    core = AgentCore(config(registration_token=REG))
    with pytest.raises(kind) as caught:
        core.parse(_request(operation), reply)
    assert core.recovery_for(caught.value) is recovery  # type: ignore[arg-type]
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 7


def test_a_refused_token_without_a_registration_token_gives_up() -> None:
    core = AgentCore(config())
    with pytest.raises(AuthenticationError) as caught:
        core.parse(_request(), error(401, "AGENT_TOKEN_REVOKED"))
    assert core.recovery_for(caught.value) is Recovery.GIVE_UP
    assert caught.value.code == "AGENT_TOKEN_REVOKED" and caught.value.status == 401


def test_a_revoked_registration_explains_the_scoped_token() -> None:
    core = AgentCore(config())
    with pytest.raises(RegistrationError, match="--agent-code billing"):
        core.parse(_request("register"), error(403, "AGENT_REVOKED"))


# --- requests --------------------------------------------------------------------------------


def test_requests_carry_the_token_only_in_the_authorization_header() -> None:
    core = AgentCore(config(registration_token=REG))
    register = core.register_request(None)
    assert not any(name == "Authorization" for name, _ in register.headers)
    assert json.loads(register.content or b"")["registrationToken"] == REG
    core.adopt(Credentials("agt_1", "opstage_agent_secret"))
    beat = core.heartbeat_request({"status": "UP"})
    assert ("Authorization", "Bearer opstage_agent_secret") in beat.headers
    assert b"opstage_agent_secret" not in (beat.content or b"")
    assert beat.path == "/api/agents/agt_1/heartbeat"


def test_oversized_results_are_refused_before_sending() -> None:
    core = AgentCore(config(result_max_bytes=1000))
    core.adopt(Credentials("agt_1", "opstage_agent_x"))
    small = succeeded({"rows": ["x"] * 10}, started=NOW, finished=NOW)
    assert core.result_request("cmd_1", small).path == "/api/agents/agt_1/commands/cmd_1/result"
    big = succeeded({"blob": "é" * 600}, started=NOW, finished=NOW)  # 1200 bytes in UTF-8
    assert result_size(big) > 1000
    with pytest.raises(ResultTooLargeError) as caught:
        core.result_request("cmd_1", big)
    assert caught.value.details == {"sizeBytes": result_size(big), "maxBytes": 1000}


def test_manifest_fingerprint_ignores_health_but_not_declarations() -> None:
    core = AgentCore(config())
    echo = ActionSpec("echo", "Echo")
    up = core.service_body([echo], [], Health.up())
    core.mark_reported(up)
    assert not core.manifest_changed(core.service_body([echo], [], Health.down("db gone")))
    assert core.manifest_changed(core.service_body([echo, ActionSpec("x", "X")], [], Health.up()))
    assert core.manifest_changed(core.service_body([echo], [ConfigItem("k", "v")], Health.up()))


def test_sensitive_config_values_are_never_sent() -> None:
    body = ConfigItem("API_KEY", "sk-live-123", sensitive=True, default_value="x").to_wire()
    assert body == {"key": "API_KEY", "type": "string", "editable": False, "sensitive": True}


# --- results ---------------------------------------------------------------------------------


def test_return_values_become_results() -> None:
    def run(value: Any) -> dict[str, Any]:
        return dict(succeeded(value, started=NOW, finished=NOW))

    assert run({"a": 1})["data"] == {"a": 1}
    assert run("done")["message"] == "done"
    assert "data" not in run(None) and "message" not in run(None)
    assert run([1, 2])["data"] == {"value": [1, 2]}
    assert run(ActionResult("ok", {"n": 1})) | {} == {
        "success": True,
        "message": "ok",
        "data": {"n": 1},
        "startedAt": "2026-01-01T00:00:00.000Z",
        "finishedAt": "2026-01-01T00:00:00.000Z",
    }
    assert run(Prepared(initial_payload={"a": 1}))["data"] == {"initialPayload": {"a": 1}}


def test_exceptions_become_failures_without_traceback_unless_debug() -> None:
    try:
        raise ValueError("disk full")
    except ValueError as exc:
        quiet = from_exception(exc, debug=False, started=NOW, finished=NOW)
        loud = from_exception(exc, debug=True, started=NOW, finished=NOW)
    assert quiet["error"] == {
        "code": "ACTION_FAILED",
        "message": "disk full",
        "details": {"exceptionType": "ValueError"},
    }
    assert "Traceback" in loud["error"]["details"]["traceback"]
    own = from_exception(
        ActionError("QUOTA", "too many", {"max": 3}), debug=True, started=NOW, finished=NOW
    )
    assert own["error"] == {"code": "QUOTA", "message": "too many", "details": {"max": 3}}


# --- declarations ----------------------------------------------------------------------------


def test_handler_arity_is_read_once() -> None:
    def none() -> None: ...
    def one(payload: Any) -> None: ...
    def two(payload: Any, context: Any) -> None: ...
    async def star(*args: Any) -> None: ...

    assert [Handler.wrap(f).arity for f in (none, one, two, star)] == [0, 1, 2, 2]
    assert Handler.wrap(star).is_async and not Handler.wrap(two).is_async


def test_health_and_config_shapes_are_normalised() -> None:
    assert to_health(True) == Health("UP") and to_health("degraded") == Health("DEGRADED")
    assert to_health({"status": "DOWN", "message": "db"}) == Health("DOWN", "db")
    with pytest.raises(ValueError, match="health"):
        to_health(42)
    assert to_configs({"LOG_LEVEL": "info", "WORKERS": 4}) == [
        ConfigItem("LOG_LEVEL", "info"),
        ConfigItem("WORKERS", "4", type="number"),
    ]
    assert to_configs([{"key": "a", "value": 1}]) == [ConfigItem("a", "1")]


def test_action_declarations_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="danger_level"):
        ActionSpec("x", "X", danger_level="EXTREME")  # type: ignore[arg-type]
    assert ActionSpec("x", "X", timeout_seconds=0.5).to_wire()["timeoutSeconds"] == 1


# --- logging ---------------------------------------------------------------------------------


def test_tokens_are_masked_even_if_a_message_carries_one(caplog: pytest.LogCaptureFixture) -> None:
    assert mask_tokens(f"bad {REG} and opstage_agent_Zz9-_x") == (
        "bad opstage_reg_*** and opstage_agent_***"
    )
    with caplog.at_level(logging.DEBUG, logger="opstage_agent"):
        log.warning("server said: %s", f"token {REG} refused")
    assert REG not in caplog.text and "opstage_reg_***" in caplog.text
