"""The committed OpenAPI document is the code's, and each operation has one implementation.

ADR 0001 / issue 16: the agents' hot calls are served by ``api/hotpath.py`` alone; FastAPI only
holds documentation-only operations for them (``routes/hot_docs.py``). ADR 0012: the document
comes from declared models and is committed as ``docs/openapi.json``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from opstage.api import hotpath
from opstage.api.app import ROUTE_MODULES, create_app
from opstage.api.openapi.dump import DEFAULT_PATH, render
from opstage.api.routes import hot_docs
from opstage.settings import Settings

REGENERATE = "python -m opstage.api.openapi"


@cache
def app() -> FastAPI:
    return create_app(Settings(session_secret="unit-only-" + "x" * 32))


def _served() -> list[tuple[str, str, Any]]:
    """Every (method, path, handler) FastAPI serves, from the routers the app includes."""
    out = []
    for module in ROUTE_MODULES:
        for route in module.router.routes:
            # /metrics is Prometheus's text exposition, outside the JSON API and its document.
            if isinstance(route, APIRoute) and route.include_in_schema:
                out.extend((m, route.path, route.endpoint) for m in sorted(route.methods))
    return out


def test_the_committed_document_is_what_the_code_declares() -> None:
    committed = Path(DEFAULT_PATH)
    assert committed.exists(), f"docs/openapi.json is missing: run `{REGENERATE}`"
    same = committed.read_text() == render()
    assert same, (
        f"docs/openapi.json differs from the code: run `{REGENERATE}` and commit it "
        "(then `npm run api:generate` in console/)"
    )


def test_every_operation_has_exactly_one_implementation() -> None:
    hot = {(r.method, r.path) for r in hotpath.ROUTES}
    docs_only = {(m, p) for m, p, endpoint in _served() if endpoint.__module__ == hot_docs.__name__}
    real = [(m, p) for m, p, endpoint in _served() if endpoint.__module__ != hot_docs.__name__]
    # The hot path's table and FastAPI's real handlers are disjoint; the documentation-only
    # operations are exactly the hot path's.
    assert docs_only == hot
    assert not hot & set(real)
    assert len(real) == len(set(real)), "an operation is registered twice"
    spec = app().openapi()
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert documented == hot | set(real)


def test_no_framework_422_and_every_error_is_the_envelope() -> None:
    spec = app().openapi()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"]["200"], (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and path != "/api/system/health":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (
                        method,
                        path,
                        status,
                    )


def test_security_is_declared_per_operation() -> None:
    spec = app().openapi()
    assert set(spec["components"]["securitySchemes"]) == {"adminSession", "csrfToken", "agentToken"}
    paths = spec["paths"]
    assert paths["/api/admin/users"]["get"]["security"] == [{"adminSession": []}]
    assert paths["/api/admin/users"]["post"]["security"] == [{"adminSession": [], "csrfToken": []}]
    prepare = paths["/api/admin/capsule-services/{serviceId}/actions/{actionName}"]["get"]
    assert prepare["security"] == [{"adminSession": [], "csrfToken": []}]
    assert paths["/api/agents/{agentId}/heartbeat"]["post"]["security"] == [{"agentToken": []}]
    assert paths["/api/agents/register"]["post"]["security"] == []
    assert paths["/api/admin/auth/login"]["post"]["security"] == []
    assert paths["/api/system/version"]["get"]["security"] == []
