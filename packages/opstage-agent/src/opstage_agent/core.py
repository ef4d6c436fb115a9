"""The sans-I/O core: what to send, how to read the answer, and what to do when it fails.

Nothing here touches a socket, a file, a thread or the clock's sleep. The asyncio agent (and,
through it, the sync one) asks the core for an :class:`HttpRequest`, performs it however it
likes, and hands back an :class:`HttpResponse`; the core parses the contract's envelope into
data or a typed error and keeps the protocol state: credentials, the server's timings and
capabilities, and a fingerprint of the last manifest it reported.
"""

from __future__ import annotations

import enum
import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opstage_agent.actions import ActionSpec
from opstage_agent.config import AgentConfig
from opstage_agent.errors import (
    AgentDisabledError,
    AgentRevokedError,
    AuthenticationError,
    BusUnavailableError,
    NetworkError,
    OpstageAgentError,
    RateLimitedError,
    RegistrationError,
    RequestRejectedError,
    ResultTooLargeError,
    ServerError,
    ServiceCodeTakenError,
    TopicNotFoundError,
)
from opstage_agent.models import (
    BusEventBody,
    Capabilities,
    Command,
    CommandResultBody,
    ConfigItem,
    Credentials,
    Health,
    HealthBody,
    HeartbeatAck,
    HeartbeatBody,
    JSONObject,
    ManifestBody,
    PublishedEvent,
    RegisterBody,
    Registration,
    ReportedServiceBody,
    ServiceReportBody,
    Timing,
    TopicReceipt,
    commands_from_wire,
    service_ids_from_wire,
)
from opstage_agent.results import encode, result_size
from opstage_agent.version import __version__

Operation = Literal[
    "register",
    "heartbeat",
    "report",
    "poll",
    "result",
    "publish",
    "topic_publish",
    "topic_subscribe",
    "topic_subscription",
    "topic_ack",
]

DEFAULT_HEARTBEAT_SECONDS = 30.0  # the contract's example and the reference's default
DEFAULT_POLL_SECONDS = 5.0
POLL_LIMIT_MAX = 10  # the server clamps to 1..10
LONG_POLL_READ_MARGIN_SECONDS = 10.0
HEARTBEAT_JITTER = 0.1  # ±10 %, so a fleet restarted together does not beat in lockstep
USER_AGENT = f"opstage-agent-python/{__version__}"


