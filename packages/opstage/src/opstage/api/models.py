"""Request bodies of the contract, as pydantic models (unknown fields are ignored)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HealthStatusIn = Literal["UP", "DEGRADED", "DOWN", "UNKNOWN"]
DangerLevelIn = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
SERVICE_CODE = r"^[a-z0-9][a-z0-9_-]*$"


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, by_alias=True)


class LoginRequest(Body):
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class CreateRegistrationTokenRequest(Body):
    name: str = Field("Default registration token", min_length=1, max_length=200)
    expiresInSeconds: int | None = Field(None, ge=60, le=31_536_000)  # noqa: N815
    agentCode: str | None = Field(None, min_length=1, max_length=120)  # noqa: N815


class HealthInput(Body):
    status: HealthStatusIn
    message: str | None = Field(None, max_length=2000)
    details: dict[str, Any] | None = None


class ConfigInput(Body):
    key: str = Field(min_length=1, max_length=200)
    label: str | None = Field(None, max_length=200)
    type: str = Field(min_length=1, max_length=40)
    source: str | None = Field(None, max_length=200)
    editable: bool | None = None
    sensitive: bool | None = None
    valuePreview: str | None = Field(None, max_length=4000)  # noqa: N815
    defaultValue: str | None = Field(None, max_length=4000)  # noqa: N815
    secretRef: str | None = Field(None, max_length=300)  # noqa: N815


class ActionInput(Body):
    name: str = Field(min_length=1, max_length=120)
    label: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    dangerLevel: DangerLevelIn | None = None  # noqa: N815
    requiresConfirmation: bool | None = None  # noqa: N815
    inputSchema: dict[str, Any] | None = None  # noqa: N815
    outputSchema: dict[str, Any] | None = None  # noqa: N815
    timeoutSeconds: int | None = Field(None, gt=0, le=86_400)  # noqa: N815
    category: str | None = Field(None, max_length=120)
    order: int | None = None


class ReportedService(Body):
    code: str = Field(min_length=1, max_length=80, pattern=SERVICE_CODE)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    version: str | None = Field(None, max_length=80)
    runtime: str | None = Field(None, max_length=40)
    manifest: dict[str, Any]
    health: HealthInput | None = None
    configs: list[ConfigInput] | None = Field(None, max_length=500)
    actions: list[ActionInput] | None = Field(None, max_length=200)


class AgentIdentity(Body):
    code: str = Field(min_length=1, max_length=120, pattern=r"^\S(.*\S)?$")
    name: str | None = Field(None, max_length=200)
    mode: Literal["embedded", "sidecar", "external", "ophub"] = "embedded"
    runtime: str | None = Field(None, max_length=40)


class RegisterAgentRequest(Body):
    registrationToken: str = Field(pattern=r"^opstage_reg_", max_length=200)  # noqa: N815
    agent: AgentIdentity
    service: ReportedService | None = None


class HeartbeatRequest(Body):
    serviceId: str | None = Field(None, pattern=r"^svc_", max_length=40)  # noqa: N815
    health: HealthInput | None = None


class ServiceReportRequest(Body):
    services: list[ReportedService] = Field(min_length=1, max_length=100)


class CommandResultRequest(Body):
    success: bool
    message: str | None = None
    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    startedAt: str | None = Field(None, max_length=64)  # noqa: N815
    finishedAt: str | None = Field(None, max_length=64)  # noqa: N815


class CreateActionCommandRequest(Body):
    payload: dict[str, Any] = Field(default_factory=dict)
    confirmation: bool | None = None


class RetryCommandRequest(Body):
    confirmation: bool | None = None
