"""Wire bodies (parsed by ``api/models.py``) → the app's typed, snake_case inputs (ADR 0011).

The use cases never read a camelCase key: what a body means is decided here, once, including
"left out" versus "sent as null" where the contract gives them different meanings.
"""

from __future__ import annotations

from opstage.api.models import (
    ActionInput,
    BusRouteRequest,
    ConfigInput,
    HealthInput,
    RegisterAgentRequest,
    ReportedService,
)
from opstage.app.agents import AgentRegistration
from opstage.app.bus_routes import RouteSpec
from opstage.app.services import DeclaredAction, DeclaredConfig, HealthReport, ServiceReport

# What an action may declare beyond its columns: stored as sent, shown again by action_view.
ACTION_EXTRAS = ("category", "order", "outputSchema")


def health_report(h: HealthInput) -> HealthReport:
    return HealthReport(status=h.status, message=h.message, details=h.details)


def declared_config(c: ConfigInput) -> DeclaredConfig:
    return DeclaredConfig(
        key=c.key,
        type=c.type,
        label=c.label,
        source=c.source,
        editable=c.editable,
        sensitive=c.sensitive,
        value_preview=c.valuePreview,
        default_value=c.defaultValue,
        secret_ref=c.secretRef,
    )


def declared_action(a: ActionInput) -> DeclaredAction:
    sent = a.dump()
    extra = {k: sent[k] for k in ACTION_EXTRAS if k in sent}
    return DeclaredAction(
        name=a.name,
        label=a.label,
        description=a.description,
        danger_level=a.dangerLevel,
        requires_confirmation=a.requiresConfirmation,
        input_schema=a.inputSchema,
        timeout_seconds=a.timeoutSeconds,
        extra=extra or None,
    )


def service_report(s: ReportedService) -> ServiceReport:
    # Configs/actions left out keep the declared ones; sent (even as null) they replace them.
    sent = s.model_fields_set
    return ServiceReport(
        code=s.code,
        name=s.name,
        manifest=s.manifest,
        description=s.description,
        version=s.version,
        runtime=s.runtime,
        health=health_report(s.health) if s.health is not None else None,
        configs=[declared_config(c) for c in s.configs or []] if "configs" in sent else None,
        actions=[declared_action(a) for a in s.actions or []] if "actions" in sent else None,
    )


def agent_registration(body: RegisterAgentRequest) -> AgentRegistration:
    return AgentRegistration(
        registration_token=body.registrationToken,
        code=body.agent.code,
        name=body.agent.name,
        mode=body.agent.mode,
        runtime=body.agent.runtime,
        service=service_report(body.service) if body.service is not None else None,
    )


def route_spec(body: BusRouteRequest) -> RouteSpec:
    return RouteSpec(
        name=body.name,
        description=body.description,
        status=body.status,
        event_type=body.match.eventType,
        source_service_code=body.match.sourceServiceCode,
        target_service_code=body.target.serviceCode,
        target_action_name=body.target.actionName,
        input_mapping=body.inputMapping,
        filters=[f.model_dump() for f in body.filters],
        metadata=body.metadata,
        pre_approved=body.preApproved,
    )
