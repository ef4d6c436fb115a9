"""Wire bodies become the app's typed inputs at the edge (``api/inputs.py``, ADR 0011).

What a body leaves out and what it sends as null can mean different things: a service report
without ``configs`` keeps the declared ones, one with ``"configs": null`` (or ``[]``) clears
them. That distinction used to ride on dict keys through the app; here it is decided once.
"""

from __future__ import annotations

from typing import Any

from opstage.api.inputs import agent_registration, route_spec, service_report
from opstage.api.models import BusRouteRequest, RegisterAgentRequest, ReportedService


def _service(**extra: Any) -> ReportedService:
    body = {"code": "svc-a", "name": "A", "manifest": {"kind": "CapsuleService"}, **extra}
    return ReportedService.model_validate(body)


def test_left_out_configs_and_actions_are_kept_sent_ones_replace() -> None:
    assert service_report(_service()).configs is None
    assert service_report(_service()).actions is None
    assert service_report(_service(configs=None, actions=None)).configs == []
    assert service_report(_service(configs=None, actions=None)).actions == []
    sent = service_report(_service(configs=[{"key": "k", "type": "string"}], actions=[]))
    assert [c.key for c in sent.configs or []] == ["k"]
    assert sent.actions == []


def test_an_action_keeps_what_it_declares_beyond_its_columns_as_sent() -> None:
    action = {"name": "go", "label": "Go", "dangerLevel": "HIGH", "outputSchema": {"a": 1}}
    [parsed] = service_report(_service(actions=[action])).actions or []
    assert parsed.danger_level == "HIGH"
    assert parsed.extra == {"outputSchema": {"a": 1}}
    [plain] = service_report(_service(actions=[{"name": "go", "label": "Go"}])).actions or []
    assert plain.extra is None


def test_a_registration_carries_its_agent_and_service_snake_cased() -> None:
    body = RegisterAgentRequest.model_validate(
        {
            "registrationToken": "opstage_reg_x",
            "agent": {"code": "agent-a", "runtime": "python"},
            "service": {"code": "svc-a", "name": "A", "manifest": {}},
        }
    )
    reg = agent_registration(body)
    assert (reg.registration_token, reg.code, reg.mode, reg.runtime) == (
        "opstage_reg_x",
        "agent-a",
        "embedded",
        "python",
    )
    assert reg.service is not None and reg.service.code == "svc-a"


def test_a_route_body_becomes_a_spec() -> None:
    spec = route_spec(
        BusRouteRequest.model_validate(
            {
                "name": "r",
                "match": {"eventType": "t"},
                "target": {"serviceCode": "s", "actionName": "a"},
                "filters": [{"path": "/payload/n", "op": "exists"}],
                "preApproved": True,
            }
        )
    )
    assert (spec.event_type, spec.source_service_code, spec.target_action_name) == ("t", None, "a")
    assert spec.filters == [{"path": "/payload/n", "op": "exists", "value": None}]
    assert spec.pre_approved is True
