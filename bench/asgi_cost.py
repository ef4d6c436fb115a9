"""The app's own CPU per request, in-process through the whole ASGI stack, no socket.

Builds ``opstage serve``'s application on a fresh migrated SQLite file, runs its lifespan, and
calls it directly for ``N`` requests to ``PATH`` (default ``GET /api/system/version``), timing
``time.process_time``: what the server's Python costs per request without uvicorn, the network
or a load generator, so a loaded machine bends it little. Compare two trees by putting the
other's ``src`` first on ``PYTHONPATH``:

    .venv/bin/python bench/asgi_cost.py 5000
    PYTHONPATH=/path/to/base/packages/opstage/src .venv/bin/python bench/asgi_cost.py 5000
    .venv/bin/python bench/asgi_cost.py 5000 /api/system/health --profile   # cProfile, top 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any


async def measure(n: int, path: str) -> float:
    from opstage.server import create_server_app
    from opstage.settings import Settings
    from opstage.store.migrate import upgrade_async
    from pydantic import SecretStr

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'opstage.db'}"
    await upgrade_async(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp,
        session_secret=SecretStr(secrets.token_urlsafe(40)),
        admin_username="owner",
        admin_password=SecretStr("owner-password-1234"),
        maintenance_interval_seconds=0,
        access_log=False,
        log_level="WARNING",
    )
    app = create_server_app(settings)
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"x"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8080),
    }
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async with app.router.lifespan_context(app):
        for _ in range(500):  # warm-up: caches, compiled statements
            await app(dict(scope), receive, send)
        if statuses != {200}:
            raise SystemExit(f"{path} answered {sorted(statuses)}, not 200")
        started = time.process_time()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.process_time() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("path", nargs="?", default="/api/system/version")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(measure(args.n, args.path))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    print(f"{1e6 * asyncio.run(measure(args.n, args.path)):.1f} µs per request ({args.path})")


if __name__ == "__main__":
    main()
