"""Query-string conventions of the contract: pagination and ``sort``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Query

from opstage.domain.errors import ValidationFailed

Page = Annotated[int, Query(ge=1, le=1_000_000)]
PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=100)]


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
