"""Success envelopes, rendered with orjson straight to bytes (no second encoding pass)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSON_TYPE = "application/json"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=JSON_TYPE,
        headers=dict(headers) if headers else None,
    )


def ok(
    data: Any = None, *, status: int = 200, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {"success": True}
    if data is not None:
        body["data"] = data
    body.update(extra)
    return json_response(body, status, headers)


def page(items: list[Any], *, page: int, page_size: int, total: int, **extra: Any) -> Response:
    return ok(items, pagination={"page": page, "pageSize": page_size, "total": total}, **extra)
