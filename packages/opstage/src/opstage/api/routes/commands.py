"""Command history, detail (with the result), cancel and retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints
from starlette.responses import Response

from opstage.api.deps import Ctx, admin_actor, read_json, require
from opstage.api.envelope import ok, page
from opstage.api.models import RetryCommandRequest
from opstage.api.queries import AgentIds, PageNo, PageSize, ServiceIds, parse_sort
from opstage.api.rbac import READ
from opstage.api.views import command_view, result_view
from opstage.app import commands
from opstage.app.auth import SessionInfo
from opstage.domain.status import CommandStatus, CommandType

router = APIRouter(prefix="/api/admin/commands", tags=["AdminCommands"])
Reader = Annotated[SessionInfo, Depends(require(READ))]
Writer = Annotated[SessionInfo, Depends(require("commands:write"))]
# The reference's ``actionName``: trimmed, 1..128 characters (each value when repeated).
ActionNameValue = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)
]


@router.get("")
async def list_(
    ctx: Ctx,
    _: Reader,
    page_: PageNo = 1,
    page_size: PageSize = 20,
    sort: str | None = None,
    status: Annotated[list[CommandStatus] | None, Query()] = None,
    type_: Annotated[list[CommandType] | None, Query(alias="type")] = None,
    action_name: Annotated[list[ActionNameValue] | None, Query(alias="actionName")] = None,
    service_id: ServiceIds = None,
    agent_id: AgentIds = None,
) -> Response:
    order = parse_sort(sort, ("createdAt", "finishedAt", "completedAt", "startedAt"))
    rows, total = await commands.list_commands(
        ctx,
        statuses=status or [],
        types=type_ or [],
        action_names=action_name or [],
        service_ids=service_id or [],
        agent_ids=agent_id or [],
        sort=order,
        page=page_,
        page_size=page_size,
    )
    return page([command_view(r) for r in rows], page=page_, page_size=page_size, total=total)


@router.get("/{commandId}")
async def get(ctx: Ctx, session: Reader, commandId: str) -> Response:
    command, result = await commands.get_command(ctx, commandId, session.user_id)
    data = command_view(command)
    if result is not None:  # no result yet: the key is absent (CommandResult is an object)
        data["result"] = result_view(result, command["agent_id"])
    return ok(data, headers={"Cache-Control": "no-store"})


@router.post("/{commandId}/cancel")
async def cancel(
    request: Request,
    ctx: Ctx,
    session: Writer,
    commandId: str,
) -> Response:
    row = await commands.cancel_command(ctx, admin_actor(request, session), commandId)
    return ok(command_view(row))


@router.post("/{commandId}/retry")
async def retry(
    request: Request,
    ctx: Ctx,
    session: Writer,
    commandId: str,
) -> Response:
    body = await read_json(request, RetryCommandRequest, required=False)
    row = await commands.retry_command(
        ctx, admin_actor(request, session), commandId, body.confirmation
    )
    return ok(command_view(row))
