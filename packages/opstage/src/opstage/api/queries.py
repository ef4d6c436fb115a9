"""Query-string conventions of the contract: pagination, free-text search, id filters, ``sort``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from opstage.domain.errors import ValidationFailed

# The contract gives ``page`` a minimum only. A page beyond any list's end still has to be an
# offset the database can bind (SQLite and PostgreSQL take 64-bit integers): 2**31 - 1 pages of
# at most 100 rows stay far below that, and past it a client gets 422, not a 500.
PAGE_MAX = 2**31 - 1
PageNo = Annotated[int, Query(alias="page", ge=1, le=PAGE_MAX)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=100)]

# Filters that repeat (``?agentId=a&agentId=b``): each value is checked, not the list.
AgentIdValue = Annotated[str, StringConstraints(pattern=r"^agt_", max_length=40)]
ServiceIdValue = Annotated[str, StringConstraints(pattern=r"^svc_", max_length=40)]
AgentIds = Annotated[list[AgentIdValue] | None, Query(alias="agentId")]
ServiceIds = Annotated[list[ServiceIdValue] | None, Query(alias="serviceId")]


def search_text(q: str | None, path: str = "q") -> str | None:
    """``q`` trimmed, as the reference reads it (``z.string().trim().min(1)``): blank is 422."""
    if q is None:
        return None
    text = q.strip()
    if not text:
        raise ValidationFailed(
            "Query validation failed.", [{"path": path, "message": f"{path} must not be blank"}]
        )
    return text


def parse_sort(
    raw: str | None, allowed: Sequence[str], default: str = "-createdAt"
) -> list[tuple[str, bool]]:
    out = []
    for part in (raw or default).split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("-+")
        if name not in allowed:
            raise ValidationFailed(
                "Query validation failed.",
                [
                    {
                        "path": "sort",
                        "message": f"unknown sort field {name!r}; allowed: " + ", ".join(allowed),
                    }
                ],
            )
        out.append((name, desc))
    return out
