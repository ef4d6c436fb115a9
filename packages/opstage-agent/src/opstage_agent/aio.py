"""The asyncio agent: the core's requests performed with httpx, and the agent's lifecycle.

After connecting (credentials from the token store, or registration), two loops run until
shutdown: the heartbeat loop here (health on the interval, with jitter; a new report whenever
the declarations change) and the command loop of :mod:`opstage_agent.dispatch` (long-poll when
the server offers it, interval polls otherwise). Every request goes through :meth:`_call`, the one
place that decides between retrying (network errors, 5xx: capped exponential backoff with
jitter), registering again (token refused, registration token configured), waiting (agent
disabled) and giving up (any other 4xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from opstage_agent.config import AgentConfig
from opstage_agent.core import (
    AgentCore,
    HttpRequest,
    HttpResponse,
    Phase,
    Recovery,
    scoped_token_hint,
)
from opstage_agent.declarations import Declarations, DeclaringMixin, to_configs, to_health
from opstage_agent.dispatch import CommandDispatcher
from opstage_agent.errors import (
    AgentNotRunningError,
    AgentRevokedError,
    AuthenticationError,
    ConfigurationError,
    NetworkError,
    OpstageAgentError,
    RegistrationError,
    RequestRejectedError,
    ServerError,
)
from opstage_agent.logs import log
from opstage_agent.models import (
    ConfigItem,
    Credentials,
    Health,
    HealthBody,
    JSONObject,
    PublishedEvent,
    ReportedServiceBody,
    TopicMessage,
    TopicReceipt,
    format_time,
)
from opstage_agent.runner import ActionRunner, HandlerTimeout
from opstage_agent.sse import SseParser
from opstage_agent.token_store import (
    TokenStore,
    keep_credentials,
    token_store_for,
    usable_credentials,
)

T = TypeVar("T")
PROVIDER_TIMEOUT_SECONDS = 10.0
KEEPALIVE_SECONDS = 4.0
EXTRA_THREADS = 2  # for health and config providers next to the action handlers


class AsyncAgent(DeclaringMixin):
    """An Opstage agent on asyncio. Use it inside the host application's event loop::

        agent = AsyncAgent(backend_url=..., agent_code="billing", token_file=...)

        @agent.action(label="Flush cache", danger_level="MEDIUM")
        async def flush_cache(payload): ...

        async with agent:  # or: await agent.start() ... await agent.shutdown()
            ...

    Settings not passed are read from ``OPSTAGE_*`` variables (see :class:`AgentConfig`).
    All methods must be awaited on the event loop the agent was started on.
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        token_store: TokenStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **settings: Any,
    ) -> None:
        if config is not None and settings:
            raise ConfigurationError("pass either an AgentConfig or keyword settings, not both")
        self.config = config if config is not None else AgentConfig.from_env(**settings)
        self.declarations = Declarations()
        self.declarations.subscribe(self.refresh)
        self._core = AgentCore(self.config)
        self._store = (
            token_store if token_store is not None else token_store_for(self.config.token_file)
        )
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._runner: ActionRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._refresh = asyncio.Event()
        self._closed = asyncio.Event()
        self._auth_lock = asyncio.Lock()
        self._dispatcher: CommandDispatcher | None = None
        self._stopping = False
        self._failure: BaseException | None = None
        self._service: ReportedServiceBody | None = None
        self._last_configs: list[ConfigItem] = []
        self._retrying: set[str] = set()
        self._provider_errors: dict[str, str] = {}

    # --- what callers can see ------------------------------------------------------------

    @property
    def agent_id(self) -> str | None:
        return self._core.agent_id

    @property
    def service_id(self) -> str | None:
        return self._core.service_id

    @property
    def phase(self) -> Phase:
        return self._core.phase

    @property
    def failure(self) -> BaseException | None:
        """The error that stopped the agent, if one did."""
        return self._failure

    @property
    def long_polling(self) -> bool:
        """Whether commands currently arrive by long-poll (else by interval polling)."""
        return self._core.long_poll_wait is not None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting and serving in the background; returns at once.

        Connection problems are retried in the background, so a host application never waits
        on Opstage; use :meth:`wait_ready` to wait for the first successful heartbeat.
        """
        if self._supervisor is not None:
            raise RuntimeError("this agent was already started; create a new one to restart")
        self._loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(
            max_workers=self.config.max_concurrent_actions + EXTRA_THREADS,
            thread_name_prefix="opstage-agent",
        )
        self._runner = ActionRunner(self.declarations, self.config, self._pool)
        self._dispatcher = CommandDispatcher(
            self._core, self.config, self._runner, self._call, self.refresh
        )
        self._client = httpx.AsyncClient(
            base_url=self.config.backend_url,
            timeout=httpx.Timeout(self.config.request_timeout_seconds),
            transport=self._transport,
            # The contract: agents must not send cookies. A jar that accepts none.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,
            # Drop idle connections before common servers do (uvicorn closes them after 5 s),
            # so a poll or heartbeat rarely picks a connection that is being closed under it.
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
        )
        self._supervisor = asyncio.create_task(self._supervise(), name="opstage-agent")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the agent is registered, reported and has sent a heartbeat.

        Raises the agent's failure if it stopped, and ``TimeoutError`` after ``timeout``.
        """
        supervisor = self._require_started()
        waiter = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait(
                {waiter, supervisor}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if self._ready.is_set() and not supervisor.done():
            return
        if self._failure is not None:
            raise self._failure
        if supervisor.done():
            raise AgentNotRunningError("the agent stopped before it was ready")
        raise TimeoutError(f"the agent was not connected to Opstage within {timeout:g} s")

    async def wait(self) -> None:
        """Wait until the agent stops; raise the error that stopped it, if any."""
        supervisor = self._require_started()
        # asyncio.wait, not await: cancelling the caller must not cancel the agent.
        await asyncio.wait({supervisor})
        if self._failure is not None:
            raise self._failure

    async def run(self) -> None:
        """Start, serve until cancelled or failed, then shut down."""
        await self.start()
        try:
            await self.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop polling and heartbeating, let running actions finish (up to
        ``shutdown_grace_seconds``; the rest are reported as ``AGENT_SHUTTING_DOWN``) and close.
        Safe to call more than once."""
        if self._supervisor is None:
            return
        if self._stopping:
            await self._closed.wait()
            return
        self._stopping = True
        assert self._dispatcher is not None
        self._dispatcher.stopping = True
        try:
            # A long-poll in flight is dropped. Whatever the server hands it from now on is lost
            # until it expires — the server keeps waiting on a closed connection (see
            # tests/test_server_bugs.py); nothing on this side can answer for it.
            self._supervisor.cancel()
            await asyncio.wait({self._supervisor})
            await self._dispatcher.drain(self.config.shutdown_grace_seconds)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None  # later calls fail as AgentNotRunningError
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            if self._core.phase is not Phase.FAILED:
                self._core.phase = Phase.STOPPED
            self._closed.set()
            log.info("opstage agent %s stopped", self.config.agent_code)

    async def closed(self) -> None:
        """Wait until :meth:`shutdown` has finished."""
        await self._closed.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    def refresh(self) -> None:
        """Re-evaluate health and configs now and send what changed. Callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._refresh.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._refresh.set)

    # --- the Capsule Bus -----------------------------------------------------------------

    async def publish_event(
        self,
        event_type: str,
        payload: JSONObject | None = None,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: JSONObject | None = None,
        occurred_at: datetime | None = None,
        dry_run: bool | None = None,
        idempotency_key: str | None = None,
        source_service_code: str | None = None,
    ) -> PublishedEvent:
        """Publish an event from this agent's service to the Capsule Bus.

        Network errors and 5xx are retried for up to ``request_timeout_seconds`` under one
        idempotency key, so the bus stores the event once. Raises
        :class:`BusUnavailableError` when the server has no bus or it is switched off, and
        :class:`RateLimitedError` when the bus asks to slow down. ``source_service_code``
        (default: this agent's service) names another service this agent reports, as an
        OpHub agent does for its adapters (see :mod:`opstage_agent.ophub`).
        """
        if self._client is None or self._core.credentials is None:
            raise AgentNotRunningError(
                "publish_event needs a registered agent: start() it and wait_ready() first"
            )
        key = idempotency_key or uuid.uuid4().hex
        loop = asyncio.get_running_loop()

        def build() -> HttpRequest:
            return self._core.publish_request(
                event_type,
                payload or {},
                idempotency_key=key,
                correlation_id=correlation_id,
                causation_id=causation_id,
                metadata=metadata,
                occurred_at=format_time(occurred_at) if occurred_at else None,
                dry_run=dry_run,
                source_service_code=source_service_code,
            )

        deadline = loop.time() + self.config.request_timeout_seconds
        return await self._call(build, self._core.accept_publish, deadline=deadline)

    # --- the topic bus -------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> TopicReceipt:
        """Publish ``payload`` (any JSON value) to ``topic`` (``namespace.tenant.name``).

        Returns once the server has stored it durably, with its partition and offset. One key
        goes to one partition, in order. Network errors and 5xx are retried for up to
        ``request_timeout_seconds`` under one idempotency key, so the message is stored once.
        Raises :class:`TopicNotFoundError` for a topic that is not registered or not in this
        agent's tenants.
        """
        if self._client is None or self._core.credentials is None:
            raise AgentNotRunningError(
                "publish needs a registered agent: start() it and wait_ready() first"
            )
        idem = idempotency_key or uuid.uuid4().hex
        loop = asyncio.get_running_loop()

        def build() -> HttpRequest:
            return self._core.topic_publish_request(
                topic, payload, idempotency_key=idem, key=key, headers=headers
            )

        deadline = loop.time() + self.config.request_timeout_seconds
        return await self._call(build, self._core.accept_topic_publish, deadline=deadline)

    async def ack(self, subscription_id: str, *messages: TopicMessage) -> int:
        """Commits ``messages`` of the durable subscription ``subscription_id`` (cumulative per
        partition: acking a message acks every earlier one of its partition). Returns the
        subscription's total lag after the commit."""
        if not messages:
            raise ValueError("ack needs at least one message")
        topics = {m.topic for m in messages}
        if len(topics) != 1:
            raise ValueError("ack messages of one topic at a time")
        (wire,) = topics
        offsets = [(m.partition, m.offset) for m in messages]
        loop = asyncio.get_running_loop()

        def build() -> HttpRequest:
            return self._core.topic_ack_request(subscription_id, wire, offsets)

        deadline = loop.time() + self.config.request_timeout_seconds
        return await self._call(build, self._core.accept_topic_ack, deadline=deadline)

    async def subscribe(
        self, topic: str, subscription_id: str, *, start: str = "latest", durable: bool = False
    ) -> AsyncIterator[TopicMessage]:
        """The topic's messages for consumer group ``subscription_id`` (same id on several
        connections: the partitions are shared; distinct ids: each sees everything).

        ``start`` (``latest`` or ``earliest``) applies when the group starts. A dropped stream
        is reopened with the last id seen (``Last-Event-ID``), so nothing is lost; a message
        may come twice across a reconnect. Raises :class:`TopicNotFoundError` for a topic this
        agent cannot use.

        ``durable=True``: the subscription is created on the server if it does not exist (from
        ``start``) and keeps committed offsets there; every (re)connect resumes from them, so
        what was not acknowledged with :meth:`ack` comes again, across restarts too.
        """
        if durable:
            loop = asyncio.get_running_loop()

            def create() -> HttpRequest:
                return self._core.topic_subscription_request(topic, subscription_id, start=start)

            deadline = loop.time() + self.config.request_timeout_seconds
            await self._call(create, self._core.accept_topic_subscription, deadline=deadline)
        last_id: str | None = None
        attempt = 0
        while True:
            client = self._client
            if client is None or self._core.credentials is None:
                raise AgentNotRunningError(
                    "subscribe needs a registered agent: start() it and wait_ready() first"
                )
            request = self._core.topic_subscribe_request(
                topic,
                subscription_id,
                start=start,
                # Durable: the server resumes from the committed offsets, not the last id.
                last_event_id=None if durable else last_id,
            )
            try:
                async with client.stream(
                    request.method,
                    request.path,
                    params=list(request.params),
                    headers=list(request.headers),
                    # The server sends a keep-alive every 15 s: a minute of silence is a
                    # dead connection.
                    timeout=httpx.Timeout(self.config.request_timeout_seconds, read=60.0),
                ) as response:
                    if response.status_code != 200:
                        content = await response.aread()
                        answer = HttpResponse(response.status_code, content, response.headers)
                        self._core.parse(request, answer)  # raises the typed error
                        raise ServerError("Opstage answered the subscription without a stream")
                    parser = SseParser()
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is None:
                            continue
                        if event.event == "bus.message":
                            message = TopicMessage.from_wire(json.loads(event.data))
                            last_id = event.id or message.id
                            attempt = 0
                            yield message
                        elif event.event == "bus.error":
                            raise ServerError(f"the topic stream failed: {event.data}")
            except httpx.TransportError as exc:
                error: OpstageAgentError = NetworkError(f"{type(exc).__name__}: {exc}")
            except OpstageAgentError as exc:
                if self._core.recovery_for(exc) is not Recovery.RETRY:
                    raise
                error = exc
            else:
                error = NetworkError("the topic stream ended")
            delay = self._core.retry_delay(attempt, error)
            attempt += 1
            await asyncio.sleep(delay)

    # --- supervision ---------------------------------------------------------------------

    def _require_started(self) -> asyncio.Task[None]:
        if self._supervisor is None:
            raise AgentNotRunningError("the agent has not been started")
        return self._supervisor

    async def _supervise(self) -> None:
        dispatcher = self._dispatcher
        assert dispatcher is not None  # start() made it
        try:
            await self._connect()
            self._core.phase = Phase.ONLINE
            self._ready.set()
            mode = (
                f"long-poll ({self._core.long_poll_wait:g} s)"
                if self.long_polling
                else f"polling every {self._core.poll_interval:g} s"
            )
            log.info(
                "opstage agent %s connected to %s as %s; commands by %s",
                self.config.agent_code,
                self.config.backend_url,
                self.agent_id,
                mode,
            )
            loops = [
                asyncio.create_task(self._heartbeat_loop(), name="opstage-heartbeat"),
                asyncio.create_task(dispatcher.run(), name="opstage-commands"),
            ]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        except Exception as exc:
            self._failure = exc
            self._core.phase = Phase.FAILED
            if isinstance(exc, OpstageAgentError):
                log.error("opstage agent %s stopped: %s", self.config.agent_code, exc)
            else:
                log.exception(
                    "opstage agent %s stopped by an internal error", self.config.agent_code
                )
            dispatcher.cancel_all()  # their results could not be reported any more

    async def _connect(self) -> None:
        self._core.phase = Phase.CONNECTING
        credentials = await self._load_credentials()
        service = await self._describe_service()
        if credentials is None:
            await self._register()
        else:
            self._core.adopt(credentials)
        if credentials is not None or self.config.is_ophub or self._core.service_id is None:
            await self._report(service)
        await self._heartbeat(self._current_health())

    async def _load_credentials(self) -> Credentials | None:
        # File I/O off the loop: the host application's loop must never wait on a disk.
        return await asyncio.to_thread(usable_credentials, self._store, self.config)

    async def _save_credentials(self) -> None:
        credentials = self._core.credentials
        assert credentials is not None
        await asyncio.to_thread(keep_credentials, self._store, self.config, credentials)

    # --- requests ------------------------------------------------------------------------

    async def _call(
        self,
        build: Callable[[], HttpRequest],
        accept: Callable[[HttpRequest, HttpResponse], T],
        *,
        deadline: float | None = None,
    ) -> T:
        """Send a request until it succeeds or fails for good (see the module docstring).

        ``build`` is called for every attempt, so a retry after re-registration carries the
        new token. ``deadline`` (loop time) bounds the retries of network errors and 5xx.
        """
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            request = build()
            try:
                result = accept(request, await self._send(request))
            except OpstageAgentError as exc:
                recovery = self._core.recovery_for(exc)
                if recovery is Recovery.RETRY:
                    now = loop.time()
                    if deadline is not None and now >= deadline:
                        raise
                    delay = self._core.retry_delay(attempt, exc)
                    if deadline is not None:
                        delay = min(delay, deadline - now)
                    attempt += 1
                    self._note_retry(request, exc, delay)
                    await asyncio.sleep(delay)
                elif recovery is Recovery.REREGISTER and request.operation != "register":
                    await self._register_again(exc, request.generation)
                elif recovery is Recovery.WAIT_UNTIL_ENABLED:
                    if self._core.phase is not Phase.DISABLED:
                        log.warning("%s; waiting until it is enabled again", exc)
                        self._core.phase = Phase.DISABLED
                    await asyncio.sleep(self._core.heartbeat_interval)
                elif isinstance(exc, AuthenticationError) and not isinstance(
                    exc, AgentRevokedError
                ):
                    raise AuthenticationError(
                        f"{exc.message} No registration token is configured to register again; "
                        "create one with `opstage token create` and set "
                        "OPSTAGE_REGISTRATION_TOKEN.",
                        code=exc.code,
                        status=exc.status,
                        details=exc.details,
                    ) from exc
                else:
                    raise
            else:
                if request.operation in self._retrying:
                    self._retrying.discard(request.operation)
                    log.info("opstage %s request succeeded again", request.operation)
                if self._core.phase is Phase.DISABLED and request.operation != "register":
                    log.info("opstage agent %s is enabled again", self.config.agent_code)
                    self._core.phase = Phase.ONLINE
                return result

    def _note_retry(self, request: HttpRequest, exc: OpstageAgentError, delay: float) -> None:
        # One warning when an operation starts failing for real (an instant retry of a stale
        # connection is not worth one), then quiet until it recovers.
        if delay > 0 and request.operation not in self._retrying:
            self._retrying.add(request.operation)
            log.warning("opstage %s failed (%s); retrying with backoff", request.operation, exc)
        else:
            log.debug("opstage %s failed (%s); next try in %.1f s", request.operation, exc, delay)

    async def _send(self, request: HttpRequest) -> HttpResponse:
        client = self._client
        if client is None:
            raise AgentNotRunningError("the agent is not running")
        timeout: httpx.Timeout | None = None
        if request.read_timeout is not None:
            timeout = httpx.Timeout(self.config.request_timeout_seconds, read=request.read_timeout)
        try:
            response = await client.request(
                request.method,
                request.path,
                params=list(request.params),
                headers=list(request.headers),
                content=request.content,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise NetworkError(
                f"{type(exc).__name__} talking to {self.config.backend_url}: {exc}"
            ) from None
        return HttpResponse(response.status_code, response.content, response.headers)

    async def _register(self) -> None:
        service = self._service

        def build() -> HttpRequest:
            return self._core.register_request(service)

        await self._call(build, self._core.accept_registration)
        if self.config.is_ophub:
            # It registered without services: the next round of the heartbeat loop reports
            # them (on the first connect, _connect does it at once).
            self._core.forget_report()
            self.refresh()
        elif service is not None and self._core.service_id is not None:
            self._core.mark_reported(service)
            self._core.last_health = service.get("health")
        elif service is not None:
            # The answer named no service id (the reference server's does not): report once
            # to learn it, or heartbeats could not name their service.
            self._core.forget_report()
            self.refresh()
        log.info("registered agent %s as %s", self.config.agent_code, self.agent_id)
        await self._save_credentials()

    async def _register_again(self, refused: OpstageAgentError, generation: int) -> None:
        async with self._auth_lock:
            if self._core.generation != generation:
                return  # another request already registered again; just retry
            log.warning("%s; registering again with the configured registration token", refused)
            try:
                await self._register()
            except RegistrationError as exc:
                if isinstance(refused, AgentRevokedError):
                    # Whatever the registration said, only a scoped token can help now.
                    message = (
                        f"Opstage revoked this agent, and registering again failed ({exc.code})."
                        f" {scoped_token_hint(self.config.agent_code)}"
                    )
                else:
                    message = (
                        f"The agent token was refused ({refused.code}) and registering again "
                        f"failed: {exc.message}"
                    )
                raise RegistrationError(
                    message, code=exc.code, status=exc.status, details=exc.details
                ) from exc

    async def _report(self, service: ReportedServiceBody) -> None:
        await self._call(
            lambda: self._core.report_request(service),
            lambda rq, rs: self._core.accept_report(rq, rs, service),
        )
        log.debug("reported service %s", service["code"])

    async def _heartbeat(self, health: HealthBody | None) -> None:
        await self._call(
            lambda: self._core.heartbeat_request(health),
            lambda rq, rs: self._core.accept_heartbeat(rq, rs, health),
        )

    # --- what the service reports --------------------------------------------------------

    async def _describe_service(self) -> ReportedServiceBody:
        health = await self._evaluate_health()
        configs = await self._evaluate_configs()
        self._service = self._core.service_body(self.declarations.specs(), configs, health)
        return self._service

    def _current_health(self) -> HealthBody | None:
        return self._service.get("health") if self._service is not None else None

    async def _evaluate_health(self) -> Health:
        provider = self.declarations.health_provider
        if provider is None:
            return Health("UP")
        assert self._runner is not None
        try:
            value = await self._runner.call(provider, {}, None, PROVIDER_TIMEOUT_SECONDS)
            health = to_health(value)
            self._provider_errors.pop("health", None)
            return health
        except HandlerTimeout:
            return Health(
                "DOWN", f"the health check did not answer within {PROVIDER_TIMEOUT_SECONDS:g} s"
            )
        except Exception as exc:
            self._provider_failed("health", f"health check failed: {exc}")
            return Health("DOWN", f"health check failed: {exc}"[:2000])

    async def _evaluate_configs(self) -> list[ConfigItem]:
        provider = self.declarations.configs_provider
        if provider is None:
            return []
        assert self._runner is not None
        try:
            value = await self._runner.call(provider, {}, None, PROVIDER_TIMEOUT_SECONDS)
            self._last_configs = to_configs(value)
            self._provider_errors.pop("configs", None)
        except Exception as exc:
            self._provider_failed(
                "configs", f"config provider failed ({exc}); keeping the configs reported before"
            )
        return self._last_configs

    def _provider_failed(self, which: str, message: str) -> None:
        # Providers run before every heartbeat: say it when it starts failing (or fails
        # differently), not every time.
        if self._provider_errors.get(which) != message:
            self._provider_errors[which] = message
            log.warning("%s", message)

    # --- the heartbeat loop --------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._core.next_heartbeat_delay()
        while True:
            # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancellation that
            # arrives as the event is set, which would leave shutdown waiting on this loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._refresh.wait()
            self._refresh.clear()
            scheduled = loop.time() >= due
            service = await self._describe_service()
            if self._core.manifest_changed(service):
                try:
                    await self._report(service)
                except RequestRejectedError as exc:
                    # Not retried: the same body would be refused again. A later change of
                    # the declarations produces a new body and a new attempt.
                    self._core.mark_reported(service)
                    log.error("Opstage refused the service report: %s", exc)
            health = service.get("health")
            if scheduled or self._core.health_changed(health):
                try:
                    await self._heartbeat(health)
                except RequestRejectedError as exc:
                    log.error("Opstage refused a heartbeat: %s", exc)
            if scheduled:
                due = loop.time() + self._core.next_heartbeat_delay()
