"""Records → the contract's JSON shapes (camelCase, ISO-8601 ``…mmmZ`` timestamps).

The only place a stored record becomes a wire view (ADR 0011): use cases return the typed
records of ``domain/records.py``; the camelCase keys are written here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from opstage.domain.actions import initial_payload
from opstage.domain.records import (
    ActionRow,
    AgentRow,
    AuditRow,
    CommandResultRow,
    CommandRow,
    ConfigItemRow,
    JsonObject,
    RegistrationTokenRow,
    ServiceWithAgent,
    UserProfile,
)
from opstage.domain.redaction import redact
from opstage.domain.status import effective_service_status
from opstage.domain.timeutil import iso, millis_between
from opstage.domain.workspace import DEFAULT_WORKSPACE_ID
from opstage.settings import Settings

View = dict[str, Any]  # a wire object, as ``orjson`` writes it


def user_view(u: UserProfile) -> View:
    return {
        "id": u["id"],
        "username": u["username"],
        "displayName": u["display_name"],
        "role": u["role"],
        "status": u["status"],
        "lastLoginAt": iso(u["last_login_at"]),
        "createdAt": iso(u["created_at"]),
        "updatedAt": iso(u["updated_at"]),
    }


def token_view(t: RegistrationTokenRow, now: datetime) -> View:
    status = t["status"]
    if status == "ACTIVE" and t["expires_at"] is not None and t["expires_at"] <= now:
        status = "EXPIRED"
    return {
        "id": t["id"],
        "name": t["name"],
        "status": status,
        "agentCode": t["agent_code"],
        "agentId": t["used_by_agent_id"],
        "expiresAt": iso(t["expires_at"]),
        "usedAt": iso(t["used_at"]),
        "revokedAt": iso(t["revoked_at"]),
        "createdAt": iso(t["created_at"]),
        "updatedAt": iso(t["updated_at"]),
        # An extension (docs/topics.md), shown only where granted: the contract has no field.
        **({"topicTenants": t["topic_tenants"]} if t.get("topic_tenants") else {}),
    }


def agent_view(
    a: AgentRow, now: datetime, settings: Settings, service_count: int | None = None
) -> View:
    # As the reference: an agent reads its stored status, ONLINE until the sweep stores
    # OFFLINE; its services read STALE in between (service_view).
    out: View = {
        "id": a["id"],
        "code": a["code"],
        "name": a["name"],
        "mode": a["mode"],
        "runtime": a["runtime"],
        "status": a["status"],
        "storedStatus": a["status"],
        "lastHeartbeatAt": iso(a["last_heartbeat_at"]),
        "createdAt": iso(a["created_at"]),
        "updatedAt": iso(a["updated_at"]),
    }
    if service_count is not None:
        out["serviceCount"] = service_count
    return out


def service_view(s: ServiceWithAgent, now: datetime, settings: Settings) -> View:
    status = effective_service_status(
        s["agent_status"],
        s["agent_last_heartbeat_at"],
        s["status"],
        s["last_health_at"],
        now,
        settings.agent_offline_threshold_seconds,
        settings.health_stale_threshold_seconds,
    )
    return {
        "id": s["id"],
        "agentId": s["agent_id"],
        "code": s["code"],
        "name": s["name"],
        "description": s["description"],
        "version": s["version"],
        "runtime": s["runtime"],
        "status": status.value,
        "effectiveStatus": status.value,
        "storedStatus": s["status"],
        "healthStatus": s["health_status"],
        "agentStatus": s["agent_status"],
        "lastReportedAt": iso(s["last_reported_at"]),
        "lastHealthAt": iso(s["last_health_at"]),
        "createdAt": iso(s["created_at"]),
        "updatedAt": iso(s["updated_at"]),
    }


def health_view(s: ServiceWithAgent) -> View | None:
    if s["last_health_at"] is None:
        return None
    return {
        "id": s["health_report_id"],
        "serviceId": s["id"],
        "agentId": s["agent_id"],
        "status": s["health_status"],
        "message": s["health_message"],
        "details": s["health_details"] or {},
        "reportedAt": iso(s["last_health_at"]),
        # The reference answers its stored row: the workspace, and when it was written (the
        # report's own time, as there).
        "workspaceId": DEFAULT_WORKSPACE_ID,
        "createdAt": iso(s["last_health_at"]),
    }


def config_view(c: ConfigItemRow) -> View:
    return {
        "id": c["id"],
        "serviceId": c["service_id"],
        "key": c["key"],
        # The CE console's service drawer reads the reference's column name.
        "configKey": c["key"],
        "workspaceId": DEFAULT_WORKSPACE_ID,
        "label": c["label"],
        "type": c["type"],
        "source": c["source"],
        "editable": c["editable"],
        "sensitive": c["sensitive"],
        "valuePreview": c["value_preview"],
        "defaultValue": c["default_value"],
        "secretRef": c["secret_ref"],
    }


def action_view(a: ActionRow) -> View:
    out: View = {
        "id": a["id"],
        "serviceId": a["service_id"],
        "name": a["name"],
        "label": a["label"],
        "description": a["description"],
        "dangerLevel": a["danger_level"],
        "requiresConfirmation": bool(a["requires_confirmation"]),
        "inputSchema": a["input_schema"] or {},
        "enabled": bool(a["enabled"]),
        "createdAt": iso(a.get("created_at")),
        "updatedAt": iso(a.get("updated_at")),
    }
    if a["timeout_seconds"] is not None:  # the contract's integer is never null
        out["timeoutSeconds"] = a["timeout_seconds"]
    extra = a.get("extra") or {}
    for key in ("category", "order", "outputSchema"):
        if key in extra:
            out[key] = extra[key]
    return out


def command_view(c: CommandRow, *, for_agent: bool = False) -> View:
    payload = c["payload"] if for_agent else redact(c["payload"])
    return {
        "id": c["id"],
        "agentId": c["agent_id"],
        "serviceId": c["service_id"],
        "type": c["type"],
        "actionName": c["action_name"],
        "status": c["status"],
        "payload": payload,
        "createdByUserId": c["created_by_user_id"],
        "retryOfCommandId": c["retry_of_command_id"],
        "busEventId": c["bus_event_id"],
        "busRouteId": c["bus_route_id"],
        "errorCode": c["error_code"],
        "errorMessage": c["error_message"],
        "createdAt": iso(c["created_at"]),
        "updatedAt": iso(c["updated_at"]),
        "startedAt": iso(c["started_at"]),
        "completedAt": iso(c["completed_at"]),
        "expiresAt": iso(c["expires_at"]),
        "durationMs": millis_between(c["started_at"], c["completed_at"]),
    }


def result_view(r: CommandResultRow, agent_id: str) -> View:
    return {
        "id": r["id"],
        "commandId": r["command_id"],
        "agentId": agent_id,
        "success": bool(r["success"]),
        "message": r["message"],
        "data": r["data"] or {},
        "error": r["error"] or {},
        "startedAt": iso(r["agent_started_at"]),
        "finishedAt": iso(r["agent_finished_at"]),
        "reportedAt": iso(r["reported_at"]),
        # The reference's row time: the result is written when it is reported.
        "createdAt": iso(r["reported_at"]),
    }


def audit_view(e: AuditRow) -> View:
    meta = dict(e["metadata"] or {})
    return {
        "id": e["id"],
        "actorType": e["actor_type"],
        "actorId": e["actor_id"],
        "action": e["action"],
        "targetType": e["target_type"],
        "targetId": e["target_id"],
        "result": e["result"],
        "message": e["message"],
        "metadata": meta,
        "ipAddress": meta.get("ipAddress"),
        "userAgent": meta.get("userAgent"),
        "requestId": e["request_id"],
        "createdAt": iso(e["created_at"]),
    }


# The agent's prepare answer may restate these of the declared action (contract: the wire's
# names), and they then win over the declared ones.
PREPARE_OVERLAY: tuple[tuple[str, str], ...] = (
    ("label", "label"),
    ("description", "description"),
    ("dangerLevel", "danger_level"),
    ("inputSchema", "input_schema"),
    ("timeoutSeconds", "timeout_seconds"),
    ("requiresConfirmation", "requires_confirmation"),
)


def prepared_view(action: ActionRow, command: CommandRow, result: CommandResultRow) -> View:
    """An ACTION_PREPARE's answer: the action as the agent restated it, the payload to start
    from, the service's current state, and the prepare command with its result."""
    data: JsonObject = result["data"] or {}
    merged: dict[str, Any] = dict(action)
    overlay = data.get("action")
    if isinstance(overlay, dict):
        for src, dst in PREPARE_OVERLAY:
            if src in overlay:
                merged[dst] = overlay[src]
    given = data.get("initialPayload")
    state = data.get("currentState")
    prepare_command = command_view(command)
    prepare_command["result"] = result_view({**result, "data": data}, command["agent_id"])
    return {
        "action": action_view(cast(ActionRow, merged)),
        "initialPayload": given
        if isinstance(given, dict)
        else initial_payload(merged.get("input_schema")),
        "currentState": state if isinstance(state, dict) else {},
        "prepareCommand": prepare_command,
    }
