"""A 5xx domain error is answered alike on the hot path and on a FastAPI route (issue 16; ADR 0001,
ADR 0006): masked (the generic message, no details but ``requestId``), logged once with that id.

The application runs in-process on a migrated SQLite database, with its lifespan. The failure is
injected into one use case per path (the heartbeat's ``record_contact`` on the hot path, the
service report's ``report_services`` on a route): a ``DomainError`` whose code maps to 500, which
no real input produces on these calls today; everything else is the real server.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from opstage.api.app import create_app
from opstage.app import agents, services
from opstage.domain.errors import DomainError
from opstage.settings import Settings

from ..support.settings import migrated_settings

SECRET = "disk /var/lib/opstage is on fire"


def _boom(*_: Any, **__: Any) -> Any:
    raise DomainError(SECRET, code="INTERNAL_ERROR", details={"path": "/var/lib/opstage"})


def _errors_with(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno >= logging.ERROR and request_id in r.getMessage()
    ]


async def _answers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> dict[str, httpx.Response]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://opstage.test"
        ) as client,
    ):
        login = await client.post(
            "/api/admin/auth/login",
            json={"username": "owner", "password": "owner-password-1234"},
        )
        csrf = {"X-CSRF-Token": login.json()["data"]["csrfToken"]}
        raw = await client.post("/api/admin/registration-tokens", json={}, headers=csrf)
        registered = await client.post(
            "/api/agents/register",
            json={"registrationToken": raw.json()["data"]["rawToken"], "agent": {"code": "hot"}},
        )
        reg = registered.json()["data"]
        auth = {"Authorization": f"Bearer {reg['agentToken']}"}
        base = f"/api/agents/{reg['agentId']}"
        monkeypatch.setattr(agents, "record_contact", _boom)
        monkeypatch.setattr(services, "report_services", _boom)
        report = {"services": [{"code": "s", "name": "s", "manifest": {}}]}
        return {
            "hot path": await client.post(f"{base}/heartbeat", json={}, headers=auth),
            "route": await client.post(f"{base}/services/report", json=report, headers=auth),
        }


def test_a_5xx_domain_error_is_masked_and_logged_once_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'opstage.db'}"
    settings = asyncio.run(migrated_settings(tmp_path, url))
    with caplog.at_level(logging.ERROR):
        answers = asyncio.run(_answers(settings, monkeypatch))
    for where, r in answers.items():
        request_id = r.headers["x-request-id"]
        assert r.status_code == 500, (where, r.text)
        assert r.json() == {
            "success": False,
            "error": {
                "code": "INTERNAL_ERROR",
                "message": "Internal server error.",
                "details": {"requestId": request_id},
            },
        }, where
        assert SECRET not in r.text, where
        logged = _errors_with(caplog, request_id)
        assert len(logged) == 1, (where, [x.getMessage() for x in logged])
