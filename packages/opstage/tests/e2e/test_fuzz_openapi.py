"""Fuzz: schemathesis drives every operation of our own OpenAPI document (/api/openapi.json)
against a real server, logged in as the owner (session cookie and CSRF header) and as an agent
(Bearer token), and no answer may be a 5xx (`not_a_server_error`).

Bounded so `make test` stays fast: a time budget for the whole run and a cap on the examples
per operation. Left out: logout (it would end the session the rest of the run uses), the CSRF
route (it issues a new token, and every later write would carry a stale one) and the event
stream (it never ends by design). Long-polls are capped at 1 s by the server's setting.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, register, service
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess

MAX_SECONDS = 70  # schemathesis' own budget; the server start and set-up add ~5 s
MAX_EXAMPLES = 20
EXCLUDED = ["/api/admin/auth/logout", "/api/admin/auth/csrf", "/api/admin/events/stream"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Any
) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    srv = InProcessServer(
        data_dir,
        database_factory(data_dir, migrated=True),
        {
            "OPSTAGE_CAPSULE_BUS_ENABLED": "true",
            "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": "100000",
            "OPSTAGE_LONG_POLL_MAX_SECONDS": "1",
        },
    ).start()
    yield srv
    srv.stop()


def test_no_operation_of_the_openapi_document_answers_5xx(
    fuzz_server: ServerProcess, tmp_path: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis (requirements-dev.txt) is not installed in this environment"
    with AdminClient(fuzz_server.url) as admin:
        admin.login()
        agent = register(fuzz_server.url, admin.create_token(), "fuzz-agent")
        agent.ok(
            "POST",
            "/services/report",
            json={"services": [service("fuzz-svc", {"name": "echo", "label": "Echo"})]},
        )
        svc_id = admin.data("GET", "/api/admin/capsule-services", params={"q": "fuzz-svc"})[0]["id"]
        # Random path ids only ever reach a 403 or 404: the agent's and the service's routes get
        # the real ids, so the fuzzer's bodies and queries reach the handlers behind them.
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            "[[operations]]\n"
            'include-path-regex = "^/api/agents/[{]agentId[}]"\n'
            f'parameters = {{ "path.agentId" = "{agent.agent_id}" }}\n'
            "[[operations]]\n"
            'include-path-regex = "^/api/admin/capsule-services/[{]serviceId[}]"\n'
            f'parameters = {{ "path.serviceId" = "{svc_id}" }}\n'
        )
        cookie = "; ".join(f"{k}={v}" for k, v in admin.cookies.items())
        assert admin.csrf
        cmd = [
            st,
            "--config-file",
            str(config),
            "run",
            f"{fuzz_server.url}/api/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(MAX_SECONDS),
            # One worker: with two, hypothesis parses lambda sources on two threads at once and
            # CPython 3.11's ast raises "AST constructor recursion depth mismatch" inside the tool.
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--seed",
            "15",
            "--no-shrink",
            "--header",
            f"Cookie: {cookie}",
            "--header",
            f"X-CSRF-Token: {admin.csrf}",
            "--header",
            f"Authorization: Bearer {agent.token}",
            "--report-dir",
            str(tmp_path),
        ]
        for path in EXCLUDED:
            cmd += ["--exclude-path", path]
        started = time.monotonic()
        proc = subprocess.run(
            # cwd: schemathesis keeps a cache folder where it runs; not in the work tree.
            cmd,
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 60,
            cwd=tmp_path,
        )
        took = time.monotonic() - started
        agent.close()
    output = proc.stdout + proc.stderr
    print(output[-4000:])
    print(f"schemathesis took {took:.0f} s")
    assert proc.returncode == 0, (
        f"schemathesis found failures:\n{output[-12000:]}\n{fuzz_server.log()[-4000:]}"
    )
