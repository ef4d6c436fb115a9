"""What each operation takes and answers, declared once per ``(method, path)`` (ADR 0012).

The routes read their bodies themselves (``deps.read_json``: the contract's error codes, limits
checked after authentication) and send orjson bytes, so FastAPI cannot see either; this table
names the pydantic models instead. ``document.py`` turns it into the OpenAPI document, and
refuses to build when a served operation has no row here or a row names no operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from opstage.api import models as req
from opstage.api.openapi import wire


@dataclass(frozen=True, slots=True)
class Op:
    data: type[BaseModel] | None  # the answer's ``data``; None: no data (``{"success": true}``)
    body: type[BaseModel] | None = None
    body_required: bool = True
    many: bool = False  # ``data`` is a list of ``data``
    paged: bool = False  # ... with ``pagination``
    experimental: bool = False  # the Capsule Bus's ``experimental`` mark on the envelope
    errors: tuple[int, ...] = ()  # beyond those every operation of its kind may answer
    media: str | None = None  # a success that is not the JSON envelope
    csrf: bool | None = None  # None: on state changes; prepare is a GET that needs it
    any_data: bool = False  # ``data`` is a free JSON object (a service's manifest)


OPERATIONS: dict[tuple[str, str], Op] = {
    # system (public)
    ("GET", "/health"): Op(wire.Liveness),
    ("GET", "/api/system/health"): Op(wire.SystemHealth, errors=(503,)),
    ("GET", "/api/system/version"): Op(wire.SystemVersion),
    # admin auth
    ("POST", "/api/admin/auth/login"): Op(wire.AdminSession, req.LoginRequest, errors=(401, 429)),
    ("POST", "/api/admin/auth/logout"): Op(None),
    ("GET", "/api/admin/auth/me"): Op(wire.AdminSession),
    ("GET", "/api/admin/auth/csrf"): Op(wire.CsrfToken),
    # users (owners)
    ("GET", "/api/admin/users"): Op(wire.User, many=True, paged=True),
    ("POST", "/api/admin/users"): Op(wire.User, req.CreateUserRequest, errors=(409,)),
    ("PATCH", "/api/admin/users/{userId}"): Op(wire.User, req.UpdateUserRequest, errors=(404, 409)),
    ("DELETE", "/api/admin/users/{userId}"): Op(wire.User, errors=(404, 409)),
    ("POST", "/api/admin/users/{userId}/reset-password"): Op(
        wire.User, req.ResetUserPasswordRequest, errors=(404,)
    ),
    # registration tokens
    ("POST", "/api/admin/registration-tokens"): Op(
        wire.CreatedRegistrationToken, req.CreateRegistrationTokenRequest, body_required=False
    ),
    ("GET", "/api/admin/registration-tokens"): Op(wire.RegistrationToken, many=True, paged=True),
    ("POST", "/api/admin/registration-tokens/{tokenId}/revoke"): Op(
        wire.RegistrationToken, errors=(404, 409)
    ),
    ("DELETE", "/api/admin/registration-tokens/{tokenId}"): Op(
        wire.RegistrationToken, errors=(404, 409)
    ),
    # agents
    ("GET", "/api/admin/agents"): Op(wire.Agent, many=True, paged=True),
    ("GET", "/api/admin/agents/{agentId}"): Op(wire.AgentDetail, errors=(404,)),
    ("POST", "/api/admin/agents/{agentId}/disable"): Op(wire.Agent, errors=(404, 409)),
    ("POST", "/api/admin/agents/{agentId}/enable"): Op(wire.Agent, errors=(404, 409)),
    ("POST", "/api/admin/agents/{agentId}/revoke"): Op(wire.Agent, errors=(404, 409)),
    # capsule services
    ("GET", "/api/admin/capsule-services"): Op(wire.CapsuleService, many=True, paged=True),
    ("GET", "/api/admin/capsule-services/{serviceId}"): Op(
        wire.CapsuleServiceDetail, errors=(404,)
    ),
    ("GET", "/api/admin/capsule-services/{serviceId}/manifest"): Op(
        None, any_data=True, errors=(404,)
    ),
    ("GET", "/api/admin/capsule-services/{serviceId}/health"): Op(wire.HealthReport, errors=(404,)),
    ("GET", "/api/admin/capsule-services/{serviceId}/configs"): Op(
        wire.ConfigItem, many=True, errors=(404,)
    ),
    ("GET", "/api/admin/capsule-services/{serviceId}/actions"): Op(
        wire.ActionDefinition, many=True, errors=(404,)
    ),
    ("GET", "/api/admin/capsule-services/{serviceId}/actions/{actionName}"): Op(
        wire.ActionPrepare, csrf=True, errors=(404, 408, 409, 424)
    ),
    ("POST", "/api/admin/capsule-services/{serviceId}/actions/{actionName}"): Op(
        wire.Command, req.CreateActionCommandRequest, body_required=False, errors=(404, 409)
    ),
    ("POST", "/api/admin/capsule-services/{serviceId}/transfer"): Op(
        wire.CapsuleServiceDetail, req.TransferServiceRequest, errors=(404, 409)
    ),
    # commands
    ("GET", "/api/admin/commands"): Op(wire.Command, many=True, paged=True),
    ("GET", "/api/admin/commands/{commandId}"): Op(wire.CommandDetail, errors=(404,)),
    ("POST", "/api/admin/commands/{commandId}/cancel"): Op(wire.Command, errors=(404, 409)),
    ("POST", "/api/admin/commands/{commandId}/retry"): Op(
        wire.Command, req.RetryCommandRequest, body_required=False, errors=(404, 409)
    ),
    # audit
    ("GET", "/api/admin/audit-events"): Op(wire.AuditEvent, many=True, paged=True),
    ("GET", "/api/admin/audit-events/export"): Op(wire.AuditEvent, many=True, media="text/csv"),
    ("GET", "/api/admin/audit-events/{auditEventId}"): Op(wire.AuditEvent, errors=(404,)),
    # observability, maintenance, backup, live events
    ("GET", "/api/admin/dashboard/summary"): Op(wire.DashboardSummary),
    ("GET", "/api/admin/metrics"): Op(wire.AdminMetrics),
    ("GET", "/api/admin/diagnostics/runtime"): Op(wire.RuntimeDiagnostics),
    ("GET", "/api/admin/settings/maintenance"): Op(wire.MaintenanceSettings),
    ("PATCH", "/api/admin/settings/maintenance"): Op(
        wire.MaintenanceSettings, wire.MaintenanceSettingsPatch
    ),
    ("POST", "/api/admin/maintenance/run"): Op(wire.MaintenanceRun),
    ("POST", "/api/admin/backup/sqlite"): Op(None, media="application/octet-stream", errors=(409,)),
    ("GET", "/api/admin/events/stream"): Op(None, media="text/event-stream"),
    # Capsule Bus (experimental; 404 CAPSULE_BUS_DISABLED when off)
    ("GET", "/api/admin/bus/routes"): Op(
        wire.BusRoute, many=True, paged=True, experimental=True, errors=(404,)
    ),
    ("POST", "/api/admin/bus/routes"): Op(
        wire.BusRoute, req.BusRouteRequest, experimental=True, errors=(404, 409)
    ),
    ("POST", "/api/admin/bus/routes/simulate"): Op(
        wire.BusSimulation, req.SimulateRequest, experimental=True, errors=(404,)
    ),
    ("GET", "/api/admin/bus/routes/{routeId}"): Op(wire.BusRoute, experimental=True, errors=(404,)),
    ("PUT", "/api/admin/bus/routes/{routeId}"): Op(
        wire.BusRoute, req.BusRouteRequest, experimental=True, errors=(404, 409)
    ),
    ("DELETE", "/api/admin/bus/routes/{routeId}"): Op(
        wire.BusRoute, experimental=True, errors=(404,)
    ),
    ("POST", "/api/admin/bus/routes/{routeId}/simulate"): Op(
        wire.BusSimulation,
        req.SimulateRequest,
        body_required=False,
        experimental=True,
        errors=(404,),
    ),
    ("GET", "/api/admin/bus/events"): Op(
        wire.BusEvent, many=True, paged=True, experimental=True, errors=(404,)
    ),
    ("GET", "/api/admin/bus/audit"): Op(
        wire.AuditEvent, many=True, paged=True, experimental=True, errors=(404,)
    ),
    # topics (404 TOPIC_BUS_DISABLED when off)
    ("POST", "/api/admin/topics"): Op(wire.Topic, req.TopicCreateRequest, errors=(404, 409, 503)),
    ("GET", "/api/admin/topics"): Op(wire.Topic, many=True, paged=True, errors=(404,)),
    ("GET", "/api/admin/topics/{topic}"): Op(wire.Topic, errors=(404,)),
    ("DELETE", "/api/admin/topics/{topic}"): Op(wire.DeletedTopic, errors=(404, 503)),
    # durable topic subscriptions (ADR 0015)
    ("POST", "/api/admin/topics/{topic}/subscriptions"): Op(
        wire.TopicSubscription, req.TopicSubscriptionCreateRequest, errors=(404, 409, 503)
    ),
    ("GET", "/api/admin/topics/{topic}/subscriptions"): Op(
        wire.TopicSubscription, many=True, paged=True, errors=(404,)
    ),
    ("GET", "/api/admin/topics/{topic}/subscriptions/{name}"): Op(
        wire.TopicSubscription, errors=(404,)
    ),
    ("DELETE", "/api/admin/topics/{topic}/subscriptions/{name}"): Op(
        wire.DeletedSubscription, errors=(404,)
    ),
    ("GET", "/api/admin/topics/{topic}/messages"): Op(wire.TopicMessages, errors=(404, 503)),
    ("POST", "/api/agents/{agentId}/topics/subscriptions"): Op(
        wire.TopicSubscription, req.TopicSubscriptionCreateRequest, errors=(409,)
    ),
    ("GET", "/api/agents/{agentId}/topics/subscriptions"): Op(
        wire.TopicSubscription, many=True, paged=True
    ),
    ("GET", "/api/agents/{agentId}/topics/subscriptions/{name}"): Op(wire.TopicSubscription),
    ("DELETE", "/api/agents/{agentId}/topics/subscriptions/{name}"): Op(wire.DeletedSubscription),
    ("POST", "/api/agents/{agentId}/topics/subscriptions/{name}/ack"): Op(
        wire.TopicSubscription, req.TopicAckRequest, errors=(409,)
    ),
    ("POST", "/api/agents/{agentId}/topics/subscriptions/{name}/nack"): Op(
        wire.TopicSubscription, req.TopicNackRequest, errors=(409,)
    ),
    # agents (bearer agent token, except registration, which spends a registration token)
    ("POST", "/api/agents/register"): Op(
        wire.RegisteredAgent, req.RegisterAgentRequest, errors=(401, 403, 409)
    ),
    ("POST", "/api/agents/{agentId}/heartbeat"): Op(
        wire.AgentTiming, req.HeartbeatRequest, body_required=False
    ),
    ("POST", "/api/agents/{agentId}/services/report"): Op(
        wire.ServiceReport, req.ServiceReportRequest, errors=(409,)
    ),
    ("GET", "/api/agents/{agentId}/commands"): Op(wire.Command, many=True),
    ("POST", "/api/agents/{agentId}/commands/{commandId}/result"): Op(
        wire.CommandResult, req.CommandResultRequest, errors=(409, 410)
    ),
    ("POST", "/api/agents/{agentId}/bus/events"): Op(
        wire.BusPublishReceipt, req.BusEventRequest, experimental=True, errors=(409, 429)
    ),
    ("GET", "/api/agents/{agentId}/topics"): Op(wire.Topic, many=True, paged=True),
    ("POST", "/api/agents/{agentId}/topics/publish"): Op(
        wire.TopicReceipt, req.TopicPublishRequest, errors=(400, 429)
    ),
    ("GET", "/api/agents/{agentId}/topics/subscribe/{subscriptionId}"): Op(
        None, media="text/event-stream"
    ),
}
