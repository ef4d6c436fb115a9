"""The command lifecycle: PENDING → RUNNING → SUCCEEDED / FAILED / CANCELLED / EXPIRED.

Operators create commands (execute, or prepare and wait); agents claim them by polling — with
long-poll, a poll waits on the domain event bus until a command exists — and report results.
Every transition is a conditional update (``WHERE status IN …``), so concurrent pollers,
cancels and results can never move a command twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, Protocol, cast

import orjson

from opstage.app.agents import AgentPrincipal, ContactContext, record_contact
from opstage.app.audit import write_audit
from opstage.app.context import Actor, OperationalCounters, UnitContext
from opstage.app.dispatch import check_agent_ready, command_row
from opstage.app.outcomes import CommandOutcome, CommandOutcomes
from opstage.app.ports import UnitOfWork
from opstage.app.repositories import SortSpec
from opstage.app.secrets_once import OneTimeSecrets, reveal
from opstage.app.waiters import Waiters
from opstage.domain.actions import (
    holds_scrubbed_values,
    needs_confirmation,
    payload_issues,
    scrub_payload,
)
from opstage.domain.errors import ActionPrepareFailed, Conflict, DomainError, Forbidden, NotFound
from opstage.domain.events import CommandStatusChanged
from opstage.domain.ids import new_id
from opstage.domain.records import (
    ActionRow,
    AgentRow,
    CommandChanges,
    CommandResultRow,
    CommandRow,
    JsonObject,
    ServiceWithAgent,
)
from opstage.domain.redaction import mask_strings, redact
from opstage.domain.status import (
    RETRYABLE_COMMAND_STATUSES,
    TERMINAL_COMMAND_STATUSES,
    AgentStatus,
    CommandStatus,
    CommandType,
)
from opstage.domain.timeutil import parse_iso
from opstage.domain.workspace import DEFAULT_WORKSPACE_ID

LIVE = (CommandStatus.PENDING, CommandStatus.RUNNING)
POLL_LIMIT_MAX = 10
LONG_POLL_RECHECK_SECONDS = 5.0  # the last bound if a wake-up from another node was lost


class CommandContext(ContactContext, Protocol):
    """What the command lifecycle uses beyond units of work (``AppContext`` is one; ADR 0010):
    the waiters parked polls and prepares sleep on, the in-process counters, the one-time
    secrets a result hands its requester, the subscribers to a command's outcome, and (through
    ``ContactContext``) the heartbeat writer a poll counts as contact."""

    waiters: Waiters
    counters: OperationalCounters
    one_time_secrets: OneTimeSecrets
    command_outcomes: CommandOutcomes


@dataclass(frozen=True, slots=True)
class ResultReport:
    """An agent's result for one command, as the edge parsed it (snake_case, ADR 0011).

    ``started_at``/``finished_at`` are the agent's own ISO-8601 strings: unparseable ones are
    stored as unknown, not rejected (as the reference).
    """

    success: bool
    message: str | None = None
    data: JsonObject | None = None
    error: JsonObject | None = None
    started_at: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedAction:
    """An ACTION_PREPARE's outcome: the declared action, the finished command and its result
    (``result.data``: the agent's answer, one-time secrets revealed for the asker). How the
    answer overlays the action is the wire's business (``api/views.py``)."""

    action: ActionRow
    command: CommandRow
    result: CommandResultRow


async def _load_target(
    uow: UnitOfWork, service_id: str, action_name: str
) -> tuple[ServiceWithAgent, ActionRow, AgentRow | None]:
    service = await uow.services.get(service_id)
    if service is None:
        raise NotFound("Capsule Service not found.", code="CAPSULE_SERVICE_NOT_FOUND")
    action = await uow.services.action(service_id, action_name)
    if action is None or not action["enabled"]:
        raise NotFound(
            "Action not found.",
            code="ACTION_NOT_FOUND",
            details={"serviceId": service_id, "actionName": action_name},
        )
    agent = await uow.agents.get(service["agent_id"])
    return service, action, agent


def _require_confirmation(action: ActionRow, confirmation: bool | None) -> None:
    if (
        needs_confirmation(action["danger_level"], action["requires_confirmation"])
        and confirmation is not True
    ):
        raise Conflict(
            "Action requires confirmation.",
            code="ACTION_REQUIRES_CONFIRMATION",
            details={
                "actionName": action["name"],
                "dangerLevel": action["danger_level"],
                "requiresConfirmation": bool(action["requires_confirmation"]),
            },
        )


def _validate_payload(action: ActionRow, payload: JsonObject) -> None:
    issues = payload_issues(action["input_schema"], payload)
    if issues:
        raise DomainError(
            "Payload does not match the action's inputSchema.",
            code="ACTION_PAYLOAD_INVALID",
            details={"issues": issues},
        )


async def _scrubbed(uow: UnitOfWork, command: CommandRow) -> CommandChanges:
    """``{"payload": …}`` with the payload's secrets erased, or ``{}`` if nothing changes.

    An operator's payload reaches the agent as it was typed; the database keeps it only until
    the agent has it (claim) or the command ends without it (cancel, expiry): from then on
    the commands table, and every backup taken of it, holds ``[REDACTED]`` in its secrets'
    place (docs/security.md).
    """
    payload = command["payload"]
    if not payload:
        return {}
    action = await uow.services.action(command["service_id"], command["action_name"])
    scrubbed = scrub_payload(payload, action["input_schema"] if action else None)
    return {"payload": scrubbed} if scrubbed != payload else {}


async def insert_command(
    uow: UnitOfWork,
    *,
    command_id: str,
    agent_id: str,
    service_id: str,
    type_: str,
    action: ActionRow,
    payload: JsonObject,
    confirmed: bool,
    user_id: str | None,
    retry_of: str | None,
    timeout: float,
    now: datetime,
) -> CommandRow:
    columns, created = command_row(
        command_id=command_id,
        agent_id=agent_id,
        service_id=service_id,
        type_=type_,
        action=action,
        payload=payload,
        confirmed=confirmed,
        user_id=user_id,
        retry_of=retry_of,
        timeout=timeout,
        now=now,
    )
    # One literal for every command row (app/dispatch.py, shared with the bus, ADR 0010).
    row = cast(CommandRow, columns)
    await uow.commands.insert(row)
    uow.record(created)
    return row


async def request_action(
    ctx: UnitContext,
    actor: Actor,
    service_id: str,
    action_name: str,
    payload: JsonObject,
    confirmation: bool | None,
) -> CommandRow:
    now = ctx.clock()
    async with ctx.writer() as uow:
        service, action, agent = await _load_target(uow, service_id, action_name)
        _require_confirmation(action, confirmation)
        _validate_payload(action, payload)
        check_agent_ready(agent, now, ctx.settings.agent_offline_threshold_seconds)
        command_id = new_id("cmd")
        timeout = action["timeout_seconds"] or ctx.settings.command_default_timeout_seconds
        row = await insert_command(
            uow,
            command_id=command_id,
            agent_id=service["agent_id"],
            service_id=service_id,
            type_=CommandType.ACTION_EXECUTE,
            action=action,
            payload=payload,
            confirmed=confirmation is True,
            user_id=actor.id,
            retry_of=None,
            timeout=timeout,
            now=now,
        )
        await write_audit(
            uow,
            actor,
            "service.action.requested",
            target_type="CapsuleService",
            target_id=service_id,
            metadata={"actionName": action_name, "commandId": command_id},
            now=now,
        )
        await write_audit(
            uow,
            actor,
            "command.created",
            target_type="Command",
            target_id=command_id,
            metadata={
                "serviceId": service_id,
                "actionName": action_name,
                "dangerLevel": action["danger_level"],
                "confirmed": confirmation is True,
            },
            now=now,
        )
    return row


async def prepare_action(
    ctx: CommandContext, actor: Actor, service_id: str, action_name: str
) -> PreparedAction:
    """Create an ACTION_PREPARE command and wait for the agent's answer."""
    now = ctx.clock()
    timeout = ctx.settings.action_prepare_timeout_seconds
    command_id = new_id("cmd")
    key = f"command:{command_id}"
    wake = ctx.waiters.register(key)
    try:
        async with ctx.writer() as uow:
            service, action, agent = await _load_target(uow, service_id, action_name)
            check_agent_ready(agent, now, ctx.settings.agent_offline_threshold_seconds)
            await insert_command(
                uow,
                command_id=command_id,
                agent_id=service["agent_id"],
                service_id=service_id,
                type_=CommandType.ACTION_PREPARE,
                action=action,
                payload={},
                confirmed=False,
                user_id=actor.id,
                retry_of=None,
                timeout=timeout + 5,
                now=now,
            )
            await write_audit(
                uow,
                actor,
                "service.action.prepare_requested",
                target_type="CapsuleService",
                target_id=service_id,
                metadata={"actionName": action_name, "commandId": command_id},
                now=now,
            )
        deadline = time.monotonic() + timeout
        while True:
            wake.clear()
            async with ctx.reader() as uow:
                command = await uow.commands.get(command_id)
                result = await uow.commands.result(command_id)
            assert command is not None
            if command["status"] in TERMINAL_COMMAND_STATUSES:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await _prepare_timed_out(ctx, actor, command, action)
            await ctx.waiters.wait(wake, min(remaining, LONG_POLL_RECHECK_SECONDS))
    finally:
        ctx.waiters.unregister(key, wake)
    details = {
        "commandId": command_id,
        "commandStatus": command["status"],
        "actionName": action_name,
        "agentId": command["agent_id"],
        "serviceId": service_id,
    }
    if result is None or not result["success"]:
        message = (
            (result["message"] if result else None)
            or command["error_message"]
            or "Action prepare failed."
        )
        raise ActionPrepareFailed(
            message, code=command["error_code"] or "ACTION_PREPARE_FAILED", details=details
        )
    data = result["data"] or {}
    held = ctx.one_time_secrets.take(command_id, actor.id)
    if held:
        data = reveal(data, held)
    return PreparedAction(action=action, command=command, result={**result, "data": data})


async def _prepare_timed_out(
    ctx: CommandContext, actor: Actor, command: CommandRow, action: ActionRow
) -> NoReturn:
    now = ctx.clock()
    message = "Action prepare timed out waiting for agent."
    async with ctx.writer() as uow:
        moved = await uow.commands.update(
            command["id"],
            {
                "status": CommandStatus.EXPIRED,
                "error_code": "ACTION_PREPARE_TIMEOUT",
                "error_message": message,
                "completed_at": now,
                "updated_at": now,
            },
            only_statuses=LIVE,
        )
        if moved:
            await _transitioned(
                uow,
                Actor.system(),
                "system.command.expired",
                command,
                CommandStatus.EXPIRED,
                metadata={"reason": "ACTION_PREPARE_TIMEOUT"},
                now=now,
            )
    ctx.counters.action_prepare_timeouts += 1
    raise DomainError(
        message,
        code="ACTION_PREPARE_TIMEOUT",
        details={
            "commandId": command["id"],
            "commandStatus": command["status"],
            "actionName": action["name"],
            "agentId": command["agent_id"],
            "serviceId": command["service_id"],
        },
    )


async def warm_pending_hint(ctx: CommandContext) -> None:
    """One read at start that spares each agent's first long-poll its probe (ADR 0017)."""
    hint = ctx.waiters.pending
    if not hint.enabled:
        return
    before = hint.versions()
    async with ctx.reader() as uow:
        pending = await uow.commands.agents_with_pending()
    hint.warm(pending, before)


async def poll_commands(
    ctx: CommandContext,
    agent: AgentPrincipal,
    limit: int,
    wait_seconds: float,
    gone: asyncio.Future[Any] | None = None,
) -> list[CommandRow]:
    """Claims up to ``limit`` pending commands, waiting up to ``wait_seconds`` for one.

    ``gone`` completes when the agent closes its connection: a parked poll then stops
    without claiming, because a command claimed for a closed socket would sit RUNNING
    until it expires instead of reaching the agent's next poll.
    """
    ctx.counters.agent_command_polls += 1
    await record_contact(ctx, agent, None, None)
    key = f"agent:{agent.agent_id}"
    wake = ctx.waiters.register(key) if wait_seconds > 0 else None
    on_gone: Callable[[asyncio.Future[Any]], None] | None = None
    if wake is not None and gone is not None:
        on_gone = lambda _: wake.set()  # noqa: E731
        gone.add_done_callback(on_gone)
    deadline = time.monotonic() + wait_seconds
    woke = False
    try:
        while True:
            if gone is not None and gone.done():
                return []
            if wake is not None:
                wake.clear()
            # Woken by a CommandCreated: go straight to the claim, skipping the cheap probe.
            claimed = await _claim(ctx, agent, limit, probe=not woke)
            remaining = deadline - time.monotonic()
            if claimed or wake is None or remaining <= 0:
                return claimed
            pause = ctx.waiters.recheck_after(remaining, LONG_POLL_RECHECK_SECONDS)
            woke = await ctx.waiters.wait(wake, pause)
    finally:
        if wake is not None:
            ctx.waiters.unregister(key, wake)
        if on_gone is not None and gone is not None:
            # ``gone`` may be the connection's, shared by its next polls (api/http_protocol.py).
            gone.remove_done_callback(on_gone)


async def _claim(
    ctx: CommandContext, agent: AgentPrincipal, limit: int, *, probe: bool = True
) -> list[CommandRow]:
    if probe:
        hint = ctx.waiters.pending
        if hint.surely_empty(agent.agent_id):
            return []
        version = hint.version(agent.agent_id)
        async with ctx.reader() as uow:
            if not await uow.commands.has_pending(agent.agent_id):
                hint.mark_clean(agent.agent_id, version)
                return []
    now = ctx.clock()
    async with ctx.writer() as uow:
        claimed = await uow.commands.claim_pending(agent.agent_id, limit, now)
        actor = Actor("AGENT", agent.agent_id)
        for cmd in claimed:
            scrubbed = await _scrubbed(uow, cmd)  # the agent gets ``cmd`` as it was
            if scrubbed:
                await uow.commands.update(cmd["id"], scrubbed)
            await _transitioned(
                uow,
                actor,
                "command.dispatched",
                cmd,
                CommandStatus.RUNNING,
                metadata={"actionName": cmd["action_name"], "type": cmd["type"]},
                now=now,
            )
    return claimed


def _result_size(body: ResultReport) -> int:
    return len(
        orjson.dumps(
            {
                "message": body.message,
                "data": body.data or {},
                "error": body.error or {},
            }
        )
    )


async def report_result(
    ctx: CommandContext, agent: AgentPrincipal, command_id: str, body: ResultReport
) -> CommandResultRow:
    size = _result_size(body)
    cap = ctx.settings.command_result_max_bytes
    if size > cap:
        ctx.counters.oversized_results_rejected += 1
        raise DomainError(
            f"Command result payload is too large ({size} bytes); max is {cap} bytes.",
            code="COMMAND_RESULT_TOO_LARGE",
            details={"sizeBytes": size, "maxBytes": cap},
        )
    now = ctx.clock()
    actor = Actor("AGENT", agent.agent_id)
    expired_now = False
    async with ctx.writer() as uow:
        command = await uow.commands.get(command_id)
        if command is None:
            raise NotFound("Command not found.", code="COMMAND_NOT_FOUND")
        if command["agent_id"] != agent.agent_id:
            raise Forbidden("Command is not assigned to this agent.", code="COMMAND_NOT_OWNED")
        status = command["status"]
        if status in LIVE and command["expires_at"] is not None and command["expires_at"] <= now:
            expired_now = bool(await _expire(uow, command, now, "COMMAND_EXPIRED"))
            status = CommandStatus.EXPIRED
        if status == CommandStatus.EXPIRED and not expired_now:
            raise DomainError(
                "Command expired before its result arrived; the result is ignored.",
                code="COMMAND_EXPIRED",
            )
        if status in TERMINAL_COMMAND_STATUSES and not expired_now:
            raise Conflict(
                "Command is already completed.",
                code="COMMAND_ALREADY_COMPLETED",
                details={"status": status},
            )
        if not expired_now:
            row = await _complete(ctx, uow, actor, command, body, now)
    if expired_now:
        raise DomainError(
            "Command expired before its result arrived; the result is ignored.",
            code="COMMAND_EXPIRED",
        )
    return row


async def _complete(
    ctx: CommandContext,
    uow: UnitOfWork,
    actor: Actor,
    command: CommandRow,
    body: ResultReport,
    now: datetime,
) -> CommandResultRow:
    success = bool(body.success)
    error = body.error if isinstance(body.error, dict) else None
    status = CommandStatus.SUCCEEDED if success else CommandStatus.FAILED
    error_code: str | None = None
    error_message: str | None = None
    if not success:
        code = (error or {}).get("code")
        error_code = mask_strings(code[:80]) if isinstance(code, str) and code else "ACTION_FAILED"
        msg = (error or {}).get("message")
        msg = msg if isinstance(msg, str) else body.message
        error_message = redact(msg[:500]) if isinstance(msg, str) else None
    moved = await uow.commands.update(
        command["id"],
        {
            "status": status,
            "completed_at": now,
            "updated_at": now,
            "error_code": error_code,
            "error_message": error_message,
            **await _scrubbed(uow, command),  # claimed before scrubbing at claim existed
        },
        only_statuses=LIVE,
    )
    if not moved:
        raise Conflict("Command is already completed.", code="COMMAND_ALREADY_COMPLETED")
    data = body.data
    result: CommandResultRow = {
        "id": new_id("crs"),
        "command_id": command["id"],
        "success": success,
        "message": redact(body.message) if isinstance(body.message, str) else None,
        "data": redact(data) if data is not None else {},
        "error": redact(error) if error is not None else {},
        "agent_started_at": _when(body.started_at),
        "agent_finished_at": _when(body.finished_at),
        "reported_at": now,
    }
    await uow.commands.insert_result(result)
    if data:
        uow.after_commit(
            lambda: ctx.one_time_secrets.hold(command["id"], command["created_by_user_id"], data)
        )
    await _transitioned(
        uow,
        actor,
        "command.completed" if success else "command.failed",
        command,
        status,
        metadata={
            "actionName": command["action_name"],
            "type": command["type"],
            "errorCode": error_code,
        },
        now=now,
        result="SUCCESS" if success else "FAILURE",
    )
    # The bus reads the row as its own loose dict (app/bus_admission.py).
    outcome = CommandOutcome(cast(dict[str, Any], command), status, error_code, now)
    await ctx.command_outcomes.publish(uow, outcome)
    return result


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


async def _expire(
    uow: UnitOfWork, command: CommandRow, now: datetime, reason: str, *, audit: bool = True
) -> int:
    """EXPIRED, with its domain event; ``audit=False`` leaves the audit row to the caller."""
    moved: int = await uow.commands.update(
        command["id"],
        {
            "status": CommandStatus.EXPIRED,
            "completed_at": now,
            "updated_at": now,
            "error_code": command["error_code"] or reason,
            "error_message": command["error_message"] or "Command passed its expiry time.",
            **await _scrubbed(uow, command),
        },
        only_statuses=LIVE,
    )
    if moved and audit:
        await _transitioned(
            uow,
            Actor.system(),
            "system.command.expired",
            command,
            CommandStatus.EXPIRED,
            metadata={"actionName": command["action_name"], "fromStatus": command["status"]},
            now=now,
        )
    elif moved:
        uow.record(_status_event(command, CommandStatus.EXPIRED))
    return moved


async def expire_due_commands(ctx: UnitContext, limit: int = 500) -> int:
    """The sweep's step: one batch of overdue commands → EXPIRED, audited as the reference
    does, one ``system.command.expired`` row on the workspace with the count."""
    now = ctx.clock()
    expired: list[str] = []
    async with ctx.writer() as uow:
        for command in await uow.commands.due_for_expiry(now, limit):
            if await _expire(uow, command, now, "COMMAND_EXPIRED", audit=False):
                expired.append(command["id"])
        if expired:
            await write_audit(
                uow,
                Actor.system(),
                "system.command.expired",
                target_type="Workspace",
                target_id=DEFAULT_WORKSPACE_ID,
                metadata={"count": len(expired), "commandIds": expired},
                now=now,
            )
    return len(expired)


async def cancel_command(ctx: UnitContext, actor: Actor, command_id: str) -> CommandRow:
    now = ctx.clock()
    async with ctx.writer() as uow:
        command = await uow.commands.get(command_id)
        if command is None:
            raise NotFound("Command not found.", code="COMMAND_NOT_FOUND")
        moved = await uow.commands.update(
            command_id,
            {
                "status": CommandStatus.CANCELLED,
                "completed_at": now,
                "updated_at": now,
                **await _scrubbed(uow, command),
            },
            only_statuses=LIVE,
        )
        if not moved:
            raise Conflict(
                "Command is already completed.",
                code="COMMAND_ALREADY_COMPLETED",
                details={"status": command["status"]},
            )
        await _transitioned(
            uow,
            actor,
            "command.cancelled",
            command,
            CommandStatus.CANCELLED,
            metadata={"fromStatus": command["status"]},
            now=now,
        )
        row = await uow.commands.get(command_id)
    assert row is not None
    return row


async def retry_command(
    ctx: UnitContext, actor: Actor, command_id: str, confirmation: bool | None
) -> CommandRow:
    now = ctx.clock()
    async with ctx.writer() as uow:
        source = await uow.commands.get(command_id)
        if source is None:
            raise NotFound("Command not found.", code="COMMAND_NOT_FOUND")
        if source["type"] != CommandType.ACTION_EXECUTE:
            raise Conflict(
                "Only ACTION_EXECUTE commands can be retried.", code="COMMAND_NOT_RETRYABLE"
            )
        if source["status"] not in RETRYABLE_COMMAND_STATUSES:
            raise Conflict(
                "Only failed, expired, or cancelled commands can be retried.",
                code="COMMAND_NOT_RETRYABLE",
                details={"status": source["status"]},
            )
        if holds_scrubbed_values(source["payload"]):
            raise Conflict(
                "The command's secret inputs were erased once the agent had them; "
                "run the action again to enter them.",
                code="COMMAND_NOT_RETRYABLE",
                details={"reason": "PAYLOAD_SECRETS_ERASED"},
            )
        service, action, agent = await _load_target(
            uow, source["service_id"], source["action_name"]
        )
        _require_confirmation(action, confirmation)
        _validate_payload(action, source["payload"])
        if agent is None or agent["status"] in (AgentStatus.DISABLED, AgentStatus.REVOKED):
            raise Conflict("Command agent is not available.", code="AGENT_NOT_AVAILABLE")
        new_command_id = new_id("cmd")
        timeout = action["timeout_seconds"] or ctx.settings.command_default_timeout_seconds
        row = await insert_command(
            uow,
            command_id=new_command_id,
            agent_id=service["agent_id"],
            service_id=service["id"],
            type_=CommandType.ACTION_EXECUTE,
            action=action,
            payload=source["payload"],
            confirmed=confirmation is True,
            user_id=actor.id,
            retry_of=command_id,
            timeout=timeout,
            now=now,
        )
        await write_audit(
            uow,
            actor,
            "command.retried",
            target_type="Command",
            target_id=new_command_id,
            metadata={"sourceCommandId": command_id, "confirmed": confirmation is True},
            now=now,
        )
        await write_audit(
            uow,
            actor,
            "command.created",
            target_type="Command",
            target_id=new_command_id,
            metadata={
                "serviceId": service["id"],
                "actionName": action["name"],
                "retryOf": command_id,
            },
            now=now,
        )
    return row


async def list_commands(
    ctx: UnitContext,
    *,
    statuses: Sequence[str],
    types: Sequence[str],
    action_names: Sequence[str],
    service_ids: Sequence[str],
    agent_ids: Sequence[str],
    sort: SortSpec,
    page: int,
    page_size: int,
) -> tuple[list[CommandRow], int]:
    async with ctx.reader() as uow:
        return await uow.commands.list(
            statuses=statuses,
            types=types,
            action_names=action_names,
            service_ids=service_ids,
            agent_ids=agent_ids,
            sort=sort,
            page=page,
            page_size=page_size,
        )


async def get_command(
    ctx: CommandContext, command_id: str, viewer_id: str | None
) -> tuple[CommandRow, CommandResultRow | None]:
    async with ctx.reader() as uow:
        command = await uow.commands.get(command_id)
        if command is None:
            raise NotFound("Command not found.", code="COMMAND_NOT_FOUND")
        result = await uow.commands.result(command_id)
    if result is not None and result["data"]:
        held = ctx.one_time_secrets.take(command_id, viewer_id)
        if held:
            result = {**result, "data": reveal(result["data"], held)}
    return command, result


def clamp_poll_limit(raw: Sequence[str] | str | None) -> int:
    """The reference clamps rather than rejects: bad or out-of-range values become 1..10."""
    value = raw[0] if isinstance(raw, list | tuple) and raw else raw
    try:
        n = int(str(value))
    except (TypeError, ValueError):
        return POLL_LIMIT_MAX
    if n == 0:
        return POLL_LIMIT_MAX
    return max(1, min(POLL_LIMIT_MAX, n))


async def _transitioned(
    uow: UnitOfWork,
    actor: Actor,
    audit_action: str,
    command: CommandRow,
    status: CommandStatus,
    metadata: dict[str, Any],
    now: datetime,
    *,
    result: str = "SUCCESS",
) -> None:
    """A command's status change: its audit row and its domain event, in the caller's txn."""
    await write_audit(
        uow,
        actor,
        audit_action,
        target_type="Command",
        target_id=command["id"],
        result=result,
        metadata=metadata,
        now=now,
    )
    uow.record(_status_event(command, status))


def _status_event(command: CommandRow, status: CommandStatus) -> CommandStatusChanged:
    return CommandStatusChanged(
        command["id"], command["agent_id"], command["type"], command["action_name"], status
    )