class Phase(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    ONLINE = "online"
    DISABLED = "disabled"
    STOPPED = "stopped"
    FAILED = "failed"


class Recovery(enum.Enum):
    """What the I/O layer should do about a failed request."""

    RETRY = "retry"  # network error or 5xx: back off, then send it again
    REREGISTER = "reregister"  # token refused and a registration token is configured
    WAIT_UNTIL_ENABLED = "wait"  # the operator disabled the agent; keep the schedule, no work
    GIVE_UP = "give-up"  # a 4xx that no retry can fix


@dataclass(frozen=True, slots=True)
class HttpRequest:
    operation: Operation
    method: str
    path: str
    content: bytes | None = None
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    read_timeout: float | None = None  # None: the client's default
    generation: int = 0  # which credentials signed it (see AgentCore.generation)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    content: bytes
    headers: Mapping[str, str]


class Backoff:
    """Capped exponential backoff with jitter: attempt n waits in [cap/2, cap] where
    cap = min(maximum, initial * 2**n). The random half keeps a fleet that lost the server at
    the same moment from coming back at the same moment."""

    def __init__(
        self, initial: float, maximum: float, rng: Callable[[], float] = random.random
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._rng = rng

    def delay(self, attempt: int) -> float:
        cap = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        return cap / 2 + (cap / 2) * self._rng()


class AgentCore:
    def __init__(self, config: AgentConfig, rng: Callable[[], float] = random.random) -> None:
        self.config = config
        self._rng = rng
        self.backoff = Backoff(config.retry_initial_seconds, config.retry_max_seconds, rng)
        self.phase = Phase.IDLE
        self.credentials: Credentials | None = None
        # Bumped whenever the credentials change, so a request that failed authentication
        # with an old token does not trigger a second re-registration.
        self.generation = 0
        self.timing = Timing()
        self.capabilities = Capabilities()
        self.service_id: str | None = None
        self._reported_fingerprint: str | None = None
        self.last_health: HealthBody | None = None

    # --- state ----------------------------------------------------------------------------

    def adopt(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.generation += 1

    @property
    def agent_id(self) -> str | None:
        return self.credentials.agent_id if self.credentials else None

    @property
    def heartbeat_interval(self) -> float:
        return (
            self.config.heartbeat_interval_seconds
            or self.timing.heartbeat_interval_seconds
            or DEFAULT_HEARTBEAT_SECONDS
        )

    @property
    def poll_interval(self) -> float:
        return (
            self.config.command_poll_interval_seconds
            or self.timing.command_poll_interval_seconds
            or DEFAULT_POLL_SECONDS
        )

    @property
    def long_poll_wait(self) -> float | None:
        """Seconds to ask the server to hold a poll, or None to poll on the interval."""
        caps = self.capabilities
        if not (self.config.long_poll and caps.long_poll and caps.long_poll_max_seconds > 0):
            return None
        return min(self.config.long_poll_wait_seconds, caps.long_poll_max_seconds)

    def next_heartbeat_delay(self) -> float:
        spread = 1 + HEARTBEAT_JITTER * (2 * self._rng() - 1)
        return self.heartbeat_interval * spread

    # --- what the service is ------------------------------------------------------------

    def service_body(
        self, actions: Sequence[ActionSpec], configs: Sequence[ConfigItem], health: Health
    ) -> ReportedServiceBody:
        c = self.config
        manifest: ManifestBody = {
            "kind": "CapsuleService",
            "schemaVersion": "1.0",
            "code": c.effective_service_code,
            "name": c.effective_service_name,
            "version": c.service_version,
            "runtime": "python",
            "agentMode": c.agent_mode,
            "capabilities": ["health", "configs", "actions"],
        }
        if c.service_description:
            manifest["description"] = c.service_description
        if c.labels:
            manifest["labels"] = dict(c.labels)
        body: ReportedServiceBody = {
            "code": c.effective_service_code,
            "name": c.effective_service_name,
            "version": c.service_version,
            "runtime": "python",
            "manifest": manifest,
            "health": health.to_wire(),
            "configs": [item.to_wire() for item in configs],
            "actions": [spec.to_wire() for spec in actions],
        }
        if c.service_description:
            body["description"] = c.service_description
        return body

    def fronted_service_bodies(self) -> list[ReportedServiceBody]:
        """An OpHub's adapter services: reported so that it may publish their events (the bus
        refuses a source service the agent does not own). What they declare is the adapters'
        business; the hub states only that they exist and that it fronts them."""
        bodies: list[ReportedServiceBody] = []
        for code in self.config.ophub_services:
            manifest: ManifestBody = {
                "kind": "CapsuleService",
                "schemaVersion": "1.0",
                "code": code,
                "name": code,
                "version": "0.0.0",
                "runtime": "other",
                "agentMode": self.config.agent_mode,
            }
            bodies.append({"code": code, "name": code, "runtime": "other", "manifest": manifest})
        return bodies

    @staticmethod
    def fingerprint(service: ReportedServiceBody) -> str:
        # Health travels with every heartbeat; only the rest makes a new report worthwhile.
        declared = {k: v for k, v in service.items() if k != "health"}
        canonical = json.dumps(declared, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def manifest_changed(self, service: ReportedServiceBody) -> bool:
        return self.fingerprint(service) != self._reported_fingerprint

    def mark_reported(self, service: ReportedServiceBody) -> None:
        """Also used after a refused report, so the same body is not sent again and again."""
        self._reported_fingerprint = self.fingerprint(service)

    def forget_report(self) -> None:
        """Make the next look at the declarations report them, changed or not."""
        self._reported_fingerprint = None

    def health_changed(self, health: HealthBody | None) -> bool:
        return health != self.last_health

    # --- requests ------------------------------------------------------------------------

    def register_request(self, service: ReportedServiceBody | None) -> HttpRequest:
        token = self.config.registration_token
        if not token:
            raise RegistrationError(
                "the agent has no credentials and no registration token: set "
                "OPSTAGE_REGISTRATION_TOKEN (opstage token create) or a token file that "
                "holds credentials"
            )
        body: RegisterBody = {
            "registrationToken": token,
            "agent": {
                "code": self.config.agent_code,
                "name": self.config.effective_agent_name,
                "mode": "ophub" if self.config.is_ophub else "embedded",
                "runtime": "python",
                "version": __version__,
            },
        }
        # An OpHub registers bare, as the reference's OpHub does, and reports its services
        # (its own and the adapters') right after.
        if service is not None and not self.config.is_ophub:
            # Sent with the registration so a taken service code is refused before the
            # single-use registration token is spent.
            body["service"] = service
        return self._request("register", "POST", "/api/agents/register", body, auth=False)

    def heartbeat_request(self, health: HealthBody | None) -> HttpRequest:
        body: HeartbeatBody = {}
        if health is not None:
            body["health"] = health
        if self.service_id is not None:
            body["serviceId"] = self.service_id
        return self._request("heartbeat", "POST", self._agent_path("/heartbeat"), body)

    def report_request(self, service: ReportedServiceBody) -> HttpRequest:
        body: ServiceReportBody = {"services": [service, *self.fronted_service_bodies()]}
        return self._request("report", "POST", self._agent_path("/services/report"), body)

    def poll_request(self, limit: int) -> HttpRequest:
        limit = max(1, min(POLL_LIMIT_MAX, limit))
        params: list[tuple[str, str]] = [("limit", str(limit))]
        read_timeout = None
        wait = self.long_poll_wait
        if wait is not None:
            params.append(("waitSeconds", f"{wait:g}"))
            read_timeout = max(wait, self.config.request_timeout_seconds) + (
                LONG_POLL_READ_MARGIN_SECONDS
            )
        return self._request(
            "poll",
            "GET",
            self._agent_path("/commands"),
            None,
            params=tuple(params),
            read_timeout=read_timeout,
        )

    def result_request(self, command_id: str, body: CommandResultBody) -> HttpRequest:
        """Refuses locally, with :class:`ResultTooLargeError`, what the server would refuse."""
        size = result_size(body)
        cap = self.config.result_max_bytes
        if size > cap:
            raise ResultTooLargeError(
                f"the result of command {command_id} is {size} bytes; Opstage accepts at most "
                f"{cap} (OPSTAGE_COMMAND_RESULT_MAX_BYTES). Return less data.",
                code="COMMAND_RESULT_TOO_LARGE",
                details={"sizeBytes": size, "maxBytes": cap},
            )
        path = self._agent_path(f"/commands/{command_id}/result")
        return self._request("result", "POST", path, body)

    def publish_request(
        self,
        event_type: str,
        payload: JSONObject,
        *,
        idempotency_key: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: JSONObject | None = None,
        occurred_at: str | None = None,
        dry_run: bool | None = None,
        source_service_code: str | None = None,
    ) -> HttpRequest:
        body: BusEventBody = {
            "eventType": event_type,
            "sourceServiceCode": source_service_code or self.config.effective_service_code,
            "payload": payload,
        }
        if metadata is not None:
            body["metadata"] = metadata
        if correlation_id is not None:
            body["correlationId"] = correlation_id
        if causation_id is not None:
            body["causationId"] = causation_id
        if occurred_at is not None:
            body["occurredAt"] = occurred_at
        if dry_run is not None:
            body["routePolicy"] = {"dryRun": dry_run}
        return self._request(
            "publish",
            "POST",
            self._agent_path("/bus/events"),
            body,
            # Retries of one publish carry one key, so the bus stores the event once.
            headers=(("Idempotency-Key", idempotency_key),),
        )

    def _agent_path(self, suffix: str) -> str:
        if self.credentials is None:
            raise AuthenticationError("the agent is not registered yet")
        return f"/api/agents/{self.credentials.agent_id}{suffix}"

    def _request(
        self,
        operation: Operation,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        auth: bool = True,
        params: tuple[tuple[str, str], ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        read_timeout: float | None = None,
    ) -> HttpRequest:
        all_headers = [("Accept", "application/json"), ("User-Agent", USER_AGENT), *headers]
        if body is not None:
            all_headers.append(("Content-Type", "application/json"))
        if auth:
            assert self.credentials is not None  # _agent_path checked it
            all_headers.append(("Authorization", f"Bearer {self.credentials.agent_token}"))
        return HttpRequest(
            operation=operation,
            method=method,
            path=path,
            content=encode(body) if body is not None else None,
            params=params,
            headers=tuple(all_headers),
            read_timeout=read_timeout,
            generation=self.generation,
        )

    # --- responses -----------------------------------------------------------------------

    def parse(self, request: HttpRequest, response: HttpResponse) -> Any:
        """The envelope's ``data``, or the typed error the envelope describes."""
        envelope = _json_or_none(response.content)
        if 200 <= response.status < 300:
            if not isinstance(envelope, dict) or envelope.get("success") is not True:
                raise ServerError(
                    f"Opstage answered {request.operation} with {response.status} but not the "
                    "contract's success envelope",
                    status=response.status,
                )
            return envelope.get("data")
        error = envelope.get("error") if isinstance(envelope, dict) else None
        code = message = None
        details: dict[str, Any] = {}
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), str) else None
            message = error.get("message") if isinstance(error.get("message"), str) else None
            details = error["details"] if isinstance(error.get("details"), dict) else {}
        raise error_for(
            request.operation,
            response.status,
            code or f"HTTP_{response.status}",
            message or f"HTTP {response.status}",
            details,
            response.headers,
            self.config.agent_code,
        )

    def accept_registration(self, request: HttpRequest, response: HttpResponse) -> Registration:
        registration = Registration.from_wire(self.parse(request, response))
        self.adopt(registration.credentials)
        self.timing = registration.timing
        self.capabilities = registration.capabilities
        # Heartbeats name their service (the contract's AgentHeartbeatRequest.serviceId): a
        # server that takes health only with it (the reference) would never see it change.
        # Without an id in the answer, the next report teaches it (see ``needs_report``).
        self.service_id = registration.service_id
        return registration

    def accept_heartbeat(
        self, request: HttpRequest, response: HttpResponse, health: HealthBody | None
    ) -> HeartbeatAck:
        ack = HeartbeatAck.from_wire(self.parse(request, response))
        if ack.timing.heartbeat_interval_seconds or ack.timing.command_poll_interval_seconds:
            self.timing = ack.timing
        # An old server omits capabilities: that means no long-poll, which is what it has.
        self.capabilities = ack.capabilities
        self.last_health = health
        return ack

    def accept_report(
        self, request: HttpRequest, response: HttpResponse, service: ReportedServiceBody
    ) -> None:
        ids = service_ids_from_wire(self.parse(request, response))
        self.service_id = ids.get(service["code"], self.service_id)
        self.mark_reported(service)
        self.last_health = service.get("health")

    def accept_poll(self, request: HttpRequest, response: HttpResponse) -> list[Command]:
        return commands_from_wire(self.parse(request, response))

    def accept_result(self, request: HttpRequest, response: HttpResponse) -> None:
        self.parse(request, response)

    def accept_publish(self, request: HttpRequest, response: HttpResponse) -> PublishedEvent:
        return PublishedEvent.from_wire(self.parse(request, response))

    def topic_publish_request(
        self,
        topic: str,
        payload: Any,
        *,
        idempotency_key: str,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpRequest:
        body: dict[str, Any] = {"topic": topic, "payload": payload}
        if key is not None:
            body["key"] = key
        if headers:
            body["headers"] = dict(headers)
        return self._request(
            "topic_publish",
            "POST",
            self._agent_path("/topics/publish"),
            body,
            # Retries of one publish carry one key, so the topic stores the message once.
            headers=(("Idempotency-Key", idempotency_key),),
        )

    def topic_subscribe_request(
        self, topic: str, subscription_id: str, *, start: str, last_event_id: str | None
    ) -> HttpRequest:
        headers = [("Accept", "text/event-stream")]
        if last_event_id is not None:
            headers.append(("Last-Event-ID", last_event_id))
        return self._request(
            "topic_subscribe",
            "GET",
            self._agent_path(f"/topics/subscribe/{subscription_id}"),
            None,
            params=(("topic", topic), ("from", start)),
            headers=tuple(headers),
        )

    def topic_subscription_request(
        self, topic: str, subscription_id: str, *, start: str
    ) -> HttpRequest:
        """Creates the durable subscription (its committed offsets live in Opstage)."""
        return self._request(
            "topic_subscription",
            "POST",
            self._agent_path("/topics/subscriptions"),
            {"topic": topic, "name": subscription_id, "from": start},
        )

    def topic_ack_request(
        self, subscription_id: str, topic: str, offsets: list[tuple[int, int]]
    ) -> HttpRequest:
        body = {"topic": topic, "offsets": [{"partition": p, "offset": o} for p, o in offsets]}
        return self._request(
            "topic_ack",
            "POST",
            self._agent_path(f"/topics/subscriptions/{subscription_id}/ack"),
            body,
        )

    def accept_topic_subscription(self, request: HttpRequest, response: HttpResponse) -> bool:
        """True when created now, False when it existed already (both are fine)."""
        try:
            self.parse(request, response)
        except OpstageAgentError as exc:
            if exc.code == "TOPIC_SUBSCRIPTION_EXISTS":
                return False
            raise
        return True

    def accept_topic_ack(self, request: HttpRequest, response: HttpResponse) -> int:
        """The subscription's total lag after the commit."""
        data = self.parse(request, response)
        lag = data.get("lag") if isinstance(data, dict) else None
        if not isinstance(lag, int):
            raise ServerError("Opstage's ack answer has no lag")
        return lag

    def accept_topic_publish(self, request: HttpRequest, response: HttpResponse) -> TopicReceipt:
        replayed = any(
            k.lower() == "idempotent-replayed" and v == "true" for k, v in response.headers.items()
        )
        return TopicReceipt.from_wire(self.parse(request, response), replayed=replayed)

    # --- policy --------------------------------------------------------------------------

    def recovery_for(self, error: OpstageAgentError) -> Recovery:
        if isinstance(error, NetworkError | ServerError):
            return Recovery.RETRY
        if isinstance(error, AuthenticationError):
            return Recovery.REREGISTER if self.config.registration_token else Recovery.GIVE_UP
        if isinstance(error, AgentDisabledError):
            return Recovery.WAIT_UNTIL_ENABLED
        return Recovery.GIVE_UP

    def retry_delay(self, attempt: int, error: OpstageAgentError) -> float:
        """Seconds before retry number ``attempt + 1`` of a request that failed with ``error``.

        The first network error is retried at once: it is nearly always a pooled keep-alive
        connection the server closed a moment before (the request never reached it), and
        waiting would only add latency. From the second on, the backoff applies.
        """
        if isinstance(error, NetworkError):
            return 0.0 if attempt == 0 else self.backoff.delay(attempt - 1)
        return self.backoff.delay(attempt)


# Codes that mean "this token is no good" on any authenticated call.
TOKEN_REFUSED = frozenset(
    {"AGENT_TOKEN_INVALID", "AGENT_TOKEN_REVOKED", "AGENT_TOKEN_EXPIRED", "AGENT_ID_MISMATCH"}
)


def error_for(
    operation: Operation,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any],
    headers: Mapping[str, str],
    agent_code: str,
) -> OpstageAgentError:
    """Map an error envelope to the SDK's exception tree (errors.json is the source)."""
    kw: dict[str, Any] = {"code": code, "status": status, "details": details}
    said = _sentence(message)
    if status >= 500:
        return ServerError(f"Opstage failed the {operation} request: {said}", **kw)
    if operation == "register":
        hint = ""
        if code == "AGENT_REVOKED":
            hint = " " + scoped_token_hint(agent_code)
        elif code.startswith("REGISTRATION_TOKEN"):
            hint = " Create a new registration token (opstage token create) and configure it."
        return RegistrationError(f"Opstage refused the registration: {said}{hint}", **kw)
    if code == "AGENT_REVOKED":
        return AgentRevokedError(
            f"Opstage revoked this agent: {said} {scoped_token_hint(agent_code)}", **kw
        )
    if code == "AGENT_DISABLED":
        return AgentDisabledError(f"An operator disabled this agent: {said}", **kw)
    if status == 401 or code in TOKEN_REFUSED:
        return AuthenticationError(f"Opstage refused the agent token: {said}", **kw)
    if code == "CAPSULE_SERVICE_CODE_TAKEN":
        return ServiceCodeTakenError(message, **kw)
    if code == "COMMAND_RESULT_TOO_LARGE" or (operation == "result" and status == 413):
        return ResultTooLargeError(message, **kw)
    if operation in ("topic_publish", "topic_subscribe", "topic_subscription") and status == 404:
        return TopicNotFoundError(f"Opstage refused the publish: {said}", **kw)
    if operation == "publish" and status == 404 and not code.startswith("BUS_"):
        return BusUnavailableError(
            f"The Capsule Bus is not available on this server: {said} It needs "
            "OPSTAGE_CAPSULE_BUS_ENABLED=true on an Opstage that has the bus.",
            **kw,
        )
    if status == 429:
        return RateLimitedError(message, retry_after=_retry_after(headers), **kw)
    return RequestRejectedError(f"Opstage refused the {operation} request: {said}", **kw)


def scoped_token_hint(agent_code: str) -> str:
    return (
        "Only a registration token scoped to its code brings a revoked agent back: "
        f"opstage token create --agent-code {agent_code}"
    )


def _sentence(message: str) -> str:
    text = message.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None
